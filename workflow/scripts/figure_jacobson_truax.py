"""Snakemake script: Jacobson-Truax plot of first against last scores (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    outcome = snakemake.wildcards.outcome
    parameters = figures.outcome_row(read_table(snakemake.input.parameters), outcome,
                                     "jacobson_truax.csv")
    fig = figures.jacobson_truax_figure(
        read_table(snakemake.input.episodes), parameters,
        settings.registry()[outcome], min_cell=settings.privacy.min_cell_count,
        show_individual=settings.privacy.show_individual_trajectories)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
