"""Data-quality gates: what ingest kept and rejected, told loudly, and a stop when it is too much.

Input: the ingest stage's flow (``ingest_flow.csv``: per file, rows read, kept and rejected by
rule; per file and instrument, administrations read, kept and rejected by rule) and the rejects
(``rejects.csv``: file, row, column, instrument, rule, reason). Output: one summary row per input
file (unit ``rows``) and per instrument over all files (unit ``administrations``) with the counts,
the rejected share, the most frequent reason with its count, an example row and the config key
that would fix it where one exists (:data:`FIXES`).

:func:`console_summary` is what the run prints after ingest; :func:`check_quality` stops the run
when a rejected share passes ``quality.max_reject_share``; :func:`upstream_text` tells a later
step that finds too few clients how many administrations were scored and rejected, and why.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from analysis.errors import DataError
from analysis.settings import QualitySettings

SUMMARY_COLUMNS = [
    "scope", "source", "path", "instrument", "unit", "read", "kept", "rejected",
    "rejected_share", "top_rule", "top_rule_count", "example", "fix",
]

#: The config key that fixes a rule's rejections when the export is right and the config wrong.
FIXES = {
    "item_not_whole": "instruments.{instrument}.integer_items: false (if its items are means or "
                      "ratings on a continuous scale)",
    "item_out_of_range": "inputs.{table}.missing_values (if values such as -99 or 999 are "
                         "missing-value codes, e.g. missing_values: [-99, 999]), "
                         "instruments.{instrument}.item_min / item_max (if the scale's range "
                         "differs), or inputs.{table}.instruments.{instrument}.items (if other "
                         "columns are mapped)",
    "item_not_numeric": "inputs.{table}.missing_values (if the export writes missing answers as "
                        "codes, e.g. missing_values: [\"#NULL!\"]), or "
                        "inputs.{table}.instruments.{instrument}.items (if other columns are "
                        "mapped)",
    "total_out_of_range": "inputs.{table}.missing_values (if values such as -99 or 999 are "
                          "missing-value codes, e.g. missing_values: [-99, 999]), or "
                          "inputs.{table}.instruments.{instrument}.total (if another column is "
                          "mapped)",
    "total_not_numeric": "inputs.{table}.missing_values (if the export writes missing totals as "
                         "codes, e.g. missing_values: [\"#NULL!\"]), or "
                         "inputs.{table}.instruments.{instrument}.total (if another column is "
                         "mapped)",
    "orphan_outcome": "linking.orphan_outcomes: keep (to keep questionnaires of clients without "
                      "session records)",
    "unlinked_date": "linking.window_days (a wider window), or linking.by",
    "no_session_record": "linking.unmatched_sessions: keep",
    "invalid_date": "inputs.{table}.date_format",
    "missing_date": "inputs.{table}.columns.date",
    "missing_therapist": "inputs.{table}.columns.therapist",
    "missing_session": "inputs.{table}.columns.session",
    "invalid_session": "inputs.{table}.columns.session",
    "missing_client_id": "inputs.{table}.columns.client",
}


def summarise_quality(flow: pd.DataFrame, rejects: pd.DataFrame,
                      settings: QualitySettings) -> pd.DataFrame:
    """The per-file and per-instrument summary described in the module docstring.

    Parameters
    ----------
    flow : DataFrame
        The ingest flow (``stage, source, instrument, unit, reason, count``).
    rejects : DataFrame
        The rejected rows (``file, row, column, instrument, rule, reason``).
    settings : QualitySettings
        The threshold and the input tables' paths (for messages).

    Returns
    -------
    DataFrame
        One row per input file (unit ``rows``) and per instrument (unit ``administrations``), in
        the columns :data:`SUMMARY_COLUMNS`.

    Examples
    --------
    >>> flow = pd.DataFrame({
    ...     "stage": ["read", "rejected", "kept", "read", "rejected", "kept"],
    ...     "source": ["sessions"] * 6, "instrument": ["", "", "", "phq9", "phq9", "phq9"],
    ...     "unit": ["rows"] * 3 + ["administrations"] * 3,
    ...     "reason": ["", "invalid_date", "", "", "item_out_of_range", ""],
    ...     "count": [10, 2, 8, 8, 1, 7]})
    >>> rejects = pd.DataFrame({
    ...     "file": ["data/raw/sessions.csv"] * 3, "row": [4, 7, 9],
    ...     "column": ["date", "date", "phq9_3"], "instrument": ["", "", "phq9"],
    ...     "rule": ["invalid_date", "invalid_date", "item_out_of_range"],
    ...     "reason": ["not a date", "not a date", "7 is above 3"]})
    >>> settings = QualitySettings(max_reject_share=0.2, inputs={"sessions": "data/raw/sessions.csv"})
    >>> summary = summarise_quality(flow, rejects, settings)
    >>> summary[["scope", "instrument", "read", "rejected", "rejected_share", "top_rule"]]
            scope instrument  read  rejected  rejected_share           top_rule
    0        file               10         2           0.200       invalid_date
    1  instrument       phq9     8         1           0.125  item_out_of_range
    >>> summary.loc[0, "example"]
    'data/raw/sessions.csv row 4, column date: not a date'
    """
    flow = flow.fillna({"instrument": "", "reason": ""})
    rejects = rejects.fillna({"instrument": "", "column": ""})
    paths = dict(settings.inputs)
    rows = []
    for source in dict.fromkeys(flow["source"]):
        part = flow[(flow["source"] == source) & (flow["unit"] == "rows")]
        path = paths.get(source, source)
        rejected = part[part["stage"] == "rejected"]
        file_rejects = rejects[(rejects["file"] == path) & (rejects["instrument"] == "")]
        rows.append(_summary_row("file", source, path, "", "rows",
                                 _total(part, "read"), rejected, file_rejects, source))
    admins = flow[flow["unit"] == "administrations"]
    for instrument in dict.fromkeys(admins["instrument"]):
        part = admins[admins["instrument"] == instrument]
        rejected = part[part["stage"] == "rejected"]
        by_file = rejected.groupby("source", sort=False)["count"].sum()
        table = str(by_file.idxmax()) if len(by_file) and by_file.max() > 0 else str(
            part["source"].iloc[0])
        instrument_rejects = rejects[(rejects["instrument"] == instrument)
                                     | ((rejects["instrument"] == "")
                                        & rejects["file"].isin(
                                            [paths.get(s, s) for s in part["source"]]))]
        rows.append(_summary_row("instrument", ", ".join(dict.fromkeys(part["source"])),
                                 ", ".join(paths.get(s, s) for s in dict.fromkeys(part["source"])),
                                 instrument, "administrations", _total(part, "read"), rejected,
                                 instrument_rejects, table))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _total(part: pd.DataFrame, stage: str) -> int:
    return int(part.loc[part["stage"] == stage, "count"].sum())


def _summary_row(scope: str, source: str, path: str, instrument: str, unit: str, read: int,
                 rejected: pd.DataFrame, rejects: pd.DataFrame, table: str) -> dict[str, Any]:
    n_rejected = int(rejected["count"].sum())
    by_rule = rejected.groupby("reason", sort=True)["count"].sum()
    top_rule = str(by_rule.idxmax()) if n_rejected else ""
    example = ""
    if top_rule:
        matches = rejects[rejects["rule"] == top_rule].sort_values(["file", "row"], kind="stable")
        if len(matches):
            first = matches.iloc[0]
            column = f", column {first['column']}" if first["column"] else ""
            example = f"{first['file']} row {int(first['row'])}{column}: {first['reason']}"
    fix = FIXES.get(top_rule, "").format(instrument=instrument or "<name>", table=table)
    return {
        "scope": scope, "source": source, "path": path, "instrument": instrument, "unit": unit,
        "read": read, "kept": read - n_rejected, "rejected": n_rejected,
        "rejected_share": n_rejected / read if read else 0.0,
        "top_rule": top_rule, "top_rule_count": int(by_rule.max()) if n_rejected else 0,
        "example": example, "fix": fix,
    }


def console_summary(summary: pd.DataFrame) -> str:
    """The lines printed after ingest: per file and per instrument, read, kept, rejected, why.

    Parameters
    ----------
    summary : DataFrame
        The summary of :func:`summarise_quality`.

    Returns
    -------
    str
        The lines, joined by newlines.

    Examples
    --------
    >>> flow = pd.DataFrame({"stage": ["read", "rejected", "kept"], "source": ["sessions"] * 3,
    ...                      "instrument": [""] * 3, "unit": ["rows"] * 3,
    ...                      "reason": ["", "invalid_date", ""], "count": [10, 2, 8]})
    >>> rejects = pd.DataFrame({"file": ["sessions.csv"], "row": [4], "column": ["date"],
    ...                         "instrument": [""], "rule": ["invalid_date"],
    ...                         "reason": ["not a date"]})
    >>> settings = QualitySettings(inputs={"sessions": "sessions.csv"})
    >>> print(console_summary(summarise_quality(flow, rejects, settings)))
    Data quality after ingest (every rejected row: data/processed/rejects.csv):
      sessions (sessions.csv): 10 rows read, 8 kept, 2 rejected (20.0%); most often invalid_date (2), e.g. sessions.csv row 4, column date: not a date
    """
    lines = ["Data quality after ingest (every rejected row: data/processed/rejects.csv):"]
    for row in summary.to_dict("records"):
        name = (f"{row['source']} ({row['path']})" if row["scope"] == "file"
                else f"{row['instrument']} ({row['source']})")
        line = (f"  {name}: {row['read']:,} {row['unit']} read, {row['kept']:,} kept, "
                f"{row['rejected']:,} rejected ({100 * row['rejected_share']:.1f}%)")
        if row["top_rule"]:
            line += f"; most often {row['top_rule']} ({row['top_rule_count']:,})"
            if row["example"]:
                line += f", e.g. {row['example']}"
        lines.append(line)
    return "\n".join(lines)


def check_quality(summary: pd.DataFrame, settings: QualitySettings) -> None:
    """Stop when a file's rejected rows or an instrument's rejected administrations pass the
    threshold (``quality.max_reject_share``); the message names what, why and the fix.

    Parameters
    ----------
    summary : DataFrame
        The summary of :func:`summarise_quality`.
    settings : QualitySettings
        ``max_reject_share``: the largest rejected share that lets the run go on.

    Returns
    -------
    None
        Returns only when every share is within the threshold.

    Raises
    ------
    DataError
        When a file's or an instrument's rejected share passes the threshold: the message names
        the file, the most frequent rule with an example row, and the config key that fixes it.

    Examples
    --------
    >>> flow = pd.DataFrame({"stage": ["read", "rejected", "kept"], "source": ["sessions"] * 3,
    ...                      "instrument": [""] * 3, "unit": ["rows"] * 3,
    ...                      "reason": ["", "invalid_date", ""], "count": [10, 2, 8]})
    >>> rejects = pd.DataFrame({"file": ["sessions.csv"], "row": [4], "column": ["date"],
    ...                         "instrument": [""], "rule": ["invalid_date"],
    ...                         "reason": ["not a date"]})
    >>> settings = QualitySettings(inputs={"sessions": "sessions.csv"})
    >>> summary = summarise_quality(flow, rejects, settings)
    >>> check_quality(summary, QualitySettings(max_reject_share=0.25))
    >>> check_quality(summary, QualitySettings(max_reject_share=0.1))
    Traceback (most recent call last):
    ...
    analysis.errors.DataError: sessions.csv: 2 of 10 rows (20.0%) were rejected at ingest, more than quality.max_reject_share (10%). ...
    """
    over = summary[summary["rejected_share"] > settings.max_reject_share]
    if over.empty:
        return
    worst = over.sort_values("rejected_share", ascending=False, kind="stable").iloc[0]
    what = (f"{worst['rejected']:,} of {worst['read']:,} rows"
            if worst["scope"] == "file"
            else f"{worst['rejected']:,} of {worst['read']:,} {worst['instrument']} "
                 "administrations")
    message = (
        f"{worst['path']}: {what} ({100 * worst['rejected_share']:.1f}%) were rejected at "
        f"ingest, more than quality.max_reject_share ({100 * settings.max_reject_share:g}%). "
        f"Most often: {worst['top_rule']} ({worst['top_rule_count']:,})"
        + (f", e.g. {worst['example']}" if worst["example"] else "") + ". "
    )
    message += (f"If the export is right, fix the config: {worst['fix']}. " if worst["fix"]
                else "Fix the export: no config key changes this rule. ")
    others = [f"{row['instrument'] or row['source']} ({100 * row['rejected_share']:.1f}%)"
              for row in over.to_dict("records")[1:]] if len(over) > 1 else []
    if others:
        message += f"Also over the threshold: {', '.join(others)}. "
    message += ("Every rejected row is in data/processed/rejects.csv. To go on with these "
                "rejections, raise quality.max_reject_share.")
    raise DataError(message)


def upstream_text(summary: pd.DataFrame, scores: pd.DataFrame, instruments: Sequence[str]) -> str:
    """What happened upstream to ``instruments``: administrations read, rejected (top reason)
    and scored, for messages of later steps that find too few clients or observations.

    Parameters
    ----------
    summary : DataFrame
        The summary of :func:`summarise_quality`.
    scores : DataFrame
        The scores (``instrument``, ``score``; a missing score was not scored).
    instruments : sequence of str
        The instruments to tell about.

    Returns
    -------
    str
        One sentence ("" without instruments).

    Examples
    --------
    >>> summary = pd.DataFrame({"scope": ["instrument"], "instrument": ["phq9"], "read": [8],
    ...                         "rejected": [1], "top_rule": ["item_out_of_range"],
    ...                         "top_rule_count": [1]})
    >>> scores = pd.DataFrame({"instrument": ["phq9"] * 7,
    ...                        "score": [12.0, 9.0, None, 7.0, 15.0, 11.0, 6.0]})
    >>> upstream_text(summary, scores, ["phq9"])
    'Upstream: phq9: 6 administrations scored of 8 read, 1 rejected at ingest (most often
     item_out_of_range: 1), 1 not scored (too many missing items). See
     results/tables/data_quality.csv and data/processed/rejects.csv.'
    """
    parts = []
    for key in instruments:
        row = summary[(summary["scope"] == "instrument") & (summary["instrument"] == key)]
        scored = scores.loc[scores["instrument"] == key, "score"]
        text = f"{key}: {int(scored.notna().sum()):,} administrations scored"
        if len(row):
            entry = row.iloc[0]
            text += f" of {int(entry['read']):,} read, {int(entry['rejected']):,} rejected at ingest"
            if entry["top_rule"]:
                text += f" (most often {entry['top_rule']}: {int(entry['top_rule_count']):,})"
        unscored = int(scored.isna().sum())
        if unscored:
            text += f", {unscored:,} not scored (too many missing items)"
        parts.append(text)
    if not parts:
        return ""
    return ("Upstream: " + "; ".join(parts)
            + ". See results/tables/data_quality.csv and data/processed/rejects.csv.")
