"""Attendance and dropout (docs/methods.md section 7): rates, the proxy rule, the hazard model.

The discrete-time hazard model is checked against R's ``glm(family = binomial)`` with
``sandwich::vcovCL`` and the Kaplan-Meier estimates against ``survival::survfit``, live through
``tests/r/fit_dropout.R`` (skipped, with the reason, when R or a package is missing; a failure
when ALLIANCE_REQUIRE_R=1). A simulated study with a known alliance effect on the dropout hazard
checks that the model recovers it.
"""

from __future__ import annotations

import doctest
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.engagement import dropout
from analysis.engagement.dropout import (
    attendance_table,
    attended_sessions,
    dropout_effect_d,
    dropout_episodes,
    fit_dropout_hazard,
    hazard_formula,
    kaplan_meier,
    kaplan_meier_by_tertile,
    person_session_data,
)
from analysis.errors import DataError
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_dropout.R"

TRUE_EFFECTS = {"intercept": -2.2, "alliance_level": -0.8, "symptom": 0.05, "session": -0.1}


def simulate_dropout(n_clients=400, n_therapists=20, seed=11, max_sessions=12,
                     effects=TRUE_EFFECTS):
    """Sessions of clients who may drop out after any session, with a known hazard.

    The logit of dropping out after session t is ``intercept + alliance_level x level_i +
    symptom x (symptom_t - 12) + session x t``: the client's alliance level (normal, SD 1, with
    a therapist part) and the current symptom score drive it, the session-to-session alliance
    noise (SD 0.2) does not. The client's observed mean alliance is the level plus a little
    noise, so ``alliance_between_c`` estimates ``alliance_level`` almost without attenuation and
    ``alliance_within`` has a true coefficient of 0.
    """
    rng = np.random.default_rng(seed)
    therapist_part = rng.normal(scale=0.5, size=n_therapists)
    rows = []
    for client in range(n_clients):
        therapist = client % n_therapists
        level = therapist_part[therapist] + rng.normal(scale=np.sqrt(0.75))
        start = rng.normal(16, 4)
        for session in range(1, max_sessions + 1):
            alliance = 5 + level + rng.normal(scale=0.2)
            symptom = start - 0.6 * session + rng.normal(scale=2.5)
            logit = (effects["intercept"] + effects["alliance_level"] * level
                     + effects["symptom"] * (symptom - 12) + effects["session"] * session)
            left = rng.random() < 1 / (1 + np.exp(-logit))
            rows.append({"client_id": f"c{client:04d}", "therapist_id": f"t{therapist:02d}",
                         "session": session, "day": 7 * (session - 1) + client % 50,
                         "alliance_score": alliance, "symptom_score": symptom,
                         "ending": "dropped out" if left else None})
            if left:
                break
        if not left:
            rows[-1]["ending"] = "finished"
    frame = pd.DataFrame(rows)
    frame["ending"] = frame.groupby("client_id")["ending"].transform("last")
    return frame


def episodes_of(visits):
    return dropout_episodes(visits, ending_col="ending",
                            ending_values={"dropped_out": ["dropped out"],
                                           "completed": ["finished"]})


# ---------------------------------------------------------------------------------------------
# Attendance


def test_attendance_rates_per_client_and_overall():
    visits = pd.DataFrame({
        "client_id": ["a"] * 5 + ["b"] * 3 + ["c"] * 2,
        "therapist_id": ["t1"] * 8 + ["t2"] * 2,
        "status": [1, 2, 1, 3, 4, 1, 1, "1.0", 1, None],
    })
    codes = {"attended": [1], "did_not_attend": [2], "cancelled_by_client": [3],
             "cancelled_by_service": [4]}
    table = attendance_table(visits, "status", codes).set_index("client_id")
    a = table.loc["a"]
    assert (a["offered"], a["attended"], a["did_not_attend"], a["cancelled_by_client"],
            a["cancelled_by_service"]) == (5, 2, 1, 1, 1)
    assert a["attendance_rate"] == pytest.approx(2 / 5)
    assert a["attendance_rate_kept"] == pytest.approx(2 / 4)
    assert table.loc["b", "attendance_rate"] == 1.0  # "1.0" is the code 1
    c = table.loc["c"]
    assert (c["offered"], c["attended"], c["status_unknown"]) == (2, 1, 1)
    overall = table[table["level"] == "overall"].iloc[0]
    assert overall["offered"] == 10 and overall["attended"] == 6 and overall["n_clients"] == 3
    assert overall["attendance_rate"] == pytest.approx(6 / 10)
    assert overall["mean_client_rate"] == pytest.approx((2 / 5 + 1 + 1 / 2) / 3)
    assert table["status_recorded"].all() and (table["note"] == "").all()
    assert table.loc["c", "therapist_id"] == "t2"


def test_attendance_without_a_status_column_says_rates_are_unknown():
    visits = pd.DataFrame({"client_id": ["a", "a", "b"], "session": [1, 2, 1]})
    table = attendance_table(visits)
    assert table["attendance_rate"].isna().all()
    assert not table["status_recorded"].any()
    assert "only attended sessions are known" in table["note"].iloc[0]
    assert table.loc[table["level"] == "client", "attended"].tolist() == [2, 1]


def test_attendance_with_category_names_and_unmapped_codes():
    offered = pd.DataFrame({"client_id": ["a", "a"], "status": ["attended", "did_not_attend"]})
    assert attendance_table(offered, "status")["attendance_rate"].iloc[0] == 0.5
    visits = pd.DataFrame({"client_id": ["a", "a"], "Status": ["A", "late"]})
    with pytest.raises(DataError, match="'Status'.*'late'.*status_values"):
        attendance_table(visits, "Status", {"attended": ["A"]})
    with pytest.raises(DataError, match="'cancelled' is not one of"):
        attendance_table(visits, "Status", {"attended": ["A"], "cancelled": ["late"]})
    kept = attended_sessions(visits.assign(session=[1, 2]), "Status",
                             {"attended": ["A"], "did_not_attend": ["late"]})
    assert kept["session"].tolist() == [1]


# ---------------------------------------------------------------------------------------------
# Endings and the proxy rule


def test_recorded_endings_are_mapped_and_missing_ones_censored():
    visits = pd.DataFrame({"client_id": ["a", "a", "b", "c", "c", "c"],
                           "session": [1, 3, 1, 1, 2, 4]})
    endings = pd.DataFrame({"client_id": ["a", "b", "c"], "why": ["DO", "Other", None]})
    episodes = dropout_episodes(visits, endings, "why",
                                {"dropped_out": ["DO"], "other": ["Other"]}).set_index("client_id")
    assert episodes["last_session"].to_dict() == {"a": 3, "b": 1, "c": 4}
    assert episodes["sessions_attended"].to_dict() == {"a": 2, "b": 1, "c": 3}
    assert episodes["ending"].to_dict() == {"a": "dropped_out", "b": "other",
                                            "c": "not_recorded"}
    assert episodes["dropout"].to_dict() == {"a": 1, "b": 0, "c": 0}
    assert (episodes["dropout_source"] == "recorded").all()
    two = pd.DataFrame({"client_id": ["a", "a"], "why": ["DO", "Other"]})
    with pytest.raises(DataError, match="more than one ending"):
        dropout_episodes(visits, two, "why", {"dropped_out": ["DO"], "other": ["Other"]})


def test_proxy_rule_counts_sessions_recovery_and_recent_activity():
    # last day in the data: 87. a: 2 sessions long ago (dropout); b: 2 sessions but recovered;
    # c: 2 sessions, the last within 4 weeks of the end (ongoing); d: 5 sessions (not dropout)
    visits = pd.DataFrame({
        "client_id": ["a", "a", "b", "b", "c", "c"] + ["d"] * 5,
        "session": [1, 2, 1, 2, 1, 2, 1, 2, 3, 4, 5],
        "day": [0, 7, 0, 7, 80, 87, 20, 27, 34, 41, 48],
        "phq9": [18, 17, 14, 6, 20, 19, 15, 14, 12, 10, 9],
    })
    episodes = dropout_episodes(visits, score_col="phq9", recovery_cutoff=10)
    assert episodes.set_index("client_id")["ending"].to_dict() == {
        "a": "dropped_out", "b": "not_dropped_out", "c": "ongoing", "d": "not_dropped_out"}
    assert episodes["dropout"].tolist() == [1, 0, 0, 0]
    source = episodes["dropout_source"].iloc[0]
    assert source == ("proxy: fewer than 4 attended sessions, and the last phq9 at or above 10 "
                      "(not recovered), and no session in the last 4 weeks of the data")
    # without the recovery condition b is a dropout; with min_sessions 6, d is one too
    plain = dropout_episodes(visits, min_sessions=6).set_index("client_id")
    assert plain["dropout"].to_dict() == {"a": 1, "b": 1, "c": 0, "d": 1}
    no_days = dropout_episodes(visits.drop(columns="day")).set_index("client_id")
    assert no_days["dropout"].to_dict() == {"a": 1, "b": 1, "c": 1, "d": 0}
    assert "ongoing episodes cannot be told apart" in no_days["dropout_source"].iloc[0]


# ---------------------------------------------------------------------------------------------
# Person-session data and the hazard model


def test_person_session_rows_carry_the_event_on_the_last_session_only():
    visits = simulate_dropout(60, 6, seed=3)
    episodes = episodes_of(visits)
    rows = person_session_data(visits, episodes)
    assert len(rows) == len(visits)
    per_client = rows.groupby("client_id")["dropout_next"].agg(["sum", "last"])
    expected = episodes.set_index("client_id")["dropout"]
    assert (per_client["sum"] == expected).all() and (per_client["last"] == expected).all()
    means = rows.groupby("client_id")["alliance_within"].mean()
    np.testing.assert_allclose(means, 0, atol=1e-12)
    between = rows.groupby("client_id")["alliance_between_c"].first()
    assert abs(between.mean()) < 1e-12


def test_the_hazard_model_recovers_a_known_alliance_effect():
    visits = simulate_dropout(3000, 40, seed=6)
    fit = fit_dropout_hazard(person_session_data(visits, episodes_of(visits)))
    table = fit.table.set_index("term")
    truth = {"alliance_between_c": TRUE_EFFECTS["alliance_level"], "alliance_within": 0.0,
             "symptom_score": TRUE_EFFECTS["symptom"], "session": TRUE_EFFECTS["session"]}
    for term, value in truth.items():
        assert table.loc[term, "ci_low"] < value < table.loc[term, "ci_high"], term
    assert table.loc["alliance_between_c", "p"] < 1e-10
    assert fit.info["cluster"] == "therapist" and fit.info["n_clusters"] == 40
    assert fit.info["n_events"] > 1000
    effect = dropout_effect_d(fit).iloc[0]
    # 1 SD of client-level alliance (about 0.87 here) lowers the log odds by about 0.7
    assert effect["d"] == pytest.approx(-table.loc["alliance_between_c", "estimate"]
                                        * fit.info["sd_alliance_between"])
    assert 0.5 < effect["d"] < 0.9
    assert effect["d_logistic"] == pytest.approx(effect["d"] * np.sqrt(3) / np.pi)
    assert effect["d_ci_low"] < effect["d"] < effect["d_ci_high"]


def test_clusters_by_client_when_there_are_too_few_therapists():
    visits = simulate_dropout(200, 3, seed=5)
    rows = person_session_data(visits, episodes_of(visits))
    fit = fit_dropout_hazard(rows)
    assert fit.info["cluster"] == "client" and fit.info["n_clusters"] == 200
    assert "fewer than 5 therapists" in fit.info["cluster_reason"]
    with pytest.raises(DataError, match="cannot be clustered by therapist"):
        fit_dropout_hazard(rows, cluster="therapist")
    no_ids = fit_dropout_hazard(rows.drop(columns="therapist_id"))
    assert no_ids.info["cluster_reason"] == "the data have no therapist ids"
    np.testing.assert_allclose(no_ids.table["se"], fit.table["se"])


def test_missing_predictors_are_counted_and_no_events_refused():
    visits = simulate_dropout(150, 10, seed=8)
    rows = person_session_data(visits, episodes_of(visits))
    last = rows.index[rows["dropout_next"] == 1][:3]
    rows.loc[last, "symptom_score"] = np.nan
    fit = fit_dropout_hazard(rows)
    assert fit.info["n_events_lost"] == 3
    assert fit.info["n_events"] == int(rows["dropout_next"].sum()) - 3
    with pytest.raises(DataError, match="no dropout events"):
        fit_dropout_hazard(rows.assign(dropout_next=0))


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier


def test_kaplan_meier_by_hand():
    curve = kaplan_meier([1, 1, 2, 4, 4, 4], [1, 0, 1, 1, 1, 0])
    assert curve["session"].tolist() == [1, 2, 4]
    assert curve["at_risk"].tolist() == [6, 4, 3]
    survival = [5 / 6, 5 / 6 * 3 / 4, 5 / 6 * 3 / 4 * 1 / 3]
    np.testing.assert_allclose(curve["survival"], survival)
    greenwood = np.cumsum([1 / (6 * 5), 1 / (4 * 3), 2 / (3 * 1)])
    np.testing.assert_allclose(curve["se"], np.array(survival) * np.sqrt(greenwood))
    ends = kaplan_meier([1, 2], [1, 1])
    assert ends["survival"].tolist()[-1] == 0 and np.isnan(ends["ci_low"].iloc[-1])


def test_tertiles_split_the_clients_by_early_alliance():
    visits = simulate_dropout(90, 9, seed=4)
    episodes = episodes_of(visits)
    early = visits[visits["session"] <= 3].groupby("client_id")["alliance_score"].mean()
    curves = kaplan_meier_by_tertile(episodes, early.rename("alliance_early").reset_index())
    sizes = curves.groupby("tertile", sort=False)["n_clients"].first()
    assert list(sizes.index) == ["low", "middle", "high"] and sizes.sum() == 90
    assert (curves.groupby("tertile", sort=False)["at_risk"].first() == sizes).all()
    low = curves.loc[curves["tertile"] == "low", "alliance_max"].iloc[0]
    assert low <= curves.loc[curves["tertile"] == "middle", "alliance_min"].iloc[0]


# ---------------------------------------------------------------------------------------------
# Parity with R (glm + sandwich, survfit)


def _r_missing() -> str | None:
    return (r_package_missing("sandwich", "r-cran-sandwich")
            or r_package_missing("survival", "r-cran-survival"))




def _rscript(*args: str) -> None:
    run = subprocess.run(["Rscript", str(R_SCRIPT), *args], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "n_therapists, spline",
    [pytest.param(15, None, id="therapist-clusters"),
     pytest.param(3, None, id="client-clusters"),
     pytest.param(15, 4, id="session-spline")],
)
@pytest.mark.r
@pytest.mark.skipif(_r_missing() is not None, reason=str(_r_missing()))
def test_hazard_model_matches_glm_and_sandwich(tmp_path, n_therapists, spline):
    visits = simulate_dropout(300, n_therapists, seed=2025)
    rows = person_session_data(visits, episodes_of(visits))
    fit = fit_dropout_hazard(rows, session_spline_df=spline)
    column = "therapist_id" if fit.info["cluster"] == "therapist" else "client_id"
    assert fit.info["cluster"] == ("therapist" if n_therapists >= 5 else "client")
    rows.to_csv(tmp_path / "rows.csv", index=False, float_format="%.17g")
    formula = hazard_formula(spline).replace("df=", "df = ")
    _rscript("hazard", str(tmp_path / "rows.csv"), formula, column, str(tmp_path / "out.csv"))
    reference = pd.read_csv(tmp_path / "out.csv")
    assert len(reference) == len(fit.table)
    for name in ("estimate", "se", "z", "ci_low", "ci_high"):
        np.testing.assert_allclose(fit.table[name], reference[name], rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    np.testing.assert_allclose(fit.table["p"], reference["p"], rtol=1e-5, atol=1e-12)
    # the match depends on the small-sample factor G/(G-1) (vcovCL's default for a glm)
    g = fit.info["n_clusters"]
    factor = np.sqrt(g / (g - 1))
    np.testing.assert_allclose(fit.table["se"], reference["se_hc0_raw"] * factor, rtol=1e-6)


@pytest.mark.parametrize("conf_type", ["log", "plain"])
@pytest.mark.r
@pytest.mark.skipif(_r_missing() is not None, reason=str(_r_missing()))
def test_kaplan_meier_matches_survfit(tmp_path, conf_type):
    visits = simulate_dropout(240, 12, seed=17)
    episodes = episodes_of(visits)
    early = visits[visits["session"] <= 3].groupby("client_id")["alliance_score"].mean()
    ours = kaplan_meier_by_tertile(episodes, early, conf_type=conf_type)
    tertile = dropout.alliance_tertiles(early.set_axis(early.index.astype(str)))
    data = pd.DataFrame({"time": episodes["last_session"], "event": episodes["dropout"],
                         "tertile": episodes["client_id"].map(tertile)})
    data.to_csv(tmp_path / "km.csv", index=False)
    _rscript("km" if conf_type == "log" else "km_plain", str(tmp_path / "km.csv"),
             str(tmp_path / "out.csv"))
    reference = pd.read_csv(tmp_path / "out.csv")
    for name in ("low", "middle", "high"):
        mine = ours[ours["tertile"] == name].reset_index(drop=True)
        theirs = reference[reference["tertile"] == name].reset_index(drop=True)
        assert len(mine) == len(theirs) > 0
        assert mine["session"].tolist() == theirs["time"].tolist()
        assert mine["at_risk"].tolist() == theirs["n_risk"].tolist()
        assert mine["events"].tolist() == theirs["n_event"].tolist()
        assert mine["censored"].tolist() == theirs["n_censor"].tolist()
        for ours_name, r_name in (("survival", "surv"), ("se", "std_err"),
                                  ("ci_low", "lower"), ("ci_high", "upper")):
            np.testing.assert_allclose(mine[ours_name], theirs[r_name], rtol=1e-10,
                                       atol=1e-12, err_msg=f"{name} {ours_name}")


def test_examples_are_doctests():
    """The Examples sections run and print what they show."""
    failures, tried = doctest.testmod(dropout, optionflags=doctest.ELLIPSIS)
    assert tried > 10 and failures == 0
