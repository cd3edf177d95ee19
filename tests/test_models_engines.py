"""The engine wrappers: lme4's sleepstudy reference values, the convergence check, statsmodels."""

from __future__ import annotations

import mixedlm
import numpy as np
import pandas as pd
import pytest

from analysis.models.mixed.engines import (
    FIXED_COLUMNS,
    RANDOM_COLUMNS,
    MixedlmEngine,
    StatsmodelsEngine,
    scaled_gradient_check,
)
from model_fixtures import simulate_derived

M2 = ("symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
      " + (1 | client_id) + (1 | therapist_id)")


@pytest.fixture(scope="module")
def sleepstudy_fit():
    return MixedlmEngine().fit("Reaction ~ Days + (Days | Subject)", mixedlm.load_sleepstudy())


def test_sleepstudy_matches_lme4_reference_values(sleepstudy_fit):
    # docs/methods.md section 6: lme4, REML.
    fixed = sleepstudy_fit.fixed.set_index("term")
    assert fixed.loc["(Intercept)", "estimate"] == pytest.approx(251.405, abs=1e-3)
    assert fixed.loc["Days", "estimate"] == pytest.approx(10.467, abs=1e-3)
    random = sleepstudy_fit.random
    variances = random.loc[random["term2"] == ""].set_index(["group", "term"])
    assert variances.loc[("Subject", "(Intercept)"), "sd"] == pytest.approx(24.741, abs=1e-3)
    assert variances.loc[("Subject", "Days"), "sd"] == pytest.approx(5.922, abs=1e-3)
    assert variances.loc[("Residual", ""), "sd"] == pytest.approx(25.592, abs=1e-3)
    correlation = random.loc[random["term2"] == "Days", "corr"].iloc[0]
    assert round(correlation, 2) == 0.07
    assert sleepstudy_fit.info["reml_criterion"] == pytest.approx(1743.6, abs=0.05)
    # lmerTest: Satterthwaite df of 17 for both fixed effects
    assert fixed["df"].to_numpy() == pytest.approx([17.0, 17.0], abs=1e-3)


def test_engine_fit_has_the_documented_shape(sleepstudy_fit):
    assert list(sleepstudy_fit.fixed.columns) == FIXED_COLUMNS
    assert list(sleepstudy_fit.random.columns) == RANDOM_COLUMNS
    info = sleepstudy_fit.info
    for key in ("reml_criterion", "loglik", "aic", "bic", "converged", "singular",
                "gradient_norm", "optimizer", "n_obs"):
        assert key in info
    assert info["converged"] and not info["singular"]
    assert info["gradient_norm"] < 2e-3
    assert info["n_obs"] == 180
    # covariance row: variance column holds the covariance, consistent with sds and corr
    covariance = sleepstudy_fit.random.loc[sleepstudy_fit.random["term2"] == "Days"].iloc[0]
    sds = sleepstudy_fit.random.loc[sleepstudy_fit.random["group"] == "Subject", "sd"].dropna()
    assert covariance["variance"] == pytest.approx(covariance["corr"] * sds.prod(), rel=1e-6)


def test_scaled_gradient_check_on_a_known_quadratic():
    hessian = np.array([[4.0, 1.0], [1.0, 3.0]])

    def deviance(theta):
        offset = np.asarray(theta) - np.array([1.0, 0.5])
        return float(offset @ hessian @ offset)

    at_optimum = scaled_gradient_check(deviance, np.array([1.0, 0.5]), np.array([0.0, -np.inf]))
    assert at_optimum["gradient_ok"] and at_optimum["hessian_positive_definite"]
    assert at_optimum["gradient_norm"] < 1e-6
    away = scaled_gradient_check(deviance, np.array([1.1, 0.5]), np.array([0.0, -np.inf]))
    assert not away["gradient_ok"]
    # gradient 2 H (theta - opt) = (0.8, 0.2): min(|scaled|, |raw|) max is well above 0.002
    assert away["gradient_norm"] > 0.1


def test_parameters_on_their_boundary_are_left_out_of_the_gradient_check():
    def deviance(theta):
        # minimum at theta0 = -1, outside the bound 0: the constrained optimum is on the bound
        return float((theta[0] + 1.0) ** 2 + (theta[1] - 2.0) ** 2)

    check = scaled_gradient_check(deviance, np.array([0.0, 2.0]), np.array([0.0, 0.0]))
    assert check["gradient_ok"]


def test_statsmodels_agrees_with_mixedlm_on_nested_intercepts():
    derived, _ = simulate_derived(80, 8, seed=11)
    data = derived.dropna(subset=["symptom_next"])
    primary = MixedlmEngine().fit(M2, data)
    other = StatsmodelsEngine().fit(M2, data)
    merged = primary.fixed.merge(other.fixed, on="term", suffixes=("_a", "_b"))
    assert list(merged["term"]) == list(primary.fixed["term"])
    np.testing.assert_allclose(merged["estimate_b"], merged["estimate_a"], rtol=1e-3,
                               atol=1e-3 * merged["se_a"].min())
    random_a = primary.random.set_index("group")["variance"]
    random_b = other.random.set_index("group")["variance"]
    np.testing.assert_allclose(random_b[random_a.index], random_a, rtol=1e-3)


def test_statsmodels_says_what_it_cannot_express():
    engine = StatsmodelsEngine()
    frame = pd.DataFrame({"client_id": ["a", "a", "b"], "therapist_id": ["t", "u", "u"]})
    ok, reason = engine.can_express(
        "y ~ s + (1 + s | client_id) + (1 | therapist_id)", frame)
    assert not ok and "random slope" in reason
    # crossed clients and therapists are expressed as variance components (see crosscheck tests)
    ok, _ = engine.can_express("y ~ s + (1 | client_id) + (1 | therapist_id)", frame)
    assert ok
    ok, _ = engine.can_express("y ~ s + (1 + s | client_id)", frame)
    assert ok
    with pytest.raises(ValueError, match="cannot fit"):
        engine.fit("y ~ s + (1 + s | client_id) + (1 | therapist_id)", frame)
