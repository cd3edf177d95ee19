"""Snakemake script: the power table with its Monte-Carlo CIs (analysis.power.summary)."""
from analysis.io import write_table
from analysis.settings import PowerSettings
from analysis.power.summary import read_batches, summarise_power
from analysis.runner import run_job


def main() -> None:
    settings = PowerSettings.from_params(snakemake.params.settings)
    order = [(outcome, design.id, effect) for outcome, design, effect in settings.cells()]
    table = summarise_power(read_batches(snakemake.input.batches), settings.alpha, order)
    write_table(table, snakemake.output.power)


run_job(main, snakemake)
