"""Snakemake script: the RI-CLPM figure of one outcome (see analysis.figures_riclpm)."""
from analysis.figures import save_figure
from analysis.figures_riclpm import riclpm_figure
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    outcome = snakemake.wildcards.outcome
    registry = settings.registry()
    figure = riclpm_figure(read_table(snakemake.input.paths), read_table(snakemake.input.fit),
                           registry[outcome], registry[settings.alliance])
    save_figure(figure, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
