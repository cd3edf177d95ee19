"""Snakemake script: dropout and missing-data figure (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    params = snakemake.params
    registry = build_registry(params.instruments)
    shown = [registry[key] for key in [*params.outcomes, params.alliance]]
    fig = figures.missingness_figure(read_table(snakemake.input.sessions),
                                     read_table(snakemake.input.scores), shown,
                                     min_cell=params.min_cell)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
