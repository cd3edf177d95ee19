"""Snakemake script: refit a primary-analysis mixed model with statsmodels and compare."""
from analysis.io import read_json, read_table, write_json
from analysis.models.fitting import cross_check_fit
from analysis.runner import run_step, snakemake_log


def main() -> None:
    fit = read_json(snakemake.input.fit)
    check = cross_check_fit(read_table(snakemake.input.derived), fit, snakemake.config)
    write_json(check, snakemake.output.check)


run_step(main, snakemake_log(snakemake))
