"""Unit tests of analysis.ingest: layouts, formats, linking, allowlist, pseudonyms, accounting."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.config import check_config
from analysis.errors import ConfigError
from analysis.instrument_declarations import build_registry
from analysis.ingest import ingest_all, read_export
from analysis.privacy import pseudonymise
from analysis.settings import InputTable, LinkingSettings
from analysis.study import input_table
from conftest import check_balance

KEY = "unit-test-key"


def sessions_frame():
    rows = []
    for client, therapist in (("CL-1", "TH-1"), ("CL-2", "TH-2")):
        for session, date in ((1, "2024-02-01"), (2, "2024-02-08"), (3, "2024-02-15")):
            rows.append({"Client": client, "Clinician": therapist, "Visit": str(session), "Seen": date,
                         "Surname": "Smith", **{f"W{i}": "4" for i in range(1, 13)}})
    return pd.DataFrame(rows).astype("string")


REGISTRY = build_registry({})


def config_for(inputs, linking=None):
    """The declared tables and linking settings of a config (checked, defaults filled), as the
    study resolves them (analysis.study)."""
    config = check_config({
        "inputs": inputs,
        "linking": linking or {},
        "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]},
    })
    tables = tuple(input_table(name, table, REGISTRY) for name, table in config["inputs"].items())
    return tables, LinkingSettings(**config["linking"])


SESSIONS_TABLE = {
    "path": "visits.csv", "kind": "sessions",
    "columns": {"client": "Client", "therapist": "Clinician", "session": "Visit", "date": "Seen"},
    "instruments": {"wai_sr": {"items": [f"W{i}" for i in range(1, 13)]}},
}


def run(tables, config):
    inputs, linking = config
    return ingest_all(tables, inputs, linking, REGISTRY, KEY)


def test_wide_totals_layout_and_allowlist():
    wide = pd.DataFrame({
        "ID": ["CL-1", "CL-2"], "phq9_s1": ["20", "15"], "phq9_s2": ["18", pd.NA], "phq9_s3": ["12", "30"],
        "email": ["a@example.org", "b@example.org"],
    }).astype("string")
    config = config_for({
        "visits": SESSIONS_TABLE,
        "scores": {"path": "scores.csv", "layout": "wide", "columns": {"client": "ID"},
                   "instruments": {"phq9": {"total": "phq9_s{session}"}}},
    })
    result = run({"visits": sessions_frame(), "scores": wide}, config)
    phq = result["administrations"].query("instrument == 'phq9'")
    assert sorted(phq["given_total"].tolist()) == [12.0, 15.0, 18.0, 20.0]  # 30 is out of range
    assert result["rejects"]["rule"].tolist() == ["total_out_of_range"]
    flow = result["flow"]
    assert check_balance(flow) == []
    phq_flow = flow[(flow["unit"] == "administrations") & (flow["instrument"] == "phq9")]
    assert phq_flow.groupby("stage")["count"].sum().to_dict() == {"read": 5, "rejected": 1, "kept": 4}
    dropped = flow[(flow["stage"] == "dropped_column")]
    assert set(dropped["reason"]) == {"Surname", "email"}
    assert "a@example.org" not in result["administrations"].to_string()


def test_link_by_date_within_window():
    outcomes = pd.DataFrame({
        "Client": ["CL-1", "CL-1", "CL-2"], "When": ["2024-02-02", "2024-02-20", "2024-02-14"],
        **{f"phq9_{i}": ["1", "1", "2"] for i in range(1, 10)},
    }).astype("string")
    config = config_for({
        "visits": SESSIONS_TABLE,
        "phq": {"path": "phq.csv", "columns": {"client": "Client", "date": "When"},
                "instruments": {"phq9": {"items": "phq9_{i}"}}},
    }, linking={"by": "date", "window_days": 2})
    result = run({"visits": sessions_frame(), "phq": outcomes}, config)
    phq = result["administrations"].query("instrument == 'phq9'").sort_values("session")
    assert phq["session"].tolist() == [1, 3]  # 2024-02-20 is 5 days from the last session
    assert result["rejects"]["rule"].tolist() == ["unlinked_date"]
    assert check_balance(result["flow"]) == []


def test_orphans_kept_without_therapist_when_configured():
    outcomes = pd.DataFrame({"Client": ["CL-9"], "Visit": ["1"], **{f"phq9_{i}": ["1"] for i in range(1, 10)}})
    config = config_for({
        "visits": SESSIONS_TABLE,
        "phq": {"path": "phq.csv", "columns": {"client": "Client", "session": "Visit"},
                "instruments": {"phq9": {"items": "phq9_{i}"}}},
    }, linking={"orphan_outcomes": "keep"})
    result = run({"visits": sessions_frame(), "phq": outcomes.astype("string")}, config)
    sessions = result["sessions"]
    orphan = sessions[sessions["therapist_id"].isna()]
    assert len(orphan) == 1 and result["rejects"].empty


def test_session_numbers_from_dates_and_date_order_flags():
    frame = sessions_frame()
    frame.loc[2, "Seen"] = "2024-01-01"  # CL-1's session 3 dated before session 2
    config = config_for({"visits": SESSIONS_TABLE})
    result = run({"visits": frame}, config)
    assert result["flags"]["rule"].tolist() == ["session_date_order"]
    assert result["flags"]["row"].tolist() == [4]
    undated = {**SESSIONS_TABLE, "columns": {k: v for k, v in SESSIONS_TABLE["columns"].items() if k != "session"}}
    result = run({"visits": sessions_frame()}, config_for({"visits": undated}))
    assert result["sessions"]["session"].tolist() == [1, 2, 3, 1, 2, 3]
    assert result["sessions"]["day"].tolist() == [0, 7, 14, 0, 7, 14]


def test_pseudonyms_are_keyed_and_stable():
    ids = pd.Series(["CL-1", "CL-2", "CL-1"])
    first = pseudonymise(ids, "key-a", "c_")
    assert first[0] == first[2] and first[0] != first[1]
    assert pseudonymise(ids, "key-a", "c_").equals(first)
    assert not pseudonymise(ids, "key-b", "c_").equals(first)
    assert not first.str.contains("CL").any()


@pytest.mark.parametrize("suffix", ["xlsx", "parquet"])
def test_excel_and_parquet_read_as_text(tmp_path: Path, suffix):
    frame = pd.DataFrame({"Client": [101, 102], "Visit": [1, 2], "Score": [3.5, 4.0]})
    path = tmp_path / f"export.{suffix}"
    frame.to_excel(path, index=False) if suffix == "xlsx" else frame.to_parquet(path)
    table = InputTable(name="export", path=str(path), kind="questionnaires", format=None, delimiter=",",
                       encoding="utf-8", sheet=0, layout="long", date_format=None, columns={}, instruments={})
    read = read_export(path, table)
    assert read["Client"].tolist() == ["101", "102"]  # whole numbers without ".0"
    assert read["Score"].tolist() == ["3.5", "4"]


def test_sessions_table_is_required():
    outcomes = pd.DataFrame({"Client": ["CL-9"], "Visit": ["1"], **{f"phq9_{i}": ["1"] for i in range(1, 10)}})
    config = config_for({"phq": {"path": "phq.csv", "columns": {"client": "Client", "session": "Visit"},
                                 "instruments": {"phq9": {"items": "phq9_{i}"}}}})
    with pytest.raises(ConfigError, match="kind: sessions"):
        run({"phq": outcomes.astype("string")}, config)


def test_date_format_from_config_is_used_for_linking_and_day_offsets():
    frame = sessions_frame()
    frame["Seen"] = frame["Seen"].str.replace(r"(\d+)-(\d+)-(\d+)", r"\3/\2/\1", regex=True)
    outcomes = pd.DataFrame({
        "Client": ["CL-1"], "When": ["09/02/2024"], **{f"phq9_{i}": ["1"] for i in range(1, 10)},
    }).astype("string")
    config = config_for({
        "visits": {**SESSIONS_TABLE, "date_format": "%d/%m/%Y"},
        "phq": {"path": "phq.csv", "columns": {"client": "Client", "date": "When"}, "date_format": "%d/%m/%Y",
                "instruments": {"phq9": {"items": "phq9_{i}"}}},
    }, linking={"by": "date", "window_days": 1})
    result = run({"visits": frame, "phq": outcomes}, config)
    assert result["rejects"].empty
    assert result["sessions"]["day"].tolist() == [0, 7, 14, 0, 7, 14]
    assert result["administrations"].query("instrument == 'phq9'")["session"].tolist() == [2]


def test_wide_row_without_any_answer_is_kept_with_no_measure():
    wide = pd.DataFrame({
        "ID": ["CL-1", "CL-2", "CL-3"], "phq9_s1": ["20", "15", pd.NA], "phq9_s2": ["18", pd.NA, pd.NA],
    }).astype("string")
    config = config_for({
        "visits": SESSIONS_TABLE,
        "scores": {"path": "scores.csv", "layout": "wide", "columns": {"client": "ID"},
                   "instruments": {"phq9": {"total": "phq9_s{session}"}}},
    })
    result = run({"visits": sessions_frame(), "scores": wide}, config)
    flow = result["flow"]
    assert check_balance(flow) == []
    rows = flow[(flow["source"] == "scores") & (flow["unit"] == "rows")]
    assert rows.groupby("stage")["count"].sum().to_dict() == {"read": 3, "kept": 3, "no_measure": 1}


def test_empty_row_beside_a_filled_one_is_set_aside_but_two_filled_ones_conflict():
    frame = sessions_frame()
    empty = frame.iloc[[0]].copy()
    empty[[f"W{i}" for i in range(1, 13)]] = pd.NA
    conflicting = frame.iloc[[3]].copy()
    conflicting["W1"] = "5"
    frame = pd.concat([empty, frame, conflicting], ignore_index=True)
    result = run({"visits": frame}, config_for({"visits": SESSIONS_TABLE}))
    rejects = result["rejects"]
    assert rejects["rule"].tolist() == ["conflicting_duplicate"] * 2
    assert sorted(rejects["row"]) == [6, 9]  # CL-2's first session twice, with different answers
    flow = result["flow"]
    assert check_balance(flow) == []
    no_measure = flow[flow["stage"] == "no_measure"]
    assert no_measure["count"].tolist() == [1]
    assert no_measure["reason"].str.startswith("session records with no measure").all()
    assert len(result["sessions"]) == 5  # CL-1's session 1 is kept, from its filled row
