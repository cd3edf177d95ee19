"""The report's APA-style tables: fixed and random effects, fit, sensitivity, agreement, ICC."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import pandas as pd

from analysis.literature import TYPICAL_THERAPIST_SHARE
from analysis.presentation import (
    adjusted_p,
    analysis_label,
    analysis_order,
    model_title,
    name_process,
    select_alliance_terms,
    term_family,
    term_label,
)
from analysis.report.formatting import (
    MISSING,
    Table,
    finite,
    format_ci,
    format_df,
    format_flag,
    format_number,
    format_p,
    format_people,
    format_small,
    generic_table,
    one,
    rows_of,
)


def fixed_effects_table(models: pd.DataFrame, outcome: str, model: str,
                        analysis: str = "primary", caption: str = "") -> Table:
    """APA-style fixed effects of one fit: b, SE, df, t, p, adjusted p, 95% CI, beta.

    Parameters
    ----------
    models : DataFrame
        ``models.csv`` (columns ``outcome, model, analysis, term, estimate, se, df, t, p,
        p_holm, p_bh, ci_low, ci_high, std_estimate``).
    outcome, model, analysis : str
        Which fit.
    caption : str
        The table caption.
    """
    rows = rows_of(models, outcome=outcome, model=model, analysis=analysis)
    body = []
    for row in rows.to_dict("records"):
        p_adjusted, method = adjusted_p(row)
        body.append([
            str(row["term"]), format_number(row.get("estimate")), format_number(row.get("se")),
            format_df(row.get("df")), format_number(row.get("t")), format_p(row.get("p")),
            f"{format_p(p_adjusted)} ({method})" if method else MISSING,
            format_ci(row.get("ci_low"), row.get("ci_high")),
            format_number(row.get("std_estimate")),
        ])
    return Table(caption, ["Term", "b", "SE", "df", "t", "p", "p adj.", "95% CI", "β"], body)


def random_effects_table(random_effects: pd.DataFrame, outcome: str, model: str,
                         analysis: str = "primary") -> Table:
    """Variance components of one fit: group, term(s), variance, SD and correlation."""
    rows = rows_of(random_effects, outcome=outcome, model=model, analysis=analysis)
    body = []
    for row in rows.to_dict("records"):
        term = row.get("term")
        term = term if isinstance(term, str) else ""
        term2 = row.get("term2")
        if isinstance(term2, str) and term2 and term2 != term:
            # a covariance row: the variance column holds the covariance
            term = f"{term} × {term2} (covariance)"
        body.append([str(row.get("group", "")), term, format_number(row.get("variance"), 3),
                     format_number(row.get("sd"), 3), format_number(row.get("corr"), 3)])
    return Table("Random effects", ["Group", "Term", "Variance", "SD", "Corr."], body,
                 numeric=[False, False, True, True, True])


def fit_summary(models: pd.DataFrame, model_fit: pd.DataFrame, outcome: str, model: str,
                min_cell: int, analysis: str = "primary", clients: int | None = None,
                therapists: int | None = None) -> dict[str, str]:
    """One line of facts about a fit: observations, people, convergence, fallbacks, formula.

    ``clients`` and ``therapists`` are the study's totals: the fit's counts of people are parts
    of them (complementary suppression, :func:`analysis.privacy.format_count`)."""
    term_row = one(models, outcome=outcome, model=model, analysis=analysis) or {}
    fit_row = one(model_fit, outcome=outcome, model=model, analysis=analysis) or {}
    n_obs = finite(term_row.get("n_obs"))
    fallback = fit_row.get("fallback_steps")
    return {
        "n_obs": MISSING if n_obs is None else str(int(n_obs)),
        # the models table may hold counts of clients already suppressed ("<10")
        "n_clients": format_people(term_row.get("n_clients"), min_cell, clients),
        "n_therapists": (f"not modelled ({_text(fit_row.get('design')).rstrip('.')})"
                         if _text(fit_row.get("design")) else
                         format_people(term_row.get("n_therapists"), min_cell, therapists)),
        "converged": format_flag(fit_row.get("converged", term_row.get("converged"))),
        "singular": format_flag(fit_row.get("singular", term_row.get("singular"))),
        "gradient_norm": format_small(fit_row.get("gradient_norm")),
        "fallback_steps": fallback_text(fallback),
        "formula": str(fit_row.get("formula") or MISSING),
    }


def fallback_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return "none"
    text = str(value).strip()
    if text.startswith("["):
        try:
            steps = json.loads(text)
        except json.JSONDecodeError:
            return text
        return ", then ".join(str(step if not isinstance(step, list) else step[0])
                              for step in steps) or "none"
    return text.replace(";", ", then ").replace("_", " ") or "none"


def sensitivity_table(models: pd.DataFrame, outcomes: Sequence[str],
                      outcome_labels: Mapping[str, str], process: str = "alliance") -> Table:
    """Every alliance term across analyses, outcomes side by side: b [95% CI], adjusted p.
    ``process`` names the process measure in the caption (``ReportView.process_label``)."""
    terms = select_alliance_terms(models) if not models.empty else models
    columns = ["Model", "Term", "Analysis"]
    for outcome in outcomes:
        columns += [f"{outcome_labels.get(outcome, outcome)} b [95% CI]", "p adj."]
    keys = []
    if not terms.empty:
        keys = list(dict.fromkeys(zip(terms["model"].astype(str), terms["term"].astype(str),
                                      terms["analysis"].astype(str))))
    keys.sort(key=lambda key: (key[0], term_family(key[1]), analysis_order(key[2]), key[1]))
    body, flagged = [], []
    for model, term, analysis in keys:
        cells = [name_process(model_title(model), process),
                 name_process(term_label(term), process), analysis_label(analysis)]
        for outcome in outcomes:
            row = one(terms, outcome=outcome, model=model, term=term, analysis=analysis)
            if row is None:
                cells += [MISSING, MISSING]
                continue
            p_adjusted, _ = adjusted_p(row)
            cells += [f"{format_number(row['estimate'])} "
                      f"{format_ci(row.get('ci_low'), row.get('ci_high'))}",
                      format_p(p_adjusted)]
        body.append(cells)
        flagged.append(analysis == "primary")
    return Table(name_process("Alliance terms in every analysis (primary rows highlighted)",
                              process), columns, body,
                 flagged=flagged, numeric=[False, False, False] + [True] * (len(columns) - 3))


def engine_agreement_table(agreement: pd.DataFrame, tolerance: float) -> Table:
    """Largest differences between the two engines per fit; rows above ``tolerance`` flagged,
    naming the term behind each flag.

    Parameters
    ----------
    agreement : DataFrame
        ``engine_agreement.csv``: ``outcome, model, analysis, max_abs_diff, max_rel_diff,
        flag_term`` (fixed-effect estimates), ``max_rel_se_diff, se_flag_term`` (their standard
        errors, compared like with like: both conditional on the variance estimates),
        ``se_comparison`` and ``reason`` (why a model was not compared).
    tolerance : float
        ``models.agreement_tolerance``: a relative difference above it flags the row.
    """
    body, flagged = [], []
    for row in agreement.to_dict("records"):
        relative = finite(row.get("max_rel_diff"))
        relative_se = finite(row.get("max_rel_se_diff"))
        reason = row.get("reason")
        flag = relative is not None and relative > tolerance
        se_flag = relative_se is not None and relative_se > tolerance
        if flag:
            status = f"CHECK: the estimate of {row.get('flag_term') or 'a term'} differs"
        elif relative is not None:
            status = "estimates agree"
            if se_flag:
                status += (f"; CHECK: the SE of {row.get('se_flag_term') or 'a term'} differs "
                           f"by {100 * relative_se:.1f}%")
        else:
            status = str(reason) if isinstance(reason, str) and reason else "not compared"
        body.append([str(row.get("outcome", "")), str(row.get("model", "")),
                     str(row.get("analysis", "primary")),
                     format_small(row.get("max_abs_diff")), format_small(relative),
                     format_small(relative_se), status])
        flagged.append(flag or se_flag)
    comparison = next((str(value) for value in agreement.get("se_comparison", pd.Series([]))
                       if isinstance(value, str) and value), "")
    return Table(
        "Agreement of the primary engine (mixedlm) with statsmodels MixedLM",
        ["Outcome", "Model", "Analysis", "Max abs. diff. (b)", "Max rel. diff. (b)",
         "Max rel. diff. (SE)", "Status"],
        body, flagged=flagged, numeric=[False, False, False, True, True, True, False],
        note=f"Relative differences above {tolerance:g} (models.agreement_tolerance) are flagged "
             "with the term behind them; models statsmodels cannot express exactly, or that are "
             "too large to refit, are listed with the reason."
             + (f" Standard errors: {comparison}" if comparison else ""),
    )


def model_fit_table(model_fit: pd.DataFrame) -> Table:
    """Every fit's final formula, fallback steps taken and convergence checks."""
    body, flagged = [], []
    for row in model_fit.to_dict("records"):
        fallback = fallback_text(row.get("fallback_steps"))
        status = _text(row.get("status"))
        formula = str(row.get("formula") or MISSING)
        if status in ("not_estimated", "not_identified"):
            # no fit: the requested formula would suggest one was made
            formula = f"{status.replace('_', ' ')}: {_text(row.get('reason')) or 'no estimate'}"
        elif _text(row.get("design")):
            formula += f" ({_text(row.get('design'))}, by design)"
        body.append([str(row.get("outcome", "")), str(row.get("model", "")),
                     str(row.get("analysis", "")), formula,
                     fallback, format_flag(row.get("converged")),
                     format_flag(row.get("singular")), format_small(row.get("gradient_norm"))])
        flagged.append(fallback != "none" or format_flag(row.get("converged")) == "no")
    return Table("Fitted models: final formula, fallbacks and convergence (rows with a "
                 "fallback or without convergence highlighted)",
                 ["Outcome", "Model", "Analysis", "Final formula", "Fallback steps",
                  "Converged", "Singular", "Gradient norm"], body, flagged=flagged,
                 numeric=[False] * 7 + [True])


def _text(value: Any) -> str:
    """A table cell as stripped text ("" for None and NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def therapist_design(model_fit: pd.DataFrame) -> dict[str, Any]:
    """What the run could estimate about therapists, from ``model_fit.csv``.

    Returns a dict: ``reason`` (why the models have no therapist term, "" when they have one:
    the fits' ``design`` column, e.g. "the data have no therapist ids"), ``models`` (the models
    specified without a therapist term by design, in table order), ``clustered_by_client``
    (models whose standard errors are clustered by client instead, M4) and ``not_estimated``
    (outcome -> reason, the R3 fits with status ``not_estimated``).
    """
    out: dict[str, Any] = {"reason": "", "models": [], "clustered_by_client": [],
                           "not_estimated": {}}
    if model_fit.empty:
        return out
    for row in model_fit.to_dict("records"):
        design = _text(row.get("design"))
        model = _text(row.get("model"))
        if _text(row.get("status")) == "not_estimated":
            out["not_estimated"][_text(row.get("outcome"))] = (
                _text(row.get("reason")) or design or "no estimate in this run").rstrip(".")
            continue
        for prefix, key in (("no therapist term: ", "models"),
                            ("standard errors clustered by client: ", "clustered_by_client")):
            if design.startswith(prefix):
                out["reason"] = out["reason"] or design.removeprefix(prefix).rstrip(".")
                if model not in out[key]:
                    out[key].append(model)
    if not out["reason"] and out["not_estimated"]:
        out["reason"] = next(iter(out["not_estimated"].values()))
    return out


def therapist_design_sentences(design: Mapping[str, Any]) -> list[str]:
    """The report's sentences about a design without a therapist term (none when it has one)."""
    if not design["models"] and not design["clustered_by_client"]:
        return []
    reason = design["reason"]
    sentences = []
    if design["models"]:
        sentences.append(
            f"Because {reason}, the mixed models ({', '.join(design['models'])}) were specified "
            "without a therapist term, by design rather than as a simplification step; clients' "
            "differences are still modelled by their own random intercepts.")
    if design["clustered_by_client"]:
        sentences.append(
            f"The standard errors of {', '.join(design['clustered_by_client'])} are clustered by "
            f"client instead of by therapist ({reason}).")
    return sentences


def icc_table(icc: pd.DataFrame, min_cell: int, name_of: Any = str) -> Table:
    columns = {"outcome": "Outcome", "var_therapist": "Therapist variance",
               "var_client": "Client variance", "var_residual": "Residual variance",
               "icc_therapist": "ICC (therapist)", "icc_client": "ICC (client)",
               "n_obs": "Observations", "n_therapists": "Therapists", "n_clients": "Clients",
               "converged": "Converged", "singular": "Singular"}
    formats = {name: (lambda v: format_number(v, 3)) for name in
               ("var_therapist", "var_client", "var_residual", "icc_therapist", "icc_client")}
    formats.update({"n_therapists": lambda n: format_people(n, min_cell),
                    "n_clients": lambda n: format_people(n, min_cell),
                    "converged": format_flag, "singular": format_flag, "outcome": name_of})
    return generic_table(icc, "Share of symptom variance between therapists (R3)", columns,
                         formats, note=f"Therapist effects usually explain about "
                                       f"{100 * TYPICAL_THERAPIST_SHARE:g}% of outcome variance.")
