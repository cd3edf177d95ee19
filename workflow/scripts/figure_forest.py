"""Snakemake script: forest plot of the alliance terms (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    params = snakemake.params
    registry = build_registry(params.instruments)
    outcomes = {key: registry[key] for key in params.outcomes}
    fig = figures.forest_alliance_figure(read_table(snakemake.input.models), outcomes,
                                         registry[params.alliance])
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
