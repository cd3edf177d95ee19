"""Snakemake script: residual diagnostics of the primary model M2 (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    outcome = snakemake.wildcards.outcome
    formula = figures.fitted_formula(read_table(snakemake.input.model_fit), outcome, "M2")
    refit = figures.refit_mixed_model(read_table(snakemake.input.derived), outcome, formula)
    fig = figures.residual_diagnostics_figure(
        refit, settings.registry()[outcome],
        model_title=figures.model_title("M2"))
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
