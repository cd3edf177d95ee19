"""The dynamic panel model (analysis.models.panel.dpm): parity with lavaan, the published wage
example, recovery when symptoms act on the same session's alliance, and input errors.

- Parity with R's lavaan 0.6.14, live through Rscript (tests/r/fit_dpm_lavaan.R), on simulated
  panels: balanced; unbalanced with dropout and intermittent missing waves; free per-wave paths
  with equal error variances; dpm's exact model (no same-wave feedback covariances); and one
  with a therapist column for the cluster-robust SEs. lavaan runs ``sem(model, data, missing =
  "ml", information = "observed")`` (the settings passed to dpm for this analysis; every
  predictor is random, ov.x empty). Estimates and SEs agree to 1e-3 relative (relative to the
  larger of |estimate| and its SE, as in tests/test_riclpm.py), std.all to 1e-4 absolute, fit
  indices to 1e-3 relative. Measured: estimates within 2e-6, SEs within 1e-6, std.all within
  1e-6; robust SEs equal lavaan's ``estimator = "MLR", cluster = "therapist"`` (which includes
  the factor G / (G - 1)) and the sandwich of lavScores summed by cluster to 1e-6.
- The published example (Allison, Williams & Moral-Benito 2017; dpm's own test): plm's Wages,
  ``wks ~ pre(lag(union)) + lag(lwage) | ed``, equal error variances, observed information:
  chi-square 138.48 on 76 df, and every estimate and SE equal to lavaan's fit of the same syntax.
- Skipped, with the reason shown, only when Rscript, lavaan or plm is missing; CI sets
  ALLIANCE_REQUIRE_R=1, which turns that skip into a failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import ConfigError, DataError
from analysis.models.panel import dpm
from analysis.models.panel.dpm import (
    CONVERGENCE_KEYS,
    FIT_KEYS,
    LAGGED_KEYS,
    MIN_CLUSTERS_FOR_ROBUST,
    PATH_COLUMNS,
    dpm_description,
    fit_dpm,
    n_free_parameters,
)
from conftest import r_package_missing

R_DIR = Path(__file__).parent / "r"
LAVAAN_MISSING = r_package_missing("lavaan", "r-cran-lavaan")
PLM_MISSING = r_package_missing("plm", "r-cran-plm")
needs_lavaan = [pytest.mark.r,
                pytest.mark.skipif(LAVAAN_MISSING is not None, reason=str(LAVAAN_MISSING))]
WAGES = dict(outcome="wks", predetermined=("union",), exogenous=("lwage",), invariant=("ed",),
             equal_errors=True, contemporaneous_feedback=False)


def simulate_panel(n: int, waves: int, seed: int, *, c: float = -0.8, b: float = 0.35,
                   same_session: float = 0.0, feedback: float = -0.02, dropout: float = 0.0,
                   intermittent: float = 0.0, therapists: int | None = None) -> pd.DataFrame:
    """A wide alliance (a1..aK, WAI-like) and symptom (y1..yK, PHQ-like) panel, generated
    forwards in time (not from any fitted model): y_t = 9 - 0.3 t + b y_{t-1} + c a_{t-1} +
    eta_y + therapist + e_t; a_t = 2 + 0.4 a_{t-1} + feedback y_{t-1} + same_session y_t +
    eta_a + u_t, with correlated stable client levels eta_y, eta_a. ``dropout``: geometric
    last session; ``intermittent``: each later score missing independently."""
    rng = np.random.default_rng(seed)
    eta_y = rng.normal(0, 2.0, n)
    eta_a = rng.normal(0, 0.175, n) - 0.05 * eta_y
    therapist = rng.integers(0, therapists, n) if therapists else np.zeros(n, dtype=int)
    shift = rng.normal(0, 1.0, therapists)[therapist] if therapists else 0.0
    y = np.empty((n, waves))
    a = np.empty((n, waves))
    y[:, 0] = 14 + 1.5 * eta_y + rng.normal(0, 3, n) + shift
    a[:, 0] = 3.9 + eta_a + same_session * y[:, 0] + rng.normal(0, 0.3, n)
    for t in range(1, waves):
        y[:, t] = (9 - 0.3 * t + b * y[:, t - 1] + c * a[:, t - 1] + eta_y + shift
                   + rng.normal(0, 2.5, n))
        a[:, t] = (2.0 + 0.4 * a[:, t - 1] + feedback * y[:, t - 1] + same_session * y[:, t]
                   + eta_a + rng.normal(0, 0.3, n))
    if dropout:
        last = np.minimum(rng.geometric(dropout, n), waves)
        gone = np.arange(waves)[None, :] >= last[:, None]
        y[gone] = np.nan
        a[gone] = np.nan
    if intermittent:
        gap = rng.random((n, waves)) < intermittent
        gap[:, 0] = False
        y[gap] = np.nan
        a[rng.random((n, waves)) < intermittent] = np.nan
    panel = pd.DataFrame({"client_id": [f"c{i:05d}" for i in range(n)]})
    for t in range(waves):
        panel[f"a{t + 1}"] = a[:, t]
    for t in range(waves):
        panel[f"y{t + 1}"] = y[:, t]
    if therapists:
        panel["therapist"] = [f"t{k:03d}" for k in therapist]
    return panel


@pytest.fixture(scope="module")
def small_panel() -> pd.DataFrame:
    return simulate_panel(300, 5, seed=5, dropout=0.1, intermittent=0.05)


@pytest.fixture(scope="module")
def small_fit(small_panel) -> dict:
    return fit_dpm(small_panel, 5)


# --- parity with lavaan ------------------------------------------------------------------------

PARITY = {
    "balanced": (dict(n=400, waves=5, seed=1), {}, None),
    "unbalanced": (dict(n=600, waves=6, seed=2, dropout=0.12, intermittent=0.1,
                        same_session=-0.04), {}, None),
    "free_equal_errors": (dict(n=500, waves=5, seed=3, dropout=0.08),
                          dict(equal_paths=False, equal_errors=True), None),
    "dpm_exact": (dict(n=500, waves=6, seed=6, dropout=0.1, intermittent=0.05),
                  dict(contemporaneous_feedback=False), None),
    "cluster": (dict(n=600, waves=5, seed=4, dropout=0.1, intermittent=0.05, therapists=40),
                {}, "therapist"),
    # the pipeline's SEs with fewer than 20 therapists: every client its own cluster (lavaan:
    # MLR with cluster = a client number)
    "client_robust": (dict(n=300, waves=5, seed=7, dropout=0.1, intermittent=0.05),
                      {}, "client_number"),
}


def _run_lavaan(folder: Path, jobs: list[dict]) -> dict:
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_DIR / "fit_dpm_lavaan.R"), str(folder / "jobs.csv"),
                          str(folder)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return {job["id"]: {"paths": pd.read_csv(folder / f"{job['id']}_paths.csv",
                                             keep_default_na=False, na_values=["NA"]),
                        "fit": pd.read_csv(folder / f"{job['id']}_fit.csv").iloc[0]}
            for job in jobs}


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dpm_lavaan")
    jobs, ours = [], {}
    for name, (simulation, options, cluster) in PARITY.items():
        panel = simulate_panel(**simulation)
        waves = simulation["waves"]
        by_client = cluster == "client_number"
        if by_client:
            panel["client_number"] = np.arange(1, len(panel) + 1)
        data = folder / f"{name}.csv"
        panel.drop(columns="client_id").to_csv(data, index=False, float_format="%.17g")
        model = folder / f"{name}.lav"
        model.write_text(dpm_description(waves, **options))
        jobs.append({"id": name, "data": str(data), "model": str(model),
                     "cluster": cluster or "", "missing": "ml"})
        ours[name] = (fit_dpm(panel, waves, robust_by_client=True, **options) if by_client
                      else fit_dpm(panel, waves, cluster=cluster, **options))
    return ours, _run_lavaan(folder, jobs)


def _merged(ours: dict, theirs: dict) -> pd.DataFrame:
    lavaan = theirs["paths"]
    lavaan = lavaan[lavaan["op"] != "=="].copy()
    lavaan["rhs"] = lavaan["rhs"].fillna("").astype(str)
    mine = ours["paths"].astype({"lhs": str, "op": str, "rhs": str}).copy()
    # A covariance is one row whichever side lavaan lists first.
    for frame in (mine, lavaan):
        swap = (frame["op"] == "~~") & (frame["lhs"] > frame["rhs"])
        frame.loc[swap, ["lhs", "rhs"]] = frame.loc[swap, ["rhs", "lhs"]].to_numpy()
    extra = [c for c in ("se_mlr", "se_scores") if c in lavaan]
    lavaan = lavaan.rename(columns={"est": "lavaan_est", "se": "lavaan_se",
                                    "std_all": "lavaan_std"})
    return mine.merge(lavaan[["lhs", "op", "rhs", "lavaan_est", "lavaan_se", "lavaan_std",
                              *extra]],
                      on=["lhs", "op", "rhs"], how="left", validate="one_to_one")


def _assert_equal(ours: dict, theirs: dict) -> pd.DataFrame:
    merged = _merged(ours, theirs)
    assert merged["lavaan_est"].notna().all(), "a row has no lavaan counterpart"
    assert len(merged) == len(theirs["paths"][theirs["paths"]["op"] != "=="])
    free = merged[merged["free"]]
    assert free["parameter"].nunique() == theirs["fit"]["npar"] == ours["fit"]["n_parameters"]
    scale = np.maximum(free["lavaan_est"].abs(), free["lavaan_se"])
    assert ((free["estimate"] - free["lavaan_est"]).abs() / scale).max() < 1e-3
    assert ((free["se"] - free["lavaan_se"]).abs() / free["lavaan_se"]).max() < 1e-3
    np.testing.assert_allclose(merged["std_estimate"], merged["lavaan_std"], rtol=0, atol=1e-4)
    fixed = merged[~merged["free"]]
    np.testing.assert_allclose(fixed["estimate"], fixed["lavaan_est"], rtol=0, atol=1e-12)
    return merged


@pytest.mark.parametrize("job", list(PARITY))
class TestLavaanParity:
    pytestmark = needs_lavaan

    def test_estimates_ses_and_fit_match(self, parity, job):
        ours, theirs = parity
        assert bool(theirs[job]["fit"]["converged"]) and ours[job]["convergence"]["converged"]
        _assert_equal(ours[job], theirs[job])
        fit, lavaan = ours[job]["fit"], theirs[job]["fit"]
        assert fit["df"] == lavaan["df"] and fit["n_clients"] == lavaan["ntotal"]
        for mine, key in [("loglik", "logl"), ("chisq", "chisq"), ("cfi", "cfi"),
                          ("tli", "tli"), ("rmsea", "rmsea"), ("srmr", "srmr"), ("aic", "aic"),
                          ("bic", "bic"), ("baseline_chisq", "baseline_chisq")]:
            assert fit[mine] == pytest.approx(lavaan[key], rel=1e-3, abs=1e-6), mine


@pytest.mark.r
@pytest.mark.skipif(LAVAAN_MISSING is not None, reason=str(LAVAAN_MISSING))
def test_cluster_robust_ses_match_lavaan_mlr(parity):
    ours, theirs = parity
    merged = _merged(ours["cluster"], theirs["cluster"])
    free = merged[merged["free"]]
    # lavaan's MLR with cluster = "therapist" (missing = "ml"; observed information as bread).
    assert ((free["se_robust"] - free["se_mlr"]).abs() / free["se_mlr"]).max() < 1e-3
    # The independent sandwich from lavScores, without lavaan's G / (G - 1).
    groups = theirs["cluster"]["fit"]["nclusters"]
    plain = free["se_robust"] * np.sqrt((groups - 1) / groups)
    assert ((plain - free["se_scores"]).abs() / free["se_scores"]).max() < 1e-3
    lagged = ours["cluster"]["lagged"]
    assert lagged["n_clusters"] == groups == 40 and lagged["robust"]
    row = free[free["label"] == "cross-lagged a -> y"].iloc[0]
    assert lagged["se_robust"] == pytest.approx(row["se_mlr"], rel=1e-3)


@pytest.mark.r
@pytest.mark.skipif(LAVAAN_MISSING is not None, reason=str(LAVAAN_MISSING))
def test_robust_ses_by_client_match_lavaan_mlr(parity):
    ours, theirs = parity
    free = _merged(ours["client_robust"], theirs["client_robust"])
    free = free[free["free"]]
    # lavaan's MLR (robust.huber.white, one row per client) has no N / (N - 1); ours has it, as
    # with therapist clusters
    n = theirs["client_robust"]["fit"]["nclusters"]
    plain = free["se_robust"] * np.sqrt((n - 1) / n)
    assert ((plain - free["se_mlr"]).abs() / free["se_mlr"]).max() < 1e-3
    assert ((plain - free["se_scores"]).abs() / free["se_scores"]).max() < 1e-3
    lagged = ours["client_robust"]["lagged"]
    assert lagged["robust"] and lagged["n_clusters"] == n == 300
    row = free[free["label"] == "cross-lagged a -> y"].iloc[0]
    assert lagged["se_robust"] * np.sqrt((n - 1) / n) == pytest.approx(row["se_mlr"], rel=1e-3)
    # the sandwich differs from the observed information (else the check proves nothing)
    assert lagged["se_robust"] != pytest.approx(lagged["se"], rel=1e-2)


# --- the published example --------------------------------------------------------------------

@pytest.fixture(scope="module")
def wages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wages")
    data = folder / "wages.csv"
    run = subprocess.run(["Rscript", str(R_DIR / "wages_dpm.R"), str(data)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    panel = pd.read_csv(data)
    model = folder / "wages.lav"
    model.write_text(dpm_description(7, **WAGES))
    theirs = _run_lavaan(folder, [{"id": "wages", "data": str(data), "model": str(model),
                                   "cluster": "", "missing": "listwise"}])
    return panel, fit_dpm(panel, 7, **WAGES), theirs["wages"]


@pytest.mark.r
@pytest.mark.skipif((LAVAAN_MISSING or PLM_MISSING) is not None,
                    reason=str(LAVAAN_MISSING or PLM_MISSING))
def test_wage_example_chi_square_and_estimates(wages):
    panel, ours, theirs = wages
    assert panel.shape == (595, 1 + 1 + 3 * 7)
    fit = ours["fit"]
    assert round(fit["chisq"], 2) == 138.48 and fit["df"] == 76
    assert fit["n_clients"] == 595 and fit["n_parameters"] == 154
    _assert_equal(ours, theirs)
    # The paper's Table (xtdpdml): union -1.206, lagged lwage .588, ed -.107, lagged wks .188.
    assert ours["lagged"]["estimate"] == pytest.approx(-1.206, abs=5e-4)
    assert ours["autoregressive"]["estimate"] == pytest.approx(0.188, abs=5e-4)


# --- the model text ----------------------------------------------------------------------------

def test_description_is_dpms_model():
    text = dpm_description(7, **WAGES).splitlines()
    for line in ("wks2 ~ en1*union1 + ex1*lwage1 + c1*ed + p1*wks1",
                 "alpha =~ 1*wks2 + 1*wks3 + 1*wks4 + 1*wks5 + 1*wks6 + 1*wks7",
                 "wks2 ~~ union3 + union4 + union5 + union6", "wks5 ~~ union6",
                 "wks7 ~~ v*wks7", "wks7 ~ 1", "wks1 ~~ ed"):
        assert line in text
    alpha = next(line for line in text if line.startswith("alpha ~~"))
    assert "ed" not in alpha.split() and "wks1" in alpha.split() and "union6" in alpha
    assert not any("union7" in line or "lwage7" in line for line in text)
    assert not any(line.startswith("wks6 ~~ union") for line in text)


def test_same_wave_feedback_adds_one_covariance_per_inner_wave():
    default = dpm_description(5).splitlines()
    exact = dpm_description(5, contemporaneous_feedback=False).splitlines()
    assert "y2 ~~ a2 + a3 + a4" in default and "y4 ~~ a4" in default
    assert "y2 ~~ a3 + a4" in exact and not any(line.startswith("y4 ~~ a") for line in exact)
    assert n_free_parameters(5) - n_free_parameters(5, contemporaneous_feedback=False) == 3
    free = dpm_description(4, equal_paths=False).splitlines()
    assert "y3 ~ en1_3*a2 + p1_3*y2" in free


def test_result_layout(small_fit):
    result = small_fit
    assert list(result["paths"].columns) == PATH_COLUMNS
    assert list(result["fit"]) == FIT_KEYS
    assert list(result["convergence"]) == CONVERGENCE_KEYS
    assert set(LAGGED_KEYS) <= set(result["lagged"])
    assert {"estimate", "se", "p", "se_robust", "p_robust"} <= set(result["autoregressive"])
    assert result["convergence"]["converged"] and result["convergence"]["admissible"]
    paths = result["paths"]
    assert paths.loc[paths["free"], "se"].gt(0).all() and paths.loc[~paths["free"], "se"].isna().all()
    assert result["fit"]["n_parameters"] == n_free_parameters(5)
    # 9 observed columns (y1..y5, a1..a4: a5 would predict a sixth wave): 45 + 9 moments.
    assert result["fit"]["df"] == 9 * 10 // 2 + 9 - n_free_parameters(5)
    rows = paths[paths["label"] == "cross-lagged a -> y"]
    assert list(rows["wave"]) == [2, 3, 4, 5] and rows["parameter"].nunique() == 1
    assert result["lagged"]["estimate"] == pytest.approx(rows["estimate"].iloc[0])
    assert result["lagged"]["std_estimate"] == pytest.approx(rows["std_estimate"].mean())
    assert not result["lagged"]["robust"] and result["lagged"]["n_clusters"] is None


def test_fit_is_deterministic(small_panel, small_fit):
    again = fit_dpm(small_panel.copy(), 5)
    pd.testing.assert_frame_equal(again["paths"], small_fit["paths"], check_exact=True)
    for key in ("fit", "convergence", "description"):
        assert again[key] == small_fit[key]
    for key in ("lagged", "autoregressive"):  # NaN robust entries: compared as Series
        pd.testing.assert_series_equal(pd.Series(again[key]), pd.Series(small_fit[key]))


def test_free_paths_report_the_mean_over_waves():
    panel = simulate_panel(400, 5, seed=8, dropout=0.05)
    result = fit_dpm(panel, 5, equal_paths=False)
    rows = result["paths"][result["paths"]["label"] == "cross-lagged a -> y"]
    assert rows["parameter"].nunique() == 4
    assert result["lagged"]["estimate"] == pytest.approx(rows["estimate"].mean())
    assert "mean over waves 2-5" in result["lagged"]["std_estimate_kind"]
    assert "mean over waves" in result["lagged"]["estimate_kind"]
    assert result["lagged"]["se"] < rows["se"].mean()


def test_scores_are_the_gradient_per_client(small_panel):
    """The per-client scores (the sandwich's meat) sum to the FIML gradient of the
    log-likelihood: -N/2 times the gradient of the per-client objective, away from the optimum."""
    from analysis.models.panel.fiml import pattern_statistics
    from analysis.models.panel.ram import RamObjective

    model = dpm._model(5, "y", ("a",), (), (), True, False, True)
    data, _ = dpm._checked_data(small_panel, 5, "y", ("a",), (), (), model, None)
    objective = RamObjective(model, pattern_statistics(data))
    theta = dpm._starting_values(model, data, 5, "y")
    scores = model.casewise_scores(theta, data, chunk=70)
    np.testing.assert_allclose(scores.sum(axis=0), -0.5 * len(data) * objective.gradient(theta),
                               rtol=1e-8, atol=1e-8)


def test_robust_ses_need_enough_clusters():
    panel = simulate_panel(400, 4, seed=9, therapists=8)
    result = fit_dpm(panel, 4, cluster="therapist")
    assert result["lagged"]["n_clusters"] == 8 and not result["lagged"]["robust"]
    assert np.isfinite(result["lagged"]["se_robust"])
    assert {"se_robust", "p_robust"} <= set(result["paths"].columns)
    assert fit_dpm(panel, 4, cluster="therapist", min_clusters=5)["lagged"]["robust"]
    assert MIN_CLUSTERS_FOR_ROBUST == 20


def test_reverse_model_runs(small_panel):
    result = fit_dpm(small_panel, 5, outcome="a", predetermined=("y",))
    assert result["convergence"]["converged"]
    assert result["lagged"]["predictor"] == "y" and result["lagged"]["outcome"] == "a"
    assert "a3 ~ en1*y2 + p1*a2" in result["description"]


# --- recovery ----------------------------------------------------------------------------------

def test_no_bias_when_symptoms_lower_same_session_alliance():
    """3,000 clients, 6 sessions, true c = -0.8, symptoms lowering the same session's alliance
    by 0.04 points per point. The default model covers c (within 3 SE: an unbiased estimator
    fails this with probability 0.3%); dpm's exact model, which forbids that feedback, is pushed
    far off (measured +0.69 with 20,000 clients), and its chi-square rejects it."""
    panel = simulate_panel(3000, 6, seed=12, same_session=-0.04, dropout=0.05)
    result = fit_dpm(panel, 6)
    lagged = result["lagged"]
    assert abs(lagged["estimate"] + 0.8) < 3 * lagged["se"]
    assert result["fit"]["pvalue"] > 0.001
    exact = fit_dpm(panel, 6, contemporaneous_feedback=False)
    assert abs(exact["lagged"]["estimate"] + 0.8) > 6 * exact["lagged"]["se"]
    assert exact["fit"]["pvalue"] < 1e-6


# --- input errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("waves", [2, 1, 2.5])
def test_too_few_waves(small_panel, waves):
    with pytest.raises(DataError, match="at least 3 waves"):
        fit_dpm(small_panel, waves)
    with pytest.raises(DataError, match="at least 3 waves"):
        dpm_description(waves)


def test_too_few_clients_names_counts_and_the_fix():
    panel = simulate_panel(30, 6, seed=3)
    with pytest.raises(DataError) as error:
        fit_dpm(panel, 6)
    message = str(error.value)
    assert "30 clients" in message and f"{n_free_parameters(6)} free parameters" in message
    assert "fewer waves" in message


def test_constant_and_missing_columns_are_named(small_panel):
    constant = small_panel.copy()
    constant.loc[constant["a3"].notna(), "a3"] = 4.0
    with pytest.raises(DataError, match=r"column 'a3': all \d+ values are equal \(no variance\)"):
        fit_dpm(constant, 5)
    with pytest.raises(DataError, match=r"\['y5'\] are missing"):
        fit_dpm(small_panel.drop(columns="y5"), 5)
    with pytest.raises(DataError, match="column 'y2': values are not numbers"):
        fit_dpm(small_panel.assign(y2="high"), 5)
    with pytest.raises(DataError, match=r"\['therapist'\] are missing"):
        fit_dpm(small_panel, 5, cluster="therapist")


def test_missing_cluster_ids_and_bad_arguments(small_panel):
    panel = small_panel.assign(therapist=["t1", None] * (len(small_panel) // 2))
    with pytest.raises(DataError, match="no cluster"):
        fit_dpm(panel, 5, cluster="therapist")
    with pytest.raises(ConfigError, match="list of column names"):
        fit_dpm(small_panel, 5, predetermined="a")
    with pytest.raises(ConfigError, match="must all be different"):
        fit_dpm(small_panel, 5, outcome="a", predetermined=("a",))
    with pytest.raises(ConfigError, match="min_clusters"):
        fit_dpm(small_panel, 5, min_clusters=1)


def test_outcome_waves_never_observed_together():
    panel = simulate_panel(200, 4, seed=2)
    half = panel.index < 100
    panel.loc[half, "y3"] = np.nan
    panel.loc[~half, "y2"] = np.nan
    with pytest.raises(DataError, match="both wave 2 and wave 3"):
        fit_dpm(panel, 4)


def test_robust_df_by_hand():
    """Pan & Wall's degrees of freedom of the sandwich: 2 V^2 / var(V), var(V) from the spread of
    the clusters' squared contributions u_g^2 (u_g = w' A^-1 s_g), at most G - 1."""
    u = np.array([0.5] * 90 + [3.0] * 10)
    scores = np.column_stack([u, np.linspace(-1, 1, 100)])  # the second parameter has weight 0
    squares = u ** 2
    spread = 100 / 99 * np.sum((squares - squares.mean()) ** 2)
    expected = 2 * squares.sum() ** 2 / spread
    assert expected == pytest.approx(36.37, abs=0.01)
    got = dpm.robust_df(np.array([0.5, 0.0]), 2 * np.eye(2), scores)
    assert got == pytest.approx(expected, rel=1e-12)
    # equal contributions: no spread, the cap G - 1; no clusters: NaN
    assert dpm.robust_df(np.array([1.0]), np.eye(1), np.ones((30, 1))) == 29
    assert np.isnan(dpm.robust_df(np.array([1.0]), np.eye(1), None))


def test_robust_wald_test_refers_to_t_with_the_sandwich_df(small_panel):
    """The stage's row of the lagged path: t(df_robust) p value and interval, wider than the
    normal-reference values of the engine (which equal lavaan's)."""
    from scipy import stats

    from analysis.models.panel.dpm_stage import fixed_row

    lagged = fit_dpm(small_panel, 5, robust_by_client=True)["lagged"]
    assert lagged["robust"] and 2 < lagged["df_robust"] <= lagged["n_clusters"] - 1
    row = fixed_row("alliance_lagged", lagged, robust=True)
    df, se = lagged["df_robust"], lagged["se_robust"]
    assert row["df"] == df and row["se"] == se
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(lagged["estimate"] / se), df))
    assert row["p"] > lagged["p_robust"]
    assert row["ci_high"] - row["ci_low"] == pytest.approx(2 * stats.t.ppf(0.975, df) * se)
    assert row["ci_high"] - row["ci_low"] > lagged["ci_robust_upper"] - lagged["ci_robust_lower"]
    # observed information: the normal reference, no df
    plain = fixed_row("alliance_lagged", lagged, robust=False)
    assert plain["df"] is None and plain["p"] == lagged["p"]
