"""Snakemake script: the published dropout and attendance tables (engagement.dropout_stage)."""
from analysis.engagement.dropout_stage import combine_dropout
from analysis.io import read_json, read_table, write_table
from analysis.runner import run_job


def main() -> None:
    tables = combine_dropout([read_json(path) for path in snakemake.input.fits],
                             read_table(snakemake.input.episodes),
                             min_cell=snakemake.params.min_cell,
                             status_recorded=snakemake.params.status_recorded)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
