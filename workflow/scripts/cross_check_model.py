"""Snakemake script: refit primary-analysis mixed models with statsmodels and compare each with
the primary engine's fit (see analysis.models.mixed.crosscheck)."""
from dataclasses import replace

from analysis.io import read_json, read_table, write_json
from analysis.models.mixed.design import without_group
from analysis.models.mixed.crosscheck import cross_check_fit
from analysis.models.mixed.fitting import select_model_rows
from analysis.models.mixed.specs import THERAPIST, ResolvedFit
from analysis.runner import run_job
from analysis.settings import CrossCheckSettings


def main() -> None:
    settings = CrossCheckSettings.from_params(snakemake.params.settings)
    derived = read_table(snakemake.input.derived)
    for fit_path, output in zip(snakemake.input.fits, snakemake.output.checks):
        fit = read_json(fit_path)
        resolved = ResolvedFit.from_dict(fit["spec"])
        info = fit.get("fit") or {}
        if info.get("status") == "not_estimated":
            # nothing was fitted (R3 without therapists): nothing to compare
            write_json({"outcome": fit["outcome"], "model": fit["model"],
                        "analysis": fit["analysis"], "engine": "statsmodels",
                        "formula": info.get("formula"), "expressible": False,
                        "reason": f"not estimated: {info.get('reason')}", "terms": []}, output)
            continue
        if info.get("design"):
            # the therapist term was left out by design: the rows are those the fit used
            resolved = replace(resolved, formula=without_group(resolved.formula or "", THERAPIST))
        rows, _ = select_model_rows(derived, resolved)
        check = cross_check_fit(rows, fit, reml=resolved.reml,
                                tolerance=settings.agreement_tolerance,
                                max_clients=settings.max_clients)
        write_json(check, output)


run_job(main, snakemake)
