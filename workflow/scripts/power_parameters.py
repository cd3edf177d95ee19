"""Snakemake script: the generating parameters of the power analysis (analysis.power.parameters)."""
import pandas as pd

from analysis.io import read_json, read_table, write_table
from analysis.power.parameters import generating_parameters
from analysis.runner import run_job


def main() -> None:
    outcomes, models = snakemake.params.outcomes, snakemake.params.models
    fits = iter(read_json(path) for path in snakemake.input.fits)  # outcome by outcome (power.smk)
    derived = read_table(snakemake.input.derived)
    tables = [generating_parameters(outcome, {model: next(fits) for model in models}, derived,
                                    snakemake.params.course_lengths)
              for outcome in outcomes]
    write_table(pd.concat(tables, ignore_index=True), snakemake.output.power_parameters)


run_job(main, snakemake)
