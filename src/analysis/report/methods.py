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
from analysis.presentation import FAMILY_P_COLUMNS, analysis_label, name_process, term_label
from analysis.report.formatting import MISSING, Table, format_number, generic_table
from analysis.report.inputs import ReportTables
from analysis.report.tables import model_fit_table
from analysis.report.view import ReportView


def prorates(instrument: Any) -> bool:
    """Whether the instrument's rules prorate a score with missing items."""
    return instrument.missing_rule == "prorate" and bool(instrument.max_missing)


def instrument_table(instruments: Sequence[Any], pre_scored: Sequence[str] = ()) -> Table:
    """The scoring rules of the instruments analysed, from the registry; an instrument the run
    scored only from pre-scored totals (``pre_scored``: keys) says so instead of item rules."""
    body = []
    for instrument in instruments:
        plural = "s" if instrument.max_missing != 1 else ""
        missing = (f"prorated with up to {instrument.max_missing} missing item{plural}"
                   if prorates(instrument) else "no score with any missing item")
        if instrument.key in pre_scored:
            missing = "pre-scored totals in the export (no items, not prorated)"
        elif instrument.subscales:
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
    sentences += notes_sentences(flow)
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


def notes_sentences(flow: pd.DataFrame) -> list[str]:
    """Lines that are neither kept nor rejected (:data:`analysis.ingest.tables.NOTES`): blank
    rows, cells set missing by ``missing_values``, and session records with no measure at all
    (how they were counted), each from the data-flow counts."""
    sentences = []
    blank = _total(_counts(flow, stage="skipped", unit="rows"))
    if blank:
        sentences.append(f"{blank:,} blank row{'s' if blank != 1 else ''} (no value in any "
                         "column) were skipped: they are not records and not counted as rows "
                         "read.")
    cells = _total(_counts(flow, stage="missing_values", unit="cells"))
    if cells:
        sentences.append(f"{cells:,} cell{'s' if cells != 1 else ''} holding a missing-value "
                         "code of the export (the input's missing_values) were read as missing, "
                         "not rejected.")
    no_measure = _counts(flow, stage="no_measure", unit="rows")
    if len(no_measure):
        reasons = no_measure["reason"].fillna("").astype(str)
        sessions = _total(no_measure.loc[reasons.str.startswith("session records")])
        others = _total(no_measure.loc[~reasons.str.startswith("session records")])
        if sessions:
            sentences.append(
                f"{sessions:,} session record{'s' if sessions != 1 else ''} carried no measure at "
                "all (no value in any mapped measure): they were kept as records but not counted "
                "as attended sessions, and they hold no administration.")
        if others:
            sentences.append(
                f"{others:,} row{'s' if others != 1 else ''} of questionnaire tables carried no "
                "measure at all and were not counted as administrations.")
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
                           f"{name_process(term_label(str(row['term'])), view.process_label)}"
                           for row in rows.to_dict("records")]
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


_PANEL_FORMULAS = {
    "DPM": ("symptoms[t] ~ symptoms[t-1] + alliance[t-1] + client fixed effect "
            "(alliance predetermined)"),
    "DPM-reverse": ("alliance[t] ~ alliance[t-1] + symptoms[t-1] + client fixed effect "
                    "(symptoms predetermined)"),
}


def dynamic_panel_sentences(model_fit: pd.DataFrame, view: ReportView) -> list[str]:
    """Which sessions were the waves of the dynamic panel models, how their standard errors were
    computed, or why a model was not estimated: one sentence per outcome, from ``model_fit``."""
    from analysis.models.panel.dpm import MIN_CLUSTERS_FOR_ROBUST
    from analysis.models.panel.dpm_stage import SE_CLIENT, SE_THERAPIST

    sentences = []
    if model_fit.empty or "DPM" not in set(model_fit["model"].astype(str)):
        return sentences
    rows = model_fit.loc[(model_fit["model"].astype(str) == "DPM")
                         & (model_fit["analysis"].astype(str) == "primary")]
    for row in rows.to_dict("records"):
        label = view.name_of(row["outcome"])
        if str(row.get("status") or "") == "not_identified":
            sentences.append(f"{label}: the dynamic panel model was not estimated: "
                             f"{str(row.get('reason') or '').rstrip('.')}.")
            continue
        sentences.append(f"{label}: the waves were {row.get('waves')}; standard errors: "
                         f"{row.get('se_type')}.")
    kinds = set(rows.get("se_type", pd.Series(dtype=str)).dropna().astype(str))
    if kinds & {SE_THERAPIST, SE_CLIENT}:
        sentences.append(
            f"Standard errors are cluster-robust by therapist (sandwich, as lavaan's MLR with "
            f"cluster) when a study has at least {MIN_CLUSTERS_FOR_ROBUST} therapists (with "
            "fewer, cluster-robust standard errors are too small); otherwise the sandwich treats "
            "each client as a cluster, because observed-information standard errors of this "
            "model are too small at the size of a typical trial (docs/methods.md, recovery "
            "study). The Wald test and 95% interval of each lagged path use the t distribution "
            "with the sandwich's degrees of freedom (Pan & Wall 2002: fewer when clusters "
            "differ in how much they contribute), not the normal.")
    return sentences


def therapist_term(model_fit: pd.DataFrame) -> bool:
    """Whether any fit of this run has a therapist term (designs without therapists have none)."""
    if model_fit.empty:
        return False
    text = " ".join(model_fit[column].fillna("").astype(str).str.cat(sep=" ")
                    for column in ("formula", "random_part") if column in model_fit.columns)
    return "therapist_id" in text


def model_notes(tables: ReportTables, view: ReportView) -> list[str]:
    """The methods of M4 and R1-R3, each only when the run has it (the models run)."""
    run = set(view.models_run)
    clustered = "therapist" if therapist_term(tables.model_fit) else "client"
    notes = []
    if "M4" in run:
        notes.append(f"M4 is an OLS regression with standard errors clustered by {clustered} "
                     "(statsmodels)")
    if "R1" in run:
        notes.append("R1 is the repeated-measures correlation (Bakdash & Marusich, 2017), "
                     "computed in closed form from within-client centred scores, at the same "
                     "session and net of each client's linear time trend")
    if "R2" in run:
        notes.append("R2 is Cronbach's alpha (pingouin) at each client's first complete "
                     "administration")
    if "R3" in run:
        notes.append("R3 is the share of variance between therapists from symptom_score ~ "
                     "session + (1 | client_id) + (1 | therapist_id)")
    return notes


def describe_analysis(description: str, view: ReportView) -> str:
    """A sensitivity analysis's description with the values of the settings it names (never
    the key: "at least 8 sessions") and the study's process measure."""
    settings = view.settings
    values = {"analysis.completers_min_sessions": settings.models.completers_min_sessions,
              "derive.early_sessions": settings.derive.early_sessions,
              "derive.max_lag_gap": settings.derive.max_lag_gap}
    for key, value in values.items():
        description = description.replace(key, f"{value:g}" if isinstance(value, float)
                                          else str(value))
    return name_process(description, view.process_label)


def methods_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The methods section generated from the settings, the data flow and the fitted models."""
    settings = view.settings
    specs = view.specs
    models = [{"id": model, "title": name_process(specs[model].title, view.process_label),
               "question": name_process(specs[model].question, view.process_label),
               "formula": specs[model].formula or _PANEL_FORMULAS.get(model)
               or "(no formula: see text)"}
              for model in view.models_run]
    rejected = _counts(tables.data_flow, stage="rejected")
    analysed = [view.alliance] + [view.registry[key] for key in view.outcomes]
    pre_scored = [instrument.key for instrument in analysed
                  if not tables.item_level(instrument.key)]
    return {
        "data_sentences": data_sentences(tables.data_flow, view),
        "key_env": settings.key_env,
        "has_dates": tables.has_dates(),
        "instruments": instrument_table(analysed, pre_scored),
        "prorating": [instrument.label for instrument in analysed
                      if prorates(instrument) and instrument.key not in pre_scored],
        "pre_scored": [instrument.label for instrument in analysed
                       if instrument.key in pre_scored],
        "risk_flags": [f"{instrument.label} item {instrument.risk_item} above "
                       f"{instrument.item_min:g} sets a risk flag, reported as counts only."
                       for instrument in analysed
                       if instrument.risk_item is not None and instrument.key not in pre_scored],
        "model_ids": list(view.models_run),
        "model_notes": model_notes(tables, view),
        "therapist_term": therapist_term(tables.model_fit),
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
                      "description": describe_analysis(row.description, view)}
                     for row in view.analyses],
        "model_fit": model_fit_table(tables.model_fit),
        "families": family_members(tables.models, view),
        "tolerance": settings.models.agreement_tolerance,
        "cross_check_max_clients": settings.models.cross_check_max_clients,
        "rules": settings.episode_rules,
        "dynamic_panel": dynamic_panel_sentences(tables.model_fit, view),
    }


__all__ = [
    "data_sentences",
    "exclusions_table",
    "family_members",
    "instrument_table",
    "jacobson_truax_text",
    "methods_context",
]
