"""Sudden gains and sudden losses in session-by-session scores, and the alliance around them.

Tang & DeRubeis (1999) called a session-to-session improvement a sudden gain when it is large in
points (criterion 1), large relative to the pregain score (criterion 2) and large relative to the
fluctuation of the scores around it (criterion 3); Lutz et al. (2013) added sudden losses, the
mirror image. The identification here reproduces the reference implementation, the R package
suddengains (Wiedemann, Thew, Stott & Ehlers 2020, PLOS ONE 15(3): e0230276): its functions
``define_crit1_cutoff``, ``identify_sg``, ``identify_sl``, ``create_bysg`` and
``create_byperson``, validated against the package's own test cases
(``tests/test_sudden_gains.py``).

Inputs are long frames, one row per client and session: a client column, an integer session
column (treatment sessions numbered from ``first_session``, 1 by default, and an optional
pre-treatment assessment at ``first_session - 1``) and a score column; missing sessions are simply
absent rows or missing scores. Internally the scores are laid out wide, one column for every
session number from the first to the last, which is the layout the package's criteria read.
Outputs are tidy frames: one row per client and session-to-session interval
(:func:`assess_intervals`), one row per gain or loss (:func:`identify_sudden_gains`,
:func:`identify_sudden_losses`), one row per client (:func:`select_gain_per_client`), one row per
gain and session around it (:func:`extract_scores_around_gains`, :func:`alliance_around_gains`)
and one row for the mixed model of the alliance before and after the gains
(:func:`fit_alliance_gain_model`).

Where this departs from the package, on purpose, the function says so: reversals are checked
from the session after the postgain session whatever the numbering (``reversal_from``), the
largest loss is the largest worsening, scales where higher is better are supported
(``direction``), and the total change defaults to each client's first and last observed scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError

#: Directions of a scale: which way is improvement.
LOWER_IS_BETTER = "lower_is_better"
HIGHER_IS_BETTER = "higher_is_better"
DIRECTIONS = (LOWER_IS_BETTER, HIGHER_IS_BETTER)

#: The package's choices for one gain per client (``multiple_sg_select``); "earliest" is a
#: synonym of "first".
SELECTIONS = ("first", "earliest", "last", "largest", "smallest")

#: The critical value of criterion 3 when all three scores before and after are present
#: (two-tailed t, alpha .05, 4 df, rounded as Tang & DeRubeis give it).
CRIT3_CRITICAL_VALUE = 2.776

#: Columns of the one-row-per-gain frame, in order (the client column comes first).
GAIN_COLUMNS = [
    "gain_id", "kind", "pregain_session", "postgain_session",
    "score_pregain_minus2", "score_pregain_minus1", "pregain_score", "postgain_score",
    "score_postgain_plus1", "score_postgain_plus2",
    "magnitude", "percent_change", "share_of_total_change",
    "mean_pre", "mean_post", "n_pre", "n_post", "critical_value",
    "reversal_value", "reversal", "n_per_client",
]

#: Columns of the one-row tidy result of :func:`fit_alliance_gain_model`.
MODEL_COLUMNS = [
    "term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
    "n_obs", "n_gains", "n_clients", "formula", "fitted_formula", "engine",
    "converged", "singular", "fallback_steps",
]


# ---------------------------------------------------------------------------------------------
# Criterion 1: the cut-off from the reliable change index


def define_crit1_cutoff(
    sd: float | None = None,
    reliability: float | None = None,
    data: pd.DataFrame | None = None,
    baseline_col: str | None = None,
) -> pd.DataFrame:
    """The cut-off for criterion 1: the reliable change value (Jacobson & Truax 1991).

    As the package's ``define_crit1_cutoff``: the standard error of measurement
    ``se = sd * sqrt(1 - reliability)``, the standard error of the difference
    ``sdiff = sqrt(2 * se ** 2)`` and the reliable change value ``1.96 * sdiff``, from a given
    standard deviation (of a normal population or of the baseline scores) or from the baseline
    scores in ``data[baseline_col]`` (sample SD, missing values dropped).

    Parameters
    ----------
    sd : float, optional
        The standard deviation. Give either ``sd`` or ``data`` and ``baseline_col``.
    reliability : float
        Reliability of the scale, between 0 and 1 (test-retest, or Cronbach's alpha).
    data : DataFrame, optional
        Holds the baseline (pre-treatment) scores, one row per client.
    baseline_col : str, optional
        The column of ``data`` with the baseline scores.

    Returns
    -------
    DataFrame
        One row: ``sd, reliability, standard_error_measurement, standard_error_difference,
        reliable_change_value``; the last is the cut-off for ``cutoff=`` of
        :func:`identify_sudden_gains`.

    Raises
    ------
    ValueError
        When the reliability is missing or outside [0, 1], or the SD is given both ways or not
        at all (the package's errors).

    References
    ----------
    Jacobson, N. S., & Truax, P. (1991). Clinical significance: a statistical approach to
    defining meaningful change in psychotherapy research. J Consult Clin Psychol, 59(1), 12-19.

    Stiles, W. B., et al. (2003). Early sudden gains in psychotherapy under routine clinic
    conditions: practice-based evidence. J Consult Clin Psychol, 71(1), 14-21.

    Checked against the package's tests (``test-define_crit1_cutoff.R``).

    Examples
    --------
    >>> from analysis.engagement.sudden_gains import define_crit1_cutoff
    >>> define_crit1_cutoff(sd=10.5, reliability=0.961).round(4).T
                                      0
    sd                          10.5000
    reliability                  0.9610
    standard_error_measurement   2.0736
    standard_error_difference    2.9325
    reliable_change_value        5.7477
    """
    if reliability is None:
        raise ValueError("define_crit1_cutoff: give the reliability of the scale (0 to 1).")
    reliability = float(reliability)
    if not 0.0 <= reliability <= 1.0:
        raise ValueError(f"define_crit1_cutoff: the reliability must be between 0 and 1, not "
                         f"{reliability}.")
    from_data = data is not None or baseline_col is not None
    if sd is not None and from_data:
        raise ValueError("define_crit1_cutoff: give the standard deviation either as sd= or as "
                         "data= with baseline_col=, not both.")
    if sd is None and not from_data:
        raise ValueError("define_crit1_cutoff: give the standard deviation as sd= or the "
                         "baseline scores as data= with baseline_col=.")
    if sd is None:
        if data is None or baseline_col is None:
            raise ValueError("define_crit1_cutoff: data= and baseline_col= go together.")
        _require(data, [baseline_col], "define_crit1_cutoff")
        scores = pd.to_numeric(data[baseline_col], errors="coerce").dropna()
        if len(scores) < 2:
            raise DataError(f"define_crit1_cutoff: column {baseline_col} has fewer than two "
                            "scores; the standard deviation needs at least two.")
        sd = float(scores.std(ddof=1))
    sd = float(sd)
    sem = sd * math.sqrt(1.0 - reliability)
    sdiff = math.sqrt(2.0 * sem ** 2)
    return pd.DataFrame([{
        "sd": sd,
        "reliability": reliability,
        "standard_error_measurement": sem,
        "standard_error_difference": sdiff,
        "reliable_change_value": 1.96 * sdiff,
    }])


# ---------------------------------------------------------------------------------------------
# Input checks and the wide layout


def _require(data: pd.DataFrame, columns: Iterable[str], needed_by: str) -> None:
    missing = [name for name in columns if name not in data.columns]
    if missing:
        raise DataError(f"{needed_by}: column(s) {', '.join(missing)} not in the data "
                        f"(columns: {', '.join(map(str, data.columns))}).")


def _check_direction(direction: str) -> int:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}.")
    return 1 if direction == LOWER_IS_BETTER else -1


def _sessions_as_int(values: pd.Series, session_col: str, needed_by: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | (numeric != np.round(numeric))
    if bad.any():
        row = values.index[np.flatnonzero(bad.to_numpy())[0]]
        raise DataError(f"{needed_by}: column {session_col} must hold whole session numbers; "
                        f"row {row} has {values.loc[row]!r}.")
    return numeric.to_numpy(dtype=float).astype(np.int64)


def _wide_scores(
    data: pd.DataFrame,
    client_col: str,
    session_col: str,
    score_col: str,
    first_column: int,
    needed_by: str,
) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Clients (sorted), session numbers of the columns, and the clients x sessions scores."""
    _require(data, [client_col, session_col, score_col], needed_by)
    if data[client_col].isna().any():
        row = data.index[np.flatnonzero(data[client_col].isna().to_numpy())[0]]
        raise DataError(f"{needed_by}: column {client_col} is empty in row {row}.")
    sessions = _sessions_as_int(data[session_col], session_col, needed_by)
    scores = pd.to_numeric(data[score_col], errors="coerce")
    not_numeric = scores.isna() & data[score_col].notna()
    if not_numeric.any():
        row = data.index[np.flatnonzero(not_numeric.to_numpy())[0]]
        raise DataError(f"{needed_by}: column {score_col} must be numeric; row {row} has "
                        f"{data[score_col].loc[row]!r}.")
    keep = sessions >= first_column
    duplicated = pd.DataFrame({"c": data[client_col].to_numpy(), "s": sessions}).duplicated()
    if duplicated.any():
        row = data.index[np.flatnonzero(duplicated.to_numpy())[0]]
        raise DataError(f"{needed_by}: more than one row for {client_col} "
                        f"{data[client_col].loc[row]!r} and {session_col} "
                        f"{data[session_col].loc[row]} (row {row}); give one score per client "
                        "and session.")
    codes, clients = pd.factorize(data[client_col], sort=True)
    last = int(sessions[keep].max()) if keep.any() else first_column - 1
    columns = np.arange(first_column, last + 1)
    wide = np.full((len(clients), len(columns)), np.nan)
    wide[codes[keep], sessions[keep] - first_column] = scores.to_numpy(dtype=float)[keep]
    return clients, columns, wide


# ---------------------------------------------------------------------------------------------
# The three criteria


def _flag(condition: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """1.0 / 0.0 where defined, NaN elsewhere (R's logical NA)."""
    return np.where(defined, condition.astype(float), np.nan)


def _window_stats(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance of each row, ignoring NaN (NaN where undefined)."""
    present = ~np.isnan(block)
    n = present.sum(axis=1)
    filled = np.where(present, block, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / n
        deviation = np.where(present, block - mean[:, None], 0.0)
        var = (deviation ** 2).sum(axis=1) / (n - 1)
    mean = np.where(n > 0, mean, np.nan)
    var = np.where(n > 1, var, np.nan)
    return n, mean, var


def _assess(
    wide: np.ndarray,
    *,
    kind: str,
    sign: int,
    cutoff: float | None,
    crit2_pct: float | None,
    crit3: bool,
    crit3_alpha: float,
    crit3_adjust: bool,
    crit3_critical_value: float,
) -> dict[str, np.ndarray]:
    """Clients x intervals matrices of the criteria, as ``identify_sg`` / ``identify_sl``.

    Interval ``j`` runs from column ``j + 1`` (pregain) to ``j + 2`` (postgain): the package's
    loop leaves out the interval from the first column and the one into the last, which can
    never have two scores on both sides for criterion 3.
    """
    n_clients, n_columns = wide.shape
    n_intervals = max(n_columns - 3, 0)
    shape = (n_clients, n_intervals)
    out = {name: np.full(shape, np.nan) for name in
           ("crit1", "crit2", "crit3", "combined", "mean_pre", "mean_post", "n_pre", "n_post",
            "critical_value")}
    gain = kind == "gain"
    for j in range(n_intervals):
        p = j + 1
        pregain, postgain = wide[:, p], wide[:, p + 1]
        both = ~np.isnan(pregain) & ~np.isnan(postgain)
        with np.errstate(invalid="ignore"):
            # Improvement from pregain to postgain, in points (positive = better).
            change = sign * (pregain - postgain)
            if cutoff is not None:
                met = change >= cutoff if gain else change <= -cutoff
                out["crit1"][:, j] = _flag(met, both)
            if crit2_pct is not None:
                # As the package: the change against crit2_pct x the pregain score, for losses
                # with the inequality reversed (see identify_sudden_losses).
                met = change >= crit2_pct * pregain if gain else change <= crit2_pct * pregain
                out["crit2"][:, j] = _flag(met, both)
        pre = wide[:, max(0, p - 2):p + 1]
        post = wide[:, p + 1:min(n_columns, p + 4)]
        n_pre, mean_pre, var_pre = _window_stats(pre)
        n_post, mean_post, var_post = _window_stats(post)
        out["n_pre"][:, j], out["n_post"][:, j] = n_pre, n_post
        out["mean_pre"][:, j], out["mean_post"][:, j] = mean_pre, mean_post
        if crit3:
            enough = (n_pre >= 2) & (n_post >= 2)
            df = np.where(enough, n_pre + n_post - 2, 1)
            if crit3_adjust:
                critical = np.abs(stats.t.ppf(crit3_alpha / 2.0, df))
            else:
                critical = np.full(n_clients, float(crit3_critical_value))
            critical = np.where(enough, critical, np.nan)
            with np.errstate(invalid="ignore"):
                pooled = np.sqrt(((n_pre - 1) * var_pre + (n_post - 1) * var_post) / df)
                difference = sign * (mean_pre - mean_post) if gain else sign * (
                    mean_post - mean_pre)
                met = difference > critical * pooled
            out["crit3"][:, j] = _flag(met, enough)
            out["critical_value"][:, j] = critical
    applied = [out[name] for name, used in
               (("crit1", cutoff is not None), ("crit2", crit2_pct is not None), ("crit3", crit3))
               if used]
    # R multiplies the criteria: a missing criterion makes the interval missing, even when
    # another criterion is not met (NA * 0 is NA).
    combined = np.ones(shape)
    for criterion in applied:
        combined = combined * criterion
    out["combined"] = combined
    return out


def _check_criteria(cutoff, crit2_pct, crit3, crit3_alpha, needed_by) -> None:
    if cutoff is None and crit2_pct is None and not crit3:
        raise ValueError(f"{needed_by}: apply at least one criterion (cutoff, crit2_pct, "
                         "crit3).")
    if cutoff is not None and (not np.isfinite(cutoff) or cutoff < 0):
        raise ValueError(f"{needed_by}: cutoff is the size of the change in points and must be "
                         f"zero or positive, not {cutoff} (for losses too: the package's "
                         "sg_crit1_cutoff = -7 is cutoff=7 here).")
    if crit2_pct is not None and not np.isfinite(crit2_pct):
        raise ValueError(f"{needed_by}: crit2_pct must be a number, not {crit2_pct}.")
    if not 0.0 < crit3_alpha < 1.0:
        raise ValueError(f"{needed_by}: crit3_alpha must be between 0 and 1, not {crit3_alpha}.")


def _prepare(data, client_col, session_col, score_col, *, kind, cutoff, crit2_pct, crit3,
             crit3_alpha, crit3_adjust, crit3_critical_value, identify_1to2, first_session,
             direction, needed_by):
    sign = _check_direction(direction)
    _check_criteria(cutoff, crit2_pct, crit3, crit3_alpha, needed_by)
    first_column = first_session - 1 if identify_1to2 else first_session
    clients, columns, wide = _wide_scores(data, client_col, session_col, score_col,
                                          first_column, needed_by)
    assessed = _assess(wide, kind=kind, sign=sign, cutoff=cutoff, crit2_pct=crit2_pct,
                       crit3=crit3, crit3_alpha=crit3_alpha, crit3_adjust=crit3_adjust,
                       crit3_critical_value=crit3_critical_value)
    return sign, clients, columns, wide, assessed


def _nullable(matrix: np.ndarray) -> pd.array:
    flat = matrix.ravel()
    return pd.array(np.where(np.isnan(flat), None, flat == 1.0), dtype="boolean")


def assess_intervals(
    data: pd.DataFrame,
    client_col: str = "client_id",
    session_col: str = "session",
    score_col: str = "score",
    *,
    kind: str = "gain",
    cutoff: float | None,
    crit2_pct: float | None = 0.25,
    crit3: bool = True,
    crit3_alpha: float = 0.05,
    crit3_adjust: bool = True,
    crit3_critical_value: float = CRIT3_CRITICAL_VALUE,
    identify_1to2: bool = False,
    first_session: int = 1,
    direction: str = LOWER_IS_BETTER,
) -> pd.DataFrame:
    """Each criterion for every client and session-to-session interval (the package's details).

    The package's ``identify_sg`` / ``identify_sl`` with ``crit123_details = TRUE``, in long
    form. Criterion 1: the change from the pregain to the postgain score is at least ``cutoff``
    points. Criterion 2: the change is at least ``crit2_pct`` times the pregain score.
    Criterion 3: the mean of the (up to) three scores up to and including the pregain session
    differs from the mean of the (up to) three from the postgain session on by more than a
    critical value times the pooled SD; with ``crit3_adjust`` the critical value is the
    two-tailed t quantile for ``crit3_alpha`` with ``n_pre + n_post - 2`` df (2.776 with 3 + 3
    scores, 3.182 with 3 + 2, 4.303 with 2 + 2; Lutz et al. 2013), otherwise
    ``crit3_critical_value`` throughout. With fewer than two scores on either side criterion 3
    is missing. The intervals assessed are those with a column before the pregain session and
    one after the postgain session, as the package's loop: from ``first_session + 1`` to
    ``first_session + 2`` on, or with ``identify_1to2`` from ``first_session`` to
    ``first_session + 1``, the session ``first_session - 1`` being the pre-treatment score.

    Parameters
    ----------
    data : DataFrame
        Long: one row per client and session; sessions without a score are absent or missing.
    client_col, session_col, score_col : str
        Client id, whole session number, and score columns.
    kind : {"gain", "loss"}
        Sudden gains (``identify_sg``) or sudden losses (``identify_sl``).
    cutoff : float or None
        Criterion 1 in points (zero or positive, for losses too); None leaves it out.
        :func:`define_crit1_cutoff` gives the reliable change value.
    crit2_pct : float or None
        Criterion 2 as a proportion of the pregain score; None leaves it out.
    crit3 : bool
        Apply criterion 3.
    crit3_alpha : float
        Two-tailed alpha of the t quantile of criterion 3.
    crit3_adjust : bool
        Adjust the critical value for missing scores (t quantile); else ``crit3_critical_value``.
    crit3_critical_value : float
        The critical value when ``crit3_adjust`` is False.
    identify_1to2 : bool
        Assess the interval from the first to the second session, using the score at
        ``first_session - 1`` (a pre-treatment assessment) as a pregain-side score.
    first_session : int
        Number of the first treatment session (1 in this project). Earlier sessions are ignored,
        except ``first_session - 1`` with ``identify_1to2``.
    direction : {"lower_is_better", "higher_is_better"}
        Which way is improvement. The package knows only lower-is-better scales; for
        higher-is-better ones every criterion is applied to the change in the better direction
        (criterion 2 still against the pregain score).

    Returns
    -------
    DataFrame
        One row per client and interval, sorted by client and session: the client column,
        ``pregain_session, postgain_session, crit1, crit2, crit3`` (nullable booleans; missing
        where the scores do not allow the check, and for a criterion not applied),
        ``critical_value, n_pre, n_post, mean_pre, mean_post`` and ``identified`` (all applied
        criteria met; missing when any of them is missing, as the package's product of the
        criteria).

    References
    ----------
    Tang, T. Z., & DeRubeis, R. J. (1999). Sudden gains and critical sessions in
    cognitive-behavioral therapy for depression. J Consult Clin Psychol, 67(6), 894-904.

    Lutz, W., et al. (2013). The ups and downs of psychotherapy: sudden gains and sudden losses
    identified with session reports. Psychotherapy Research, 23(1), 14-24.

    Wiedemann, M., Thew, G. R., Stott, R., & Ehlers, A. (2020). suddengains: an R package to
    identify sudden gains in longitudinal data. PLOS ONE, 15(3), e0230276.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import assess_intervals
    >>> scores = pd.DataFrame({"client_id": "a", "session": range(1, 7),
    ...                        "score": [35, 37, 23, 23, 24, 21]})
    >>> assess_intervals(scores, cutoff=7)[
    ...     ["pregain_session", "postgain_session", "crit1", "crit3", "identified"]]
       pregain_session  postgain_session  crit1  crit3  identified
    0                2                 3   True   True        True
    1                3                 4  False  False       False
    2                4                 5  False  False       False
    """
    if kind not in ("gain", "loss"):
        raise ValueError(f"kind must be 'gain' or 'loss', not {kind!r}.")
    _, clients, columns, _, assessed = _prepare(
        data, client_col, session_col, score_col, kind=kind, cutoff=cutoff,
        crit2_pct=crit2_pct, crit3=crit3, crit3_alpha=crit3_alpha, crit3_adjust=crit3_adjust,
        crit3_critical_value=crit3_critical_value, identify_1to2=identify_1to2,
        first_session=first_session, direction=direction, needed_by="assess_intervals")
    n_intervals = assessed["combined"].shape[1]
    pregain = columns[1:1 + n_intervals]
    frame = pd.DataFrame({
        client_col: clients.repeat(n_intervals),
        "pregain_session": np.tile(pregain, len(clients)),
        "postgain_session": np.tile(pregain + 1, len(clients)),
        "crit1": _nullable(assessed["crit1"]),
        "crit2": _nullable(assessed["crit2"]),
        "crit3": _nullable(assessed["crit3"]),
        "critical_value": assessed["critical_value"].ravel(),
        "n_pre": assessed["n_pre"].ravel().astype(int),
        "n_post": assessed["n_post"].ravel().astype(int),
        "mean_pre": assessed["mean_pre"].ravel(),
        "mean_post": assessed["mean_post"].ravel(),
        "identified": _nullable(assessed["combined"]),
    })
    return frame


# ---------------------------------------------------------------------------------------------
# One row per gain or loss


def _gains_frame(kind, sign, clients, columns, wide, assessed, client_col, reversal_from,
                 start_session, end_session) -> pd.DataFrame:
    rows, intervals = np.nonzero(assessed["combined"] == 1.0)
    if rows.size == 0:
        return pd.DataFrame(columns=[client_col, *GAIN_COLUMNS])
    order = np.lexsort((intervals, rows))
    rows, intervals = rows[order], intervals[order]
    p = intervals + 1  # column of the pregain session
    n_columns = wide.shape[1]

    def around(offset: int) -> np.ndarray:
        column = p + offset
        inside = (column >= 0) & (column < n_columns)
        return np.where(inside, wide[rows, np.clip(column, 0, n_columns - 1)], np.nan)

    pregain, postgain = around(0), around(1)
    magnitude = sign * (pregain - postgain) * (1 if kind == "gain" else -1)
    # The package's sg_reversal_value: the midpoint between the pregain and postgain scores.
    reversal_value = postgain + (pregain - postgain) / 2.0
    later = np.arange(n_columns)[None, :] >= (p + reversal_from)[:, None]
    beyond = np.sign(pregain - postgain)[:, None] * (wide[rows] - reversal_value[:, None]) > 0
    reversal = np.any(later & beyond, axis=1)

    if start_session is None or end_session is None:
        present = ~np.isnan(wide[rows])
        first = np.argmax(present, axis=1)
        last = n_columns - 1 - np.argmax(present[:, ::-1], axis=1)
    if start_session is None:
        start = wide[rows, first]
    else:
        start = _score_at(wide, columns, rows, start_session)
    if end_session is None:
        end = wide[rows, last]
    else:
        end = _score_at(wide, columns, rows, end_session)
    total = sign * (start - end)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total != 0, magnitude / total, np.nan)
        percent = np.where(pregain != 0, 100.0 * (postgain - pregain) / pregain, np.nan)

    client_values = clients.take(rows)
    pregain_session = columns[p]
    label = "sg" if kind == "gain" else "sl"
    frame = pd.DataFrame({
        client_col: client_values,
        "gain_id": [f"{c}_{label}_{s}" for c, s in zip(client_values, pregain_session)],
        "kind": kind,
        "pregain_session": pregain_session.astype(int),
        "postgain_session": (pregain_session + 1).astype(int),
        "score_pregain_minus2": around(-2),
        "score_pregain_minus1": around(-1),
        "pregain_score": pregain,
        "postgain_score": postgain,
        "score_postgain_plus1": around(2),
        "score_postgain_plus2": around(3),
        "magnitude": magnitude,
        "percent_change": percent,
        "share_of_total_change": share,
        "mean_pre": assessed["mean_pre"][rows, intervals],
        "mean_post": assessed["mean_post"][rows, intervals],
        "n_pre": assessed["n_pre"][rows, intervals].astype(int),
        "n_post": assessed["n_post"][rows, intervals].astype(int),
        "critical_value": assessed["critical_value"][rows, intervals],
        "reversal_value": reversal_value,
        "reversal": reversal.astype(bool),
    })
    frame["n_per_client"] = frame.groupby(client_col, sort=False)[client_col].transform(
        "size").astype(int)
    return frame.reset_index(drop=True)


def _score_at(wide: np.ndarray, columns: np.ndarray, rows: np.ndarray, session: int):
    where = np.flatnonzero(columns == session)
    if where.size == 0:
        return np.full(len(rows), np.nan)
    return wide[rows, where[0]]


def identify_sudden_gains(
    data: pd.DataFrame,
    client_col: str = "client_id",
    session_col: str = "session",
    score_col: str = "score",
    *,
    cutoff: float | None,
    crit2_pct: float | None = 0.25,
    crit3: bool = True,
    crit3_alpha: float = 0.05,
    crit3_adjust: bool = True,
    crit3_critical_value: float = CRIT3_CRITICAL_VALUE,
    identify_1to2: bool = False,
    first_session: int = 1,
    direction: str = LOWER_IS_BETTER,
    reversal_from: int = 2,
    start_session: int | None = None,
    end_session: int | None = None,
) -> pd.DataFrame:
    """Sudden gains (Tang & DeRubeis 1999), one row per gain, as suddengains' ``create_bysg``.

    A gain is an interval whose applied criteria are all met (:func:`assess_intervals` gives
    every criterion for every interval). Each gain carries the scores from two sessions before
    the pregain session to two after the postgain session (the package's ``sg_<measure>_2n`` to
    ``_n3``), its magnitude, and whether it reversed: a later score lies beyond the midpoint
    between the pregain and postgain scores, back towards the pregain score (the package's
    ``sg_reversal``: strictly above ``postgain + magnitude / 2`` on a lower-is-better scale),
    i.e. at least 50% of the gain was lost again.

    Parameters
    ----------
    data, client_col, session_col, score_col, cutoff, crit2_pct, crit3, crit3_alpha,
    crit3_adjust, crit3_critical_value, identify_1to2, first_session, direction
        As :func:`assess_intervals`.
    reversal_from : int
        First session checked for a reversal, counted from the pregain session: 2 (default)
        checks every session after the postgain session. The package checks from 2 when the
        first column is a pre-treatment score (``identify_sg_1to2 = TRUE``) but, through its
        column renumbering, from 3 otherwise; give 3 to reproduce that default.
    start_session, end_session : int, optional
        Sessions whose scores define the client's total change for ``share_of_total_change``
        (the package's ``tx_start_var_name`` / ``tx_end_var_name``); by default each client's
        first and last observed scores among the sessions analysed.

    Returns
    -------
    DataFrame
        One row per gain, sorted by client and session; columns: the client column, then
        :data:`GAIN_COLUMNS`. ``gain_id`` is ``<client>_sg_<pregain session>`` (as the
        package's ``id_sg``); ``magnitude`` is the improvement in points (the package's
        ``sg_magnitude``); ``percent_change`` is ``100 * (postgain - pregain) / pregain``;
        ``share_of_total_change`` is the magnitude over the client's total improvement (the
        package's ``sg_change_proportion``; missing when the total change is 0 or a score is
        missing); ``mean_pre, mean_post, n_pre, n_post, critical_value`` are criterion 3's
        numbers; ``n_per_client`` counts the client's gains (``sg_freq_byperson``). Clients
        without a gain have no row; the frame is empty when there is no gain.

    References
    ----------
    Tang, T. Z., & DeRubeis, R. J. (1999). Sudden gains and critical sessions in
    cognitive-behavioral therapy for depression. J Consult Clin Psychol, 67(6), 894-904.

    Wiedemann, M., Thew, G. R., Stott, R., & Ehlers, A. (2020). suddengains: an R package to
    identify sudden gains in longitudinal data. PLOS ONE, 15(3), e0230276. Checked against the
    package's tests ``test-identify_sg.R`` and ``test-create_bysg.R``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import identify_sudden_gains
    >>> scores = pd.DataFrame({
    ...     "client_id": ["a"] * 12,
    ...     "session": range(1, 13),
    ...     "score": [35, 37, 34, 23, 24, 21, 29, 17, 11, 11, 10, 7]})
    >>> gains = identify_sudden_gains(scores, cutoff=7)
    >>> gains[["gain_id", "pregain_score", "postgain_score", "magnitude", "reversal"]]
      gain_id  pregain_score  postgain_score  magnitude  reversal
    0  a_sg_3           34.0            23.0       11.0      True
    1  a_sg_7           29.0            17.0       12.0     False
    """
    sign, clients, columns, wide, assessed = _prepare(
        data, client_col, session_col, score_col, kind="gain", cutoff=cutoff,
        crit2_pct=crit2_pct, crit3=crit3, crit3_alpha=crit3_alpha, crit3_adjust=crit3_adjust,
        crit3_critical_value=crit3_critical_value, identify_1to2=identify_1to2,
        first_session=first_session, direction=direction, needed_by="identify_sudden_gains")
    return _gains_frame("gain", sign, clients, columns, wide, assessed, client_col,
                        reversal_from, start_session, end_session)


def identify_sudden_losses(
    data: pd.DataFrame,
    client_col: str = "client_id",
    session_col: str = "session",
    score_col: str = "score",
    *,
    cutoff: float | None,
    crit2_pct: float | None = 0.25,
    crit3: bool = True,
    crit3_alpha: float = 0.05,
    crit3_adjust: bool = True,
    crit3_critical_value: float = CRIT3_CRITICAL_VALUE,
    identify_1to2: bool = False,
    first_session: int = 1,
    direction: str = LOWER_IS_BETTER,
    reversal_from: int = 2,
    start_session: int | None = None,
    end_session: int | None = None,
) -> pd.DataFrame:
    """Sudden losses (Lutz et al. 2013), one row per loss, as ``create_bysg(identify = "sl")``.

    The mirror image of :func:`identify_sudden_gains`, as the package's ``identify_sl``:
    criterion 1, the score worsens by at least ``cutoff`` points (the package's negative
    ``sg_crit1_cutoff``; give its size here); criterion 3, the mean after exceeds the mean
    before (in the worse direction) by the critical value times the pooled SD. Criterion 2 is
    the package's: the improvement is at most ``crit2_pct`` times the pregain score, which any
    worsening from a positive pregain score meets, so that in practice criteria 1 and 3 decide.
    A loss reverses when a later score lies beyond the midpoint back towards the pregain score.

    Parameters
    ----------
    data, client_col, session_col, score_col, cutoff, crit2_pct, crit3, crit3_alpha,
    crit3_adjust, crit3_critical_value, identify_1to2, first_session, direction,
    reversal_from, start_session, end_session
        As :func:`identify_sudden_gains`.

    Returns
    -------
    DataFrame
        As :func:`identify_sudden_gains`, with ``kind = "loss"``, ``gain_id`` as
        ``<client>_sl_<pregain session>`` and ``magnitude`` the worsening in points (positive;
        the package's ``sg_magnitude`` is its negative).

    References
    ----------
    Lutz, W., et al. (2013). The ups and downs of psychotherapy: sudden gains and sudden losses
    identified with session reports. Psychotherapy Research, 23(1), 14-24. Checked against the
    suddengains test ``test-identify_sl.R``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import identify_sudden_losses
    >>> scores = pd.DataFrame({"client_id": "a", "session": range(1, 7),
    ...                        "score": [10, 11, 12, 30, 28, 33]})
    >>> identify_sudden_losses(scores, cutoff=7)[
    ...     ["gain_id", "pregain_session", "pregain_score", "postgain_score", "magnitude"]]
      gain_id  pregain_session  pregain_score  postgain_score  magnitude
    0  a_sl_3                3           12.0            30.0       18.0
    """
    sign, clients, columns, wide, assessed = _prepare(
        data, client_col, session_col, score_col, kind="loss", cutoff=cutoff,
        crit2_pct=crit2_pct, crit3=crit3, crit3_alpha=crit3_alpha, crit3_adjust=crit3_adjust,
        crit3_critical_value=crit3_critical_value, identify_1to2=identify_1to2,
        first_session=first_session, direction=direction, needed_by="identify_sudden_losses")
    return _gains_frame("loss", sign, clients, columns, wide, assessed, client_col,
                        reversal_from, start_session, end_session)


# ---------------------------------------------------------------------------------------------
# One gain per client


def select_gain_per_client(
    gains: pd.DataFrame,
    client_col: str = "client_id",
    select: str = "largest",
    clients: Iterable[Any] | None = None,
) -> pd.DataFrame:
    """One gain (or loss) per client, as the package's ``create_byperson``.

    ``select`` chooses among a client's gains as ``multiple_sg_select``: ``"first"`` (or
    ``"earliest"``) and ``"last"`` by pregain session; ``"largest"`` and ``"smallest"`` by
    magnitude, ties going to the earliest. For losses the magnitude here is the size of the
    loss, so ``"largest"`` is the largest loss (the package compares its negative
    ``sg_magnitude`` and so picks the smallest loss).

    Parameters
    ----------
    gains : DataFrame
        From :func:`identify_sudden_gains` or :func:`identify_sudden_losses`.
    client_col : str
        The client column.
    select : str
        One of :data:`SELECTIONS`.
    clients : iterable, optional
        Every client analysed: those without a gain are added with ``n_per_client = 0`` and
        the gain's columns missing (the package's byperson frame keeps every case).

    Returns
    -------
    DataFrame
        The columns of ``gains``, one row per client, sorted by client.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import (identify_sudden_gains,
    ...                                               select_gain_per_client)
    >>> scores = pd.DataFrame({
    ...     "client_id": ["a"] * 12,
    ...     "session": range(1, 13),
    ...     "score": [35, 37, 34, 23, 24, 21, 29, 17, 11, 11, 10, 7]})
    >>> gains = identify_sudden_gains(scores, cutoff=7)
    >>> select_gain_per_client(gains, select="largest", clients=["a", "b"])[
    ...     ["client_id", "gain_id", "magnitude", "n_per_client"]]
      client_id gain_id  magnitude  n_per_client
    0         a  a_sg_7       12.0             2
    1         b     NaN        NaN             0
    """
    _require(gains, [client_col, "pregain_session", "magnitude"], "select_gain_per_client")
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, not {select!r}.")
    if select in ("first", "earliest"):
        keys, ascending = ["pregain_session"], [True]
    elif select == "last":
        keys, ascending = ["pregain_session"], [False]
    elif select == "largest":
        keys, ascending = ["magnitude", "pregain_session"], [False, True]
    else:
        keys, ascending = ["magnitude", "pregain_session"], [True, True]
    chosen = (gains.sort_values(keys, ascending=ascending, kind="mergesort")
              .drop_duplicates(client_col, keep="first"))
    if clients is not None:
        every = pd.Index(pd.unique(pd.Series(list(clients), dtype=object)))
        absent = every.difference(pd.Index(chosen[client_col]))
        if len(absent):
            extra = pd.DataFrame({client_col: list(absent), "n_per_client": 0})
            chosen = pd.concat([chosen, extra], ignore_index=True)
            if "n_per_client" in gains.columns:
                chosen["n_per_client"] = chosen["n_per_client"].astype(int)
    return chosen.sort_values([client_col], kind="mergesort").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# The course around each gain, and the alliance before and after it


def extract_scores_around_gains(
    gains: pd.DataFrame,
    data: pd.DataFrame,
    client_col: str = "client_id",
    session_col: str = "session",
    value_col: str = "score",
    n_before: int = 3,
    n_after: int = 3,
) -> pd.DataFrame:
    """Any session-by-session measure around each gain, for the average course around the gain.

    The package's ``extract_values`` for any window: the ``n_before`` sessions up to and
    including the pregain session and the ``n_after`` sessions from the postgain session on
    (3 and 3 by default, the package's ``_2n`` to ``_n3``), for the measure the gains were
    found in or another one (the alliance).

    Parameters
    ----------
    gains : DataFrame
        From :func:`identify_sudden_gains` (columns ``client_col, gain_id, pregain_session``).
    data : DataFrame
        Long: one row per client and session, with ``value_col``.
    client_col, session_col, value_col : str
        Client, whole session number, and measure columns of ``data``.
    n_before, n_after : int
        Sessions before (pregain included) and after (postgain included) the gain; at least 1.

    Returns
    -------
    DataFrame
        One row per gain and session of the window (missing scores kept as NaN, so that every
        gain has the full window): the client column, ``gain_id, pregain_session, offset``
        (session minus pregain session: ``1 - n_before`` to ``n_after``), ``session``,
        ``period`` (``"pre"`` up to the pregain session, ``"post"`` from the postgain session)
        and ``value_col``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import (extract_scores_around_gains,
    ...                                               identify_sudden_gains)
    >>> scores = pd.DataFrame({"client_id": "a", "session": range(1, 7),
    ...                        "score": [35, 37, 23, 23, 24, 21]})
    >>> gains = identify_sudden_gains(scores, cutoff=7)
    >>> course = extract_scores_around_gains(gains, scores, n_before=2, n_after=2)
    >>> course[["gain_id", "offset", "session", "period", "score"]]
      gain_id  offset  session period  score
    0  a_sg_2      -1        1    pre   35.0
    1  a_sg_2       0        2    pre   37.0
    2  a_sg_2       1        3   post   23.0
    3  a_sg_2       2        4   post   23.0
    """
    if int(n_before) < 1 or int(n_after) < 1:
        raise ValueError("n_before and n_after must be at least 1.")
    _require(gains, [client_col, "gain_id", "pregain_session"], "extract_scores_around_gains")
    _require(data, [client_col, session_col, value_col], "extract_scores_around_gains")
    offsets = np.arange(1 - int(n_before), int(n_after) + 1)
    window = gains[[client_col, "gain_id", "pregain_session"]].iloc[
        np.repeat(np.arange(len(gains)), len(offsets))].reset_index(drop=True)
    window["pregain_session"] = window["pregain_session"].astype(np.int64)
    window["offset"] = np.tile(offsets, len(gains))
    window["session"] = window["pregain_session"] + window["offset"]
    window["period"] = np.where(window["offset"] <= 0, "pre", "post")
    values = data[[client_col, session_col, value_col]].copy()
    values[session_col] = _sessions_as_int(values[session_col], session_col,
                                           "extract_scores_around_gains")
    values[value_col] = pd.to_numeric(values[value_col], errors="coerce")
    if values.duplicated([client_col, session_col]).any():
        raise DataError(f"extract_scores_around_gains: more than one {value_col} for a "
                        f"{client_col} and {session_col}; give one value per client and "
                        "session.")
    values = values.rename(columns={session_col: "session"})
    # Match client ids as text, so that ids read as numbers in one frame and text in the other
    # still meet.
    window["_key"] = window[client_col].astype(str)
    values["_key"] = values[client_col].astype(str)
    merged = window.merge(values.drop(columns=[client_col]), on=["_key", "session"],
                          how="left", sort=False)
    merged[value_col] = merged[value_col].astype(float)
    return merged.drop(columns="_key")[
        [client_col, "gain_id", "pregain_session", "offset", "session", "period", value_col]
    ].reset_index(drop=True)


def alliance_around_gains(
    gains: pd.DataFrame,
    alliance: pd.DataFrame,
    client_col: str = "client_id",
    session_col: str = "session",
    alliance_col: str = "alliance",
    window: int = 3,
) -> pd.DataFrame:
    """The alliance at the sessions before and after each gain, ready for the mixed model.

    Tang & DeRubeis (1999) found the therapeutic relationship improved after sudden gains.
    For each gain this takes the ``window`` sessions up to and including the pregain session
    (``post_gain = 0``) and the ``window`` sessions from the postgain session on
    (``post_gain = 1``), as :func:`extract_scores_around_gains`, and drops sessions without an
    alliance rating. A client with several gains contributes each gain's window (a session can
    then appear twice); pass :func:`select_gain_per_client` output for one gain per client.

    Parameters
    ----------
    gains : DataFrame
        From :func:`identify_sudden_gains` (or :func:`select_gain_per_client`).
    alliance : DataFrame
        Long: one row per client and session with ``alliance_col``.
    client_col, session_col, alliance_col : str
        Column names of ``alliance`` (``client_col`` also in ``gains``).
    window : int
        Sessions on each side of the gain.

    Returns
    -------
    DataFrame
        One row per gain and session with an alliance rating: the client column, ``gain_id,
        pregain_session, offset, session, post_gain`` (0 or 1) and ``alliance_col``. Input for
        :func:`fit_alliance_gain_model`.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.engagement.sudden_gains import alliance_around_gains
    >>> gains = pd.DataFrame({"client_id": ["a"], "gain_id": ["a_sg_3"],
    ...                       "pregain_session": [3]})
    >>> alliance = pd.DataFrame({"client_id": "a", "session": range(1, 7),
    ...                          "alliance": [3.0, 3.2, None, 3.9, 4.1, 4.0]})
    >>> alliance_around_gains(gains, alliance, window=2)[
    ...     ["gain_id", "session", "post_gain", "alliance"]]
      gain_id  session  post_gain  alliance
    0  a_sg_3        2          0       3.2
    1  a_sg_3        4          1       3.9
    2  a_sg_3        5          1       4.1
    """
    if int(window) < 1:
        raise ValueError("window must be at least 1.")
    course = extract_scores_around_gains(gains, alliance, client_col, session_col,
                                         alliance_col, n_before=window, n_after=window)
    course["post_gain"] = (course["period"] == "post").astype(int)
    course = course[course[alliance_col].notna()]
    return course[[client_col, "gain_id", "pregain_session", "offset", "session", "post_gain",
                   alliance_col]].reset_index(drop=True)


def fit_alliance_gain_model(
    frame: pd.DataFrame,
    client_col: str = "client_id",
    alliance_col: str = "alliance",
    engine: str = "mixedlm",
    reml: bool = True,
) -> pd.DataFrame:
    """Does the alliance rise after a sudden gain? ``alliance ~ post_gain + (1 | client)``.

    A linear mixed model of the alliance ratings around the gains on the pre/post indicator,
    with a random intercept per client, fitted with the project's engine through
    :func:`analysis.models.mixed.protocol.fit_with_fallback` (REML; Satterthwaite df as lmerTest).
    The estimate of ``post_gain`` is the mean rise of the alliance from the sessions before a
    gain to the sessions after it, within clients.

    Parameters
    ----------
    frame : DataFrame
        From :func:`alliance_around_gains`.
    client_col, alliance_col : str
        The client and alliance columns.
    engine : str
        Engine name (:func:`analysis.models.mixed.engines.get_engine`).
    reml : bool
        REML (True) or ML.

    Returns
    -------
    DataFrame
        One row, columns :data:`MODEL_COLUMNS`: the ``post_gain`` fixed effect (estimate, SE,
        df, t, p, 95% CI), the numbers of ratings, gains and clients, the requested and the
        fitted formula, the engine, the fit's flags and the simplification steps taken
        (";"-joined, "" when none).

    Raises
    ------
    DataError
        When the frame has no rating both before and after a gain, or the model cannot be
        fitted.

    References
    ----------
    Tang, T. Z., & DeRubeis, R. J. (1999). Sudden gains and critical sessions in
    cognitive-behavioral therapy for depression. J Consult Clin Psychol, 67(6), 894-904.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.engagement.sudden_gains import fit_alliance_gain_model
    >>> rng = np.random.default_rng(7)
    >>> n = 60
    >>> frame = pd.DataFrame({"client_id": np.repeat(np.arange(n), 6),
    ...                       "post_gain": np.tile([0, 0, 0, 1, 1, 1], n)})
    >>> frame["alliance"] = (np.repeat(rng.normal(4, 0.5, n), 6) + 0.3 * frame["post_gain"]
    ...                      + rng.normal(0, 0.3, len(frame)))
    >>> result = fit_alliance_gain_model(frame)
    >>> result[["term", "estimate", "ci_low", "ci_high", "n_clients"]].round(2)
            term  estimate  ci_low  ci_high  n_clients
    0  post_gain      0.29    0.24     0.35         60
    """
    from analysis.models.mixed.protocol import fallback_steps_taken, fit_with_fallback

    _require(frame, [client_col, alliance_col, "post_gain"], "fit_alliance_gain_model")
    rows = frame[[c for c in dict.fromkeys([client_col, alliance_col, "post_gain", "gain_id"])
                  if c in frame.columns]].dropna(subset=[client_col, alliance_col, "post_gain"])
    if rows["post_gain"].nunique() < 2:
        raise DataError("fit_alliance_gain_model: the alliance is needed both before and after "
                        "the gains (post_gain 0 and 1); the frame has ratings on one side "
                        "only, or none (no gain).")
    rows = rows.copy()
    rows["post_gain"] = rows["post_gain"].astype(float)
    rows[alliance_col] = rows[alliance_col].astype(float)
    formula = f"{alliance_col} ~ post_gain + (1 | {client_col})"
    fit, attempts = fit_with_fallback(rows, formula, reml=reml, engine=engine,
                                      label="sudden gains: alliance")
    term = fit.fixed.set_index("term").loc["post_gain"]
    n_gains = int(rows["gain_id"].nunique()) if "gain_id" in rows else float("nan")
    return pd.DataFrame([{
        "term": "post_gain",
        "estimate": float(term["estimate"]),
        "se": float(term["se"]),
        "df": float(term["df"]),
        "t": float(term["t"]),
        "p": float(term["p"]),
        "ci_low": float(term["ci_low"]),
        "ci_high": float(term["ci_high"]),
        "n_obs": int(len(rows)),
        "n_gains": n_gains,
        "n_clients": int(rows[client_col].nunique()),
        "formula": formula,
        "fitted_formula": fit.formula,
        "engine": fit.engine,
        "converged": bool(fit.info.get("converged")),
        "singular": bool(fit.info.get("singular")),
        "fallback_steps": ";".join(fallback_steps_taken(attempts, fit.formula)),
    }], columns=MODEL_COLUMNS)


__all__ = [
    "CRIT3_CRITICAL_VALUE",
    "DIRECTIONS",
    "GAIN_COLUMNS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "MODEL_COLUMNS",
    "SELECTIONS",
    "alliance_around_gains",
    "assess_intervals",
    "define_crit1_cutoff",
    "extract_scores_around_gains",
    "fit_alliance_gain_model",
    "identify_sudden_gains",
    "identify_sudden_losses",
    "select_gain_per_client",
]
