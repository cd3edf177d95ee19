"""R1 in closed form: equal to pingouin.rm_corr, the time-adjusted version equal to an explicit
OLS, order invariance, memory at 50,000 clients, and the R1 job's rows and accounting."""

from __future__ import annotations

import doctest
import time
import tracemalloc

import numpy as np
import pandas as pd
import pingouin
import pytest
import statsmodels.api as sm

from analysis.errors import DataError
from analysis.models.descriptive import correlation
from analysis.models.descriptive.correlation import (
    repeated_measures_correlation,
    rm_corr,
    rm_corr_time_adjusted,
)
from model_fixtures import simulate_derived

TOLERANCE = 1e-10

pytestmark = [
    # pingouin 0.7.0 calls DataFrame.rename(inplace=True), deprecated in pandas 3.1.
    pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename"),
    # The OLS reference keeps subjects with one observation on purpose (rank-deficient design).
    pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient"),
]


def pingouin_value(table: pd.DataFrame, *names: str):
    """A value of pingouin's one-row table under whichever spelling this version uses.

    pingouin 0.7.0 writes ``pval`` and ``CI95`` for rm_corr; other versions use ``p_val``.
    """
    for name in names:
        if name in table.columns:
            return table[name].iloc[0]
    raise KeyError(f"none of {names} in pingouin's columns {list(table.columns)}")


def simulate_long(n_subjects: int, seed: int, min_obs: int = 2, max_obs: int = 9,
                  within: float = -0.4) -> pd.DataFrame:
    """Subjects with their own levels and trends over time and a within-subject association."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_obs, max_obs + 1, size=n_subjects)
    subject = np.repeat(np.arange(n_subjects), sizes)
    session = np.concatenate([np.arange(1, k + 1) for k in sizes]).astype(float)
    level_x, level_y = rng.normal(0, 2, (2, n_subjects))
    trend_x, trend_y = rng.normal(0, 0.3, (2, n_subjects))
    x = level_x[subject] + trend_x[subject] * session + rng.normal(0, 1, len(subject))
    y = (level_y[subject] + trend_y[subject] * session + within * x
         + rng.normal(0, 1, len(subject)))
    return pd.DataFrame({"subject": [f"s{k:03d}" for k in subject], "session": session,
                         "x": x, "y": y})


def to_derived(frame: pd.DataFrame, outcome: str = "phq9") -> pd.DataFrame:
    return pd.DataFrame({
        "outcome": outcome,
        "client_id": frame["subject"].astype("string"),
        "session": frame["session"].astype("int64"),
        "alliance_score": frame["x"],
        "symptom_score": frame["y"],
    })


def assert_same_as_pingouin(result: dict, table: pd.DataFrame) -> None:
    r = float(pingouin_value(table, "r"))
    dof = int(pingouin_value(table, "dof"))
    assert result["r"] == pytest.approx(r, abs=TOLERANCE)
    assert result["dof"] == dof
    assert result["p"] == pytest.approx(float(pingouin_value(table, "pval", "p_val")),
                                        abs=TOLERANCE)
    # pingouin reports its interval rounded to 2 decimals; the unrounded one is the same formula.
    unrounded = pingouin.compute_esci(stat=r, nx=dof + 2, eftype="pearson", decimals=15)
    assert result["ci_low"] == pytest.approx(unrounded[0], abs=TOLERANCE)
    assert result["ci_high"] == pytest.approx(unrounded[1], abs=TOLERANCE)
    shown = np.asarray(pingouin_value(table, "CI95", "CI95%", "ci95"), dtype=float)
    np.testing.assert_allclose(np.round([result["ci_low"], result["ci_high"]], 2), shown)


# ---------------------------------------------------------------------------------------------
# Same-session rm_corr against pingouin


def test_pingouins_bundled_example():
    data = pingouin.read_dataset("rm_corr")
    result = rm_corr(data, "pH", "PacO2", "Subject")
    assert result["r"] == pytest.approx(-0.507, abs=5e-4)
    assert result["dof"] == 38
    assert_same_as_pingouin(result, pingouin.rm_corr(data, x="pH", y="PacO2", subject="Subject"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equals_pingouin_on_simulated_data(seed):
    data = simulate_long(25, seed)
    assert_same_as_pingouin(rm_corr(data, "x", "y", "subject"),
                            pingouin.rm_corr(data, x="x", y="y", subject="subject"))


def test_single_observation_subjects_change_neither_r_nor_dof():
    # In pingouin's ANCOVA each such subject adds one row and one dummy: r and dof unchanged.
    data = simulate_long(12, seed=4)
    singles = pd.DataFrame({"subject": ["z1", "z2", "z3"], "session": 1.0,
                            "x": [5.0, -3.0, 0.5], "y": [-2.0, 7.0, 1.0]})
    with_singles = pd.concat([data, singles], ignore_index=True)
    result = rm_corr(with_singles, "x", "y", "subject")
    assert result["n_subjects_dropped"] == 3 and result["n_obs_dropped"] == 3
    assert result["n_subjects"] == 12 and result["n_obs"] == len(data)
    assert_same_as_pingouin(result, pingouin.rm_corr(with_singles, x="x", y="y",
                                                     subject="subject"))


def test_missing_values_are_dropped_listwise_as_pingouin_does():
    data = simulate_long(15, seed=5)
    data.loc[[3, 10, 40], "x"] = np.nan
    data.loc[[11, 41], "y"] = np.nan
    assert_same_as_pingouin(rm_corr(data, "x", "y", "subject"),
                            pingouin.rm_corr(data, x="x", y="y", subject="subject"))


def test_derived_frame_same_session_row_equals_pingouin():
    derived, _ = simulate_derived(60, 6, seed=3)
    row = repeated_measures_correlation(derived, "phq9", expected_sign=-1)["rm_corr"][0]
    assert row["method"] == "same_session"
    table = pingouin.rm_corr(derived.astype({"client_id": str}), x="alliance_score",
                             y="symptom_score", subject="client_id")
    assert_same_as_pingouin(row, table)
    assert row["n"] == 60 and row["n_obs"] == len(derived)


# ---------------------------------------------------------------------------------------------
# Time-adjusted rm_corr against an explicit OLS


def ols_partial_correlation(data: pd.DataFrame) -> dict:
    """``y ~ x + subject + subject:session`` by statsmodels OLS (one intercept and one slope per
    subject), and the partial correlation of x and y from residuals on the same nuisance part."""
    codes, _ = pd.factorize(data["subject"])
    dummies = np.eye(codes.max() + 1)[codes]
    nuisance = np.hstack([dummies, dummies * data[["session"]].to_numpy()])
    full = sm.OLS(data["y"].to_numpy(), np.column_stack([data["x"].to_numpy(), nuisance])).fit()
    resid_x = sm.OLS(data["x"].to_numpy(), nuisance).fit().resid
    resid_y = sm.OLS(data["y"].to_numpy(), nuisance).fit().resid
    t = float(full.tvalues[0])
    return {
        "r": float(np.dot(resid_x, resid_y) / np.sqrt(np.dot(resid_x, resid_x)
                                                       * np.dot(resid_y, resid_y))),
        "r_from_t": t / np.sqrt(t * t + full.df_resid),
        "dof": int(round(full.df_resid)),
        "p": float(full.pvalues[0]),
    }


@pytest.mark.parametrize("seed,min_obs", [(6, 3), (7, 1), (8, 2)])
def test_time_adjusted_equals_ols_with_subject_intercepts_and_slopes(seed, min_obs):
    # min_obs 1 and 2 keep subjects the closed form drops: in the OLS each adds as many rows as
    # coefficients (rank), so r and the residual df are the same with or without them.
    data = simulate_long(20, seed, min_obs=min_obs, max_obs=8)
    result = rm_corr_time_adjusted(data, "x", "y", "subject", "session")
    reference = ols_partial_correlation(data)
    eligible = data.groupby("subject")["subject"].transform("size") >= 3
    assert result["n_obs"] == int(eligible.sum())
    assert result["dof"] == reference["dof"] == result["n_obs"] - 2 * result["n_subjects"] - 1
    assert result["r"] == pytest.approx(reference["r"], abs=TOLERANCE)
    assert result["r"] == pytest.approx(reference["r_from_t"], abs=TOLERANCE)
    assert result["p"] == pytest.approx(reference["p"], abs=TOLERANCE)
    expected_ci = pingouin.compute_esci(stat=reference["r"], nx=reference["dof"] + 2,
                                        eftype="pearson", decimals=15)
    np.testing.assert_allclose([result["ci_low"], result["ci_high"]], expected_ci,
                               atol=TOLERANCE)


def test_time_adjusted_removes_a_shared_trend_the_same_session_version_counts():
    # x and y both follow each subject's time trend and are otherwise independent.
    rng = np.random.default_rng(9)
    sizes = np.full(200, 8)
    subject = np.repeat(np.arange(200), sizes)
    session = np.tile(np.arange(1.0, 9.0), 200)
    trend = rng.normal(0, 1, 200)[subject] * session
    data = pd.DataFrame({"subject": subject, "session": session,
                         "x": trend + rng.normal(0, 1, len(subject)),
                         "y": trend + rng.normal(0, 1, len(subject))})
    assert rm_corr(data, "x", "y", "subject")["r"] > 0.5
    assert abs(rm_corr_time_adjusted(data, "x", "y", "subject", "session")["r"]) < 0.05


def test_time_adjusted_drops_subjects_observed_at_one_time_only():
    data = simulate_long(10, seed=10, min_obs=3)
    flat = pd.DataFrame({"subject": "flat", "session": 2.0, "x": [1.0, 2.0, 4.0],
                         "y": [3.0, 1.0, 0.0]})
    result = rm_corr_time_adjusted(pd.concat([data, flat], ignore_index=True),
                                   "x", "y", "subject", "session")
    assert result == rm_corr_time_adjusted(data, "x", "y", "subject", "session") | {
        "n_subjects_dropped": 1, "n_obs_dropped": 3}


# ---------------------------------------------------------------------------------------------
# Properties of the R1 job


def test_results_do_not_depend_on_row_order_or_client_labels():
    derived = to_derived(simulate_long(40, seed=11, min_obs=1))
    first = repeated_measures_correlation(derived, "phq9", -1)
    shuffled = derived.sample(frac=1.0, random_state=3)
    shuffled["client_id"] = shuffled["client_id"].str.replace("s", "client-", regex=False)
    second = repeated_measures_correlation(shuffled, "phq9", -1)
    assert first["data"] == second["data"]
    for a, b in zip(first["rm_corr"], second["rm_corr"]):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], abs=1e-12)
            else:
                assert a[key] == b[key]


def test_rows_accounting_and_signed_benchmark():
    frame = pd.DataFrame({
        "client_id": ["a"] * 3 + ["b"] * 2 + ["c"] * 4 + ["d"] + ["e"] * 3 + ["f"] * 3,
        "session": [1, 2, 3, 1, 2, 1, 2, 3, 4, 1, 1, 2, 3, 1, 2, 3],
        "x": [3.0, 3.5, 4.1, 2.0, 2.5, 4.0, 4.4, 4.2, 4.9, 3.0, 1.0, 1.8, 2.2, 3.3, 3.1, 3.9],
        "y": [12.0, 10.0, 9.0, 20.0, 17.0, 6.0, 5.0, np.nan, 3.0, 9.0, 22.0, 21.0, 17.0,
              10.0, 11.0, 8.0],
    })
    derived = to_derived(frame.rename(columns={"client_id": "subject"}))
    other = derived.assign(outcome="gad7")
    result = repeated_measures_correlation(pd.concat([derived, other]), "phq9", -1)
    assert result["data"] == {
        "n_rows_outcome": 16, "n_rows_missing": 1, "n_rows_single_session": 1, "n_obs": 14,
        "n_clients": 5, "n_clients_excluded_time_adjusted": 1,
        "n_rows_excluded_time_adjusted": 2, "n_obs_time_adjusted": 12,
    }
    same, adjusted = result["rm_corr"]
    assert [same["method"], adjusted["method"]] == ["same_session", "time_adjusted"]
    assert (same["n"], same["n_obs"], same["dof"]) == (5, 14, 8)
    assert (adjusted["n"], adjusted["n_obs"], adjusted["dof"]) == (4, 12, 3)
    expected_keys = {"outcome", "method", "r", "ci_low", "ci_high", "p", "dof", "n", "n_obs",
                     "expected_sign", "sign_as_expected", "meta_r", "meta_ci_low",
                     "meta_ci_high", "compares"}
    for row in (same, adjusted):
        assert set(row) == expected_keys
        assert row["outcome"] == "phq9" and row["expected_sign"] == -1
        assert (row["meta_r"], row["meta_ci_low"], row["meta_ci_high"]) == (-0.278, -0.299,
                                                                              -0.256)
        assert row["sign_as_expected"] is (row["r"] < 0)
        assert row["ci_low"] < row["r"] < row["ci_high"]
        assert row["compares"] == correlation.COMPARES[row["method"]]
    positive = repeated_measures_correlation(derived, "phq9", 1)["rm_corr"][0]
    assert (positive["meta_r"], positive["meta_ci_low"], positive["meta_ci_high"]) == (
        0.278, 0.256, 0.299)
    assert positive["sign_as_expected"] is (positive["r"] > 0)


def test_fewer_than_three_clients_raise_a_data_error_naming_outcome_and_counts():
    derived = to_derived(simulate_long(2, seed=12, min_obs=4))
    singles = to_derived(pd.DataFrame({"subject": ["z1", "z2"], "session": 1.0,
                                       "x": [1.0, 2.0], "y": [3.0, 4.0]}))
    with pytest.raises(DataError) as raised:
        repeated_measures_correlation(pd.concat([derived, singles]), "phq9", -1,
                                      upstream="Ingest rejected 40 clients (see rejects.csv).")
    message = str(raised.value)
    assert "derived.parquet" in message and "phq9" in message
    assert "only 2 client(s)" in message and "2 from single-session clients" in message
    assert message.endswith("Ingest rejected 40 clients (see rejects.csv).")
    with pytest.raises(DataError, match="gad7"):
        repeated_measures_correlation(derived, "gad7", -1)


def test_time_adjusted_row_is_missing_when_fewer_than_three_clients_have_three_sessions(caplog):
    data = pd.concat([simulate_long(2, seed=13, min_obs=4),
                      simulate_long(5, seed=14, min_obs=2, max_obs=2).assign(
                          subject=lambda f: "t" + f["subject"])], ignore_index=True)
    result = repeated_measures_correlation(to_derived(data), "phq9", -1)
    same, adjusted = result["rm_corr"]
    assert np.isfinite(same["r"]) and same["n"] == 7
    assert np.isnan(adjusted["r"]) and np.isnan(adjusted["p"]) and adjusted["n"] == 2
    assert adjusted["sign_as_expected"] is False
    assert result["data"]["n_clients_excluded_time_adjusted"] == 5
    assert "time-adjusted" in caplog.text


def test_bad_columns_are_named():
    derived = to_derived(simulate_long(5, seed=15))
    with pytest.raises(DataError, match="derived.parquet: column.*session"):
        repeated_measures_correlation(derived.drop(columns="session"), "phq9", -1)
    with pytest.raises(DataError, match="column x must be numeric"):
        rm_corr(pd.DataFrame({"x": ["a"] * 6, "y": 1.0, "s": [1, 1, 2, 2, 3, 3]}), "x", "y", "s")
    constant = pd.DataFrame({"x": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0], "y": [1.0, 2, 3, 4, 5, 7],
                             "s": [1, 1, 2, 2, 3, 3]})
    with pytest.raises(DataError, match="column x does not vary within any s"):
        rm_corr(constant, "x", "y", "s", source="derived.parquet")


def test_docstring_examples_print_what_they_show():
    assert doctest.testmod(correlation).failed == 0


# ---------------------------------------------------------------------------------------------
# Scale


def test_fifty_thousand_clients_in_linear_memory():
    rng = np.random.default_rng(16)
    n_clients = 50_000
    sizes = rng.integers(1, 16, size=n_clients)  # 8 sessions on average
    client = np.repeat(np.arange(n_clients), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    session = np.arange(len(client)) - starts + 1
    alliance = rng.normal(3.9, 0.45, n_clients)[client] + rng.normal(0, 0.35, len(client))
    symptom = (rng.normal(15, 4, n_clients)[client] - 0.3 * session - 1.5 * alliance
               + rng.normal(0, 2.2, len(client)))
    ids = np.array([f"c{k:06d}" for k in range(n_clients)], dtype=object)
    derived = pd.DataFrame({
        "outcome": pd.array(np.full(len(client), "phq9", dtype=object), dtype="string"),
        "client_id": pd.array(ids[client], dtype="string"),
        "session": session.astype("int64"),
        "alliance_score": alliance,
        "symptom_score": symptom,
    })
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = repeated_measures_correlation(derived, "phq9", -1)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nR1 on {n_clients} clients / {len(derived)} rows: {seconds:.2f} s, "
          f"peak traced memory {peak / 2**20:.0f} MiB")
    assert peak < 2**30
    same, adjusted = result["rm_corr"]
    assert same["n"] == int((sizes >= 2).sum()) and adjusted["n"] == int((sizes >= 3).sum())
    assert same["dof"] == same["n_obs"] - same["n"] - 1
    assert adjusted["dof"] == adjusted["n_obs"] - 2 * adjusted["n"] - 1
    assert same["r"] < 0 and adjusted["r"] < 0
