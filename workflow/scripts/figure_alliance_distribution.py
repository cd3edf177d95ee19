"""Snakemake script: distribution of alliance scores, the ceiling check (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    params = snakemake.params
    alliance = build_registry(params.instruments)[params.alliance]
    fig = figures.alliance_distribution_figure(read_table(snakemake.input.scores), alliance,
                                               min_cell=params.min_cell)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
