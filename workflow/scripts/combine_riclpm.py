"""Snakemake script: combine the outcomes' RI-CLPM fits into two tables (riclpm_stage)."""
from analysis.io import read_json, read_table, write_table
from analysis.models.panel.riclpm_stage import combine_riclpm
from analysis.privacy import StudyTotals
from analysis.runner import run_job


def main() -> None:
    totals = StudyTotals.from_tables(read_table(snakemake.input.sessions),
                                     read_table(snakemake.input.episodes))
    tables = combine_riclpm([read_json(path) for path in snakemake.input.fits],
                            min_cell=snakemake.params.min_cell, totals=totals)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
