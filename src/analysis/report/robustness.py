"""The report's RI-CLPM and multiverse sections: the numbers in plain words, and their tables.

Two section builders for :data:`analysis.report.render.SECTIONS`:

- :func:`riclpm_context` reads ``riclpm.csv`` and ``riclpm_fit.csv``
  (:mod:`analysis.models.panel.riclpm_stage`): what the random-intercept cross-lagged panel model
  separates, which sessions were the waves and why, each outcome's cross-lagged paths as
  sentences generated from their direction, CI and p ("within clients, a session with better
  alliance than usual was followed by ..."), the fit and its admissibility, the free-paths
  sensitivity analysis (its likelihood-ratio test only when both fits are admissible, otherwise
  why not), M2's estimate beside it, or why the model could not be fitted. The standardised
  β of a path held equal over waves is the mean of its wave-specific standardised values, and is
  labelled so wherever it is shown;
- :func:`multiverse_context` reads ``multiverse.csv`` and ``multiverse_summary.csv``
  (:mod:`analysis.models.multiverse.summary`): one part per outcome and, within it, per lag (each
  its own estimand, never pooled): how many specifications were planned and how many were
  distinct analyses (the same final model on the same data counted once), what share is
  significant in the expected direction, the median and range of the estimates per estimator,
  which choices move them, and the bootstrap joint test (or that it was not run).

Numbers are printed with :mod:`analysis.report.formatting`, as everywhere in the report.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd
from scipy import stats

from analysis.report.formatting import (
    MISSING,
    Table,
    finite,
    format_ci,
    format_number,
    format_p,
    format_p_clause,
    format_people,
    format_percent,
    generic_table,
    one,
    plain,
    rows_of,
)
from analysis.report.inputs import ReportTables
from analysis.report.view import ReportView

#: The lagged paths in the order the report lists them, with their names in the tables.
PATH_NAMES = {
    "cross-lagged alliance -> symptoms": "alliance → next symptoms",
    "cross-lagged symptoms -> alliance": "symptoms → next alliance",
    "autoregressive alliance": "alliance carry-over",
    "autoregressive symptoms": "symptoms carry-over",
}
#: How the standardised estimate of a path equal over waves is named wherever it is shown.
MEAN_BETA = "standardised β (mean over waves)"
#: Conventional guides for the fit indices (Hu & Bentler 1999), quoted beside them.
FIT_GUIDES = "common guides: CFI and TLI ≥ .95, RMSEA ≤ .06, SRMR ≤ .08 (Hu & Bentler 1999)"


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def _index(value: Any, digits: int = 3) -> str:
    # fit indices without a leading zero, as APA prints quantities that cannot exceed 1
    number = finite(value)
    if number is None:
        return MISSING
    text = f"{number:.{digits}f}"
    return text.replace("0.", ".", 1) if abs(number) < 1 else text


# ---------------------------------------------------------------------------------------------
# RI-CLPM


def _first_path(paths: pd.DataFrame, outcome: str, version: str, label: str
                ) -> dict[str, Any] | None:
    rows = rows_of(paths, outcome=outcome, version=version, label=label)
    if rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    row["std_estimate"] = float(pd.to_numeric(rows["std_estimate"]).mean())
    return row


def _statistics(row: Mapping[str, Any]) -> str:
    return (f"b = {format_number(row.get('estimate'))}, 95% CI "
            f"{format_ci(row.get('ci_lower'), row.get('ci_upper'))}, {MEAN_BETA} = "
            f"{format_number(row.get('std_estimate'))}, {format_p_clause(row.get('p'))}")


def _clear(row: Mapping[str, Any], alpha: float) -> bool:
    p = finite(row.get("p"))
    return p is not None and p < alpha


def path_sentence(row: Mapping[str, Any] | None, *, forward: bool, outcome_label: str,
                  alliance_label: str, outcome_higher_worse: bool, alpha: float,
                  process: str = "alliance") -> str:
    """One cross-lagged path in plain words, generated from its direction, CI and p.

    Parameters
    ----------
    row : mapping or None
        The path's row of ``riclpm.csv`` (``estimate, ci_lower, ci_upper, p, std_estimate``).
    forward : bool
        True for alliance -> next symptoms, False for symptoms -> next alliance.
    outcome_label, alliance_label : str
        Instrument labels.
    outcome_higher_worse : bool
        Whether a higher outcome score means more symptoms.
    alpha : float
        ``report.alpha``: below it the path is described as a finding, otherwise as unclear.
    process : str
        How the text names the process measure (``ReportView.process_label``: "alliance" by
        default, else the measure's label).

    Examples
    --------
    >>> print(path_sentence({"estimate": -1.75, "ci_lower": -2.27, "ci_upper": -1.22,
    ...                      "p": 1e-9, "std_estimate": -0.17}, forward=True,
    ...                     outcome_label="PHQ-9", alliance_label="WAI-SR",
    ...                     outcome_higher_worse=True, alpha=0.05))
    ... # doctest: +NORMALIZE_WHITESPACE
    Within clients, a session with better alliance than usual was followed by lower PHQ-9
    scores (fewer symptoms) at the next session: one WAI-SR point above the client's usual level
    went with 1.75 PHQ-9 points less (b = -1.75, 95% CI [-2.27, -1.22], standardised β (mean
    over waves) = -0.17, p < .001).
    """
    if row is None:
        return "This path was not estimated."
    estimate = finite(row.get("estimate"))
    if estimate is None:
        return "This path has no estimate."
    numbers = _statistics(row)
    size = format_number(abs(estimate))
    if forward:
        if not _clear(row, alpha):
            return (f"Within clients, a session with better {process} than usual was not clearly "
                    f"followed by different {outcome_label} scores at the next session: the 95% "
                    f"CI includes both directions ({numbers}).")
        lower = estimate < 0
        meaning = ("fewer symptoms" if lower == outcome_higher_worse else "more symptoms")
        return (f"Within clients, a session with better {process} than usual was followed by "
                f"{'lower' if lower else 'higher'} {outcome_label} scores ({meaning}) at the next "
                f"session: one {alliance_label} point above the client's usual level went with "
                f"{size} {outcome_label} points {'less' if lower else 'more'} ({numbers}).")
    worse = "more" if outcome_higher_worse else "fewer"
    if not _clear(row, alpha):
        return (f"In the other direction, a session with {worse} symptoms than usual was not "
                f"clearly followed by a different {process} at the next session ({numbers}).")
    # the estimate is per point of the outcome score; "more symptoms" is the score's worse side
    per_worse = estimate if outcome_higher_worse else -estimate
    return (f"In the other direction, a session with {worse} symptoms than usual was followed "
            f"by a {_direction_word(per_worse > 0, process)} {process} at the next session: "
            f"{size} {alliance_label} points per {outcome_label} point ({numbers}).")


def _direction_word(up: bool, process: str) -> str:
    # an alliance is stronger or weaker; another process measure (a count, a rating) higher or lower
    if process == "alliance":
        return "stronger" if up else "weaker"
    return "higher" if up else "lower"


def _fit_sentence(fit: Mapping[str, Any], min_cell: int) -> str:
    chisq, df = finite(fit.get("chisq")), finite(fit.get("df"))
    chi = (f"χ²({df:.0f}) = {chisq:.1f}, {format_p_clause(fit.get('pvalue'))}"
           if chisq is not None and df is not None else "χ² not available")
    text = (f"Fit: {chi}; CFI {_index(fit.get('cfi'))}, TLI {_index(fit.get('tli'))}, RMSEA "
            f"{_index(fit.get('rmsea'))}, SRMR {_index(fit.get('srmr'))} "
            f"({format_people(fit.get('n_clients'), min_cell)} clients, "
            f"{plain(fit.get('n_waves'))} waves). {FIT_GUIDES[0].upper()}{FIT_GUIDES[1:]}.")
    if not _truthy(fit.get("converged")):
        text += (" The estimation did not converge (its gradient check failed): the numbers "
                 "above are not trustworthy.")
    if not _truthy(fit.get("admissible")):
        problems = fit.get("problems")
        detail = (f": {problems}" if isinstance(problems, str) and problems.strip()
                  and problems != MISSING else " (a variance at or below zero, or a correlation "
                  "beyond -1 or 1)")
        text += (f" The solution is inadmissible{detail}; a sign that the model asks more of "
                 "these data than they hold, so its numbers are not interpreted.")
    return text


def _waves_sentence(fit: Mapping[str, Any]) -> str:
    description = fit.get("waves_description")
    if not isinstance(description, str) or not description.strip():
        return ""
    innovations = {"equal": "held equal over waves (one variance per variable and one "
                            "covariance, so that more waves can enter)",
                   "free": "free per wave"}.get(str(fit.get("innovations")), "")
    text = f"Waves: {description}."
    if innovations:
        text += f" Innovation variances and covariance {innovations}."
    return text


def _free_sentence(constrained: Mapping[str, Any], free: Mapping[str, Any] | None,
                   alpha: float) -> str:
    if free is None:
        return ("The free-paths sensitivity analysis is switched off "
                "(models.riclpm.free_paths_sensitivity).")
    if free.get("status") != "fitted":
        return f"With paths free per wave the model could not be fitted. {free.get('reason')}"
    note = free.get("lr_note")
    difference, ddf = finite(free.get("lr_chisq")), finite(free.get("lr_df"))
    if isinstance(note, str) and note.strip() and note != MISSING:
        why = note.strip().removeprefix("not given: ")
        return (f"With paths free per wave the model was fitted, but no likelihood-ratio test "
                f"compares it with the constrained model: {why}. The wave-by-wave paths in the "
                "figure and in riclpm.csv are shown for completeness, not interpreted.")
    if difference is None or ddf is None or ddf <= 0:
        return "With paths free per wave the model was fitted (see the table)."
    p = finite(free.get("lr_pvalue"))
    if p is None:
        p = float(stats.chi2.sf(max(difference, 0.0), ddf))
    better = "improved" if p < alpha else "did not improve"
    return (f"Letting the lagged paths differ between waves {better} the fit significantly "
            f"(Δχ²({ddf:.0f}) = {difference:.1f}, {format_p_clause(p)}; AIC "
            f"{format_number(constrained.get('aic'), 1)} constrained vs "
            f"{format_number(free.get('aic'), 1)} free); the right panel of the figure shows the "
            "paths wave by wave.")


def _m2_sentence(models: pd.DataFrame, outcome: str) -> str:
    """The lagged alliance of the primary dynamic panel model and of the conventional M2, for
    comparison, each labelled with what was actually fitted (M2's final random part)."""
    parts = []
    primary = one(models, outcome=outcome, model="DPM", analysis="primary",
                  term="alliance_lagged")
    if primary is not None:
        parts.append(f"the primary dynamic panel model's lagged alliance is b = "
                     f"{format_number(primary.get('estimate'))}, 95% CI "
                     f"{format_ci(primary.get('ci_low'), primary.get('ci_high'))}")
    row = one(models, outcome=outcome, model="M2", analysis="primary", term="alliance_within")
    if row is not None:
        random_part = str(row.get("random_part") or "").strip()
        fitted = f"; random part {random_part}" if random_part and random_part != "nan" else ""
        parts.append(f"the conventional M2's within-client alliance term (centred on all "
                     f"sessions{fitted}) is b = {format_number(row.get('estimate'))}, 95% CI "
                     f"{format_ci(row.get('ci_low'), row.get('ci_high'))}")
    return (" For comparison, " + "; ".join(parts) + ".") if parts else ""


def riclpm_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The RI-CLPM section's context: switched on or not, one entry per outcome, two tables."""
    settings = view.settings.riclpm
    if settings is None:
        return {"riclpm_run": False, "riclpm_outcomes": [], "riclpm_waves": "",
                "riclpm_paths": None, "riclpm_fit": None}
    alpha = view.settings.alpha
    entries = []
    for outcome in view.outcomes:
        instrument = view.registry[outcome]
        constrained = one(tables.riclpm_fit, outcome=outcome, version="constrained")
        free = one(tables.riclpm_fit, outcome=outcome, version="free")
        entry: dict[str, Any] = {"outcome": outcome, "label": instrument.label,
                                 "fitted": False, "sentences": []}
        if constrained is None:
            entry["sentences"] = ["No RI-CLPM result for this outcome in this run."]
        elif constrained.get("status") != "fitted":
            entry["sentences"] = [
                f"The RI-CLPM could not be fitted for {instrument.label}. "
                f"{constrained.get('reason')} The lagged multilevel models (M2, M3) do not "
                "depend on it."]
        else:
            entry["fitted"] = True
            higher_worse = getattr(instrument, "direction", "higher_worse") != "higher_better"
            forward = _first_path(tables.riclpm, outcome, "constrained",
                                  "cross-lagged alliance -> symptoms")
            backward = _first_path(tables.riclpm, outcome, "constrained",
                                   "cross-lagged symptoms -> alliance")
            kwargs = {"outcome_label": instrument.label, "alliance_label": view.alliance.label,
                      "outcome_higher_worse": higher_worse, "alpha": alpha,
                      "process": view.process_label}
            entry["sentences"] = [s for s in [
                _waves_sentence(constrained),
                path_sentence(forward, forward=True, **kwargs)
                + _m2_sentence(tables.models, outcome),
                path_sentence(backward, forward=False, **kwargs),
                _fit_sentence(constrained, view.min_cell),
                _free_sentence(constrained, free if settings.free_paths_sensitivity else None,
                               alpha),
            ] if s]
        entries.append(entry)
    ranges = {str(value) for value in (tables.riclpm_fit.get("wave_sessions", pd.Series(
        dtype=object)) if not tables.riclpm_fit.empty else []) if isinstance(value, str)}
    return {
        "riclpm_run": True,
        "riclpm_waves": (ranges.pop() if len(ranges) == 1
                         else "the sessions chosen as waves for each outcome (below)"),
        "riclpm_outcomes": entries,
        "riclpm_paths": _paths_table(tables.riclpm, view),
        "riclpm_fit": _fit_table(tables.riclpm_fit, view),
    }


def _paths_table(paths: pd.DataFrame, view: ReportView) -> Table:
    rows = []
    for outcome in view.outcomes:
        for label, name in PATH_NAMES.items():
            row = _first_path(paths, outcome, "constrained", label)
            if row is not None:
                rows.append({**row, "outcome": view.name_of(outcome), "path": name})
    frame = pd.DataFrame(rows)
    return generic_table(
        frame, "RI-CLPM lagged paths between within-client components (paths equal over waves)",
        {"outcome": "Outcome", "path": "Path", "estimate": "b", "se": "SE", "z": "z", "p": "p",
         "ci_lower": "CI low", "ci_upper": "CI high", "std_estimate": "β (mean over waves)"},
        {"estimate": format_number, "se": format_number, "z": format_number, "p": format_p,
         "ci_lower": format_number, "ci_upper": format_number, "std_estimate": format_number},
        note="b is one estimate for all waves (paths held equal over waves). β (mean over "
             "waves): the mean of the path's wave-specific completely standardised estimates "
             "(lavaan's std.all), which differ between waves because the within-client SDs do. "
             "Every parameter with its wave-specific β, and the free-paths version, is in "
             "results/tables/riclpm.csv.")


def _fit_table(fit: pd.DataFrame, view: ReportView) -> Table:
    frame = fit.copy()
    if not frame.empty:
        frame = frame.assign(_rank=frame["outcome"].astype(str).map(
            {key: i for i, key in enumerate(view.outcomes)})).sort_values(
            ["_rank", "version"], kind="stable")

    def yes_no(value: Any) -> str:
        return "yes" if _truthy(value) else ("no" if plain(value) != MISSING else MISSING)

    if not frame.empty:
        frame["lr_test"] = [_lr_cell(row) for row in frame.to_dict("records")]

    return generic_table(
        frame, "RI-CLPM fit: lagged paths constrained equal over waves, and free per wave",
        {"outcome": "Outcome", "version": "Paths", "status": "Status", "chisq": "χ²",
         "df": "df", "pvalue": "p", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA",
         "srmr": "SRMR", "aic": "AIC", "bic": "BIC", "n_clients": "Clients",
         "n_waves": "Waves", "converged": "Converged", "admissible": "Admissible",
         "lr_test": "Free vs constrained paths (LR test)"},
        {"outcome": view.name_of, "status": lambda s: str(s).replace("_", " "),
         "chisq": lambda v: format_number(v, 1), "df": lambda v: plain(v if finite(v) is None
                                                                       else int(float(v))),
         "pvalue": format_p, "cfi": _index, "tli": _index, "rmsea": _index, "srmr": _index,
         "aic": lambda v: format_number(v, 1), "bic": lambda v: format_number(v, 1),
         "n_clients": lambda n: format_people(n, view.min_cell),
         "n_waves": lambda v: plain(v if finite(v) is None else int(float(v))),
         "converged": yes_no, "admissible": yes_no},
        note=FIT_GUIDES[0].upper() + FIT_GUIDES[1:] + ". The likelihood-ratio test of free "
             "against constrained paths is given only when both fits converged and are "
             "admissible.")


def _lr_cell(row: Mapping[str, Any]) -> str:
    if row.get("version") != "free":
        return ""
    chisq, ddf = finite(row.get("lr_chisq")), finite(row.get("lr_df"))
    if chisq is not None and ddf is not None:
        return f"Δχ²({ddf:.0f}) = {chisq:.1f}, {format_p_clause(row.get('lr_pvalue'))}"
    note = row.get("lr_note")
    if isinstance(note, str) and note.strip():
        return note.strip()
    return MISSING


# ---------------------------------------------------------------------------------------------
# Multiverse


def _value(summary: pd.DataFrame, outcome: str, lag: int, estimator: str, statistic: str
           ) -> float | None:
    if summary.empty:
        return None
    rows = summary.loc[(summary["outcome"].astype(str) == outcome)
                       & (pd.to_numeric(summary["lag_gap"]) == lag)
                       & (summary["estimator"].astype(str) == estimator)
                       & (summary["statistic"].astype(str) == statistic)]
    return None if rows.empty else finite(rows.iloc[0].get("value"))


def _joint_row(summary: pd.DataFrame, outcome: str, lag: int, statistic: str
               ) -> dict[str, Any] | None:
    if summary.empty:
        return None
    rows = summary.loc[(summary["outcome"].astype(str) == outcome)
                       & (pd.to_numeric(summary["lag_gap"]) == lag)
                       & (summary["estimator"].astype(str) == "all")
                       & (summary["statistic"].astype(str) == f"joint_{statistic}")]
    return None if rows.empty else rows.iloc[0].to_dict()


def _count(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}"


_ESTIMATOR_WORDS = {"dpm": "dynamic panel model (the primary estimator)",
                    "mlm": "conventional multilevel model", "riclpm": "RI-CLPM"}


def _lag_words(lag: int) -> str:
    return "the next session" if lag == 1 else f"{lag} sessions later"


def multiverse_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The multiverse section's context: per outcome and lag, the curve in sentences and the
    joint test; the choice and joint-test tables."""
    from analysis.models.multiverse.specifications import CHOICE_BY_NAME, ESTIMAND_NAMES

    settings = view.settings.multiverse
    if settings is None:
        return {"multiverse_run": False, "multiverse_intro": [], "multiverse_outcomes": [],
                "multiverse_by_option": None, "multiverse_joint": None}
    summary, table = tables.multiverse_summary, tables.multiverse
    alpha = view.settings.alpha
    alpha_text = f"{alpha:g}".removeprefix("0")
    choices = [(CHOICE_BY_NAME[name], options) for name, options in settings.choices.items()
               if name not in ESTIMAND_NAMES]
    described = [f"{choice.label.lower()} ("
                 f"{' / '.join(choice.option_label(option) for option in options)})"
                 for choice, options in choices if len(options) > 1]
    intro = [
        "The question was asked under every applicable combination of "
        f"{'; '.join(described) or 'the declared options'}. The estimator is one of the "
        "choices: the dynamic panel model (primary), the conventional multilevel model (M2's "
        "formula) and the RI-CLPM. Centring and detrending are choices of the multilevel model "
        "only; accounting for therapists means a therapist random intercept in the multilevel "
        "model and therapist-clustered standard errors in the dynamic panel model, and does not "
        "apply to the RI-CLPM; a choice that does not apply to an estimator is not varied for it. "
        "Specifications that ended in the same final model on the same data (for example a "
        "therapist term dropped by the convergence protocol) are one analysis and are counted "
        "once. Each outcome and each lag is its own estimand: they are summarised and tested "
        "separately, never pooled."]
    outcomes = []
    if not summary.empty:
        lags = sorted({int(v) for v in pd.to_numeric(summary["lag_gap"]).dropna()})
        for outcome in view.outcomes:
            parts = []
            for lag in lags:
                if _value(summary, outcome, lag, "all", "n_planned") is None:
                    continue
                parts.append({"lag": lag, "heading": f"Symptoms {_lag_words(lag)} (lag {lag})",
                              "sentences": _estimand_sentences(summary, table, outcome, lag,
                                                               view, alpha_text)})
            if parts:
                outcomes.append({"name": view.name_of(outcome), "key": outcome, "lags": parts})
    return {
        "multiverse_run": True,
        "multiverse_intro": intro,
        "multiverse_outcomes": outcomes,
        "multiverse_by_option": _by_option_table(table, settings, view),
        "multiverse_joint": _joint_table(summary, view),
    }


def _estimand_sentences(summary: pd.DataFrame, table: pd.DataFrame, outcome: str, lag: int,
                        view: ReportView, alpha_text: str) -> list[str]:
    def value(statistic: str, estimator: str = "all") -> float | None:
        return _value(summary, outcome, lag, estimator, statistic)

    planned, distinct = value("n_planned"), value("n_distinct")
    duplicates, missing = value("n_duplicates"), value("n_not_estimable")
    inadmissible = value("n_inadmissible")
    sentences = [
        f"{_count(planned)} specifications were planned; {_count(distinct)} were distinct "
        f"analyses" + (f" ({_count(duplicates)} ended in the same final model on the same data "
                       "as an earlier specification and "
                       + ("was" if duplicates == 1 else "were") + " counted once)"
                       if duplicates else "")
        + (f"; {_count(missing)} could not be estimated" if missing else "")
        + (f"; {_count(inadmissible)} gave an inadmissible solution (a variance at or below "
           "0) and " + ("is" if inadmissible == 1 else "are") + " not summarised"
           if inadmissible else "") + "."]
    expected, opposite = value("n_significant_expected"), value("n_significant_opposite")
    sentences.append(
        f"{_count(expected)} of the {_count(distinct)} distinct specifications "
        f"({format_percent(value('share_significant_expected'))}) found that a session with "
        f"better {view.process_label} was followed by fewer symptoms {_lag_words(lag)} "
        f"(p < {alpha_text}); "
        f"{_count(opposite)} found the opposite. The median standardised estimate was "
        f"β = {format_number(value('median_std_estimate'), 3)} (range "
        f"{format_number(value('min_std_estimate'), 3)} to "
        f"{format_number(value('max_std_estimate'), 3)}).")
    per_estimator = []
    for estimator in ("dpm", "mlm", "riclpm"):
        n = value("n_distinct", estimator)
        if n is None:
            continue
        if not n:
            per_estimator.append(f"{_ESTIMATOR_WORDS[estimator]}: no distinct estimate")
            continue
        text = (f"{_ESTIMATOR_WORDS[estimator]}: {_count(n)} distinct, median b = "
                f"{format_number(value('median_estimate', estimator))} points per "
                f"{view.alliance.label} point (range "
                f"{format_number(value('min_estimate', estimator))} to "
                f"{format_number(value('max_estimate', estimator))})")
        if estimator in ("dpm", "mlm") and value("primary_estimate", estimator) is not None:
            text += (f"; the pipeline's {'DPM' if estimator == 'dpm' else 'M2'} "
                     f"{format_number(value('primary_estimate', estimator))}")
        per_estimator.append(text)
    if per_estimator:
        sentences.append("By estimator, in score units: " + "; ".join(per_estimator) + ".")
    simplified = value("n_simplified")
    if simplified:
        sentences.append(f"{_count(simplified)} of the distinct multilevel specifications "
                         "needed a simpler random part (convergence protocol; multiverse.csv "
                         "gives the formula actually fitted).")
    sentences.append(_joint_sentence(summary, outcome, lag))
    return sentences


def _joint_sentence(summary: pd.DataFrame, outcome: str, lag: int) -> str:
    share = _joint_row(summary, outcome, lag, "share_significant_expected")
    median = _joint_row(summary, outcome, lag, "median_signed_std_estimate")
    mean_z = _joint_row(summary, outcome, lag, "mean_signed_z")
    if share is None:
        return ("The joint test of this curve was not run in this configuration "
                "(multiverse.joint_test.run is false, the default).")
    count = int(float(share.get("resamples") or 0))
    from analysis.models.multiverse.bootstrap import MEASURED_SIZE

    n_specs = int(float(share.get("n_specifications") or 0))
    size, datasets = MEASURED_SIZE
    return (f"Joint test (Simonsohn, Simmons & Nelson 2020): the estimated effect was removed "
            f"from the symptom scores of the {n_specs} distinct conventional multilevel "
            f"specification{'s' if n_specs != 1 else ''}, clients were resampled with replacement "
            f"{count} times and every one refitted. Only these enter: the test's size was checked "
            f"for them ({size:.1%} at nominal 5% over {datasets} null datasets), not yet for the dynamic panel "
            f"and RI-CLPM specifications. A share of significant "
            f"results in the expected direction at least as large as observed arose with "
            f"{format_p_clause(share.get('p_bootstrap'))}; a median estimate at least as strong "
            f"with {format_p_clause(median.get('p_bootstrap')) if median else MISSING}; a mean "
            f"signed z at least as large with "
            f"{format_p_clause(mean_z.get('p_bootstrap')) if mean_z else MISSING} "
            f"(p = (1 + resamples at least as extreme) / (1 + resamples)).")


def _by_option_table(table: pd.DataFrame, settings: Any, view: ReportView) -> Table:
    from analysis.models.multiverse.specifications import CHOICE_BY_NAME, ESTIMAND_NAMES

    rows = []
    if not table.empty:
        distinct = table["distinct"].map(_truthy) if "distinct" in table else True
        fitted = table.loc[(table["status"].astype(str) == "fitted") & distinct].copy()
        fitted["std_estimate"] = pd.to_numeric(fitted["std_estimate"], errors="coerce")
        for (outcome, lag), block in fitted.groupby(
                [fitted["outcome"].astype(str), pd.to_numeric(fitted["lag_gap"])], sort=False):
            for name, options in settings.choices.items():
                if len(options) < 2 or name in ESTIMAND_NAMES:
                    continue
                choice = CHOICE_BY_NAME[name]
                for option in options:
                    members = block.loc[block[name].astype(str) == str(option)]
                    if members.empty:
                        continue
                    rows.append({
                        "estimand": f"{view.name_of(outcome)}, lag {int(lag)}",
                        "choice": choice.label, "option": choice.option_label(option),
                        "n": len(members), "median": members["std_estimate"].median(),
                        "share": members["significant_expected"].map(_truthy).mean(),
                    })
    return generic_table(
        pd.DataFrame(rows), "Which choices move the estimate: median standardised estimate and "
        "share significant in the expected direction, by option (distinct specifications, per "
        "outcome and lag)",
        {"estimand": "Outcome, lag", "choice": "Choice", "option": "Option",
         "n": "Specifications", "median": "Median β", "share": "Significant (expected)"},
        {"n": plain, "median": lambda v: format_number(v, 3), "share": format_percent})


def _joint_table(summary: pd.DataFrame, view: ReportView) -> Table:
    from analysis.models.multiverse.summary import JOINT_STATISTICS

    rows = []
    if not summary.empty:
        joint = summary.loc[summary["statistic"].astype(str).str.startswith("joint_")]
        for row in joint.to_dict("records"):
            name = str(row["statistic"]).removeprefix("joint_")
            rows.append({"estimand": f"{view.name_of(row['outcome'])}, lag "
                                     f"{int(float(row['lag_gap']))}",
                         "statistic": JOINT_STATISTICS.get(name, name),
                         "value": row.get("value"), "p": row.get("p_bootstrap"),
                         "resamples": row.get("resamples")})
    return generic_table(
        pd.DataFrame(rows), "Joint test of each specification curve (null-imposed cluster "
        "bootstrap of clients)",
        {"estimand": "Outcome, lag", "statistic": "Statistic", "value": "Observed",
         "p": "Bootstrap p", "resamples": "Resamples"},
        {"value": lambda v: format_number(v, 3), "p": format_p,
         "resamples": lambda v: plain(v if finite(v) is None else int(float(v)))})


__all__ = ["multiverse_context", "path_sentence", "riclpm_context"]
