"""R1: the repeated-measures correlation of alliance and symptoms, in closed form.

Inputs are a long frame (one row per observation) and the names of two numeric columns, a subject
column and, for the time-adjusted version, a time column; for the pipeline's R1 job, the
``derived`` frame (columns ``outcome, client_id, session, alliance_score, symptom_score``).
Outputs are plain dicts (JSON-able floats and ints).

- :func:`rm_corr`: the repeated-measures correlation of Bakdash & Marusich (2017), computed from
  values centred on each subject's mean. It equals ``pingouin.rm_corr`` (an ANCOVA with one dummy
  per subject) but needs only a few arrays of the length of the data: ``pingouin.rm_corr`` builds
  the dummy matrix, which at 91,608 clients asked for 62.5 GiB.
- :func:`rm_corr_time_adjusted`: the same after removing each subject's own linear trend over
  time from both variables, so that trends the two variables share over sessions (both improve
  as therapy goes on) do not count as association.
- :func:`repeated_measures_correlation`: the R1 job for one outcome: both versions side by side,
  beside the meta-analytic benchmark r = .278 (Flückiger et al., 2018), with the row accounting.

Neither version is the quantity of the meta-analysis, which mostly relates alliance and outcome
*between* patients; each row says in its ``compares`` field what it measures.

Only per-subject sums are formed, with :func:`numpy.bincount` over factorised subject codes:
memory and time grow with the number of rows, and nothing is ever built over subjects x rows.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError

log = logging.getLogger(__name__)

#: Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4): r = .278 (.256-.299).
META_ANALYTIC_R = 0.278
META_ANALYTIC_CI = (0.256, 0.299)

#: Level of the Fisher-z confidence interval (as ``pingouin.compute_esci``'s default).
CONFIDENCE = 0.95

#: Fewest subjects either version is computed from (``pingouin.rm_corr`` requires 3 too).
MIN_SUBJECTS = 3

#: Plain-words description of each R1 row, shown beside the estimate.
COMPARES = {
    "same_session": (
        "within-client association of alliance and symptoms at the same session, including "
        "any trend over sessions the two share; not the between-patient association of the "
        "meta-analytic r"
    ),
    "time_adjusted": (
        "within-client association of alliance and symptoms at the same session, net of each "
        "client's own linear trend over sessions; not the between-patient association of the "
        "meta-analytic r"
    ),
}

#: Columns of the ``derived`` frame the R1 job reads.
DERIVED_COLUMNS = ["outcome", "client_id", "session", "alliance_score", "symptom_score"]


# ---------------------------------------------------------------------------------------------
# The two estimators


def rm_corr(
    frame: pd.DataFrame, x: str, y: str, subject: str, *, source: str = "the data"
) -> dict[str, Any]:
    """Repeated-measures correlation of ``x`` and ``y`` within subjects, in closed form.

    With ``xc`` and ``yc`` the values centred on their subject's mean,

    ``r = sum(xc * yc) / sqrt(sum(xc**2) * sum(yc**2))``,  ``dof = N - S - 1``

    (``N`` observations, ``S`` subjects: one intercept per subject and the common slope), the
    ANCOVA formulation of Bakdash & Marusich (2017). The p-value is two-sided from
    ``t = r * sqrt(dof / (1 - r**2))`` on ``dof`` degrees of freedom (the same as the ANCOVA
    F-test of the covariate). The 95% interval is the Fisher-z interval that ``pingouin.rm_corr``
    reports, ``tanh(arctanh(r) +/- z_.975 / sqrt(n - 3))`` with ``n = dof + 2``, here unrounded.

    Rows with a missing ``x``, ``y`` or ``subject`` are dropped (listwise, as pingouin does).
    Subjects with a single observation are then dropped too: they have no within-subject
    variation, and in the ANCOVA each adds one row and one dummy, so dropping them changes
    neither ``r`` nor ``dof``. The only difference from pingouin is that they do not count
    towards the 3 subjects required.

    Parameters
    ----------
    frame : DataFrame
        One row per observation.
    x, y : str
        Numeric columns to correlate.
    subject : str
        Column identifying the subject (any hashable values).
    source : str
        Name of the data in error messages (a file name, e.g. ``"derived.parquet"``).

    Returns
    -------
    dict
        ``r, dof, p, ci_low, ci_high`` and ``n_subjects, n_obs`` (used), ``n_subjects_dropped,
        n_obs_dropped`` (single-observation subjects left out).

    Raises
    ------
    DataError
        A column is missing or not numeric, fewer than 3 subjects have 2 or more complete
        observations, or ``x`` or ``y`` does not vary within any subject.

    Notes
    -----
    Checked against ``pingouin.rm_corr`` 0.7.0 (``r``, ``dof``, ``pval`` and, unrounded, its
    ``compute_esci`` interval agree to 1e-10), which its authors checked against the R package
    ``rmcorr``; reproduces its bundled ``rm_corr`` example (r = -0.507, dof = 38).

    References
    ----------
    Bakdash, J. Z., & Marusich, L. R. (2017). Repeated measures correlation. Frontiers in
    Psychology, 8, 456. https://doi.org/10.3389/fpsyg.2017.00456

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({
    ...     "client": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d"],
    ...     "alliance": [3.0, 3.5, 4.0, 2.0, 2.2, 3.0, 4.5, 4.0, 4.8, 3.3],
    ...     "symptoms": [12.0, 10.0, 9.0, 20.0, 19.0, 15.0, 5.0, 6.0, 4.0, 8.0]})
    >>> result = rm_corr(data, "alliance", "symptoms", "client")
    >>> print(round(result["r"], 4), result["dof"], result["n_subjects_dropped"])
    -0.9527 5 1
    """
    data = _complete_rows(frame, [x, y], subject, source)
    codes, counts = _subject_codes(data[subject])
    keep = counts[codes] >= 2
    used_codes, used_counts = _recode(codes[keep], counts)
    n_obs, n_subjects = int(keep.sum()), int(used_counts.size)
    dropped = {
        "n_subjects_dropped": int((counts < 2).sum()),
        "n_obs_dropped": int(len(codes) - n_obs),
    }
    _require_subjects(n_subjects, MIN_SUBJECTS, f"{x} and {y}", 2, subject, source)
    raw = {name: data[name].to_numpy(dtype=float)[keep] for name in (x, y)}
    centred = {name: _centre(values, used_codes, used_counts) for name, values in raw.items()}
    _require_variation(centred, raw, subject, source, "")
    r = _correlation(centred[x], centred[y])
    return {**_inference(r, n_obs - n_subjects - 1), "n_subjects": n_subjects, "n_obs": n_obs,
            **dropped}


def rm_corr_time_adjusted(
    frame: pd.DataFrame, x: str, y: str, subject: str, time: str, *, source: str = "the data"
) -> dict[str, Any]:
    """Repeated-measures correlation after removing each subject's linear trend over time.

    Within every subject, ``x`` and ``y`` are each regressed on ``time`` (ordinary least squares
    with the subject's own intercept and slope) and the residuals ``rx``, ``ry`` are correlated:

    ``r = sum(rx * ry) / sqrt(sum(rx**2) * sum(ry**2))``,  ``dof = N - 2 S - 1``.

    This is the partial correlation of ``x`` and ``y`` given subject dummies and subject-by-time
    slopes (Frisch-Waugh-Lovell): the t-test of ``x`` in the OLS ``y ~ x + subject + subject:time``
    has ``N - 2S - 1`` residual degrees of freedom (2 coefficients per subject and the common
    slope), and ``r = t / sqrt(t**2 + dof)``. The degrees of freedom spent on the trends are
    therefore counted, as ``rm_corr`` counts the subject means; the p-value and Fisher-z interval
    are computed from ``r`` and ``dof`` exactly as in :func:`rm_corr`.

    The per-subject fits use sums only: with ``tc`` time centred on the subject's mean, the
    residual is ``xc - b * tc`` with ``b = sum(xc * tc) / sum(tc**2)`` per subject.

    Subjects with fewer than 3 complete observations, or whose observations are all at one
    time, are dropped. With 2 observations the line fits exactly (residuals 0): in the OLS above
    such a subject adds 2 rows and 2 coefficients, so dropping it changes neither ``r`` nor
    ``dof``. With constant time the slope is not identified; the OLS would keep that subject's
    centred (not detrended) values, which would mix an unadjusted association into the
    time-adjusted one, so it is left out instead.

    Parameters
    ----------
    frame : DataFrame
        One row per observation.
    x, y : str
        Numeric columns to correlate.
    subject : str
        Column identifying the subject.
    time : str
        Numeric time column (session number) the trends are taken over.
    source : str
        Name of the data in error messages (a file name).

    Returns
    -------
    dict
        As :func:`rm_corr`: ``r, dof, p, ci_low, ci_high, n_subjects, n_obs,
        n_subjects_dropped, n_obs_dropped``.

    Raises
    ------
    DataError
        A column is missing or not numeric, fewer than 3 subjects have 3 or more complete
        observations at more than one time, or ``x`` or ``y`` has no variation left around the
        subjects' trends.

    Notes
    -----
    Checked against an explicit statsmodels OLS with subject dummies and subject-by-time slopes
    (the partial correlation and its t-test agree to 1e-10, including when subjects with 1 or 2
    observations are kept in the OLS). The time-adjusted association follows the advice to
    detrend time-varying predictors before separating within- from between-person effects
    (Curran & Bauer, 2011; Wang & Maxwell, 2015).

    References
    ----------
    Bakdash, J. Z., & Marusich, L. R. (2017). Repeated measures correlation. Frontiers in
    Psychology, 8, 456.
    Curran, P. J., & Bauer, D. J. (2011). The disaggregation of within-person and between-person
    effects in longitudinal models of change. Annual Review of Psychology, 62, 583-619.
    Wang, L. P., & Maxwell, S. E. (2015). On disaggregating between-person and within-person
    effects with longitudinal data using multilevel models. Psychological Methods, 20(1), 63-83.

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({
    ...     "client": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 2,
    ...     "session": [1, 2, 3, 4] * 3 + [1, 2],
    ...     "alliance": [3.0, 3.6, 3.9, 4.1, 2.0, 2.4, 2.3, 3.0, 4.5, 4.0, 4.8, 4.9, 3.3, 3.5],
    ...     "symptoms": [12.0, 10.0, 9.5, 9.0, 20.0, 18.0, 19.0, 15.0, 5.0, 6.0, 4.0, 4.5,
    ...                  8.0, 7.0]})
    >>> result = rm_corr_time_adjusted(data, "alliance", "symptoms", "client", "session")
    >>> print(round(result["r"], 4), result["dof"], result["n_subjects_dropped"])
    -0.8676 5 1
    """
    data = _complete_rows(frame, [x, y, time], subject, source)
    codes, counts = _subject_codes(data[subject])
    t = data[time].to_numpy(dtype=float)
    spread = pd.Series(t).groupby(codes).agg(["min", "max"]).to_numpy()
    varies = spread[:, 1] > spread[:, 0]
    eligible = (counts >= 3) & varies
    keep = eligible[codes]
    used_codes, used_counts = _recode(codes[keep], counts)
    n_obs, n_subjects = int(keep.sum()), int(used_counts.size)
    dropped = {
        "n_subjects_dropped": int((~eligible).sum()),
        "n_obs_dropped": int(len(codes) - n_obs),
    }
    _require_subjects(n_subjects, MIN_SUBJECTS, f"{x} and {y}", 3, subject, source,
                      extra=f" at more than one {time}")
    tc = _centre(t[keep], used_codes, used_counts)
    sum_tt = np.bincount(used_codes, weights=tc * tc)
    raw = {name: data[name].to_numpy(dtype=float)[keep] for name in (x, y)}
    residuals = {}
    for name, values in raw.items():
        centred = _centre(values, used_codes, used_counts)
        slope = np.bincount(used_codes, weights=centred * tc) / sum_tt
        residuals[name] = centred - slope[used_codes] * tc
    _require_variation(residuals, raw, subject, source,
                       f" around each {subject}'s trend over {time}")
    r = _correlation(residuals[x], residuals[y])
    return {**_inference(r, n_obs - 2 * n_subjects - 1), "n_subjects": n_subjects,
            "n_obs": n_obs, **dropped}


# ---------------------------------------------------------------------------------------------
# The R1 job


def repeated_measures_correlation(
    derived: pd.DataFrame,
    outcome: str,
    expected_sign: int,
    meta_r: float = META_ANALYTIC_R,
    meta_ci: tuple[float, float] = META_ANALYTIC_CI,
    upstream: str = "",
) -> dict[str, Any]:
    """R1 for one outcome: same-session and time-adjusted repeated-measures correlations.

    Uses the outcome's rows of ``derived`` with both ``alliance_score`` and ``symptom_score``,
    from clients with at least two such sessions (:func:`rm_corr`); the time-adjusted row
    (:func:`rm_corr_time_adjusted`, trends over ``session``) uses the clients among them with at
    least three. Each row stands beside the meta-analytic r (Flückiger et al., 2018) signed by the
    expected direction: with ``expected_sign = -1`` (alliance higher = better, symptoms higher =
    worse) the benchmark is -.278 (-.299 to -.256).

    Parameters
    ----------
    derived : DataFrame
        The ``derived`` frame (``derived.parquet``): columns ``outcome, client_id, session,
        alliance_score, symptom_score``.
    outcome : str
        Outcome key (a value of ``derived["outcome"]``).
    expected_sign : {1, -1}
        Expected sign of the association: 1 when alliance and the outcome score point the same
        way, -1 when opposite.
    meta_r, meta_ci : float, (float, float)
        Benchmark r and its 95% interval, unsigned.
    upstream : str
        Text appended to error messages (context from earlier stages, e.g. how many clients
        were rejected at ingest).

    Returns
    -------
    dict
        ``data``: accounting (``n_rows_outcome, n_rows_missing, n_rows_single_session, n_obs,
        n_clients, n_clients_excluded_time_adjusted, n_rows_excluded_time_adjusted,
        n_obs_time_adjusted``); ``rm_corr``: two rows (``method`` ``same_session`` and
        ``time_adjusted``) with ``outcome, method, r, ci_low, ci_high, p, dof, n, n_obs,
        expected_sign, sign_as_expected, meta_r, meta_ci_low, meta_ci_high, compares``.
        When fewer than 3 clients have 3 or more sessions the time-adjusted row has ``r``,
        ``ci_low``, ``ci_high`` and ``p`` NaN (logged as a warning); the same-session row stands.

    Raises
    ------
    DataError
        A column is missing, or fewer than 3 clients have alliance and outcome scores at two or
        more sessions (the message names the outcome and the counts, then ``upstream``).

    Examples
    --------
    >>> import pandas as pd
    >>> derived = pd.DataFrame({
    ...     "outcome": "phq9",
    ...     "client_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"] * 2,
    ...     "session": [1, 2, 3, 4] * 3 + [1, 2],
    ...     "alliance_score": [3.0, 3.6, 3.9, 4.1, 2.0, 2.4, 2.3, 3.0, 4.5, 4.0, 4.8, 4.9,
    ...                        3.3, 3.5],
    ...     "symptom_score": [12.0, 10.0, 9.5, 9.0, 20.0, 18.0, 19.0, 15.0, 5.0, 6.0, 4.0,
    ...                       4.5, 8.0, 7.0]})
    >>> result = repeated_measures_correlation(derived, "phq9", expected_sign=-1)
    >>> for row in result["rm_corr"]:
    ...     print(row["method"], round(row["r"], 3), row["dof"], row["n"], row["meta_r"])
    same_session -0.919 9 4 -0.278
    time_adjusted -0.868 5 3 -0.278
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be 1 or -1, not {expected_sign!r}")
    missing = [name for name in DERIVED_COLUMNS if name not in derived.columns]
    if missing:
        raise DataError(_with_upstream(
            f"derived.parquet: column(s) {', '.join(missing)} needed by R1 (rm_corr) are "
            "missing; rerun the step of the pipeline that writes it.", upstream))
    rows = derived.loc[derived["outcome"] == outcome, DERIVED_COLUMNS[1:]]
    complete = rows.dropna(subset=["alliance_score", "symptom_score"])
    # Complete sessions per client, per row (positional arrays: the index need not be unique).
    sessions = complete.groupby("client_id", sort=False)["client_id"].transform("size").to_numpy()
    used = complete.loc[sessions >= 2]
    used_sessions = sessions[sessions >= 2]
    n_clients = int(used["client_id"].nunique())
    accounting = {
        "n_rows_outcome": int(len(rows)),
        "n_rows_missing": int(len(rows) - len(complete)),
        "n_rows_single_session": int((sessions < 2).sum()),
        "n_obs": int(len(used)),
        "n_clients": n_clients,
    }
    if n_clients < MIN_SUBJECTS:
        raise DataError(_with_upstream(
            f"derived.parquet: R1 for outcome {outcome}: only {n_clients} client(s) have "
            f"alliance_score and symptom_score at two or more sessions ({len(rows)} row(s) for "
            f"{outcome}, {accounting['n_rows_missing']} missing a score, "
            f"{accounting['n_rows_single_session']} from single-session clients); the "
            f"repeated-measures correlation needs at least {MIN_SUBJECTS}. Check that "
            f"{outcome} and the alliance measure are recorded at the same sessions, or leave "
            f"{outcome} out of the R1 outcomes.", upstream))

    same = rm_corr(used, "alliance_score", "symptom_score", "client_id",
                   source="derived.parquet")
    n_eligible = int(used.loc[used_sessions >= 3, "client_id"].nunique())
    if n_eligible >= MIN_SUBJECTS:
        adjusted = rm_corr_time_adjusted(used, "alliance_score", "symptom_score", "client_id",
                                         "session", source="derived.parquet")
    else:
        log.warning(
            "R1 for outcome %s: only %d client(s) have 3 or more sessions with both scores; "
            "the time-adjusted correlation needs %d and is reported as missing.",
            outcome, n_eligible, MIN_SUBJECTS)
        adjusted = {"r": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
                    "dof": 0, "n_subjects": n_eligible, "n_obs": int((used_sessions >= 3).sum())}
    # Clients of the same-session version left out of the time-adjusted one (fewer than 3
    # sessions with both scores), and their rows.
    accounting["n_clients_excluded_time_adjusted"] = n_clients - int(adjusted["n_subjects"])
    accounting["n_rows_excluded_time_adjusted"] = accounting["n_obs"] - int(adjusted["n_obs"])
    accounting["n_obs_time_adjusted"] = int(adjusted["n_obs"])
    benchmark = _signed_benchmark(expected_sign, meta_r, meta_ci)
    table = [
        _row(outcome, method, result, expected_sign, benchmark)
        for method, result in (("same_session", same), ("time_adjusted", adjusted))
    ]
    return {"data": accounting, "rm_corr": table}


def _row(outcome: str, method: str, result: dict[str, Any], sign: int,
         benchmark: dict[str, float]) -> dict[str, Any]:
    r = result["r"]
    return {
        "outcome": outcome,
        "method": method,
        "r": r,
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "p": result["p"],
        "dof": int(result["dof"]),
        "n": int(result["n_subjects"]),
        "n_obs": int(result["n_obs"]),
        "expected_sign": sign,
        "sign_as_expected": bool(math.isfinite(r) and np.sign(r) == sign),
        **benchmark,
        "compares": COMPARES[method],
    }


def _signed_benchmark(sign: int, meta_r: float, meta_ci: tuple[float, float]) -> dict[str, float]:
    """The benchmark and its interval in the expected direction (bounds stay low < high)."""
    low, high = meta_ci
    return {
        "meta_r": sign * meta_r,
        "meta_ci_low": sign * (high if sign < 0 else low),
        "meta_ci_high": sign * (low if sign < 0 else high),
    }


def _with_upstream(message: str, upstream: str) -> str:
    return f"{message} {upstream.strip()}" if upstream and upstream.strip() else message


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _complete_rows(frame: pd.DataFrame, numeric: list[str], subject: str,
                   source: str) -> pd.DataFrame:
    """The columns needed, rows with a missing value dropped; columns checked first."""
    missing = [name for name in [*numeric, subject] if name not in frame.columns]
    if missing:
        raise DataError(f"{source}: column(s) {', '.join(missing)} needed by the "
                        "repeated-measures correlation are missing.")
    for name in numeric:
        dtype = frame[name].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise DataError(f"{source}: column {name} must be numeric for the repeated-measures "
                            f"correlation but has type {dtype}; fix the step that writes it.")
    return frame[[*numeric, subject]].dropna()


def _subject_codes(subjects: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..S-1 per row and the number of rows of each subject."""
    codes, _ = pd.factorize(subjects, sort=False)
    return codes, np.bincount(codes)


def _recode(codes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered 0..S'-1 over the subjects that still have rows, and their counts."""
    present = np.zeros(counts.size, dtype=bool)
    present[codes] = True
    new = np.cumsum(present) - 1
    recoded = new[codes]
    return recoded, np.bincount(recoded, minlength=int(present.sum()))


def _centre(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Values minus their subject's mean (a second pass removes the rounding left by the first)."""
    centred = values - (np.bincount(codes, weights=values) / counts)[codes]
    return centred - (np.bincount(codes, weights=centred) / counts)[codes]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b))))


def _inference(r: float, dof: int) -> dict[str, Any]:
    """Two-sided t-test p-value and Fisher-z interval as pingouin reports them for rm_corr.

    ``pingouin.compute_esci(stat=r, nx=dof + 2, eftype="pearson")``: ``se = 1 / sqrt(nx - 3)``,
    normal critical value; unrounded here (pingouin rounds to 2 decimals).
    """
    r = max(-1.0, min(1.0, r))
    with np.errstate(divide="ignore"):
        t = r * math.sqrt(dof / (1 - r * r)) if abs(r) < 1 else math.copysign(math.inf, r)
        z = float(np.arctanh(r))
    p = float(2 * stats.t.sf(abs(t), dof))
    half = abs(stats.norm.ppf((1 - CONFIDENCE) / 2)) / math.sqrt(dof + 2 - 3)
    return {"r": r, "dof": int(dof), "p": p,
            "ci_low": float(np.tanh(z - half)), "ci_high": float(np.tanh(z + half))}


def _require_subjects(n_subjects: int, needed: int, what: str, per_subject: int, subject: str,
                      source: str, extra: str = "") -> None:
    if n_subjects < needed:
        raise DataError(
            f"{source}: only {n_subjects} {subject} value(s) have {what} at {per_subject} or "
            f"more observations{extra}; the repeated-measures correlation needs at least "
            f"{needed}. Check that both are recorded at the same occasions.")


def _require_variation(centred: dict[str, np.ndarray], raw: dict[str, np.ndarray], subject: str,
                       source: str, extra: str) -> None:
    """Raise when a variable has no variation left (relative to its size, not rounding noise)."""
    for name, values in centred.items():
        if float(np.dot(values, values)) <= 1e-20 * float(np.dot(raw[name], raw[name])):
            raise DataError(
                f"{source}: column {name} does not vary within any {subject}{extra}, so the "
                "repeated-measures correlation is undefined; check the column.")


__all__ = [
    "COMPARES",
    "META_ANALYTIC_CI",
    "META_ANALYTIC_R",
    "repeated_measures_correlation",
    "rm_corr",
    "rm_corr_time_adjusted",
]
