"""Snakemake script: forest plot of the alliance terms (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    registry = settings.registry()
    outcomes = {key: registry[key] for key in settings.outcomes}
    fig = figures.forest_alliance_figure(read_table(snakemake.input.models), outcomes,
                                         registry[settings.alliance])
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
