"""Snakemake script: the data-flow figure (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    fig = figures.data_flow_figure(read_table(snakemake.input.flow),
                                   min_cell=snakemake.params.min_cell)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
