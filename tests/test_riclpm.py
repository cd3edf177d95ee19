"""The RI-CLPM check (analysis.models.panel.riclpm) and its panel generator
(analysis.simulate.panel).

- Parity with R's lavaan 0.6.14, live through Rscript (tests/r/fit_lavaan.R): one simulated panel
  (500 clients, 5 waves, symptom-driven dropout, some measurement error so that the model misfits
  and RMSEA/CFI/TLI sit away from their bounds) is fitted with constrained and with free lagged
  paths by both, each with innovation (co)variances free per wave and held equal over waves
  (lavaan equality labels ``iv_a``, ``iv_y``, ``ic_ay``: ``models.riclpm.equal_innovations``).
  lavaan runs ``missing = "ml"``, ``estimator = "ML"`` with standard errors from the observed
  information (``information = "observed"``, ``observed.information = "hessian"``: its default
  under missing = "ml"), which is what fit_riclpm computes. Estimates and SEs agree to 1e-3
  relative (relative to the larger of |estimate| and its SE, so that an estimate near 0 is judged
  on the scale of its uncertainty), standardised estimates (lavaan std.all) to 1e-3 relative or
  1e-4 absolute, fit indices to 1e-3 relative. Measured on this fixture: estimates and SEs within
  1e-4, standardised estimates within 4e-5 absolute, chi-square, CFI, TLI, RMSEA, AIC, BIC within
  1e-7 and SRMR within 3e-5 (lavaan's EM for the saturated moments stops earlier than ours); the
  remaining differences are lavaan's stopping rule (its log-likelihood is 1e-7 below ours). With
  innovations equal over waves: estimates within 4e-6, SEs within 5e-7, SRMR within 5e-6.
  Skipped, with the reason shown, only when Rscript or lavaan is missing; CI sets
  ALLIANCE_REQUIRE_R=1, which turns that skip into a failure.
- Parameter recovery over 20 simulated datasets (Monte Carlo reasoning at the test).
- Input errors, determinism, constrained versus free paths, the derived -> panel round trip, and
  the equivalence of the pattern-wise FIML objective with semopy's own.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.errors import ConfigError, DataError
from analysis.models.panel.riclpm import (
    CONVERGENCE_KEYS,
    FIT_KEYS,
    PATH_COLUMNS,
    PanelIdentificationError,
    fit_riclpm,
    n_free_parameters,
    panel_from_derived,
    riclpm_description,
)
from analysis.simulate.panel import DEFAULT_PATHS, simulate_riclpm
from model_fixtures import simulate_derived
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_lavaan.R"
# PHQ-9-like symptoms and WAI-SR-like alliance: the score units of the service data.
SCALES = {"alliance_scale": (3.9, 0.5), "symptom_scale": (14.0, 4.0)}
CROSS_LAGS = {"cross-lagged alliance -> symptoms": "cl_alliance_to_symptoms",
              "cross-lagged symptoms -> alliance": "cl_symptoms_to_alliance"}


def _lavaan_missing() -> str | None:
    return r_package_missing("lavaan", "r-cran-lavaan")


LAVAAN_MISSING = _lavaan_missing()
needs_lavaan = [pytest.mark.r,
                pytest.mark.skipif(LAVAAN_MISSING is not None, reason=str(LAVAAN_MISSING))]


def _rows(paths: pd.DataFrame, label: str) -> pd.DataFrame:
    return paths[paths["label"] == label]


@pytest.fixture(scope="module")
def standard_panel() -> tuple[pd.DataFrame, dict]:
    return simulate_riclpm(400, 5, seed=11, missing_rate=0.15, missing="mcar", **SCALES)


@pytest.fixture(scope="module")
def standard_fits(standard_panel) -> dict[bool, dict]:
    panel, _ = standard_panel
    return {constrained: fit_riclpm(panel, 5, constrained) for constrained in (True, False)}


# --- parity with lavaan ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lavaan")
    panel, _ = simulate_riclpm(500, 5, seed=20261202, missing_rate=0.12, missing="mar",
                               error_sd=0.35, alliance_trend=0.03, symptom_trend=-0.4,
                               **SCALES)
    data = folder / "panel.csv"
    panel.drop(columns="client_id").to_csv(data, index=False, float_format="%.17g")
    jobs, ours = [], {}
    for job, (constrained, equal) in PARITY_JOBS.items():
        model = folder / f"{job}.lav"
        model.write_text(riclpm_description(5, constrained, equal))
        jobs.append({"id": job, "data": str(data), "model": str(model)})
        ours[job] = fit_riclpm(panel, 5, constrained, equal)
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(folder / "jobs.csv"), str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    theirs = {
        job: {"paths": pd.read_csv(folder / f"{job}_paths.csv", keep_default_na=False,
                                   na_values=["NA"]),
              "fit": pd.read_csv(folder / f"{job}_fit.csv").iloc[0]}
        for job in ours
    }
    return ours, theirs


def _merged(ours: dict, theirs: dict) -> pd.DataFrame:
    lavaan = theirs["paths"].rename(columns={"est": "lavaan_est", "se": "lavaan_se",
                                             "std_all": "lavaan_std"})
    lavaan["rhs"] = lavaan["rhs"].fillna("").astype(str)
    mine = ours["paths"].astype({"lhs": str, "op": str, "rhs": str})
    return mine.merge(lavaan[["lhs", "op", "rhs", "lavaan_est", "lavaan_se", "lavaan_std"]],
                      on=["lhs", "op", "rhs"], how="left", validate="one_to_one")


#: The parity fits: (lagged paths equal over waves, innovation (co)variances equal over waves).
PARITY_JOBS = {"constrained": (True, False), "free": (False, False),
               "constrained_equal_innovations": (True, True),
               "free_equal_innovations": (False, True)}


@pytest.mark.parametrize("job", list(PARITY_JOBS))
class TestLavaanParity:
    pytestmark = needs_lavaan

    def test_both_converge(self, parity, job):
        ours, theirs = parity
        assert bool(theirs[job]["fit"]["converged"])
        assert ours[job]["convergence"]["converged"]
        assert ours[job]["convergence"]["admissible"]

    def test_estimates_and_ses_match(self, parity, job):
        ours, theirs = parity
        merged = _merged(ours[job], theirs[job])
        free = merged[merged["free"]]
        assert free["lavaan_est"].notna().all(), "a free parameter has no lavaan row"
        assert len(free.drop_duplicates("parameter")) == theirs[job]["fit"]["npar"]
        scale = np.maximum(free["lavaan_est"].abs(), free["lavaan_se"])
        assert ((free["estimate"] - free["lavaan_est"]).abs() / scale).max() < 1e-3
        assert ((free["se"] - free["lavaan_se"]).abs() / free["lavaan_se"]).max() < 1e-3
        fixed = merged[~merged["free"]]
        np.testing.assert_allclose(fixed["estimate"], fixed["lavaan_est"], rtol=0, atol=1e-12)

    def test_standardised_estimates_match(self, parity, job):
        ours, theirs = parity
        merged = _merged(ours[job], theirs[job])
        np.testing.assert_allclose(merged["std_estimate"], merged["lavaan_std"],
                                   rtol=1e-3, atol=1e-4)

    def test_fit_indices_match(self, parity, job):
        ours, theirs = parity
        fit, lavaan = ours[job]["fit"], theirs[job]["fit"]
        assert fit["df"] == lavaan["df"] and fit["baseline_df"] == lavaan["baseline_df"]
        assert fit["n_parameters"] == lavaan["npar"] and fit["n_clients"] == lavaan["ntotal"]
        if job == "constrained":  # misfits (measurement error): the formulas are exercised
            assert fit["rmsea"] > 0.01 and fit["cfi"] < 0.999 and fit["tli"] < 0.999
        for ours_key, lavaan_key in [("loglik", "logl"), ("chisq", "chisq"),
                                     ("pvalue", "pvalue"), ("baseline_chisq", "baseline_chisq"),
                                     ("cfi", "cfi"), ("tli", "tli"), ("rmsea", "rmsea"),
                                     ("srmr", "srmr"), ("aic", "aic"), ("bic", "bic")]:
            assert fit[ours_key] == pytest.approx(lavaan[lavaan_key], rel=1e-3), ours_key

    def test_equal_innovations_are_one_parameter_in_both(self, parity, job):
        ours, theirs = parity
        merged = _merged(ours[job], theirs[job])
        innovations = merged[merged["label"].str.startswith("innovation")]
        lavaan_labels = theirs[job]["paths"].set_index(["lhs", "op", "rhs"])["label"]
        labels = [lavaan_labels.get((lhs, "~~", rhs), "") for lhs, rhs in
                  zip(innovations["lhs"], innovations["rhs"])]
        if PARITY_JOBS[job][1]:
            assert innovations["parameter"].nunique() == 3
            assert set(labels) == {"iv_a", "iv_y", "ic_ay"}
            for _, group in innovations.groupby("parameter"):
                assert np.ptp(group["lavaan_est"]) <= 1e-12 * group["lavaan_est"].abs().max()
                assert group["estimate"].nunique() == 1
        else:
            assert innovations["parameter"].nunique() == 3 * (5 - 1)


# --- parameter recovery ------------------------------------------------------------------------

def test_cross_lagged_paths_recovered():
    """20 datasets x 400 clients x 5 waves (10% symptom-driven dropout per wave), true cross-lags
    -0.15 (alliance -> symptoms) and -0.10 (symptoms -> alliance) on the latent scale.

    Monte Carlo reasoning. Coverage: 40 nominal 95% intervals (2 paths x 20 datasets); if the SEs
    are right the number that miss is Binomial(40, 0.05), mean 2, and P(misses >= 6) = 1.4%, so
    "at most 5 miss" fails for a correct fit about once in 70 seeds while SEs too small by a
    third (true coverage ~ 80%) fail it with probability ~ 0.9. Bias: the mean of 20 estimates
    has Monte Carlo SE ~ SE/sqrt(20); |mean - truth| < 3.5 of those fails for an unbiased
    estimator with probability 0.05% and detects a bias of ~ 0.8 SE. The seeds are fixed, so the
    test is deterministic; the reasoning says why these seeds are not a lucky pick.
    """
    estimates = {label: [] for label in CROSS_LAGS}
    ses = {label: [] for label in CROSS_LAGS}
    misses = 0
    for seed in range(1, 21):
        panel, truth = simulate_riclpm(400, 5, seed=seed, missing_rate=0.10, missing="mar",
                                       **SCALES)
        result = fit_riclpm(panel, 5)
        assert result["convergence"]["converged"], seed
        for label, key in CROSS_LAGS.items():
            row = _rows(result["paths"], label).iloc[0]
            true = truth["paths_in_score_units"][key]
            estimates[label].append(row["estimate"])
            ses[label].append(row["se"])
            misses += not (row["ci_lower"] <= true <= row["ci_upper"])
    assert stats.binom.sf(5, 40, 0.05) < 0.015  # the stated false-alarm rate
    assert misses <= 5
    for label, key in CROSS_LAGS.items():
        true = truth["paths_in_score_units"][key]
        monte_carlo_se = np.mean(ses[label]) / np.sqrt(20)
        assert abs(np.mean(estimates[label]) - true) < 3.5 * monte_carlo_se, label
        # The SE matches the spread of the estimates (their SD has ~16% Monte Carlo error).
        assert 0.6 < np.std(estimates[label], ddof=1) / np.mean(ses[label]) < 1.5, label


def test_truth_is_in_score_units():
    _, truth = simulate_riclpm(10, 3, seed=1, **SCALES)
    units = truth["paths_in_score_units"]
    assert units["cl_alliance_to_symptoms"] == pytest.approx(-0.15 * 4.0 / 0.5)
    assert units["cl_symptoms_to_alliance"] == pytest.approx(-0.10 * 0.5 / 4.0)
    assert units["ri_cov"] == pytest.approx(DEFAULT_PATHS["ri_cov"] * 0.5 * 4.0)
    assert units["ar_alliance"] == DEFAULT_PATHS["ar_alliance"]


# --- results: shape, determinism, constrained versus free ---------------------------------------

def test_result_layout(standard_fits):
    result = standard_fits[True]
    assert list(result["paths"].columns) == PATH_COLUMNS
    assert list(result["fit"]) == FIT_KEYS
    assert list(result["convergence"]) == CONVERGENCE_KEYS
    paths = result["paths"]
    assert set(CROSS_LAGS) | {"autoregressive alliance", "autoregressive symptoms",
                              "random intercept covariance", "innovation covariance"} \
        <= set(paths["label"])
    assert paths.loc[~paths["free"], "se"].isna().all()
    assert paths.loc[paths["free"], "se"].gt(0).all()
    assert result["fit"]["n_parameters"] == n_free_parameters(5) == 32
    assert result["fit"]["df"] == 10 * 11 // 2 + 10 - 32
    assert result["convergence"]["converged"] and result["convergence"]["admissible"]
    assert result["convergence"]["max_abs_gradient"] < 1e-8


def test_fit_is_deterministic(standard_panel, standard_fits):
    panel, _ = standard_panel
    again = fit_riclpm(panel.copy(), 5, constrained=True)
    first = standard_fits[True]
    pd.testing.assert_frame_equal(again["paths"], first["paths"], check_exact=True)
    assert again["fit"] == first["fit"]
    assert again["convergence"] == first["convergence"]
    assert again["description"] == first["description"]


def test_constrained_paths_are_one_parameter_free_paths_one_per_wave(standard_fits):
    constrained, free = standard_fits[True], standard_fits[False]
    labels = ["autoregressive alliance", "autoregressive symptoms", *CROSS_LAGS]
    for label in labels:
        rows = _rows(constrained["paths"], label)
        assert list(rows["wave"]) == [2, 3, 4, 5]
        assert rows["parameter"].nunique() == 1
        assert rows["estimate"].nunique() == 1 and rows["se"].nunique() == 1
        rows = _rows(free["paths"], label)
        assert list(rows["wave"]) == [2, 3, 4, 5]
        assert rows["parameter"].nunique() == 4
        assert rows["estimate"].nunique() == 4
    gained = free["fit"]["n_parameters"] - constrained["fit"]["n_parameters"]
    assert gained == 4 * (5 - 2) == constrained["fit"]["df"] - free["fit"]["df"]
    assert free["fit"]["loglik"] >= constrained["fit"]["loglik"] - 1e-9
    assert "ar_a*" in constrained["description"] and "*" not in free["description"].split(
        "# Autoregressive")[1].split("# Wave-1")[0]


def test_description_is_the_hamaker_specification():
    text = riclpm_description(3)
    assert "RIa =~ 1*a1 + 1*a2 + 1*a3" in text and "RIy =~ 1*y1 + 1*y2 + 1*y3" in text
    for statement in ("RIa ~~ 0*wa1", "RIy ~~ 0*wy1", "RIa ~~ RIy", "wa1 ~~ wy1", "wa3 ~~ wy3",
                      "a2 ~~ 0*a2", "wy3 ~ cl_ay*wa2 + ar_y*wy2"):
        assert statement in text.splitlines()


def test_equal_innovations_description_and_parameters():
    text = riclpm_description(4, equal_innovations=True).splitlines()
    # wave 1 is the start, not an innovation: its (co)variances stay free
    assert {"wa1 ~~ wa1", "wy1 ~~ wy1", "wa1 ~~ wy1"} <= set(text)
    for t in (2, 3, 4):
        assert {f"wa{t} ~~ iv_a*wa{t}", f"wy{t} ~~ iv_y*wy{t}", f"wa{t} ~~ ic_ay*wy{t}"} \
            <= set(text)
    assert "iv_a" not in riclpm_description(4)
    for waves in (3, 6, 10):
        for constrained in (True, False):
            assert (n_free_parameters(waves, constrained)
                    - n_free_parameters(waves, constrained, equal_innovations=True)
                    == 3 * (waves - 1) - 3)


def test_equal_innovations_fit(standard_panel):
    panel, _ = standard_panel
    result = fit_riclpm(panel, 5, equal_innovations=True)
    paths = result["paths"]
    innovations = paths[paths["label"].str.startswith("innovation")]
    assert innovations["parameter"].nunique() == 3
    assert list(innovations.loc[innovations["label"] == "innovation variance alliance", "wave"]) \
        == [2, 3, 4, 5]
    assert innovations.groupby("parameter")["estimate"].nunique().eq(1).all()
    # the standardised value of an equal variance still differs by wave (the SDs do)
    assert result["fit"]["n_parameters"] == n_free_parameters(5, True, True) == 23
    assert result["convergence"]["converged"] and result["convergence"]["admissible"]
    assert result["convergence"]["problems"] == []


def test_inadmissible_fit_says_why():
    """A true within-client alliance variance near 0 on 80 clients: the fit converges to a
    negative variance (seed 1, measured), which the result names in words."""
    panel, _ = simulate_riclpm(80, 4, seed=1, innovation_var_alliance=0.01,
                               w1_var_alliance=0.02, innovation_cov=0.0, w1_cov=0.0)
    result = fit_riclpm(panel, 4, constrained=False)
    convergence = result["convergence"]
    assert convergence["converged"] and not convergence["admissible"]
    assert convergence["nonpositive_variances"]
    assert any("estimated at -" in problem and "not above zero" in problem
               for problem in convergence["problems"])


# --- input errors ------------------------------------------------------------------------------

def test_too_few_clients_names_counts_and_the_kind():
    panel, _ = simulate_riclpm(30, 6, seed=3, missing_rate=0.3, **SCALES)
    with pytest.raises(PanelIdentificationError) as error:
        fit_riclpm(panel, 6)
    message = str(error.value)
    assert "30 clients have data" in message and "37 free parameters" in message
    assert re.search(r"\(\d waves: \d+(, \d waves: \d+)*\)", message)
    assert (error.value.kind, error.value.needed, error.value.available) == (
        "too_few_clients", 37, 30)
    assert isinstance(error.value, DataError)
    # the advice (which key would help) is the stage's, worked out from the data
    assert "models." not in message
    # with innovations equal over waves the same data identify the model (25 parameters)
    assert fit_riclpm(panel, 6, equal_innovations=True)["fit"]["n_parameters"] == 25


@pytest.mark.parametrize("waves", [2, 1])
def test_too_few_waves(standard_panel, waves):
    panel, _ = standard_panel
    with pytest.raises(PanelIdentificationError, match="at least 3 waves") as error:
        fit_riclpm(panel, waves)
    assert error.value.kind == "too_few_waves"
    with pytest.raises(DataError, match="at least 3 waves"):
        riclpm_description(waves)


def test_column_without_variance_is_named(standard_panel):
    panel = standard_panel[0].copy()
    panel.loc[panel["a3"].notna(), "a3"] = 4.0
    with pytest.raises(DataError, match=r"column 'a3' \(alliance_score at wave 3\).*no "
                                        r"variance"):
        fit_riclpm(panel, 5)
    with pytest.raises(DataError, match=r"alliance_score at wave 3 \(session 5\)"):
        fit_riclpm(panel, 5, wave_labels=[f"session {s}" for s in range(3, 8)])


def test_missing_and_non_numeric_columns_are_named(standard_panel):
    panel = standard_panel[0]
    with pytest.raises(DataError, match=r"\['y5'\] are missing"):
        fit_riclpm(panel.drop(columns="y5"), 5)
    with pytest.raises(DataError, match="column 'y2': values are not numbers"):
        fit_riclpm(panel.assign(y2="high"), 5)


def test_wave_never_observed_is_reported():
    panel, _ = simulate_riclpm(100, 4, seed=2, **SCALES)
    panel[["a4", "y4"]] = np.nan
    with pytest.raises(DataError, match=r"column 'a4' .*0 client\(s\) have a value"):
        fit_riclpm(panel, 4)


def test_consecutive_waves_never_both_observed():
    panel, _ = simulate_riclpm(120, 3, seed=2, **SCALES)
    half = panel.index < 60
    panel.loc[half, ["a3", "y3"]] = np.nan
    panel.loc[~half, ["a2", "y2"]] = np.nan
    with pytest.raises(DataError, match="both wave 2 and wave 3") as error:
        fit_riclpm(panel, 3)
    assert (error.value.kind, error.value.wave) == ("no_consecutive", 2)


# --- the panel from the derived frame ----------------------------------------------------------

def test_panel_round_trips_from_the_derived_layout():
    arguments = dict(n_clients=150, waves=5, seed=9, missing_rate=0.3, missing="mar", **SCALES)
    derived, truth = simulate_riclpm(output="derived", **arguments)
    wide, _ = simulate_riclpm(output="wide", **arguments)
    assert list(derived.columns) == ["outcome", "client_id", "therapist_id", "session",
                                     "alliance_score", "symptom_score"]
    panel, counts = panel_from_derived(derived, "phq9", sessions=5)
    assert list(panel.columns[:2]) == ["client_id", "therapist_id"]
    assert panel["therapist_id"].notna().all()
    pd.testing.assert_frame_equal(panel.drop(columns="therapist_id"), wide)
    assert counts["clients"] == counts["clients_with_data"] == 150
    assert sum(counts["clients_by_waves"].values()) == 150
    assert counts["clients_2plus_waves"] == 150 - counts["clients_by_waves"][1]
    assert counts["symptoms_per_wave"][1] == 150
    assert sum(counts["symptoms_per_wave"].values()) == len(derived)
    assert truth["observed_share"] == pytest.approx(len(derived) / (150 * 5))


def test_panel_from_the_pipeline_fixture():
    derived, _ = simulate_derived(60, 6, seed=4, outcomes=("phq9", "gad7"), min_sessions=2,
                                  max_sessions=8)
    panel, counts = panel_from_derived(derived, "gad7", sessions=4)
    gad7 = derived[(derived["outcome"] == "gad7") & (derived["session"] <= 4)]
    assert len(panel) == gad7["client_id"].nunique() == counts["clients_with_data"]
    assert int(panel[["y1", "y2", "y3", "y4"]].notna().sum().sum()) == len(gad7)
    first = gad7.iloc[0]
    row = panel.set_index("client_id").loc[first["client_id"]]
    assert row[f"a{first['session']}"] == first["alliance_score"]
    assert row[f"y{first['session']}"] == first["symptom_score"]


def test_panel_from_sessions_numbered_from_3():
    from analysis.models.panel.waves import choose_waves

    derived, _ = simulate_riclpm(120, 5, seed=6, output="derived", missing_rate=0.2, **SCALES)
    shifted = derived.assign(session=derived["session"] + 2)
    choice = choose_waves(shifted, "phq9", min_share=0.5, max_waves=None, origin="study")
    assert choice.sessions[0] == 3
    panel, counts = panel_from_derived(shifted, "phq9", choice)
    same, _ = panel_from_derived(derived, "phq9", choice.n_waves)
    pd.testing.assert_frame_equal(panel, same)
    assert counts["waves"]["sessions"] == list(choice.sessions)
    # an int counts from the study's first session number too
    by_number, _ = panel_from_derived(shifted, "phq9", 3)
    assert by_number["y1"].notna().sum() == counts["symptoms_per_wave"][1]


def test_panel_from_derived_errors():
    derived, _ = simulate_riclpm(20, 3, seed=1, output="derived")
    with pytest.raises(DataError, match="alliance_score"):
        panel_from_derived(derived.drop(columns="alliance_score"), "phq9")
    with pytest.raises(DataError, match=r"no rows for outcome 'gad7' \(found \['phq9'\]\)"):
        panel_from_derived(derived, "gad7")
    with pytest.raises(DataError, match="share a client and session"):
        panel_from_derived(pd.concat([derived, derived.iloc[[0]]], ignore_index=True), "phq9")
    with pytest.raises(ConfigError, match="models.riclpm.sessions"):
        panel_from_derived(derived, "phq9", sessions=0)


# --- the FIML objective ------------------------------------------------------------------------

def test_pattern_objective_equals_semopys_fiml():
    """The sufficient-statistic objective and gradient are semopy's ``obj_fiml``/``grad_fiml``
    divided by N, at the starting values and at the optimum (PHQ-9-scaled scores; semopy's own
    objective returns inf whenever the -2 log-likelihood kernel is negative, e.g. for scores
    with SDs near 0.5, so both variables are on that scale here)."""
    import semopy

    from analysis.models.panel import fiml, riclpm

    panel, _ = simulate_riclpm(80, 3, seed=2, missing_rate=0.2, alliance_scale=(14.0, 4.0),
                               symptom_scale=(14.0, 4.0))
    data, names = riclpm._checked_data(panel, 3, True)
    model = semopy.ModelMeans(riclpm_description(3))
    order = list(model.vars["observed"])
    data = data[:, [names.index(name) for name in order]]
    model.load(pd.DataFrame(data, columns=order))
    model.prepare_fiml()
    objective = fiml.FimlObjective(model, fiml.pattern_statistics(data))
    start = riclpm._starting_values(model, data)
    for theta in (start, fiml.minimise(objective, start).theta):
        assert objective.value(theta) == pytest.approx(model.obj_fiml(theta) / 80, rel=1e-12)
        np.testing.assert_allclose(objective.gradient(theta), model.grad_fiml(theta) / 80,
                                   rtol=1e-9, atol=1e-12)
