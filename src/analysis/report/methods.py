"""The methods section, generated from the study's settings, the data flow and the fitted models.

Every sentence that depends on the data is made from the data: what ingest rejected and why
("none" when nothing was), how the kept questionnaires found their session (counted per route,
so a questionnaire at a session number without a session record is said to be kept when it was),
which terms form each multiple-testing family (read off ``models.csv``, the same table that
holds their adjusted p-values), and whether a Jacobson-Truax cut-off fell outside its scale.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from analysis.ingest import ROUTES
from analysis.presentation import FAMILY_P_COLUMNS, analysis_label, term_label
from analysis.report.formatting import MISSING, Table, format_number, generic_table
from analysis.report.inputs import ReportTables
from analysis.report.tables import model_fit_table
from analysis.report.view import ReportView


def instrument_table(instruments: Sequence[Any]) -> Table:
    """The scoring rules of the instruments analysed, from the registry."""
    body = []
    for instrument in instruments:
        plural = "s" if instrument.max_missing != 1 else ""
        missing = (f"prorated with up to {instrument.max_missing} missing item{plural}"
                   if instrument.missing_rule == "prorate" and instrument.max_missing
                   else "no score with any missing item")
        if instrument.subscales:
            missing += (f"; subscales prorated with up to {instrument.subscale_max_missing} "
                        "missing")
        subscales = "; ".join(f"{name.capitalize()} {', '.join(map(str, items))}"
                              for name, items in instrument.subscales.items()) or MISSING
        bands = "; ".join(f"{label} {low:g}-{high:g}" for label, low, high in
                          instrument.bands) or MISSING
        caseness = "not defined"
        if instrument.caseness is not None:
            caseness = f"{instrument.case_when.replace('_', ' ')} {instrument.caseness:g}"
        items = f"{instrument.n_items} ({instrument.item_min:g}-{instrument.item_max:g}"
        items += ")" if instrument.integer_items else ", not necessarily whole)"
        body.append([
            instrument.label, instrument.construct, items,
            f"{instrument.scoring} ({instrument.score_min:g}-{instrument.score_max:g})",
            instrument.direction.replace("_", " "),
            ", ".join(map(str, instrument.reverse_items)) or "none",
            missing, subscales, bands, caseness,
            "not defined" if instrument.reliable_change is None
            else f"{instrument.reliable_change:g}",
        ])
    return Table("Instruments and scoring rules",
                 ["Instrument", "Construct", "Items (range)", "Score (range)", "Direction",
                  "Reverse-keyed", "Missing items", "Subscales (items)", "Bands", "Caseness",
                  "Reliable change"], body, numeric=[False] * 11)


def _counts(flow: pd.DataFrame, **conditions: str) -> pd.DataFrame:
    if flow.empty:
        return flow
    mask = pd.Series(True, index=flow.index)
    for column, value in conditions.items():
        mask &= flow[column].fillna("").astype(str) == value
    return flow.loc[mask]


def _total(frame: pd.DataFrame) -> int:
    return int(pd.to_numeric(frame["count"], errors="coerce").fillna(0).sum()) if len(frame) else 0


def exclusions_table(flow: pd.DataFrame) -> Table:
    """Rows and administrations rejected at ingest, by file, instrument and reason."""
    rejected = _counts(flow, stage="rejected")
    return generic_table(rejected, "Exclusions at ingest (rows and administrations rejected)",
                         {"source": "File", "instrument": "Instrument", "unit": "Unit",
                          "reason": "Reason", "count": "Count"})


def data_sentences(flow: pd.DataFrame, view: ReportView) -> list[str]:
    """What happened to the data at ingest, in sentences made from the data-flow counts."""
    settings = view.settings
    inputs = ", ".join(f"{table['path']} ({table['format']}, {table['layout']} layout)"
                       for table in settings.inputs)
    sentences = [f"The pipeline read {inputs}."]
    rows_read = _total(_counts(flow, stage="read", unit="rows"))
    rows_rejected = _total(_counts(flow, stage="rejected", unit="rows"))
    admins_read = _total(_counts(flow, stage="read", unit="administrations"))
    admins_rejected = _total(_counts(flow, stage="rejected", unit="administrations"))
    if flow.empty:
        sentences.append("The data-flow counts are not available in this run.")
        return sentences
    if rows_rejected == 0 and admins_rejected == 0:
        sentences.append(f"Exclusions at ingest: none. All {rows_read:,} rows and "
                         f"{admins_read:,} questionnaire administrations were kept.")
    else:
        reasons = (_counts(flow, stage="rejected").groupby("reason", sort=True)["count"]
                   .apply(lambda counts: int(pd.to_numeric(counts).sum())))
        listed = "; ".join(f"{reason.replace('_', ' ')} {count:,}"
                           for reason, count in reasons.items())
        sentences.append(
            f"Of {rows_read:,} rows read, {rows_rejected:,} were rejected, and of "
            f"{admins_read:,} questionnaire administrations in the remaining rows "
            f"{admins_rejected:,} were rejected ({listed}); each is listed with its file, row, "
            "column and reason in data/processed/rejects.csv, and nothing was clipped or guessed. "
            f"A run stops when more than {100 * settings.max_reject_share:g}% of a file's rows "
            "or of an instrument's administrations are rejected (quality.max_reject_share).")
    sentences.append(_linking_sentence(flow, view))
    return sentences


def _linking_sentence(flow: pd.DataFrame, view: ReportView) -> str:
    linking = view.settings.linking
    how = ("by date (the client's nearest session within "
           f"{linking.window_days} days) where a table has dates"
           if linking.by == "date" else
           "by session number (by date, within "
           f"{linking.window_days} days, for tables with dates only)")
    kept = _counts(flow, stage="kept", unit="administrations")
    routes = (kept.groupby("reason", sort=False)["count"]
              .apply(lambda counts: int(pd.to_numeric(counts).sum())))
    parts = [f"{count:,} {reason}" for reason, count in routes.items() if count]
    text = f"Questionnaires were linked to sessions {how}. "
    if parts:
        text += "Kept administrations: " + "; ".join(parts) + ". "
    orphans = _total(_counts(flow, stage="rejected", reason="orphan_outcome"))
    kept_orphans = int(routes.get(ROUTES["orphan"], 0))
    if linking.orphan_outcomes == "reject":
        text += (f"Questionnaires of clients without any session record were rejected "
                 f"(linking.orphan_outcomes: reject): {orphans:,} rows."
                 if orphans else "No questionnaire belonged to a client without session records.")
    else:
        text += (f"Questionnaires of clients without any session record were kept without a "
                 f"therapist (linking.orphan_outcomes: keep): {kept_orphans:,}; such clients "
                 "drop out of models with a therapist term." if kept_orphans else
                 "No questionnaire belonged to a client without session records.")
    unmatched_kept = int(routes.get(ROUTES["no_session_record"], 0))
    unmatched_rejected = _total(_counts(flow, stage="rejected", reason="no_session_record"))
    if linking.unmatched_sessions == "keep":
        text += (f" Questionnaires of known clients at a session number with no session record "
                 f"were kept with the therapist of the client's nearest session record "
                 f"(linking.unmatched_sessions: keep): {unmatched_kept:,}."
                 if unmatched_kept else
                 " Every questionnaire of a known client matched a session record.")
    else:
        text += (f" Questionnaires at a session number with no session record were rejected "
                 f"(linking.unmatched_sessions: reject): {unmatched_rejected:,} rows."
                 if unmatched_rejected else
                 " Every questionnaire of a known client matched a session record.")
    return text


def family_members(models: pd.DataFrame, view: ReportView) -> dict[str, list[str]]:
    """The terms of each multiple-testing family of the primary analysis, read off the
    ``family`` column of ``models.csv``: the same table whose adjusted p-values they share."""
    members: dict[str, list[str]] = {family: [] for family in FAMILY_P_COLUMNS}
    if models.empty or "family" not in models.columns:
        return members
    primary = models.loc[models["analysis"].astype(str) == "primary"]
    for family in FAMILY_P_COLUMNS:
        rows = primary.loc[primary["family"].fillna("").astype(str) == family]
        members[family] = [f"{view.name_of(row['outcome'])} {row['model']} "
                           f"{term_label(str(row['term']))}" for row in rows.to_dict("records")]
    return members


def jacobson_truax_text(parameters: pd.DataFrame, view: ReportView) -> list[str]:
    """One sentence per outcome saying which reliability and cut-off formula were used, with a
    warning when the cut-off falls outside the scale (functional norms are then needed)."""
    sentences = []
    for row in parameters.to_dict("records"):
        outcome = str(row.get("outcome"))
        formula = str(row.get("cutoff_formula") or "")
        if formula == "c":
            cutoff_text = (f"cut-off c = (SD0 × M1 + SD1 × M0) / (SD0 + SD1) = "
                           f"{format_number(row.get('cutoff'))}, with functional norms "
                           f"M0 = {format_number(row.get('functional_mean'))}, "
                           f"SD0 = {format_number(row.get('functional_sd'))} "
                           f"({row.get('norms_source')})")
        elif formula == "a":
            sign = "+" if row.get("direction") == "higher_better" else "-"
            cutoff_text = (f"cut-off a = M1 {sign} 2 × SD1 (two SDs from the mean first score "
                           f"toward health) = {format_number(row.get('cutoff'))}, as no "
                           "functional norms are configured")
        else:
            cutoff_text = "no cut-off (fewer than two first scores)"
        sentence = (
            f"{view.name_of(outcome)}: r_xx = {format_number(row.get('r_xx'), 3)} "
            f"({str(row.get('r_xx_source', '')).replace('_', ' ')}), SD of first scores "
            f"{format_number(row.get('sd_first'))}, S_diff = {format_number(row.get('s_diff'))}, "
            f"reliable change when |RC| > {format_number(row.get('rci_criterion'))} "
            f"({format_number(row.get('reliable_change_points'))} points); {cutoff_text}.")
        instrument = view.registry.get(outcome)
        cutoff = pd.to_numeric(pd.Series([row.get("cutoff")]), errors="coerce").iloc[0]
        if instrument is not None and pd.notna(cutoff) and not (
                instrument.score_min <= cutoff <= instrument.score_max):
            sentence += (f" Warning: this cut-off lies outside the {instrument.label} range "
                         f"({instrument.score_min:g}-{instrument.score_max:g}), so no one can "
                         "cross it and clinically significant change is not defined; configure "
                         f"functional norms (episodes.functional_norms.{outcome}: "
                         "{mean, sd}) to use cut-off c.")
        sentences.append(sentence)
    return sentences


def methods_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The methods section generated from the settings, the data flow and the fitted models."""
    settings = view.settings
    specs = view.specs
    models = [{"id": model, "title": specs[model].title, "question": specs[model].question,
               "formula": specs[model].formula or "(no formula: see text)"}
              for model in view.models_run]
    rejected = _counts(tables.data_flow, stage="rejected")
    return {
        "data_sentences": data_sentences(tables.data_flow, view),
        "key_env": settings.key_env,
        "instruments": instrument_table([view.alliance]
                                        + [view.registry[key] for key in view.outcomes]),
        "exclusions": exclusions_table(tables.data_flow) if len(rejected) else None,
        "jacobson_truax": jacobson_truax_text(tables.jacobson_truax, view),
        "alliance_label": view.alliance.label,
        "max_lag_gap": settings.derive.max_lag_gap,
        "max_lag_days": settings.derive.max_lag_days,
        "early_sessions": settings.derive.early_sessions,
        "early_min_observed": settings.derive.early_min_observed,
        "completers_min_sessions": settings.models.completers_min_sessions,
        "subscales": ", ".join(name.capitalize() for name in view.alliance.subscales) or "none",
        "models": models,
        "analyses": [{"id": row.id, "label": analysis_label(row.id),
                      "description": row.description} for row in view.analyses],
        "model_fit": model_fit_table(tables.model_fit),
        "families": family_members(tables.models, view),
        "tolerance": settings.models.agreement_tolerance,
        "cross_check_max_clients": settings.models.cross_check_max_clients,
        "rules": settings.episode_rules,
    }


__all__ = [
    "data_sentences",
    "exclusions_table",
    "family_members",
    "instrument_table",
    "jacobson_truax_text",
    "methods_context",
]
