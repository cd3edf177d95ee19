"""Ingest: read any declared export, keep only what is needed, validate every row, pseudonymise.

Inputs are the tables declared under ``inputs:`` in the config (CSV with any delimiter and
encoding, Parquet or Excel; long or wide layout). For each table the stage

1. reads it with every cell as text (so that nothing is guessed or silently converted);
2. maps its columns to the roles client, therapist, session and date, and to instrument items or
   pre-scored totals; every other column is dropped at once (an allowlist: names, contact details,
   free text never pass) and reported by column name and count, never by value;
3. validates every row with a pandera schema in one pass (``lazy=True``): a row without a client
   id or with an invalid session number or date is rejected; an item that is not a number, not a
   whole number, or outside its range rejects that administration (never clipped); exact
   duplicate rows are dropped, conflicting duplicates (same client and session, different
   answers) are all rejected;
4. links questionnaires to sessions (by session number, or by date within a window) and rejects
   or keeps, per config, questionnaires of clients without session records (``orphan_outcomes``)
   and questionnaires at a session number that has no session record (``unmatched_sessions``);
5. replaces client and therapist ids by keyed pseudonyms and dates by day offsets from each
   client's first session.

Outputs (see the shared contracts in the README): ``administrations`` (one row per scored
questionnaire administration), ``sessions`` (the session registry), ``rejects`` (file, row,
column, instrument, rule, reason: never an identifier's value), ``flags`` (kept rows with a
warning) and the ``flow`` accounting (columns :data:`FLOW_COLUMNS`; for each file, rows read =
rows kept + rows rejected; for each file and instrument, administrations read = administrations
kept, by the route that linked them (:data:`ROUTES`), + administrations rejected, by rule).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pa_compute
from pandera.errors import SchemaErrors

from analysis.config import suggest
from analysis.errors import ConfigError, DataError
from analysis.privacy import is_demo_data, pseudonymise, resolve_key
from analysis.settings import IngestSettings, InputTable, LinkingSettings

log = logging.getLogger(__name__)

ROLES = ("client", "therapist", "session", "date")
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


# --------------------------------------------------------------------------------------------
# The stage


def input_paths(inputs: Sequence[InputTable], root: str | Path = ".") -> dict[str, Path]:
    """The declared input files, by table name, resolved against the project folder."""
    return {table.name: Path(root) / table.path for table in inputs}


def run_ingest(settings: IngestSettings, root: str | Path = ".", key: str | None = None
               ) -> dict[str, pd.DataFrame]:
    """Read, validate, link and pseudonymise every declared input table.

    ``key`` (the pseudonymisation key) defaults to the one named by ``settings.key_env``; the
    public demo key only for the shipped demo data.
    """
    paths = input_paths(settings.inputs, root)
    registry = settings.registry()
    tables = {table.name: read_export(paths[table.name], table) for table in settings.inputs}
    if key is None:
        key = resolve_key(settings.key_env, is_demo_data(list(paths.values())))
    return ingest_all(tables, settings.inputs, settings.linking, registry, key)


# --------------------------------------------------------------------------------------------
# Reading


def read_export(path: str | Path, table: InputTable) -> pd.DataFrame:
    """Read a declared table with every cell as text (missing cells as <NA>).

    Raises ``DataError`` naming the config key and what to do when the file is missing, empty,
    in another encoding, or (apparently) uses another delimiter.
    """
    file_path = Path(path)
    name = table.name
    key = f"inputs.{name}.path"
    if not file_path.exists():
        raise ConfigError(
            f"{key}: the file {file_path} does not exist. Check the path (relative to the "
            "project folder) or remove the table from config."
        )
    if file_path.stat().st_size == 0:
        raise DataError(f"{file_path}: the file is empty (0 bytes). Export it again or remove {key}.")
    file_format = table.format or _format_from_suffix(file_path)
    try:
        if file_format == "csv":
            encoding = table.encoding
            # utf-8-sig reads plain UTF-8 too and drops a byte-order mark when there is one.
            if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
                encoding = "utf-8-sig"
            frame = _read_csv_text(file_path, table.delimiter, encoding)
        elif file_format == "parquet":
            frame = _as_text(pd.read_parquet(file_path))
        else:
            frame = _as_text(pd.read_excel(file_path, sheet_name=table.sheet, dtype=object))
    except UnicodeDecodeError as error:
        raise DataError(
            f"{file_path}: not readable as {table.encoding} "
            f"(byte {error.start}). Set inputs.{name}.encoding to the file's encoding, "
            "e.g. latin-1 or cp1252."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file_path}: the file has no header and no rows. Export it again.") from None
    except pd.errors.ParserError as error:
        raise DataError(
            f"{file_path}: cannot be parsed as {file_format} ({str(error).splitlines()[0]}). "
            f"Check inputs.{name}.delimiter and the quoting of text fields."
        ) from None
    except (ValueError, OSError) as error:
        raise DataError(
            f"{file_path}: cannot be read as {file_format} ({error}). "
            f"Check inputs.{name}.format."
        ) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        raise DataError(
            f"{file_path}: the file has a header but no data rows. Export it again with its rows, "
            f"or remove {key} from config."
        )
    return frame


def _read_csv_text(path: Path, delimiter: str, encoding: str) -> pd.DataFrame:
    """A CSV file as text cells; empty cells are missing, nothing else is."""
    options = dict(sep=delimiter, encoding=encoding, dtype="string", keep_default_na=False, na_values=[""])
    try:
        # Arrow's multi-threaded reader is three times faster on large exports ...
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - any problem is diagnosed by the C reader below
        # ... the C reader gives the precise messages (line numbers, encodings) for broken files.
        return pd.read_csv(path, engine="c", **options)


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return "excel"
    return "csv"


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as text, whole numbers without a trailing '.0' (Excel and Parquet store ids as floats)."""

    def to_text(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
            return pd.NA
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%d")
        text = str(value).strip()
        return text if text else pd.NA

    return frame.apply(lambda column: column.map(to_text)).astype("string")


# --------------------------------------------------------------------------------------------
# Planning: which columns hold what


def plan_table(table: InputTable, header: list[str], registry: dict) -> TablePlan:
    """Resolve a table's config against its header; raise a clear error for anything missing."""
    name, source = table.name, table.path
    roles = dict(table.columns)
    _check_roles_distinct(name, roles)
    layout, kind = table.layout, table.kind
    if kind == "sessions" and layout == "wide":
        raise ConfigError(
            f"inputs.{name}.layout: a sessions table must be in long layout (one row per session)."
        )
    if layout == "long" and "session" not in roles and "date" not in roles:
        raise ConfigError(
            f"inputs.{name}.columns: map a session column or a date column, so that each row can "
            "be placed in a session."
        )
    for role, column in roles.items():
        if column not in header:
            raise DataError(
                f"{source}: column {column!r} (inputs.{name}.columns.{role}) is not in the file."
                f"{suggest(column, header)} {_header_hint(header)}"
            )
    instruments = []
    for key, declaration in table.instruments.items():
        if key not in registry:
            raise ConfigError(
                f'inputs.{name}.instruments.{key}: unknown instrument "{key}".'
                f"{suggest(key, list(registry))} Known instruments: {', '.join(sorted(registry))}; "
                "declare a new one under instruments: (see config/README.md)."
            )
        instruments.append(_plan_instrument(name, source, key, declaration, registry[key], header, layout))
    if kind == "questionnaires" and not instruments:
        raise ConfigError(f"inputs.{name}.instruments: a questionnaire table must declare at least one instrument.")
    plan = TablePlan(name, source, kind, layout, roles, instruments)
    _check_columns_used_once(plan)
    return plan


def _check_roles_distinct(name: str, roles: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for role, column in roles.items():
        if column in seen:
            raise ConfigError(
                f"inputs.{name}.columns: column {column!r} is mapped to two roles, "
                f"{seen[column]} and {role}. Each role needs its own column."
            )
        seen[column] = role


def _check_columns_used_once(plan: TablePlan) -> None:
    owners: dict[str, str] = {column: f"columns.{role}" for role, column in plan.roles.items()}
    for instrument in plan.instruments:
        columns = [c for by_item in instrument.items.values() for c in by_item.values()]
        columns += list(instrument.totals.values())
        for column in columns:
            if column in owners:
                raise ConfigError(
                    f"inputs.{plan.name}: column {column!r} is used twice, by {owners[column]} and by "
                    f"instruments.{instrument.key}. Each column can have one meaning only."
                )
            owners[column] = f"instruments.{instrument.key}"


def _header_hint(header: list[str]) -> str:
    if len(header) == 1:
        for delimiter, label in ((";", "semicolon"), ("\t", "tab"), ("|", "bar")):
            if delimiter in header[0]:
                return (
                    f"The file seems to use {label}s as delimiter: set its delimiter in config "
                    f"(delimiter: \"{delimiter if delimiter != chr(9) else chr(92) + 't'}\")."
                )
    shown = ", ".join(header[:12]) + (" ..." if len(header) > 12 else "")
    return f"Columns in the file: {shown}."


def _plan_instrument(name, source, key, declaration, instrument, header, layout) -> InstrumentColumns:
    config_key = f"inputs.{name}.instruments.{key}"
    columns = InstrumentColumns(key)
    items = declaration.get("items")
    total = declaration.get("total")
    if items is None and total is None:
        raise ConfigError(f"{config_key}: give its item columns (items:) or a pre-scored total column (total:).")
    sessions: list[int] = [0]
    if layout == "wide":
        template = items if isinstance(items, str) else total
        if not isinstance(template, str) or "{session}" not in template:
            raise ConfigError(
                f"{config_key}: in wide layout, items or total must be a template with {{session}}, "
                'e.g. total: "phq9_s{session}".'
            )
        sessions = _sessions_in_header(template, header)
        if not sessions:
            raise DataError(f"{source}: no column matches {template!r} ({config_key}). {_header_hint(header)}")
    for session in sessions:
        if items is not None:
            if isinstance(items, str):
                names = [_fill(items, i=i, session=session) for i in range(1, instrument.n_items + 1)]
            else:
                names = list(items)
                if len(names) != instrument.n_items:
                    raise ConfigError(
                        f"{config_key}.items: {len(names)} columns listed, but {instrument.label} has "
                        f"{instrument.n_items} items."
                    )
            missing = [column for column in names if column not in header]
            if missing:
                raise DataError(
                    f"{source}: item column {missing[0]!r} of {instrument.label} ({config_key}.items) is not "
                    f"in the file.{suggest(missing[0], header)} {_header_hint(header)}"
                )
            columns.items[session] = {i: column for i, column in enumerate(names, start=1)}
        if total is not None:
            column = _fill(total, session=session)
            if column not in header:
                raise DataError(
                    f"{source}: total column {column!r} ({config_key}.total) is not in the file."
                    f"{suggest(column, header)} {_header_hint(header)}"
                )
            columns.totals[session] = column
    return columns


def _fill(template: str, **values: int) -> str:
    text = template
    for field_name, value in values.items():
        text = text.replace("{" + field_name + "}", str(value))
    return text


def _sessions_in_header(template: str, header: list[str]) -> list[int]:
    pattern = re.escape(template).replace(r"\{session\}", r"(?P<session>\d+)").replace(r"\{i\}", r"\d+")
    found = {int(m.group("session")) for column in header if (m := re.fullmatch(pattern, column))}
    return sorted(found)


# --------------------------------------------------------------------------------------------
# Validating one table


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
    flow = [_flow(plan.name, "read", "rows", "", n_read)]
    flow += [_flow(plan.name, "dropped_column", "cells", column, int(raw[column].notna().sum())) for column in dropped]

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
        flow.append(_flow(plan.name, "rejected", "rows", rule, int(count)))
    flow.append(_flow(plan.name, "kept", "rows", "", len(kept_rows)))
    # An administration counts once, under its first reason, and only in rows that were kept.
    admin_rejects = admin_failures[~admin_failures["record"].isin(list(bad_records))]
    admin_rejects = admin_rejects.drop_duplicates(["record", "instrument"])
    for instrument in plan.instruments:
        flow.append(_flow(plan.name, "read", "administrations", "", offered[instrument.key],
                          instrument.key))
        part = admin_rejects[admin_rejects["instrument"] == instrument.key]
        for rule, count in part.groupby("rule").size().sort_index().items():
            flow.append(_flow(plan.name, "rejected", "administrations", rule, int(count),
                              instrument.key))
    if len(kept_rows) + rejected_rows["row"].nunique() != n_read:
        raise AssertionError(f"{plan.path}: row accounting does not balance")  # a bug, not a user error
    return TableResult(kept_records, administrations, rejects, flow)


def _flow(source: str, stage: str, unit: str, reason: str, count: int, instrument: str = "") -> dict:
    return {"source": source, "stage": stage, "instrument": instrument, "unit": unit,
            "reason": reason, "count": int(count)}


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
    return _empty_rejects()


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


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({
        "record": pd.Series(dtype="int64"), "row": pd.Series(dtype="int64"),
        "column": pd.Series(dtype="object"), "rule": pd.Series(dtype="object"),
        "reason": pd.Series(dtype="object"), "level": pd.Series(dtype="object"),
        "instrument": pd.Series(dtype="object"),
    })


def _parse_dates(text: pd.Series, date_format: str | None) -> pd.Series:
    return pd.to_datetime(text, format=date_format or "%Y-%m-%d", errors="coerce").astype("datetime64[ns]")


def _duplicates(records: pd.DataFrame, item_values: dict, plan: TablePlan) -> pd.DataFrame:
    """Exact duplicates (dropped, all but the first) and conflicting duplicates (all rejected)."""
    if records.empty:
        return _empty_rejects()
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


# --------------------------------------------------------------------------------------------
# Linking tables together and pseudonymising


def ingest_all(
    tables: dict[str, pd.DataFrame], inputs: Sequence[InputTable], linking: LinkingSettings,
    registry: dict, key: str,
) -> dict[str, pd.DataFrame]:
    """Ingest every declared table (already read) and link them into the canonical frames.

    Returns a dict with ``administrations``, ``sessions``, ``rejects``, ``flags`` and ``flow``.
    """
    results: dict[str, TableResult] = {}
    plans: dict[str, TablePlan] = {}
    declared = {table.name: table for table in inputs}
    for name, raw in tables.items():
        plans[name] = plan_table(declared[name], list(raw.columns), registry)
        results[name] = ingest_table(raw, plans[name], registry, declared[name])
    if not any(plan.kind == "sessions" for plan in plans.values()):
        raise ConfigError("inputs: declare one table with kind: sessions (the session records with therapist ids).")

    registry_frame, flags = _session_registry(results, plans)
    link_rejects: list[pd.DataFrame] = []
    link_flow: list[dict] = []
    administrations = []
    extra_sessions = []
    for name, result in results.items():
        plan = plans[name]
        admins = result.administrations.merge(
            result.records[["_row", "client"] + [c for c in ("session", "date") if c in result.records]],
            left_on="record", right_index=True, how="inner",
        )
        if plan.kind == "sessions":
            admins = admins.merge(
                registry_frame.loc[registry_frame["_table"] == name, ["_row", "session"]],
                on="_row", how="inner", suffixes=("_raw", ""),
            ).drop(columns=["session_raw"], errors="ignore")
            admins["_route"] = "session_record"
        else:
            offered = admins
            admins, rejected, extra = _link_questionnaires(admins, registry_frame, plan, linking)
            link_rejects.append(rejected)
            extra_sessions.append(extra)
            link_flow += _link_flow(name, offered, admins, rejected)
        link_flow += [_flow(name, "kept", "administrations", ROUTES[route], int(count), str(key))
                      for (key, route), count in admins.groupby(["instrument", "_route"]).size()
                      .sort_index().items()]
        administrations.append(admins.assign(_table=name))

    admin_frame = pd.concat(administrations, ignore_index=True)
    rejects = pd.concat([r.rejects for r in results.values()] + link_rejects, ignore_index=True)
    registry_frame = pd.concat([registry_frame] + extra_sessions, ignore_index=True)
    flow = _finish_flow(results, link_rejects, plans, link_flow)

    sessions = pd.DataFrame({
        "client_id": pseudonymise(registry_frame["client"], key, "c_"),
        "therapist_id": pseudonymise(registry_frame["therapist"], key, "t_"),
        "session": registry_frame["session"].astype("int64"),
        "day": registry_frame["day"].astype("Int64"),
    }).sort_values(["client_id", "session"], kind="stable").drop_duplicates(["client_id", "session"])
    item_columns = sorted([c for c in admin_frame.columns if c.startswith("item_")], key=lambda c: int(c[5:]))
    # source_file/source_row point back at the export (not identifying): flags name the row.
    administrations = admin_frame.assign(
        client_id=pseudonymise(admin_frame["client"], key, "c_"),
        source_file=admin_frame["_table"].map({name: plan.path for name, plan in plans.items()}),
        source_row=admin_frame["_row"].astype("int64"),
    )[["client_id", "session", "instrument", *item_columns, "given_total", "source_file",
       "source_row"]]
    administrations = administrations.astype({"session": "int64", "instrument": "string"})
    administrations = administrations.sort_values(["instrument", "client_id", "session"], kind="stable")
    # The same instrument twice at one session from two tables: keep neither silently - reject later ones.
    return {
        "administrations": administrations.reset_index(drop=True),
        "sessions": sessions.reset_index(drop=True),
        "rejects": _tidy_rejects(rejects),
        "flags": flags,
        "flow": flow,
    }


def _session_registry(results, plans):
    """Session records from the sessions tables: client, therapist, session, date, day."""
    parts = []
    for name, result in results.items():
        if plans[name].kind != "sessions":
            continue
        records = result.records.copy()
        records["_table"] = name
        parts.append(records)
    registry = pd.concat(parts, ignore_index=True)
    if "session" not in registry or registry["session"].isna().all():
        # Sessions numbered by date order when the export has dates only.
        registry["session"] = registry.groupby("client")["date"].rank(method="dense").astype("int64")
    else:
        registry["session"] = pd.to_numeric(registry["session"]).astype("int64")
    if "therapist" not in registry:
        registry["therapist"] = pd.NA
    if "date" in registry and registry["date"].notna().any():
        first = registry.groupby("client")["date"].transform("min")
        registry["day"] = (registry["date"] - first).dt.days.astype("Int64")
    else:
        registry["date"] = pd.NaT
        registry["day"] = pd.array([pd.NA] * len(registry), dtype="Int64")
    registry = registry.sort_values(["client", "session", "_row"], kind="stable")
    flags = _date_order_flags(registry, plans)
    return registry[["client", "therapist", "session", "date", "day", "_row", "_table"]], flags


def _date_order_flags(registry: pd.DataFrame, plans) -> pd.DataFrame:
    """Session numbers that contradict dates (a later session dated earlier) are flagged, not rejected."""
    if registry["date"].isna().all():
        return pd.DataFrame(columns=REJECT_COLUMNS)
    ordered = registry.sort_values(["client", "session"], kind="stable")
    previous_date = ordered.groupby("client")["date"].shift()
    contradicts = ordered["date"] < previous_date
    flagged = ordered[contradicts.fillna(False)]
    return pd.DataFrame({
        "file": [plans[t].path for t in flagged["_table"]],
        "row": flagged["_row"].to_numpy(),
        "column": [plans[t].roles.get("date", "") for t in flagged["_table"]],
        "instrument": "",
        "rule": "session_date_order",
        "reason": "this session is dated before the client's previous session: check the session number or date",
    })


def _link_questionnaires(admins: pd.DataFrame, registry: pd.DataFrame, plan: TablePlan, linking: LinkingSettings):
    """Attach questionnaire administrations to session records; reject or keep the unlinkable."""
    known_clients = set(registry["client"])
    orphan = ~admins["client"].isin(known_clients)
    rejects = []
    extra = registry.iloc[0:0]
    if orphan.any():
        if linking.orphan_outcomes == "reject":
            rejects.append(_link_reject(admins[orphan], plan, "client", "orphan_outcome",
                                        "no session record for this client (linking.orphan_outcomes: reject)"))
            admins = admins[~orphan]
        else:
            orphans = admins[orphan]
            extra = _orphan_sessions(orphans, plan)
    has_session = "session" in admins and admins["session"].notna().any()
    has_date = "date" in admins
    # Session numbers link exactly; dates link when the export has dates only, or when config
    # prefers dates (linking.by: date) and this table has them.
    if has_date and (not has_session or linking.by == "date"):
        admins, unlinked = _link_by_date(admins, registry, linking.window_days)
        if not unlinked.empty:
            rejects.append(_link_reject(unlinked, plan, "date", "unlinked_date",
                                        f"no session of this client within {linking.window_days} days"))
        admins = admins.assign(_route="date")
    else:
        admins = admins.assign(session=pd.to_numeric(admins["session"]).astype("int64"),
                               _route="session_number")
        recorded = pd.MultiIndex.from_frame(registry[["client", "session"]])
        unmatched = ~pd.MultiIndex.from_frame(admins[["client", "session"]]).isin(recorded)
        unmatched &= admins["client"].isin(known_clients).to_numpy()
        if unmatched.any() and linking.unmatched_sessions == "reject":
            rejects.append(_link_reject(admins[unmatched], plan, "session", "no_session_record",
                                        "no session record of this client at this session "
                                        "number (linking.unmatched_sessions: reject)"))
            admins = admins[~unmatched]
        else:
            admins.loc[unmatched, "_route"] = "no_session_record"
    if orphan.any() and linking.orphan_outcomes == "keep":
        admins.loc[admins["client"].isin(set(extra["client"])), "_route"] = "orphan"
    rejected = pd.concat(rejects, ignore_index=True) if rejects else _empty_rejects().assign(file=plan.path)
    return admins, rejected, extra


def _link_flow(name: str, offered: pd.DataFrame, kept: pd.DataFrame, rejected: pd.DataFrame
               ) -> list[dict]:
    """Administrations of rows rejected at linking, per instrument and rule."""
    if rejected.empty:
        return []
    lost = offered[~offered["_row"].isin(set(kept["_row"]))]
    rule_of_row = rejected.drop_duplicates("row").set_index("row")["rule"]
    lost = lost.assign(rule=lost["_row"].map(rule_of_row))
    return [_flow(name, "rejected", "administrations", str(rule), int(count), str(key))
            for (key, rule), count in lost.groupby(["instrument", "rule"]).size().sort_index().items()]


def _orphan_sessions(orphans: pd.DataFrame, plan: TablePlan) -> pd.DataFrame:
    sessions = pd.to_numeric(orphans["session"]).astype("int64") if "session" in orphans else 0
    return pd.DataFrame({
        "client": orphans["client"], "therapist": pd.NA, "session": sessions, "date": pd.NaT,
        "day": pd.array([pd.NA] * len(orphans), dtype="Int64"), "_row": orphans["_row"], "_table": plan.name,
    }).drop_duplicates(["client", "session"])


def _link_by_date(admins: pd.DataFrame, registry: pd.DataFrame, window_days: int):
    admins = admins.drop(columns=["session"], errors="ignore")
    left = admins.reset_index().sort_values("date")
    right = registry[["client", "session", "date"]].dropna(subset=["date"]).sort_values("date")
    merged = pd.merge_asof(
        left, right, on="date", by="client", direction="nearest",
        tolerance=pd.Timedelta(days=window_days),
    ).set_index("index").sort_index()
    linked = merged[merged["session"].notna()].assign(session=lambda f: f["session"].astype("int64"))
    return linked, merged[merged["session"].isna()]


def _link_reject(frame: pd.DataFrame, plan: TablePlan, role: str, rule: str, reason: str) -> pd.DataFrame:
    # Whether a row links depends on its client and date only: the whole row is rejected.
    frame = frame.drop_duplicates("_row")
    return pd.DataFrame({
        "file": plan.path, "record": frame["record"].to_numpy(), "row": frame["_row"].to_numpy(),
        "column": plan.roles.get(role, role), "rule": rule, "reason": reason,
        "level": "row", "instrument": None,
    })


def _finish_flow(results, link_rejects, plans, link_flow) -> pd.DataFrame:
    """Table flows with rows rejected at linking moved from kept to rejected, and the
    administrations kept, by how they found their session."""
    rows = []
    for name, result in results.items():
        linked_out = [r for r in link_rejects if not r.empty and r["file"].iloc[0] == plans[name].path]
        moved = pd.concat(linked_out, ignore_index=True) if linked_out else _empty_rejects()
        for entry in result.flow:
            if entry["stage"] == "kept":
                entry = {**entry, "count": entry["count"] - moved["row"].nunique()}
            rows.append(entry)
        for rule, count in moved.groupby("rule")["row"].nunique().sort_index().items():
            rows.append(_flow(name, "rejected", "rows", rule, int(count)))
        rows += [entry for entry in link_flow if entry["source"] == name]
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)


def _tidy_rejects(rejects: pd.DataFrame) -> pd.DataFrame:
    out = rejects[REJECT_COLUMNS].copy()
    out["row"] = out["row"].astype("int64")
    out["column"] = out["column"].fillna("").astype(str)
    out["instrument"] = out["instrument"].fillna("").astype(str)
    return out.sort_values(["file", "row", "column", "rule"], kind="stable").reset_index(drop=True)
