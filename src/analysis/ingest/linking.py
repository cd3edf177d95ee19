"""Linking the tables: the session registry, questionnaires to sessions, pseudonyms, the flow.

Questionnaires find their session by session number, or by date (nearest session within
``linking.window_days``) when a table has dates only or ``linking.by`` is ``date``. Questionnaires
of a client without any session record, and of a known client at a session number without a
session record, are rejected or kept per ``linking.orphan_outcomes`` and
``linking.unmatched_sessions``; every route is counted. Client and therapist ids become keyed
pseudonyms, dates day offsets from each client's first session.

A session record without a value in any measure (a placeholder week of an export), of a
sessions table that declares instruments, is not an attended session unless a questionnaire of
another table links to it: it leaves the session registry and is counted in the flow ("session
records with no measure"). A sessions table without instruments is an attendance log: every
record of it is a session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.errors import ConfigError
from analysis.ingest.planning import plan_table
from analysis.ingest.reading import read_export
from analysis.ingest.tables import (
    FLOW_COLUMNS,
    status_text,
    REJECT_COLUMNS,
    ROUTES,
    TablePlan,
    TableResult,
    empty_rejects,
    flow_entry,
    note_entry,
)
from analysis.ingest.validation import ingest_table
from analysis.privacy import is_demo_data, pseudonymise, resolve_key
from analysis.settings import IngestSettings, InputTable, LinkingSettings


def input_paths(inputs: Sequence[InputTable], root: str | Path = ".") -> dict[str, Path]:
    """The declared input files, by table name, resolved against the project folder.

    Parameters
    ----------
    inputs : sequence of InputTable
        The declared tables (``inputs`` in config).
    root : str or Path
        The project folder the tables' paths are relative to.

    Returns
    -------
    dict of str to Path
        Each table's file, by table name.

    Examples
    --------
    >>> from analysis.config import check_config
    >>> from analysis.instrument_declarations import build_registry
    >>> from analysis.study import input_table
    >>> checked = check_config({"inputs": {"visits": {
    ...     "path": "data/raw/visits.csv", "kind": "sessions",
    ...     "columns": {"client": "Client", "therapist": "Clinician", "session": "Visit"},
    ...     "instruments": {"gad7": {"items": "GAD{i}"}}}},
    ...     "analysis": {"alliance": "wai_sr", "outcomes": ["gad7"]}})
    >>> inputs = [input_table(name, table, build_registry())
    ...           for name, table in checked["inputs"].items()]
    >>> {name: path.as_posix() for name, path in input_paths(inputs, "/srv/study").items()}
    {'visits': '/srv/study/data/raw/visits.csv'}
    """
    return {table.name: Path(root) / table.path for table in inputs}


def run_ingest(settings: IngestSettings, root: str | Path = ".", key: str | None = None
               ) -> dict[str, pd.DataFrame]:
    """Read, validate, link and pseudonymise every declared input table.

    ``key`` (the pseudonymisation key) defaults to the one named by ``settings.key_env``; the
    public demo key only for the shipped demo data.

    Parameters
    ----------
    settings : IngestSettings
        The declared tables, the linking rules, the key's environment variable and the
        instruments' items.
    root : str or Path
        The project folder the tables' paths are relative to.
    key : str, optional
        The pseudonymisation key (default: :func:`analysis.privacy.resolve_key`).

    Returns
    -------
    dict of str to DataFrame
        As :func:`ingest_all`.

    Raises
    ------
    ConfigError
        When no key is set for data other than the shipped demo data, or the tables do not match
        their declaration (the message names the table and key).

    Examples
    --------
    >>> import tempfile
    >>> from analysis.config import check_config
    >>> from analysis.instrument_declarations import BUILT_IN, build_registry
    >>> from analysis.settings import LinkingSettings
    >>> from analysis.study import input_table
    >>> folder = tempfile.TemporaryDirectory()
    >>> visits = pd.DataFrame({"Client": ["A1", "A1", "B2", "B2"], "Clinician": ["T9"] * 4,
    ...                        "Visit": [1, 2, 1, 2], **{f"GAD{i}": [2, 1, 3, 2] for i in range(1, 7)},
    ...                        "GAD7": [2, 1, 3, 7]})
    >>> visits.to_csv(Path(folder.name) / "visits.csv", index=False)
    >>> checked = check_config({"inputs": {"visits": {
    ...     "path": "visits.csv", "kind": "sessions",
    ...     "columns": {"client": "Client", "therapist": "Clinician", "session": "Visit"},
    ...     "instruments": {"gad7": {"items": "GAD{i}"}}}},
    ...     "analysis": {"alliance": "wai_sr", "outcomes": ["gad7"]}})
    >>> settings = IngestSettings(
    ...     inputs=tuple(input_table(name, table, build_registry())
    ...                  for name, table in checked["inputs"].items()),
    ...     linking=LinkingSettings(), key_env="EXAMPLE_PSEUDONYM_KEY",
    ...     instruments={"gad7": BUILT_IN["gad7"].params("ingest")})
    >>> out = run_ingest(settings, folder.name, key="an example key")
    >>> out["sessions"]
                client_id        therapist_id  session   day
    0  c_b1e88a724d9eb9e3  t_cc93c35b3b5653c2        1  <NA>
    1  c_b1e88a724d9eb9e3  t_cc93c35b3b5653c2        2  <NA>
    2  c_d33b5b42c682a535  t_cc93c35b3b5653c2        1  <NA>
    3  c_d33b5b42c682a535  t_cc93c35b3b5653c2        2  <NA>
    >>> out["rejects"][["file", "row", "column", "rule"]]
             file  row column               rule
    0  visits.csv    5   GAD7  item_out_of_range
    >>> folder.cleanup()
    """
    paths = input_paths(settings.inputs, root)
    registry = settings.registry()
    tables = {table.name: read_export(paths[table.name], table) for table in settings.inputs}
    if key is None:
        key = resolve_key(settings.key_env, is_demo_data(list(paths.values())))
    return ingest_all(tables, settings.inputs, settings.linking, registry, key)


def ingest_all(
    tables: dict[str, pd.DataFrame], inputs: Sequence[InputTable], linking: LinkingSettings,
    registry: dict, key: str,
) -> dict[str, pd.DataFrame]:
    """Ingest every declared table (already read) and link them into the canonical frames.

    Returns a dict with ``administrations``, ``sessions``, ``rejects``, ``flags`` and ``flow``.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Each declared table as read (:func:`analysis.ingest.reading.read_export`: every cell
        text), by table name.
    inputs : sequence of InputTable
        The declared tables.
    linking : LinkingSettings
        How questionnaires find their session.
    registry : dict
        The instrument registry.
    key : str
        The pseudonymisation key.

    Returns
    -------
    dict of str to DataFrame
        ``administrations``, ``sessions``, ``offered_sessions``, ``rejects``, ``flags`` and
        ``flow``.

    Raises
    ------
    ConfigError
        When no table is declared with ``kind: sessions``.

    Examples
    --------
    >>> from analysis.config import check_config
    >>> from analysis.instrument_declarations import build_registry
    >>> from analysis.settings import LinkingSettings
    >>> from analysis.study import input_table
    >>> checked = check_config({"inputs": {"visits": {
    ...     "path": "visits.csv", "kind": "sessions",
    ...     "columns": {"client": "Client", "therapist": "Clinician", "session": "Visit"},
    ...     "instruments": {"gad7": {"items": "GAD{i}"}}}},
    ...     "analysis": {"alliance": "wai_sr", "outcomes": ["gad7"]}})
    >>> registry = build_registry()
    >>> inputs = [input_table(name, table, registry) for name, table in checked["inputs"].items()]
    >>> visits = pd.DataFrame({"Client": ["A1", "A1", "B2"], "Clinician": ["T9"] * 3,
    ...                        "Visit": ["1", "2", "1"],
    ...                        **{f"GAD{i}": ["2", "1", "3"] for i in range(1, 8)}}, dtype="string")
    >>> out = ingest_all({"visits": visits}, inputs, LinkingSettings(), registry, key="an example key")
    >>> sorted(out)
    ['administrations', 'flags', 'flow', 'offered_sessions', 'rejects', 'sessions']
    >>> out["administrations"][["client_id", "session", "instrument", "item_1"]]
                client_id  session instrument  item_1
    0  c_b1e88a724d9eb9e3        1       gad7     2.0
    1  c_b1e88a724d9eb9e3        2       gad7     1.0
    2  c_d33b5b42c682a535        1       gad7     3.0
    >>> out["flow"].query("unit == 'rows'")[["stage", "reason", "count"]]
      stage reason  count
    0  read             3
    1  kept             3
    """
    results: dict[str, TableResult] = {}
    plans: dict[str, TablePlan] = {}
    declared = {table.name: table for table in inputs}
    for name, raw in tables.items():
        plans[name] = plan_table(declared[name], list(raw.columns), registry)
        results[name] = ingest_table(raw, plans[name], registry, declared[name])
    if not any(plan.kind == "sessions" for plan in plans.values()):
        raise ConfigError("inputs: declare one table with kind: sessions (the session records with therapist ids).")

    registry_frame = _session_registry(results, plans, declared)
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
        link_flow += [flow_entry(name, "kept", "administrations", ROUTES[route], int(count), str(key))
                      for (key, route), count in admins.groupby(["instrument", "_route"]).size()
                      .sort_index().items()]
        administrations.append(admins.assign(_table=name))

    admin_frame = pd.concat(administrations, ignore_index=True)
    rejects = pd.concat([r.rejects for r in results.values()] + link_rejects, ignore_index=True)
    # Records with a status other than attended are offered sessions only; of the attended
    # ones, those without any measure are placeholders, not sessions.
    registry_frame, offered_frame, status_notes = _apply_status(registry_frame, admin_frame,
                                                                plans)
    registry_frame = _drop_unmeasured(registry_frame, admin_frame, plans)
    registry_frame, flags = _finish_registry(registry_frame, plans)
    kept = pd.MultiIndex.from_frame(registry_frame[["_table", "_row"]])
    placeholder = ((offered_frame["_status"] == "attended")
                   & ~pd.MultiIndex.from_frame(offered_frame[["_table", "_row"]]).isin(kept))
    offered_frame = _day_offsets(offered_frame.assign(
        _status=offered_frame["_status"].mask(placeholder, "no_measure")))
    registry_frame = pd.concat([registry_frame] + extra_sessions, ignore_index=True)
    # rows counted under a status (not attended) are not counted again as rows without a measure
    by_status = offered_frame[~offered_frame["_status"].isin(["attended", "no_measure"])]
    notes = _no_measure_notes(results, plans, pd.concat([registry_frame, by_status]))
    for name, entries in status_notes.items():
        notes.setdefault(name, []).extend(entries)
    flow = _finish_flow(results, link_rejects, plans, link_flow, notes)

    sessions = pd.DataFrame({
        "client_id": pseudonymise(registry_frame["client"], key, "c_"),
        "therapist_id": pseudonymise(registry_frame["therapist"], key, "t_"),
        "session": registry_frame["session"].astype("int64"),
        "day": registry_frame["day"].astype("Int64"),
    }).sort_values(["client_id", "session"], kind="stable").drop_duplicates(["client_id", "session"])
    offered_sessions = pd.DataFrame({
        "client_id": pseudonymise(offered_frame["client"], key, "c_"),
        "therapist_id": pseudonymise(offered_frame["therapist"], key, "t_"),
        "session": offered_frame["session"].astype("int64"),
        "day": offered_frame["day"].astype("Int64"),
        "status": offered_frame["_status"].astype("string"),
        "ending": offered_frame["_ending"].astype("string"),
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
        "offered_sessions": offered_sessions.reset_index(drop=True),
        "rejects": _tidy_rejects(rejects),
        "flags": flags,
        "flow": flow,
    }


def _session_registry(results, plans, declared=None):
    """Session records from the sessions tables: client, therapist, session, date, whether the
    record holds a measure (``_measured``; always true in a table without instruments) and its
    status (``_status``: from the status column mapped by ``status_values``, else attended) and
    the episode ending it records (``_ending``: from the ending column mapped by
    ``ending_values``, else missing)."""
    parts = []
    for name, result in results.items():
        if plans[name].kind != "sessions":
            continue
        records = result.records.copy()
        records["_table"] = name
        if not plans[name].instruments or "_measured" not in records:
            records["_measured"] = True
        table = (declared or {}).get(name)
        if "status" in records and table is not None and table.status_values:
            category = {code: kind for kind, codes in table.status_values.items()
                        for code in codes}
            records["_status"] = records["status"].map(
                lambda value: category.get(status_text(value)) if pd.notna(value) else None)
        else:
            records["_status"] = "attended"
        if "ending" in records and table is not None and table.ending_values:
            ending = {code: kind for kind, codes in table.ending_values.items() for code in codes}
            records["_ending"] = records["ending"].map(
                lambda value: ending.get(status_text(value)) if pd.notna(value) else None)
        else:
            records["_ending"] = None
        parts.append(records)
    registry = pd.concat(parts, ignore_index=True)
    if "session" not in registry or registry["session"].isna().all():
        # Sessions numbered by date order when the export has dates only.
        registry["session"] = registry.groupby("client")["date"].rank(method="dense").astype("int64")
    else:
        registry["session"] = pd.to_numeric(registry["session"]).astype("int64")
    if "therapist" not in registry:
        registry["therapist"] = pd.NA
    if "date" not in registry:
        registry["date"] = pd.NaT
    registry = registry.sort_values(["client", "session", "_row"], kind="stable")
    return registry[["client", "therapist", "session", "date", "_row", "_table", "_measured",
                     "_status", "_ending"]]


def _apply_status(registry: pd.DataFrame, admins: pd.DataFrame, plans):
    """Split session records by their status: attended ones are the sessions; the others (did
    not attend, cancelled) are kept only as offered sessions, for attendance rates. A record
    with a non-attended status that carries a measure (in its own row or a questionnaire linked
    to its client and session) was attended in fact and counts as a session; each case is
    counted in the data flow.

    Returns the attended registry, every record with its status (offered sessions) and the flow
    notes per table.
    """
    status = registry["_status"].fillna("attended").astype(str)
    registry = registry.assign(_status=status)
    not_attended = status != "attended"
    notes: dict[str, list[dict]] = {}
    if not not_attended.any():
        return registry, registry, notes
    here = pd.MultiIndex.from_frame(registry[["client", "session"]].astype({"session": "int64"}))
    measured_rows = registry["_measured"].astype(bool) & registry["_table"].map(
        lambda t: bool(plans[t].instruments))
    if len(admins):
        linked = pd.MultiIndex.from_frame(admins[["client", "session"]].astype(
            {"session": "int64"}))
        measured_rows |= here.isin(linked)
    attended_in_fact = not_attended & measured_rows
    registry.loc[attended_in_fact, "_status"] = "attended"
    dropped = not_attended & ~attended_in_fact
    for (name, kind), count in registry.loc[dropped].groupby(["_table", "_status"]).size().items():
        notes.setdefault(name, []).append(flow_entry(
            name, "not_attended", "rows",
            f"session records {kind.replace('_', ' ')} (not sessions; offered sessions only)",
            int(count)))
    for name, count in registry.loc[attended_in_fact].groupby("_table").size().items():
        notes.setdefault(name, []).append(flow_entry(
            name, "not_attended", "rows",
            "session records with a non-attended status but a measure (counted as attended)",
            int(count)))
    return registry.loc[~dropped], registry, notes


def _drop_unmeasured(registry: pd.DataFrame, admins: pd.DataFrame, plans) -> pd.DataFrame:
    """The registry without session records that carry no measure, neither in their own row nor
    in a questionnaire of another table linked to their client and session."""
    unmeasured = ~registry["_measured"].astype(bool)
    if not unmeasured.any():
        return registry
    questionnaires = admins[admins["_table"].map(lambda t: plans[t].kind != "sessions")]
    linked = pd.MultiIndex.from_frame(questionnaires[["client", "session"]].astype(
        {"session": "int64"})) if len(questionnaires) else None
    if linked is not None:
        here = pd.MultiIndex.from_frame(registry[["client", "session"]].astype({"session": "int64"}))
        unmeasured &= ~here.isin(linked)
    return registry.loc[~unmeasured]


def _day_offsets(registry: pd.DataFrame) -> pd.DataFrame:
    """``day``: days from each client's first record (missing without dates)."""
    registry = registry.copy()
    if registry["date"].notna().any():
        first = registry.groupby("client")["date"].transform("min")
        registry["day"] = (registry["date"] - first).dt.days.astype("Int64")
    else:
        registry["day"] = pd.array([pd.NA] * len(registry), dtype="Int64")
    return registry


def _finish_registry(registry: pd.DataFrame, plans):
    """Day offsets from each client's first session, and the date-order flags."""
    registry = registry.copy()
    if registry["date"].notna().any():
        first = registry.groupby("client")["date"].transform("min")
        registry["day"] = (registry["date"] - first).dt.days.astype("Int64")
    else:
        registry["date"] = pd.NaT
        registry["day"] = pd.array([pd.NA] * len(registry), dtype="Int64")
    flags = _date_order_flags(registry, plans)
    return registry[["client", "therapist", "session", "date", "day", "_row", "_table",
                     "_measured", "_status"]], flags


def _no_measure_notes(results, plans, registry: pd.DataFrame) -> dict[str, list[dict]]:
    """Per table, the flow line of its kept rows without any measure: in a sessions table the
    session records that are not counted as sessions, elsewhere rows without an administration."""
    notes: dict[str, list[dict]] = {}
    for name, result in results.items():
        rows = set(result.no_measure_rows)
        if plans[name].kind == "sessions":
            rows -= set(registry.loc[registry["_table"] == name, "_row"])
            note = "session_no_measure"
        else:
            note = "row_no_measure"
        if rows:
            notes[name] = [note_entry(name, note, len(rows))]
    return notes


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
    rejected = pd.concat(rejects, ignore_index=True) if rejects else empty_rejects().assign(file=plan.path)
    return admins, rejected, extra


def _link_flow(name: str, offered: pd.DataFrame, kept: pd.DataFrame, rejected: pd.DataFrame
               ) -> list[dict]:
    """Administrations of rows rejected at linking, per instrument and rule."""
    if rejected.empty:
        return []
    lost = offered[~offered["_row"].isin(set(kept["_row"]))]
    rule_of_row = rejected.drop_duplicates("row").set_index("row")["rule"]
    lost = lost.assign(rule=lost["_row"].map(rule_of_row))
    return [flow_entry(name, "rejected", "administrations", str(rule), int(count), str(key))
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


def _finish_flow(results, link_rejects, plans, link_flow, notes=None) -> pd.DataFrame:
    """Table flows with rows rejected at linking moved from kept to rejected, the rows kept
    without any measure, and the administrations kept, by how they found their session."""
    rows = []
    for name, result in results.items():
        linked_out = [r for r in link_rejects if not r.empty and r["file"].iloc[0] == plans[name].path]
        moved = pd.concat(linked_out, ignore_index=True) if linked_out else empty_rejects()
        for entry in result.flow:
            if entry["stage"] == "kept":
                entry = {**entry, "count": entry["count"] - moved["row"].nunique()}
            rows.append(entry)
        for rule, count in moved.groupby("rule")["row"].nunique().sort_index().items():
            rows.append(flow_entry(name, "rejected", "rows", rule, int(count)))
        rows += (notes or {}).get(name, [])
        rows += [entry for entry in link_flow if entry["source"] == name]
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)


def _tidy_rejects(rejects: pd.DataFrame) -> pd.DataFrame:
    out = rejects[REJECT_COLUMNS].copy()
    out["row"] = out["row"].astype("int64")
    out["column"] = out["column"].fillna("").astype(str)
    out["instrument"] = out["instrument"].fillna("").astype(str)
    return out.sort_values(["file", "row", "column", "rule"], kind="stable").reset_index(drop=True)
