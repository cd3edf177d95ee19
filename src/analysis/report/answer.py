"""The plain-language answer: does the alliance precede and go with lower symptoms?

For each outcome, the verdicts and sentences rest on the primary analysis of ``models.csv``
(M2 within-client alliance, the primary test; M1 within and between clients; M3 the reverse
path), quoting its estimates, CIs and adjusted p exactly as the tables print them. Beside them,
the meta-analytic benchmark r = .278 with the quantities of these data that are, and are not,
comparable with it (docs/methods.md section 4, R1).
"""

from __future__ import annotations

from typing import Any, Mapping

from analysis.literature import META_ANALYTIC_CI, META_ANALYTIC_R, META_ANALYTIC_SOURCE
from analysis.presentation import adjusted_p
from analysis.report.formatting import (
    MISSING,
    finite,
    format_ci,
    format_number,
    format_p_clause,
    format_r,
    one,
)
from analysis.report.inputs import ReportTables
from analysis.report.view import ReportView
from analysis.privacy import format_count


def improvement_sign(instrument: Any) -> float:
    """-1 when a lower score is better (symptom scales), +1 when a higher score is better."""
    return 1.0 if getattr(instrument, "direction", "higher_worse") == "higher_better" else -1.0


def verdict(row: Mapping[str, Any] | None, instrument: Any, p_value: Any,
            alpha: float = 0.05) -> str:
    """"yes", "opposite" or "unclear" for one alliance term.

    "yes": the adjusted p is below ``alpha`` (``report.alpha``) and the estimate has the sign
    of a stronger alliance going with better scores; "opposite": significant with the other
    sign; "unclear" otherwise; "not estimated" when the term was not estimated.
    """
    if row is None:
        return "not estimated"
    estimate, p_number = finite(row.get("estimate")), finite(p_value)
    if estimate is None or p_number is None or p_number >= alpha:
        return "unclear"
    return "yes" if estimate * improvement_sign(instrument) > 0 else "opposite"


def _statistics(row: Mapping[str, Any], p_value: Any, method: str) -> str:
    # "(b = -1.23, 95% CI [-2.01, -0.45], Holm-adjusted p = .004)": the numbers of models.csv
    adjusted = f"{method}-adjusted {format_p_clause(p_value)}" if method else (
        f"{format_p_clause(row.get('p'))}, in no test family")
    return (f"(b = {format_number(row['estimate'])}, 95% CI "
            f"{format_ci(row.get('ci_low'), row.get('ci_high'))}, {adjusted})")


def _difference(row: Mapping[str, Any], unit: str = "points") -> str:
    # "1.23 points lower": the size and direction of a coefficient in words
    estimate = finite(row.get("estimate"))
    if estimate is None:
        return "not estimable"
    size = format_number(abs(estimate))
    return f"{size} {unit} {'lower' if estimate < 0 else 'higher'}"


def outcome_answer(tables: ReportTables, outcome: str, view: ReportView) -> dict[str, Any]:
    """The plain-language answer for one outcome, with the numbers it rests on.

    Returns
    -------
    dict
        ``outcome``, ``title``, ``precedes``, ``goes_with_within`` and ``goes_with_between``
        (verdicts from :func:`verdict`), ``sentences`` (plain language with the estimates, CIs
        and adjusted p of ``models.csv``, formatted as in the tables) and ``benchmark``
        (sentences placing these data beside the meta-analytic r).
    """
    outcome_instrument, alpha = view.registry[outcome], view.settings.alpha
    models = tables.models
    lagged = one(models, outcome=outcome, model="M2", analysis="primary", term="alliance_within")
    within = one(models, outcome=outcome, model="M1", analysis="primary", term="alliance_within")
    between = one(models, outcome=outcome, model="M1", analysis="primary",
                  term="alliance_between_c")
    reverse = one(models, outcome=outcome, model="M3", analysis="primary", term="symptom_within")
    score = f"{outcome_instrument.label} score"
    better = "lower" if improvement_sign(outcome_instrument) < 0 else "higher"
    sentences = []
    lagged_p, lagged_method = adjusted_p(lagged or {})
    precedes = verdict(lagged, outcome_instrument, lagged_p, alpha)
    if lagged is not None:
        sentences.append(
            f"Precedes (M2, the primary test): after a session in which a client's alliance was "
            f"1 point above their own average ({view.alliance.units}), their {score} at the next "
            f"session was {_difference(lagged)}, for the same current score "
            f"{_statistics(lagged, lagged_p, lagged_method)}. On this scale "
            f"{better} is better.")
    else:
        sentences.append("Precedes: the lagged model M2 was not estimated in this run.")
    within_p, within_method = adjusted_p(within or {})
    between_p, between_method = adjusted_p(between or {})
    # Within and between clients answer different questions and may disagree: each its own verdict.
    goes_with_within = verdict(within, outcome_instrument, within_p, alpha)
    goes_with_between = verdict(between, outcome_instrument, between_p, alpha)
    parts = []
    if within is not None:
        parts.append(f"in sessions with an alliance 1 point above the client's average the "
                     f"{score} was {_difference(within)} "
                     f"{_statistics(within, within_p, within_method)}")
    if between is not None:
        parts.append(f"clients whose average alliance was 1 point higher had a "
                     f"{score} {_difference(between)} "
                     f"{_statistics(between, between_p, between_method)}")
    if parts:
        sentences.append("Goes with (M1, same session): " + "; ".join(parts) + ".")
    else:
        sentences.append("Goes with: the concurrent model M1 was not estimated in this run.")
    if reverse is not None:
        reverse_p, reverse_method = adjusted_p(reverse)
        sentences.append(
            f"Reverse path (M3): after a session with a {score} 1 point above the client's "
            f"average, the next session's alliance was "
            f"{_difference(reverse, unit='points')} "
            f"{_statistics(reverse, reverse_p, reverse_method)}.")
    return {
        "outcome": outcome,
        "title": f"{outcome_instrument.construct.capitalize()} ({outcome_instrument.label})",
        "precedes": precedes,
        "goes_with_within": goes_with_within,
        "goes_with_between": goes_with_between,
        "sentences": sentences,
        "benchmark": benchmark_sentences(tables, outcome, view),
    }


def benchmark_sentences(tables: ReportTables, outcome: str, view: ReportView) -> list[str]:
    """The meta-analytic r beside what in these data is, and is not, comparable with it.

    The benchmark (Flückiger et al., 2018) is mostly a between-patient correlation of alliance
    with outcome. Its closest counterparts here are the standardised between-client alliance
    term of M1 and the early alliance's association with pre-post change (M4). The
    repeated-measures correlations are within-client associations at the same session, with and
    without each client's time trend: a different question, never a replication or a
    contradiction of the benchmark.
    """
    instrument = view.registry[outcome]
    sign = improvement_sign(instrument)
    expected = "negative" if sign < 0 else "positive"
    sentences = [
        f"Benchmark: the meta-analytic alliance-outcome correlation is r = "
        f"{format_r(META_ANALYTIC_R)}, 95% CI [{format_r(META_ANALYTIC_CI[0])}, "
        f"{format_r(META_ANALYTIC_CI[1])}] ({META_ANALYTIC_SOURCE}), mostly between patients: "
        f"patients with a better alliance have better outcomes. On the {instrument.label} "
        f"the comparable sign is {expected}."
    ]
    comparable = []
    between = one(tables.models, outcome=outcome, model="M1", analysis="primary",
                  term="alliance_between_c")
    if between is not None and finite(between.get("std_estimate")) is not None:
        comparable.append(f"the between-client alliance of M1, standardised β = "
                          f"{format_number(between['std_estimate'])} (clients' average alliance "
                          f"against their symptom level)")
    early = one(tables.models, outcome=outcome, model="M4", analysis="primary",
                term="alliance_early")
    if early is not None and finite(early.get("std_estimate")) is not None:
        comparable.append(f"the early alliance of M4, standardised β = "
                          f"{format_number(early['std_estimate'])} (early alliance against "
                          f"pre-post change, for the same intake score)")
    if comparable:
        sentences.append("The closest quantities in these data are " + "; and ".join(comparable)
                         + ". Standardised coefficients are not correlations, but they share "
                           "the between-client reading of the benchmark.")
    else:
        sentences.append("Neither the between-client term of M1 nor M4 was estimated in this "
                         "run, so no quantity here is comparable with the benchmark.")
    same = one(tables.rm_corr, outcome=outcome, method="same_session")
    adjusted = one(tables.rm_corr, outcome=outcome, method="time_adjusted")
    within = []
    if same is not None:
        within.append(f"at the same session r = {format_r(same.get('r'))}, 95% CI "
                      f"[{format_r(same.get('ci_low'))}, {format_r(same.get('ci_high'))}], "
                      f"{format_p_clause(same.get('p'))}, including shared time trends "
                      f"({_clients(same, view)})")
    if adjusted is not None and finite(adjusted.get("r")) is not None:
        within.append(f"net of each client's linear time trend r = "
                      f"{format_r(adjusted.get('r'))}, 95% CI [{format_r(adjusted.get('ci_low'))}, "
                      f"{format_r(adjusted.get('ci_high'))}], {format_p_clause(adjusted.get('p'))} "
                      f"({_clients(adjusted, view)})")
    if within:
        sentences.append(
            "Within clients (R1, repeated-measures correlation), alliance and "
            f"{instrument.label} went together " + "; ".join(within) + ". These answer a "
            "different question (does a client's alliance move with their own symptoms?) and "
            "do not test the benchmark: alliance rising while symptoms fall over therapy makes "
            "the same-session correlation look like agreement even when the lagged models find "
            "nothing.")
    return sentences


def _clients(row: Mapping[str, Any], view: ReportView) -> str:
    n = finite(row.get("n"))
    return f"{MISSING if n is None else format_count(int(n), view.min_cell)} clients"
