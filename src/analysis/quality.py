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
    """The per-file and per-instrument summary described in the module docstring."""
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
    """The lines printed after ingest: per file and per instrument, read, kept, rejected, why."""
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
    threshold (``quality.max_reject_share``); the message names what, why and the fix."""
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
    and scored, for messages of later steps that find too few clients or observations."""
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
