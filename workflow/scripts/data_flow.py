"""Snakemake script: account for every row from input to analysis (see analysis.dataflow)."""
from analysis.dataflow import build_data_flow, publish_data_flow
from analysis.io import read_table, write_table
from analysis.runner import run_job


def main() -> None:
    flow = build_data_flow(
        read_table(snakemake.input.flow),
        read_table(snakemake.input.sessions),
        read_table(snakemake.input.derived),
        read_table(snakemake.input.episodes),
        read_table(snakemake.input.fit_counts),
        scores=read_table(snakemake.input.scores),
    )
    write_table(flow, snakemake.output.full)
    write_table(publish_data_flow(flow, snakemake.params.min_cell), snakemake.output.published)


run_job(main, snakemake)
