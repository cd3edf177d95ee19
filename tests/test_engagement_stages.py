"""The engagement stages (dropout, therapist-patient, sudden gains) on small frames: what each
per-outcome job writes, the combined published tables (contracts, suppression), "not estimated"
instead of errors, the figures and the report sections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.catalogue import path
from analysis.contracts import check_written
from analysis.engagement.dropout_stage import (
    combine_dropout,
    dropout_stage,
    fit_dropout_outcome,
)
from analysis.engagement.sudden_gains_stage import combine_sudden_gains, sudden_gains_outcome
from analysis.engagement.therapist_patient_stage import (
    combine_therapist_patient,
    fit_therapist_patient_outcome,
)
from analysis.settings import DropoutHazardSettings, DropoutSettings, SuddenGainSettings
from model_fixtures import make_study, simulate_derived

MIN_CELL = 10
GAINS = SuddenGainSettings(directions={"phq9": "lower_is_better", "gad7": "lower_is_better"})


def check(frame: pd.DataFrame, name: str) -> None:
    check_written(frame, path(name))


@pytest.fixture(scope="module")
def derived() -> pd.DataFrame:
    frame, _ = simulate_derived(240, 16, seed=5, outcomes=("phq9", "gad7"), max_sessions=12)
    return frame


def registry_of(derived: pd.DataFrame, status: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    sessions = derived.loc[derived["outcome"] == "phq9",
                           ["client_id", "therapist_id", "session", "day"]].reset_index(drop=True)
    offered = sessions.assign(status="attended")
    if status:
        # every fifth session of each client was preceded by a missed appointment
        extra = sessions[sessions["session"] % 5 == 0].assign(
            session=lambda f: f["session"] + 100, status="did_not_attend")
        offered = pd.concat([offered, extra], ignore_index=True)
    return sessions, offered


# ---------------------------------------------------------------------------------------------
# dropout


def test_dropout_episodes_count_attendance_and_tertiles(derived):
    sessions, offered = registry_of(derived, status=True)
    tables = dropout_stage(sessions, offered, derived, DropoutSettings(status_recorded=True))
    episodes, km = tables["dropout_episodes"], tables["dropout_km"]
    check(episodes, "dropout_episodes")
    check(km, "dropout_km")
    assert len(episodes) == sessions["client_id"].nunique()
    # the missed appointments are offered but not attended, and do not move the last session
    assert episodes["did_not_attend"].sum() == (offered["status"] == "did_not_attend").sum()
    assert (episodes["offered"] == episodes["attended"] + episodes["did_not_attend"]).all()
    assert (episodes["last_session"] < 100).all()
    assert episodes["dropout_source"].str.startswith("proxy: fewer than 4").all()
    assert set(episodes["tertile"].dropna()) == {"low", "middle", "high"}
    assert set(km["tertile"]) == {"low", "middle", "high"}
    assert km.groupby("tertile")["survival"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_dropout_hazard_per_outcome_and_the_published_tables(derived):
    sessions, offered = registry_of(derived, status=False)
    episodes = dropout_stage(sessions, offered, derived, DropoutSettings())["dropout_episodes"]
    fits = [fit_dropout_outcome(derived, episodes, outcome, DropoutHazardSettings())
            for outcome in ("phq9", "gad7")]
    json.dumps(fits)  # the job writes it as JSON
    assert [fit["status"] for fit in fits] == ["estimated", "estimated"]
    tables = combine_dropout(fits, episodes, MIN_CELL, status_recorded=False)
    dropout, attendance = tables["dropout"], tables["attendance"]
    check(dropout, "dropout")
    check(attendance, "attendance")
    between = dropout[dropout["term"] == "alliance_between_c"]
    assert len(between) == 2 and between["benchmark_d"].eq(0.55).all()
    assert np.allclose(between["d"], -between["estimate"] * fits[0]["info"]["sd_alliance_between"])
    assert dropout.loc[dropout["term"] != "alliance_between_c", "d"].isna().all()
    # no session-status column: attendance rates are not computed
    assert attendance["attendance_rate"].isna().all()
    assert attendance["group"].tolist()[:4] == ["all clients", "early alliance low tertile",
                                                "early alliance middle tertile",
                                                "early alliance high tertile"]


def test_dropout_not_estimated_without_any_dropout(derived):
    sessions, offered = registry_of(derived, status=False)
    long_stayers = derived[derived.groupby("client_id")["session"].transform("max") >= 6]
    sessions = sessions[sessions["client_id"].isin(long_stayers["client_id"])]
    offered = offered[offered["client_id"].isin(long_stayers["client_id"])]
    episodes = dropout_stage(sessions, offered, long_stayers,
                             DropoutSettings(proxy_min_sessions=4))["dropout_episodes"]
    assert episodes["dropout"].sum() == 0
    fit = fit_dropout_outcome(long_stayers, episodes, "phq9", DropoutHazardSettings())
    assert fit["status"] == "not_estimated" and "no dropout events" in fit["reason"]
    table = combine_dropout([fit], episodes, MIN_CELL, status_recorded=False)["dropout"]
    check(table, "dropout")
    assert table["reason"].iloc[0] == fit["reason"]


def test_small_groups_are_suppressed_in_the_attendance_table(derived):
    sessions, offered = registry_of(derived, status=True)
    few = sessions["client_id"].drop_duplicates().iloc[:14]
    tables = dropout_stage(sessions[sessions["client_id"].isin(few)],
                           offered[offered["client_id"].isin(few)], derived,
                           DropoutSettings(status_recorded=True))
    attendance = combine_dropout([], tables["dropout_episodes"], MIN_CELL,
                                 status_recorded=True)["attendance"]
    check(attendance, "attendance")
    everyone = attendance.iloc[0]
    assert everyone["n_clients"] == "14" and everyone["attendance_rate"] > 0
    tertiles = attendance.iloc[1:4]
    assert (tertiles["n_clients"] == "<10").all()
    assert tertiles["offered"].isna().all() and tertiles["attendance_rate"].isna().all()
    # a rate beside a hidden count is hidden too (a rate of 0 reveals nothing and stays)
    assert (tertiles["dropout_rate"].isna() | tertiles["dropout_rate"].eq(0)).all()


# ---------------------------------------------------------------------------------------------
# therapist and patient contributions


def test_therapist_patient_per_outcome_and_combined(derived):
    fits = [fit_therapist_patient_outcome(derived, outcome) for outcome in ("phq9", "gad7")]
    json.dumps(fits)
    tables = combine_therapist_patient(fits, MIN_CELL)
    table, points = tables["therapist_patient_alliance"], tables["therapist_patient_points"]
    check(table, "therapist_patient_alliance")
    check(points, "therapist_patient_points")
    assert set(table["status"]) == {"estimated"}
    assert table["term"].tolist()[:4] == ["(Intercept)", "start_score", "alliance_therapist",
                                          "alliance_client"]
    assert len(points) == 2 * 16 and (points["n_clients"] >= 3).all()
    # the therapist part is centred on the mean over clients
    phq9 = points[points["outcome"] == "phq9"]
    assert abs(np.average(phq9["alliance_therapist"], weights=phq9["n_clients"])) < 1e-9


def test_therapist_patient_without_therapists_is_not_estimated(derived):
    fit = fit_therapist_patient_outcome(derived.drop(columns="therapist_id"), "phq9")
    assert fit["points"] == []
    tables = combine_therapist_patient([fit], MIN_CELL)
    check(tables["therapist_patient_alliance"], "therapist_patient_alliance")
    check(tables["therapist_patient_points"], "therapist_patient_points")
    assert set(tables["therapist_patient_alliance"]["reason"]) == {
        "the data have no therapist ids"}
    few = derived[derived["therapist_id"].isin(["t0000", "t0001", "t0002"])]
    reason = fit_therapist_patient_outcome(few, "phq9")["table"][0]["reason"]
    assert reason.startswith("the data have fewer than 10 therapists")


# ---------------------------------------------------------------------------------------------
# sudden gains


def one_gain_frame(n_clients: int = 1) -> pd.DataFrame:
    # suddengains' own example: a gain from session 3 to 4 (reversed) and from 7 to 8
    scores = [35, 37, 34, 23, 24, 21, 29, 17, 11, 11, 10, 7]
    alliance = [3.0, 3.1, 3.0, 3.6, 3.7, 3.5, 3.4, 3.9, 4.0, 4.0, 4.1, 4.2]
    rows = [{"outcome": "phq9", "client_id": f"c{i:02d}", "session": s + 1,
             "symptom_score": float(scores[s]), "alliance_score": alliance[s]}
            for i in range(n_clients) for s in range(12)]
    return pd.DataFrame(rows)


PARAMETERS = pd.DataFrame({"outcome": ["phq9"], "sd_first": [4.0], "r_xx": [0.84]})


def test_sudden_gains_of_the_package_example():
    settings = SuddenGainSettings(directions={"phq9": "lower_is_better"}, cutoff=7.0,
                                  min_gains=2)
    result = sudden_gains_outcome(one_gain_frame(), PARAMETERS, "phq9", settings)
    json.dumps(result)
    gains = [g for g in result["gains"] if g["kind"] == "gain"]
    assert [g["pregain_session"] for g in gains] == [3, 7]
    assert [g["reversal"] for g in gains] == [True, False]
    assert [g["largest_of_client"] for g in gains] == [False, True]
    assert gains[0]["alliance_pre"] == pytest.approx(np.mean([3.0, 3.1, 3.0]))
    assert gains[0]["alliance_post"] == pytest.approx(np.mean([3.6, 3.7, 3.5]))
    assert result["cutoff_source"] == "engagement.sudden_gains.cutoff"
    # one client: the mixed model of the alliance is not estimable, and says why
    assert result["alliance"]["status"] == "not_estimated"


def test_the_reliable_change_value_is_criterion_1_by_default():
    result = sudden_gains_outcome(one_gain_frame(), PARAMETERS, "phq9", GAINS)
    assert result["cutoff"] == pytest.approx(1.96 * np.sqrt(2) * 4.0 * np.sqrt(1 - 0.84))
    assert result["cutoff_source"].startswith("reliable change value")
    missing = PARAMETERS.assign(r_xx=np.nan)
    result = sudden_gains_outcome(one_gain_frame(), missing, "phq9", GAINS)
    assert result["status"] == "not_estimated"
    assert "episodes.reliability.phq9" in result["reason"]
    assert "engagement.sudden_gains.cutoff" in result["reason"]


def test_sudden_gains_published_tables_and_the_alliance_model():
    settings = SuddenGainSettings(directions={"phq9": "lower_is_better"}, cutoff=7.0)
    frame = one_gain_frame(12)
    rng = np.random.default_rng(3)
    frame["alliance_score"] += rng.normal(0, 0.1, len(frame))
    result = sudden_gains_outcome(frame, PARAMETERS, "phq9", settings)
    assert result["alliance"]["status"] == "estimated"
    assert result["alliance"]["estimate"] > 0  # the alliance rises after the gains
    few = sudden_gains_outcome(one_gain_frame(3), PARAMETERS, "phq9", settings)
    assert few["alliance"]["reason"] == ("fewer than 10 sudden gains "
                                         "(engagement.sudden_gains.min_gains)")
    tables = combine_sudden_gains([result], MIN_CELL, individual_rows=True)
    for name, table in tables.items():
        check(table, name)
    gains, summary = tables["sudden_gains"], tables["sudden_gains_summary"]
    assert len(gains) == 24 and set(gains["kind"]) == {"gain"}
    # single clients' scores only where the config allows individual trajectories
    private = combine_sudden_gains([result], MIN_CELL)
    check(private["sudden_gains"], "sudden_gains")
    assert private["sudden_gains"].empty
    assert list(private["sudden_gains"].columns) == list(gains.columns)
    assert private["sudden_gains_summary"].equals(summary)
    assert summary["n_clients"].iloc[0] == "12" and summary["n_reversals"].iloc[0] == "12"
    # 12 of 12 clients had a gain: shown, since its complement is 0
    assert summary["n_clients_with_gain"].iloc[0] == "12"
    few_summary = combine_sudden_gains([few], MIN_CELL)["sudden_gains_summary"]
    assert few_summary["n_clients"].iloc[0] == "<10"
    assert np.isnan(few_summary["share_with_gain"].iloc[0])
    course = tables["sudden_gains_course"]
    assert set(course["measure"]) == {"symptoms", "alliance"}
    assert course["offset"].tolist()[:6] == [-2, -1, 0, 1, 2, 3]


def test_no_gain_is_not_an_error(derived):
    calm = derived.assign(symptom_score=10.0)
    result = sudden_gains_outcome(calm, PARAMETERS.assign(outcome="phq9"), "phq9", GAINS)
    assert result["status"] == "estimated" and result["gains"] == []
    assert result["alliance"]["reason"] == "no sudden gains were identified"
    tables = combine_sudden_gains([result], MIN_CELL)
    for name, table in tables.items():
        check(table, name)
    assert tables["sudden_gains_summary"]["n_gains"].iloc[0] == "0"


# ---------------------------------------------------------------------------------------------
# figures and report sections


def test_figures_draw_results_and_reasons(derived):
    from analysis.figures.engagement import (dropout_km_figure, sudden_gains_figure,
                                             therapist_patient_figure)
    from analysis.instruments import BUILT_IN

    phq9, wai = BUILT_IN["phq9"], BUILT_IN["wai_sr"]
    sessions, offered = registry_of(derived, status=False)
    km = dropout_stage(sessions, offered, derived, DropoutSettings())["dropout_km"]
    assert dropout_km_figure(km, wai, min_cell=MIN_CELL).axes[0].get_legend() is not None
    assert dropout_km_figure(km.iloc[0:0], wai, min_cell=MIN_CELL).axes
    fits = [fit_therapist_patient_outcome(derived, "phq9")]
    tables = combine_therapist_patient(fits, MIN_CELL)
    figure = therapist_patient_figure(tables["therapist_patient_points"],
                                      tables["therapist_patient_alliance"], phq9, wai,
                                      min_cell=MIN_CELL)
    assert len(figure.axes[0].collections) == 1
    none = combine_therapist_patient([fit_therapist_patient_outcome(
        derived.drop(columns="therapist_id"), "phq9")], MIN_CELL)
    figure = therapist_patient_figure(none["therapist_patient_points"],
                                      none["therapist_patient_alliance"], phq9, wai,
                                      min_cell=MIN_CELL)
    assert "no therapist ids" in figure.axes[0].texts[0].get_text()
    settings = SuddenGainSettings(directions={"phq9": "lower_is_better"}, cutoff=7.0)
    course = combine_sudden_gains([sudden_gains_outcome(one_gain_frame(12), PARAMETERS, "phq9",
                                                        settings)], MIN_CELL)
    figure = sudden_gains_figure(course["sudden_gains_course"], phq9, wai, min_cell=MIN_CELL)
    assert len(figure.axes) == 2 and "24" in figure._suptitle.get_text()
    empty = sudden_gains_figure(course["sudden_gains_course"].iloc[0:0], phq9, wai,
                                min_cell=MIN_CELL)
    assert "No sudden gain" in empty.axes[0].texts[0].get_text()


def test_report_sections_say_switched_off_and_not_estimated(derived):
    from analysis.report.engagement import (dropout_context, sudden_gains_context,
                                            therapist_patient_context)
    from analysis.report.inputs import ReportTables
    from analysis.report.view import ReportView

    study = make_study(run=["M2"])
    view = ReportView(study.report)
    none = combine_therapist_patient([fit_therapist_patient_outcome(
        derived.drop(columns="therapist_id"), outcome) for outcome in ("phq9", "gad7")],
        MIN_CELL)
    tables = ReportTables(therapist_patient_alliance=none["therapist_patient_alliance"])
    context = therapist_patient_context(tables, view)
    assert context["therapist_patient_entries"][0]["sentence"] == (
        "Not estimated: the data have no therapist ids.")
    sessions, offered = registry_of(derived, status=False)
    episodes = dropout_stage(sessions, offered, derived, DropoutSettings())["dropout_episodes"]
    fits = [fit_dropout_outcome(derived, episodes, outcome, DropoutHazardSettings())
            for outcome in ("phq9", "gad7")]
    tables = ReportTables(**combine_dropout(fits, episodes, MIN_CELL, status_recorded=False))
    context = dropout_context(tables, view)
    assert "dropout is a proxy" in context["dropout_definition"]
    assert any("d = 0.55 (Sharf, Primavera & Diener (2010)" in s
               for s in context["dropout_sentences"])
    assert context["attendance_table"].rows
    gains = sudden_gains_context(ReportTables(), view)
    assert gains["sudden_gains_entries"][0]["sentences"] == ["No result in this run."]
    import dataclasses

    off = dataclasses.replace(study.report, engagement=dataclasses.replace(
        study.report.engagement, dropout=None, sudden_gains=None, therapist_patient=False))
    view = ReportView(off)
    assert dropout_context(tables, view)["dropout_off"].startswith("Not run: switched off")
    assert not therapist_patient_context(tables, view)["therapist_patient_run"]
    assert not sudden_gains_context(tables, view)["sudden_gains_run"]


def test_the_published_column_lists_follow_the_analysis_modules():
    from analysis.engagement.dropout import STATUS_CATEGORIES
    from analysis.engagement.dropout_stage import ATTENDANCE_COLUMNS, EPISODE_COLUMNS
    from analysis.engagement.sudden_gains import GAIN_COLUMNS
    from analysis.engagement.sudden_gains_stage import GAIN_TABLE_COLUMNS

    # written out as literals (the contracts read them without importing), kept in step here
    assert GAIN_TABLE_COLUMNS[2:-3] == GAIN_COLUMNS
    for columns in (EPISODE_COLUMNS, ATTENDANCE_COLUMNS):
        start = columns.index("attended")
        assert tuple(columns[start:start + 4]) == STATUS_CATEGORIES


def test_simulated_attendance_and_endings_through_ingest(tmp_path):
    """The simulator's status and ending columns, mapped in config, reach the dropout stage:
    the recorded dropouts are the simulated ones and the missed appointments are offered."""
    import dataclasses

    import yaml

    from analysis.ingest import run_ingest
    from analysis.config import PROJECT_ROOT
    from analysis.privacy import DEMO_KEY
    from analysis.simulate import simulate_study, write_study
    from analysis.study import ingest_settings, study_from_dict

    simulated = simulate_study(120, 12, seed=3, engagement=True)
    write_study(simulated, tmp_path)
    config = yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text())
    sessions_table = config["inputs"]["sessions"]
    sessions_table["columns"].update(status="status", ending="ending")
    sessions_table["status_values"] = {"attended": ["attended"],
                                       "did_not_attend": ["did not attend"]}
    sessions_table["ending_values"] = {"completed": ["completed"],
                                       "dropped_out": ["dropped out"]}
    study = study_from_dict(config)
    assert study.engagement.dropout.ending_recorded and study.engagement.dropout.status_recorded
    settings = ingest_settings(study)
    settings = dataclasses.replace(settings, inputs=tuple(
        dataclasses.replace(table, path=str(tmp_path / Path(table.path).name))
        for table in settings.inputs))
    ingested = run_ingest(settings, key=DEMO_KEY)
    offered = ingested["offered_sessions"]
    derived = ingested["sessions"].assign(alliance_early=4.0)
    tables = dropout_stage(ingested["sessions"], offered, derived, study.engagement.dropout)
    episodes = tables["dropout_episodes"]
    truth = simulated.truth["engagement"]
    assert int(episodes["dropout"].sum()) == truth["n_dropped_out"]
    assert set(episodes["dropout_source"]) == {"recorded"}
    # the missed appointments that survived cleaning are offered, not attended
    assert 0 < episodes["did_not_attend"].sum() <= truth["n_missed_appointments"]
    attendance = combine_dropout([], episodes, MIN_CELL, status_recorded=True)["attendance"]
    assert 0.8 < attendance["attendance_rate"].iloc[0] < 1.0
