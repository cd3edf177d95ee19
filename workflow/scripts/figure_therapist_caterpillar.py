"""Snakemake script: therapist random intercepts from a refit of R3 (see analysis.figures)."""
from analysis import figures
from analysis.io import read_table
from analysis.runner import run_job
from analysis.settings import FigureSettings


def main() -> None:
    settings = FigureSettings.from_params(snakemake.params.settings)
    outcome = snakemake.wildcards.outcome
    formula = figures.fitted_formula(read_table(snakemake.input.model_fit), outcome, "R3")
    refit = figures.refit_mixed_model(read_table(snakemake.input.derived), outcome, formula)
    icc = figures.outcome_row(read_table(snakemake.input.icc), outcome, "therapist_icc.csv")
    fig = figures.therapist_caterpillar_figure(
        refit.random_effects, settings.registry()[outcome],
        variance_share=icc.get("icc_therapist"))
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png, dpi=settings.png_dpi)


run_job(main, snakemake)
