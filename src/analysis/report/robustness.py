"""The report's RI-CLPM and multiverse sections: the numbers in plain words, and their tables.

Two section builders for :data:`analysis.report.render.SECTIONS`:

- :func:`riclpm_context` reads ``riclpm.csv`` and ``riclpm_fit.csv``
  (:mod:`analysis.models.riclpm_stage`): what the random-intercept cross-lagged panel model
  separates, each outcome's cross-lagged paths as sentences generated from their direction, CI
  and p ("within clients, a session with better alliance than usual was followed by ..."), the
  fit, the free-paths sensitivity analysis, M2's estimate beside it, or why the model could not
  be fitted;
- :func:`multiverse_context` reads ``multiverse.csv`` and ``multiverse_summary.csv``
  (:mod:`analysis.models.multiverse_summary`): how many specifications, what share is significant in
  the expected direction, the median and range of the estimates, which choices move them, and
  the permutation-based joint test (or that it was not run).

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
            f"{format_ci(row.get('ci_lower'), row.get('ci_upper'))}, standardised β = "
            f"{format_number(row.get('std_estimate'))}, {format_p_clause(row.get('p'))}")


def _clear(row: Mapping[str, Any], alpha: float) -> bool:
    p = finite(row.get("p"))
    return p is not None and p < alpha


def path_sentence(row: Mapping[str, Any] | None, *, forward: bool, outcome_label: str,
                  alliance_label: str, outcome_higher_worse: bool, alpha: float) -> str:
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

    Examples
    --------
    >>> path_sentence({"estimate": -1.75, "ci_lower": -2.27, "ci_upper": -1.22, "p": 1e-9,
    ...                "std_estimate": -0.17}, forward=True, outcome_label="PHQ-9",
    ...               alliance_label="WAI-SR", outcome_higher_worse=True, alpha=0.05)
    ... # doctest: +NORMALIZE_WHITESPACE
    'Within clients, a session with better alliance than usual was followed by lower PHQ-9
    scores (fewer symptoms) at the next session: one WAI-SR point above the client\\'s usual level
    went with 1.75 PHQ-9 points less (b = -1.75, 95% CI [-2.27, -1.22], standardised β = -0.17,
    p < .001).'
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
            return (f"Within clients, a session with better alliance than usual was not clearly "
                    f"followed by different {outcome_label} scores at the next session: the 95% "
                    f"CI includes both directions ({numbers}).")
        lower = estimate < 0
        meaning = ("fewer symptoms" if lower == outcome_higher_worse else "more symptoms")
        return (f"Within clients, a session with better alliance than usual was followed by "
                f"{'lower' if lower else 'higher'} {outcome_label} scores ({meaning}) at the next "
                f"session: one {alliance_label} point above the client's usual level went with "
                f"{size} {outcome_label} points {'less' if lower else 'more'} ({numbers}).")
    worse = "more" if outcome_higher_worse else "fewer"
    if not _clear(row, alpha):
        return (f"In the other direction, a session with {worse} symptoms than usual was not "
                f"clearly followed by a different alliance at the next session ({numbers}).")
    # the estimate is per point of the outcome score; "more symptoms" is the score's worse side
    per_worse = estimate if outcome_higher_worse else -estimate
    return (f"In the other direction, a session with {worse} symptoms than usual was followed "
            f"by a {'weaker' if per_worse < 0 else 'stronger'} alliance at the next session: "
            f"{size} {alliance_label} points per {outcome_label} point ({numbers}).")


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
        text += (" The solution is inadmissible (a variance estimated at or below zero), a sign "
                 "that the model asks more of these data than they hold.")
    return text


def _free_sentence(constrained: Mapping[str, Any], free: Mapping[str, Any] | None,
                   alpha: float) -> str:
    if free is None:
        return ("The free-paths sensitivity analysis is switched off "
                "(models.riclpm.free_paths_sensitivity).")
    if free.get("status") != "fitted":
        return f"With paths free per wave the model could not be fitted: {free.get('reason')}."
    c_chi, f_chi = finite(constrained.get("chisq")), finite(free.get("chisq"))
    c_df, f_df = finite(constrained.get("df")), finite(free.get("df"))
    if None in (c_chi, f_chi, c_df, f_df) or c_df <= f_df:
        return "With paths free per wave the model was fitted (see the table)."
    difference, ddf = c_chi - f_chi, c_df - f_df
    p = float(stats.chi2.sf(max(difference, 0.0), ddf))
    better = "improved" if p < alpha else "did not improve"
    return (f"Letting the lagged paths differ between waves {better} the fit significantly "
            f"(Δχ²({ddf:.0f}) = {difference:.1f}, {format_p_clause(p)}; AIC "
            f"{format_number(constrained.get('aic'), 1)} constrained vs "
            f"{format_number(free.get('aic'), 1)} free); the right panel of the figure shows the "
            "paths wave by wave.")


def _m2_sentence(models: pd.DataFrame, outcome: str) -> str:
    row = one(models, outcome=outcome, model="M2", analysis="primary", term="alliance_within")
    if row is None:
        return ""
    return (f" For comparison, M2's within-client alliance term (all sessions, therapist term) "
            f"is b = {format_number(row.get('estimate'))}, 95% CI "
            f"{format_ci(row.get('ci_low'), row.get('ci_high'))}.")


def riclpm_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The RI-CLPM section's context: switched on or not, one entry per outcome, two tables."""
    settings = view.settings.riclpm
    if settings is None:
        return {"riclpm_run": False, "riclpm_outcomes": [], "riclpm_sessions": 0,
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
                f"The RI-CLPM could not be fitted for {instrument.label}: "
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
                      "outcome_higher_worse": higher_worse, "alpha": alpha}
            entry["sentences"] = [
                path_sentence(forward, forward=True, **kwargs)
                + _m2_sentence(tables.models, outcome),
                path_sentence(backward, forward=False, **kwargs),
                _fit_sentence(constrained, view.min_cell),
                _free_sentence(constrained, free if settings.free_paths_sensitivity else None,
                               alpha),
            ]
        entries.append(entry)
    return {
        "riclpm_run": True,
        "riclpm_sessions": settings.sessions,
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
         "ci_lower": "CI low", "ci_upper": "CI high", "std_estimate": "β"},
        {"estimate": format_number, "se": format_number, "z": format_number, "p": format_p,
         "ci_lower": format_number, "ci_upper": format_number, "std_estimate": format_number},
        note="β: completely standardised estimate (lavaan's std.all), averaged over waves, "
             "because the within-client SDs differ between waves. Every parameter, and the "
             "free-paths version, is in results/tables/riclpm.csv.")


def _fit_table(fit: pd.DataFrame, view: ReportView) -> Table:
    frame = fit.copy()
    if not frame.empty:
        frame = frame.assign(_rank=frame["outcome"].astype(str).map(
            {key: i for i, key in enumerate(view.outcomes)})).sort_values(
            ["_rank", "version"], kind="stable")

    def yes_no(value: Any) -> str:
        return "yes" if _truthy(value) else ("no" if plain(value) != MISSING else MISSING)

    return generic_table(
        frame, "RI-CLPM fit: lagged paths constrained equal over waves, and free per wave",
        {"outcome": "Outcome", "version": "Paths", "status": "Status", "chisq": "χ²",
         "df": "df", "pvalue": "p", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA",
         "srmr": "SRMR", "aic": "AIC", "bic": "BIC", "n_clients": "Clients",
         "n_waves": "Waves", "converged": "Converged", "admissible": "Admissible"},
        {"outcome": view.name_of, "status": lambda s: str(s).replace("_", " "),
         "chisq": lambda v: format_number(v, 1), "df": lambda v: plain(v if finite(v) is None
                                                                       else int(float(v))),
         "pvalue": format_p, "cfi": _index, "tli": _index, "rmsea": _index, "srmr": _index,
         "aic": lambda v: format_number(v, 1), "bic": lambda v: format_number(v, 1),
         "n_clients": lambda n: format_people(n, view.min_cell),
         "n_waves": lambda v: plain(v if finite(v) is None else int(float(v))),
         "converged": yes_no, "admissible": yes_no},
        note=FIT_GUIDES[0].upper() + FIT_GUIDES[1:] + ".")


# ---------------------------------------------------------------------------------------------
# Multiverse


def _summary_value(summary: pd.DataFrame, scope: str, statistic: str) -> dict[str, Any] | None:
    return one(summary, scope=scope, statistic=statistic)


def _value(summary: pd.DataFrame, scope: str, statistic: str) -> float | None:
    row = _summary_value(summary, scope, statistic)
    return None if row is None else finite(row.get("value"))


def _count(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}"


def multiverse_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The multiverse section's context: the curve in sentences, the joint test, two tables."""
    from analysis.models.multiverse import CHOICE_BY_NAME

    settings = view.settings.multiverse
    if settings is None:
        return {"multiverse_run": False, "multiverse_sentences": [], "multiverse_choices": [],
                "multiverse_by_option": None, "multiverse_joint": None}
    summary, table = tables.multiverse_summary, tables.multiverse
    alpha = view.settings.alpha
    alpha_text = f"{alpha:g}".removeprefix("0")
    choices = [(CHOICE_BY_NAME[name], options) for name, options in settings.choices.items()]
    described = [f"{choice.label.lower()} ("
                 f"{' / '.join(_option_label(choice, option, view) for option in options)})"
                 for choice, options in choices if len(options) > 1]
    n_specs, n_fitted = _value(summary, "all", "n_specifications"), _value(summary, "all",
                                                                             "n_fitted")
    sentences = []
    if n_specs is None:
        sentences.append("No multiverse results in this run.")
    else:
        sentences.append(
            f"The primary test (M2's within-client alliance term) was repeated under "
            f"{_count(n_specs)} specifications: every combination of "
            f"{'; '.join(described) or 'the declared options'}. Each was fitted with the "
            "same convergence protocol as the primary analysis.")
        expected = _value(summary, "all", "n_significant_expected")
        opposite = _value(summary, "all", "n_significant_opposite")
        share = _value(summary, "all", "share_significant_expected")
        median = _value(summary, "all", "median_std_estimate")
        low, high = (_value(summary, "all", "min_std_estimate"),
                     _value(summary, "all", "max_std_estimate"))
        sentences.append(
            f"{_count(expected)} of the {_count(n_fitted)} estimated specifications "
            f"({format_percent(share)}) found that a session with better alliance than usual "
            f"was followed by better scores (fewer symptoms) at the next session (p < "
            f"{alpha_text}); {_count(opposite)} found the opposite. The median standardised "
            f"estimate was β = {format_number(median, 3)} "
            f"(range {format_number(low, 3)} to {format_number(high, 3)}).")
        per_outcome = []
        for outcome in view.outcomes:
            if _value(summary, outcome, "n_specifications") is None:
                continue
            per_outcome.append(
                f"{view.name_of(outcome)}: median b = "
                f"{format_number(_value(summary, outcome, 'median_estimate'))} points per "
                f"{view.alliance.label} point (range "
                f"{format_number(_value(summary, outcome, 'min_estimate'))} to "
                f"{format_number(_value(summary, outcome, 'max_estimate'))}; primary analysis "
                f"{format_number(_value(summary, outcome, 'primary_estimate'))})")
        if per_outcome:
            sentences.append("Per outcome, in score units: " + "; ".join(per_outcome) + ".")
        simplified = _value(summary, "all", "n_simplified")
        missing = (n_specs - n_fitted) if n_fitted is not None else None
        extra = []
        if simplified:
            extra.append(f"{_count(simplified)} needed a simpler random part (convergence "
                         "protocol; see multiverse.csv)")
        if missing:
            reasons = sorted(set(rows_of(table, status="not_estimable")["reason"].astype(str)))
            extra.append(f"{_count(missing)} could not be estimated"
                         + (f" (e.g. {reasons[0]})" if reasons else ""))
        if extra:
            sentences.append("Of the specifications, " + "; ".join(extra) + ".")
        sentences.append(_joint_sentence(summary, settings, alpha_text))
    return {
        "multiverse_run": True,
        "multiverse_sentences": sentences,
        "multiverse_by_option": _by_option_table(table, settings, view),
        "multiverse_joint": _joint_table(summary),
    }


def _option_label(choice: Any, option: Any, view: ReportView) -> str:
    if choice.name == "outcome":
        return view.name_of(option)
    return choice.option_label(option)


def _joint_sentence(summary: pd.DataFrame, settings: Any, alpha_text: str) -> str:
    share = _summary_value(summary, "all", "joint_share_significant_expected")
    median = _summary_value(summary, "all", "joint_median_signed_std_estimate")
    mean_z = _summary_value(summary, "all", "joint_mean_signed_z")
    if share is None:
        return ("The permutation-based joint test was not run in this configuration "
                "(multiverse.permutations: 0, which keeps the demo fast; the benchmark "
                "configuration turns it on with 200 or more permutations).")
    count = int(float(share.get("permutations") or 0))
    method = ("with each permuted specification re-estimated by GLS at the variance components "
              "of its fit (a fast approximation)" if settings.permutation_method ==
              "fixed_variance" else "with every permuted specification refitted by REML")
    return (f"Joint test (Simonsohn, Simmons & Nelson 2020): under the null hypothesis that a "
            f"session's alliance, relative to the client's usual level, carries no information "
            f"about the next session's symptoms, each client's alliance scores were shuffled "
            f"over their sessions {count} times ({method}). A share of significant results in "
            f"the expected direction at least as large as observed arose with permutation "
            f"{format_p_clause(share.get('p_permutation'))}; a median estimate at least as "
            f"strong with {format_p_clause(median.get('p_permutation')) if median else MISSING};"
            f" a mean signed t at least as large with "
            f"{format_p_clause(mean_z.get('p_permutation')) if mean_z else MISSING} "
            f"(p = (1 + permutations at least as extreme) / (1 + permutations)).")


def _by_option_table(table: pd.DataFrame, settings: Any, view: ReportView) -> Table:
    from analysis.models.multiverse import CHOICE_BY_NAME

    rows = []
    if not table.empty:
        fitted = table.loc[table["status"].astype(str) == "fitted"].copy()
        fitted["std_estimate"] = pd.to_numeric(fitted["std_estimate"], errors="coerce")
        for name, options in settings.choices.items():
            if len(options) < 2:
                continue
            choice = CHOICE_BY_NAME[name]
            for option in options:
                members = fitted.loc[fitted[name].astype(str) == str(option)]
                rows.append({
                    "choice": choice.label, "option": _option_label(choice, option, view),
                    "n": len(members),
                    "median": members["std_estimate"].median() if len(members) else math.nan,
                    "share": (members["significant_expected"].map(_truthy).mean()
                              if len(members) else math.nan),
                })
    return generic_table(
        pd.DataFrame(rows), "Which choices move the estimate: median standardised estimate and "
        "share significant in the expected direction, by option",
        {"choice": "Choice", "option": "Option", "n": "Specifications",
         "median": "Median β", "share": "Significant (expected)"},
        {"n": plain, "median": lambda v: format_number(v, 3), "share": format_percent})


def _joint_table(summary: pd.DataFrame) -> Table:
    from analysis.models.multiverse_summary import JOINT_STATISTICS

    rows = []
    for name, description in JOINT_STATISTICS.items():
        row = _summary_value(summary, "all", f"joint_{name}")
        if row is not None:
            rows.append({"statistic": description, "value": row.get("value"),
                         "p": row.get("p_permutation"), "permutations": row.get("permutations")})
    return generic_table(
        pd.DataFrame(rows), "Permutation-based joint test of the specification curve",
        {"statistic": "Statistic", "value": "Observed", "p": "Permutation p",
         "permutations": "Permutations"},
        {"value": lambda v: format_number(v, 3), "p": format_p,
         "permutations": lambda v: plain(v if finite(v) is None else int(float(v)))})


__all__ = ["multiverse_context", "path_sentence", "riclpm_context"]
