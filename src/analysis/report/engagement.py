"""The report's engagement sections: dropout, therapist and patient alliance, sudden gains.

Each section says what was done and what was found in plain words, set beside the published
finding it answers (:mod:`analysis.literature`): Sharf, Primavera & Diener's (2010) d = 0.55 for
dropout, Baldwin, Wampold & Imel's (2007) therapist effect, Tang & DeRubeis's (1999) sudden gains.
An analysis switched off says so; one that could not be estimated says "Not estimated" and why.
Counts of people arrive suppressed in the tables and are printed as they are.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analysis.literature import (
    BALDWIN_SOURCE,
    DEL_RE_SOURCE,
    SHARF_D,
    SHARF_SOURCE,
    SUDDENGAINS_SOURCE,
    TANG_DERUBEIS_SOURCE,
)
from analysis.presentation import finite
from analysis.report.formatting import (
    MISSING,
    format_ci,
    format_df,
    format_number,
    format_p,
    format_p_clause,
    format_percent,
    generic_table,
    in_outcome_order,
    one,
    plain,
    plain_int,
    rows_of,
)
from analysis.report.inputs import ReportTables
from analysis.report.view import ReportView

PROXY_PREFIX = "proxy: "


def _switched_off(key: str) -> str:
    return f"Not run: switched off in this configuration (engagement.{key}.run)."


def _higher_worse(view: ReportView, outcome: str) -> bool:
    return getattr(view.registry[outcome], "direction", "higher_worse") != "higher_better"


# ---------------------------------------------------------------------------------------------
# dropout


def dropout_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The dropout section: how dropout was defined, attendance, the hazard model beside d."""
    if view.settings.engagement.dropout is None:
        return {"dropout_run": False, "dropout_off": _switched_off("dropout"),
                "dropout_definition": "", "dropout_sentences": [], "dropout_table": None,
                "attendance_table": None}
    sentences = [_attendance_sentence(tables.attendance)]
    for outcome in view.outcomes:
        sentences.append(_hazard_sentence(tables.dropout, outcome, view))
    return {
        "dropout_run": True, "dropout_off": "",
        "dropout_definition": _definition(tables),
        "dropout_sentences": [sentence for sentence in sentences if sentence],
        "dropout_table": _hazard_table(tables.dropout, view),
        "attendance_table": _attendance_table(tables.attendance),
    }


def _definition(tables: ReportTables) -> str:
    sources = [str(value) for frame in (tables.dropout, tables.attendance)
               if not frame.empty and "dropout_source" in frame
               for value in frame["dropout_source"].dropna().unique() if str(value)]
    if not sources:
        return "How dropout was defined is not available in this run."
    source = sources[0]
    if source.startswith(PROXY_PREFIX):
        return ("The data record no ending of an episode, so dropout is a proxy, not a recorded "
                f"fact: a client counts as having dropped out when they had "
                f"{source.removeprefix(PROXY_PREFIX)} (engagement.dropout.proxy_min_sessions, "
                "proxy_active_weeks). Every other episode is censored at its last attended "
                "session. Planned short treatments and clients who moved on to another service "
                "may be counted as dropouts, and dropouts after the first few sessions are "
                "missed, so the results below describe this proxy.")
    return ("Dropout is the ending recorded in the data (the ending column of the session "
            "records, mapped by inputs.<table>.ending_values; a client's latest record with an "
            "ending counts). Episodes that were completed, ended otherwise or have no recorded "
            "ending are censored at their last attended session.")


def _attendance_sentence(attendance: pd.DataFrame) -> str:
    everyone = one(attendance, group="all clients")
    if everyone is None:
        return ""
    text = (f"Of {plain(everyone['n_clients'])} clients, {plain(everyone['n_dropout'])} "
            f"({format_percent(everyone['dropout_rate'])}) dropped out by this definition; "
            f"clients attended a mean of {format_number(everyone['mean_sessions_attended'], 1)} "
            "sessions.")
    if finite(everyone.get("attendance_rate")) is not None:
        text += (f" {format_percent(everyone['attendance_rate'])} of the sessions offered were "
                 f"attended (mean of the clients' rates {format_percent(everyone['mean_client_rate'])}).")
    else:
        text += (" Only attended sessions are known (no session-status column is mapped), so "
                 "attendance rates are not given.")
    low = one(attendance, group="early alliance low tertile")
    high = one(attendance, group="early alliance high tertile")
    if low is not None and high is not None and finite(low.get("dropout_rate")) is not None \
            and finite(high.get("dropout_rate")) is not None:
        text += (f" Among clients in the lowest third of early alliance "
                 f"{format_percent(low['dropout_rate'])} dropped out, in the highest third "
                 f"{format_percent(high['dropout_rate'])} (the figure shows when).")
    return text


def _hazard_sentence(dropout: pd.DataFrame, outcome: str, view: ReportView) -> str:
    label = view.labels[outcome]
    between = one(dropout, outcome=outcome, term="alliance_between_c")
    if between is None:
        return f"{label}: no dropout model in this run."
    if str(between.get("status")) != "estimated":
        return f"{label}: Not estimated: {between.get('reason')}."
    d = finite(between.get("d"))
    low, high = finite(between.get("d_ci_low")), finite(between.get("d_ci_high"))
    odds = finite(between.get("odds_ratio"))
    sd_odds = "–" if d is None else format_number(math.exp(-d))
    comparison = _compare_with_sharf(d, low, high)
    within = one(dropout, outcome=outcome, term="alliance_within")
    within_text = ""
    if within is not None and finite(within.get("estimate")) is not None:
        within_text = (f" Within clients, a session at which the client's {view.process_label} "
                       f"was one point above their own mean had an odds ratio of dropping out "
                       f"after it of "
                       f"{format_number(within['odds_ratio'])} "
                       f"({format_ci(within['odds_ratio_ci_low'], within['odds_ratio_ci_high'])}, "
                       f"{format_p_clause(within['p'])}). Read this within-client term with "
                       f"caution: the client's own mean includes the sessions after the one at "
                       f"risk, and dropout can only happen at a client's last session, so when the "
                       f"{view.process_label} drifts over sessions that session sits away from "
                       f"the mean by construction (in simulated data where the "
                       f"{view.process_label} had no effect on dropout this term still came out "
                       f"far from 1). It is shown for completeness, not as a finding; the "
                       f"comparison with the meta-analysis rests on the between-client term.")
    adjusted = f"adjusting for the current {label} score and session"
    if plain(between.get("cluster")) != MISSING:
        adjusted += f"; standard errors clustered by {between.get('cluster')}"
    return (f"{label} ({adjusted}): a client "
            f"whose {view.process_label} was one point higher than another's, on average over "
            f"their sessions, had an odds ratio of dropping out after a session of "
            f"{format_number(odds)} "
            f"({format_ci(between['odds_ratio_ci_low'], between['odds_ratio_ci_high'])}, "
            f"{format_p_clause(between['p'])}); per SD between clients the odds ratio is "
            f"{sd_odds}. On the scale of Sharf et al.'s meta-analysis this is "
            f"d = {format_number(d)} {format_ci(low, high)} (positive: weaker {view.process_label}"
            f" before dropout), {comparison}{within_text}")


def _compare_with_sharf(d: float | None, low: float | None, high: float | None) -> str:
    benchmark = f"d = {SHARF_D:g} ({SHARF_SOURCE})"
    if d is None or low is None or high is None:
        return f"which cannot be compared with the meta-analytic {benchmark}."
    if low > SHARF_D:
        return f"stronger than the meta-analytic {benchmark}."
    if low > 0 and high >= SHARF_D:
        return f"in line with the meta-analytic {benchmark}: its interval includes that value."
    if low > 0:
        return (f"in the same direction as the meta-analytic {benchmark} but weaker (its "
                "interval lies below that value).")
    if high < 0:
        return (f"in the opposite direction to the meta-analytic {benchmark}: here clients with "
                "a stronger alliance dropped out more often.")
    if high >= SHARF_D:
        return (f"too imprecise to tell: its interval includes both no association and the "
                f"meta-analytic {benchmark}.")
    return (f"so this sample shows no clear association, and its interval excludes an effect as "
            f"large as the meta-analytic {benchmark}.")


def _hazard_table(dropout: pd.DataFrame, view: ReportView):
    frame = in_outcome_order(dropout, view.outcomes)
    return generic_table(
        frame, "Discrete-time hazard model of dropout after a session (logit)",
        {"outcome": "Outcome", "term": "Term", "estimate": "b", "se": "SE", "p": "p",
         "odds_ratio": "OR", "odds_ratio_ci_low": "OR CI low",
         "odds_ratio_ci_high": "OR CI high", "d": "d", "n_clients": "Clients",
         "n_events": "Dropouts", "n_clusters": "Clusters", "status": "Status"},
        {"outcome": view.name_of, "estimate": format_number, "se": format_number,
         "p": format_p, "odds_ratio": format_number, "odds_ratio_ci_low": format_number,
         "odds_ratio_ci_high": format_number, "d": format_number,
         "status": lambda value: str(value).replace("_", " ")},
        note=(f"d converts the between-client alliance term to Sharf et al.'s scale: minus the "
              "log odds per SD of the clients' mean alliance (a positive d means a weaker "
              "alliance before dropout); results/tables/dropout.csv also gives the "
              "Chinn (2000) conversion. Benchmark: d = 0.55."),
        empty="not available in this run")


def _attendance_table(attendance: pd.DataFrame):
    return generic_table(
        attendance, "Attendance and dropout, overall and by third of early alliance",
        {"group": "Group", "n_clients": "Clients", "offered": "Sessions offered",
         "attended": "Attended", "did_not_attend": "Did not attend",
         "attendance_rate": "Attendance rate", "mean_sessions_attended": "Mean sessions",
         "n_dropout": "Dropped out", "dropout_rate": "Dropout rate"},
        {"offered": plain_int, "attended": plain_int, "did_not_attend": plain_int,
         "attendance_rate": format_percent,
         "mean_sessions_attended": lambda v: format_number(v, 1),
         "dropout_rate": format_percent})


# ---------------------------------------------------------------------------------------------
# therapist and patient contributions


def therapist_patient_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The therapist-patient paragraph per outcome, beside Baldwin et al. (2007)."""
    if not view.settings.engagement.therapist_patient:
        return {"therapist_patient_run": False,
                "therapist_patient_off": _switched_off("therapist_patient"),
                "therapist_patient_entries": [], "therapist_patient_table": None}
    entries = []
    for outcome in view.outcomes:
        entries.append({"outcome": outcome, "label": view.labels[outcome],
                        **_therapist_patient_entry(tables.therapist_patient_alliance, outcome,
                                                   view)})
    frame = in_outcome_order(rows_of(tables.therapist_patient_alliance, status="estimated"),
                             view.outcomes)
    return {
        "therapist_patient_run": True, "therapist_patient_off": "",
        "therapist_patient_entries": entries,
        "therapist_patient_table": generic_table(
            frame, "Therapist and patient parts of the alliance and the end-of-treatment score",
            {"outcome": "Outcome", "term": "Term", "estimate": "b", "se": "SE", "df": "df",
             "p": "p", "ci_low": "CI low", "ci_high": "CI high", "n_clients": "Clients",
             "n_therapists": "Therapists"},
            {"outcome": view.name_of, "estimate": format_number, "se": format_number,
             "df": format_df, "p": format_p, "ci_low": format_number, "ci_high": format_number,
             },
            note="end score ~ start score + therapist part + client part + (1 | therapist), "
                 "REML with Satterthwaite df; the therapist part is the therapist's mean "
                 "alliance over their clients (grand-mean centred), the client part the "
                 "client's deviation from it.",
            empty="not estimated for any outcome (reasons above)"),
    }


def _therapist_patient_entry(table: pd.DataFrame, outcome: str, view: ReportView
                             ) -> dict[str, Any]:
    therapist = one(table, outcome=outcome, term="alliance_therapist")
    client = one(table, outcome=outcome, term="alliance_client")
    if therapist is None or client is None:
        return {"estimated": False, "sentence": "No result in this run."}
    if str(therapist.get("status")) != "estimated":
        return {"estimated": False, "sentence": f"Not estimated: {therapist.get('reason')}."}
    alpha = view.settings.alpha
    better = -1 if _higher_worse(view, outcome) else 1

    def verdict(row: dict[str, Any]) -> str:
        p, estimate = finite(row.get("p")), finite(row.get("estimate"))
        if p is None or estimate is None:
            return "could not be tested"
        if p >= alpha:
            return "did not clearly predict the end score"
        return ("predicted a better end score" if estimate * better > 0
                else "predicted a worse end score")

    def stats(row: dict[str, Any]) -> str:
        return (f"b = {format_number(row['estimate'])} {format_ci(row['ci_low'], row['ci_high'])}, "
                f"{format_p_clause(row['p'])}")

    therapist_helps = verdict(therapist) == "predicted a better end score"
    client_helps = verdict(client) == "predicted a better end score"
    if therapist_helps and not client_helps:
        pattern = "the same pattern as Baldwin et al. found"
    elif therapist_helps and client_helps:
        pattern = ("unlike Baldwin et al., where only the therapists' part did, both parts "
                   "predicted outcome here")
    elif client_helps:
        pattern = ("the reverse of Baldwin et al.'s finding: here the patients' part carried the "
                   "association")
    else:
        pattern = ("so this sample does not show Baldwin et al.'s therapist effect (with few "
                   "therapists its test has little power)")
    singular = (" The therapist variance was estimated at zero (a singular fit), as lmerTest "
                "would report it." if therapist.get("singular") in (True, "True", "true") else "")
    return {"estimated": True, "sentence": (
        f"Therapists whose clients rated the {view.process_label} higher on average "
        f"{verdict(therapist)} ({stats(therapist)}); a client who rated it higher than their "
        f"therapist's other clients {verdict(client)} ({stats(client)}): {pattern} "
        f"({BALDWIN_SOURCE}: therapist variability in the alliance predicted outcome and "
        f"patient variability did not; confirmed across studies by {DEL_RE_SOURCE}). "
        f"In the model: {plain(therapist.get('n_clients'))} clients of "
        f"{plain(therapist.get('n_therapists'))} therapists (those with at least 3 clients with "
        f"start, end and alliance scores).{singular}")}


# ---------------------------------------------------------------------------------------------
# sudden gains


def sudden_gains_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The sudden-gains section: per outcome, gains and the alliance around them."""
    if view.settings.engagement.sudden_gains is None:
        return {"sudden_gains_run": False, "sudden_gains_off": _switched_off("sudden_gains"),
                "sudden_gains_entries": [], "sudden_gains_table": None}
    entries = [{"outcome": outcome, "label": view.labels[outcome],
                **_sudden_gains_entry(tables.sudden_gains_summary, outcome, view)}
               for outcome in view.outcomes]
    return {
        "sudden_gains_run": True, "sudden_gains_off": "",
        "sudden_gains_entries": entries,
        "sudden_gains_table": generic_table(
            in_outcome_order(tables.sudden_gains_summary, view.outcomes),
            "Sudden gains and the alliance before and after them",
            {"outcome": "Outcome", "cutoff": "Criterion 1 (points)",
             "n_clients": "Clients", "n_clients_with_gain": "With a gain",
             "share_with_gain": "Share", "n_gains": "Gains", "n_reversals": "Reversed",
             "n_losses": "Losses", "mean_magnitude": "Mean gain", "estimate": "Alliance rise",
             "ci_low": "CI low", "ci_high": "CI high", "p": "p"},
            {"outcome": view.name_of, "cutoff": format_number,
             "share_with_gain": format_percent, "mean_magnitude": format_number,
             "estimate": format_number, "ci_low": format_number, "ci_high": format_number,
             "p": format_p},
            note=("Every gain and loss, with the scores around it, is in "
                  "results/tables/sudden_gains.csv."
                  if view.settings.privacy.show_individual_trajectories else
                  "The gains of single clients are not published "
                  "(privacy.show_individual_trajectories is false): "
                  "results/tables/sudden_gains.csv has its columns and no rows.")),
    }


def _sudden_gains_entry(summary: pd.DataFrame, outcome: str, view: ReportView
                        ) -> dict[str, Any]:
    row = one(summary, outcome=outcome)
    if row is None:
        return {"estimated": False, "sentences": ["No result in this run."]}
    if str(row.get("status")) != "estimated":
        return {"estimated": False, "sentences": [f"Not estimated: {row.get('reason')}."]}
    criteria = (f"a session-to-session improvement of at least {format_number(row['cutoff'])} "
                f"points ({row['cutoff_source']})")
    if finite(row.get("crit2_pct")) is not None:
        criteria += f", at least {format_percent(row['crit2_pct'])} of the pregain score"
    if row.get("crit3") in (True, "True", "true"):
        criteria += (", and a mean of up to three sessions before above the mean of up to three "
                     "after by 2.776 pooled SDs (adjusted for fewer scores)")
    share = (f" ({format_percent(row['share_with_gain'])})"
             if finite(row.get("share_with_gain")) is not None else "")
    size = (f", mean size {format_number(row['mean_magnitude'])} points"
            if finite(row.get("mean_magnitude")) is not None else "")
    sentences = [
        f"A sudden gain is {criteria} ({TANG_DERUBEIS_SOURCE}; identified as "
        f"{SUDDENGAINS_SOURCE} does). {plain(row['n_clients_with_gain'])} of "
        f"{plain(row['n_clients'])} clients with at least two scores{share} had at least one "
        f"sudden gain ({plain(row['n_gains'])} gains{size}; {plain(row['n_reversals'])} "
        f"reversed, i.e. at least half of the gain was lost again later); "
        f"{plain(row['n_clients_with_loss'])} clients had a sudden loss."]
    if str(row.get("alliance_status")) == "estimated":
        estimate, p = finite(row.get("estimate")), finite(row.get("p"))
        rose = (estimate is not None and estimate > 0)
        significant = p is not None and p < view.settings.alpha
        if significant and rose:
            verdict = ("the alliance was higher after the gains, as Tang & DeRubeis found for "
                       "the therapeutic relationship")
        elif significant:
            verdict = "the alliance was lower after the gains, unlike Tang & DeRubeis's finding"
        else:
            verdict = ("the alliance did not clearly change across the gains (Tang & DeRubeis "
                       "found the therapeutic relationship improved after them)")
        sentences.append(
            f"In the sessions after a gain the {view.process_label} was on average "
            f"{format_number(estimate)} points {'higher' if rose else 'lower'} than in the "
            f"sessions before it, within clients ({format_ci(row['ci_low'], row['ci_high'])}, "
            f"{format_p_clause(row['p'])}; mixed model with a client intercept): {verdict}.")
    else:
        sentences.append(f"The {view.process_label} before and after the gains: Not estimated: "
                         f"{row.get('alliance_reason')}.")
    return {"estimated": True, "sentences": sentences}


__all__ = ["dropout_context", "sudden_gains_context", "therapist_patient_context"]
