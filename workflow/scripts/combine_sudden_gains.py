"""Snakemake script: the published sudden-gains tables and the figure's course (engagement.sudden_gains_stage)."""
from analysis.engagement.sudden_gains_stage import combine_sudden_gains
from analysis.io import read_json, write_table
from analysis.runner import run_job


def main() -> None:
    tables = combine_sudden_gains([read_json(path) for path in snakemake.input.fits],
                                  min_cell=snakemake.params.min_cell,
                                  individual_rows=snakemake.params.individual_rows)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
