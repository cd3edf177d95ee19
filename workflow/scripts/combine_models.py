"""Snakemake script: combine every fit file into the model tables (see analysis.models.mixed.tables)."""
import sys

from analysis.io import read_json, read_table, write_table
from analysis.models.mixed.tables import combine_fits, simplification_summary
from analysis.privacy import StudyTotals
from analysis.runner import run_job


def main() -> None:
    fits = [read_json(path) for path in snakemake.input.fits]
    checks = [read_json(path) for path in snakemake.input.checks]
    totals = StudyTotals.from_tables(read_table(snakemake.input.sessions),
                                     read_table(snakemake.input.episodes))
    tables = combine_fits(fits, checks, min_cell=snakemake.params.min_cell, totals=totals)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))
    # The one console line about expected simplifications (each fit logs its steps at INFO).
    if summary := simplification_summary(tables["model_fit"]):
        print(summary, file=sys.stderr)


run_job(main, snakemake)
