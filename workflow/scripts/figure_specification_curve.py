"""Snakemake script: the specification curve (see analysis.figures_multiverse)."""
from analysis.figures import save_figure
from analysis.figures_multiverse import specification_curve_figure
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    figure = specification_curve_figure(read_table(snakemake.input.multiverse),
                                        settings.registry())
    save_figure(figure, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
