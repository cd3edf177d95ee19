"""Snakemake script: residual diagnostics of the primary model M2 (see analysis.figures)."""
from analysis import figures
from analysis.instruments import build_registry
from analysis.io import read_table
from analysis.runner import run_step, snakemake_log


def main() -> None:
    outcome = snakemake.wildcards.outcome
    formula = figures.fitted_formula(read_table(snakemake.input.model_fit), outcome, "M2")
    refit = figures.refit_mixed_model(read_table(snakemake.input.derived), outcome, formula)
    fig = figures.residual_diagnostics_figure(
        refit, build_registry(snakemake.params.instruments)[outcome],
        model_title=figures.model_title("M2"))
    figures.save_figure(fig, snakemake.output.svg, snakemake.output.png)


run_step(main, snakemake_log(snakemake))
