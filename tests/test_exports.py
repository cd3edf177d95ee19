"""Exports as they come: missing-value codes, blank lines, placeholder rows, SPSS and Stata files.

Small exports are written into a temporary folder as a clinic's system would write them (a CSV
with SPSS's "#NULL!", -99 and 999, 237 blank trailing lines, empty placeholder weeks beside
filled ones; an SPSS .sav with user-defined missing values and value labels; a Stata .dta) and
ingested through the same functions as the pipeline's ingest stage. No binary file is committed:
pyreadstat writes them here.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.config import check_config
from analysis.errors import DataError
from analysis.ingest import ingest_all, read_export
from analysis.ingest.reading import blank_rows, missing_codes, set_missing
from analysis.ingest.tables import NOTES
from analysis.instrument_declarations import build_registry
from analysis.privacy import pseudonymise
from analysis.quality import check_quality, summarise_quality
from analysis.settings import LinkingSettings, QualitySettings
from analysis.study import input_table
from conftest import check_balance

KEY = "export-test-key"
REGISTRY = build_registry({})
WAI = [f"WAI{i}" for i in range(1, 13)]


def declared(inputs: dict, linking: dict | None = None):
    """The input tables and linking settings of a config, checked and completed by the schema
    and resolved as the study resolves them."""
    config = check_config({"inputs": inputs, "linking": linking or {},
                           "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]}})
    tables = tuple(input_table(name, table, REGISTRY) for name, table in config["inputs"].items())
    return tables, LinkingSettings(**config["linking"])


def ingest_files(inputs: dict, linking: dict | None = None) -> dict[str, pd.DataFrame]:
    """Read every declared file as the ingest stage does, then ingest them together."""
    tables, settings = declared(inputs, linking)
    frames = {table.name: read_export(table.path, table) for table in tables}
    return ingest_all(frames, tables, settings, REGISTRY, KEY)


def flow_count(flow: pd.DataFrame, source: str, note: str) -> int:
    stage, unit, reason = NOTES[note]
    part = flow[(flow["source"] == source) & (flow["stage"] == stage) & (flow["unit"] == unit)
                & (flow["reason"] == reason)]
    return int(part["count"].sum())


def rows_flow(flow: pd.DataFrame, source: str) -> dict[str, int]:
    part = flow[(flow["source"] == source) & (flow["unit"] == "rows")]
    return part.groupby("stage")["count"].sum().to_dict()


# ---------------------------------------------------------------------------------------------
# a weekly CSV export with SPSS codes


def weekly_rows() -> list[dict]:
    """Three families, four weeks each; every week carries WAI items and a PHQ-9 total."""
    rows = []
    for family, clinician in (("F-01", "C-1"), ("F-02", "C-1"), ("F-03", "C-2")):
        for week in range(2, 6):  # numbered from 2, as the service numbers its weeks
            rows.append({"Family": family, "Clinician": clinician, "Week": str(week),
                         **{item: "4" for item in WAI}, "PHQ": str(10 + week)})
    return rows


def write_csv(path: Path, rows: list[dict], blank_lines: int = 0, blank_cell: str = "") -> Path:
    text = pd.DataFrame(rows).to_csv(index=False)
    n_columns = len(rows[0])
    text += "".join(",".join([blank_cell] * n_columns) + "\n" for _ in range(blank_lines))
    path.write_text(text, encoding="utf-8")
    return path


def weekly_table(path: Path, **extra) -> dict:
    return {"path": str(path), "kind": "sessions",
            "columns": {"client": "Family", "therapist": "Clinician", "session": "Week"},
            "instruments": {"wai_sr": {"items": WAI}, "phq9": {"total": "PHQ"}}, **extra}


def coded_rows() -> list[dict]:
    rows = weekly_rows()
    rows[0]["WAI3"] = "#NULL!"          # SPSS system-missing written out by a CSV export
    rows[1]["WAI5"] = "-99"             # a numeric code
    rows[2]["PHQ"] = "999"              # a code in a pre-scored total
    rows[3]["WAI7"] = " -99.0 "         # the same number, spelt otherwise
    rows[4].update({item: "#NULL!" for item in WAI})  # a whole questionnaire coded missing
    return rows


def test_missing_value_codes_become_missing_not_rejects(tmp_path):
    path = write_csv(tmp_path / "weekly.csv", coded_rows())
    result = ingest_files({"weekly": weekly_table(path, missing_values=["#NULL!", -99, 999])})
    flow = result["flow"]
    assert result["rejects"].empty, result["rejects"].to_string()
    assert check_balance(flow) == []
    assert flow_count(flow, "weekly", "missing_values") == 1 + 1 + 1 + 1 + 12
    assert rows_flow(flow, "weekly") == {"read": 12, "kept": 12}
    admins = result["administrations"]
    wai = admins[admins["instrument"] == "wai_sr"].set_index("source_row")
    assert np.isnan(wai.loc[2, "item_3"]) and wai.loc[2, "item_4"] == 4
    assert np.isnan(wai.loc[3, "item_5"]) and np.isnan(wai.loc[5, "item_7"])
    assert 6 not in wai.index  # every item coded missing: no administration
    phq = admins[admins["instrument"] == "phq9"].set_index("source_row")
    assert 4 not in phq.index and len(phq) == 11  # the coded total is missing, not 999
    # the fully coded row is still a session: it has a PHQ-9 total
    assert len(result["sessions"]) == 12


def test_without_missing_values_the_gate_names_the_key_that_helps(tmp_path):
    rows = weekly_rows()
    for row in rows[:9]:
        row.update({item: "#NULL!" for item in WAI[:3]})
    path = write_csv(tmp_path / "weekly.csv", rows)
    result = ingest_files({"weekly": weekly_table(path)})
    assert set(result["rejects"]["rule"]) == {"item_not_numeric"}
    reason = result["rejects"]["reason"].iloc[0]
    assert '"#NULL!"' in reason and "inputs.weekly.missing_values" in reason
    settings = QualitySettings(max_reject_share=0.2, inputs={"weekly": str(path)})
    summary = summarise_quality(result["flow"], result["rejects"], settings)
    with pytest.raises(DataError) as raised:
        check_quality(summary, settings)
    message = str(raised.value)
    assert "item_not_numeric" in message
    assert "inputs.weekly.missing_values" in message
    assert "F-0" not in message  # never an identifier's value


def test_numeric_codes_out_of_range_point_at_missing_values(tmp_path):
    rows = weekly_rows()
    for row in rows[:6]:
        row["PHQ"] = "999"
    result = ingest_files({"weekly": weekly_table(write_csv(tmp_path / "w.csv", rows))})
    settings = QualitySettings(max_reject_share=0.2, inputs={"weekly": str(tmp_path / "w.csv")})
    with pytest.raises(DataError, match=r"inputs\.weekly\.missing_values"):
        check_quality(summarise_quality(result["flow"], result["rejects"], settings), settings)


# ---------------------------------------------------------------------------------------------
# blank lines and placeholder rows


@pytest.mark.parametrize("blank_cell", ["", " ", "#NULL!"])
def test_blank_trailing_lines_are_skipped_not_rejected(tmp_path, blank_cell):
    path = write_csv(tmp_path / "weekly.csv", weekly_rows(), blank_lines=237, blank_cell=blank_cell)
    result = ingest_files({"weekly": weekly_table(path, missing_values=["#NULL!"])})
    flow = result["flow"]
    assert result["rejects"].empty
    assert "missing_client_id" not in set(flow["reason"])
    assert flow_count(flow, "weekly", "blank_rows") == 237
    assert rows_flow(flow, "weekly") == {"read": 12, "kept": 12, "skipped": 237}
    assert flow_count(flow, "weekly", "missing_values") == 0  # blank rows are not counted twice
    assert check_balance(flow) == []
    assert len(result["sessions"]) == 12


def test_blank_line_in_the_middle_keeps_row_numbers(tmp_path):
    rows = weekly_rows()
    rows[5] = {key: "" for key in rows[5]}  # line 7 of the file is blank
    rows[8]["WAI1"] = "9"                   # line 10: out of range
    path = write_csv(tmp_path / "weekly.csv", rows)
    result = ingest_files({"weekly": weekly_table(path)})
    assert result["rejects"]["row"].tolist() == [10]
    assert flow_count(result["flow"], "weekly", "blank_rows") == 1
    assert check_balance(result["flow"]) == []


def test_a_file_of_blank_rows_only_is_one_clear_error(tmp_path):
    rows = [{key: "" for key in weekly_rows()[0]}]
    path = write_csv(tmp_path / "weekly.csv", rows, blank_lines=3)
    with pytest.raises(DataError, match="every one of its 4 rows is empty"):
        ingest_files({"weekly": weekly_table(path)})


def placeholder_rows() -> list[dict]:
    rows = weekly_rows()
    empty = {item: "" for item in WAI} | {"PHQ": ""}
    # an empty placeholder beside the filled row of the same family and week (before and after)
    rows.insert(0, {**rows[0], **empty})
    rows.append({**rows[6], **empty})
    # placeholder weeks without any data: week 6 of F-01, week 7 of F-02
    rows.append({"Family": "F-01", "Clinician": "C-1", "Week": "6", **empty})
    rows.append({"Family": "F-02", "Clinician": "C-1", "Week": "7", **empty})
    return rows


def test_placeholder_rows_are_neither_conflicts_nor_sessions(tmp_path):
    path = write_csv(tmp_path / "weekly.csv", placeholder_rows(), blank_lines=237)
    result = ingest_files({"weekly": weekly_table(path)})
    flow = result["flow"]
    assert result["rejects"].empty, result["rejects"].to_string()
    assert check_balance(flow) == []
    # every real session kept: the filled rows beside the empty ones are not conflicts
    admins = result["administrations"]
    assert (admins["instrument"] == "wai_sr").sum() == 12
    sessions = result["sessions"]
    assert len(sessions) == 12
    assert sorted(sessions.groupby("client_id")["session"].max()) == [5, 5, 5]
    assert rows_flow(flow, "weekly") == {"read": 16, "kept": 16, "skipped": 237,
                                         "no_measure": 4}
    assert flow_count(flow, "weekly", "session_no_measure") == 4


def dated(rows: list[dict]) -> list[dict]:
    """The rows with a visit date column: filled rows dated a week apart by week, placeholder
    rows (no value in any measure) with the date left empty, as the export leaves it."""
    return [{**row, "Date": "" if not row["PHQ"] else
             (datetime.date(2026, 1, 5) + datetime.timedelta(weeks=int(row["Week"]))).isoformat()}
            for row in rows]


def test_a_placeholder_without_a_date_is_a_placeholder_not_a_missing_date(tmp_path):
    path = write_csv(tmp_path / "weekly.csv", dated(placeholder_rows()))
    table = weekly_table(path)
    table["columns"] = {**table["columns"], "date": "Date"}
    result = ingest_files({"weekly": table})
    flow = result["flow"]
    assert result["rejects"].empty, result["rejects"].to_string()
    assert "missing_date" not in set(flow["reason"])
    assert check_balance(flow) == []
    # the same as without the date column: 12 sessions, 4 placeholder rows not counted as sessions
    sessions = result["sessions"]
    assert len(sessions) == 12 and sessions["day"].notna().all()
    assert (result["administrations"]["instrument"] == "wai_sr").sum() == 12
    assert rows_flow(flow, "weekly") == {"read": 16, "kept": 16, "no_measure": 4}
    assert flow_count(flow, "weekly", "session_no_measure") == 4


def test_placeholders_without_a_date_in_a_table_of_dates_only_are_set_aside(tmp_path):
    # no session numbers: the date places a record; two undated placeholders of one family are
    # neither duplicates nor conflicts of each other
    rows = [{key: value for key, value in row.items() if key != "Week"}
            for row in dated(placeholder_rows())]
    path = write_csv(tmp_path / "weekly.csv", rows)
    table = weekly_table(path)
    table["columns"] = {"client": "Family", "therapist": "Clinician", "date": "Date"}
    result = ingest_files({"weekly": table})
    flow = result["flow"]
    assert result["rejects"].empty, result["rejects"].to_string()
    assert check_balance(flow) == []
    assert len(result["sessions"]) == 12
    assert rows_flow(flow, "weekly") == {"read": 16, "kept": 16, "no_measure": 4}


def test_an_undated_record_of_an_attendance_log_is_still_rejected(tmp_path):
    # without instruments every record is a session, so its date is needed
    rows = [{"Family": "F-01", "Clinician": "C-1", "Week": str(week),
             "Date": "" if week == 2 else f"2026-01-{week:02d}"} for week in (1, 2, 3)]
    visits = write_csv(tmp_path / "visits.csv", rows)
    phq = write_csv(tmp_path / "phq.csv", [{"Family": "F-01", "Week": "1",
                                             **{f"P{i}": "1" for i in range(1, 10)}}])
    result = ingest_files({
        "visits": {"path": str(visits), "kind": "sessions",
                   "columns": {"client": "Family", "therapist": "Clinician", "session": "Week",
                               "date": "Date"}},
        "phq": {"path": str(phq), "columns": {"client": "Family", "session": "Week"},
                "instruments": {"phq9": {"items": "P{i}"}}},
    })
    assert result["rejects"]["rule"].tolist() == ["missing_date"]
    assert len(result["sessions"]) == 2


def test_a_placeholder_with_a_linked_questionnaire_is_a_session(tmp_path):
    rows = placeholder_rows()
    sessions_path = write_csv(tmp_path / "weekly.csv", rows)
    phq_rows = [{"Family": "F-01", "Week": "6", **{f"P{i}": "1" for i in range(1, 10)}},
                {"Family": "F-01", "Week": "2", **{f"P{i}": "" for i in range(1, 10)}}]
    phq_path = write_csv(tmp_path / "phq.csv", phq_rows)
    table = weekly_table(sessions_path)
    table["instruments"] = {"wai_sr": {"items": WAI}}
    result = ingest_files({
        "weekly": table,
        "phq": {"path": str(phq_path), "columns": {"client": "Family", "session": "Week"},
                "instruments": {"phq9": {"items": "P{i}"}}},
    })
    flow = result["flow"]
    assert check_balance(flow) == []
    sessions = result["sessions"]
    f01 = pseudonymise(pd.Series(["F-01"]), KEY, "c_")[0]
    assert 6 in set(sessions.loc[sessions["client_id"] == f01, "session"])
    assert len(sessions) == 13
    # two empty placeholders beside filled rows, and week 7 of F-02: not sessions
    assert flow_count(flow, "weekly", "session_no_measure") == 3
    # the questionnaire row without any answer is no administration, and is said so
    assert flow_count(flow, "phq", "row_no_measure") == 1
    assert rows_flow(flow, "phq") == {"read": 2, "kept": 2, "no_measure": 1}


def test_a_sessions_table_without_instruments_is_an_attendance_log(tmp_path):
    rows = [{"Family": family, "Clinician": "C-1", "Week": str(week)}
            for family in ("F-01", "F-02") for week in (1, 2, 3)]
    visits = write_csv(tmp_path / "visits.csv", rows)
    phq = write_csv(tmp_path / "phq.csv", [{"Family": "F-01", "Week": "1",
                                             **{f"P{i}": "1" for i in range(1, 10)}}])
    result = ingest_files({
        "visits": {"path": str(visits), "kind": "sessions",
                   "columns": {"client": "Family", "therapist": "Clinician", "session": "Week"}},
        "phq": {"path": str(phq), "columns": {"client": "Family", "session": "Week"},
                "instruments": {"phq9": {"items": "P{i}"}}},
    })
    assert len(result["sessions"]) == 6
    assert flow_count(result["flow"], "visits", "session_no_measure") == 0
    assert check_balance(result["flow"]) == []


# ---------------------------------------------------------------------------------------------
# SPSS and Stata


def statistical_frame() -> pd.DataFrame:
    frame = pd.DataFrame({
        "family": ["F-01"] * 3 + ["F-02"] * 3,
        "clinician": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
        "week": [3.0, 4.0, 5.0, 3.0, 4.0, 5.0],
        "visit_date": pd.to_datetime(["2024-01-08", "2024-01-15", "2024-01-22",
                                      "2024-01-09", "2024-01-16", "2024-01-23"]),
        **{item.lower(): [4.0, 5.0, 3.0, 4.0, 2.0, 5.0] for item in WAI},
        "phq_total": [12.0, -99.0, 8.0, 20.0, 15.0, -99.0],
    })
    frame.loc[1, "wai2"] = -99.0
    # a date in SPSS's DATE format (read back as datetime.date, not as a timestamp)
    frame["intake"] = [datetime.date(2023, 12, day) for day in (1, 1, 1, 4, 4, 4)]
    return frame


def statistical_table(path: Path, **extra) -> dict:
    return {"path": str(path), "kind": "sessions",
            "columns": {"client": "family", "therapist": "clinician", "session": "week",
                        "date": "visit_date"},
            "instruments": {"wai_sr": {"items": "wai{i}"}, "phq9": {"total": "phq_total"}},
            **extra}


def write_sav(path: Path) -> Path:
    import pyreadstat

    pyreadstat.write_sav(
        statistical_frame(), str(path),
        missing_ranges={"phq_total": [-99], "wai2": [-99]},
        variable_value_labels={"clinician": {1: "Clinician A", 2: "Clinician B"},
                               "wai1": {1: "Seldom", 5: "Always"}},
    )
    return path


def test_spss_user_missing_and_value_labels(tmp_path):
    pytest.importorskip("pyreadstat")
    path = write_sav(tmp_path / "weekly.sav")
    result = ingest_files({"weekly": statistical_table(path)})  # format from the ending
    flow = result["flow"]
    assert result["rejects"].empty, result["rejects"].to_string()  # -99 declared missing
    assert check_balance(flow) == []
    admins = result["administrations"]
    wai = admins[admins["instrument"] == "wai_sr"].sort_values("source_row")
    assert np.isnan(wai["item_2"].iloc[1])
    assert wai["item_1"].tolist() == [4.0, 5.0, 3.0, 4.0, 2.0, 5.0]  # numbers, not labels
    phq = admins[admins["instrument"] == "phq9"]
    assert sorted(phq["given_total"]) == [8.0, 12.0, 15.0, 20.0]
    sessions = result["sessions"]
    assert sorted(sessions["session"].unique()) == [3, 4, 5]
    assert sessions["day"].tolist() == [0, 7, 14, 0, 7, 14]
    labelled = set(pseudonymise(pd.Series(["Clinician A", "Clinician B"]), KEY, "t_"))
    assert set(sessions["therapist_id"]) == labelled

    codes = ingest_files({"weekly": statistical_table(path, value_labels=False)})
    assert set(codes["sessions"]["therapist_id"]) == set(
        pseudonymise(pd.Series(["1", "2"]), KEY, "t_"))


def test_spss_read_as_text_keeps_numbers_and_dates(tmp_path):
    pytest.importorskip("pyreadstat")
    path = write_sav(tmp_path / "weekly.sav")
    tables, _ = declared({"weekly": statistical_table(path, format="spss",
                                                      date_format="%d/%m/%Y")})
    read = read_export(path, tables[0])
    assert read["week"].tolist() == ["3", "4", "5", "3", "4", "5"]
    assert read["visit_date"].iloc[0] == "08/01/2024"  # written in the table's date format
    assert read["intake"].iloc[3] == "04/12/2023"
    assert read["clinician"].tolist()[:1] == ["Clinician A"]
    assert read["wai1"].tolist()[0] == "4"
    assert pd.isna(read["phq_total"].iloc[1])


def test_stata_file(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    path = tmp_path / "weekly.dta"
    frame = statistical_frame()
    pyreadstat.write_dta(frame, str(path),
                         variable_value_labels={"clinician": {1: "Clinician A", 2: "Clinician B"}})
    result = ingest_files({"weekly": statistical_table(path, missing_values=[-99])})
    assert result["rejects"].empty, result["rejects"].to_string()
    assert check_balance(result["flow"]) == []
    assert flow_count(result["flow"], "weekly", "missing_values") == 3
    assert len(result["sessions"]) == 6
    assert set(result["sessions"]["therapist_id"]) == set(
        pseudonymise(pd.Series(["Clinician A", "Clinician B"]), KEY, "t_"))


def test_unreadable_statistical_file_is_one_clear_message(tmp_path):
    pytest.importorskip("pyreadstat")
    path = tmp_path / "weekly.sav"
    path.write_bytes(b"this is not an SPSS file\n" * 4)
    with pytest.raises(DataError) as raised:
        ingest_files({"weekly": statistical_table(path)})
    message = str(raised.value)
    assert str(path) in message and "inputs.weekly.format" in message
    assert "SPSS" in message


def test_missing_column_in_a_statistical_file_names_file_and_column(tmp_path):
    pytest.importorskip("pyreadstat")
    path = write_sav(tmp_path / "weekly.sav")
    table = statistical_table(path)
    table["columns"]["therapist"] = "therapist"
    with pytest.raises(DataError) as raised:
        ingest_files({"weekly": table})
    message = str(raised.value)
    assert str(path) in message and "'therapist'" in message
    assert "inputs.weekly.columns.therapist" in message


def test_format_from_the_schema():
    tables, _ = declared({"a": {"path": "a.sav", "format": "spss", "columns": {"client": "id"}},
                          "b": {"path": "b.dta", "format": "stata", "columns": {"client": "id"},
                                "missing_values": ["#NULL!", -99]}})
    assert tables[0].format == "spss" and tables[0].missing_values == ()
    assert tables[0].value_labels is True
    assert tables[1].missing_values == ("#NULL!", -99)
    assert tables[1].params()["missing_values"] == ["#NULL!", -99]
    assert type(tables[1]).from_params(tables[1].params()) == tables[1]


# ---------------------------------------------------------------------------------------------
# the reading helpers


def test_missing_codes_split_text_and_numbers():
    texts, numbers = missing_codes(["#NULL!", -99, 999, "-8", " NA "])
    assert texts == {"#NULL!", "NA"}
    assert numbers == {-99.0, 999.0, -8.0}


def test_set_missing_spares_ids_from_numeric_codes():
    frame = pd.DataFrame({"id": ["999", "#NULL!", "7"], "x": ["999", "#NULL!", "-99.0"],
                          "note": ["999", "a", "b"]}).astype("string")
    codes = missing_codes(["#NULL!", -99, 999])
    cleaned, n_cells = set_missing(frame, ["id", "x"], ["id"], codes)
    assert cleaned["id"].tolist()[0] == "999" and pd.isna(cleaned["id"].iloc[1])
    assert cleaned["x"].isna().all()
    assert cleaned["note"].tolist() == ["999", "a", "b"]  # not a mapped column
    assert n_cells == 4
    assert frame["x"].tolist()[0] == "999"  # the input is not changed


def test_blank_rows():
    frame = pd.DataFrame({"a": ["1", pd.NA, " ", "#NULL!"], "b": ["", pd.NA, "", "-99"]}
                         ).astype("string")
    assert blank_rows(frame).tolist() == [False, True, True, False]
    assert blank_rows(frame, missing_codes(["#NULL!", -99])).tolist() == [False, True, True, True]
