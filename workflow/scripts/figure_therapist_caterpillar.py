"""Snakemake script: therapist random intercepts from a refit of R3 (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    outcome = snakemake.wildcards.outcome
    formula = figures.fitted_formula(read_table(snakemake.input.model_fit), outcome, "R3")
    refit = figures.refit_mixed_model(read_table(snakemake.input.derived), outcome, formula)
    icc = figures.outcome_row(read_table(snakemake.input.icc), outcome, "therapist_icc.csv")
    fig = figures.therapist_caterpillar_figure(
        refit.random_effects, build_registry(snakemake.params.instruments)[outcome],
        variance_share=icc.get("icc_therapist"))
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
