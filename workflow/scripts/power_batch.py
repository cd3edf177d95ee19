"""Snakemake script: one batch of simulated studies of the power analysis (analysis.power)."""
from analysis.io import read_table, write_table
from analysis.settings import PowerBatchSettings
from analysis.power.simulation import run_power_batch
from analysis.runner import run_job


def main() -> None:
    batch = PowerBatchSettings.from_params(snakemake.params.settings)
    write_table(run_power_batch(batch, read_table(snakemake.input.parameters)),
                snakemake.output[0])


run_job(main, snakemake)
