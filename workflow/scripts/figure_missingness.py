"""Snakemake script: dropout and missing-data figure (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    registry = settings.registry()
    shown = [registry[key] for key in [*settings.outcomes, settings.alliance]]
    fig = figures.missingness_figure(read_table(snakemake.input.sessions),
                                     read_table(snakemake.input.scores), shown,
                                     min_cell=settings.privacy.min_cell_count)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
