"""The engine cross-check: statsmodels on crossed and nested designs, conditional SEs, named flags.

A crossed fixture (30% of clients switch therapist half-way, so clients and therapists are
crossed and the 10 caseloads merge into 2 connected blocks) is fitted with M2's formula by
statsmodels, by the primary engine and by lme4 (through ``tests/r/fit_lmer.R``): the estimates
must agree to 1e-3 relative.
A healthy nested M2 fit must raise no flag once SEs are compared like with like (conditional on
the variance estimates in both engines), although statsmodels' joint-Hessian SEs differ from
lme4's by far more than the tolerance.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.models.mixed import engines
from analysis.models.mixed.crosscheck import SE_COMPARISON, compare_fixed_effects, cross_check_fit
from analysis.models.mixed.engines import (
    MixedlmEngine,
    StatsmodelsEngine,
    conditional_standard_errors,
    independent_blocks,
    largest_block_levels,
)
from model_fixtures import simulate_derived
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_lmer.R"
M2 = ("symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
      " + (1 | client_id) + (1 | therapist_id)")
TOLERANCE = 1e-3


def simulate_crossed(n_clients: int = 80, n_therapists: int = 10, seed: int = 5,
                     share_switching: float = 0.3) -> pd.DataFrame:
    """M2 model rows where some clients change therapist half-way (crossed design).

    ``Y_next = 6 + 0.5 Y - 1.5 A_w - 2 A_b_c - 0.15 session + u_client + v_therapist + e`` with
    SDs 1.2 (client), 1.0 (therapist) and 2.2 (residual); the therapist of a row is the one
    seen at the next session, whose score is the outcome. 3-10 sessions per client.
    """
    rng = np.random.default_rng(seed)
    n_sessions = rng.integers(3, 11, n_clients)
    first = np.arange(n_clients) % n_therapists
    second = (first + rng.integers(1, n_therapists, n_clients)) % n_therapists
    switches = rng.random(n_clients) < share_switching
    client = np.repeat(np.arange(n_clients), n_sessions)
    session = np.concatenate([np.arange(1, k + 1) for k in n_sessions])
    later = session > np.repeat(n_sessions // 2, n_sessions)
    therapist = np.where(switches[client] & later, second[client], first[client])
    alliance = rng.normal(3.9, 0.45, n_clients)[client] + rng.normal(0, 0.35, len(client))
    client_mean = pd.Series(alliance).groupby(client).transform("mean").to_numpy()
    within = alliance - client_mean
    between = client_mean - pd.Series(alliance).groupby(client).mean().mean()
    u, v = rng.normal(0, 1.2, n_clients), rng.normal(0, 1.0, n_therapists)
    symptom = rng.normal(15, 4, len(client))
    starts = np.flatnonzero(session == 1)
    for k in range(1, int(n_sessions.max())):
        now = starts[n_sessions > k] + k - 1
        symptom[now + 1] = (6 + 0.5 * symptom[now] - 1.5 * within[now] - 2 * between[now]
                            - 0.15 * k + u[client[now]] + v[therapist[now + 1]]
                            + rng.normal(0, 2.2, len(now)))
    has_next = np.append(client[1:] == client[:-1], False)
    rows = np.flatnonzero(has_next)
    return pd.DataFrame({
        "client_id": [f"c{index:04d}" for index in client[rows]],
        "therapist_id": [f"t{index:03d}" for index in therapist[rows + 1]],
        "session": session[rows],
        "symptom_score": symptom[rows],
        "alliance_within": within[rows],
        "alliance_between_c": between[rows],
        "symptom_next": symptom[rows + 1],
    })


def primary_result(rows: pd.DataFrame, formula: str = M2) -> dict:
    """The parts of a fit result the cross-check reads, from the primary engine."""
    fit = MixedlmEngine().fit(formula, rows)
    return {"outcome": "phq9", "model": "M2", "analysis": "primary",
            "fixed": fit.fixed.to_dict(orient="records"),
            "fit": {"formula": fit.formula, "n_clients": fit.info["n_clients"]}}


@pytest.fixture(scope="module")
def crossed():
    return simulate_crossed()


@pytest.fixture(scope="module")
def crossed_fits(crossed):
    return MixedlmEngine().fit(M2, crossed), StatsmodelsEngine().fit(M2, crossed)


@pytest.fixture(scope="module")
def nested():
    derived, _ = simulate_derived(100, 10, seed=7)
    return derived.dropna(subset=["symptom_next"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# The statsmodels engine on crossed and nested designs


def test_crossed_fixture_is_crossed(crossed):
    switching = crossed.groupby("client_id")["therapist_id"].nunique() > 1
    assert switching.sum() >= 10
    blocks = independent_blocks(crossed, ["client_id", "therapist_id"])
    # switching clients tie the therapists' caseloads together (2 blocks instead of 10)
    assert len(np.unique(blocks)) == 2


def test_independent_blocks_are_caseloads_when_nested_and_merge_when_crossed():
    frame = pd.DataFrame({"client_id": ["a", "a", "b", "c", "d", "d"],
                          "therapist_id": ["t", "t", "t", "u", "v", "v"]})
    assert list(independent_blocks(frame, ["client_id", "therapist_id"])) == [0, 0, 0, 1, 2, 2]
    frame.loc[5, "therapist_id"] = "u"  # client d now sees u as well: u and v join
    assert list(independent_blocks(frame, ["client_id", "therapist_id"])) == [0, 0, 0, 1, 1, 1]
    assert list(independent_blocks(frame, ["client_id"])) == [0, 0, 1, 2, 3, 3]


def test_statsmodels_expresses_crossed_and_uncorrelated_designs(crossed):
    engine = StatsmodelsEngine()
    assert engine.can_express(M2, crossed) == (True, "")
    uncorrelated = ("symptom_next ~ session + (1 | client_id) + (0 + session | client_id)"
                    " + (1 | therapist_id)")
    assert engine.can_express(uncorrelated, crossed) == (True, "")
    ok, reason = engine.can_express(
        "symptom_next ~ session + (1 + session | client_id) + (1 | therapist_id)", crossed)
    assert not ok and "random slope" in reason


def test_crossed_fit_agrees_with_the_primary_engine(crossed_fits):
    primary, other = crossed_fits
    merged = compare_fixed_effects(primary.fixed, other.fixed)
    assert list(merged["term"]) == list(primary.fixed["term"])
    assert merged["rel_diff"].max() < TOLERANCE
    assert merged["rel_se_diff"].max() < TOLERANCE
    assert not primary.info["singular"] and other.info["converged"]
    assert other.info["independent_blocks"] == 2
    variances_a = primary.random.set_index("group")["variance"]
    variances_b = other.random.set_index("group")["variance"]
    np.testing.assert_allclose(variances_b[variances_a.index], variances_a, rtol=5e-3)


def test_nested_fit_uses_one_block_per_therapist(nested):
    other = StatsmodelsEngine().fit(M2, nested)
    assert other.info["independent_blocks"] == nested["therapist_id"].nunique()
    primary = MixedlmEngine().fit(M2, nested)
    merged = compare_fixed_effects(primary.fixed, other.fixed)
    assert merged["rel_diff"].max() < TOLERANCE and merged["rel_se_diff"].max() < TOLERANCE


def test_sparse_and_dense_blocks_give_the_same_fit(crossed, crossed_fits, monkeypatch):
    monkeypatch.setattr(engines, "SPARSE_COLUMNS", 0)
    sparse_fit = StatsmodelsEngine().fit(M2, crossed)
    dense_fit = crossed_fits[1]
    np.testing.assert_allclose(sparse_fit.fixed["estimate"], dense_fit.fixed["estimate"],
                               rtol=1e-6)
    np.testing.assert_allclose(sparse_fit.fixed["se"], dense_fit.fixed["se"], rtol=1e-6)


def test_conditional_standard_errors_are_those_of_the_marginal_covariance():
    import statsmodels.formula.api as smf

    data = simulate_crossed(n_clients=25, n_therapists=4, seed=9)
    design = smf.ols("symptom_next ~ symptom_score + session", data)
    labels = independent_blocks(data, ["client_id", "therapist_id"])
    terms = engines.parse_random_part(M2)[2]
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = MixedLM(design.endog, design.exog, groups=labels,
                    exog_vc=engines._variance_components(data, terms, labels))
    result = model.fit(reml=True)
    # V = sigma^2 I + var_client ZcZc' + var_therapist ZtZt', built in full
    client = pd.get_dummies(data["client_id"]).to_numpy(float)
    therapist = pd.get_dummies(data["therapist_id"]).to_numpy(float)
    var_client, var_therapist = np.asarray(result.vcomp)
    marginal = (result.scale * np.eye(len(data)) + var_client * client @ client.T
                + var_therapist * therapist @ therapist.T)
    x = design.exog
    expected = np.sqrt(np.diag(np.linalg.inv(x.T @ np.linalg.solve(marginal, x))))
    np.testing.assert_allclose(conditional_standard_errors(model, result), expected, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# cross_check_fit


def test_a_healthy_m2_fit_raises_no_flag(nested):
    check = cross_check_fit(nested, primary_result(nested), reml=True, tolerance=TOLERANCE,
                            max_clients=5000)
    json.dumps(check, allow_nan=False)
    assert check["expressible"] is True and check["n_terms"] == 5
    assert check["flag"] is False and check["se_flag"] is False
    assert check["max_rel_se_diff"] < TOLERANCE
    assert check["flag_term"] in {row["term"] for row in check["terms"]}
    assert check["se_flag_term"] in {row["term"] for row in check["terms"]}
    assert check["se_comparison"] == SE_COMPARISON
    # the joint-Hessian SEs, listed beside, would have flagged this healthy fit
    terms = pd.DataFrame(check["terms"]).set_index("term")
    joint = ((terms["se_joint"] - terms["se_a"]).abs() / terms["se_a"]).max()
    assert joint > 0.05


def test_flags_name_the_term_behind_them(nested):
    result = primary_result(nested)
    for row in result["fixed"]:
        if row["term"] == "alliance_within":
            row["estimate"] *= 1.01
        if row["term"] == "session":
            row["se"] *= 1.02
    check = cross_check_fit(nested, result, reml=True, tolerance=TOLERANCE, max_clients=5000)
    assert check["flag"] is True and check["flag_term"] == "alliance_within"
    assert check["se_flag"] is True and check["se_flag_term"] == "session"
    assert check["max_rel_se_diff"] == pytest.approx(0.02 / 1.02, rel=1e-2)


def test_crossed_design_is_cross_checked(crossed):
    check = cross_check_fit(crossed, primary_result(crossed), reml=True, tolerance=TOLERANCE,
                            max_clients=5000)
    assert check["expressible"] is True and check["reason"] == ""
    assert check["flag"] is False and check["se_flag"] is False


def test_models_over_the_cap_or_not_expressible_say_why(nested):
    check = cross_check_fit(nested, primary_result(nested), reml=True, tolerance=TOLERANCE,
                            max_clients=50)
    assert "exceed models.cross_check_max_clients (50)" in check["reason"]
    assert check["max_rel_diff"] is None and check["flag_term"] is None
    m1 = ("symptom_score ~ session + alliance_within + (1 + session | client_id)"
          " + (1 | therapist_id)")
    check = cross_check_fit(nested, primary_result(nested, m1), reml=True, tolerance=TOLERANCE,
                            max_clients=5000)
    assert check["expressible"] is False and "random slope" in check["reason"]
    json.dumps(check, allow_nan=False)


def test_a_crossed_block_too_large_for_statsmodels_is_skipped_with_its_size(crossed):
    assert largest_block_levels(M2, crossed) == 66 + 8  # the larger block: clients, therapists
    check = cross_check_fit(crossed, primary_result(crossed), reml=True, tolerance=TOLERANCE,
                            max_clients=5000, max_block_levels=50)
    assert check["expressible"] is True and check["max_rel_diff"] is None
    assert check["reason"].startswith("the largest independent block has 74 random-effect")


def test_a_failing_second_engine_is_reported_not_raised(nested, monkeypatch):
    class Failing(StatsmodelsEngine):
        def fit(self, formula, data, reml=True):
            raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr("analysis.models.mixed.crosscheck.get_engine", lambda name: Failing())
    check = cross_check_fit(nested, primary_result(nested), reml=True, tolerance=TOLERANCE,
                            max_clients=5000)
    assert check["expressible"] is True and check["flag"] is False
    assert check["reason"] == "statsmodels could not fit the model: Singular matrix"


def test_the_uncorrelated_end_point_of_the_protocol_is_cross_checked(nested):
    formula = ("symptom_score ~ session + alliance_within + (1 | client_id)"
               " + (0 + session | client_id) + (1 | therapist_id)")
    check = cross_check_fit(nested, primary_result(nested, formula), reml=True,
                            tolerance=TOLERANCE, max_clients=5000)
    assert check["expressible"] is True
    assert check["max_rel_diff"] < TOLERANCE and check["max_rel_se_diff"] < TOLERANCE


# ---------------------------------------------------------------------------------------------
# lme4 on the crossed fixture


def _lmertest_missing() -> str | None:
    return r_package_missing("lmerTest", "r-cran-lmertest")


LMERTEST_MISSING = _lmertest_missing()


@pytest.mark.r
@pytest.mark.skipif(LMERTEST_MISSING is not None, reason=str(LMERTEST_MISSING))
def test_crossed_statsmodels_fit_agrees_with_lme4(crossed, crossed_fits, tmp_path):
    crossed.to_csv(tmp_path / "crossed.csv", index=False, float_format="%.17g")
    pd.DataFrame([{"id": "crossed", "data": str(tmp_path / "crossed.csv"), "formula": M2,
                   "reml": "TRUE"}]).to_csv(tmp_path / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(tmp_path / "jobs.csv"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    reference = pd.read_csv(tmp_path / "crossed_fixed.csv").set_index("term")
    other = crossed_fits[1].fixed.set_index("term")
    assert list(other.index) == list(reference.index)
    np.testing.assert_allclose(other["estimate"], reference["estimate"], rtol=1e-3,
                               atol=1e-3 * reference["se"].min())
    # conditional SEs, as lme4 computes them
    np.testing.assert_allclose(other["se"], reference["se"], rtol=1e-3)
    random = pd.read_csv(tmp_path / "crossed_random.csv").set_index("grp")["vcov"]
    variances = crossed_fits[1].random.set_index("group")["variance"]
    np.testing.assert_allclose(variances[random.index], random, rtol=5e-3)
    assert not bool(pd.read_csv(tmp_path / "crossed_fit.csv")["singular"].iloc[0])
