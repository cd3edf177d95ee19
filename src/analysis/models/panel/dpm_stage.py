"""The dynamic panel models as planned fits: DPM (primary) and DPM-reverse, one outcome each.

:mod:`analysis.models.panel.dpm` fits the maximum-likelihood dynamic panel model with fixed effects
(Allison, Williams & Moral-Benito 2017) to a wide panel. This module runs it for one planned fit
of the pipeline (:func:`fit_dynamic_panel`, the ``dpm`` entry of
:data:`analysis.models.mixed.fitting.FITTERS`):

1. the outcome's rows of ``derived.parquet`` (completers only for that sensitivity analysis);
2. the waves: consecutive sessions that enough clients reach, counted from the study's first
   session or each client's first session (``models.panel``,
   :func:`analysis.models.panel.waves.choose_waves`);
3. the fit: symptoms at wave t on symptoms and alliance at t-1 and each client's fixed effect,
   alliance predetermined (DPM); alliance on alliance and symptoms at t-1, symptoms predetermined
   (DPM-reverse); lagged paths equal over waves, or free per wave (``free_paths`` analysis,
   reported as the mean over waves);
4. the result in the layout of every other fit (``fixed`` rows with ``term, estimate, se, df, t,
   p, ci_low, ci_high, std_estimate``; ``fit`` information), so the model tables, the test
   families and the report treat it like any model. ``t`` holds the Wald statistic; with robust
   SEs it is referred to t with the sandwich's degrees of freedom in ``df`` (Pan & Wall 2002,
   :func:`analysis.models.panel.dpm.robust_df`), with observed information to the normal (``df``
   empty).

Standard errors (:func:`inference`): cluster-robust by therapist when the study has at least
:data:`analysis.models.panel.dpm.MIN_CLUSTERS_FOR_ROBUST` therapists; otherwise robust with each
client its own cluster (the sandwich of lavaan's MLR). Not the observed information alone: in the
recovery study (150 clients, ``docs/validation/recovery.csv``) the observed-information SEs were
about 15% smaller than the spread of the estimates, the sandwich SEs were not. With fewer clients
than that minimum the observed information is used. ``fit.se_type`` says which.

When the data cannot identify the model (too few clients or waves), the fit records
``status = "not_identified"`` and the reason instead of stopping the run; the report says "not
estimated" with that reason.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.mixed.specs import ALLIANCE_LAGGED, SYMPTOM_LAGGED, THERAPIST, ResolvedFit

log = logging.getLogger(__name__)

#: Fit statuses of a dynamic panel model.
STATUS_FITTED = "fitted"
STATUS_NOT_IDENTIFIED = "not_identified"

_PREFIX = {"alliance": "a", "symptoms": "y"}


def roles(fit: ResolvedFit) -> dict[str, Any]:
    """Which score is the outcome and which is predetermined, from the model's primary term.

    DPM (primary term ``alliance_lagged``): symptoms are the outcome, alliance is predetermined.
    DPM-reverse (term of interest ``symptom_lagged``): the roles swap.

    Parameters
    ----------
    fit : ResolvedFit
        A planned dynamic panel model.

    Returns
    -------
    dict
        ``outcome`` and ``predictor`` ("symptoms" or "alliance"), the model terms of the
        cross-lagged (``cross_term``) and autoregressive (``carry_term``) paths, and ``reverse``.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> plan = plan_fits(ModelSettings(run=("DPM", "DPM-reverse")), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> roles(find_fit(plan, "phq9", "DPM", "primary"))
    {'outcome': 'symptoms', 'predictor': 'alliance', 'cross_term': 'alliance_lagged',
     'carry_term': 'symptom_lagged', 'reverse': False}
    >>> roles(find_fit(plan, "phq9", "DPM-reverse", "primary"))["outcome"]
    'alliance'
    """
    reverse = SYMPTOM_LAGGED in fit.terms_of_interest
    outcome, predictor = ("alliance", "symptoms") if reverse else ("symptoms", "alliance")
    cross = SYMPTOM_LAGGED if reverse else ALLIANCE_LAGGED
    carry = ALLIANCE_LAGGED if reverse else SYMPTOM_LAGGED
    return {"outcome": outcome, "predictor": predictor, "cross_term": cross,
            "carry_term": carry, "reverse": reverse}


def describe(fit: ResolvedFit, waves_text: str) -> str:
    """The model in one line, for ``model_fit.csv`` and the report's methods.

    Parameters
    ----------
    fit : ResolvedFit
        A planned dynamic panel model.
    waves_text : str
        The waves in words (:attr:`analysis.models.panel.waves.WaveChoice.description`).

    Returns
    -------
    str
        The description.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> plan = plan_fits(ModelSettings(run=("DPM", "DPM-reverse")), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> describe(find_fit(plan, "phq9", "DPM", "primary"), "sessions 1 to 6")
    'symptoms[t] ~ symptoms[t-1] + alliance[t-1] + client fixed effect; alliance predetermined;
     lagged paths equal over waves; ML over missing-data patterns; waves: sessions 1 to 6'
    """
    role = roles(fit)
    paths = "equal over waves" if fit.equal_paths else "free per wave"
    return (f"{role['outcome']}[t] ~ {role['outcome']}[t-1] + {role['predictor']}[t-1] + "
            f"client fixed effect; {role['predictor']} predetermined; lagged paths {paths}; "
            f"ML over missing-data patterns; waves: {waves_text}")


def fit_dynamic_panel(derived: pd.DataFrame, fit: ResolvedFit) -> dict[str, Any]:
    """Fit one planned dynamic panel model; the ``data``, ``fixed``, ``random`` and ``fit`` parts
    of a fit file (see :func:`analysis.models.mixed.fitting.fit_planned_model`).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``: ``outcome, client_id, therapist_id, session, alliance_score,
        symptom_score`` (and ``n_sessions`` for the completers analysis).
    fit : ResolvedFit
        The planned fit (``kind == "dpm"``); ``fit.panel`` holds the wave settings and
        ``fit.equal_paths`` whether the lagged paths are equal over waves.

    Returns
    -------
    dict
        ``data`` (row accounting), ``fixed`` (the lagged terms), ``random`` (empty) and ``fit``
        (status, reason, sizes, waves, likelihood, fit indices, convergence, ``se_type``).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> plan = plan_fits(ModelSettings(run=("DPM", "DPM-reverse")), BUILT_IN["wai_sr"],
    ...                  [BUILT_IN["phq9"]])
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=60, max_sessions=4)
    >>> result = fit_dynamic_panel(derived, find_fit(plan, "phq9", "DPM", "primary"))
    >>> result["fit"]["status"], result["fit"]["n_waves"], result["fit"]["se_type"]
    ('fitted', 4, 'robust (sandwich, clients as clusters)')
    >>> pd.DataFrame(result["fixed"])[["term", "estimate", "se", "p"]].round(3)
                  term  estimate     se      p
    0  alliance_lagged    -1.157  2.895  0.692
    1   symptom_lagged     0.179  0.194  0.365
    """
    from analysis.models.panel.dpm import fit_dpm
    from analysis.models.panel.waves import choose_waves, wide_panel

    rows = derived.loc[derived["outcome"] == fit.outcome]
    accounting: dict[str, Any] = {"n_rows_outcome": int(len(rows)), "n_rows_not_completers": 0,
                                  "n_rows_missing": 0}
    if fit.completers_min_sessions is not None:
        keep = rows["n_sessions"] >= fit.completers_min_sessions
        accounting["n_rows_not_completers"] = int((~keep).sum())
        rows = rows.loc[keep]
    if rows.empty:
        raise DataError(
            f"derived.parquet: no rows for outcome {fit.outcome!r} to fit {fit.label}.")
    role = roles(fit)
    info: dict[str, Any] = {
        "engine": "FIML (ML-SEM)", "reml": False, "fallback_steps": [], "singular": False,
        "n_clients": int(rows["client_id"].nunique()),
        "n_therapists": _n_therapists(rows),
    }
    choice = choose_waves(rows, fit.outcome, **dict(fit.panel))
    choice = _identified_waves(rows, fit, choice)
    info.update(waves=choice.description, n_waves=int(choice.n_waves))
    formula = describe(fit, choice.description)
    info.update(formula=formula, requested_formula=formula)
    try:
        panel, _counts = wide_panel(rows, fit.outcome, choice)
        standard_errors = inference(panel, _n_therapists(rows))
        result = fit_dpm(panel, int(choice.n_waves), outcome=_PREFIX[role["outcome"]],
                         predetermined=(_PREFIX[role["predictor"]],),
                         equal_paths=fit.equal_paths, **standard_errors)
    except DataError as error:
        log.warning("%s not identified: %s", fit.label, error)
        info.update(status=STATUS_NOT_IDENTIFIED, reason=str(error), converged=False)
        return {"data": {**accounting, "n_obs": 0}, "fixed": [], "random": [], "fit": info}
    fit_info, convergence = result["fit"], result["convergence"]
    lagged = result["lagged"]
    robust = bool(lagged.get("robust"))
    info.update(
        status=STATUS_FITTED, reason="",
        n_obs=int(fit_info.get("n_observed_values") or 0),
        n_clients=int(fit_info["n_clients"]),
        loglik=fit_info.get("loglik"), aic=fit_info.get("aic"), bic=fit_info.get("bic"),
        deviance=None if fit_info.get("loglik") is None else -2 * float(fit_info["loglik"]),
        chisq=fit_info.get("chisq"), chisq_df=fit_info.get("df"),
        chisq_p=fit_info.get("pvalue"), cfi=fit_info.get("cfi"), rmsea=fit_info.get("rmsea"),
        converged=bool(convergence.get("converged")) and bool(convergence.get("admissible", True)),
        optimizer_converged=bool(convergence.get("converged")),
        admissible=bool(convergence.get("admissible", True)),
        gradient_norm=convergence.get("max_abs_gradient"),
        hessian_positive_definite=_positive(convergence.get("information_min_eigenvalue")),
        optimizer="Fisher scoring + Newton (observed information)",
        # (the number of therapists is a count of people: published only through the privacy
        # path, so it is not written into this text)
        se_type=se_type(lagged, standard_errors),
    )
    accounting["n_obs"] = info["n_obs"]
    # With paths free per wave the engine's summary is the mean over waves (its SE from the
    # covariance of the per-wave estimates), so the check lines up with the primary analysis.
    fixed = [fixed_row(role["cross_term"], lagged, robust),
             fixed_row(role["carry_term"], result["autoregressive"], robust)]
    return {"data": accounting, "fixed": fixed, "random": [], "fit": info}


#: ``se_type`` of the three kinds of standard error (:func:`inference`).
SE_THERAPIST = "cluster-robust by therapist"
SE_CLIENT = "robust (sandwich, clients as clusters)"
SE_OBSERVED = "observed information"


def inference(panel: pd.DataFrame, n_therapists: int, by_therapist: bool = True) -> dict:
    """The ``fit_dpm`` arguments of the standard errors used for inference: clustered by
    therapist with enough therapists (and ``by_therapist``), else robust by client.

    Parameters
    ----------
    panel : DataFrame
        The wide panel (with ``therapist_id`` when the study has therapists).
    n_therapists : int
        The therapists of the fit's clients.
    by_therapist : bool
        Whether clustering by therapist is wanted.

    Returns
    -------
    dict
        Keyword arguments of :func:`analysis.models.panel.dpm.fit_dpm`.

    Examples
    --------
    >>> panel = pd.DataFrame({"client_id": ["a", "b"], "therapist_id": ["t1", "t2"]})
    >>> inference(panel, n_therapists=40)
    {'cluster': 'therapist_id'}
    >>> inference(panel, n_therapists=5)
    {'cluster': None, 'robust_by_client': True}
    """
    from analysis.models.panel.dpm import MIN_CLUSTERS_FOR_ROBUST

    if by_therapist and THERAPIST in panel and n_therapists >= MIN_CLUSTERS_FOR_ROBUST:
        return {"cluster": THERAPIST}
    return {"cluster": None, "robust_by_client": True}


def se_type(lagged: dict, standard_errors: dict) -> str:
    """What the SEs of a fit made with :func:`inference`'s arguments are.

    Parameters
    ----------
    lagged : dict
        The ``lagged`` entry of :func:`analysis.models.panel.dpm.fit_dpm`'s result (``robust``).
    standard_errors : dict
        The arguments :func:`inference` gave.

    Returns
    -------
    str
        The kind of standard error, for ``model_fit.csv``.

    Examples
    --------
    >>> se_type({"robust": True}, {"cluster": "therapist_id"})
    'cluster-robust by therapist'
    >>> se_type({"robust": True}, {"cluster": None, "robust_by_client": True})
    'robust (sandwich, clients as clusters)'
    >>> se_type({"robust": False}, {"cluster": None})
    'observed information'
    """
    if not lagged.get("robust"):
        return SE_OBSERVED
    return SE_THERAPIST if standard_errors.get("cluster") else SE_CLIENT


def _identified_waves(rows: pd.DataFrame, fit: ResolvedFit, choice):
    """The chosen waves, shortened (from the end) until the clients with two or more scores are
    at least as many as the model's free parameters: a small study (e.g. 60 clients) gets a
    model it can identify instead of none. The description says so."""
    from analysis.models.panel.dpm import MIN_WAVES, n_free_parameters
    from analysis.models.panel.waves import choose_waves, wide_panel

    waves = int(choice.n_waves)
    if waves <= MIN_WAVES:
        return choice
    _, counts = wide_panel(rows, fit.outcome, choice)
    clients = int(counts.get("clients_2plus_waves") or 0)
    shortened = waves
    while shortened > MIN_WAVES and n_free_parameters(
            shortened, equal_paths=fit.equal_paths) > clients:
        shortened -= 1
    if shortened == waves:
        return choice
    settings = dict(fit.panel)
    reduced = choose_waves(rows, fit.outcome, **{**settings, "n_waves": shortened})
    log.info("%s: %d waves instead of %d so that the model is identified", fit.label,
             shortened, waves)
    return replace(reduced, description=(
        f"{reduced.description} (the first {shortened} of the {waves} sessions that qualified, "
        "so that the model has no more parameters than clients with two or more scores)"))


def _n_therapists(rows: pd.DataFrame) -> int:
    if THERAPIST not in rows:
        return 0
    return int(rows[THERAPIST].dropna().nunique())


def _positive(value: Any) -> bool | None:
    try:
        return bool(float(value) > 0)
    except (TypeError, ValueError):
        return None


def fixed_row(term: str, values: dict[str, Any], robust: bool) -> dict[str, Any]:
    """One ``fixed`` row from the engine's summary of a lagged path.

    With robust SEs the Wald test is t with the sandwich's degrees of freedom
    (:func:`analysis.models.panel.dpm.robust_df`, Pan & Wall 2002), in ``df``; with observed
    information it is z and ``df`` is empty.

    Parameters
    ----------
    term : str
        The row's term name (``alliance_lagged`` or ``symptom_lagged``).
    values : dict
        The engine's summary of the path (``fit_dpm(...)["lagged"]`` or ``["autoregressive"]``).
    robust : bool
        Whether the fit's inference uses the sandwich (``lagged["robust"]``).

    Returns
    -------
    dict
        ``term, estimate, se, df, t, p, ci_low, ci_high, std_estimate``.

    Examples
    --------
    >>> values = {"estimate": -0.5, "se": 0.2, "p": 0.0124, "ci_lower": -0.89,
    ...           "ci_upper": -0.11, "se_robust": 0.25, "p_robust": 0.0455,
    ...           "ci_robust_lower": -0.99, "ci_robust_upper": -0.01, "df_robust": 30.0}
    >>> row = fixed_row("alliance_lagged", values, robust=True)
    >>> row["df"], round(row["t"], 2), round(row["p"], 4), round(row["ci_low"], 3)
    (30.0, -2.0, 0.0546, -1.011)
    >>> fixed_row("alliance_lagged", values, robust=False)["df"] is None
    True
    """
    use_robust = robust and values.get("se_robust") is not None
    se = values.get("se_robust") if use_robust else values.get("se")
    p = values.get("p_robust") if use_robust else values.get("p")
    low = values.get("ci_robust_lower") if use_robust else values.get("ci_lower")
    high = values.get("ci_robust_upper") if use_robust else values.get("ci_upper")
    estimate = values.get("estimate")
    z = None if se in (None, 0) or estimate is None else float(estimate) / float(se)
    df = values.get("df_robust") if use_robust else None
    if df is not None and z is not None and math.isfinite(float(df)) and float(df) > 0:
        df = float(df)
        p = float(2 * stats.t.sf(abs(z), df))
        half = float(stats.t.ppf(0.975, df)) * float(se)
        low, high = float(estimate) - half, float(estimate) + half
    else:
        df = None
    return {"term": term, "estimate": estimate, "se": se, "df": df, "t": z, "p": p,
            "ci_low": low, "ci_high": high, "std_estimate": values.get("std_estimate")}
