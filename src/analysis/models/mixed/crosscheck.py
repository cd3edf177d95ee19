"""The engine cross-check: a primary mixed-model fit refitted by a second, independent engine.

The final formula of a primary fit (after the convergence protocol) is refitted with
``statsmodels`` ``MixedLM`` on the same model rows, and the fixed effects are compared term by
term. Inputs are the model rows (as :func:`analysis.models.mixed.fitting.select_model_rows` returns
them), the primary fit's result dict and plain settings (REML, tolerance, size cap); the output
is one JSON-able dict per fit for the engine-agreement table.

Estimates: the relative difference of a term is ``|a - b| / max(|a|, SE_a)``, scaled by the
estimate, or by its standard error when the estimate is near zero, so that differences far below
the estimate's precision do not count.

Standard errors are compared like with like. lme4 (and the primary engine) report SEs
conditional on the variance estimates, ``sigma^2 (X' V^-1 X)^-1``; statsmodels' own SEs come
from the joint Hessian of fixed and covariance parameters, which differ by about 25% for M2's
lagged outcome even when both engines agree on every estimate. The statsmodels engine therefore
supplies conditional SEs computed at its own variance estimates
(:func:`analysis.models.mixed.engines.conditional_standard_errors`), which are compared; its
joint-Hessian SEs are listed per term (``se_joint``) and not flagged.

Each flag names its term: ``flag_term`` (largest relative difference of an estimate) and
``se_flag_term`` (of an SE).

statsmodels fits crossed clients and therapists exactly, as variance components over the
connected blocks of the design, but a block joined by crossing holds every client and therapist
in it and statsmodels' cost grows steeply with its size; besides the cap on clients, a cap on the
largest block (:data:`MAX_BLOCK_LEVELS`) skips refits that would take minutes and gigabytes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from analysis.models.mixed.engines import get_engine, largest_block_levels
from analysis.models.mixed.protocol import FIT_ERRORS
from analysis.models.mixed.records import json_ready, records

log = logging.getLogger(__name__)

#: Default largest block statsmodels is asked to fit, in random-effect columns (clients plus
#: therapists of one connected block when they are crossed). Measured on 2 cores: 1,100 columns
#: 26 s CPU and 0.8 GB; 2,200 columns 86 s and 2.8 GB; 5,250 columns about 10 min and 18.7 GB.
MAX_BLOCK_LEVELS = 2000

#: How SEs are compared (a column of the engine-agreement table).
SE_COMPARISON = (
    "conditional on each engine's variance estimates, sigma^2 (X' V^-1 X)^-1, in both "
    "engines; statsmodels' joint-Hessian SEs are listed as se_joint, not compared"
)


def cross_check_fit(
    rows: pd.DataFrame,
    fit: dict[str, Any],
    reml: bool,
    tolerance: float,
    max_clients: int,
    engine: str = "statsmodels",
    max_block_levels: int | None = MAX_BLOCK_LEVELS,
) -> dict[str, Any]:
    """Refit a primary mixed-model fit with a second engine and compare the fixed effects.

    Parameters
    ----------
    rows : DataFrame
        The model rows the primary fit used (every model variable present).
    fit : dict
        The primary fit's result: keys ``outcome``, ``model``, ``analysis``, ``fixed`` (records
        with ``term, estimate, se``) and ``fit`` (with ``formula``, the final formula, and
        ``n_clients``).
    reml : bool
        REML (True) or ML, as the primary fit.
    tolerance : float
        Largest relative difference accepted (``models.agreement_tolerance``).
    max_clients : int
        Fits with more clients are not refitted (``models.cross_check_max_clients``).
    engine : str
        The second engine.
    max_block_levels : int or None
        For statsmodels: fits whose largest independent block has more random-effect columns
        are not refitted (:func:`analysis.models.mixed.engines.largest_block_levels`; crossed designs
        form one large block, and statsmodels' cost grows steeply with it). None: no limit.

    Returns
    -------
    dict
        ``outcome, model, analysis, engine, formula, n_clients, n_terms, expressible, reason,
        max_abs_diff, max_rel_diff, max_abs_se_diff, max_rel_se_diff, flag, se_flag,
        flag_term, se_flag_term, se_comparison, tolerance, terms`` and, when refitted,
        ``other_converged``. ``flag`` (``se_flag``) is true when ``max_rel_diff``
        (``max_rel_se_diff``) exceeds ``tolerance``; ``flag_term`` and ``se_flag_term`` name
        the term with the largest relative difference (the term behind a flag). ``terms`` has
        one record per term: ``term, estimate_a, se_a, estimate_b, se_b, se_joint, abs_diff,
        rel_diff, abs_se_diff, rel_se_diff`` (``a`` primary, ``b`` second engine). When the
        engine cannot express the model, or it has more than ``max_clients`` clients, the
        numbers are null and ``reason`` says why; so too when the largest block exceeds
        ``max_block_levels`` or the second engine fails with an error (``expressible`` is then
        true).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.fitting import fit_planned_model, select_model_rows
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> from analysis.simulate.examples import example_derived
    >>> plan = plan_fits(ModelSettings(run=("M2",)), BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> job = find_fit(plan, "phq9", "M2", "primary")
    >>> derived = example_derived()
    >>> rows, _ = select_model_rows(derived, job)
    >>> check = cross_check_fit(rows, fit_planned_model(derived, job), reml=True, tolerance=0.01,
    ...                         max_clients=500)
    >>> check["engine"], check["expressible"], check["flag"], check["max_rel_diff"] < 0.001
    ('statsmodels', True, False, True)
    >>> pd.DataFrame(check["terms"])[["term", "estimate_a", "estimate_b"]].round(3)
                     term  estimate_a  estimate_b
    0         (Intercept)       9.267       9.267
    1       symptom_score       0.415       0.415
    2     alliance_within       0.598       0.598
    3  alliance_between_c      -0.606      -0.606
    4             session      -0.427      -0.427
    """
    formula = fit["fit"]["formula"]
    n_clients = int(fit["fit"]["n_clients"])
    out: dict[str, Any] = {
        "outcome": fit["outcome"],
        "model": fit["model"],
        "analysis": fit["analysis"],
        "engine": engine,
        "formula": formula,
        "n_clients": n_clients,
        "n_terms": 0,
        "expressible": False,
        "reason": "",
        "max_abs_diff": float("nan"),
        "max_rel_diff": float("nan"),
        "max_abs_se_diff": float("nan"),
        "max_rel_se_diff": float("nan"),
        "flag": False,
        "se_flag": False,
        "flag_term": None,
        "se_flag_term": None,
        "se_comparison": SE_COMPARISON,
        "tolerance": float(tolerance),
        "terms": [],
    }
    if n_clients > max_clients:
        out["reason"] = (
            f"{n_clients} clients exceed models.cross_check_max_clients ({max_clients})"
        )
        return json_ready(out)
    second = get_engine(engine)
    expressible, reason = second.can_express(formula, rows)
    if not expressible:
        out["reason"] = reason
        return json_ready(out)
    out["expressible"] = True
    if engine == "statsmodels" and max_block_levels is not None:
        levels = largest_block_levels(formula, rows)
        if levels > max_block_levels:
            out["reason"] = (
                f"the largest independent block has {levels} random-effect levels (clients and "
                f"therapists joined by crossing), more than {max_block_levels}: too slow and "
                "memory-hungry for statsmodels"
            )
            return json_ready(out)
    log.info("cross-checking %s for %s with %s: %s", fit["model"], fit["outcome"], engine,
             formula)
    try:
        other = second.fit(formula, rows, reml=reml)
    except FIT_ERRORS as error:
        out["reason"] = f"{engine} could not fit the model: {error}"
        log.warning("%s for %s: %s", fit["model"], fit["outcome"], out["reason"])
        return json_ready(out)
    merged = compare_fixed_effects(pd.DataFrame(fit["fixed"]), other.fixed,
                                   other.info.get("se_joint") or {})
    largest = merged.loc[merged["rel_diff"].idxmax()] if len(merged) else None
    largest_se = merged.loc[merged["rel_se_diff"].idxmax()] if len(merged) else None
    out.update(
        {
            "expressible": True,
            "n_terms": int(len(merged)),
            "max_abs_diff": float(merged["abs_diff"].max()),
            "max_rel_diff": float(merged["rel_diff"].max()),
            "max_abs_se_diff": float(merged["abs_se_diff"].max()),
            "max_rel_se_diff": float(merged["rel_se_diff"].max()),
            "flag_term": None if largest is None else str(largest["term"]),
            "se_flag_term": None if largest_se is None else str(largest_se["term"]),
            "other_converged": bool(other.info["converged"]),
            "terms": records(merged),
        }
    )
    out["flag"] = bool(out["max_rel_diff"] > tolerance)
    out["se_flag"] = bool(out["max_rel_se_diff"] > tolerance)
    if out["flag"]:
        log.warning("%s for %s: engines differ by %.3g (relative) > %.3g, largest for %s",
                    fit["model"], fit["outcome"], out["max_rel_diff"], tolerance,
                    out["flag_term"])
    if out["se_flag"]:
        log.warning("%s for %s: conditional SEs differ by %.3g (relative) > %.3g, largest "
                    "for %s", fit["model"], fit["outcome"], out["max_rel_se_diff"], tolerance,
                    out["se_flag_term"])
    return json_ready(out)


def compare_fixed_effects(
    primary: pd.DataFrame, other: pd.DataFrame, se_joint: dict[str, float] | None = None
) -> pd.DataFrame:
    """Term-by-term differences of two engines' fixed effects (terms both have, primary order).

    Parameters
    ----------
    primary, other : DataFrame
        Columns ``term, estimate, se``.
    se_joint : dict, optional
        The second engine's joint-Hessian SEs by term, listed for information.

    Returns
    -------
    DataFrame
        ``term, estimate_a, se_a, estimate_b, se_b, se_joint, abs_diff, rel_diff, abs_se_diff,
        rel_se_diff``.

    Examples
    --------
    >>> a = pd.DataFrame({"term": ["x"], "estimate": [2.0], "se": [0.5]})
    >>> b = pd.DataFrame({"term": ["x"], "estimate": [2.002], "se": [0.4995]})
    >>> row = compare_fixed_effects(a, b).iloc[0]
    >>> round(float(row["rel_diff"]), 6), round(float(row["rel_se_diff"]), 6)
    (0.001, 0.001)
    """
    merged = primary[["term", "estimate", "se"]].merge(
        other[["term", "estimate", "se"]], on="term", suffixes=("_a", "_b"), how="inner"
    )
    merged["se_joint"] = merged["term"].map(se_joint or {}).astype(float)
    scale = np.maximum(merged["estimate_a"].abs(), merged["se_a"])
    merged["abs_diff"] = (merged["estimate_a"] - merged["estimate_b"]).abs()
    merged["rel_diff"] = merged["abs_diff"] / scale
    merged["abs_se_diff"] = (merged["se_a"] - merged["se_b"]).abs()
    merged["rel_se_diff"] = merged["abs_se_diff"] / merged["se_a"]
    return merged


__all__ = ["MAX_BLOCK_LEVELS", "SE_COMPARISON", "compare_fixed_effects", "cross_check_fit"]
