"""Combining the fit files of every job into the published model tables.

Input: the JSON-able dicts written by :func:`analysis.models.mixed.fitting.fit_planned_model` (one
per ``(outcome, model, analysis)``) and by :func:`analysis.models.mixed.fitting.cross_check_fit`.
Output: tidy DataFrames, one per table under ``results/tables/`` (see :data:`TABLE_COLUMNS`):

- ``models``: one row per fixed-effect term with raw p, ``p_holm`` (Holm over the primary tests:
  the lagged alliance term of the dynamic panel model DPM of each outcome) and ``p_bh``
  (Benjamini-Hochberg over every other tested term of interest); ``n_waves`` for the dynamic
  panel models; both families are formed within each analysis, so each sensitivity
  analysis is corrected the same way as the primary one, side by side;
- ``sensitivity``: the terms of interest of every model run under more than one analysis, each
  with its ``role`` (the term it stands for in the primary analysis, e.g. ``alliance_within``
  for ``alliance_task_within``), so the analyses line up side by side;
- ``random_effects``, ``model_fit`` (including the final formula and the fallback steps taken);
- ``engine_agreement``: the cross-check of the primary-analysis mixed models by a second engine;
- ``rm_corr``, ``reliability``, ``therapist_icc``, ``early_alliance``.

Counts of clients and therapists are published through :func:`analysis.privacy.publish_counts`
(``"<10"`` below the threshold, and hidden when their complement in the study's totals is a
small cell: complementary suppression). Rows are sorted by outcome, model (table order), analysis (primary first) and
term (formula order), so the same fits give byte-identical files.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.models.mixed.specs import BUILTIN_MODELS, SENSITIVITY_ANALYSES, find_sensitivity
from analysis.privacy import PEOPLE_COUNT_COLUMNS as _PEOPLE, StudyTotals, publish_counts

TABLE_COLUMNS: dict[str, list[str]] = {
    "models": [
        "outcome", "model", "analysis", "term", "estimate", "se", "df", "t", "p", "p_holm",
        "p_bh", "ci_low", "ci_high", "std_estimate", "n_obs", "n_clients", "n_therapists",
        "n_waves", "converged", "singular", "of_interest", "family", "primary_test",
        "random_part",
    ],
    "random_effects": [
        "outcome", "model", "analysis", "group", "term", "term2", "variance", "sd", "corr",
    ],
    "model_fit": [
        "outcome", "model", "analysis", "kind", "engine", "reml", "formula", "requested_formula",
        "fallback_steps", "reml_criterion", "deviance", "loglik", "aic", "bic",
        "optimizer_converged", "converged", "singular", "gradient_norm",
        "hessian_positive_definite", "optimizer", "n_obs", "n_clients", "n_therapists",
        "n_rows_missing", "n_rows_not_completers", "status", "reason", "n_waves", "waves",
        "se_type", "random_part", "design",
    ],
    "engine_agreement": [
        "outcome", "model", "analysis", "engine", "formula", "expressible", "reason",
        "n_clients", "n_terms", "max_abs_diff", "max_rel_diff", "max_abs_se_diff",
        "max_rel_se_diff", "flag", "flag_term", "se_flag", "se_flag_term", "se_comparison",
        "tolerance",
    ],
    "rm_corr": [
        "outcome", "method", "r", "ci_low", "ci_high", "p", "dof", "n", "n_obs", "expected_sign",
        "meta_r", "meta_ci_low", "meta_ci_high", "sign_as_expected", "compares",
    ],
    "reliability": ["instrument", "label", "n_items", "n", "alpha", "ci_low", "ci_high"],
    "therapist_icc": [
        "outcome", "icc_therapist", "icc_client", "var_therapist", "var_client", "var_residual",
        "n_obs", "n_clients", "n_therapists", "converged", "singular",
    ],
    "sensitivity": [
        "outcome", "model", "role", "analysis", "term", "estimate", "se", "ci_low", "ci_high",
        "p", "p_holm", "p_bh", "std_estimate", "n_obs", "n_clients", "converged", "singular",
        "random_part",
    ],
    "early_alliance": [
        "outcome", "analysis", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
        "std_estimate", "r_squared", "n_episodes", "n_therapists",
        "n_episodes_fewer_than_2_scores", "n_rows_missing",
    ],
}

#: Columns holding counts of clients: published with small-cell suppression.
FIT_COUNT_COLUMNS = ["outcome", "model", "analysis", "n_obs", "n_clients", "n_therapists"]
#: The columns of the model tables that hold counts of people, by unit (``rm_corr``'s and
#: ``reliability``'s ``n`` counts clients). Written out (not built from the privacy module's
#: list) so that the contracts read it from the source without importing this module; the
#: assertion keeps it a superset of that list.
PEOPLE_COUNT_COLUMNS: dict[str, str] = {
    "n_clients": "clients", "n_episodes": "clients", "n_episodes_fewer_than_2_scores": "clients",
    "n_therapists": "therapists", "n": "clients",
}
assert PEOPLE_COUNT_COLUMNS.items() >= _PEOPLE.items(), "models.tables: a count column is missing"

_ANALYSIS_ORDER = {row.id: position for position, row in enumerate(SENSITIVITY_ANALYSES)}
_MODEL_ORDER = {model_id: position for position, model_id in enumerate(BUILTIN_MODELS)}


def _model_rank(model: str) -> tuple[int, str]:
    # Built-in models in table order, then custom models by id.
    return (_MODEL_ORDER.get(model, len(_MODEL_ORDER)), model)


def _sorted(frame: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    if frame.empty:
        return frame.reset_index(drop=True)
    keys = pd.DataFrame(index=frame.index)
    columns = []
    if "outcome" in frame:
        keys["_outcome"] = frame["outcome"].astype(str)
        columns.append("_outcome")
    if "model" in frame:
        keys["_model_rank"] = [_model_rank(model)[0] for model in frame["model"]]
        keys["_model"] = frame["model"].astype(str)
        columns += ["_model_rank", "_model"]
    if "analysis" in frame:
        keys["_analysis"] = [_ANALYSIS_ORDER.get(name, len(_ANALYSIS_ORDER))
                             for name in frame["analysis"]]
        columns.append("_analysis")
    for name in extra or []:
        keys[f"_{name}"] = frame[name]
        columns.append(f"_{name}")
    order = keys.sort_values(columns, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _frame(rows: list[dict[str, Any]], name: str) -> pd.DataFrame:
    columns = TABLE_COLUMNS[name]
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame:
            frame[column] = np.nan
    return frame[columns]


# ---------------------------------------------------------------------------------------------
# Multiple testing


def add_adjusted_p(models: pd.DataFrame) -> pd.DataFrame:
    """Add ``p_holm`` and ``p_bh`` to a models table, from its ``family`` column.

    Within each analysis: Holm over the rows of the ``primary`` family (the lagged alliance term
    of the dynamic panel model, one per outcome), Benjamini-Hochberg over the rows of the
    ``secondary`` family (the other tested terms: M1, M2's within- and between-client terms, M3's
    reverse path, M4, DPM-reverse). Descriptive terms (family empty: the M0 growth slope, intercepts, covariates, custom
    models) belong to no family and keep NaN, as do rows with a missing p.

    Parameters
    ----------
    models : DataFrame
        A models table (``analysis``, ``family``, ``p``).

    Returns
    -------
    DataFrame
        A copy with ``p_holm`` and ``p_bh``.

    Examples
    --------
    >>> models = pd.DataFrame({"analysis": "primary",
    ...                        "term": ["alliance_lagged", "alliance_lagged", "alliance_within",
    ...                                 "alliance_between_c", "session"],
    ...                        "family": ["primary", "primary", "secondary", "secondary", ""],
    ...                        "p": [0.01, 0.04, 0.02, 0.30, 0.001]})
    >>> add_adjusted_p(models)[["term", "family", "p", "p_holm", "p_bh"]]
                     term     family      p  p_holm  p_bh
    0     alliance_lagged    primary  0.010    0.02   NaN
    1     alliance_lagged    primary  0.040    0.04   NaN
    2     alliance_within  secondary  0.020     NaN  0.04
    3  alliance_between_c  secondary  0.300     NaN  0.30
    4             session             0.001     NaN   NaN
    """
    out = models.copy()
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    family = out["family"].fillna("").astype(str)
    for _, rows in out.groupby("analysis", sort=True):
        primary = rows.index[(family[rows.index] == "primary") & rows["p"].notna()]
        secondary = rows.index[(family[rows.index] == "secondary") & rows["p"].notna()]
        if len(primary):
            out.loc[primary, "p_holm"] = multipletests(
                out.loc[primary, "p"].to_numpy(dtype=float), method="holm"
            )[1]
        if len(secondary):
            out.loc[secondary, "p_bh"] = multipletests(
                out.loc[secondary, "p"].to_numpy(dtype=float), method="fdr_bh"
            )[1]
    return out


# ---------------------------------------------------------------------------------------------
# Tables


def models_table(fits: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per fixed-effect term of every mixed model and OLS fit (columns: see module).

    Parameters
    ----------
    fits : iterable of dict
        Results of :func:`analysis.models.mixed.fitting.fit_planned_model`.

    Returns
    -------
    DataFrame
        The columns ``TABLE_COLUMNS["models"]``, sorted by outcome, model (table order),
        analysis (primary first) and term (formula order); adjusted p-values added
        (:func:`add_adjusted_p`).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> models_table(fits)[["analysis", "term", "estimate", "family", "p_bh"]].round(3)
      analysis                term  estimate     family   p_bh
    0  primary         (Intercept)     9.267               NaN
    1  primary       symptom_score     0.415               NaN
    2  primary     alliance_within     0.598  secondary  0.569
    3  primary  alliance_between_c    -0.606  secondary  0.569
    4  primary             session    -0.427               NaN
    5       ml         (Intercept)     7.856               NaN
    6       ml       symptom_score     0.501               NaN
    7       ml     alliance_within     0.492  secondary  0.645
    8       ml  alliance_between_c    -0.568  secondary  0.645
    9       ml             session    -0.365               NaN
    """
    rows = []
    for fit in fits:
        spec = fit["spec"]
        info = fit.get("fit") or {}
        interest = set(spec.get("terms_of_interest") or [])
        for position, term in enumerate(fit.get("fixed") or []):
            rows.append(
                {
                    "outcome": fit["outcome"],
                    "model": fit["model"],
                    "analysis": fit["analysis"],
                    **term,
                    "n_obs": info.get("n_obs"),
                    "n_clients": info.get("n_clients"),
                    "n_therapists": info.get("n_therapists"),
                    "n_waves": info.get("n_waves"),
                    "converged": info.get("converged"),
                    "singular": info.get("singular"),
                    "of_interest": term["term"] in interest,
                    "family": _family(term["term"], spec),
                    "primary_test": term["term"] == spec.get("primary_term"),
                    "random_part": random_part(info),
                    "_position": position,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return _frame([], "models")
    frame = _sorted(frame, extra=["_position"])
    frame = add_adjusted_p(frame.assign(of_interest=frame["of_interest"].astype(bool),
                                        primary_test=frame["primary_test"].astype(bool)))
    return _frame(frame.to_dict(orient="records"), "models")


def _family(term: str, spec: dict[str, Any]) -> str:
    """The test family of a term: "primary", "secondary" or "" (descriptive, in no family)."""
    if term not in (spec.get("tested_terms") or []):
        return ""
    return "primary" if term == spec.get("primary_term") else "secondary"


def term_role(term: str, analysis: str) -> str:
    """The primary-analysis term that ``term`` replaces in ``analysis`` (itself if none).

    Parameters
    ----------
    term : str
        A model term.
    analysis : str
        The analysis (``primary`` or a sensitivity analysis).

    Returns
    -------
    str
        The primary-analysis term.

    Examples
    --------
    >>> term_role("alliance_bond_within", "subscale_bond")
    'alliance_within'
    >>> term_role("alliance_within_detrended", "detrended")
    'alliance_within'
    >>> term_role("session", "ml")
    'session'
    """
    sensitivity = find_sensitivity(analysis)
    substitutions = sensitivity.substitutions if sensitivity is not None else ()
    return {new: old for old, new in substitutions}.get(term, term)


def sensitivity_table(models: pd.DataFrame) -> pd.DataFrame:
    """The terms of interest of models run under several analyses, lined up by ``role``.

    Input: the :func:`models_table` frame. Sorted by outcome, model, role (formula order),
    analysis (primary first).

    Parameters
    ----------
    models : DataFrame
        :func:`models_table`'s frame.

    Returns
    -------
    DataFrame
        The columns ``TABLE_COLUMNS["sensitivity"]``: one row per model, role and analysis.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> sensitivity_table(models_table(fits))[["role", "analysis", "estimate", "p"]].round(3)
                     role analysis  estimate      p
    0     alliance_within  primary     0.598  0.569
    1     alliance_within       ml     0.492  0.645
    2  alliance_between_c  primary    -0.606  0.356
    3  alliance_between_c       ml    -0.568  0.336
    """
    rows = models.loc[models["of_interest"].astype(bool)].copy()
    analyses_per_model = rows.groupby(["outcome", "model"])["analysis"].transform("nunique")
    rows = rows.loc[analyses_per_model > 1]
    if rows.empty:
        return _frame([], "sensitivity")
    rows["role"] = [term_role(term, analysis)
                    for term, analysis in zip(rows["term"], rows["analysis"])]
    # Roles in the order of the primary formula (the models table keeps formula order).
    primary_order: dict[tuple[str, str], list[str]] = {}
    for outcome, model, role in rows.loc[rows["analysis"] == "primary",
                                         ["outcome", "model", "role"]].itertuples(index=False):
        primary_order.setdefault((outcome, model), []).append(role)
    rows["_role_rank"] = [
        primary_order.get((outcome, model), []).index(role)
        if role in primary_order.get((outcome, model), []) else len(primary_order)
        for outcome, model, role in zip(rows["outcome"], rows["model"], rows["role"])
    ]
    keys = rows.assign(
        _model_rank=[_model_rank(model)[0] for model in rows["model"]],
        _analysis_rank=[_ANALYSIS_ORDER.get(name, len(_ANALYSIS_ORDER))
                        for name in rows["analysis"]],
    ).sort_values(
        ["outcome", "_model_rank", "model", "_role_rank", "role", "_analysis_rank"],
        kind="stable",
    )
    return _frame(keys.to_dict(orient="records"), "sensitivity")


def random_effects_table(fits: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Variances, covariances (with correlations) and residual variance of every mixed model.

    Parameters
    ----------
    fits : iterable of dict
        Results of :func:`analysis.models.mixed.fitting.fit_planned_model`.

    Returns
    -------
    DataFrame
        The columns ``TABLE_COLUMNS["random_effects"]``.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> random_effects_table(fits)[["analysis", "group", "variance", "sd"]].round(3)
      analysis         group  variance     sd
    0  primary     client_id     2.940  1.715
    1  primary  therapist_id     0.097  0.312
    2  primary      Residual     6.161  2.482
    3       ml     client_id     1.730  1.315
    4       ml      Residual     6.463  2.542
    """
    rows = []
    for fit in fits:
        for position, row in enumerate(fit.get("random") or []):
            rows.append({"outcome": fit["outcome"], "model": fit["model"],
                         "analysis": fit["analysis"], **row, "_position": position})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return _frame([], "random_effects")
    return _frame(_sorted(frame, extra=["_position"]).to_dict(orient="records"),
                  "random_effects")


def random_part(info: dict[str, Any]) -> str:
    """The random part of a mixed model's final formula (after any simplification), e.g.
    ``(1 + session | client_id) + (1 | therapist_id)``; "" for models without one.

    Parameters
    ----------
    info : dict
        A fit's ``fit`` entry (``formula``).

    Returns
    -------
    str
        The random terms joined by " + ".

    Examples
    --------
    >>> random_part({"formula": "y ~ x + (1 + session | client_id) + (1 | therapist_id)"})
    '(1 + session | client_id) + (1 | therapist_id)'
    >>> random_part({"formula": "change ~ first_score + alliance_early"})
    ''
    """
    formula = info.get("formula")
    if not formula or "|" not in str(formula):
        return ""
    from analysis.models.mixed.specs import split_formula

    try:
        _, _, terms = split_formula(str(formula))
    except ValueError:
        return ""
    return " + ".join(f"({expr} | {group})" for expr, group in terms)


def model_fit_table(fits: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Fit information of every model with a fit: criteria, convergence, final formula, steps.

    Parameters
    ----------
    fits : iterable of dict
        Results of :func:`analysis.models.mixed.fitting.fit_planned_model`.

    Returns
    -------
    DataFrame
        The columns ``TABLE_COLUMNS["model_fit"]``, one row per fit.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> model_fit_table(fits)[["analysis", "converged", "random_part", "fallback_steps"]]
      analysis  converged                           random_part      fallback_steps
    0  primary       True  (1 | client_id) + (1 | therapist_id)
    1       ml       True                       (1 | client_id)  drop_zero_variance
    """
    rows = []
    for fit in fits:
        info = fit.get("fit") or {}
        if not info:
            continue
        data = fit.get("data") or {}
        rows.append(
            {
                "outcome": fit["outcome"],
                "model": fit["model"],
                "analysis": fit["analysis"],
                "kind": fit["spec"]["kind"],
                **{key: value for key, value in info.items() if key != "attempts"},
                "fallback_steps": ";".join(info.get("fallback_steps") or []),
                "random_part": random_part(info),
                "n_rows_missing": data.get("n_rows_missing"),
                "n_rows_not_completers": data.get("n_rows_not_completers",
                                                  data.get("n_not_completers")),
            }
        )
    return _frame(_sorted(pd.DataFrame(rows)).to_dict(orient="records"), "model_fit") if rows \
        else _frame([], "model_fit")


def simplification_summary(model_fit: pd.DataFrame) -> str:
    """One line for the console: how many fits simplified their random part (each step is
    expected and handled; the steps are in ``model_fit.csv``), or an empty string.

    Parameters
    ----------
    model_fit : DataFrame
        :func:`model_fit_table`'s frame.

    Returns
    -------
    str
        The line, or "" when no fit was simplified.

    Examples
    --------
    >>> model_fit = pd.DataFrame({"fallback_steps": ["", "drop_zero_variance", ""]})
    >>> simplification_summary(model_fit)
    '1 of 3 fits simplified their random part (a variance at zero or a slope correlation at its
     bound); see results/tables/model_fit.csv.'
    >>> simplification_summary(model_fit.iloc[[0, 2]])
    ''
    """
    if model_fit.empty or "fallback_steps" not in model_fit.columns:
        return ""
    steps = model_fit["fallback_steps"].fillna("").astype(str)
    simplified = int((steps != "").sum())
    if not simplified:
        return ""
    return (f"{simplified} of {len(model_fit)} fits simplified their random part (a variance at "
            "zero or a slope correlation at its bound); see results/tables/model_fit.csv.")


def engine_agreement_table(cross_checks: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per cross-checked model: largest differences between engines and the flags.

    Parameters
    ----------
    cross_checks : iterable of dict
        Results of :func:`analysis.models.mixed.crosscheck.cross_check_fit`.

    Returns
    -------
    DataFrame
        The columns ``TABLE_COLUMNS["engine_agreement"]`` (without the per-term comparison).

    Examples
    --------
    >>> checks = [{"outcome": "phq9", "model": "M2", "analysis": "primary", "engine": "statsmodels",
    ...            "max_rel_diff": 1.2e-05, "flag": False, "terms": []}]
    >>> engine_agreement_table(checks)[["outcome", "model", "engine", "max_rel_diff", "flag"]]
      outcome model       engine  max_rel_diff   flag
    0    phq9    M2  statsmodels      0.000012  False
    """
    rows = [{key: value for key, value in check.items() if key != "terms"}
            for check in cross_checks]
    if not rows:
        return _frame([], "engine_agreement")
    return _frame(_sorted(pd.DataFrame(rows)).to_dict(orient="records"), "engine_agreement")


def _collect(fits: Iterable[dict[str, Any]], key: str, name: str,
             sort_by: list[str]) -> pd.DataFrame:
    rows = [row for fit in fits for row in (fit.get(key) or [])]
    frame = _frame(rows, name)
    if frame.empty:
        return frame
    return frame.sort_values(sort_by, kind="stable", key=_sort_key).reset_index(drop=True)


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name == "analysis":
        return column.map(lambda name: _ANALYSIS_ORDER.get(name, len(_ANALYSIS_ORDER)))
    return column.astype(str)


def suppress_client_counts(frame: pd.DataFrame, min_cell: int, totals: StudyTotals
                           ) -> pd.DataFrame:
    """Counts of clients and therapists as published (:func:`analysis.privacy.publish_counts`):
    ``"<min_cell"`` when 0 < n < min_cell, and hidden when the rest of a total it is part of
    (the outcome's episodes, the study's clients or therapists, ``totals``) is a small cell.

    Parameters
    ----------
    frame : DataFrame
        A model table.
    min_cell : int
        The smallest count of people published as a number.
    totals : StudyTotals
        The study's published totals.

    Returns
    -------
    DataFrame
        A copy with the counts of people as published text.

    Examples
    --------
    >>> table = pd.DataFrame({"outcome": ["phq9", "phq9"], "model": ["M2", "M4"],
    ...                       "n_clients": [40, 6], "n_therapists": [8, 3]})
    >>> suppress_client_counts(table, 10, StudyTotals(clients=45, therapists=8,
    ...                                               episodes={"phq9": 45}))
      outcome model n_clients n_therapists
    0    phq9    M2       >35          <10
    1    phq9    M4       <10          <10
    """
    return publish_counts(frame, min_cell, totals, PEOPLE_COUNT_COLUMNS)


def combine_fits(
    fits: Iterable[dict[str, Any]],
    cross_checks: Iterable[dict[str, Any]] = (),
    min_cell: int = 10,
    *,
    totals: StudyTotals,
) -> dict[str, pd.DataFrame]:
    """Every published model table, by name (the keys of :data:`TABLE_COLUMNS`).

    Parameters
    ----------
    fits : iterable of dict
        Results of :func:`analysis.models.mixed.fitting.fit_planned_model`.
    cross_checks : iterable of dict
        Results of :func:`analysis.models.mixed.crosscheck.cross_check_fit`.
    min_cell : int
        ``privacy.min_cell_count``: client counts below it are shown as ``"<min_cell"``.
    totals : StudyTotals
        The study's clients, therapists and each outcome's episodes
        (:meth:`analysis.privacy.StudyTotals.from_tables`): a count whose complement in one of
        them is a small cell is hidden too (35 of 36 clients beside the study's 36 would reveal
        the one left out).

    Returns
    -------
    dict of str to DataFrame
        One table per key of :data:`TABLE_COLUMNS` (counts of people as published text), and
        ``fit_counts`` (:func:`fit_counts_table`, exact).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> tables = combine_fits(fits, totals=StudyTotals(clients=40, therapists=8,
    ...                                                episodes={"phq9": 40}))
    >>> {name: len(table) for name, table in tables.items()}
    {'models': 10, 'sensitivity': 4, 'random_effects': 5, 'model_fit': 2, 'engine_agreement': 0,
     'rm_corr': 0, 'reliability': 0, 'therapist_icc': 0, 'early_alliance': 0, 'fit_counts': 2}
    >>> tables["models"].loc[2, ["analysis", "term", "n_clients", "n_therapists"]].tolist()
    ['primary', 'alliance_within', '40', '<10']
    """
    fits = list(fits)
    models = models_table(fits)
    tables = {
        "models": models,
        "sensitivity": sensitivity_table(models),
        "random_effects": random_effects_table(fits),
        "model_fit": model_fit_table(fits),
        "engine_agreement": engine_agreement_table(list(cross_checks)),
        "rm_corr": _collect(fits, "rm_corr", "rm_corr", ["outcome", "method"]),
        "reliability": _collect(fits, "reliability", "reliability", ["instrument"]),
        "therapist_icc": _collect(fits, "icc", "therapist_icc", ["outcome"]),
        "early_alliance": _collect(fits, "early_alliance", "early_alliance",
                                   ["outcome", "analysis"]),
    }
    published = {name: suppress_client_counts(table, min_cell, totals)
                 for name, table in tables.items()}
    return {**published, "fit_counts": fit_counts_table(fits)}


def fit_counts_table(fits: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Observations, clients and therapists of every fit, exact (unpublished: the data flow's
    input; its published copy hides small counts).

    Parameters
    ----------
    fits : iterable of dict
        Results of :func:`analysis.models.mixed.fitting.fit_planned_model`.

    Returns
    -------
    DataFrame
        ``outcome, model, analysis, n_obs, n_clients, n_therapists`` (Int64), sorted.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model
    >>> from analysis.models.mixed.specs import ModelSettings, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> derived = example_derived()
    >>> fits = [fit_planned_model(derived, job) for job in plan]
    >>> fit_counts_table(fits)
      outcome model analysis  n_obs  n_clients  n_therapists
    0    phq9    M2       ml    199         40             8
    1    phq9    M2  primary    199         40             8
    """
    rows = [{"outcome": fit["outcome"], "model": fit["model"], "analysis": fit["analysis"],
             **{column: (fit.get("fit") or {}).get(column) for column in FIT_COUNT_COLUMNS[3:]}}
            for fit in fits]
    frame = pd.DataFrame(rows, columns=FIT_COUNT_COLUMNS)
    for column in FIT_COUNT_COLUMNS[3:]:
        frame[column] = frame[column].astype("Int64")
    return frame.sort_values(FIT_COUNT_COLUMNS[:3], kind="stable").reset_index(drop=True)
