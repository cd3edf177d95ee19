"""Snakemake script: distribution of alliance scores, the ceiling check (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    alliance = settings.registry()[settings.alliance]
    fig = figures.alliance_distribution_figure(read_table(snakemake.input.scores), alliance,
                                               min_cell=settings.privacy.min_cell_count)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
