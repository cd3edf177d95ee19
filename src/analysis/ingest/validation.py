"""Validating one table: every row with a pandera schema in one lazy pass, then duplicates.

A row without a client id or with an invalid session number or date is rejected; an item that is
not a number, not a whole number (unless the instrument says ``integer_items: false``) or outside
its range rejects that administration, never clipped; exact duplicate rows are dropped and
conflicting duplicates (same client and session, different answers) are all rejected.

Before that, blank rows (every cell empty or a missing-value code) are skipped and the table's
``missing_values`` codes set missing, both counted in the flow. A record without a value in any
mapped measure is not an administration and needs no date; beside a filled record of the same
client and session, or without a session number or date to place it, it is set aside (not a
conflict, not rejected), and its row counts as a kept row with no measure.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from analysis.errors import DataError
from analysis.ingest.reading import ID_ROLES, blank_rows, missing_codes, set_missing
from analysis.ingest.reading import numbers as _numbers
from analysis.ingest.tables import status_text
from analysis.ingest.tables import (
    FIRST_DATA_ROW,
    TablePlan,
    TableResult,
    empty_rejects,
    flow_entry,
    note_entry,
)
from analysis.settings import InputTable


def ingest_table(raw: pd.DataFrame, plan: TablePlan, registry: dict, table: InputTable) -> TableResult:
    """Validate one table read by :func:`read_export`; return kept records and administrations.

    ``records`` has the canonical columns ``_row`` (file row number), ``client``, ``therapist``,
    ``session``, ``date`` (as available) with raw ids still in place (pseudonymised later, after
    linking), and ``_measured`` (the record holds a value of some mapped measure).

    Before validation, rows empty in every cell (or holding only missing-value codes) are
    skipped and counted, and the table's ``missing_values`` codes are set missing and counted.
    """
    codes = missing_codes(table.missing_values)
    # File row numbers are fixed before blank rows go, so that messages point at the right line.
    file_rows = np.arange(FIRST_DATA_ROW, FIRST_DATA_ROW + len(raw), dtype="int64")
    blank = blank_rows(raw, codes)
    n_blank = int(blank.sum())
    if n_blank == len(raw):
        raise DataError(
            f"{plan.path}: every one of its {n_blank:,} rows is empty (or holds only missing-value "
            f"codes). Export it again with its data, or remove inputs.{plan.name} from config."
        )
    if n_blank:
        raw, file_rows = raw.loc[~blank], file_rows[~blank]
    n_read = len(raw)
    dropped = [c for c in raw.columns if c not in plan.allowlist]
    id_columns = [plan.roles[role] for role in ID_ROLES if role in plan.roles]
    # (pandas 3 copies on write: the selection is the stage's own frame)
    frame, n_set_missing = set_missing(raw[plan.allowlist], plan.allowlist, id_columns, codes)
    frame.insert(0, "_row", file_rows)
    flow = [flow_entry(plan.name, "read", "rows", "", n_read)]
    if n_blank:
        flow.append(note_entry(plan.name, "blank_rows", n_blank))
    if n_set_missing:
        flow.append(note_entry(plan.name, "missing_values", n_set_missing))
    flow += [flow_entry(plan.name, "dropped_column", "cells", column, int(raw[column].notna().sum())) for column in dropped]

    records, item_values = _to_records(frame, plan, registry)
    item_numbers = {key: _numbers(text) for key, text in item_values.items()}
    failures = _validate(records, item_values, item_numbers, plan, registry, table)
    row_rules = {"missing_client_id", "invalid_session", "missing_session", "invalid_date",
                 "missing_date", "missing_therapist"}
    row_failures = failures[failures["rule"].isin(row_rules)]
    bad_records = set(row_failures["record"])
    admin_failures = failures[~failures["rule"].isin(row_rules) & ~failures["record"].isin(bad_records)]

    # A placeholder without its key (no session number in the table, and no date) belongs to no
    # session: it is set aside like one beside a filled record, never a duplicate of another.
    key = "session" if "session" in records else "date"
    keyless = set(records.index[_placeholders(records, plan)
                                & records.get(key, pd.Series(pd.NA, index=records.index)).isna()])
    ok = ~records.index.isin(bad_records | keyless)
    duplicates, beside_filled = _duplicates(records[ok], item_values, plan)
    beside_filled |= keyless
    if "date" in records:
        # Dates become datetimes here, with this table's format; later steps compare them.
        records["date"] = _parse_dates(records["date"], table.date_format)
    bad_records |= set(duplicates["record"])

    administrations, offered = _administrations(records, item_numbers, plan, registry, bad_records,
                                                admin_failures)
    rejects = pd.concat([row_failures, duplicates, admin_failures], ignore_index=True)
    rejects["file"] = plan.path
    # Records without any measure beside a filled one for the same client and session are set
    # aside: neither a conflict nor a session; their rows are kept rows with no measure.
    kept_records = records[~records.index.isin(bad_records | beside_filled)].copy()

    # A file row is rejected when every one of its records is; it counts under its first reason.
    # Every other row is kept (a wide row may have no record at all: it holds no answer).
    kept_by_record = set(kept_records["_row"]) | set(records.loc[list(beside_filled), "_row"])
    rejected_rows = rejects[rejects["level"] == "row"].drop_duplicates("row")
    rejected_rows = rejected_rows[~rejected_rows["row"].isin(kept_by_record)]
    kept_rows = set(frame["_row"]) - set(rejected_rows["row"])
    for rule, count in rejected_rows.groupby("rule")["row"].nunique().sort_index().items():
        flow.append(flow_entry(plan.name, "rejected", "rows", rule, int(count)))
    flow.append(flow_entry(plan.name, "kept", "rows", "", len(kept_rows)))
    measured_rows = set(kept_records.loc[kept_records["_measured"], "_row"])
    no_measure_rows = frozenset(int(row) for row in kept_rows - measured_rows)
    # An administration counts once, under its first reason, and only in rows that were kept.
    admin_rejects = admin_failures[~admin_failures["record"].isin(list(bad_records))]
    admin_rejects = admin_rejects.drop_duplicates(["record", "instrument"])
    for instrument in plan.instruments:
        flow.append(flow_entry(plan.name, "read", "administrations", "", offered[instrument.key],
                          instrument.key))
        part = admin_rejects[admin_rejects["instrument"] == instrument.key]
        for rule, count in part.groupby("rule").size().sort_index().items():
            flow.append(flow_entry(plan.name, "rejected", "administrations", rule, int(count),
                              instrument.key))
    if len(kept_rows) + rejected_rows["row"].nunique() != n_read:
        raise AssertionError(f"{plan.path}: row accounting does not balance")  # a bug, not a user error
    return TableResult(kept_records, administrations, rejects, flow, no_measure_rows)


def session_status_codes(values: pd.Series) -> pd.Series:
    """Status cells as the text codes config maps (whole numbers without ".0")."""
    return values.map(lambda value: value if pd.isna(value) else status_text(value))


def _to_records(frame: pd.DataFrame, plan: TablePlan, registry: dict):
    """One record per (file row, session): roles plus every instrument's raw answers.

    Returns the records and a dict (instrument, kind, item) -> Series of raw text answers aligned
    with the records' index; kind is "item" or "total".
    """
    role_frame = pd.DataFrame({"_row": frame["_row"]})
    for role, column in plan.roles.items():
        role_frame[role] = frame[column].str.strip()
    if plan.layout == "long":
        records = role_frame.reset_index(drop=True)
        values = {}
        for instrument in plan.instruments:
            for item, column in instrument.items.get(0, {}).items():
                values[(instrument.key, "item", item)] = frame[column].reset_index(drop=True)
            if 0 in instrument.totals:
                values[(instrument.key, "total", 0)] = frame[instrument.totals[0]].reset_index(drop=True)
        records["_measured"] = _any_value(values, len(records))
        return records, values
    sessions = sorted({s for instrument in plan.instruments for s in (*instrument.items, *instrument.totals)})
    parts, value_parts = [], {}
    for session in sessions:
        part = role_frame.copy()
        part["session"] = str(session)
        parts.append(part)
        for instrument in plan.instruments:
            for item in range(1, registry[instrument.key].n_items + 1):
                column = instrument.items.get(session, {}).get(item)
                if instrument.items:
                    value_parts.setdefault((instrument.key, "item", item), []).append(
                        frame[column] if column else pd.Series(pd.NA, index=frame.index, dtype="string")
                    )
            if instrument.totals:
                column = instrument.totals.get(session)
                value_parts.setdefault((instrument.key, "total", 0), []).append(
                    frame[column] if column else pd.Series(pd.NA, index=frame.index, dtype="string")
                )
    records = pd.concat(parts, ignore_index=True)
    values = {key: pd.concat(series, ignore_index=True) for key, series in value_parts.items()}
    # A wide row has a record only for the sessions where it holds any answer.
    answered = pd.concat(list(values.values()), axis=1).notna().any(axis=1)
    keep = answered.to_numpy()
    records = records[keep].reset_index(drop=True)
    values = {key: series[keep].reset_index(drop=True) for key, series in values.items()}
    records["_measured"] = True
    return records, values


def _placeholders(records: pd.DataFrame, plan: TablePlan) -> pd.Series:
    """Records without a value in any mapped measure, of a table that maps measures (in a
    sessions table without instruments, an attendance log, every record is a session)."""
    if not plan.instruments:
        return pd.Series(False, index=records.index)
    return ~records["_measured"].astype(bool)


def _any_value(values: dict, n_records: int) -> np.ndarray:
    """Per record: does it hold a value (valid or not) in any item or total column?"""
    measured = np.zeros(n_records, dtype=bool)
    for series in values.values():
        measured |= series.notna().to_numpy(dtype=bool)
    return measured


def _validate(records, item_values, item_numbers, plan: TablePlan, registry: dict, table: InputTable) -> pd.DataFrame:
    """Every failing (record, column, rule) found in one pandera pass (``lazy=True``)."""
    checked = pd.DataFrame(index=records.index)
    columns: dict[str, pa.Column] = {}
    # checked column -> (file column, level, instrument); (checked column, rule) -> message
    origin: dict[str, tuple[str, str, str | None]] = {}
    messages: dict[tuple[str, str], str] = {}

    def add(name, values, file_column, level, instrument, rules):
        """``rules``: (rule name, function of the column -> boolean ok mask, message)."""
        checked[name] = values
        origin[name] = (file_column, level, instrument)
        checks = []
        for rule, ok, message in rules:
            messages[(name, rule)] = message
            checks.append(pa.Check(lambda s, ok=ok: pd.Series(_mask(ok(s)), index=s.index),
                                   name=rule, ignore_na=False))
        columns[name] = pa.Column(nullable=True, checks=checks)

    add("client", records["client"], plan.roles["client"], "row", None,
        [("missing_client_id", lambda s: s.notna() & s.ne(""), "no client id: every row needs one")])

    if "session" in records:
        session_text = records["session"]
        add("session", _numbers(session_text), plan.roles.get("session", "session"), "row", None, [
            ("missing_session", lambda s, t=session_text: t.notna(), "no session number"),
            ("invalid_session", lambda s, t=session_text: t.isna() | ((s >= 1) & (s % 1 == 0)),
             "session number must be a whole number of at least 1"),
        ])

    if "date" in records:
        date_text = records["date"]
        date_rules = [(
            "invalid_date", lambda s, t=date_text: t.isna() | s.notna(),
            f"date cannot be read (expected {table.date_format or 'yyyy-mm-dd'})",
        )]
        if plan.kind == "sessions" or "session" not in records:
            # a placeholder (no value in any measure) needs no date: it is not an administration
            placeholder = _placeholders(records, plan)
            date_rules.append(("missing_date", lambda s, t=date_text, p=placeholder:
                               t.notna() | p, "no date"))
        add("date", _parse_dates(date_text, table.date_format), plan.roles["date"], "row", None,
            date_rules)

    if plan.kind == "sessions" and "therapist" in records:
        add("therapist", records["therapist"], plan.roles["therapist"], "row", None,
            [("missing_therapist", lambda s: s.notna() & s.ne(""), "no therapist id: a session record needs one")])

    if plan.kind == "sessions" and "status" in records:
        known = {code for codes in table.status_values.values() for code in codes}
        status = session_status_codes(records["status"])
        add("status", status, plan.roles["status"], "row", None, [
            ("missing_status", lambda s: s.notna() & s.ne(""),
             f"no session status (inputs.{plan.name}.status_values maps the values)"),
            ("unknown_status", lambda s, k=frozenset(known): s.isna() | s.eq("") | s.isin(k),
             f"session status is not one of the values in inputs.{plan.name}.status_values"),
        ])

    if plan.kind == "sessions" and "ending" in records:
        # an empty ending is allowed: a client's ending may stand on one record only
        endings = {code for codes in table.ending_values.values() for code in codes}
        add("ending", session_status_codes(records["ending"]), plan.roles["ending"], "row", None, [
            ("unknown_ending", lambda s, k=frozenset(endings): s.isna() | s.eq("") | s.isin(k),
             f"episode ending is not one of the values in inputs.{plan.name}.ending_values"),
        ])

    for (key, kind, item), text in item_values.items():
        instrument = registry[key]
        if kind == "item":
            low, high, label = instrument.item_min, instrument.item_max, f"{instrument.label} item {item}"
        else:
            low, high, label = instrument.score_min, instrument.score_max, f"{instrument.label} total"
        rules = [
            (f"{kind}_not_numeric", lambda s, t=text: t.isna() | s.notna(), f"{label} is not a number"),
            (f"{kind}_out_of_range", lambda s, lo=low, hi=high: s.isna() | ((s >= lo) & (s <= hi)),
             f"{label} is outside {low:g}-{high:g}"),
        ]
        if kind == "item" and instrument.integer_items:
            rules.append(("item_not_whole", lambda s: s.isna() | (s % 1 == 0), f"{label} is not a whole number"))
        add(f"{key}|{kind}|{item}", item_numbers[(key, kind, item)], _item_column_name(plan, key, kind, item),
            "administration", key, rules)

    schema = pa.DataFrameSchema(columns, strict=False, coerce=False)
    try:
        schema.validate(checked, lazy=True)
    except SchemaErrors as errors:
        texts = {f"{key}|{kind}|{item}": text for (key, kind, item), text in item_values.items()}
        return _failures_to_rejects(errors.failure_cases, records, checked, origin, messages,
                                    texts, plan.name)
    return empty_rejects()


def _mask(values) -> np.ndarray:
    """A boolean mask with missing (<NA>) comparisons counted as failures."""
    if isinstance(values, pd.Series):
        return values.fillna(False).to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


def _item_column_name(plan: TablePlan, key: str, kind: str, item: int) -> str:
    for instrument in plan.instruments:
        if instrument.key == key:
            if kind == "total":
                return next(iter(instrument.totals.values()))
            if plan.layout == "wide":
                # wide layout: name the template; the session is in the record
                first = next(iter(instrument.items.values()))
                return first[item]
            return instrument.items[0][item]
    return key


#: Cell texts that look like a missing-value code of some export (SPSS's "#NULL!", "N/A", ".").
#: Shown in a reason (they are never identifiers) with the key that turns them into missing.
_CODE_LIKE = re.compile(r"^(#[A-Z0-9/!?]+!?|N/?A|NaN|NULL|None|missing|unknown|[.\-?*]+)$",
                        re.IGNORECASE)


def _failures_to_rejects(cases, records, checked, origin, messages, texts=None, table="<name>"
                         ) -> pd.DataFrame:
    cases = cases[cases["index"].notna()]
    unexpected = cases[~cases["column"].isin(list(origin))]
    if not unexpected.empty:  # a failure we did not define is a bug in this module
        raise AssertionError(f"unexpected validation failures: {unexpected.head()}")
    record = cases["index"].astype("int64").to_numpy()
    column = cases["column"].to_numpy()
    rule = cases["check"].astype(str).to_numpy()
    info = [origin[c] for c in column]
    level = [i[1] for i in info]
    reasons = []
    for rec, col, rul, lev in zip(record, column, rule, level):
        reason = messages[(col, rul)]
        # Item answers are not identifiers: showing the value helps the user find the cell.
        if lev == "administration" and not rul.endswith("_not_numeric"):
            reason += f" (value {checked.at[rec, col]:g})"
        elif rul.endswith("_not_numeric") and texts and col in texts:
            text = str(texts[col].iloc[rec]).strip()
            if _CODE_LIKE.match(text):
                reason += (f' (value "{text}": if it means missing, list it in '
                           f"inputs.{table}.missing_values)")
        reasons.append(reason)
    out = pd.DataFrame({
        "record": record,
        "row": records["_row"].to_numpy()[record],
        "column": [i[0] for i in info],
        "rule": rule,
        "reason": reasons,
        "level": level,
        "instrument": [i[2] for i in info],
    })
    return out.drop_duplicates(["record", "column", "rule"]).sort_values(["row", "column", "rule"], kind="stable")


def _parse_dates(text: pd.Series, date_format: str | None) -> pd.Series:
    return pd.to_datetime(text, format=date_format or "%Y-%m-%d", errors="coerce").astype("datetime64[ns]")


def _duplicates(records: pd.DataFrame, item_values: dict, plan: TablePlan
                ) -> tuple[pd.DataFrame, set]:
    """Exact duplicates (dropped, all but the first) and conflicting duplicates (all rejected).

    Also returns the records without any measure that share their client and session (or date)
    with a record that has one: an empty placeholder beside a filled row is not a conflict; the
    filled row is kept and the empty one set aside (counted as a row with no measure).
    """
    if records.empty:
        return empty_rejects(), set()
    content = records.drop(columns=["_row", "_measured"], errors="ignore")
    content = content.assign(**{f"{k}|{kind}|{i}": text.loc[records.index] for (k, kind, i), text in item_values.items()})
    # One 64-bit hash per row stands for its whole content (collisions are negligible).
    row_hash = pd.util.hash_pandas_object(content.fillna(""), index=False)
    exact = row_hash.duplicated(keep="first")
    first_row_of = dict(zip(row_hash[~exact].to_numpy(), records.loc[~exact, "_row"].to_numpy()))
    exact_rejects = pd.DataFrame({
        "record": records.index[exact],
        "row": records.loc[exact, "_row"].to_numpy(),
        "column": "",
        "rule": "exact_duplicate",
        "reason": [f"exact duplicate of row {int(first_row_of[h])}: dropped" for h in row_hash[exact]],
        "level": "row",
        "instrument": None,
    })
    what = "session" if "session" in content else "date"
    remaining = content.loc[~exact, ["client", what]]
    measured = records.loc[remaining.index, "_measured"].astype(bool)
    # Groups (client, session) that hold a measured record: their empty records step aside.
    has_measure = measured.groupby([remaining["client"], remaining[what]], dropna=False
                                   ).transform("any").astype(bool)
    beside_filled = remaining.index[has_measure & ~measured]
    remaining = remaining.loc[~(has_measure & ~measured)]
    conflicted = remaining.duplicated(keep=False)
    conflict_rejects = pd.DataFrame({
        "record": remaining.index[conflicted],
        "row": records.loc[remaining.index[conflicted], "_row"].to_numpy(),
        "column": plan.roles.get(what, what),
        "rule": "conflicting_duplicate",
        "reason": f"another row has the same client and {what} with different answers: all such rows rejected",
        "level": "row",
        "instrument": None,
    })
    return pd.concat([exact_rejects, conflict_rejects], ignore_index=True), set(beside_filled)


def _administrations(records, item_numbers, plan, registry, bad_records, admin_failures
                     ) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per (record, instrument) with answers; rejected ones left out.

    Also returns, per instrument, the administrations offered: answered in a row that was kept.
    """
    offered: dict[str, int] = {}
    max_items = max((registry[i.key].n_items for i in plan.instruments), default=0)
    keep_records = ~records.index.isin(list(bad_records))
    parts = []
    for instrument in plan.instruments:
        n_items = registry[instrument.key].n_items
        part = {"record": records.index.to_numpy()}
        for item in range(1, max_items + 1):
            values = item_numbers.get((instrument.key, "item", item))
            part[f"item_{item}"] = values.to_numpy() if values is not None and item <= n_items else np.nan
        total = item_numbers.get((instrument.key, "total", 0))
        part["given_total"] = total.to_numpy() if total is not None else np.nan
        part = pd.DataFrame(part)
        answered = part[[f"item_{i}" for i in range(1, n_items + 1)] + ["given_total"]].notna().any(axis=1)
        rejected = records.index.isin(
            admin_failures.loc[admin_failures["instrument"] == instrument.key, "record"].unique()
        )
        offered[instrument.key] = int((answered.to_numpy() & keep_records).sum())
        part = part[answered.to_numpy() & keep_records & ~rejected]
        part.insert(1, "instrument", instrument.key)
        parts.append(part)
    if not parts:
        empty = pd.DataFrame({"record": pd.Series(dtype="int64"), "instrument": pd.Series(dtype="string")})
        return empty, offered
    return pd.concat(parts, ignore_index=True), offered
