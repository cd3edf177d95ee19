"""Snakemake script: refit primary-analysis mixed models with statsmodels and compare each with
the primary engine's fit (see analysis.models.crosscheck)."""
from analysis.io import read_json, read_table, write_json
from analysis.models.crosscheck import cross_check_fit
from analysis.models.fitting import select_model_rows
from analysis.models.specs import ResolvedFit
from analysis.runner import run_job
from analysis.settings import CrossCheckSettings


def main() -> None:
    settings = CrossCheckSettings.from_params(snakemake.params.settings)
    derived = read_table(snakemake.input.derived)
    for fit_path, output in zip(snakemake.input.fits, snakemake.output.checks):
        fit = read_json(fit_path)
        resolved = ResolvedFit.from_dict(fit["spec"])
        rows, _ = select_model_rows(derived, resolved)
        check = cross_check_fit(rows, fit, reml=resolved.reml,
                                tolerance=settings.agreement_tolerance,
                                max_clients=settings.max_clients)
        write_json(check, output)


run_job(main, snakemake)
