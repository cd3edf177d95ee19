"""Snakemake script: symptom trajectories by early-alliance tertile (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    registry = settings.registry()
    fig = figures.trajectories_figure(
        read_table(snakemake.input.derived), registry[snakemake.wildcards.outcome],
        registry[settings.alliance], min_cell=settings.privacy.min_cell_count,
        show_individual=settings.privacy.show_individual_trajectories)
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
