"""The session-status role: which session records were attended, and which were only offered;
and the episode-ending role: how each client's episode ended (dropped out, completed, other).

A sessions table may carry a status column (attended / did not attend / cancelled), mapped in
config by ``inputs.<table>.status_values``. Only attended sessions are sessions (they enter the
models); every record keeps its status in ``offered_sessions`` for the attendance rates; a
record with a non-attended status that carries a measure was attended in fact. Every row stays
accounted for in the data flow.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import ConfigError
from analysis.study import ending_values, status_values
from conftest import check_balance
from test_exports import WAI, ingest_files


def write_sessions(path: Path) -> Path:
    rows = []
    # F-01 attends 1-4; F-02 misses session 2 (DNA, no answers) and cancels 4; F-03's session 3
    # is marked DNA but carries a questionnaire (attended in fact)
    plan = {"F-01": ["Attended"] * 4, "F-02": ["Attended", "DNA", "Attended", "Cancelled"],
            "F-03": ["Attended", "Attended", "DNA", "Attended"]}
    for family, statuses in plan.items():
        for session, status in enumerate(statuses, start=1):
            answered = status == "Attended" or (family, session) == ("F-03", 3)
            rows.append({"Family": family, "Clinician": "C-1" if family != "F-03" else "C-2",
                         "Session": session, "Status": status,
                         **{item: (4 if answered else None) for item in WAI},
                         "PHQ": (12 if answered else None)})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def inputs(path: Path, status: dict | None = None) -> dict:
    return {"visits": {
        "path": str(path), "kind": "sessions",
        "columns": {"client": "Family", "therapist": "Clinician", "session": "Session",
                    "status": "Status"},
        "status_values": status or {"attended": ["Attended"], "did_not_attend": ["DNA"],
                                    "cancelled_by_client": ["Cancelled"]},
        "instruments": {"wai_sr": {"items": WAI}, "phq9": {"total": "PHQ"}},
    }}


def test_only_attended_sessions_are_sessions_and_offered_keeps_every_status(tmp_path):
    out = ingest_files(inputs(write_sessions(tmp_path / "visits.csv")))
    sessions, offered = out["sessions"], out["offered_sessions"]
    assert len(offered) == 12
    # F-02's DNA and cancellation are not sessions; F-03's DNA with a questionnaire is
    assert len(sessions) == 10
    counts = offered["status"].value_counts().to_dict()
    assert counts == {"attended": 10, "did_not_attend": 1, "cancelled_by_client": 1}
    flow = out["flow"]
    notes = flow[flow["stage"] == "not_attended"].set_index("reason")["count"].to_dict()
    assert notes == {
        "session records did not attend (not sessions; offered sessions only)": 1,
        "session records cancelled by client (not sessions; offered sessions only)": 1,
        "session records with a non-attended status but a measure (counted as attended)": 1,
    }
    assert check_balance(flow) == []


def test_a_status_value_not_mapped_is_rejected_with_the_key_to_edit(tmp_path):
    out = ingest_files(inputs(write_sessions(tmp_path / "visits.csv"),
                              {"attended": ["Attended"], "did_not_attend": ["DNA"]}))
    rejects = out["rejects"]
    assert set(rejects["rule"]) == {"unknown_status"}
    assert (rejects["column"] == "Status").all()
    assert "inputs.visits.status_values" in rejects["reason"].iloc[0]


def test_numeric_status_codes_match_any_spelling():
    table = {"kind": "sessions", "columns": {"client": "c", "status": "s"},
             "status_values": {"attended": [1, "1.0"], "did_not_attend": [2.0]}}
    with pytest.raises(ConfigError, match="listed under both"):
        status_values("t", table)
    table["status_values"]["attended"] = [1]
    assert status_values("t", table) == {"attended": ("1",), "did_not_attend": ("2",)}


def test_status_settings_are_checked():
    with pytest.raises(ConfigError, match="columns.status is not"):
        status_values("t", {"kind": "sessions", "columns": {"client": "c"},
                            "status_values": {"attended": ["x"]}})
    with pytest.raises(ConfigError, match="status_values.attended"):
        status_values("t", {"kind": "sessions", "columns": {"client": "c", "status": "s"}})
    with pytest.raises(ConfigError, match="kind: sessions"):
        status_values("t", {"kind": "questionnaires", "columns": {"client": "c", "status": "s"},
                            "status_values": {"attended": ["x"]}})


def test_without_a_status_column_placeholders_are_offered_but_not_sessions(tmp_path):
    frame = pd.read_csv(write_sessions(tmp_path / "visits.csv")).drop(columns=["Status"])
    frame.to_csv(tmp_path / "plain.csv", index=False)
    table = inputs(tmp_path / "plain.csv")
    del table["visits"]["columns"]["status"], table["visits"]["status_values"]
    out = ingest_files(table)
    offered = out["offered_sessions"]
    assert offered["status"].value_counts().to_dict() == {"attended": 10, "no_measure": 2}
    assert len(out["sessions"]) == 10


# ---------------------------------------------------------------------------------------------
# The episode-ending role


def with_endings(tmp_path: Path, last: dict[str, str]) -> dict:
    """The visits export with an ending column filled on each family's last record only."""
    frame = pd.read_csv(write_sessions(tmp_path / "visits.csv"))
    is_last = frame["Session"] == frame.groupby("Family")["Session"].transform("max")
    frame["EndReason"] = frame["Family"].map(last).where(is_last)
    frame.to_csv(tmp_path / "ended.csv", index=False)
    table = inputs(tmp_path / "ended.csv")
    table["visits"]["columns"]["ending"] = "EndReason"
    table["visits"]["ending_values"] = {"completed": ["Planned"], "dropped_out": ["Left", 9],
                                        "other": ["Moved"]}
    return table


def test_the_ending_column_reaches_the_offered_sessions_mapped(tmp_path):
    out = ingest_files(with_endings(tmp_path, {"F-01": "Planned", "F-02": "Left", "F-03": "9"}))
    offered = out["offered_sessions"]
    last = offered.dropna(subset=["ending"])
    assert len(last) == 3 and sorted(last["ending"]) == ["completed", "dropped_out",
                                                         "dropped_out"]
    assert out["rejects"].empty

    from analysis.engagement.dropout_stage import dropout_stage
    from analysis.settings import DropoutSettings

    derived = out["sessions"].assign(alliance_early=4.0)
    episodes = dropout_stage(out["sessions"], offered, derived,
                             DropoutSettings(ending_recorded=True))["dropout_episodes"]
    assert episodes["dropout"].tolist() == [0, 1, 1]
    assert set(episodes["dropout_source"]) == {"recorded"}


def test_an_ending_value_not_mapped_is_rejected_with_the_key_to_edit(tmp_path):
    out = ingest_files(with_endings(tmp_path, {"F-01": "Planned", "F-02": "Quit", "F-03": "9"}))
    rejects = out["rejects"]
    assert set(rejects["rule"]) == {"unknown_ending"} and len(rejects) == 1
    assert (rejects["column"] == "EndReason").all()
    assert "inputs.visits.ending_values" in rejects["reason"].iloc[0]


def test_ending_settings_are_checked():
    with pytest.raises(ConfigError, match="columns.ending is not"):
        ending_values("t", {"kind": "sessions", "columns": {"client": "c"},
                            "ending_values": {"dropped_out": ["x"]}})
    with pytest.raises(ConfigError, match="ending_values.dropped_out"):
        ending_values("t", {"kind": "sessions", "columns": {"client": "c", "ending": "e"},
                            "ending_values": {"completed": ["x"]}})
    with pytest.raises(ConfigError, match="kind: sessions"):
        ending_values("t", {"kind": "questionnaires", "columns": {"client": "c", "ending": "e"},
                            "ending_values": {"dropped_out": ["x"]}})
    assert ending_values("t", {"kind": "sessions", "columns": {"client": "c", "ending": "e"},
                               "ending_values": {"dropped_out": [2.0, "left"]}}) == {
        "dropped_out": ("2", "left")}
