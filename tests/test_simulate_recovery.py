"""Parameter recovery that can fail (analysis.simulate.recovery, analysis.simulate.dynamic).

The quick version of ``make validate``: a seeded run of the scenario in which symptoms lower the
same session's alliance and the alliance has no true effect. The conventional M2 (person-mean
centred alliance over all sessions) must show its bias there, clearly beyond Monte Carlo error,
and the primary dynamic panel model must not. Then the generator (reproducible, the scenarios
differ where they should) and the gate (it passes an honest table and names what fails in a
biased, overconfident, over-rejecting or unfinished one).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import recovery
from analysis.simulate import dynamic

N_QUICK = 24
QUICK_SIZE = {"n_clients": 150, "n_therapists": 15, "min_sessions": 4, "max_sessions": 8}


@pytest.fixture(scope="module")
def settings():
    return recovery.recovery_settings(recovery._shipped_study())


@pytest.fixture(scope="module")
def quick_run(settings):
    # CPU seconds of this process (about 25 s): on a shared machine the wall time can be
    # several times longer without the work being any bigger
    start = time.process_time()
    replicates = recovery.recovery_replicates(N_QUICK, first_seed=101,
                                              scenario="b_same_session_null", settings=settings,
                                              **QUICK_SIZE)
    return replicates, time.process_time() - start


def test_m2_is_biased_where_symptoms_lower_the_alliance_and_the_primary_is_not(quick_run):
    replicates, seconds = quick_run
    summary = recovery.summarise_recovery(replicates).set_index("estimator")
    assert set(summary.index) == {"DPM", "M2"}
    assert (summary["n_datasets"] == N_QUICK).all()
    assert summary.loc["DPM", "share_converged"] >= 0.9
    m2, dpm = summary.loc["M2"], summary.loc["DPM"]
    assert m2["truth"] == dpm["truth"] == 0.0
    # M2: the mean estimate far from the true 0, and a rejection rate far above 5%
    assert m2["mean_estimate"] > 3 * m2["bias_mcse"], m2
    assert m2["mean_estimate"] > 1.0
    assert m2["rejection_rate"] > 0.5
    # the primary: within 3 Monte Carlo SEs of 0 and an interval that covers it
    assert abs(dpm["mean_estimate"]) < 3 * dpm["bias_mcse"], dpm
    assert dpm["coverage"] >= 0.8
    assert seconds < 90, seconds


def test_replicate_rows_hold_what_the_table_needs(quick_run):
    replicates, _ = quick_run
    assert list(replicates.columns) == recovery.REPLICATE_COLUMNS
    assert len(replicates) == 2 * N_QUICK
    dpm = replicates[replicates["estimator"] == "DPM"]
    assert dpm["n_waves"].between(3, 8).all()
    fitted = replicates[replicates["converged"]]
    inside = (fitted["ci_low"] < fitted["estimate"]) & (fitted["estimate"] < fitted["ci_high"])
    assert inside.all()
    assert (fitted["rejected"] == (fitted["p"] < 0.05)).all()


# ---------------------------------------------------------------------------------------------
# The generator


def _within(frame: pd.DataFrame, column: str) -> pd.Series:
    """Deviation from the client's mean and then from the session's mean (removes stable parts
    and population trends), for checking the generator only."""
    value = frame[column] - frame.groupby("client_id")[column].transform("mean")
    return value - value.groupby(frame["session"]).transform("mean")


def test_generator_is_reproducible_and_seeded():
    first, truth = dynamic.simulate_dynamic("b_same_session_effect", 7)
    again, _ = dynamic.simulate_dynamic("b_same_session_effect", 7)
    other, _ = dynamic.simulate_dynamic("b_same_session_effect", 8)
    pd.testing.assert_frame_equal(first, again)
    assert not first["symptom_score"].equals(other["symptom_score"])
    assert truth["effect"] == dynamic.REALISTIC_EFFECT
    assert dynamic.simulate_dynamic("b_same_session_null", 7)[1]["effect"] == 0.0
    # clients nested in therapists, 4-12 sessions, session 1 always scored
    assert first.groupby("client_id")["therapist_id"].nunique().eq(1).all()
    sessions = first.groupby("client_id")["session"]
    assert sessions.min().eq(1).all() and sessions.max().between(4, 12).all()
    assert first["client_id"].nunique() == 150 and first["therapist_id"].nunique() == 15
    # intermittent gaps exist, and dropout: not everyone reaches session 12
    assert (sessions.count() < sessions.max()).any()
    assert (sessions.max() < 12).mean() > 0.3


def test_null_and_effect_versions_share_their_random_numbers():
    null, _ = dynamic.simulate_dynamic("a_no_reverse_null", 3)
    effect, _ = dynamic.simulate_dynamic("a_no_reverse_effect", 3)
    first = [frame[frame["session"] == 1].set_index("client_id") for frame in (null, effect)]
    pd.testing.assert_series_equal(first[0]["symptom_score"], first[1]["symptom_score"])
    pd.testing.assert_series_equal(first[0]["alliance_score"], first[1]["alliance_score"])


def test_scenarios_differ_where_they_should():
    big = {"n_clients": 3000, "n_therapists": 60}
    same_session = {}
    for name in ("a_no_reverse_null", "b_same_session_null", "c_lagged_reverse_null"):
        frame, _ = dynamic.simulate_dynamic(name, 11, **big)
        a, y = _within(frame, "alliance_score"), _within(frame, "symptom_score")
        same_session[name] = float(np.corrcoef(a, y)[0, 1])
        # next session's alliance against this session's symptoms
        nxt = frame.assign(a=a, y=y).sort_values(["client_id", "session"])
        nxt["a_next"] = nxt.groupby("client_id")["a"].shift(-1)
        consecutive = nxt.groupby("client_id")["session"].shift(-1) == nxt["session"] + 1
        pairs = nxt[consecutive]
        same_session[name + "_lag"] = float(np.corrcoef(pairs["y"], pairs["a_next"])[0, 1])
    # (a): no reverse path, no effect: alliance and symptoms unrelated within clients (up to
    # the population trends that client and session centring leave when clients drop out)
    assert abs(same_session["a_no_reverse_null"]) < 0.06
    # (b): symptoms lower the same session's alliance
    assert same_session["b_same_session_null"] < -0.2
    # (c): symptoms at t lower the alliance at t + 1, more than at t
    assert same_session["c_lagged_reverse_null_lag"] < -0.15
    assert same_session["c_lagged_reverse_null_lag"] < same_session["c_lagged_reverse_null"]
    assert abs(same_session["a_no_reverse_null_lag"]) < 0.06


def test_trends_and_measurement_error():
    def slope_variance(frame, column):
        # variance over clients of each client's OLS slope on session (6+ sessions)
        long = frame.groupby("client_id").filter(lambda g: len(g) >= 6)
        slopes = long.groupby("client_id").apply(
            lambda g: np.polyfit(g["session"], g[column], 1)[0], include_groups=False)
        return float(slopes.var())

    plain, _ = dynamic.simulate_dynamic("b_same_session_null", 5, n_clients=2000)
    trends, _ = dynamic.simulate_dynamic("d_trends_null", 5, n_clients=2000)
    # the client slopes add their variance (SD 0.25 and 0.03 points per session) to the
    # sampling variance of the per-client slopes (same random numbers otherwise)
    extra_y = slope_variance(trends, "symptom_score") - slope_variance(plain, "symptom_score")
    extra_a = slope_variance(trends, "alliance_score") - slope_variance(plain, "alliance_score")
    assert extra_y == pytest.approx(0.25**2, rel=0.35)
    assert extra_a == pytest.approx(0.03**2, rel=0.5)
    error, truth = dynamic.simulate_dynamic("e_measurement_error_null", 5, n_clients=600)
    assert (plain["alliance_score"] == plain["alliance_true"]).all()
    noise = error["alliance_score"] - error["alliance_true"]
    assert noise.std() == pytest.approx(truth["alliance_error_sd"], rel=0.1)
    reliability = error["alliance_true"].var() / error["alliance_score"].var()
    assert reliability == pytest.approx(dynamic.ALLIANCE_RELIABILITY, abs=0.02)


def test_scenario_catalogue():
    families = {scenario.family for scenario in dynamic.SCENARIOS.values()}
    assert families == {"a_no_reverse", "b_same_session", "c_lagged_reverse", "d_trends",
                        "e_measurement_error"}
    assert all(s.gates != (s.family == "e_measurement_error")
               for s in dynamic.SCENARIOS.values())
    assert sum(s.null for s in dynamic.SCENARIOS.values()) == 5
    assert recovery.QUOTED_SCENARIO in dynamic.SCENARIOS
    with pytest.raises(Exception, match="unknown scenario"):
        dynamic.get_scenario("observed")


def test_derived_frame_uses_the_pipelines_lag_and_centring():
    long, _ = dynamic.simulate_dynamic("a_no_reverse_null", 2, n_clients=40, n_therapists=4)
    derived = recovery.derived_from_long(long, "phq9", max_lag_gap=1)
    assert len(derived) == len(long)
    assert derived.groupby("client_id")["alliance_within"].sum().abs().max() < 1e-9
    ordered = derived.sort_values(["client_id", "session"])
    gap = ordered.groupby("client_id")["session"].shift(-1) - ordered["session"]
    # symptom_next only for the next session, never across a missed one
    assert ordered.loc[gap != 1, "symptom_next"].isna().all()
    paired = ordered[gap == 1]
    following = ordered.groupby("client_id")["symptom_score"].shift(-1)[gap == 1]
    np.testing.assert_allclose(paired["symptom_next"], following)


# ---------------------------------------------------------------------------------------------
# The gate, on synthetic tables


def _table(scenario: str, estimator: str = "DPM", n: int = 200, truth: float = 0.0,
           shift: float = 0.0, se: float = 0.5, covered: int | None = None,
           rejected: int | None = None, converged: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    estimate = truth + shift + rng.normal(0, se, n)
    estimate = estimate - estimate.mean() + truth + shift  # exact mean, for exact criteria
    covered_flags = np.arange(n) < (round(0.95 * n) if covered is None else covered)
    rejected_flags = np.arange(n) < (round(0.05 * n) if rejected is None else rejected)
    converged_flags = np.arange(n) < (n if converged is None else converged)
    return pd.DataFrame({
        "scenario": scenario, "seed": np.arange(n), "estimator": estimator, "truth": truth,
        "estimate": estimate, "se": se, "ci_low": estimate - 1.96 * se,
        "ci_high": estimate + 1.96 * se, "p": np.where(rejected_flags, 0.01, 0.5),
        "covered": covered_flags, "rejected": rejected_flags, "converged": converged_flags,
        "fallback_steps": "", "n_clients": 150, "n_waves": 8.0,
    })


def test_gate_passes_an_honest_table_and_ignores_m2_and_the_ungated_scenario():
    table = pd.concat([
        _table("b_same_session_null"),
        _table("b_same_session_effect", truth=-1.0, rejected=150),
        # M2 badly biased: reported, not gated
        _table("b_same_session_null", "M2", shift=2.0, covered=20, rejected=180),
        # measurement error: attenuated and not gated
        _table("e_measurement_error_effect", truth=-1.0, shift=0.3, covered=150),
    ])
    summary = recovery.summarise_recovery(table)
    assert recovery.recovery_verdict(summary)
    by = summary.set_index(["scenario", "estimator"])
    assert by.loc[("b_same_session_null", "DPM"), "passed"]
    assert by.loc[("b_same_session_null", "M2"), "passed"] is None
    assert not by.loc[("b_same_session_null", "M2"), "gates"]
    assert not by.loc[("e_measurement_error_effect", "DPM"), "gates"]
    assert by.loc[("b_same_session_null", "M2"), "bias"] == pytest.approx(2.0)
    assert by.loc[("b_same_session_null", "M2"), "coverage"] == pytest.approx(0.1)
    # the effect version's rejection rate is power, not a type I error
    assert by.loc[("b_same_session_effect", "DPM"), "rejection_rate"] == 0.75
    text = recovery.format_summary(summary)
    assert text.endswith("Recovery study: PASSED") and "Gate failures" not in text


@pytest.mark.parametrize("kwargs, criterion", [
    ({"shift": 0.06}, "|bias|"),                 # 0.12 SE: beyond 0.1 x mean SE
    ({"covered": 180}, "coverage"),              # 0.90
    ({"covered": 197}, "coverage"),              # 0.985: too wide
    ({"rejected": 20}, "type I error"),          # 0.10
    ({"rejected": 3}, "type I error"),           # 0.015
    ({"converged": 180}, "converged"),
    ({"n": 150}, "datasets < 200"),
])
def test_gate_fails_and_names_the_criterion(kwargs, criterion):
    summary = recovery.summarise_recovery(_table("a_no_reverse_null", **kwargs))
    assert not recovery.recovery_verdict(summary)
    row = summary.iloc[0]
    assert not row["passed"]
    assert criterion in row["failed_criteria"]
    text = recovery.format_summary(summary)
    assert "Gate failures:" in text and "a_no_reverse_null / DPM: " in text
    assert text.endswith("Recovery study: FAILED")


def test_bias_within_a_tenth_of_the_se_passes_and_type_i_applies_to_null_versions_only():
    assert recovery.recovery_verdict(recovery.summarise_recovery(
        _table("a_no_reverse_null", shift=0.04)))
    # a high rejection rate in an effect version is power
    assert recovery.recovery_verdict(recovery.summarise_recovery(
        _table("a_no_reverse_effect", truth=-1.0, rejected=190)))
    assert not recovery.recovery_verdict(recovery.summarise_recovery(pd.DataFrame(
        columns=recovery.REPLICATE_COLUMNS)))


def test_false_failure_probabilities_follow_from_the_monte_carlo_error():
    at200, at500 = (recovery.false_failure_probabilities(n) for n in (200, 500))
    assert at200["bias"] == pytest.approx(2 * (1 - 0.9213), abs=0.002)  # 0.1 sqrt(200) = 1.41
    assert at500["bias"] == pytest.approx(0.025, abs=0.002)
    assert at200["coverage"] == pytest.approx(0.071, abs=0.002)
    assert at500["coverage"] < at200["coverage"] and at500["type_i"] < at200["type_i"]


def test_committed_table_and_load_recovery_summary(tmp_path):
    table = pd.concat([_table("b_same_session_null"),
                       _table("b_same_session_null", "M2", shift=2.0, covered=20, rejected=180)])
    path = recovery.write_docs_table(recovery.summarise_recovery(table), tmp_path / "r.csv")
    loaded = recovery.load_recovery_summary(path)
    assert loaded["scenario"] == "b_same_session_null" and loaded["n_datasets"] == 200
    assert loaded["conventional"]["mean_estimate"] == pytest.approx(2.0, abs=1e-4)
    assert loaded["conventional"]["coverage"] == pytest.approx(0.1)
    assert loaded["primary"]["rejection_rate"] == pytest.approx(0.05)
    assert loaded["gate_passed"]
    assert recovery.load_recovery_summary(tmp_path / "missing.csv") is None
    assert recovery.load_recovery_summary(path, scenario="c_lagged_reverse_null") is None
    markdown = recovery.methods_table(pd.read_csv(path))
    assert markdown.splitlines()[2].startswith("| b_same_session_null | 0 | +0.00")
    # the report reads the same file through its own loader
    from analysis.report import recovery as report_recovery
    assert "+2.00" in report_recovery.recovery_sentence(path)
    assert "missed the recovery gate" not in report_recovery.recovery_sentence(path)
    # a primary that misses the gate is said to, with its largest bias
    biased = pd.concat([_table("b_same_session_null", shift=0.1),
                        _table("b_same_session_null", "M2", shift=2.0)])
    path = recovery.write_docs_table(recovery.summarise_recovery(biased), tmp_path / "b.csv")
    sentence = report_recovery.recovery_sentence(path)
    assert ("missed the recovery gate in 1 of 1 scenario versions (b_same_session_null: |bias| "
            "0.1000 > 0.1 x mean SE 0.5000") in sentence


def test_report_quotes_the_trend_bias_at_both_study_sizes(tmp_path):
    """The primary's bias under client-specific trends, at the recovery study's size and in
    large studies, is quoted from the two tables; without the large-study table it is not."""
    small = pd.concat([_table("b_same_session_null"), _table("b_same_session_null", "M2"),
                       _table("d_trends_null", shift=-0.03)])
    large = _table("d_trends_null", shift=-0.06).assign(n_clients=5000)
    recovery_csv = recovery.write_docs_table(recovery.summarise_recovery(small),
                                             tmp_path / "recovery.csv")
    large_csv = recovery.write_docs_table(recovery.summarise_recovery(large),
                                          tmp_path / "large.csv")
    from analysis.report import recovery as report_recovery
    sentence = report_recovery.recovery_sentence(recovery_csv, large_csv)
    assert ("its mean estimate was -0.03 with 150 simulated clients per study (0.06 of its standard error) and -0.06 with 5,000 "
            "simulated clients per study (0.12 of its standard error)") in sentence
    assert ("with 5,000 simulated clients per study its 95% intervals covered the true value in "
            "95% of") in sentence
    assert "does not shrink with more clients" not in report_recovery.recovery_sentence(
        recovery_csv, tmp_path / "missing.csv")


def test_shipped_recovery_table_is_a_full_run():
    loaded = recovery.load_recovery_summary()
    if loaded is None:
        pytest.skip("docs/validation/recovery.csv is not in this copy of the project")
    table = pd.read_csv(recovery.DOCS_TABLE)
    assert set(table["scenario"]) == set(dynamic.SCENARIOS)
    assert (table["n_datasets"] >= recovery.MIN_DATASETS).all()
    assert loaded["conventional"]["mean_estimate"] > 0.5  # M2's bias, as measured
    assert (table["n_clients"] == 150).all()
    large = pd.read_csv(recovery.LARGE_STUDY_TABLE)
    assert set(large["scenario"]) == {"b_same_session_null", recovery.TREND_SCENARIO}
    assert (large["n_clients"] == 5000).all() and (large["estimator"] == recovery.PRIMARY).all()
    # the report quotes the shipped tables: the verdict and the trend bias at both sizes
    from analysis.report import recovery as report_recovery
    sentence = report_recovery.recovery_sentence()
    assert ("missed the recovery gate" in sentence) != loaded["gate_passed"]
    assert "with 150 simulated clients per study" in sentence
    assert "with 5,000 simulated clients per study" in sentence
    # the instruments are the simulation's, not necessarily the study's: no names
    assert "PHQ" not in sentence and "WAI" not in sentence


def test_batches_and_their_settings(settings):
    assert recovery.plan_batches(7, 3) == [(0, 3), (3, 3), (6, 1)]
    batch = recovery.BatchSettings(scenario="d_trends_null", first=3, count=3, seed=10,
                                   clients=150, therapists=15, min_sessions=4, max_sessions=12,
                                   recovery=settings)
    assert recovery.BatchSettings.from_params(batch.params()) == batch
    assert set(settings.fits) == {"DPM", "M2"}
    assert settings.fits["DPM"]["kind"] == "dpm" and settings.fits["M2"]["kind"] == "lmm"
    assert settings.max_lag_gap == 1


def test_command_line_checks_a_table(capsys, tmp_path):
    honest = pd.concat([_table("a_no_reverse_null"), _table("a_no_reverse_null", "M2")])
    honest.to_csv(tmp_path / "ok.csv", index=False)
    assert recovery.main(["--check", str(tmp_path / "ok.csv"), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == "Recovery study: PASSED"
    _table("c_lagged_reverse_null", shift=0.2).to_csv(tmp_path / "bad.csv", index=False)
    assert recovery.main(["--check", str(tmp_path / "bad.csv"), "--quiet",
                          "--write-table", str(tmp_path / "docs.csv")]) == 1
    out = capsys.readouterr().out
    assert "c_lagged_reverse_null / DPM: |bias|" in out and "FAILED" in out
    assert (tmp_path / "docs.csv").exists()


def test_methods_quotes_the_committed_table():
    """docs/methods.md section 7 shows the committed run's table, not an earlier one."""
    if recovery.load_recovery_summary() is None:
        pytest.skip("docs/validation/recovery.csv is not in this copy of the project")
    methods = (recovery.DOCS_TABLE.parents[1] / "methods.md").read_text(encoding="utf-8")
    assert recovery.methods_table() in methods


def test_command_line_fits_only_the_estimators_asked_for(capsys):
    """``--estimators DPM`` fits the primary alone (the large-study check of docs/methods.md)."""
    recovery.main(["--datasets", "2", "--clients", "60", "--therapists", "6", "--seed", "9001",
                   "--scenarios", "d_trends_null", "--estimators", "DPM"])
    table = capsys.readouterr().out.split("\n\n")[0]
    rows = [line.split()[:2] for line in table.splitlines()[1:]]
    assert rows == [["d_trends_null", "DPM"]]
