"""The plain-language answer: does the alliance precede and go with lower symptoms?

For each outcome, the verdicts and sentences rest on the primary analysis of ``models.csv``
(the dynamic panel model DPM's lagged alliance, the primary test; beside it the conventional
multilevel M2, with a plain statement when the two disagree; M1 within and between clients; M3 and
DPM-reverse the reverse path), quoting estimates, CIs and adjusted p exactly as the tables print
them. A model whose random part was simplified says so, with the fuller model another analysis
kept. Beside them,
the meta-analytic benchmark r = .278 with the quantities of these data that are, and are not,
comparable with it (docs/methods.md section 4, R1).
"""

from __future__ import annotations

from typing import Any, Mapping

from analysis.literature import META_ANALYTIC_CI, META_ANALYTIC_R, META_ANALYTIC_SOURCE
from analysis.presentation import adjusted_p
from analysis.report.formatting import (
    MISSING,
    article,
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


_VERDICT_WORDS = {
    "yes": "a stronger alliance precedes better scores",
    "opposite": "a stronger alliance precedes worse scores",
    "unclear": "the data do not show it either way",
    "not estimated": "it was not estimated",
}


def _verdict_words(verdict_: str | None, stronger: str) -> str | None:
    # the verdict in words, naming the process measure ("a higher PCIT count precedes ...")
    words = _VERDICT_WORDS.get(verdict_) if verdict_ is not None else None
    return words.replace("a stronger alliance", stronger) if words else words


def stronger_phrase(view: ReportView) -> str:
    """"a stronger alliance" (the default), or "a higher <label>" for another process measure."""
    return "a stronger alliance" if view.is_alliance else view.stronger_process


def agreement_sentence(primary: str, conventional: str, primary_estimated: bool = True,
                       stronger: str = "a stronger alliance") -> str:
    """Whether the primary dynamic panel model and the conventional M2 agree, in plain words.

    When they disagree the sentence says what that means: M2's person-mean centring over all
    sessions mixes later symptoms into its predictor whenever symptoms move the alliance
    (docs/methods.md section 5), so the dynamic panel model, which treats the alliance as
    predetermined, is the one to rely on.
    """
    if not primary_estimated:
        return ("Without the dynamic panel model, M2 alone cannot settle the question: it is "
                "biased when symptoms also move the alliance (see Limitations).")
    if primary == conventional:
        return ("The conventional model agrees with the primary test "
                f"({_verdict_words(primary, stronger) or primary}).")
    process = "alliance" if stronger == "a stronger alliance" else "process measure"
    return (f"The two disagree: the conventional model says "
            f"{_verdict_words(conventional, stronger)}, "
            f"the dynamic panel model that {_verdict_words(primary, stronger)}. M2 centres the "
            f"{process} on each client's mean over all sessions, later ones included; when "
            f"symptoms also move the {process}, later symptom levels leak into that predictor "
            "and bias M2 (see Limitations for the size of the bias measured in simulations). "
            f"The dynamic panel model treats the {process} as predetermined and is the answer "
            "to rely on.")


def not_estimated_reason(tables: ReportTables, outcome: str, model: str, view: ReportView) -> str:
    """Why a model has no estimate: not in ``models.run``, or the reason its fit recorded."""
    if model not in getattr(view, "models_run", [model]):
        return f"{model} is not in models.run"
    row = one(tables.model_fit, outcome=outcome, model=model, analysis="primary") \
        if not tables.model_fit.empty else None
    reason = (row or {}).get("reason")
    reason = "" if reason is None or (isinstance(reason, float) and reason != reason) \
        else str(reason).strip()
    return reason.rstrip(".") if reason else "no estimate in this run"


def _n_random_terms(part: str) -> int:
    # "(1 + session | client_id) + (1 | therapist_id)": 2 + 1 = 3 variance components' terms
    return sum(len(group.split("|")[0].split("+")) for group in part.split(")") if "|" in group)


def fuller_model_sentence(tables: ReportTables, outcome: str, model: str,
                          terms: Mapping[str, tuple[str, str]], instrument: Any,
                          alpha: float = 0.05) -> str:
    """When the primary fit of ``model`` had its random part simplified, say so and give each
    verdict under the fuller random part that another analysis kept (e.g. the ML analysis), so
    that a headline verdict never rests silently on a simplified model."""
    fits = tables.model_fit
    if fits.empty or "fallback_steps" not in fits:
        return ""
    primary = one(fits, outcome=outcome, model=model, analysis="primary")
    steps = str((primary or {}).get("fallback_steps") or "").strip()
    if not primary or not steps or steps == "nan":
        return ""
    simplified = str(primary.get("random_part") or "")
    candidates = fits.loc[(fits["outcome"] == outcome) & (fits["model"] == model)
                          & (fits["analysis"] != "primary")
                          & (fits["fallback_steps"].fillna("").astype(str) == "")]
    sentence = (f"The primary {model} fit was simplified to the random part {simplified} "
                "after the fuller model did not converge or was singular.")
    for row in candidates.to_dict("records"):
        part = str(row.get("random_part") or "")
        if _n_random_terms(part) <= _n_random_terms(simplified):
            continue
        verdicts = []
        for term, (label, primary_verdict) in terms.items():
            fuller = one(tables.models, outcome=outcome, model=model,
                         analysis=row["analysis"], term=term)
            if fuller is None:
                continue
            p_value, method = adjusted_p(fuller)
            fuller_verdict = verdict(fuller, instrument, p_value, alpha)
            change = "the same" if fuller_verdict == primary_verdict else "different"
            verdicts.append(f"{label} {fuller_verdict} ({change}; "
                            f"{_statistics(fuller, p_value, method)[1:-1]})")
        if verdicts:
            return (sentence + f" The {row['analysis']} analysis kept the fuller random part "
                    f"{part}; under it the verdicts are: " + "; ".join(verdicts) + ".")
    return sentence + " No other analysis kept a fuller random part."


def _random_part_text(row: Mapping[str, Any]) -> str:
    part = str(row.get("random_part") or "").strip()
    if not part or part.lower() == "nan":
        return ""
    groups = []
    if "client_id" in part:
        groups.append("a client intercept")
    if "therapist_id" in part:
        groups.append("a therapist intercept")
    return ", with " + " and ".join(groups) if groups else ""


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
    lagged = one(models, outcome=outcome, model="DPM", analysis="primary", term="alliance_lagged")
    conventional = one(models, outcome=outcome, model="M2", analysis="primary",
                       term="alliance_within")
    within = one(models, outcome=outcome, model="M1", analysis="primary", term="alliance_within")
    between = one(models, outcome=outcome, model="M1", analysis="primary",
                  term="alliance_between_c")
    reverse = one(models, outcome=outcome, model="M3", analysis="primary", term="symptom_within")
    reverse_panel = one(models, outcome=outcome, model="DPM-reverse", analysis="primary",
                        term="symptom_lagged")
    score = f"{outcome_instrument.label} score"
    measure = view.process_label
    better = "lower" if improvement_sign(outcome_instrument) < 0 else "higher"
    sentences = []
    lagged_p, lagged_method = adjusted_p(lagged or {})
    precedes = verdict(lagged, outcome_instrument, lagged_p, alpha)
    conventional_p, conventional_method = adjusted_p(conventional or {})
    precedes_conventional = verdict(conventional, outcome_instrument, conventional_p, alpha)
    if lagged is not None:
        sentences.append(
            f"Precedes (DPM, the dynamic panel model, the primary test): when a client's "
            f"{measure} at a session was 1 point higher ({view.alliance.units}), their {score} "
            f"at the next session was {_difference(lagged)}, for the same current score and the "
            f"client's own stable level {_statistics(lagged, lagged_p, lagged_method)}. On this "
            f"scale {better} is better.")
    else:
        sentences.append("Precedes: the primary dynamic panel model was not estimated "
                         f"({not_estimated_reason(tables, outcome, 'DPM', view)}).")
    if conventional is not None:
        sentences.append(
            f"The conventional multilevel model (M2, {measure} centred on each client's mean over "
            f"all sessions{_random_part_text(conventional)}) gives "
            f"{_difference(conventional)} at the next session per point above the client's "
            f"average {_statistics(conventional, conventional_p, conventional_method)}.")
        sentences.append(agreement_sentence(precedes, precedes_conventional, lagged is not None,
                                            stronger_phrase(view)))
    within_p, within_method = adjusted_p(within or {})
    between_p, between_method = adjusted_p(between or {})
    # Within and between clients answer different questions and may disagree: each its own verdict.
    goes_with_within = verdict(within, outcome_instrument, within_p, alpha)
    goes_with_between = verdict(between, outcome_instrument, between_p, alpha)
    parts = []
    if within is not None:
        parts.append(f"in sessions with {article(measure)} {measure} 1 point above the "
                     f"client's average the "
                     f"{score} was {_difference(within)} "
                     f"{_statistics(within, within_p, within_method)}")
    if between is not None:
        parts.append(f"clients whose average {measure} was 1 point higher had "
                     f"{article(score)} {score} {_difference(between)} "
                     f"{_statistics(between, between_p, between_method)}")
    if parts:
        sentences.append("Goes with (M1, same session): " + "; ".join(parts) + ".")
        fuller = fuller_model_sentence(tables, outcome, "M1",
                                       {"alliance_within": ("within clients", goes_with_within),
                                        "alliance_between_c": ("between clients",
                                                               goes_with_between)},
                                       outcome_instrument, alpha)
        if fuller:
            sentences.append(fuller)
    else:
        sentences.append("Goes with: the concurrent model M1 was not estimated in this run.")
    if reverse_panel is not None:
        reverse_p, reverse_method = adjusted_p(reverse_panel)
        sentences.append(
            f"Reverse path (DPM-reverse): when a client's {score} at a session was 1 point "
            f"higher, their {measure} at the next session was "
            f"{_difference(reverse_panel, unit='points')}, for the same current {measure} "
            f"{_statistics(reverse_panel, reverse_p, reverse_method)}.")
    if reverse is not None:
        reverse_p, reverse_method = adjusted_p(reverse)
        sentences.append(
            f"Reverse path (M3, conventional): after a session with {article(score)} {score} 1 "
            "point above the "
            f"client's average, the next session's {measure} was "
            f"{_difference(reverse, unit='points')} "
            f"{_statistics(reverse, reverse_p, reverse_method)}.")
    return {
        "outcome": outcome,
        "title": f"{outcome_instrument.construct.capitalize()} ({outcome_instrument.label})",
        "precedes": precedes,
        "precedes_conventional": precedes_conventional,
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
    measure = view.process_label
    if not view.is_alliance:
        sentences[0] += (f" The process measure of this study is the {view.alliance.label}, not "
                         "an alliance measure: the benchmark is for orientation only.")
    total = tables.population()
    comparable = []
    between = one(tables.models, outcome=outcome, model="M1", analysis="primary",
                  term="alliance_between_c")
    if between is not None and finite(between.get("std_estimate")) is not None:
        comparable.append(f"the between-client {measure} of M1, standardised β = "
                          f"{format_number(between['std_estimate'])} (clients' average {measure} "
                          f"against their symptom level)")
    early = one(tables.models, outcome=outcome, model="M4", analysis="primary",
                term="alliance_early")
    if early is not None and finite(early.get("std_estimate")) is not None:
        comparable.append(f"the early {measure} of M4, standardised β = "
                          f"{format_number(early['std_estimate'])} (early {measure} against "
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
                      f"({_clients(same, view, total)})")
    if adjusted is not None and finite(adjusted.get("r")) is not None:
        within.append(f"net of each client's linear time trend r = "
                      f"{format_r(adjusted.get('r'))}, 95% CI [{format_r(adjusted.get('ci_low'))}, "
                      f"{format_r(adjusted.get('ci_high'))}], {format_p_clause(adjusted.get('p'))} "
                      f"({_clients(adjusted, view, total)})")
    if within:
        sentences.append(
            f"Within clients (R1, repeated-measures correlation), {measure} and "
            f"{instrument.label} went together " + "; ".join(within) + ". These answer a "
            f"different question (does a client's {measure} move with their own symptoms?) and "
            f"do not test the benchmark: {measure} rising while symptoms fall over therapy makes "
            "the same-session correlation look like agreement even when the lagged models find "
            "nothing.")
    return sentences


def _clients(row: Mapping[str, Any], view: ReportView, total: int | None = None) -> str:
    # a count of people: through the privacy path, with the study's clients as its total
    n = finite(row.get("n"))
    if n is None:
        text = str(row.get("n")) if isinstance(row.get("n"), str) else MISSING
    else:
        text = format_count(int(n), view.min_cell, total)
    return f"{text} clients"
