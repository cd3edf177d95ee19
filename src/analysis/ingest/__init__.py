"""Ingest: read any declared export, keep only what is needed, validate every row, pseudonymise.

Inputs are the tables declared under ``inputs:`` in the config (CSV with any delimiter and
encoding, Parquet, Excel, SPSS ``.sav`` or Stata ``.dta``; long or wide layout). For each table
the stage

1. reads it with every cell as text (so that nothing is guessed or silently converted; SPSS
   user-defined missing values arrive as missing), skips blank rows (every cell empty or a
   missing-value code) and sets the table's ``missing_values`` codes missing, counting both;
2. maps its columns to the roles client, therapist, session and date, and to instrument items or
   pre-scored totals; every other column is dropped at once (an allowlist: names, contact details,
   free text never pass) and reported by column name and count, never by value;
3. validates every row with a pandera schema in one pass (``lazy=True``): a row without a client
   id or with an invalid session number or date is rejected; an item that is not a number, not a
   whole number, or outside its range rejects that administration (never clipped); exact
   duplicate rows are dropped, conflicting duplicates (same client and session, different
   answers) are all rejected; a row without a value in any measure is no administration, and
   beside a filled row of the same client and session it is set aside, not a conflict;
4. links questionnaires to sessions (by session number, or by date within a window) and rejects
   or keeps, per config, questionnaires of clients without session records (``orphan_outcomes``)
   and questionnaires at a session number that has no session record (``unmatched_sessions``);
   session records without any measure (placeholder weeks) are not sessions;
5. replaces client and therapist ids by keyed pseudonyms and dates by day offsets from each
   client's first session.

Outputs (see the shared contracts in the README): ``administrations`` (one row per scored
questionnaire administration), ``sessions`` (the session registry), ``rejects`` (file, row,
column, instrument, rule, reason: never an identifier's value), ``flags`` (kept rows with a
warning) and the ``flow`` accounting (columns :data:`FLOW_COLUMNS`; for each file, rows read =
rows kept + rows rejected; for each file and instrument, administrations read = administrations
kept, by the route that linked them (:data:`ROUTES`), + administrations rejected, by rule;
blank rows skipped, cells set missing and rows without any measure in lines of their own,
:data:`NOTES`).

The modules: :mod:`~analysis.ingest.reading` (files as text), :mod:`~analysis.ingest.planning`
(columns to roles and items), :mod:`~analysis.ingest.validation` (one table's rows),
:mod:`~analysis.ingest.linking` (the tables together; :func:`run_ingest`, the stage) and
:mod:`~analysis.ingest.tables` (the shapes they share).
"""

# The stage's parts are imported on first use, so that a light module can use the shapes in
# analysis.ingest.tables without importing pandera (every job would pay for it).
_EXPORTS = {
    "ingest_all": "linking", "input_paths": "linking", "run_ingest": "linking",
    "read_export": "reading",
    "FLOW_COLUMNS": "tables", "NOTES": "tables", "REJECT_COLUMNS": "tables", "ROUTES": "tables",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis.ingest' has no attribute {name!r}")
    if _EXPORTS[name] == "linking":
        from analysis.ingest import linking as module
    elif _EXPORTS[name] == "reading":
        from analysis.ingest import reading as module
    else:
        from analysis.ingest import tables as module
    return getattr(module, name)


__all__ = sorted(_EXPORTS)
