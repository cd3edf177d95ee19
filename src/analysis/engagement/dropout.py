"""Attendance and dropout: attendance rates, dropout episodes, the discrete-time hazard of dropout.

docs/methods.md section 7. Inputs are long frames, one row per client and session record
(``client_id``, ``therapist_id`` when known, an integer ``session`` number and, where used, a
``day`` offset, the alliance score and the symptom score). Outputs are tidy frames:

- :func:`attendance_table`: offered and attended sessions and the attendance rate per client and
  overall, from a session-status column mapped to attended / did not attend / cancelled by client
  / cancelled by service (without one, only attended sessions are known and the table says so);
- :func:`dropout_episodes`: one row per client: time to dropout (the last attended session), the
  dropout event and where it came from (a recorded ending mapped to completed / dropped out /
  other, or the documented proxy rule of :func:`dropout_episodes`);
- :func:`person_session_data`: Singer & Willett's person-period layout (one row per client and
  attended session, ``dropout_next`` = 1 when the client drops out after that session) with the
  alliance split into within- and between-client parts;
- :func:`fit_dropout_hazard`: the discrete-time hazard model (logit of dropping out after session
  t on ``alliance_within``, ``alliance_between_c``, the symptom score and session) by statsmodels
  GLM, with SEs clustered by therapist, or by client when the design has too few therapists
  (:func:`analysis.models.mixed.design.therapist_design`). Checked against R's ``glm(family =
  binomial)`` with ``sandwich::vcovCL`` (``tests/r/fit_dropout.R``) to 1e-6;
- :func:`kaplan_meier` and :func:`kaplan_meier_by_tertile`: Kaplan-Meier estimates of time to
  dropout with Greenwood standard errors (by early-alliance tertile), checked against R's
  ``survival::survfit``;
- :func:`dropout_effect_d`: the alliance-dropout association on the scale of Sharf, Primavera &
  Diener's (2010) meta-analytic d = 0.55.

A Cox model with time-varying alliance is not offered: statsmodels' ``PHReg`` with entry times did
not match ``survival::coxph`` on counting-process data with tied session times, whereas the
discrete-time model is exact on session data and matches R's ``glm``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.ingest.tables import status_text
from analysis.errors import DataError
from analysis.literature import SHARF_D  # weaker alliance before dropout: d = 0.55
from analysis.models.mixed.design import therapist_design

CLIENT = "client_id"
THERAPIST = "therapist_id"
SESSION = "session"

#: Categories of a session status (``inputs.<table>.status_values`` in config).
STATUS_CATEGORIES = ("attended", "did_not_attend", "cancelled_by_client", "cancelled_by_service")
#: Categories of a recorded episode ending.
ENDING_CATEGORIES = ("completed", "dropped_out", "other")
#: Endings in :func:`dropout_episodes` besides :data:`ENDING_CATEGORIES`: an episode whose
#: recorded ending is missing, a proxy episode that is not a dropout, one still in progress.
NOT_RECORDED, NOT_DROPPED_OUT, ONGOING = "not_recorded", "not_dropped_out", "ongoing"

#: Proxy rule defaults (used only without a recorded ending). Fewer attended sessions than this
#: is an early, unplanned ending: a minimum number of sessions is one of the dropout
#: definitions Swift & Greenberg (2012) compare, and 4 stays below the length of the shortest
#: planned treatments (low-intensity guided self-help runs about 4-6 sessions), so short planned
#: treatments are not counted as dropouts.
PROXY_MIN_SESSIONS = 4
#: An episode whose last attended session lies within this many weeks of the last day in the
#: data may still be going on: it is censored ("ongoing"), never called a dropout.
PROXY_ACTIVE_WEEKS = 4

#: Model terms of the hazard model, in order (the session term may be a spline).
HAZARD_PREDICTORS = ("alliance_within", "alliance_between_c", "symptom_score", "session")
HAZARD_COLUMNS = ["term", "estimate", "se", "z", "p", "ci_low", "ci_high", "odds_ratio",
                  "odds_ratio_ci_low", "odds_ratio_ci_high"]
KM_COLUMNS = ["tertile", "session", "at_risk", "events", "censored", "survival", "se",
              "ci_low", "ci_high"]
TERTILES = ("low", "middle", "high")


# ---------------------------------------------------------------------------------------------
# Attendance


def _require(frame: pd.DataFrame, columns: Sequence[str], needed_by: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(f"{needed_by}: column(s) {', '.join(missing)} missing from the input "
                        f"(it has {', '.join(map(str, frame.columns))}).")


# Status and ending codes compare as text, with numeric codes in one spelling (1 == "1.0"):
# the same rule as the ingest stage's status column.
_code = status_text


def _map_values(values: pd.Series, mapping: Mapping[str, Sequence[Any]] | None,
                categories: Sequence[str], column: str, key: str) -> pd.Series:
    """Raw codes of ``values`` mapped to ``categories`` (missing stays missing)."""
    if mapping is None:
        lookup = {category: category for category in categories}
    else:
        unknown = [name for name in mapping if name not in categories]
        if unknown:
            raise DataError(f"{key}: {unknown[0]!r} is not one of {', '.join(categories)}.")
        lookup = {}
        for category, codes in mapping.items():
            codes = [codes] if isinstance(codes, (str, int, float)) else list(codes)
            for code in codes:
                if _code(code) in lookup and lookup[_code(code)] != category:
                    raise DataError(f"{key}: {code!r} is listed under both "
                                    f"{lookup[_code(code)]} and {category}.")
                lookup[_code(code)] = category
    present = values.notna()
    codes = values[present].map(_code)
    mapped = codes.map(lookup)
    if mapped.isna().any():
        first = codes[mapped.isna()].iloc[0]
        raise DataError(f"column {column!r}: the value {first!r} is not mapped to any of "
                        f"{', '.join(categories)}; add it to {key}.")
    out = pd.Series(pd.NA, index=values.index, dtype="string")
    out[present] = mapped.astype("string")
    return out


def attendance_table(
    sessions_long: pd.DataFrame,
    status_col: str | None = None,
    status_values: Mapping[str, Sequence[Any]] | None = None,
    client_col: str = CLIENT,
    therapist_col: str = THERAPIST,
) -> pd.DataFrame:
    """Offered and attended sessions and the attendance rate, per client and overall.

    Parameters
    ----------
    sessions_long : DataFrame
        One row per session record (offered session) of a client.
    status_col : str, optional
        The session-status column. Without it only attended sessions are known: every row counts
        as attended and the rates are missing (``status_recorded`` False says so).
    status_values : dict, optional
        ``{category: [raw codes]}`` for the categories :data:`STATUS_CATEGORIES` (the config's
        ``status_values``). Without it the column must already hold the category names (as in
        the ingested ``offered_sessions`` table). A code not mapped raises a DataError naming the
        column. A record with a missing status is counted as offered with an unknown status.
    client_col, therapist_col : str
        Client and (optional) therapist columns.

    Returns
    -------
    DataFrame
        One row per client (``level`` = "client") and a last row for everyone (``level`` =
        "overall", ``client_id`` missing): ``n_clients``, ``offered`` (records), ``attended``,
        one count per other status category, ``status_unknown``, ``attendance_rate`` = attended /
        offered, ``attendance_rate_kept`` = attended / (offered - cancelled by service: the
        sessions the service kept open), ``status_recorded`` and ``note``. The overall rates are
        pooled over sessions (total attended / total offered); ``mean_client_rate`` is the mean
        of the clients' rates (overall row only).

    Examples
    --------
    >>> visits = pd.DataFrame({"client_id": ["a"] * 4 + ["b"] * 2,
    ...                        "status": ["A", "DNA", "A", "CS", "A", "A"]})
    >>> codes = {"attended": ["A"], "did_not_attend": ["DNA"], "cancelled_by_service": ["CS"]}
    >>> table = attendance_table(visits, "status", codes)
    >>> table[["level", "client_id", "offered", "attended", "attendance_rate"]]
         level client_id  offered  attended  attendance_rate
    0   client         a        4         2         0.500000
    1   client         b        2         2         1.000000
    2  overall      <NA>        6         4         0.666667
    >>> table["attendance_rate_kept"].round(3).tolist()
    [0.667, 1.0, 0.8]
    """
    _require(sessions_long, [client_col] + ([status_col] if status_col else []),
             "attendance_table")
    frame = sessions_long
    if status_col is None:
        status = pd.Series("attended", index=frame.index, dtype="string")
        note = ("no session-status column: only attended sessions are known, so attendance "
                "rates cannot be computed")
    else:
        status = _map_values(frame[status_col], status_values, STATUS_CATEGORIES, status_col,
                             "status_values")
        note = ""
    counts = pd.crosstab(frame[client_col], status.fillna("status_unknown"))
    counts = counts.reindex(columns=[*STATUS_CATEGORIES, "status_unknown"], fill_value=0)
    table = counts.astype("int64")
    table.columns.name = None
    table.insert(0, "offered", table.sum(axis=1))
    table = table.reset_index()
    if therapist_col in frame.columns:
        # a client seen by several therapists is listed with the first therapist of the records
        first = frame.dropna(subset=[therapist_col]).groupby(client_col)[therapist_col].first()
        table.insert(1, therapist_col, table[client_col].map(first).astype("string"))
    overall = table[[*STATUS_CATEGORIES, "status_unknown", "offered"]].sum().to_frame().T
    overall.insert(0, client_col, pd.NA)
    if therapist_col in table.columns:
        overall.insert(1, therapist_col, pd.NA)
    table.insert(0, "level", "client")
    table.insert(1, "n_clients", 1)
    overall.insert(0, "level", "overall")
    overall.insert(1, "n_clients", len(table))
    out = pd.concat([table, overall], ignore_index=True)
    out[client_col] = out[client_col].astype("string")
    for name in [*STATUS_CATEGORIES, "status_unknown", "offered", "n_clients"]:
        out[name] = out[name].astype("int64")
    known = status_col is not None
    offered = out["offered"].astype(float)
    kept = offered - out["cancelled_by_service"]
    out["attendance_rate"] = (out["attended"] / offered.where(offered > 0)) if known else np.nan
    out["attendance_rate_kept"] = (out["attended"] / kept.where(kept > 0)) if known else np.nan
    out["attendance_rate"] = out["attendance_rate"].astype(float)
    out["attendance_rate_kept"] = out["attendance_rate_kept"].astype(float)
    client_rates = out.loc[out["level"] == "client", "attendance_rate"]
    out["mean_client_rate"] = np.nan
    out.loc[out["level"] == "overall", "mean_client_rate"] = (
        float(client_rates.mean()) if known else np.nan)
    out["status_recorded"] = known
    out["note"] = note
    return out


def attended_sessions(
    sessions_long: pd.DataFrame, status_col: str | None = None,
    status_values: Mapping[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    """The attended session records (all records without a status column).

    Parameters
    ----------
    sessions_long : DataFrame
        One row per session record.
    status_col : str, optional
        The session-status column (without it every record is attended).
    status_values : dict, optional
        ``{category: [raw codes]}`` for :data:`STATUS_CATEGORIES`, as in :func:`attendance_table`.

    Returns
    -------
    DataFrame
        The rows of ``sessions_long`` whose status is "attended".

    Examples
    --------
    >>> visits = pd.DataFrame({"client_id": ["a", "a"], "session": [1, 2], "s": ["A", "DNA"]})
    >>> attended_sessions(visits, "s", {"attended": ["A"], "did_not_attend": ["DNA"]})
      client_id  session  s
    0         a        1  A
    """
    if status_col is None:
        return sessions_long
    _require(sessions_long, [status_col], "attended_sessions")
    status = _map_values(sessions_long[status_col], status_values, STATUS_CATEGORIES,
                         status_col, "status_values")
    return sessions_long[(status == "attended").fillna(False).to_numpy()]


# ---------------------------------------------------------------------------------------------
# Dropout episodes


def proxy_rule_text(min_sessions: int = PROXY_MIN_SESSIONS,
                    active_weeks: float | None = PROXY_ACTIVE_WEEKS,
                    score_col: str | None = None, recovery_cutoff: float | None = None) -> str:
    """The proxy rule of :func:`dropout_episodes` in words, as ``dropout_source`` names it.

    Parameters
    ----------
    min_sessions : int
        Fewer attended sessions than this is an early ending.
    active_weeks : float, optional
        An episode with a session in the last this many weeks of the data is ongoing.
    score_col : str, optional
        The symptom score whose recovery exempts an ending from being a dropout.
    recovery_cutoff : float, optional
        The score below which the client counts as recovered.

    Returns
    -------
    str
        The rule in words.

    Examples
    --------
    >>> proxy_rule_text()
    'fewer than 4 attended sessions, and no session in the last 4 weeks of the data'
    >>> proxy_rule_text(score_col="phq9", recovery_cutoff=10)  # doctest: +NORMALIZE_WHITESPACE
    'fewer than 4 attended sessions, and the last phq9 at or above 10 (not recovered), and no
     session in the last 4 weeks of the data'
    """
    parts = [f"fewer than {min_sessions} attended sessions"]
    if score_col is not None and recovery_cutoff is not None:
        parts.append(f"the last {score_col} at or above {recovery_cutoff:g} (not recovered)")
    if active_weeks is not None:
        parts.append(f"no session in the last {active_weeks:g} weeks of the data")
    return ", and ".join(parts)


def dropout_episodes(
    sessions_long: pd.DataFrame,
    endings: pd.DataFrame | None = None,
    ending_col: str | None = None,
    ending_values: Mapping[str, Sequence[Any]] | None = None,
    min_sessions: int = PROXY_MIN_SESSIONS,
    active_weeks: float | None = PROXY_ACTIVE_WEEKS,
    score_col: str | None = None,
    recovery_cutoff: float | None = None,
    day_col: str = "day",
    client_col: str = CLIENT,
    therapist_col: str = THERAPIST,
    session_col: str = SESSION,
) -> pd.DataFrame:
    """Time to dropout and the dropout event of each client's episode.

    Time is the last attended session (its session number). The event comes from a recorded
    ending when there is one, else from a proxy rule.

    **Recorded ending**: ``ending_col`` (in ``endings``, one row per client, or in
    ``sessions_long``, one value per client) is mapped by ``ending_values`` (``{category:
    [codes]}``, categories :data:`ENDING_CATEGORIES`; without it the column must hold the category
    names). "dropped_out" is the event; "completed", "other" and a missing ending
    ("not_recorded") are censored at the last attended session.

    **Proxy rule** (no ending column): a client dropped out when they attended fewer than
    ``min_sessions`` sessions, and, when ``score_col`` and ``recovery_cutoff`` are given, their
    last score is at or above the cut-off (a client who recovered early ended as planned), and,
    when ``active_weeks`` is set and the data have days, their last session lies more than
    ``active_weeks`` weeks before the last day in the data. Episodes whose last session is
    within those weeks are "ongoing" (censored); the others are "not_dropped_out" (censored). The
    rule is named in ``dropout_source`` ("proxy: <rule in words>") and must be called a proxy
    wherever it is reported. Scores are read as higher = worse.

    Parameters
    ----------
    sessions_long : DataFrame
        Attended sessions (see :func:`attended_sessions`), one row per client and session.
    endings : DataFrame, optional
        One row per client with ``client_col`` and ``ending_col``.
    ending_col : str, optional
        The ending column; None uses the proxy rule.
    ending_values : dict, optional
        Mapping of raw ending codes to :data:`ENDING_CATEGORIES`.
    min_sessions, active_weeks, score_col, recovery_cutoff
        The proxy rule (defaults :data:`PROXY_MIN_SESSIONS`, :data:`PROXY_ACTIVE_WEEKS`; no
        recovery condition). ``active_weeks=None`` drops the activity condition; it is also
        skipped, and said so in the rule, when the data have no ``day_col``.
    day_col, client_col, therapist_col, session_col : str
        Column names.

    Returns
    -------
    DataFrame
        One row per client: ``client_id``, ``therapist_id`` (when present), ``sessions_attended``,
        ``last_session`` (time), ``ending`` (a category of :data:`ENDING_CATEGORIES`,
        "not_recorded", "not_dropped_out" or "ongoing"), ``dropout`` (1 = event, 0 = censored)
        and ``dropout_source``.

    Examples
    --------
    >>> visits = pd.DataFrame({"client_id": ["a", "a", "b", "b", "b", "b", "b", "c"],
    ...                        "session": [1, 2, 1, 2, 3, 4, 5, 1],
    ...                        "day": [0, 7, 0, 7, 14, 21, 28, 70]})
    >>> dropout_episodes(visits)[["client_id", "last_session", "ending", "dropout"]]
      client_id  last_session           ending  dropout
    0         a             2      dropped_out        1
    1         b             5  not_dropped_out        0
    2         c             1          ongoing        0
    >>> ends = pd.DataFrame({"client_id": ["a", "b"], "reason": ["left", "done"]})
    >>> dropout_episodes(visits, ends, "reason", {"dropped_out": ["left"], "completed": ["done"]})[
    ...     ["client_id", "ending", "dropout", "dropout_source"]]
      client_id        ending  dropout dropout_source
    0         a   dropped_out        1       recorded
    1         b     completed        0       recorded
    2         c  not_recorded        0       recorded
    """
    _require(sessions_long, [client_col, session_col], "dropout_episodes")
    frame = sessions_long.dropna(subset=[session_col])
    grouped = frame.groupby(client_col, sort=True)
    out = pd.DataFrame({
        "sessions_attended": grouped[session_col].nunique(),
        "last_session": grouped[session_col].max(),
    })
    out.index.name = client_col
    out = out.reset_index()
    out[client_col] = out[client_col].astype("string")
    out["sessions_attended"] = out["sessions_attended"].astype("int64")
    out["last_session"] = out["last_session"].astype("int64")
    if therapist_col in frame.columns:
        first = frame.dropna(subset=[therapist_col]).groupby(client_col)[therapist_col].first()
        first.index = first.index.astype(str)
        out.insert(1, therapist_col, out[client_col].map(first).astype("string"))

    if ending_col is not None:
        source = endings if endings is not None else frame
        _require(source, [client_col, ending_col], "dropout_episodes (ending)")
        recorded = source[[client_col, ending_col]].dropna(subset=[ending_col])
        category = _map_values(recorded[ending_col], ending_values, ENDING_CATEGORIES,
                               ending_col, "ending_values")
        per_client = pd.DataFrame({client_col: recorded[client_col].astype("string"),
                                   "ending": category}).drop_duplicates()
        if per_client[client_col].duplicated().any():
            raise DataError(f"column {ending_col!r}: a client has more than one ending; give "
                            "one ending per client.")
        ending = out[client_col].map(per_client.set_index(client_col)["ending"])
        out["ending"] = ending.fillna(NOT_RECORDED).astype("string")
        out["dropout"] = (out["ending"] == "dropped_out").astype("int64")
        out["dropout_source"] = "recorded"
        return out

    early = out["sessions_attended"] < min_sessions
    use_score = score_col is not None and recovery_cutoff is not None
    if use_score:
        _require(frame, [score_col], "dropout_episodes (proxy rule)")
        scored = frame.dropna(subset=[score_col]).sort_values([client_col, session_col])
        last = scored.groupby(client_col)[score_col].last()
        last.index = last.index.astype(str)
        last_score = out[client_col].map(last).astype(float)
        # a client without any score cannot be shown to have recovered
        early &= ~(last_score < recovery_cutoff).fillna(False).to_numpy()
    active = pd.Series(False, index=out.index)
    use_days = (active_weeks is not None and day_col in frame.columns
                and bool(frame[day_col].notna().any()))
    if use_days:
        last_day = frame.groupby(client_col)[day_col].max()
        last_day.index = last_day.index.astype(str)
        client_last = out[client_col].map(last_day).astype(float)
        end_of_data = float(frame[day_col].max())
        active = (client_last > end_of_data - 7 * active_weeks).fillna(False)
    rule = proxy_rule_text(min_sessions, active_weeks if use_days else None,
                           score_col if use_score else None, recovery_cutoff)
    if active_weeks is not None and not use_days:
        rule += f" (the data have no {day_col!r}, so ongoing episodes cannot be told apart)"
    ending = np.where(active, ONGOING, np.where(early, "dropped_out", NOT_DROPPED_OUT))
    out["ending"] = pd.Series(ending, index=out.index, dtype="string")
    out["dropout"] = (out["ending"] == "dropped_out").astype("int64")
    out["dropout_source"] = f"proxy: {rule}"
    return out


# ---------------------------------------------------------------------------------------------
# Person-session data


def person_session_data(
    sessions_long: pd.DataFrame,
    episodes: pd.DataFrame,
    alliance_col: str = "alliance_score",
    score_col: str = "symptom_score",
    client_col: str = CLIENT,
    therapist_col: str = THERAPIST,
    session_col: str = SESSION,
) -> pd.DataFrame:
    """Singer & Willett's person-period data: one row per client and attended session.

    ``dropout_next`` is 1 on the row of the last attended session of a client who dropped out
    (the hazard of dropping out after session t), 0 on every other row; rows after a client's
    last session do not exist. The alliance is split as in docs/methods.md section 3: the
    client's mean over their observed scores (``alliance_between``), centred on the mean of the
    client means (``alliance_between_c``), and the session's deviation from the client's mean
    (``alliance_within``). Rows with a missing alliance or symptom score are kept here (with
    NaN) and left out by :func:`fit_dropout_hazard`, which counts the events it loses that way.
    As in the project's M1-M3, the client mean is over all of the client's sessions, later ones
    included.

    Parameters
    ----------
    sessions_long : DataFrame
        Attended sessions with the alliance and symptom scores (e.g. the ``derived`` rows of one
        outcome).
    episodes : DataFrame
        :func:`dropout_episodes` output (``client_id``, ``last_session``, ``dropout``).
    alliance_col, score_col, client_col, therapist_col, session_col : str
        Column names.

    Returns
    -------
    DataFrame
        ``client_id``, ``therapist_id`` (when present), ``session``, ``alliance_score``,
        ``alliance_within``, ``alliance_between``, ``alliance_between_c``, ``symptom_score``,
        ``dropout_next``, sorted by client and session. Clients not in ``episodes`` are left out.

    Examples
    --------
    >>> rows = pd.DataFrame({"client_id": ["a", "a", "b", "b", "b"], "session": [1, 2, 1, 2, 3],
    ...                      "alliance_score": [4.0, 5.0, 6.0, 6.5, 7.0],
    ...                      "symptom_score": [15.0, 14.0, 12.0, 9.0, 7.0]})
    >>> ends = pd.DataFrame({"client_id": ["a", "b"], "last_session": [2, 3], "dropout": [1, 0]})
    >>> person_session_data(rows, ends)[["client_id", "session", "alliance_within",
    ...                                  "alliance_between_c", "dropout_next"]]
      client_id  session  alliance_within  alliance_between_c  dropout_next
    0         a        1             -0.5                -1.0             0
    1         a        2              0.5                -1.0             1
    2         b        1             -0.5                 1.0             0
    3         b        2              0.0                 1.0             0
    4         b        3              0.5                 1.0             0
    """
    _require(sessions_long, [client_col, session_col, alliance_col, score_col],
             "person_session_data")
    _require(episodes, [client_col, "last_session", "dropout"], "person_session_data (episodes)")
    columns = [client_col, session_col, alliance_col, score_col]
    if therapist_col in sessions_long.columns:
        columns.insert(1, therapist_col)
    rows = sessions_long[columns].dropna(subset=[session_col]).copy()
    rows[client_col] = rows[client_col].astype("string")
    if rows.duplicated([client_col, session_col]).any():
        raise DataError("person_session_data: more than one row per client and session; pass "
                        "the rows of one outcome.")
    ends = episodes.assign(**{client_col: episodes[client_col].astype("string")})
    ends = ends.set_index(client_col)
    rows = rows[rows[client_col].isin(ends.index)]
    last = rows[client_col].map(ends["last_session"]).astype(float)
    rows = rows[rows[session_col].astype(float) <= last]
    rows = rows.sort_values([client_col, session_col], kind="stable").reset_index(drop=True)
    alliance = rows[alliance_col].astype(float)
    client_mean = alliance.groupby(rows[client_col]).transform("mean")
    grand_mean = alliance.groupby(rows[client_col]).mean().mean()
    event = rows[client_col].map(ends["dropout"]).astype(int).to_numpy()
    is_last = (rows[session_col].astype(float)
               == rows[client_col].map(ends["last_session"]).astype(float)).to_numpy()
    out = rows.rename(columns={client_col: CLIENT, therapist_col: THERAPIST,
                               session_col: SESSION})
    out = out.rename(columns={alliance_col: "alliance_score", score_col: "symptom_score"})
    out["alliance_score"] = alliance.to_numpy()
    out["alliance_within"] = (alliance - client_mean).to_numpy()
    out["alliance_between"] = client_mean.to_numpy()
    out["alliance_between_c"] = (client_mean - grand_mean).to_numpy()
    out["symptom_score"] = out["symptom_score"].astype(float)
    out["dropout_next"] = (event * is_last).astype("int64")
    order = [CLIENT] + ([THERAPIST] if THERAPIST in out.columns else []) + [
        SESSION, "alliance_score", "alliance_within", "alliance_between", "alliance_between_c",
        "symptom_score", "dropout_next"]
    return out[order]


# ---------------------------------------------------------------------------------------------
# The discrete-time hazard model


@dataclass
class DropoutHazard:
    """A fitted discrete-time hazard model of dropout.

    Attributes
    ----------
    table : DataFrame
        Columns :data:`HAZARD_COLUMNS`, one row per term (``(Intercept)`` first), in formula
        order; estimates are log odds of dropping out after a session.
    info : dict
        ``formula``, ``cluster`` ("therapist" or "client"), ``cluster_reason`` (why clients, ""
        for therapists), ``n_clusters``, ``n_rows``, ``n_clients``, ``n_events``,
        ``n_events_lost`` (events on rows with a missing predictor), ``se_type``,
        ``sd_alliance_between`` (SD over clients, for :func:`dropout_effect_d`),
        ``sd_alliance_within``, ``converged``.
    """

    table: pd.DataFrame
    info: dict = field(default_factory=dict)


def hazard_formula(session_spline_df: int | None = None) -> str:
    """The hazard model's formula (patsy syntax; R reads the same one).

    Parameters
    ----------
    session_spline_df : int, optional
        Degrees of freedom of a B-spline of the session number (without it, a linear term).

    Returns
    -------
    str
        The formula.

    Examples
    --------
    >>> hazard_formula()
    'dropout_next ~ alliance_within + alliance_between_c + symptom_score + session'
    >>> hazard_formula(4)
    'dropout_next ~ alliance_within + alliance_between_c + symptom_score + bs(session, df=4)'
    """
    session = f"bs(session, df={session_spline_df})" if session_spline_df else "session"
    return "dropout_next ~ alliance_within + alliance_between_c + symptom_score + " + session


def fit_dropout_hazard(
    person_sessions: pd.DataFrame,
    cluster: str = "auto",
    session_spline_df: int | None = None,
    conf_level: float = 0.95,
) -> DropoutHazard:
    """Discrete-time hazard model of dropout: logit on alliance, symptoms and session.

    ``logit P(dropout after session t | still in treatment) = b0 + b1 alliance_within_t +
    b2 alliance_between_c + b3 symptom_score_t + b4 session_t`` (Singer & Willett 2003, ch. 11),
    fitted by maximum likelihood with statsmodels' GLM (Binomial, logit link) on the complete
    rows of :func:`person_session_data`.

    Standard errors are cluster-robust (sandwich), clustered by therapist when the design allows
    a therapist term (:func:`analysis.models.mixed.design.therapist_design`), else by client;
    ``info["cluster_reason"]`` says why. The small-sample factor is ``G/(G-1)`` (G clusters):
    ``sandwich::vcovCL``'s default for a glm (``type = NULL`` means "HC0" for anything but an
    ``lm``; ``cadjust = TRUE``), which is also Stata's for maximum-likelihood models.
    statsmodels' own ``use_correction=True`` multiplies by ``(n-1)/(n-k)`` as well (vcovCL's
    "HC1", the default for an ``lm`` only); with thousands of person-session rows the two differ
    by about 0.1% in the SEs. Tests are Wald z tests and CIs Wald intervals, as
    ``lmtest::coeftest``/``coefci`` give them for a glm. Checked against R's ``glm(family =
    binomial)`` + ``vcovCL(fit, cluster = ~therapist_id)`` (``tests/r/fit_dropout.R``):
    estimates, SEs, z and CIs agree to 1e-6 (relative).

    Parameters
    ----------
    person_sessions : DataFrame
        :func:`person_session_data` output.
    cluster : {"auto", "therapist", "client"}
        "auto" clusters by therapist when the design has enough therapists, else by client.
        "therapist" raises a DataError when it has not.
    session_spline_df : int, optional
        Model session as a cubic B-spline with this many df (patsy's ``bs``, equal to R's
        ``splines::bs(session, df = k)``) instead of a line, for a hazard that rises and falls.
    conf_level : float
        Confidence level of the intervals.

    Returns
    -------
    DropoutHazard

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> rows = []
    >>> for client in range(300):
    ...     level = rng.normal()
    ...     for session in range(1, 13):
    ...         alliance = level + rng.normal(scale=0.5)
    ...         symptom = 15 - 0.5 * session + rng.normal(scale=3)
    ...         out = rng.random() < 1 / (1 + np.exp(2.5 + 0.8 * level))
    ...         rows.append((f"c{client}", f"t{client % 20}", session, alliance, symptom, out))
    ...         if out:
    ...             break
    >>> visits = pd.DataFrame(rows, columns=["client_id", "therapist_id", "session",
    ...                                      "alliance_score", "symptom_score", "left"])
    >>> ends = visits.groupby("client_id").agg(last_session=("session", "max"),
    ...                                        dropout=("left", "max")).reset_index()
    >>> fit = fit_dropout_hazard(person_session_data(visits, ends))
    >>> fit.table[["term", "estimate", "se", "odds_ratio"]].round(3)
                     term  estimate     se  odds_ratio
    0         (Intercept)    -2.463  0.346       0.085
    1     alliance_within     0.088  0.130       1.092
    2  alliance_between_c    -0.704  0.084       0.494
    3       symptom_score     0.001  0.022       1.001
    4             session     0.011  0.023       1.011
    >>> fit.info["cluster"], fit.info["n_clusters"], fit.info["n_events"]
    ('therapist', 20, 192)
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    needed = [CLIENT, *HAZARD_PREDICTORS, "dropout_next"]
    _require(person_sessions, needed, "fit_dropout_hazard")
    if cluster not in ("auto", "therapist", "client"):
        raise ValueError(f"cluster must be 'auto', 'therapist' or 'client', not {cluster!r}")
    complete = person_sessions.dropna(subset=needed)
    n_events_lost = int(person_sessions["dropout_next"].sum() - complete["dropout_next"].sum())
    rows = complete.reset_index(drop=True)
    n_events = int(rows["dropout_next"].sum())
    if n_events == 0 or n_events == len(rows):
        raise DataError("fit_dropout_hazard: the complete rows have "
                        f"{'no' if n_events == 0 else 'only'} dropout events; the hazard model "
                        "needs both.")
    design_reason = therapist_design(rows)
    if cluster == "therapist" and design_reason:
        raise DataError(f"fit_dropout_hazard: SEs cannot be clustered by therapist: "
                        f"{design_reason}.")
    by = "therapist" if cluster == "therapist" or (cluster == "auto" and not design_reason) \
        else "client"
    reason = "" if by == "therapist" else (
        design_reason if cluster == "auto" else "clustering by client was requested")
    column = THERAPIST if by == "therapist" else CLIENT
    groups = pd.factorize(rows[column].astype(str), sort=True)[0]
    formula = hazard_formula(session_spline_df)
    model = smf.glm(formula, rows, family=sm.families.Binomial())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # IRLS to a tight tolerance: parity with R is checked to 1e-6
        result = model.fit(cov_type="cluster", tol=1e-12, maxiter=100,
                           cov_kwds={"groups": groups, "use_correction": False})
    n_clusters = int(groups.max()) + 1
    if n_clusters < 2:
        raise DataError("fit_dropout_hazard: cluster-robust SEs need at least 2 clusters.")
    estimate = np.asarray(result.params, dtype=float)
    # sandwich::vcovCL's default for a glm: HC0 with the cluster adjustment G/(G-1) only
    covariance = np.asarray(result.cov_params(), dtype=float) * n_clusters / (n_clusters - 1)
    se = np.sqrt(np.diag(covariance))
    z = estimate / se
    quantile = stats.norm.ppf(0.5 + conf_level / 2)
    names = ["(Intercept)" if name == "Intercept" else str(name)
             for name in result.params.index]
    table = pd.DataFrame({
        "term": names, "estimate": estimate, "se": se, "z": z,
        "p": 2 * stats.norm.sf(np.abs(z)),
        "ci_low": estimate - quantile * se, "ci_high": estimate + quantile * se,
    })
    table["odds_ratio"] = np.exp(table["estimate"])
    table["odds_ratio_ci_low"] = np.exp(table["ci_low"])
    table["odds_ratio_ci_high"] = np.exp(table["ci_high"])
    between = rows.groupby(CLIENT)["alliance_between_c"].first()
    info = {
        "formula": formula,
        "cluster": by,
        "cluster_reason": reason,
        "n_clusters": n_clusters,
        "n_rows": int(len(rows)),
        "n_clients": int(rows[CLIENT].nunique()),
        "n_events": n_events,
        "n_events_lost": n_events_lost,
        "se_type": "cluster-robust sandwich, small-sample factor G/(G-1) (sandwich::vcovCL's "
                   "default for a glm: type HC0, cadjust TRUE)",
        "sd_alliance_between": float(between.std(ddof=1)),
        "sd_alliance_within": float(rows["alliance_within"].std(ddof=1)),
        "converged": bool(result.converged),
        "conf_level": conf_level,
    }
    return DropoutHazard(table[HAZARD_COLUMNS], info)


def dropout_effect_d(result: DropoutHazard) -> pd.DataFrame:
    """The between-client alliance-dropout association on the scale of a standardised difference.

    Sharf, Primavera & Diener (2010) meta-analysed the difference in alliance between clients
    who dropped out and clients who did not: d = 0.55 (weaker alliance in dropouts). Our model's
    ``alliance_between_c`` coefficient ``b`` is a log odds per alliance point. For a 1-SD
    difference between clients (SD over clients, one value per client) it is ``b x SD``.

    Two conversions are given, with the first as ``d``:

    - ``d = -b x SD``: if alliance is normal with a common SD in dropouts and in completers,
      and their means differ by d SDs, the log odds of dropping out is linear in alliance with a
      slope of exactly d per SD (the logistic form of discriminant analysis; Efron 1975). This
      is the conversion that makes a continuous-predictor logit comparable to Sharf's d.
    - ``d_logistic = -b x SD x sqrt(3) / pi``: the Hasselblad & Hedges (1995) / Chinn (2000)
      conversion of a log odds ratio between two groups into d, assuming a logistic latent
      variable. It is shown because it is often used; for a log odds per SD of a continuous
      predictor it understates d by the factor sqrt(3)/pi (about 0.55).

    Caveats: ``b`` is a per-session hazard adjusted for current symptoms and session, not the
    odds of ever dropping out; the SD is of the between-client part over clients (the total SD
    within the dropout groups is slightly smaller); the sign is turned so that a positive d
    means weaker alliance before dropout, as in Sharf et al. The CI is the Wald CI of ``b``
    carried through the same conversion.

    Parameters
    ----------
    result : DropoutHazard
        :func:`fit_dropout_hazard` output.

    Returns
    -------
    DataFrame
        One row: ``term``, ``log_odds_per_sd``, ``odds_ratio_per_sd``, ``sd``, ``d``,
        ``d_ci_low``, ``d_ci_high``, ``d_logistic``, ``benchmark_d`` (0.55), ``conversion``.

    Examples
    --------
    >>> table = pd.DataFrame({"term": ["alliance_between_c"], "estimate": [-0.8],
    ...                       "ci_low": [-1.0], "ci_high": [-0.6]})
    >>> effect = dropout_effect_d(DropoutHazard(table, {"sd_alliance_between": 0.75}))
    >>> effect[["log_odds_per_sd", "d", "d_ci_low", "d_ci_high", "d_logistic"]].round(3)
       log_odds_per_sd    d  d_ci_low  d_ci_high  d_logistic
    0             -0.6  0.6      0.45       0.75       0.331
    """
    table = result.table.set_index("term")
    if "alliance_between_c" not in table.index:
        raise DataError("dropout_effect_d: the hazard model has no alliance_between_c term.")
    row = table.loc["alliance_between_c"]
    sd = float(result.info["sd_alliance_between"])
    per_sd = float(row["estimate"]) * sd
    factor = math.sqrt(3) / math.pi
    return pd.DataFrame([{
        "term": "alliance_between_c",
        "log_odds_per_sd": per_sd,
        "odds_ratio_per_sd": math.exp(per_sd),
        "sd": sd,
        "d": -per_sd,
        "d_ci_low": -float(row["ci_high"]) * sd,
        "d_ci_high": -float(row["ci_low"]) * sd,
        "d_logistic": -per_sd * factor,
        "benchmark_d": SHARF_D,
        "conversion": ("d = -(log odds per SD of between-client alliance): the slope per SD "
                       "equals d when alliance is normal with equal SDs in both groups; "
                       "d_logistic multiplies by sqrt(3)/pi (Chinn 2000)"),
    }])


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier


def kaplan_meier(time: Sequence[float], event: Sequence[int], conf_level: float = 0.95,
                 conf_type: str = "log") -> pd.DataFrame:
    """Kaplan-Meier estimate with Greenwood standard errors, as ``survival::survfit`` gives it.

    One row per distinct time with an event or a censoring: ``session`` (the time),
    ``at_risk``, ``events``, ``censored``, ``survival``, ``se`` (Greenwood SE of the survival:
    ``S x sqrt(sum d / (n (n - d)))``) and the CI. ``conf_type`` "log" (survfit's default:
    ``exp(log S -/+ z x se(log S))``, the upper limit capped at 1) or "plain" (``S -/+ z x se``,
    clipped to [0, 1]). Where the survival reaches 0 the SE and CI are missing, as in survfit.

    Parameters
    ----------
    time : sequence of float
        Each client's time (the session of the event or of censoring).
    event : sequence of int
        1 for an event (dropout), 0 for censoring.
    conf_level : float
        The confidence level of the CI.
    conf_type : {"log", "plain"}
        The CI's scale.

    Returns
    -------
    DataFrame
        The columns of :data:`KM_COLUMNS` without ``tertile``.

    Examples
    --------
    >>> kaplan_meier([2, 3, 3, 5, 6], [1, 1, 0, 1, 0]).round(4)
       session  at_risk  events  censored  survival      se  ci_low  ci_high
    0        2        5       1         0       0.8  0.1789  0.5161      1.0
    1        3        4       1         1       0.6  0.2191  0.2933      1.0
    2        5        2       1         0       0.3  0.2387  0.0631      1.0
    3        6        1       0         1       0.3  0.2387  0.0631      1.0
    """
    if conf_type not in ("log", "plain"):
        raise ValueError(f"conf_type must be 'log' or 'plain', not {conf_type!r}")
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    if len(time) == 0:
        return pd.DataFrame(columns=KM_COLUMNS[1:])
    times, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=event, minlength=len(times)).astype(int)
    exits = np.bincount(inverse, minlength=len(times))
    at_risk = len(time) - np.concatenate([[0], np.cumsum(exits)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - events / at_risk)
        greenwood = np.cumsum(np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0))
        se_log = np.sqrt(greenwood)
        se_log = np.where(survival > 0, se_log, np.nan)
        z = stats.norm.ppf(0.5 + conf_level / 2)
        if conf_type == "log":
            low = np.exp(np.log(survival) - z * se_log)
            high = np.minimum(np.exp(np.log(survival) + z * se_log), 1.0)
        else:
            low = np.clip(survival - z * se_log * survival, 0.0, 1.0)
            high = np.clip(survival + z * se_log * survival, 0.0, 1.0)
    exact = times.astype(int) if np.all(times == np.round(times)) else times
    return pd.DataFrame({
        "session": exact, "at_risk": at_risk.astype(int), "events": events,
        "censored": (exits - events).astype(int), "survival": survival,
        "se": se_log * survival, "ci_low": low, "ci_high": high,
    })


def alliance_tertiles(early_alliance: pd.Series) -> pd.Series:
    """Tertile of each client's early alliance: "low", "middle" or "high".

    Cut at the 1/3 and 2/3 quantiles of the clients' values (R's default ``quantile``, type 7),
    right-closed: low <= q1 < middle <= q2 < high. Ties at a cut stay together, so the groups
    may be unequal (and "middle" empty when q1 = q2); missing values stay missing.

    Parameters
    ----------
    early_alliance : Series
        One early-alliance value per client (any index).

    Returns
    -------
    Series
        The tertile of each value (string dtype, on the same index; missing where the value is).

    Examples
    --------
    >>> alliance_tertiles(pd.Series([1.0, 2, 3, 4, 5, 6], index=list("abcdef"))).tolist()
    ['low', 'low', 'middle', 'middle', 'high', 'high']
    """
    values = early_alliance.astype(float)
    q1, q2 = values.quantile([1 / 3, 2 / 3]).to_numpy()
    label = np.where(values <= q1, "low", np.where(values <= q2, "middle", "high"))
    out = pd.Series(label, index=early_alliance.index, dtype="string")
    out[values.isna()] = pd.NA
    return out


def kaplan_meier_by_tertile(
    episodes: pd.DataFrame,
    early_alliance: pd.Series | pd.DataFrame,
    conf_level: float = 0.95,
    conf_type: str = "log",
    client_col: str = CLIENT,
    alliance_col: str = "alliance_early",
) -> pd.DataFrame:
    """Kaplan-Meier estimates of time to dropout by early-alliance tertile.

    Time is ``last_session`` and the event ``dropout`` of :func:`dropout_episodes`; clients who
    did not drop out are censored at their last session. Tertiles are from
    :func:`alliance_tertiles` over the clients with an early alliance (docs/methods.md section 3:
    the mean over sessions 1-3); clients without one are left out. Checked against R's
    ``survival::survfit(Surv(time, event) ~ tertile)`` (``tests/r/fit_dropout.R``).

    Parameters
    ----------
    episodes : DataFrame
        :func:`dropout_episodes` output.
    early_alliance : Series or DataFrame
        A Series indexed by client, or a frame with ``client_col`` and ``alliance_col`` (one
        value per client; e.g. the derived frame's ``alliance_early``, deduplicated).
    conf_level, conf_type
        As :func:`kaplan_meier`.
    client_col, alliance_col : str
        Column names.

    Returns
    -------
    DataFrame
        Columns :data:`KM_COLUMNS` plus ``n_clients``, ``alliance_min`` and ``alliance_max`` of
        the tertile; tertiles in the order low, middle, high.

    Examples
    --------
    >>> ends = pd.DataFrame({"client_id": list("abcdef"), "last_session": [2, 3, 5, 6, 8, 8],
    ...                      "dropout": [1, 1, 1, 0, 1, 0]})
    >>> early = pd.Series([3.1, 3.5, 4.0, 4.2, 5.5, 6.0], index=list("abcdef"))
    >>> kaplan_meier_by_tertile(ends, early)[["tertile", "session", "at_risk", "events",
    ...                                        "survival"]]
      tertile  session  at_risk  events  survival
    0     low        2        2       1       0.5
    1     low        3        1       1       0.0
    2  middle        5        2       1       0.5
    3  middle        6        1       0       0.5
    4    high        8        2       1       0.5
    """
    _require(episodes, [client_col, "last_session", "dropout"], "kaplan_meier_by_tertile")
    if isinstance(early_alliance, pd.DataFrame):
        _require(early_alliance, [client_col, alliance_col], "kaplan_meier_by_tertile")
        early = early_alliance.drop_duplicates(client_col).set_index(client_col)[alliance_col]
    else:
        early = early_alliance
    early = early.copy()
    early.index = early.index.astype(str)
    early = early.dropna()
    tertile = alliance_tertiles(early)
    ends = episodes.assign(**{client_col: episodes[client_col].astype(str)})
    ends = ends[ends[client_col].isin(early.index)]
    ends = ends.assign(tertile=ends[client_col].map(tertile),
                       alliance=ends[client_col].map(early).astype(float))
    pieces = []
    for name in TERTILES:
        group = ends[ends["tertile"] == name]
        if group.empty:
            continue
        curve = kaplan_meier(group["last_session"], group["dropout"], conf_level, conf_type)
        curve.insert(0, "tertile", name)
        curve["n_clients"] = len(group)
        curve["alliance_min"] = float(group["alliance"].min())
        curve["alliance_max"] = float(group["alliance"].max())
        pieces.append(curve)
    if not pieces:
        return pd.DataFrame(columns=[*KM_COLUMNS, "n_clients", "alliance_min", "alliance_max"])
    return pd.concat(pieces, ignore_index=True)


__all__ = [
    "DropoutHazard",
    "ENDING_CATEGORIES",
    "PROXY_ACTIVE_WEEKS",
    "PROXY_MIN_SESSIONS",
    "STATUS_CATEGORIES",
    "alliance_tertiles",
    "attendance_table",
    "attended_sessions",
    "dropout_effect_d",
    "dropout_episodes",
    "fit_dropout_hazard",
    "hazard_formula",
    "kaplan_meier",
    "kaplan_meier_by_tertile",
    "person_session_data",
    "proxy_rule_text",
]
