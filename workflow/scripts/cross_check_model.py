"""Snakemake script: refit a primary-analysis mixed model with statsmodels and compare."""
from analysis.io import read_json, read_table, write_json
from analysis.models.crosscheck import cross_check_fit
from analysis.models.fitting import select_model_rows
from analysis.models.specs import ResolvedFit
from analysis.runner import run_job
from analysis.settings import CrossCheckSettings


def main() -> None:
    settings = CrossCheckSettings.from_params(snakemake.params.settings)
    fit = read_json(snakemake.input.fit)
    resolved = ResolvedFit.from_dict(fit["spec"])
    rows, _ = select_model_rows(read_table(snakemake.input.derived), resolved)
    check = cross_check_fit(rows, fit, reml=resolved.reml,
                            tolerance=settings.agreement_tolerance,
                            max_clients=settings.max_clients)
    write_json(check, snakemake.output.check)


run_job(main, snakemake)
