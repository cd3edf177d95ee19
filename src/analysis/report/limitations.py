"""The limitations of docs/methods.md section 5, each with the numbers of these data."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from analysis.presentation import adjusted_p
from analysis.report.formatting import format_ci, format_number, format_p_clause, one
from analysis.report.inputs import ReportTables
from analysis.report.view import ReportView
from analysis.privacy import format_count


def session_interval_days(sessions: pd.DataFrame) -> float | None:
    """Median days between a client's consecutive sessions, or None without dates."""
    if sessions.empty or "day" not in sessions.columns:
        return None
    days = sessions[["client_id", "session", "day"]].dropna()
    if days.empty:
        return None
    days = days.sort_values(["client_id", "session"], kind="stable")
    gaps = days.groupby("client_id")["day"].diff().dropna().astype(float)
    return float(gaps.median()) if not gaps.empty else None


def ceiling_share(scores: pd.DataFrame, alliance_instrument: Any) -> float | None:
    """Share of alliance scores at the scale maximum."""
    if scores.empty or "instrument" not in scores.columns:
        return None
    values = scores.loc[scores["instrument"] == alliance_instrument.key, "score"].dropna()
    if values.empty:
        return None
    return float((values >= alliance_instrument.score_max - 1e-9).mean())


def limitations(tables: ReportTables, view: ReportView) -> list[dict[str, str]]:
    """The limitations of docs/methods.md section 5, each with the numbers of these data.

    A limitation whose premise these data contradict is left out: the ceiling of the alliance
    scale is discussed only when more than ``report.ceiling_share`` of its scores sit at the
    maximum.
    """
    outcomes, alliance, registry = view.outcomes, view.alliance, view.registry
    # the configured process measure: "alliance" by default, else its label ("PCIT coding")
    process = view.process_label
    min_cell = view.min_cell
    items = []
    reverse = []
    for outcome in outcomes:
        row = one(tables.models, outcome=outcome, model="M3", analysis="primary",
                   term="symptom_within")
        if row is not None:
            p_value, method = adjusted_p(row)
            adjusted = (f"{method}-adjusted {format_p_clause(p_value)}" if method
                        else format_p_clause(row.get("p")))
            reverse.append(f"{registry[outcome].label}: b = {format_number(row['estimate'])} "
                           f"{format_ci(row.get('ci_low'), row.get('ci_high'))}, {adjusted}")
    panel_reverse = []
    for outcome in outcomes:
        row = one(tables.models, outcome=outcome, model="DPM-reverse", analysis="primary",
                  term="symptom_lagged")
        if row is not None:
            p_value, method = adjusted_p(row)
            adjusted = (f"{method}-adjusted {format_p_clause(p_value)}" if method
                        else format_p_clause(row.get("p")))
            panel_reverse.append(f"{registry[outcome].label}: b = "
                                 f"{format_number(row['estimate'])} "
                                 f"{format_ci(row.get('ci_low'), row.get('ci_high'))}, {adjusted}")
    reverse_tests = []
    if panel_reverse:
        reverse_tests.append("the reverse dynamic panel model (symptoms predicting the next "
                             f"{process}): " + "; ".join(panel_reverse))
    if reverse:
        reverse_tests.append("M3 (symptoms above a client's average predicting the next "
                             f"{process}): " + "; ".join(reverse))
    items.append({"title": "Reverse causation", "text": (
        f"Early symptom change can raise later {process}, so an association does not show that "
        f"the {process} causes improvement. The primary dynamic panel model lets symptoms move "
        f"later {process} without biasing the lagged {process} coefficient, and the reverse "
        "path is tested directly"
        + (": " + "; and ".join(reverse_tests) + "." if reverse_tests
           else "; neither reverse model was run in this configuration."))})
    items.append({"title": "Dynamic-panel bias of the conventional model",
                  "text": conventional_bias_text(tables, view)})
    early = view.settings.derive.early_sessions
    if any(one(tables.models, outcome=o, model="M4", analysis="primary",
               term="alliance_early") is not None for o in outcomes):
        items.append({"title": f"Early {process} overlaps the change it predicts", "text": (
            f"M4 relates the early {process} (the mean over the first "
            + (f"{early} sessions" if early else "sessions")
            + ") to change from the first to the last score, and that change window includes "
            "the early sessions. Improvement in those sessions can itself raise the early "
            f"{process}, so M4's association mixes both directions; the lagged models separate "
            "them.")})
    detrended = []
    for outcome in outcomes:
        primary = one(tables.models, outcome=outcome, model="M2", analysis="primary",
                       term="alliance_within")
        trend_free = one(tables.models, outcome=outcome, model="M2", analysis="detrended",
                          term="alliance_within_detrended")
        if primary is not None and trend_free is not None:
            detrended.append(f"{registry[outcome].label}: {format_number(primary['estimate'])} "
                             f"as specified, {format_number(trend_free['estimate'])} detrended")
    trends = ("Alliance tends to rise and symptoms to fall over therapy" if view.is_alliance
              else f"The {process} and symptoms may both change over therapy")
    items.append({"title": "Shared time trends", "text": (
        f"{trends}, which inflates within-client associations. The detrended sensitivity "
        f"analysis removes each client's linear trend in {process}"
        + (": " + "; ".join(detrended) + "." if detrended
           else " (not run in this configuration).")
    )})
    attenuation = _attenuation_text(tables, view)
    if attenuation:
        items.append({"title": f"Measurement error in the {process}", "text": attenuation})
    labels = {key: instrument.label for key, instrument in registry.items()}
    items.append({"title": "Missing data and dropout",
                  "text": _dropout_text(tables, min_cell, labels)})
    share = ceiling_share(tables.scores, alliance)
    if share is not None and share > view.settings.ceiling_share:
        items.append({"title": f"Ceiling of the {process} scale", "text": (
            f"{100 * share:.1f}% of {alliance.label} scores are at the scale maximum "
            f"({alliance.score_max:g}), more than the {100 * view.settings.ceiling_share:g}% "
            "that marks a ceiling effect (report.ceiling_share; Terwee et al., 2007). Little "
            f"room above the ceiling shrinks the variance of the within-client {process} and "
            f"can attenuate its estimated effect (see the {process} distribution figure).")})
    interval = session_interval_days(tables.sessions)
    # An interval between sessions shorter than an instrument's recall window ("over the last
    # 2 weeks") means consecutive scores share part of their recall period.
    windows = {registry[o].label: registry[o].recall_days for o in outcomes
               if registry[o].recall_days}
    if interval is None:
        recall = ("The exports carry no session dates, so whether consecutive scores share "
                  "their recall windows cannot be checked.")
    elif windows and interval < max(windows.values()):
        recall = (f"Sessions were a median of {interval:g} days apart, shorter than the "
                  "recall windows of "
                  + ", ".join(f"{label} ({days} days)" for label, days in windows.items())
                  + ": consecutive scores partly describe the same days, which adds "
                    "dependence between lagged scores that the models do not separate.")
    else:
        recall = (f"Sessions were a median of {interval:g} days apart, no shorter than the "
                  "instruments' recall windows.")
    items.append({"title": "Overlapping recall windows", "text": recall})
    return items


def conventional_bias_text(tables: ReportTables, view: ReportView) -> str:
    """The bias of the conventional M2 under reverse paths, with the figures of the recovery
    study (``docs/validation/recovery.csv``, made by ``make validate``) when it is available."""
    process = view.process_label
    text = (f"M2 centres the {process} on each client's mean over all sessions. That mean "
            f"includes later sessions, and when symptoms also move the {process} it carries later "
            "symptom levels into the predictor of the next symptom score (Falkenström et al., "
            "2017; Hamaker & Grasman, 2015): M2 can then find an effect that is not there. The "
            f"primary dynamic panel model treats the {process} as predetermined and is not "
            "affected.")
    from analysis.report.recovery import recovery_sentence

    measured = recovery_sentence()
    return f"{text} {measured}" if measured else text


def within_client_reliability(scores: pd.DataFrame, instrument_key: str,
                              reliability: float) -> float | None:
    """Reliability of the within-client (person-mean centred) part of a score.

    With a score of reliability r, measurement error has variance (1 - r) var(A); after
    person-mean centring, a client with n scores keeps (1 - 1/n) of it, while most of the true
    variance of an alliance scale lies between clients and is removed. The within part's
    reliability is lambda = 1 - (1 - r) var(A) mean(1 - 1/n_i) / mean(A_w^2), the expected
    attenuation of a within-client coefficient (checked by parameter recovery on simulated data
    with a latent alliance, analysis.simulate.recovery).
    """
    if scores.empty or "instrument" not in scores.columns:
        return None
    values = scores.loc[scores["instrument"] == instrument_key, ["client_id", "score"]].dropna()
    if len(values) < 3:
        return None
    count = values.groupby("client_id")["score"].transform("size").astype(float)
    within = values["score"] - values.groupby("client_id")["score"].transform("mean")
    within_variance = float((within ** 2).mean())
    if within_variance <= 0:
        return None
    error = (1 - reliability) * float(values["score"].var()) * float((1 - 1 / count).mean())
    return 1 - error / within_variance


def _attenuation_text(tables: ReportTables, view: ReportView) -> str:
    alliance, process = view.alliance, view.process_label
    reliability, source = alliance.reliability, "the instrument registry"
    if reliability is None and not tables.reliability.empty:
        row = one(tables.reliability, instrument=alliance.key)
        if row is not None and pd.notna(row.get("alpha")):
            reliability, source = float(row["alpha"]), "Cronbach's alpha in these data (R2)"
    if reliability is None:
        return ""
    within = within_client_reliability(tables.scores, alliance.key, reliability)
    if within is None:
        return ""
    return (
        f"Measurement error in the {alliance.label} attenuates its within-client effects. With "
        f"a reliability of {format_number(reliability, 2)} ({source}), the within-client part "
        f"of the {process} has a reliability of about {format_number(within, 2)} in these data "
        + ("(most of an alliance scale's variance lies between clients and is removed by "
           "person-mean centring)" if view.is_alliance else
           "(its variance between clients is removed by person-mean centring)")
        + ", so the within-client estimates of M1 and M2 are expected to be "
        f"about {100 * (1 - within):.0f}% smaller in magnitude than the effect of the true "
        f"{process}. Parameter recovery on simulated data with a latent {process} measured at "
        "this reliability shows the same attenuation (make validate).")


def _dropout_text(tables: ReportTables, min_cell: int, labels: Mapping[str, str]) -> str:
    text = ("Mixed models assume data are missing at random given what is observed; clients who "
            "leave early may differ in ways the models cannot see.")
    sessions = tables.sessions
    if not sessions.empty and "client_id" in sessions.columns:
        attended = sessions.drop_duplicates(["client_id", "session"]).groupby("client_id").size()
        few = int((attended < 3).sum())
        text += (f" Clients attended a median of {attended.median():g} sessions "
                 f"(interquartile range {attended.quantile(0.25):g}-{attended.quantile(0.75):g}); "
                 f"{format_count(few, min_cell, len(attended))} of "
                 f"{format_count(len(attended), min_cell)} attended fewer than three.")
    summary = tables.episodes_summary
    if not summary.empty and {"outcome", "measure", "n_episodes", "n_with_outcome"} <= set(
            summary.columns):
        rows = summary.loc[summary["measure"] == "has_outcome"]
        parts = [f"{labels.get(row['outcome'], row['outcome'])}: {row['n_with_outcome']} of "
                 f"{row['n_episodes']}"
                 for row in rows.to_dict("records") if row["outcome"] != "combined"]
        if parts:
            text += (" Episodes with at least two scores (an outcome): " + "; ".join(parts)
                     + ".")
    text += " The completers-only sensitivity analysis compares those who stayed with everyone."
    return text
