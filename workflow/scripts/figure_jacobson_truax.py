"""Snakemake script: Jacobson-Truax plot of first against last scores (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    params, outcome = snakemake.params, snakemake.wildcards.outcome
    parameters = figures.outcome_row(read_table(snakemake.input.parameters), outcome,
                                     "jacobson_truax.csv")
    fig = figures.jacobson_truax_figure(
        read_table(snakemake.input.episodes), parameters,
        build_registry(params.instruments)[outcome], min_cell=params.min_cell,
        show_individual=params.show_individual)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
