"""Snakemake script: within-client alliance against next-session symptoms (analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    params = snakemake.params
    registry = build_registry(params.instruments)
    fig = figures.alliance_within_next_figure(
        read_table(snakemake.input.derived), registry[snakemake.wildcards.outcome],
        registry[params.alliance], min_cell=params.min_cell)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
