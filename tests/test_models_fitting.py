"""One planned fit: row selection, the job by kind (M0-M3, M4, R1-R3) and standardised estimates.

The convergence protocol and the engine cross-check have their own tests
(tests/test_models_protocol.py, tests/test_models_crosscheck.py); here a job records what the
protocol did.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats

from analysis.errors import ConfigError, DataError
from analysis.instruments import registry_from_params
from analysis.models.descriptive.early import early_alliance_rows
from analysis.models.mixed.fitting import fit_planned_model, select_model_rows
from analysis.models.mixed.specs import ResolvedFit
from analysis.models.mixed.standardise import standardised_estimates
from model_fixtures import (
    episodes_from_derived,
    make_study,
    replicate_caseload,
    simulate_administrations,
    simulate_derived,
)

# Every model and sensitivity analysis switched on, for PHQ-9 and GAD-7 with the WAI-SR.
STUDY = make_study()


def planned(outcome: str, model: str, analysis: str = "primary") -> ResolvedFit:
    """The study's planned fit, as the fit job gets it (its params round-tripped)."""
    return ResolvedFit.from_dict(STUDY.fit_settings(outcome, model, analysis)["fit"])


def job(derived, outcome, model, analysis="primary", **inputs):
    """Run one fit job as workflow/scripts/fit_model.py does: the fit and the instruments it reads
    come from the study's params for the job."""
    settings = STUDY.fit_settings(outcome, model, analysis)
    return fit_planned_model(derived, ResolvedFit.from_dict(settings["fit"]),
                             registry_from_params(settings["instruments"]), **inputs)


@pytest.fixture(scope="module")
def derived():
    frame, _ = simulate_derived(100, 10, seed=7, outcomes=("phq9", "gad7"))
    return frame


# ---------------------------------------------------------------------------------------------
# Row selection


def test_rows_with_missing_model_variables_are_dropped_and_counted(derived):
    frame = derived.copy()
    phq9 = frame.index[frame["outcome"] == "phq9"]
    frame.loc[phq9[:5], "alliance_within"] = np.nan  # 5 rows, some also lack symptom_next
    resolved = planned("phq9", "M2")
    rows, accounting = select_model_rows(frame, resolved)
    n_outcome = len(phq9)
    lacking = frame.loc[phq9, ["symptom_next", "alliance_within"]].isna().any(axis=1).sum()
    assert accounting["n_rows_outcome"] == n_outcome
    assert accounting["n_rows_missing"] == lacking
    assert accounting["missing_by_variable"]["alliance_within"] == 5
    assert accounting["n_obs"] == len(rows) == n_outcome - lacking
    assert not rows.isna().any().any()
    assert "therapist_id" in rows and "client_id" in rows


def test_completers_keep_clients_with_enough_sessions(derived):
    resolved = planned("gad7", "M0", "completers")
    rows, accounting = select_model_rows(derived, resolved)
    gad7 = derived.loc[derived["outcome"] == "gad7"]
    assert accounting["n_rows_not_completers"] == int((gad7["n_sessions"] < 8).sum())
    kept = set(rows["client_id"])
    assert kept == set(gad7.loc[gad7["n_sessions"] >= 8, "client_id"])


def test_no_rows_left_is_a_data_error(derived):
    frame = derived.assign(symptom_next=np.nan)
    resolved = planned("phq9", "M2")
    with pytest.raises(DataError, match="no rows for outcome 'phq9'.*symptom_next"):
        select_model_rows(frame, resolved)


def test_custom_formula_with_an_unknown_column_names_the_config_key(derived):
    study = make_study(
        custom=[{"id": "Mx", "formula": "symptom_next ~ allience + (1 | client_id)"}])
    resolved = study.fit("phq9", "Mx", "primary")
    with pytest.raises(ConfigError, match="models.custom.*'allience'"):
        select_model_rows(derived, resolved)


# ---------------------------------------------------------------------------------------------
# What the job records of the convergence protocol


def test_zero_therapist_variance_drops_the_therapist_term_and_logs_it(caplog):
    one_caseload, _ = simulate_derived(20, 1, seed=3)
    data = replicate_caseload(one_caseload, 5)
    study = make_study(outcomes=("phq9",), run=["M2"])
    with caplog.at_level(logging.INFO, logger="analysis.models"):
        result = fit_planned_model(data, study.fit("phq9", "M2", "primary"))
    fit = result["fit"]
    first, second = fit["attempts"]
    assert first["step"] == "requested" and first["singular"] is True
    assert first["boundary"] == "therapist_id (Intercept): variance 0"
    assert second["step"] == "drop_zero_variance" and second["singular"] is False
    assert fit["fallback_steps"] == ["drop_zero_variance"]
    assert fit["requested_formula"] == study.fit("phq9", "M2", "primary").formula
    assert fit["formula"] == (
        "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
        " + (1 | client_id)"
    )
    assert fit["converged"] is True and fit["singular"] is False
    assert {row["group"] for row in result["random"]} == {"client_id", "Residual"}
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "requested fit is singular" in messages
    assert "drop_zero_variance fit accepted" in messages
    assert "client" not in messages.replace("client_id", "")  # no identifier values logged
    json.dumps(result, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Standardised estimates


def test_standardised_estimates_use_sds_of_the_model_rows():
    # client a has three sessions, client b one
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0, 7.0], "alliance_within": [-1.0, 0.0, 0.5, 0.5],
                         "session": [1, 2, 3, 4], "client_id": ["a", "a", "a", "b"],
                         "alliance_between_c": [0.5, 0.5, 0.5, -0.5]})
    fixed = pd.DataFrame({"term": ["(Intercept)", "alliance_within", "session",
                                   "alliance_within:session", "alliance_between_c"],
                          "estimate": [3.0, -2.0, 0.5, 1.0, -1.0]})
    std = standardised_estimates(fixed, data, "y")
    sd_y = np.std([1, 2, 4, 7], ddof=1)
    assert np.isnan(std.iloc[0])
    assert std.iloc[1] == pytest.approx(-2.0 * np.std([-1, 0, 0.5, 0.5], ddof=1) / sd_y)
    assert std.iloc[2] == pytest.approx(0.5 * np.std([1, 2, 3, 4], ddof=1) / sd_y)
    assert std.iloc[3] == pytest.approx(np.std([-1, 0, 1.5, 2], ddof=1) / sd_y)
    # a between-client term has one value per client: its SD is over clients (0.5 and -0.5),
    # not over session rows, where client a would count three times
    assert std.iloc[4] == pytest.approx(-1.0 * np.std([0.5, -0.5], ddof=1) / sd_y)
    assert std.iloc[4] != pytest.approx(-1.0 * np.std([0.5, 0.5, 0.5, -0.5], ddof=1) / sd_y)


# ---------------------------------------------------------------------------------------------
# The job, by kind


def test_m2_result_is_json_ready_and_complete(derived):
    result = job(derived, "phq9", "M2")
    json.dumps(result, allow_nan=False)
    assert set(result) >= {"outcome", "model", "analysis", "spec", "data", "fixed", "random",
                           "fit"}
    terms = [row["term"] for row in result["fixed"]]
    assert terms == ["(Intercept)", "symptom_score", "alliance_within", "alliance_between_c",
                     "session"]
    within = result["fixed"][2]
    assert within["ci_low"] < within["estimate"] < within["ci_high"]
    assert within["std_estimate"] < 0
    assert result["fit"]["fallback_steps"] == []
    assert result["fit"]["n_clients"] == 100 and result["fit"]["n_therapists"] == 10
    # the conventional model: its alliance terms are secondary tests (the primary is DPM's)
    assert result["spec"]["primary_term"] is None
    assert "alliance_within" in result["spec"]["tested_terms"]


def test_ml_analysis_fits_by_maximum_likelihood(derived):
    reml = job(derived, "phq9", "M2")
    ml = job(derived, "phq9", "M2", "ml")
    assert ml["fit"]["reml"] is False and ml["fit"]["reml_criterion"] is None
    assert ml["fit"]["loglik"] > reml["fit"]["loglik"]  # ML maximises the full likelihood


def test_m4_clustered_ols_uses_therapist_clusters(derived):
    episodes = episodes_from_derived(derived)
    result = job(derived, "phq9", "M4", episodes=episodes)
    fixed = pd.DataFrame(result["fixed"]).set_index("term")
    rows, _ = early_alliance_rows(derived, episodes, "phq9")
    design = np.column_stack([np.ones(len(rows)), rows["first_score"], rows["alliance_early"]])
    beta = np.linalg.lstsq(design, rows["change"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(fixed["estimate"].to_numpy(), beta, rtol=1e-8)
    assert (fixed["df"] == 9).all()  # 10 therapists - 1
    early = fixed.loc["alliance_early"]
    assert early["p"] == pytest.approx(2 * stats.t.sf(abs(early["t"]), 9), rel=1e-8)
    assert result["early_alliance"][0]["n_episodes"] == len(rows)


def test_rm_corr_reproduces_pingouins_bundled_example():
    data = pingouin.read_dataset("rm_corr").rename(
        columns={"Subject": "client_id", "pH": "alliance_score", "PacO2": "symptom_score"})
    data["client_id"] = data["client_id"].astype(str)
    data["outcome"] = "phq9"
    data["session"] = data.groupby("client_id").cumcount() + 1
    result = job(data, "phq9", "R1")
    row = result["rm_corr"][0]
    assert row["method"] == "same_session"
    assert row["r"] == pytest.approx(-0.507, abs=1e-3)
    assert row["dof"] == 38
    assert row["ci_low"] < row["r"] < row["ci_high"]
    # PHQ-9 is higher = worse, the WAI-SR higher = better: the benchmark is r = -.278
    assert row["meta_r"] == -0.278 and row["expected_sign"] == -1
    assert row["meta_ci_low"] == -0.299 and row["meta_ci_high"] == -0.256
    assert row["sign_as_expected"] is True


def test_reliability_is_cronbachs_alpha_at_the_first_complete_administration():
    administrations = simulate_administrations(n_clients=120, seed=5)
    result = job(pd.DataFrame(columns=["outcome"]), "phq9", "R2",
                 administrations=administrations)
    row = result["reliability"][0]
    phq9 = administrations.loc[administrations["instrument"] == "phq9"]
    items = [f"item_{k}" for k in range(1, 10)]
    complete = phq9.dropna(subset=items).sort_values(["client_id", "session"])
    first = complete.drop_duplicates("client_id")[items].to_numpy()
    k = first.shape[1]
    alpha = k / (k - 1) * (1 - first.var(axis=0, ddof=1).sum() / first.sum(axis=1).var(ddof=1))
    assert row["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert row["n"] == len(first) and row["n_items"] == 9
    assert row["ci_low"] < row["alpha"] < row["ci_high"]


def test_therapist_icc_is_the_therapist_share_of_variance(derived):
    result = job(derived, "phq9", "R3")
    random = pd.DataFrame(result["random"]).set_index("group")["variance"]
    icc = result["icc"][0]
    total = random["therapist_id"] + random["client_id"] + random["Residual"]
    assert icc["icc_therapist"] == pytest.approx(random["therapist_id"] / total)
    assert icc["icc_client"] == pytest.approx(random["client_id"] / total)
    assert 0 < icc["icc_therapist"] < 1


def test_missing_columns_are_named_with_their_file(derived):
    with pytest.raises(DataError, match=r"derived.parquet: column\(s\) alliance_score"):
        job(derived.drop(columns="alliance_score"), "phq9", "R1")
    episodes = episodes_from_derived(derived).drop(columns="change")
    with pytest.raises(DataError, match=r"episodes.parquet: column\(s\) change needed by model M4"):
        job(derived, "phq9", "M4", episodes=episodes)
    with pytest.raises(DataError, match=r"column\(s\) alliance_within_detrended"):
        job(derived.drop(columns="alliance_within_detrended"), "phq9", "M2", "detrended")


# ---------------------------------------------------------------------------------------------
# The dynamic panel models (primary) and designs without therapists


def test_dpm_job_reports_the_lagged_alliance_as_the_primary_test(derived):
    result = job(derived, "phq9", "DPM")
    json.dumps(result, allow_nan=False)
    terms = [row["term"] for row in result["fixed"]]
    assert terms == ["alliance_lagged", "symptom_lagged"]
    lagged = result["fixed"][0]
    assert lagged["ci_low"] < lagged["estimate"] < lagged["ci_high"]
    # robust SEs: t with the sandwich's degrees of freedom (Pan & Wall), below the clusters' count
    assert 2 < lagged["df"] < result["fit"]["n_clients"]
    assert result["spec"]["primary_term"] == "alliance_lagged"
    info = result["fit"]
    assert info["status"] == "fitted" and info["converged"] is True
    assert info["n_waves"] >= 3 and "sessions" in info["waves"]
    # 10 therapists: fewer than the threshold for cluster-robust SEs, so each client is a cluster
    assert info["se_type"] == "robust (sandwich, clients as clusters)"
    plain = fit_dpm_plain(derived)
    assert lagged["se"] != pytest.approx(plain["lagged"]["se"], rel=1e-3)
    assert lagged["se"] == pytest.approx(plain["lagged"]["se_robust"], rel=1e-9)
    assert lagged["df"] == pytest.approx(plain["lagged"]["df_robust"], rel=1e-9)


def fit_dpm_plain(derived):
    """The engine on the job's panel, with robust SEs by client computed beside the plain ones."""
    from analysis.models.panel.dpm import fit_dpm
    from analysis.models.panel.dpm_stage import _identified_waves
    from analysis.models.panel.waves import choose_waves, wide_panel

    fit = planned("phq9", "DPM")
    rows = derived[derived["outcome"] == "phq9"]
    choice = _identified_waves(rows, fit, choose_waves(rows, "phq9", **dict(fit.panel)))
    panel, _ = wide_panel(rows, "phq9", choice)
    return fit_dpm(panel, int(choice.n_waves), cluster=None, robust_by_client=True)


def test_dpm_reverse_swaps_the_roles(derived):
    result = job(derived, "phq9", "DPM-reverse")
    assert [row["term"] for row in result["fixed"]] == ["symptom_lagged", "alliance_lagged"]
    assert result["fit"]["formula"].startswith("alliance[t] ~ alliance[t-1] + symptoms[t-1]")


def test_dpm_free_paths_is_the_mean_over_waves(derived):
    equal = job(derived, "phq9", "DPM")
    free = job(derived, "phq9", "DPM", "free_paths")
    assert "free per wave" in free["fit"]["formula"]
    assert free["fixed"][0]["estimate"] != equal["fixed"][0]["estimate"]


def test_dpm_too_few_clients_is_not_estimated_not_an_error(derived):
    few = derived[derived["client_id"].isin(sorted(derived["client_id"].unique())[:4])]
    result = job(few, "phq9", "DPM")
    assert result["fixed"] == []
    assert result["fit"]["status"] == "not_identified" and result["fit"]["reason"]


@pytest.mark.parametrize("therapists", ["none", "one", "three"])
def test_designs_with_too_few_therapists_drop_the_term_by_design(derived, therapists):
    frame = derived.copy()
    if therapists == "none":
        frame["therapist_id"] = pd.NA
    elif therapists == "one":
        frame["therapist_id"] = "t1"
    else:
        frame["therapist_id"] = "t" + (frame["client_id"].astype(str).str[-1:]
                                       .map(lambda c: str(ord(c) % 3)))
    result = job(frame, "phq9", "M2")
    assert "therapist_id" not in result["fit"]["formula"]
    assert result["fit"]["fallback_steps"] == []  # by design, not a fallback step
    assert result["fit"]["design"].startswith("no therapist term: the data have")
    assert result["fit"]["n_clients"] == 100  # no client lost for a missing therapist id
    icc = job(frame, "phq9", "R3")
    assert icc["fit"]["status"] == "not_estimated" and "therapist" in icc["fit"]["reason"]
    assert "icc" not in icc
    episodes = episodes_from_derived(frame)
    early = job(frame, "phq9", "M4", episodes=episodes)
    assert "client" in early["fit"]["engine"] and early["fit"]["design"]
