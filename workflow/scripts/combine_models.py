"""Snakemake script: combine every fit file into the model tables (see analysis.models.tables)."""
from analysis.io import read_json, write_table
from analysis.models.tables import combine_fits
from analysis.runner import run_job


def main() -> None:
    fits = [read_json(path) for path in snakemake.input.fits]
    checks = [read_json(path) for path in snakemake.input.checks]
    tables = combine_fits(fits, checks, min_cell=snakemake.params.min_cell)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
