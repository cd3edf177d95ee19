"""The multiverse's table and summary: every specification's result, and the joint test.

Once every job has fitted its specifications (:mod:`analysis.models.multiverse.fit`), the
combining rule reads their results: :func:`combine_multiverse` makes ``multiverse.csv`` (one row
per planned specification, with the duplicates marked; :func:`publish_multiverse` suppresses small
counts of clients and therapists), :func:`joint_test` the joint test of each estimand's specification curve
(Simonsohn, Simmons & Nelson 2020) from the bootstrap nulls
(:mod:`analysis.models.multiverse.bootstrap`), and :func:`summarise_multiverse` the summary in
numbers. Kept apart from the fitting because it reads only the results: no model is fitted here.

Estimands. Each outcome and each lag is its own estimand (outcome x lag): the summary has one
block per estimand, and nothing is pooled over outcomes or lags (each outcome is a separate
primary hypothesis; the lag-1 and lag-2 effects are different quantities).

Counting once. Specifications that end in the same final model on the same data (the same
``fingerprint``: e.g. every "therapists accounted for" specification whose therapist variance was
0 and that fell back to the client-only formula, or a dynamic panel model whose therapist
clustering could not be used) are one analysis. The first in enumeration order is kept
(``distinct`` True), the others name it in ``duplicate_of`` and are left out of every count,
share, median and of the joint test; the summary reports the planned and the distinct numbers.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.multiverse.specifications import CHOICE_NAMES, ESTIMATORS
from analysis.models.multiverse.fit import (
    RESULT_COLUMNS,
    STATUS_FITTED,
    STATUS_INADMISSIBLE,
    STATUS_NOT_ESTIMABLE,
)
from analysis.privacy import StudyTotals, publish_counts
from analysis.settings import MultiverseSummarySettings


# ---------------------------------------------------------------------------------------------
# Combining and summarising

#: Columns of ``multiverse_summary.csv``.
SUMMARY_COLUMNS = ["outcome", "lag_gap", "estimator", "statistic", "value", "p_bootstrap",
                   "resamples"]
#: Columns of the joint test (:func:`joint_test`).
JOINT_COLUMNS = ["outcome", "lag_gap", "statistic", "observed", "null_median", "null_q95",
                 "p_bootstrap", "resamples", "n_specifications"]


def combine_multiverse(results: Iterable[Mapping[str, Any]],
                       settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse.csv``: one row per planned specification, in enumeration order.

    Parameters
    ----------
    results : iterable of dict
        Every specification's result
        (:func:`~analysis.models.multiverse.fit.fit_specifications`).
    settings : MultiverseSummarySettings
        The level (``report.alpha``) and each outcome's expected sign.

    Returns
    -------
    DataFrame
        ``index, id``, the choices and estimands (:data:`~analysis.models.multiverse.specifications.CHOICE_NAMES`;
        empty where a choice does not apply to the estimator), ``primary``, ``reproduces`` and
        :data:`~analysis.models.multiverse.fit.RESULT_COLUMNS`. ``significant_expected`` is True
        when p is below the level and the estimate has the expected sign,
        ``significant_opposite`` when p is below the level and the sign is the other one.
        ``duplicate_of`` and ``distinct``: see the module docstring (:func:`mark_duplicates`).

    Examples
    --------
    >>> from analysis.models.multiverse.specifications import enumerate_specifications
    >>> from analysis.settings import MultiverseSummarySettings
    >>> specs = enumerate_specifications({"prorating": ["lenient"], "lag_gap": [1],
    ...     "outcome": ["phq9"], "estimator": ["mlm"], "centring": ["all_sessions"],
    ...     "detrended": [False, True], "random": ["full", "minimal"], "sample": ["all"]})
    >>> fits = [(-0.8, 0.02, "f1"), (-0.8, 0.02, "f1"), (-0.5, 0.20, "f2"), (0.3, 0.60, "f3")]
    >>> results = [{"specification": spec.as_dict(), "status": "fitted", "estimate": b, "se": 0.3,
    ...             "p": p, "std_estimate": b / 4, "n_clients": 40, "n_therapists": 8,
    ...             "fingerprint": f} for spec, (b, p, f) in zip(specs, fits)]
    >>> settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
    ...                                      expected_signs={"phq9": -1})
    >>> table = combine_multiverse(results, settings)
    >>> table[["index", "estimate", "significant_expected", "distinct"]]
       index  estimate  significant_expected  distinct
    0      1      -0.8                  True      True
    1      2      -0.8                  True     False
    2      3      -0.5                 False      True
    3      4       0.3                 False      True
    >>> table.loc[1, "duplicate_of"]
    'phq9-lag1-mlm-lenient-all_sessions-raw-full-all'
    """
    rows = []
    for result in results:
        spec = result["specification"]
        row = {"index": int(spec["index"]), "id": spec["id"],
               **{name: spec.get(name) for name in CHOICE_NAMES},
               "primary": bool(spec["primary"]), "reproduces": str(spec.get("reproduces") or "")}
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
    columns = ["index", "id", *CHOICE_NAMES, "primary", "reproduces", *RESULT_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    frame = frame.sort_values("index", kind="stable").reset_index(drop=True)
    for name in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high", "std_estimate"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in ("n_obs", "n_clients", "n_therapists", "n_waves", "lag_gap"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    for name in ("converged", "singular", "simplified", "detrended"):
        frame[name] = frame[name].astype("boolean")
    for name in ("reason", "fallback_steps", "formula", "term", "fingerprint", "reproduces"):
        frame[name] = frame[name].fillna("").astype(str)
    return mark_duplicates(frame)


def mark_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """``duplicate_of`` and ``distinct``: specifications with one final model and data count once.

    Within an estimand (outcome x lag), fitted specifications with the same ``fingerprint`` (the
    final model after any simplification, and the data it was fitted to) are one analysis: the
    first in enumeration order is ``distinct``; the others name it in ``duplicate_of``. Rows that
    were not fitted are not ``distinct`` (nothing to count) and duplicate nothing.

    Parameters
    ----------
    frame : DataFrame
        The combined table (``status``, ``outcome``, ``lag_gap``, ``fingerprint``, ``id``), in
        enumeration order.

    Returns
    -------
    DataFrame
        A copy with ``duplicate_of`` (the id of the first specification with the same
        fingerprint, "" for none) and ``distinct``.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["s1", "s2", "s3", "s4"], "outcome": "phq9", "lag_gap": 1,
    ...                       "status": ["fitted", "fitted", "fitted", "not_estimable"],
    ...                       "fingerprint": ["f1", "f1", "f2", ""]})
    >>> mark_duplicates(frame)[["id", "duplicate_of", "distinct"]]
       id duplicate_of  distinct
    0  s1                   True
    1  s2           s1     False
    2  s3                   True
    3  s4                  False
    """
    out = frame.copy()
    out["duplicate_of"] = ""
    out["distinct"] = False
    fitted = (out["status"] == STATUS_FITTED) & (out["fingerprint"] != "")
    first: dict[tuple, str] = {}
    for position in np.flatnonzero(fitted.to_numpy()):
        row = out.iloc[position]
        key = (str(row["outcome"]), int(row["lag_gap"]), str(row["fingerprint"]))
        if key in first:
            out.iat[position, out.columns.get_loc("duplicate_of")] = first[key]
        else:
            first[key] = str(row["id"])
            out.iat[position, out.columns.get_loc("distinct")] = True
    out["distinct"] = out["distinct"].astype(bool)
    return out


def publish_multiverse(table: pd.DataFrame, min_cell: int, totals: StudyTotals) -> pd.DataFrame:
    """The table as published: counts of clients and therapists through
    :func:`analysis.privacy.publish_counts` ("<min_cell" below ``min_cell``, and hidden when
    their complement in the study's ``totals`` is a small cell).

    Parameters
    ----------
    table : DataFrame
        :func:`combine_multiverse`'s table.
    min_cell : int
        The smallest count of people published as a number.
    totals : StudyTotals
        The study's published totals.

    Returns
    -------
    DataFrame
        A copy with ``n_clients`` and ``n_therapists`` as published text.

    Examples
    --------
    >>> from analysis.models.multiverse.specifications import enumerate_specifications
    >>> from analysis.settings import MultiverseSummarySettings
    >>> specs = enumerate_specifications({"prorating": ["lenient"], "lag_gap": [1],
    ...     "outcome": ["phq9"], "estimator": ["mlm"], "centring": ["all_sessions"],
    ...     "detrended": [False, True], "random": ["full", "minimal"], "sample": ["all"]})
    >>> fits = [(-0.8, 0.02, "f1"), (-0.8, 0.02, "f1"), (-0.5, 0.20, "f2"), (0.3, 0.60, "f3")]
    >>> results = [{"specification": spec.as_dict(), "status": "fitted", "estimate": b, "se": 0.3,
    ...             "p": p, "std_estimate": b / 4, "n_clients": 40, "n_therapists": 8,
    ...             "fingerprint": f} for spec, (b, p, f) in zip(specs, fits)]
    >>> settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
    ...                                      expected_signs={"phq9": -1})
    >>> table = combine_multiverse(results, settings)
    >>> totals = StudyTotals(clients=45, therapists=8)
    >>> published = publish_multiverse(table, min_cell=10, totals=totals)
    >>> published[["index", "n_clients", "n_therapists"]]
       index n_clients n_therapists
    0      1       >35          <10
    1      2       >35          <10
    2      3       >35          <10
    3      4       >35          <10
    """
    return publish_counts(table, min_cell, totals)


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
    "mean_signed_z": "mean z (t) statistic, signed so that the expected direction is positive "
                     "(Stouffer-type)",
}


def joint_statistics(estimate: np.ndarray, std_estimate: np.ndarray, se: np.ndarray,
                     df: np.ndarray, signs: np.ndarray, alpha: float) -> dict[str, float]:
    """The three joint statistics over specifications (arrays over specifications, NaN = none).

    Parameters
    ----------
    estimate, std_estimate, se, df : array
        Per specification (or, in the last axis, per specification and rows for resamples); a
        df that is NaN or infinite means normal (z) inference.
    signs : array
        The expected sign of each specification's outcome.
    alpha : float
        The level of "significant".

    Returns
    -------
    dict
        :data:`JOINT_STATISTICS` keys -> values (arrays when the inputs are 2-D: one per row).

    Examples
    --------
    >>> statistics = joint_statistics(estimate=np.array([-0.8, -0.5, 0.3]),
    ...                               std_estimate=np.array([-0.2, -0.125, 0.075]),
    ...                               se=np.array([0.3, 0.3, 0.3]), df=np.array([np.inf] * 3),
    ...                               signs=np.array([-1.0, -1.0, -1.0]), alpha=0.05)
    >>> {name: round(float(value), 3) for name, value in statistics.items()}
    {'share_significant_expected': 0.333, 'median_signed_std_estimate': 0.125, 'mean_signed_z':
     1.111}
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        t = estimate / se
        df = np.where(np.isfinite(df), df, np.inf)
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


def joint_test(results: Sequence[Mapping[str, Any]], settings: MultiverseSummarySettings,
               distinct: set[str] | None = None) -> pd.DataFrame:
    """The joint test of each estimand: each statistic's bootstrap p-value.

    Parameters
    ----------
    results : sequence of dict
        The specifications' results with their ``null`` entries
        (:func:`~analysis.models.multiverse.fit.fit_specifications` with resamples).
    settings : MultiverseSummarySettings
        Level and expected signs.
    distinct : set of str, optional
        Ids of the distinct specifications (:func:`mark_duplicates`); only these enter.

    Returns
    -------
    DataFrame
        :data:`JOINT_COLUMNS`, one row per estimand (outcome x lag) and statistic; p is
        ``(1 + #{null >= observed}) / (1 + resamples)``. Empty when no specification carries a
        null.

    Notes
    -----
    Simonsohn, Simmons & Nelson (2020), Nature Human Behaviour 4, 1208-1214: the null is imposed
    in every specification and clients are resampled with replacement
    (:mod:`analysis.models.multiverse.bootstrap` says how, per estimator).

    Examples
    --------
    >>> from analysis.models.multiverse.specifications import enumerate_specifications
    >>> from analysis.settings import MultiverseSummarySettings
    >>> specs = enumerate_specifications({"prorating": ["lenient"], "lag_gap": [1],
    ...     "outcome": ["phq9"], "estimator": ["mlm"], "centring": ["all_sessions"],
    ...     "detrended": [False, True], "random": ["full", "minimal"], "sample": ["all"]})
    >>> fits = [(-0.8, 0.02, "f1"), (-0.8, 0.02, "f1"), (-0.5, 0.20, "f2"), (0.3, 0.60, "f3")]
    >>> results = [{"specification": spec.as_dict(), "status": "fitted", "estimate": b, "se": 0.3,
    ...             "p": p, "std_estimate": b / 4, "n_clients": 40, "n_therapists": 8,
    ...             "fingerprint": f} for spec, (b, p, f) in zip(specs, fits)]
    >>> settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
    ...                                      expected_signs={"phq9": -1})
    >>> rng = np.random.default_rng(5)
    >>> for result in results:
    ...     null = rng.normal(0, 0.3, size=19)
    ...     result["null"] = {"estimate": list(null), "std_estimate": list(null / 4),
    ...                       "se": [0.3] * 19, "df": None}
    >>> joint = joint_test(results, settings)
    >>> joint[["statistic", "observed", "p_bootstrap", "resamples"]].round(3)
                        statistic  observed  p_bootstrap  resamples
    0  share_significant_expected     0.500         0.05         19
    1  median_signed_std_estimate     0.162         0.05         19
    2               mean_signed_z     1.500         0.05         19
    """
    usable = [result for result in results
              if result.get("status") == STATUS_FITTED and result.get("null")
              and (distinct is None or result["specification"]["id"] in distinct)]
    rows = []
    estimands = dict.fromkeys((str(r["specification"]["outcome"]),
                               int(r["specification"]["lag_gap"])) for r in usable)
    for outcome, lag in estimands:
        members = [r for r in usable if (str(r["specification"]["outcome"]),
                                         int(r["specification"]["lag_gap"])) == (outcome, lag)]
        rows.extend(_joint_rows(members, settings, outcome, lag))
    return pd.DataFrame(rows, columns=JOINT_COLUMNS)


def _number(value: Any) -> float:
    try:
        return float("nan") if value is None else float(value)
    except (TypeError, ValueError):
        return float("nan")


def _joint_rows(members: Sequence[Mapping[str, Any]], settings: MultiverseSummarySettings,
                outcome: str, lag: int) -> list[dict[str, Any]]:
    sign = settings.expected_signs.get(outcome, -1)
    signs = np.full(len(members), float(sign))

    def column(name: str) -> np.ndarray:
        return np.array([_number(r.get(name)) for r in members])

    observed = joint_statistics(column("estimate"), column("std_estimate"), column("se"),
                                column("df"), signs, settings.alpha)
    lengths = {len(r["null"]["estimate"]) for r in members}
    if len(lengths) != 1:
        raise DataError(f"multiverse: specifications carry different numbers of resamples "
                        f"({sorted(lengths)}); rerun the multiverse jobs")
    (count,) = lengths

    def null(name: str) -> np.ndarray:
        return np.array([[_number(v) for v in r["null"][name]] for r in members]).T

    dfs = np.tile([_number(r["null"].get("df")) for r in members], (count, 1))
    resampled = joint_statistics(null("estimate"), null("std_estimate"), null("se"), dfs,
                                 signs[None, :], settings.alpha)
    rows = []
    for name in JOINT_STATISTICS:
        values = np.asarray(resampled[name], dtype=float)
        value = float(observed[name])
        finite = values[np.isfinite(values)]
        at_least = (int(np.sum(finite >= value - 1e-12)) + (count - len(finite))
                    if math.isfinite(value) else count)
        rows.append({"outcome": outcome, "lag_gap": lag, "statistic": name, "observed": value,
                     "null_median": float(np.nanmedian(values)) if len(finite) else math.nan,
                     "null_q95": float(np.nanquantile(values, 0.95)) if len(finite) else math.nan,
                     "p_bootstrap": (1 + at_least) / (1 + count), "resamples": count,
                     "n_specifications": len(members)})
    return rows


def _block_statistics(rows_of_scope: pd.DataFrame, primary: pd.Series | None) -> dict[str, Any]:
    distinct = rows_of_scope.loc[rows_of_scope["distinct"].astype(bool)]
    fitted = rows_of_scope.loc[rows_of_scope["status"] == STATUS_FITTED]
    n = len(distinct)
    values: dict[str, Any] = {
        "n_planned": len(rows_of_scope),
        "n_fitted": len(fitted),
        "n_distinct": n,
        "n_duplicates": int(len(fitted) - n),
        "n_not_estimable": int((rows_of_scope["status"] == STATUS_NOT_ESTIMABLE).sum()),
        "n_inadmissible": int((rows_of_scope["status"] == STATUS_INADMISSIBLE).sum()),
        "n_simplified": int(distinct["simplified"].fillna(False).astype(bool).sum()),
        "n_significant_expected": int(distinct["significant_expected"].astype(bool).sum()),
        "share_significant_expected": (float(distinct["significant_expected"].astype(bool).mean())
                                       if n else np.nan),
        "n_significant_opposite": int(distinct["significant_opposite"].astype(bool).sum()),
        "median_estimate": float(distinct["estimate"].median()) if n else np.nan,
        "min_estimate": float(distinct["estimate"].min()) if n else np.nan,
        "max_estimate": float(distinct["estimate"].max()) if n else np.nan,
        "median_std_estimate": float(distinct["std_estimate"].median()) if n else np.nan,
        "min_std_estimate": float(distinct["std_estimate"].min()) if n else np.nan,
        "max_std_estimate": float(distinct["std_estimate"].max()) if n else np.nan,
    }
    if primary is not None:
        values["primary_estimate"] = (float(primary["estimate"].iloc[0]) if len(primary)
                                      else np.nan)
    return values


def summarise_multiverse(table: pd.DataFrame, joint: pd.DataFrame,
                         settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse_summary.csv``: each estimand's curve in numbers, and its joint test.

    Parameters
    ----------
    table : DataFrame
        :func:`combine_multiverse`'s table.
    joint : DataFrame
        :func:`joint_test`'s table (may be empty).
    settings : MultiverseSummarySettings
        The level and the signs.

    Returns
    -------
    DataFrame
        Long format :data:`SUMMARY_COLUMNS`: one block per estimand (``outcome``, ``lag_gap``),
        with ``estimator`` ``all`` and each estimator: the planned, fitted, distinct, duplicate,
        not estimable, inadmissible and simplified numbers; over the distinct fitted
        specifications the count and share significant in the expected direction, the count in
        the opposite direction, the median, minimum and maximum estimate (in the outcome's
        units) and standardised estimate; ``primary_estimate`` (``all`` and ``dpm``: the primary
        specification; ``mlm``: the one that reproduces M2); then, under ``all``, the joint
        statistics with their bootstrap p-values (``joint_<statistic>``).

    Examples
    --------
    >>> from analysis.models.multiverse.specifications import enumerate_specifications
    >>> from analysis.settings import MultiverseSummarySettings
    >>> specs = enumerate_specifications({"prorating": ["lenient"], "lag_gap": [1],
    ...     "outcome": ["phq9"], "estimator": ["mlm"], "centring": ["all_sessions"],
    ...     "detrended": [False, True], "random": ["full", "minimal"], "sample": ["all"]})
    >>> fits = [(-0.8, 0.02, "f1"), (-0.8, 0.02, "f1"), (-0.5, 0.20, "f2"), (0.3, 0.60, "f3")]
    >>> results = [{"specification": spec.as_dict(), "status": "fitted", "estimate": b, "se": 0.3,
    ...             "p": p, "std_estimate": b / 4, "n_clients": 40, "n_therapists": 8,
    ...             "fingerprint": f} for spec, (b, p, f) in zip(specs, fits)]
    >>> settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
    ...                                      expected_signs={"phq9": -1})
    >>> table = combine_multiverse(results, settings)
    >>> summary = summarise_multiverse(table, pd.DataFrame(columns=JOINT_COLUMNS), settings)
    >>> summary.query("estimator == 'all'").set_index("statistic")["value"].head(8)
    statistic
    n_planned                 4.0
    n_fitted                  4.0
    n_distinct                3.0
    n_duplicates              1.0
    n_not_estimable           0.0
    n_inadmissible            0.0
    n_simplified              0.0
    n_significant_expected    1.0
    Name: value, dtype: float64
    """
    out = []
    if table.empty:
        return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    for outcome, lag in dict.fromkeys(zip(table["outcome"].astype(str),
                                          table["lag_gap"].astype(int))):
        block = table.loc[(table["outcome"].astype(str) == outcome)
                          & (table["lag_gap"].astype(int) == lag)]
        estimators = [name for name in ESTIMATORS if (block["estimator"] == name).any()]
        for estimator in ["all", *estimators]:
            rows_of_scope = block if estimator == "all" else block.loc[
                block["estimator"] == estimator]
            reference = {"all": "DPM", "dpm": "DPM", "mlm": "M2"}.get(estimator)
            primary = (None if reference is None else rows_of_scope.loc[
                (rows_of_scope["reproduces"] == reference)
                & (rows_of_scope["status"] == STATUS_FITTED)])
            for name, value in _block_statistics(rows_of_scope, primary).items():
                out.append({"outcome": outcome, "lag_gap": lag, "estimator": estimator,
                            "statistic": name, "value": value, "p_bootstrap": np.nan,
                            "resamples": 0})
        if not joint.empty:
            for row in joint.loc[(joint["outcome"].astype(str) == outcome)
                                 & (joint["lag_gap"].astype(int) == lag)].to_dict("records"):
                out.append({"outcome": outcome, "lag_gap": lag, "estimator": "all",
                            "statistic": f"joint_{row['statistic']}", "value": row["observed"],
                            "p_bootstrap": row["p_bootstrap"],
                            "resamples": int(row["resamples"])})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


__all__ = [
    "JOINT_COLUMNS",
    "JOINT_STATISTICS",
    "SUMMARY_COLUMNS",
    "combine_multiverse",
    "joint_statistics",
    "joint_test",
    "mark_duplicates",
    "publish_multiverse",
    "summarise_multiverse",
]
