"""Fitting one planned model: data selection, the convergence protocol, tidy JSON-able results.

One Snakemake job fits one ``(outcome, model, analysis)`` from :func:`analysis.models.specs.
planned_fits` with :func:`fit_planned_model`. Inputs are the ``derived`` frame (session rows),
the ``episodes`` frame (M4) and the ``administrations`` frame (R2, item data), plus the checked
config. The job selects the outcome's rows (and completers for that sensitivity analysis), drops
rows with a missing model variable explicitly and counts them, then fits by the model's kind:

- ``lmm`` (M0-M3, custom): the convergence protocol of docs/methods.md section 4 with the primary engine.
  A fit counts only when it converged by the gradient check and is not singular (see
  :mod:`analysis.models.engines`); otherwise the model is refitted with a simpler random part,
  in the order of :func:`analysis.models.specs.fallback_formulas` (drop the random slope, then
  the therapist term), each step logged and recorded in ``fallback_steps``. The final formula is
  reported beside the estimates;
- ``ols`` (M4): change ~ first score + early alliance, OLS with SEs clustered by therapist;
- ``rm_corr`` (R1): repeated-measures correlation of alliance and symptoms within clients,
  beside the meta-analytic r = .278;
- ``alpha`` (R2): Cronbach's alpha at each client's first complete administration;
- ``icc`` (R3): the therapist ICC from a random-intercept model.

The result is a JSON-able dict: ``spec``, ``data`` (row accounting), ``fixed`` and ``random``
(lists of records with the columns of :mod:`analysis.models.engines`; ``fixed`` adds
``std_estimate``), ``fit`` (fit information, final formula and fallback steps) and, by kind,
``rm_corr``, ``reliability``, ``icc`` or ``early_alliance`` rows. :func:`cross_check_fit` refits a
primary-analysis mixed model with the second engine on the same rows.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import ConfigError, DataError
from analysis.models.engines import (
    FIXED_COLUMNS,
    INTERCEPT,
    RANDOM_COLUMNS,
    EngineFit,
    get_engine,
)
from analysis.models.specs import (
    CLIENT,
    THERAPIST,
    ResolvedFit,
    formula_variables,
    resolve_fit,
    split_formula,
)

log = logging.getLogger(__name__)

#: Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4): r = .278 (.256-.299).
META_ANALYTIC_R = 0.278
META_ANALYTIC_CI = (0.256, 0.299)

#: Errors an engine raises when the data cannot support a model (too few groups, rank
#: deficiency, non-finite values); turned into one DataError when no simpler model fits either.
FIT_ERRORS = (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


# ---------------------------------------------------------------------------------------------
# Data selection


def require_columns(frame: pd.DataFrame, columns: list[str], file: str, needed_by: str) -> None:
    """Raise a DataError naming the file and the missing columns, if any are missing."""
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(
            f"{file}: column(s) {', '.join(missing)} needed by {needed_by} are missing; rerun "
            "the step of the pipeline that writes it."
        )


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
# Convergence protocol


def acceptable(fit: EngineFit) -> bool:
    """A fit is reported as is only if it converged (gradient check) and is not singular."""
    return bool(fit.info["converged"]) and not bool(fit.info["singular"])


def fit_with_fallback(
    data: pd.DataFrame,
    formula: str,
    fallbacks: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    reml: bool = True,
    engine: str = "mixedlm",
    label: str = "",
) -> tuple[EngineFit, list[dict[str, Any]]]:
    """Fit ``formula``; while the fit is singular or not converged, try the next fallback.

    Parameters
    ----------
    data : DataFrame
        Model rows without missing values.
    formula : str
        The requested lme4 formula.
    fallbacks : sequence of (step, formula)
        Simpler formulas in the order to try them
        (:func:`analysis.models.specs.fallback_formulas`).
    reml : bool
        REML (True) or ML.
    engine : str
        Engine name.
    label : str
        Names the fit in log messages (outcome, model, analysis).

    Returns
    -------
    (EngineFit, list of dict)
        The first acceptable fit, or the last one tried when none is; and every attempt
        (``step, formula, converged, singular, gradient_norm, error``), in order.

    Raises
    ------
    DataError
        When every attempt failed with an error.
    """
    fitter = get_engine(engine)
    attempts: list[dict[str, Any]] = []
    final: EngineFit | None = None
    for step, candidate in [("requested", formula), *fallbacks]:
        try:
            fit = fitter.fit(candidate, data, reml=reml)
        except FIT_ERRORS as error:
            attempts.append({"step": step, "formula": candidate, "converged": False,
                             "singular": None, "gradient_norm": None, "error": str(error)})
            log.warning("%s: %s fit failed (%s); trying a simpler random part", label, step, error)
            continue
        final = fit
        attempts.append({"step": step, "formula": candidate,
                         "converged": bool(fit.info["converged"]),
                         "singular": bool(fit.info["singular"]),
                         "gradient_norm": fit.info["gradient_norm"], "error": None})
        if acceptable(fit):
            log.info("%s: %s fit accepted: %s", label, step, candidate)
            break
        problem = "singular" if fit.info["singular"] else "not converged"
        log.warning(
            "%s: %s fit is %s (max|scaled gradient| = %.3g): %s", label, step, problem,
            fit.info["gradient_norm"], candidate,
        )
    if final is None:
        raise DataError(
            f"{label}: the model could not be fitted with any random part "
            f"({'; '.join(attempt['error'] for attempt in attempts)}). Check that the outcome "
            "has enough clients with repeated scores and more than one therapist."
        )
    if not acceptable(final):
        log.warning("%s: no simpler random part is left; reporting %s with its flags",
                    label, final.formula)
    return final, attempts


def fallback_steps_taken(attempts: list[dict[str, Any]], final_formula: str) -> list[str]:
    """The fallback steps applied before the reported fit (empty when the request was kept)."""
    taken = []
    for attempt in attempts:
        if attempt["step"] != "requested":
            taken.append(attempt["step"])
        if attempt["formula"] == final_formula and attempt["error"] is None:
            break
    return taken


# ---------------------------------------------------------------------------------------------
# Standardised coefficients


def standardised_estimates(
    fixed: pd.DataFrame, data: pd.DataFrame, response: str
) -> pd.Series:
    """beta x SD(x) / SD(y) for each fixed effect (NaN for the intercept and factor terms).

    SDs are sample SDs over the model rows. A within-client term's x is its within column, so
    its SD is the SD of the within part (docs/methods.md section 4). An interaction ``a:b`` uses the SD
    of the product.
    """
    sd_response = float(data[response].std())
    values = []
    for term, estimate in zip(fixed["term"], fixed["estimate"]):
        predictor = _term_values(term, data)
        if predictor is None or not sd_response:
            values.append(float("nan"))
        else:
            values.append(float(estimate) * float(predictor.std()) / sd_response)
    return pd.Series(values, index=fixed.index, dtype="float64")


def _term_values(term: str, data: pd.DataFrame) -> pd.Series | None:
    if term == INTERCEPT:
        return None
    parts = term.split(":")
    if not all(part in data.columns and pd.api.types.is_numeric_dtype(data[part])
               for part in parts):
        return None
    values = data[parts[0]].astype(float)
    for part in parts[1:]:
        values = values * data[part].astype(float)
    return values


# ---------------------------------------------------------------------------------------------
# The job


def fit_planned_model(
    derived: pd.DataFrame,
    episodes: pd.DataFrame | None,
    outcome: str,
    model: str,
    analysis: str,
    config: dict,
    administrations: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Fit one planned ``(outcome, model, analysis)`` and return a JSON-able result.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``.
    episodes : DataFrame or None
        ``episodes.parquet`` (needed by M4).
    outcome, model, analysis : str
        One job of :func:`analysis.models.specs.planned_fits`.
    config : dict
        The checked config.
    administrations : DataFrame or None
        ``administrations.parquet`` (needed by R2).

    Returns
    -------
    dict
        Keys ``outcome, model, analysis, spec, data, fixed, random, fit`` and, by kind,
        ``rm_corr``, ``reliability``, ``icc`` or ``early_alliance`` (lists of records).
    """
    resolved = resolve_fit(config, outcome, model, analysis)
    label = f"{model} for {outcome} ({analysis})"
    log.info("fitting %s: %s", label, resolved.formula or resolved.kind)
    result: dict[str, Any] = {
        "outcome": outcome,
        "model": model,
        "analysis": analysis,
        "spec": resolved.as_dict(),
        "fixed": [],
        "random": [],
        "fit": {},
        "data": {},
    }
    if resolved.kind in ("lmm", "icc"):
        result.update(_fit_mixed(derived, resolved, label))
    elif resolved.kind == "ols":
        if episodes is None:
            raise DataError(f"{label} needs episodes.parquet")
        result.update(fit_early_alliance(derived, episodes, resolved))
    elif resolved.kind == "rm_corr":
        result.update(repeated_measures_correlation(derived, resolved.outcome, config))
    elif resolved.kind == "alpha":
        if administrations is None:
            raise DataError(f"{label} needs administrations.parquet")
        result.update(reliability(administrations, resolved.outcome, config))
    return _json_ready(result)


def _fit_mixed(derived: pd.DataFrame, resolved: ResolvedFit, label: str) -> dict[str, Any]:
    data, accounting = select_model_rows(derived, resolved)
    final, attempts = fit_with_fallback(
        data, resolved.formula or "", resolved.fallbacks, reml=resolved.reml, label=label
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
        "requested_formula": resolved.formula,
        "fallback_steps": steps,
        "attempts": attempts,
    }
    out: dict[str, Any] = {
        "data": accounting,
        "fixed": _records(fixed),
        "random": _records(final.random),
        "fit": fit_info,
    }
    if resolved.kind == "icc":
        out["icc"] = [therapist_icc(final.random, resolved.outcome, final.info)]
    return out


def therapist_icc(random: pd.DataFrame, outcome: str, info: dict[str, Any]) -> dict[str, Any]:
    """The therapist ICC var_T / (var_T + var_client + var_residual) from a random-effects frame.

    Also the client share (var_client over the same total) and the three variances. A singular
    fit with a therapist variance of 0 gives an ICC of 0: the boundary estimate, flagged.
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


# ---------------------------------------------------------------------------------------------
# M4: early alliance and pre-post change


def early_alliance_rows(
    derived: pd.DataFrame, episodes: pd.DataFrame, outcome: str,
    completers_min_sessions: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per client with an episode outcome: change, first score, early alliance, therapist.

    Episodes need ``n_scored >= 2``; ``alliance_early`` and ``n_sessions`` are client-level
    columns of ``derived``. Rows missing any of them or the therapist are dropped and counted.
    """
    needed = ["client_id", "therapist_id", "outcome", "n_scored", "first_score", "change"]
    require_columns(episodes, needed, "episodes.parquet", "model M4")
    require_columns(derived, ["outcome", "client_id", "alliance_early", "n_sessions"],
                    "derived.parquet", "model M4")
    rows = episodes.loc[episodes["outcome"] == outcome, needed]
    accounting: dict[str, Any] = {"n_episodes": int(len(rows))}
    with_outcome = rows["n_scored"] >= 2
    accounting["n_episodes_fewer_than_2_scores"] = int((~with_outcome).sum())
    rows = rows.loc[with_outcome]
    client_level = (
        derived.loc[derived["outcome"] == outcome, ["client_id", "alliance_early", "n_sessions"]]
        .sort_values(["client_id"], kind="stable")
        .groupby("client_id", sort=True)
        .agg(alliance_early=("alliance_early", "first"), n_sessions=("n_sessions", "max"))
        .reset_index()
    )
    rows = rows.merge(client_level, on="client_id", how="left", validate="one_to_one")
    accounting["n_not_completers"] = 0
    if completers_min_sessions is not None:
        completers = rows["n_sessions"] >= completers_min_sessions
        accounting["n_not_completers"] = int((~completers).sum())
        rows = rows.loc[completers]
    variables = ["change", "first_score", "alliance_early", "therapist_id"]
    missing_values = rows[variables].isna()
    accounting["missing_by_variable"] = {
        name: int(count) for name, count in missing_values.sum().items() if count
    }
    incomplete = missing_values.any(axis=1)
    accounting["n_rows_missing"] = int(incomplete.sum())
    rows = rows.loc[~incomplete].sort_values("client_id", kind="stable").reset_index(drop=True)
    accounting["n_obs"] = int(len(rows))
    return rows, accounting


def fit_early_alliance(
    derived: pd.DataFrame, episodes: pd.DataFrame, resolved: ResolvedFit
) -> dict[str, Any]:
    """M4: OLS ``change ~ first_score + alliance_early`` with SEs clustered by therapist.

    Inference uses t with G - 1 df (G = therapists), statsmodels' small-sample convention for
    cluster-robust SEs.
    """
    import statsmodels.formula.api as smf

    data, accounting = early_alliance_rows(
        derived, episodes, resolved.outcome, resolved.completers_min_sessions
    )
    n_clusters = int(data["therapist_id"].nunique())
    if len(data) < 4 or n_clusters < 2:
        raise DataError(
            f"M4 for {resolved.outcome} ({resolved.analysis}): {len(data)} episodes with a change "
            f"score and early alliance, from {n_clusters} therapist(s); at least 4 episodes and "
            "2 therapists are needed for clustered standard errors."
        )
    codes = pd.factorize(data["therapist_id"].astype(str), sort=True)[0]
    result = smf.ols(resolved.formula or "", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    confidence = result.conf_int(alpha=0.05)
    fixed = pd.DataFrame(
        {
            "term": [INTERCEPT if name == "Intercept" else str(name)
                     for name in result.params.index],
            "estimate": result.params.to_numpy(dtype=float),
            "se": result.bse.to_numpy(dtype=float),
            "df": float(n_clusters - 1),
            "t": result.tvalues.to_numpy(dtype=float),
            "p": result.pvalues.to_numpy(dtype=float),
            "ci_low": confidence.iloc[:, 0].to_numpy(dtype=float),
            "ci_high": confidence.iloc[:, 1].to_numpy(dtype=float),
        }
    )
    response = split_formula(resolved.formula or "")[0]
    fixed["std_estimate"] = standardised_estimates(fixed, data, response)
    info = {
        "engine": "statsmodels OLS (cluster-robust by therapist)",
        "reml": None,
        "formula": resolved.formula,
        "requested_formula": resolved.formula,
        "fallback_steps": [],
        "attempts": [],
        "reml_criterion": float("nan"),
        "deviance": float("nan"),
        "loglik": float(result.llf),
        "aic": float(result.aic),
        "bic": float(result.bic),
        "optimizer_converged": True,
        "converged": True,  # a least-squares solution has no iterative optimisation
        "singular": False,
        "gradient_norm": float("nan"),
        "hessian_positive_definite": None,
        "optimizer": "least squares",
        "n_obs": int(result.nobs),
        "n_clients": int(data["client_id"].nunique()),
        "n_therapists": n_clusters,
        "r_squared": float(result.rsquared),
    }
    early = fixed.loc[fixed["term"] == "alliance_early"].iloc[0]
    summary = {
        "outcome": resolved.outcome,
        "analysis": resolved.analysis,
        "estimate": float(early["estimate"]),
        "se": float(early["se"]),
        "df": float(early["df"]),
        "t": float(early["t"]),
        "p": float(early["p"]),
        "ci_low": float(early["ci_low"]),
        "ci_high": float(early["ci_high"]),
        "std_estimate": float(early["std_estimate"]),
        "r_squared": float(result.rsquared),
        "n_episodes": int(result.nobs),
        "n_therapists": n_clusters,
        "n_episodes_fewer_than_2_scores": accounting["n_episodes_fewer_than_2_scores"],
        "n_rows_missing": accounting["n_rows_missing"],
    }
    return {"data": accounting, "fixed": _records(fixed), "random": [], "fit": info,
            "early_alliance": [summary]}


# ---------------------------------------------------------------------------------------------
# R1: repeated-measures correlation


def expected_sign(outcome: str, config: dict) -> int:
    """-1 when alliance and outcome point in opposite directions (alliance up, symptoms down)."""
    from analysis.instruments import build_registry, get_instrument

    registry = build_registry(config.get("instruments"))
    analysis = config.get("analysis", {})
    alliance = get_instrument(registry, analysis.get("alliance", "wai_sr"), "analysis.alliance")
    target = get_instrument(registry, outcome, "analysis.outcomes")
    return 1 if alliance.direction == target.direction else -1


def repeated_measures_correlation(
    derived: pd.DataFrame, outcome: str, config: dict
) -> dict[str, Any]:
    """R1: ``pingouin.rm_corr`` of alliance and symptom scores within clients.

    Uses sessions with both scores, from clients with at least two such sessions (a client with
    one contributes nothing within-client). Reported beside the meta-analytic r = .278
    (Flückiger et al., 2018) signed by the expected direction: negative when higher symptom
    scores are worse.
    """
    import pingouin

    columns = ["client_id", "alliance_score", "symptom_score"]
    require_columns(derived, ["outcome", *columns], "derived.parquet", "R1 (rm_corr)")
    rows = derived.loc[derived["outcome"] == outcome, columns]
    complete = rows.dropna()
    per_client = complete.groupby("client_id")["client_id"].transform("size")
    used = complete.loc[per_client >= 2].copy()
    accounting = {
        "n_rows_outcome": int(len(rows)),
        "n_rows_missing": int(len(rows) - len(complete)),
        "n_rows_single_session": int((per_client < 2).sum()),
        "n_obs": int(len(used)),
    }
    n_clients = int(used["client_id"].nunique())
    if n_clients < 3:
        raise DataError(
            f"R1 for {outcome}: only {n_clients} client(s) have alliance and {outcome} scores at "
            "two or more sessions; the repeated-measures correlation needs at least 3."
        )
    used["client_id"] = used["client_id"].astype(str)
    table = pingouin.rm_corr(data=used, x="alliance_score", y="symptom_score",
                             subject="client_id")
    r = float(_pingouin_value(table, "r"))
    dof = int(_pingouin_value(table, "dof"))
    # pingouin rounds its CI to 2 decimals; the same Fisher-z interval is recomputed with more.
    ci = np.asarray(
        pingouin.compute_esci(stat=r, nx=dof + 2, eftype="pearson", decimals=8), dtype=float
    )
    sign = expected_sign(outcome, config)
    row = {
        "outcome": outcome,
        "r": r,
        "ci_low": float(ci[0]),
        "ci_high": float(ci[1]),
        "p": float(_pingouin_value(table, "pval")),
        "dof": dof,
        "n": n_clients,
        "n_obs": int(len(used)),
        "expected_sign": sign,
        "meta_r": sign * META_ANALYTIC_R,
        "meta_ci_low": sign * (META_ANALYTIC_CI[1] if sign < 0 else META_ANALYTIC_CI[0]),
        "meta_ci_high": sign * (META_ANALYTIC_CI[0] if sign < 0 else META_ANALYTIC_CI[1]),
        "sign_as_expected": bool(np.sign(r) == sign),
    }
    return {"data": accounting, "rm_corr": [row]}


def _pingouin_value(table: pd.DataFrame, name: str) -> Any:
    """A value of a one-row pingouin table by its column name, whatever the version's spelling.

    pingouin has renamed columns across versions (``pval`` / ``p_val``, ``CI95%`` / ``CI95``):
    names are compared without case, underscores and ``%``.
    """
    def normal(text: str) -> str:
        return str(text).lower().replace("_", "").replace("%", "").replace("-", "")

    for column in table.columns:
        if normal(column) == normal(name):
            return table[column].iloc[0]
    raise KeyError(f"pingouin result has no column like {name!r}: {list(table.columns)}")


# ---------------------------------------------------------------------------------------------
# R2: reliability


def reliability(administrations: pd.DataFrame, instrument_key: str, config: dict) -> dict[str, Any]:
    """R2: Cronbach's alpha (with 95% CI) at each client's first complete administration.

    The item matrix comes from :func:`analysis.scoring.cronbach_alpha_input` (reverse-keyed
    items already reversed); the alpha and its CI from :func:`pingouin.cronbach_alpha`.
    """
    import pingouin

    from analysis.instruments import build_registry, get_instrument
    from analysis.scoring import cronbach_alpha_input

    registry = build_registry(config.get("instruments"))
    instrument = get_instrument(registry, instrument_key, "analysis.outcomes")
    matrix = cronbach_alpha_input(administrations, instrument)
    items = matrix[instrument.item_columns]
    n_clients = int(len(items))
    row = {
        "instrument": instrument.key,
        "label": instrument.label,
        "n_items": instrument.n_items,
        "n": n_clients,
        "alpha": float("nan"),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
    }
    if n_clients >= 3 and instrument.n_items >= 2:
        alpha, ci = pingouin.cronbach_alpha(data=items, ci=0.95)
        row.update({"alpha": float(alpha), "ci_low": float(ci[0]), "ci_high": float(ci[1])})
    else:
        log.warning("R2 for %s: %d complete administration(s), alpha needs at least 3",
                    instrument.key, n_clients)
    return {"data": {"n_obs": n_clients}, "reliability": [row]}


# ---------------------------------------------------------------------------------------------
# Engine cross-check


def cross_check_fit(
    derived: pd.DataFrame, fit: dict[str, Any], config: dict, engine: str = "statsmodels"
) -> dict[str, Any]:
    """Refit a primary-analysis mixed model with a second engine and compare fixed effects.

    The final formula of ``fit`` (after any fallback) is refitted on the same rows. The relative
    difference of an estimate is ``|a - b| / max(|a|, SE_a)``: scaled by the estimate, or by its
    standard error when the estimate is near zero, so differences far below the estimate's
    precision do not count. SEs are compared as ``|SE_a - SE_b| / SE_a``.

    Returns
    -------
    dict
        ``outcome, model, analysis, engine, expressible, reason, n_clients, n_terms,
        max_abs_diff, max_rel_diff, max_abs_se_diff, max_rel_se_diff, flag, se_flag`` and
        ``terms`` (per-term records). ``flag`` is true when ``max_rel_diff`` exceeds
        ``models.agreement_tolerance``; when the engine cannot express the model, or the model
        has more clients than ``models.cross_check_max_clients``, the numbers are NaN and
        ``reason`` says why.
    """
    models_config = config.get("models", {})
    tolerance = float(models_config.get("agreement_tolerance", 1e-3))
    max_clients = int(models_config.get("cross_check_max_clients", 5000))
    resolved = resolve_fit(config, fit["outcome"], fit["model"], fit["analysis"])
    formula = fit["fit"]["formula"]
    out: dict[str, Any] = {
        "outcome": fit["outcome"],
        "model": fit["model"],
        "analysis": fit["analysis"],
        "engine": engine,
        "formula": formula,
        "n_clients": fit["fit"]["n_clients"],
        "n_terms": 0,
        "expressible": False,
        "reason": "",
        "max_abs_diff": float("nan"),
        "max_rel_diff": float("nan"),
        "max_abs_se_diff": float("nan"),
        "max_rel_se_diff": float("nan"),
        "flag": False,
        "se_flag": False,
        "tolerance": tolerance,
        "terms": [],
    }
    if fit["fit"]["n_clients"] > max_clients:
        out["reason"] = (
            f"{fit['fit']['n_clients']} clients exceed models.cross_check_max_clients "
            f"({max_clients})"
        )
        return _json_ready(out)
    data, _ = select_model_rows(derived, resolved)
    expressible, reason = get_engine(engine).can_express(formula, data)
    if not expressible:
        out["reason"] = reason
        return _json_ready(out)
    log.info("cross-checking %s for %s with %s: %s", fit["model"], fit["outcome"], engine,
             formula)
    other = get_engine(engine).fit(formula, data, reml=resolved.reml)
    primary = pd.DataFrame(fit["fixed"])[["term", "estimate", "se"]]
    merged = primary.merge(other.fixed[["term", "estimate", "se"]], on="term",
                           suffixes=("_a", "_b"), how="inner")
    scale = np.maximum(merged["estimate_a"].abs(), merged["se_a"])
    merged["abs_diff"] = (merged["estimate_a"] - merged["estimate_b"]).abs()
    merged["rel_diff"] = merged["abs_diff"] / scale
    merged["abs_se_diff"] = (merged["se_a"] - merged["se_b"]).abs()
    merged["rel_se_diff"] = merged["abs_se_diff"] / merged["se_a"]
    out.update(
        {
            "expressible": True,
            "n_terms": int(len(merged)),
            "max_abs_diff": float(merged["abs_diff"].max()),
            "max_rel_diff": float(merged["rel_diff"].max()),
            "max_abs_se_diff": float(merged["abs_se_diff"].max()),
            "max_rel_se_diff": float(merged["rel_se_diff"].max()),
            "other_converged": bool(other.info["converged"]),
            "terms": _records(merged),
        }
    )
    out["flag"] = bool(out["max_rel_diff"] > tolerance)
    out["se_flag"] = bool(out["max_rel_se_diff"] > tolerance)
    if out["flag"]:
        log.warning("%s for %s: engines differ by %.3g (relative) > %.3g", fit["model"],
                    fit["outcome"], out["max_rel_diff"], tolerance)
    return _json_ready(out)


# ---------------------------------------------------------------------------------------------
# JSON


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        # JSON has no NaN or infinity; both are written as null (read back as NaN).
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _json_ready(result: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values only (NaN as null) so the fit files are valid, stable JSON."""
    return _plain(result)


__all__ = [
    "FIXED_COLUMNS",
    "RANDOM_COLUMNS",
    "acceptable",
    "cross_check_fit",
    "early_alliance_rows",
    "fit_early_alliance",
    "fit_planned_model",
    "fit_with_fallback",
    "reliability",
    "repeated_measures_correlation",
    "select_model_rows",
    "standardised_estimates",
    "therapist_icc",
]
