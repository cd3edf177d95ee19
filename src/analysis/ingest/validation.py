"""Validating one table: every row with a pandera schema in one lazy pass, then duplicates.

A row without a client id or with an invalid session number or date is rejected; an item that is
not a number, not a whole number (unless the instrument says ``integer_items: false``) or outside
its range rejects that administration, never clipped; exact duplicate rows are dropped and
conflicting duplicates (same client and session, different answers) are all rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pa_compute
from pandera.errors import SchemaErrors

from analysis.ingest.tables import (
    FIRST_DATA_ROW,
    TablePlan,
    TableResult,
    empty_rejects,
    flow_entry,
)
from analysis.settings import InputTable


def ingest_table(raw: pd.DataFrame, plan: TablePlan, registry: dict, table: InputTable) -> TableResult:
    """Validate one table read by :func:`read_export`; return kept records and administrations.

    ``records`` has the canonical columns ``_row`` (file row number), ``client``, ``therapist``,
    ``session``, ``date`` (as available) with raw ids still in place (pseudonymised later, after
    linking).
    """
    n_read = len(raw)
    dropped = [c for c in raw.columns if c not in plan.allowlist]
    frame = raw[plan.allowlist].copy()
    frame.insert(0, "_row", np.arange(FIRST_DATA_ROW, FIRST_DATA_ROW + n_read, dtype="int64"))
    flow = [flow_entry(plan.name, "read", "rows", "", n_read)]
    flow += [flow_entry(plan.name, "dropped_column", "cells", column, int(raw[column].notna().sum())) for column in dropped]

    records, item_values = _to_records(frame, plan, registry)
    item_numbers = {key: _numbers(text) for key, text in item_values.items()}
    failures = _validate(records, item_values, item_numbers, plan, registry, table)
    row_rules = {"missing_client_id", "invalid_session", "missing_session", "invalid_date",
                 "missing_date", "missing_therapist"}
    row_failures = failures[failures["rule"].isin(row_rules)]
    bad_records = set(row_failures["record"])
    admin_failures = failures[~failures["rule"].isin(row_rules) & ~failures["record"].isin(bad_records)]

    ok = ~records.index.isin(bad_records)
    duplicates = _duplicates(records[ok], item_values, plan)
    if "date" in records:
        # Dates become datetimes here, with this table's format; later steps compare them.
        records["date"] = _parse_dates(records["date"], table.date_format)
    bad_records |= set(duplicates["record"])

    administrations, offered = _administrations(records, item_numbers, plan, registry, bad_records,
                                                admin_failures)
    rejects = pd.concat([row_failures, duplicates, admin_failures], ignore_index=True)
    rejects["file"] = plan.path
    kept_records = records[~records.index.isin(bad_records)].copy()

    # A file row is kept when any of its records is kept; rejected rows get their first reason.
    kept_rows = set(kept_records["_row"])
    rejected_rows = rejects[rejects["level"] == "row"].drop_duplicates("row")
    rejected_rows = rejected_rows[~rejected_rows["row"].isin(kept_rows)]
    for rule, count in rejected_rows.groupby("rule")["row"].nunique().sort_index().items():
        flow.append(flow_entry(plan.name, "rejected", "rows", rule, int(count)))
    flow.append(flow_entry(plan.name, "kept", "rows", "", len(kept_rows)))
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
    return TableResult(kept_records, administrations, rejects, flow)


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
    return records, values


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
            date_rules.append(("missing_date", lambda s, t=date_text: t.notna(), "no date"))
        add("date", _parse_dates(date_text, table.date_format), plan.roles["date"], "row", None,
            date_rules)

    if plan.kind == "sessions" and "therapist" in records:
        add("therapist", records["therapist"], plan.roles["therapist"], "row", None,
            [("missing_therapist", lambda s: s.notna() & s.ne(""), "no therapist id: a session record needs one")])

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
        return _failures_to_rejects(errors.failure_cases, records, checked, origin, messages)
    return empty_rejects()


_NUMBER_PATTERN = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _numbers(text: pd.Series) -> pd.Series:
    """Text to float64 (NaN where empty or not a number).

    Done in Arrow: five times faster than ``pd.to_numeric`` on text, which matters at a million rows.
    """
    array = pa_arrow.array(text.array, type=pa_arrow.string())
    valid = pa_compute.match_substring_regex(array, _NUMBER_PATTERN)
    cleaned = pa_compute.utf8_trim_whitespace(pa_compute.if_else(valid, array, pa_arrow.scalar(None, pa_arrow.string())))
    values = pa_compute.cast(cleaned, pa_arrow.float64()).to_numpy(zero_copy_only=False)
    return pd.Series(values, index=text.index, dtype="float64")


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


def _failures_to_rejects(cases, records, checked, origin, messages) -> pd.DataFrame:
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


def _duplicates(records: pd.DataFrame, item_values: dict, plan: TablePlan) -> pd.DataFrame:
    """Exact duplicates (dropped, all but the first) and conflicting duplicates (all rejected)."""
    if records.empty:
        return empty_rejects()
    content = records.drop(columns="_row")
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
    return pd.concat([exact_rejects, conflict_rejects], ignore_index=True)


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
