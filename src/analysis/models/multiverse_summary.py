"""The multiverse's table and summary: every specification's result, and the joint test.

Once every job has fitted its specifications (:mod:`analysis.models.multiverse_fit`), the
combining rule reads their results: :func:`combine_multiverse` makes ``multiverse.csv`` (one row
per specification; :func:`publish_multiverse` suppresses small client counts),
:func:`permutation_test` the joint test of the specification curve (Simonsohn, Simmons & Nelson
2020) from the permutation nulls (:mod:`analysis.models.multiverse_permutation`), and
:func:`summarise_multiverse` the summary in numbers. Kept apart from the fitting because it
reads only the results: no model is fitted here.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.multiverse import CHOICE_NAMES
from analysis.models.multiverse_fit import RESULT_COLUMNS, STATUS_FITTED
from analysis.settings import MultiverseSummarySettings


# ---------------------------------------------------------------------------------------------
# 3. Combining and summarising


def combine_multiverse(results: Iterable[Mapping[str, Any]],
                       settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse.csv``: one row per specification, in enumeration order.

    Parameters
    ----------
    results : iterable of dict
        Every specification's result
        (:func:`~analysis.models.multiverse_fit.fit_specifications`).
    settings : MultiverseSummarySettings
        The level (``report.alpha``) and each outcome's expected sign.

    Returns
    -------
    DataFrame
        ``index, id``, the choices (:data:`~analysis.models.multiverse.CHOICE_NAMES`),
        ``primary`` and :data:`~analysis.models.multiverse_fit.RESULT_COLUMNS`.
        ``significant_expected`` is True when p is below the level and the estimate has the
        expected sign (alliance up, symptoms down),
        ``significant_opposite`` when p is below the level and the sign is the other one.
        ``n_clients`` is a count of people, kept numeric here (small counts are suppressed where
        the table is published, :func:`publish_multiverse`).
    """
    rows = []
    for result in results:
        spec = result["specification"]
        row = {"index": int(spec["index"]), "id": spec["id"],
               **{name: spec[name] for name in CHOICE_NAMES}, "primary": bool(spec["primary"])}
        for name in RESULT_COLUMNS:
            value = result.get(name)
            if name == "fallback_steps":
                value = "; ".join(value or [])
            row[name] = value
        sign = settings.expected_signs.get(str(spec["outcome"]), -1)
        row["significant_expected"] = _significant(result.get("estimate"), result.get("p"),
                                                   sign, settings.alpha)
        row["significant_opposite"] = _significant(result.get("estimate"), result.get("p"),
                                                   -sign, settings.alpha)
        rows.append(row)
    columns = ["index", "id", *CHOICE_NAMES, "primary", *RESULT_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    frame = frame.sort_values("index", kind="stable").reset_index(drop=True)
    for name in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high", "std_estimate"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in ("n_obs", "n_clients", "n_therapists"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    for name in ("converged", "singular", "simplified"):
        frame[name] = frame[name].astype("boolean")
    for name in ("reason", "fallback_steps", "formula", "term"):
        frame[name] = frame[name].fillna("").astype(str)
    return frame


def publish_multiverse(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """The table as published: clients below ``min_cell`` shown as "<min_cell"."""
    from analysis.privacy import format_count

    out = table.copy()
    out["n_clients"] = [None if pd.isna(value) else format_count(int(value), min_cell)
                        for value in out["n_clients"]]
    return out


def _significant(estimate: Any, p: Any, sign: int, alpha: float) -> bool:
    try:
        estimate, p = float(estimate), float(p)
    except (TypeError, ValueError):
        return False
    return bool(math.isfinite(p) and p < alpha and np.sign(estimate) == sign)


#: Joint-test statistics (Simonsohn, Simmons & Nelson 2020), each read in the expected direction.
JOINT_STATISTICS = {
    "share_significant_expected": "share of specifications with a significant estimate in the "
                                  "expected direction",
    "median_signed_std_estimate": "median standardised estimate, signed so that the expected "
                                  "direction is positive",
    "mean_signed_z": "mean t statistic, signed so that the expected direction is positive "
                     "(Stouffer-type)",
}


def joint_statistics(estimate: np.ndarray, std_estimate: np.ndarray, se: np.ndarray,
                     df: np.ndarray, signs: np.ndarray, alpha: float) -> dict[str, float]:
    """The three joint statistics over specifications (arrays over specifications, NaN = none).

    Parameters
    ----------
    estimate, std_estimate, se, df : array
        Per specification (or, in the last axis, per specification and rows for permutations).
    signs : array
        The expected sign of each specification's outcome.
    alpha : float
        The level of "significant".

    Returns
    -------
    dict
        :data:`JOINT_STATISTICS` keys -> values (arrays when the inputs are 2-D: one per row).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        t = estimate / se
        p = 2 * stats.t.sf(np.abs(t), df)
        significant = (p < alpha) & (np.sign(estimate) == signs)
        usable = np.isfinite(t)
        n = usable.sum(axis=-1)
        share = np.where(n > 0, significant.sum(axis=-1) / np.maximum(n, 1), np.nan)
        signed_std = np.where(usable, std_estimate * signs, np.nan)
        signed_t = np.where(usable, t * signs, np.nan)
        all_missing = n == 0
        median = np.nanmedian(np.where(all_missing[..., None], 0.0, signed_std), axis=-1)
        mean_z = np.nanmean(np.where(all_missing[..., None], 0.0, signed_t), axis=-1)
    median = np.where(all_missing, np.nan, median)
    mean_z = np.where(all_missing, np.nan, mean_z)
    return {"share_significant_expected": share, "median_signed_std_estimate": median,
            "mean_signed_z": mean_z}


def permutation_test(results: Sequence[Mapping[str, Any]], settings: MultiverseSummarySettings
                     ) -> pd.DataFrame:
    """The joint test: each statistic's permutation p-value over all fitted specifications.

    Parameters
    ----------
    results : sequence of dict
        The specifications' results with their ``null`` entries
        (:func:`~analysis.models.multiverse_fit.fit_specifications` with permutations).
    settings : MultiverseSummarySettings
        Level, expected signs and the number of permutations.

    Returns
    -------
    DataFrame
        One row per statistic: ``statistic, observed, null_median, null_q95, p_permutation,
        permutations, n_specifications``; p is ``(1 + #{null >= observed}) / (1 + permutations)``
        (Phipson & Smyth 2010). Empty when no specification carries a null.

    Notes
    -----
    Simonsohn, Simmons & Nelson (2020), Nature Human Behaviour 4, 1208-1214: the specification
    curve's joint inference under the null, generated here by shuffling each client's alliance
    over their sessions (:mod:`analysis.models.multiverse_permutation` says how, and what is
    approximated).
    """
    usable = [result for result in results
              if result.get("status") == STATUS_FITTED and result.get("null")]
    if not usable:
        return pd.DataFrame(columns=["statistic", "observed", "null_median", "null_q95",
                                     "p_permutation", "permutations", "n_specifications"])
    signs = np.array([settings.expected_signs.get(r["specification"]["outcome"], -1)
                      for r in usable], dtype=float)

    def column(name: str, source: str | None = None) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in usable])

    observed = joint_statistics(column("estimate"), column("std_estimate"), column("se"),
                                column("df"), signs, settings.alpha)
    lengths = {len(r["null"]["estimate"]) for r in usable}
    if len(lengths) != 1:
        raise DataError(f"multiverse: specifications carry different numbers of permutations "
                        f"({sorted(lengths)}); rerun the multiverse jobs")
    (count,) = lengths

    def null(name: str) -> np.ndarray:
        return np.array([[np.nan if v is None else float(v) for v in r["null"][name]]
                         for r in usable]).T  # permutations x specifications

    dfs = (null("dfs") if "dfs" in usable[0]["null"]
           else np.tile([float(r["null"]["df"]) for r in usable], (count, 1)))
    permuted = joint_statistics(null("estimate"), null("std_estimate"), null("se"), dfs,
                                signs[None, :], settings.alpha)
    rows = []
    for name in JOINT_STATISTICS:
        values = np.asarray(permuted[name], dtype=float)
        value = float(observed[name])
        at_least = int(np.sum(values >= value - 1e-12)) if math.isfinite(value) else count
        rows.append({"statistic": name, "observed": value,
                     "null_median": float(np.nanmedian(values)),
                     "null_q95": float(np.nanquantile(values, 0.95)),
                     "p_permutation": (1 + at_least) / (1 + count), "permutations": count,
                     "n_specifications": len(usable)})
    return pd.DataFrame(rows)


def summarise_multiverse(table: pd.DataFrame, joint: pd.DataFrame,
                         settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse_summary.csv``: the curve in numbers, overall and per outcome, and the test.

    Parameters
    ----------
    table : DataFrame
        :func:`combine_multiverse`'s table.
    joint : DataFrame
        :func:`permutation_test`'s table (may be empty).
    settings : MultiverseSummarySettings
        The level and the signs.

    Returns
    -------
    DataFrame
        Long format ``scope, statistic, value, p_permutation, permutations``: per scope (``all``
        and each outcome) the numbers of specifications, fitted and simplified ones, the count
        and share significant in the expected and in the opposite direction, the median,
        minimum and maximum estimate (per outcome, in its units) and standardised estimate;
        then the joint statistics of ``all`` with their permutation p-values.
    """
    rows = []
    scopes = [("all", table)] + [(str(outcome), table.loc[table["outcome"] == outcome])
                                 for outcome in dict.fromkeys(table["outcome"])]
    for scope, rows_of_scope in scopes:
        fitted = rows_of_scope.loc[rows_of_scope["status"] == STATUS_FITTED]
        n = len(fitted)
        values = {
            "n_specifications": len(rows_of_scope),
            "n_fitted": n,
            "n_simplified": int(fitted["simplified"].fillna(False).astype(bool).sum()),
            "n_significant_expected": int(fitted["significant_expected"].sum()),
            "share_significant_expected": (float(fitted["significant_expected"].mean())
                                           if n else np.nan),
            "n_significant_opposite": int(fitted["significant_opposite"].sum()),
            "median_std_estimate": float(fitted["std_estimate"].median()) if n else np.nan,
            "min_std_estimate": float(fitted["std_estimate"].min()) if n else np.nan,
            "max_std_estimate": float(fitted["std_estimate"].max()) if n else np.nan,
        }
        if scope != "all":
            values.update({
                "median_estimate": float(fitted["estimate"].median()) if n else np.nan,
                "min_estimate": float(fitted["estimate"].min()) if n else np.nan,
                "max_estimate": float(fitted["estimate"].max()) if n else np.nan,
                "primary_estimate": float(fitted.loc[fitted["primary"], "estimate"].iloc[0])
                if fitted["primary"].any() else np.nan,
            })
        for name, value in values.items():
            rows.append({"scope": scope, "statistic": name, "value": value,
                         "p_permutation": np.nan, "permutations": 0})
    for row in joint.to_dict("records"):
        rows.append({"scope": "all", "statistic": f"joint_{row['statistic']}",
                     "value": row["observed"], "p_permutation": row["p_permutation"],
                     "permutations": int(row["permutations"])})
    return pd.DataFrame(rows, columns=["scope", "statistic", "value", "p_permutation",
                                       "permutations"])


__all__ = [
    "JOINT_STATISTICS",
    "combine_multiverse",
    "joint_statistics",
    "permutation_test",
    "publish_multiverse",
    "summarise_multiverse",
]
