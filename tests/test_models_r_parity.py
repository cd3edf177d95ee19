"""Parity of the primary engine with R's lme4/lmerTest, live through Rscript.

M0-M3 are fitted to one simulated dataset (150 clients, 15 therapists) by our engine wrapper and
by ``tests/r/fit_lmer.R`` on the same rows. Estimates and SEs must agree to 1e-4 (relative),
Satterthwaite df and variance components to 1e-3. The test is skipped, with the reason shown,
only when Rscript or lmerTest is not installed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.models.mixed.engines import MixedlmEngine
from analysis.models.mixed.fitting import select_model_rows
from model_fixtures import make_study, simulate_derived
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_lmer.R"
MODELS = ("M0", "M1", "M2", "M3")


def _lmertest_missing() -> str | None:
    return r_package_missing("lmerTest", "r-cran-lmertest")


pytestmark = [
    pytest.mark.r,
    pytest.mark.skipif(_lmertest_missing() is not None, reason=str(_lmertest_missing())),
]


def _study(outcome: str = "phq9"):
    """M0-M3 for one outcome, primary analysis only."""
    switches = {"detrended": False, "completers": False, "ml": False, "subscales": False}
    return make_study(outcomes=(outcome,), run=list(MODELS), sensitivity=switches)


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lme4")
    derived, _ = simulate_derived(150, 15, seed=2024)
    jobs, ours = [], {}
    study = _study()
    for model in MODELS:
        resolved = study.fit("phq9", model, "primary")
        rows, _ = select_model_rows(derived, resolved)
        path = folder / f"{model}.csv"
        rows.to_csv(path, index=False, float_format="%.17g")
        jobs.append({"id": model, "data": str(path), "formula": resolved.formula,
                     "reml": "TRUE"})
        ours[model] = MixedlmEngine().fit(resolved.formula, rows, reml=True)
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(folder / "jobs.csv"), str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    theirs = {
        model: {
            "fixed": pd.read_csv(folder / f"{model}_fixed.csv"),
            "random": pd.read_csv(folder / f"{model}_random.csv",
                                  dtype={"var1": "string", "var2": "string"}),
            "fit": pd.read_csv(folder / f"{model}_fit.csv"),
        }
        for model in MODELS
    }
    return ours, theirs


@pytest.mark.parametrize("model", MODELS)
def test_fixed_effects_match_lmertest(parity, model):
    ours, theirs = parity
    mine = ours[model].fixed.set_index("term")
    reference = theirs[model]["fixed"].set_index("term")
    assert list(mine.index) == list(reference.index)
    np.testing.assert_allclose(mine["estimate"], reference["estimate"], rtol=1e-4,
                               atol=1e-4 * reference["se"].min())
    np.testing.assert_allclose(mine["se"], reference["se"], rtol=1e-4)
    np.testing.assert_allclose(mine["df"], reference["df"], rtol=1e-3)
    np.testing.assert_allclose(mine["p"], reference["p"], rtol=1e-2, atol=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_variance_components_match_lme4(parity, model):
    ours, theirs = parity
    reference = theirs[model]["random"]
    reference = reference.assign(
        group=reference["grp"],
        term=reference["var1"].fillna(""),
        term2=reference["var2"].fillna(""),
    ).set_index(["group", "term", "term2"])["vcov"]
    mine = ours[model].random.set_index(["group", "term", "term2"])["variance"]
    assert set(mine.index) == set(reference.index)
    scale = reference.abs().max()
    np.testing.assert_allclose(mine[reference.index], reference, rtol=1e-3, atol=1e-6 * scale)
    fit = theirs[model]["fit"].iloc[0]
    assert ours[model].info["reml_criterion"] == pytest.approx(fit["reml_criterion"], rel=1e-6)
    assert ours[model].info["singular"] == bool(fit["singular"])


@pytest.mark.slow
@pytest.mark.parametrize("outcome", ["phq9", "gad7"])
def test_pipeline_m2_fit_matches_lmertest_on_the_same_derived_rows(pipeline_run, tmp_path, outcome):
    """The M2 estimates the pipeline published, refitted by lmerTest on its own derived rows."""
    import json

    root = pipeline_run.root
    fit = json.loads((root / "results" / "fits" / outcome / "M2" / "primary.json").read_text())
    derived = pd.read_parquet(root / "data" / "processed" / "derived.parquet")
    resolved = _study(outcome).fit(outcome, "M2", "primary")
    rows, _ = select_model_rows(derived, resolved)
    assert len(rows) == fit["fit"]["n_obs"]
    rows.to_csv(tmp_path / "m2.csv", index=False, float_format="%.17g")
    pd.DataFrame([{"id": "m2", "data": str(tmp_path / "m2.csv"), "formula": fit["fit"]["formula"],
                   "reml": "TRUE"}]).to_csv(tmp_path / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(tmp_path / "jobs.csv"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    reference = pd.read_csv(tmp_path / "m2_fixed.csv").set_index("term")
    published = pd.DataFrame(fit["fixed"]).set_index("term").loc[reference.index]
    np.testing.assert_allclose(published["estimate"], reference["estimate"], rtol=1e-4,
                               atol=1e-4 * reference["se"].min())
    np.testing.assert_allclose(published["se"], reference["se"], rtol=1e-4)
    np.testing.assert_allclose(published["df"], reference["df"], rtol=1e-3)
