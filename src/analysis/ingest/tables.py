"""The shapes ingest works with: table plans, per-table results, reject and flow rows.

The flow (``ingest_flow.csv``) has columns :data:`FLOW_COLUMNS`: for each file, rows read = kept
+ rejected; for each file and instrument, administrations read = kept (by the route that linked
them to a session, :data:`ROUTES`) + rejected (by rule). Rejects have :data:`REJECT_COLUMNS`:
file, row, column, instrument, rule, reason, never an identifier's value.

Beside them the flow holds lines that are neither kept nor rejected (:data:`NOTES`; a line is
left out when its count is 0): blank rows skipped (stage ``skipped``, unit ``rows``: not part of
rows read, so that the lines of a file = rows read + blank rows skipped), cells set missing by
the table's ``missing_values`` (stage ``missing_values``, unit ``cells``) and kept rows without a
value in any mapped measure (stage ``no_measure``, unit ``rows``: part of the kept rows; in a
sessions table these session records are not counted as attended sessions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


ROLES = ("client", "therapist", "session", "date", "status", "ending")


REJECT_COLUMNS = ["file", "row", "column", "instrument", "rule", "reason"]


FLOW_COLUMNS = ["source", "stage", "instrument", "unit", "reason", "count"]


# How a kept questionnaire found its session (the reason of a "kept administrations" flow row).
ROUTES = {
    "session_record": "in a session record",
    "session_number": "linked to a session record by session number",
    "date": "linked to a session record by date",
    "no_session_record": "no session record at this session number (kept; therapist of the "
                         "client's nearest session record)",
    "orphan": "client without any session record (kept without a therapist)",
}


# The flow lines that are neither kept nor rejected: (stage, unit, reason) by name.
NOTES = {
    "blank_rows": ("skipped", "rows", "blank rows skipped"),
    "missing_values": ("missing_values", "cells", "cells set missing by missing_values"),
    "session_no_measure": ("no_measure", "rows",
                           "session records with no measure (not counted as attended sessions)"),
    "row_no_measure": ("no_measure", "rows", "rows with no measure (no administration)"),
}


def note_entry(source: str, note: str, count: int) -> dict:
    """The flow line of one of :data:`NOTES`."""
    stage, unit, reason = NOTES[note]
    return flow_entry(source, stage, unit, reason, count)


#: How an episode ended, as the ending role distinguishes it (``inputs.<t>.ending_values``).
EPISODE_ENDINGS = ("completed", "dropped_out", "other")
#: The kinds of session record the status role distinguishes (``inputs.<t>.status_values``).
SESSION_STATUSES = ("attended", "did_not_attend", "cancelled_by_client", "cancelled_by_service")


def status_text(value) -> str:
    """A status code as the text it is compared with (whole numbers without ".0")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


# Data rows start on line 2 of a file with a header: row numbers match what a spreadsheet shows.
FIRST_DATA_ROW = 2


@dataclass
class InstrumentColumns:
    """Where one instrument's answers sit in one table (per session in wide layout)."""

    key: str
    items: dict[int, dict[int, str]] = field(default_factory=dict)  # session -> item -> column
    totals: dict[int, str] = field(default_factory=dict)  # session -> total column


@dataclass
class TablePlan:
    """How to read one declared table: its role columns and instrument columns."""

    name: str
    path: str
    kind: str
    layout: str
    roles: dict[str, str]
    instruments: list[InstrumentColumns]

    @property
    def allowlist(self) -> list[str]:
        columns = list(self.roles.values())
        for instrument in self.instruments:
            for by_item in instrument.items.values():
                columns.extend(by_item.values())
            columns.extend(instrument.totals.values())
        return list(dict.fromkeys(columns))


@dataclass
class TableResult:
    """What ingest made of one table, before linking."""

    records: pd.DataFrame  # one row per (source row, session): roles + instrument columns
    administrations: pd.DataFrame
    rejects: pd.DataFrame
    flow: list[dict]
    # file rows kept without any value in a mapped measure (no administration; in a sessions
    # table, candidates for "session records with no measure")
    no_measure_rows: frozenset[int] = frozenset()


def flow_entry(source: str, stage: str, unit: str, reason: str, count: int, instrument: str = "") -> dict:
    return {"source": source, "stage": stage, "instrument": instrument, "unit": unit,
            "reason": reason, "count": int(count)}


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({
        "record": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64"),
        "column": pd.Series(dtype="object"), "rule": pd.Series(dtype="object"),
        "reason": pd.Series(dtype="object"), "level": pd.Series(dtype="object"),
        "instrument": pd.Series(dtype="object"),
    })
