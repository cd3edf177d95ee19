"""Fitting one planned model: data selection and the fit by the model's kind, as JSON-able results.

One Snakemake job fits one planned ``(outcome, model, analysis)`` (a
:class:`~analysis.models.mixed.specs.ResolvedFit` from the study's plan) with
:func:`fit_planned_model`. Inputs are the ``derived`` frame (session rows), the ``episodes`` frame
(M4) and the ``administrations`` frame (R2, item data). The job selects the outcome's rows (and
completers for that sensitivity analysis), drops rows with a missing model variable explicitly and
counts them, then fits by the model's kind (:data:`FITTERS`):

- ``lmm`` (M0-M3, custom) and ``icc`` (R3): the convergence protocol of docs/methods.md
  section 4 (:mod:`analysis.models.mixed.protocol`): a fit counts only when it converged by the
  gradient check and is not singular; otherwise the random part is simplified one step at a time,
  each step recorded in ``fallback_steps``. The final formula is reported beside the estimates;
- ``ols`` (M4): :mod:`analysis.models.descriptive.early`;
- ``rm_corr`` (R1): :mod:`analysis.models.descriptive.correlation`;
- ``alpha`` (R2): :mod:`analysis.models.descriptive.reliability`;
- ``dpm`` (DPM, DPM-reverse): the dynamic panel model, :mod:`analysis.models.panel.dpm_stage`.

The result is a JSON-able dict: ``spec``, ``data`` (row accounting), ``fixed`` and ``random``
(lists of records with the columns of :mod:`analysis.models.mixed.engines`; ``fixed`` adds
``std_estimate``), ``fit`` (fit information, final formula and fallback steps) and, by kind,
``rm_corr``, ``reliability``, ``icc`` or ``early_alliance`` rows. A primary-analysis mixed model
adds ``diagnostics`` (residual and random-effect summaries for the figures:
:mod:`analysis.models.mixed.diagnostics`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import pandas as pd

from analysis.errors import ConfigError, DataError, require_columns
from analysis.instruments import Instrument
from analysis.models.mixed.engines import FIXED_COLUMNS, RANDOM_COLUMNS
from analysis.models.mixed.design import MIN_THERAPISTS, therapist_design, without_group
from analysis.models.mixed.records import json_ready, records
from analysis.models.mixed.specs import (
    CLIENT,
    THERAPIST,
    ResolvedFit,
    formula_variables,
    split_formula,
)
from analysis.models.mixed.standardise import standardised_estimates

log = logging.getLogger(__name__)



# ---------------------------------------------------------------------------------------------
# Data selection


def select_model_rows(
    derived: pd.DataFrame, resolved: ResolvedFit
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The outcome's rows with every model variable present, and how many rows were dropped.

    Parameters
    ----------
    derived : DataFrame
        The ``derived.parquet`` frame.
    resolved : ResolvedFit
        The job's specification (formula, completers restriction).

    Returns
    -------
    (DataFrame, dict)
        The model rows (only the model's variables, sorted by client and session) and the row
        accounting: ``n_rows_outcome``, ``n_rows_not_completers``, ``n_rows_missing`` (rows with
        at least one model variable missing), ``missing_by_variable`` (count per variable) and
        ``n_obs``.

    Raises
    ------
    ConfigError
        A custom formula names a column that ``derived`` does not have.
    DataError
        A built-in model's column is missing, or no row is left to fit.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"completers": True}),
    ...                  BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> rows, counts = select_model_rows(example_derived(), find_fit(plan, "phq9", "M2", "primary"))
    >>> list(rows.columns)
    ['symptom_next', 'symptom_score', 'alliance_within', 'alliance_between_c', 'session',
     'client_id', 'therapist_id']
    >>> counts
    {'n_rows_outcome': 257, 'n_rows_not_completers': 0, 'missing_by_variable': {'symptom_next':
     58}, 'n_rows_missing': 58, 'n_obs': 199}
    >>> select_model_rows(example_derived(), find_fit(plan, "phq9", "M2", "completers"))[1]["n_obs"]
    84
    """
    variables = _model_variables(resolved, derived.columns)
    require_columns(derived, ["outcome"] + (["n_sessions"] if resolved.completers_min_sessions
                                            is not None else []),
                    "derived.parquet", f"model {resolved.model} ({resolved.analysis})")
    rows = derived.loc[derived["outcome"] == resolved.outcome]
    accounting: dict[str, Any] = {"n_rows_outcome": int(len(rows)), "n_rows_not_completers": 0}
    if resolved.completers_min_sessions is not None:
        completers = rows["n_sessions"] >= resolved.completers_min_sessions
        accounting["n_rows_not_completers"] = int((~completers).sum())
        rows = rows.loc[completers]
    frame = rows[variables]
    missing = frame.isna()
    accounting["missing_by_variable"] = {
        name: int(count) for name, count in missing.sum().items() if count
    }
    incomplete = missing.any(axis=1)
    accounting["n_rows_missing"] = int(incomplete.sum())
    frame = frame.loc[~incomplete]
    sort_keys = [name for name in (CLIENT, "session") if name in frame]
    frame = frame.sort_values(sort_keys, kind="stable").reset_index(drop=True)
    accounting["n_obs"] = int(len(frame))
    if frame.empty:
        raise DataError(
            f"derived.parquet: no rows for outcome {resolved.outcome!r} have all the variables of "
            f"model {resolved.model} ({resolved.analysis}): {', '.join(variables)}. Rows with a "
            f"missing value per variable: {accounting['missing_by_variable'] or 'none'}; rows "
            f"outside completers: {accounting['n_rows_not_completers']}. Check that the outcome "
            f"is scored at consecutive sessions."
        )
    return frame, accounting


def _model_variables(resolved: ResolvedFit, columns: pd.Index) -> list[str]:
    formula = resolved.formula or ""
    variables = formula_variables(formula)
    missing = [name for name in variables if name not in columns]
    if missing:
        if resolved.custom:
            raise ConfigError(
                f"models.custom: the formula of model {resolved.model} uses {missing[0]!r}, which "
                f"is not a column of derived.parquet. Available columns: "
                f"{', '.join(str(c) for c in columns)}."
            )
        raise DataError(
            f"derived.parquet: column(s) {', '.join(missing)} needed by model {resolved.model} "
            f"({resolved.analysis}) are missing. Rerun the derive step of the pipeline."
        )
    # Grouping columns stay in the rows even when a fallback drops their random term, so every
    # fallback step is fitted to the same rows and the steps compare like with like.
    return variables


# ---------------------------------------------------------------------------------------------
# The job


def fit_planned_model(
    derived: pd.DataFrame,
    fit: ResolvedFit,
    registry: Mapping[str, Instrument] | None = None,
    *,
    episodes: pd.DataFrame | None = None,
    administrations: pd.DataFrame | None = None,
    upstream: Callable[[], str] | str = "",
) -> dict[str, Any]:
    """Fit one planned ``(outcome, model, analysis)`` and return a JSON-able result.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``.
    fit : ResolvedFit
        The job's specification, from the study's plan.
    registry : mapping of str to Instrument, optional
        The instruments the job reads (R2: the instrument whose items are analysed).
    episodes : DataFrame, optional
        ``episodes.parquet`` (needed by M4).
    administrations : DataFrame, optional
        ``administrations.parquet`` (needed by R2).
    upstream : str or callable returning str
        What happened to the data upstream (:func:`analysis.quality.upstream_text`), added to a
        DataError about too few clients or observations so that it names the cause.

    Returns
    -------
    dict
        Keys ``outcome, model, analysis, spec, data, fixed, random, fit`` and, by kind,
        ``rm_corr``, ``reliability``, ``icc`` or ``early_alliance`` (lists of records).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",)), BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> result = fit_planned_model(example_derived(), find_fit(plan, "phq9", "M2", "primary"))
    >>> pd.DataFrame(result["fixed"])[["term", "estimate", "se", "p"]].round(3)
                     term  estimate     se      p
    0         (Intercept)     9.267  1.235  0.000
    1       symptom_score     0.415  0.067  0.000
    2     alliance_within     0.598  1.046  0.569
    3  alliance_between_c    -0.606  0.618  0.356
    4             session    -0.427  0.108  0.000
    >>> result["fit"]["converged"], result["fit"]["n_obs"], result["fit"]["n_therapists"]
    (True, 199, 8)
    >>> result["fit"]["formula"] == result["fit"]["requested_formula"]
    True
    """
    log.info("fitting %s: %s", fit.label, fit.formula or fit.kind)
    result: dict[str, Any] = {
        "outcome": fit.outcome,
        "model": fit.model,
        "analysis": fit.analysis,
        "spec": fit.as_dict(),
        "fixed": [],
        "random": [],
        "fit": {},
        "data": {},
    }
    inputs = {"derived": derived, "episodes": episodes, "administrations": administrations,
              "registry": registry or {}}
    try:
        result.update(FITTERS[fit.kind](fit, inputs))
    except DataError as error:
        context = upstream() if callable(upstream) else upstream
        if not context:
            raise
        raise DataError(f"{error} {context}") from None
    return json_ready(result)


def _fit_early(fit: ResolvedFit, inputs: dict[str, Any]) -> dict[str, Any]:
    from analysis.models.descriptive.early import fit_early_alliance

    if inputs["episodes"] is None:
        raise DataError(f"{fit.label} needs episodes.parquet")
    return fit_early_alliance(inputs["derived"], inputs["episodes"], fit)


def _fit_rm_corr(fit: ResolvedFit, inputs: dict[str, Any]) -> dict[str, Any]:
    from analysis.models.descriptive.correlation import repeated_measures_correlation

    return repeated_measures_correlation(inputs["derived"], fit.outcome, fit.expected_sign)


def _fit_alpha(fit: ResolvedFit, inputs: dict[str, Any]) -> dict[str, Any]:
    from analysis.models.descriptive.reliability import reliability

    if inputs["administrations"] is None:
        raise DataError(f"{fit.label} needs administrations.parquet")
    if fit.outcome not in inputs["registry"]:
        raise ConfigError(f"{fit.label}: the instrument {fit.outcome!r} was not passed to the job")
    return reliability(inputs["administrations"], inputs["registry"][fit.outcome])


def _fit_mixed_kind(fit: ResolvedFit, inputs: dict[str, Any]) -> dict[str, Any]:
    return _fit_mixed(inputs["derived"], fit)


def _fit_dynamic_panel(fit: ResolvedFit, inputs: dict[str, Any]) -> dict[str, Any]:
    from analysis.models.panel.dpm_stage import fit_dynamic_panel

    return fit_dynamic_panel(inputs["derived"], fit)


#: How each kind of model is fitted: one function per kind of the specification table.
FITTERS: dict[str, Callable[[ResolvedFit, dict[str, Any]], dict[str, Any]]] = {
    "lmm": _fit_mixed_kind,
    "icc": _fit_mixed_kind,
    "ols": _fit_early,
    "rm_corr": _fit_rm_corr,
    "alpha": _fit_alpha,
    "dpm": _fit_dynamic_panel,
}


def _fit_mixed(derived: pd.DataFrame, resolved: ResolvedFit) -> dict[str, Any]:
    from dataclasses import replace

    from analysis.models.mixed.protocol import fit_with_fallback, fallback_steps_taken

    design, requested = "", resolved.formula
    if resolved.formula and any(group == THERAPIST
                                for _, group in split_formula(resolved.formula)[2]):
        design = therapist_design(derived.loc[derived["outcome"] == resolved.outcome])
    if design and resolved.kind == "icc":
        # The therapist ICC is the therapist variance: without therapists it is not estimated.
        log.info("%s not estimated: %s", resolved.label, design)
        return {"data": {}, "fixed": [], "random": [],
                "fit": {"status": "not_estimated", "reason": design,
                        "formula": resolved.formula, "requested_formula": resolved.formula,
                        "converged": None, "design": design}}
    if design:
        resolved = replace(resolved, formula=without_group(resolved.formula or "", THERAPIST))
    data, accounting = select_model_rows(derived, resolved)
    # The ICC needs the therapist term: a zero therapist variance is its answer, not a failure.
    final, attempts = fit_with_fallback(
        data, resolved.formula or "", reml=resolved.reml, label=resolved.label,
        # the ICC needs both variances: a zero is its answer, not a term to drop
        keep_groups=(CLIENT, THERAPIST) if resolved.kind == "icc" else (),
    )
    response = split_formula(final.formula)[0]
    fixed = final.fixed.copy()
    fixed["std_estimate"] = standardised_estimates(fixed, data, response)
    steps = fallback_steps_taken(attempts, final.formula)
    fit_info = {
        **final.info,
        "engine": final.engine,
        "reml": final.reml,
        "formula": final.formula,
        "requested_formula": requested,
        # a therapist term left out by design (too few therapists), not by the fallback protocol
        "design": f"no therapist term: {design}" if design else "",
        "fallback_steps": steps,
        "attempts": attempts,
    }
    out: dict[str, Any] = {
        "data": accounting,
        "fixed": records(fixed),
        "random": records(final.random),
        "fit": fit_info,
    }
    if resolved.kind == "icc":
        out["icc"] = [therapist_icc(final.random, resolved.outcome, final.info)]
    native = getattr(final, "native", None)
    if resolved.analysis == "primary" and native is not None:
        # What the figures show of the primary models (residuals, therapists' intercepts), in
        # summary: the figure jobs read it here instead of refitting
        # (analysis.models.mixed.diagnostics).
        from analysis.models.mixed.diagnostics import model_diagnostics

        out["diagnostics"] = model_diagnostics(native)
    return out


def therapist_icc(random: pd.DataFrame, outcome: str, info: dict[str, Any]) -> dict[str, Any]:
    """The therapist ICC var_T / (var_T + var_client + var_residual) from a random-effects frame.

    Also the client share (var_client over the same total) and the three variances. A singular
    fit with a therapist variance of 0 gives an ICC of 0: the boundary estimate, flagged.

    Parameters
    ----------
    random : DataFrame
        The fit's random effects (``group``, ``term``, ``term2``, ``variance``), as in a fit
        result's ``random`` records.
    outcome : str
        The outcome instrument.
    info : dict
        The fit information (``n_obs``, ``n_clients``, ``n_therapists``, ``converged``,
        ``singular``).

    Returns
    -------
    dict
        ``outcome``, ``icc_therapist``, ``icc_client``, the three variances, the counts and the
        convergence flags.

    Examples
    --------
    >>> random = pd.DataFrame({"group": ["therapist_id", "client_id", "Residual"],
    ...                        "term": ["(Intercept)", "(Intercept)", ""],
    ...                        "term2": [None, None, None], "variance": [0.5, 3.5, 6.0]})
    >>> info = {"n_obs": 257, "n_clients": 40, "n_therapists": 8, "converged": True,
    ...         "singular": False}
    >>> icc = therapist_icc(random, "phq9", info)
    >>> icc["icc_therapist"], icc["icc_client"]
    (0.05, 0.35)
    """
    def variance(group: str) -> float:
        rows = random.loc[(random["group"] == group) & (random["term2"].fillna("") == "")]
        return float(rows["variance"].iloc[0]) if len(rows) else float("nan")

    therapist, client, residual = variance(THERAPIST), variance(CLIENT), variance("Residual")
    total = therapist + client + residual
    return {
        "outcome": outcome,
        "icc_therapist": therapist / total,
        "icc_client": client / total,
        "var_therapist": therapist,
        "var_client": client,
        "var_residual": residual,
        "n_obs": info["n_obs"],
        "n_clients": info["n_clients"],
        "n_therapists": info["n_therapists"],
        "converged": info["converged"],
        "singular": info["singular"],
    }


__all__ = [
    "FITTERS",
    "MIN_THERAPISTS",
    "therapist_design",
    "FIXED_COLUMNS",
    "RANDOM_COLUMNS",
    "fit_planned_model",
    "select_model_rows",
    "standardised_estimates",
    "therapist_icc",
]
