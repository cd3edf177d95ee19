"""Derive the session-level analysis variables of docs/methods.md section 3.

Input: ``scores`` (one row per scored administration) and ``sessions`` (the session registry).
Output: the ``derived`` frame, one row per (outcome, client, session), with generic column names
so that one model formula serves every outcome:

- ``symptom_score``; ``symptom_next`` (the score at the client's next session when the gap in
  session numbers is at most ``max_lag_gap`` and, with ``max_lag_days`` set, the sessions are at
  most that many days apart; never centred: person-centring a lagged outcome causes
  dynamic-panel bias); ``symptom_within`` and ``symptom_between_c`` (person-mean centring,
  and the client mean centred on the mean of client means) for the reverse model;
- the same for the alliance score (``alliance_score``, ``alliance_next``, ``alliance_within``,
  ``alliance_between_c``) and for each alliance subscale (``alliance_<sub>_score`` ...);
- ``alliance_within_detrended``: the residual of a per-client OLS of alliance on session (NaN with
  fewer than 3 observed scores), for the sensitivity analysis against shared time trends;
- ``alliance_early``: the client's mean alliance over their first ``early_sessions`` sessions
  (counted from the client's first session number, so numbering from 3 needs no config edit),
  needing at least ``early_min_observed`` of them;
- ``n_sessions``: session records of the client.

Everything is vectorised (group-wise transforms), so a million session rows take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.settings import DeriveSettings

DERIVED_KEY = ["outcome", "client_id", "session"]


def derive_analysis_frame(
    scores: pd.DataFrame, sessions: pd.DataFrame, settings: DeriveSettings
) -> pd.DataFrame:
    """Build the ``derived`` frame (see the module docstring) for every outcome instrument.

    Parameters
    ----------
    scores : DataFrame
        One row per scored administration (``client_id``, ``session``, ``instrument``, ``score``
        and, for an alliance with subscales, ``subscale_<name>``).
    sessions : DataFrame
        The session registry (``client_id``, ``therapist_id``, ``session``, ``day``).
    settings : DeriveSettings
        The alliance and outcome instruments, the lag limits and the early-alliance window.

    Returns
    -------
    DataFrame
        One row per (outcome, client, session) of the registry, sorted by them.

    Raises
    ------
    ConfigError
        When the alliance or an outcome instrument has no scores in the data.

    Examples
    --------
    >>> sessions = pd.DataFrame({"client_id": ["a"] * 3 + ["b"] * 3,
    ...                          "therapist_id": ["t1"] * 6, "session": [1, 2, 3] * 2,
    ...                          "day": [0, 7, 14] * 2})
    >>> scores = pd.DataFrame({
    ...     "client_id": sessions["client_id"].tolist() * 2,
    ...     "session": sessions["session"].tolist() * 2,
    ...     "instrument": ["wai_sr"] * 6 + ["phq9"] * 6,
    ...     "score": [3.0, 3.5, 4.0, 4.5, 4.0, 5.0, 15, 12, 10, 9, 9, 6]})
    >>> settings = DeriveSettings(alliance="wai_sr", outcomes=("phq9",))
    >>> derived = derive_analysis_frame(scores, sessions, settings)
    >>> derived[["client_id", "session", "symptom_next", "alliance_within", "alliance_early"]]
      client_id  session  symptom_next  alliance_within  alliance_early
    0         a        1          12.0             -0.5             3.5
    1         a        2          10.0              0.0             3.5
    2         a        3           NaN              0.5             3.5
    3         b        1           9.0              0.0             4.5
    4         b        2           6.0             -0.5             4.5
    5         b        3           NaN              0.5             4.5
    >>> derive_analysis_frame(scores, sessions, DeriveSettings(alliance="wai_sr", outcomes=("gad7",)))
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: analysis.outcomes: no scores for instrument 'gad7' in the data. ...
    """
    alliance, outcomes = settings.alliance, list(settings.outcomes)
    lag = (settings.max_lag_gap, settings.max_lag_days)
    available = set(scores["instrument"].unique())
    for key, name in [(alliance, "analysis.alliance")] + [(o, "analysis.outcomes") for o in outcomes]:
        if key not in available:
            raise ConfigError(
                f"{name}: no scores for instrument {key!r} in the data. Check that an input table "
                f"declares it under instruments: (instruments with scores: {', '.join(sorted(available))})."
            )
    subscales = [c.removeprefix("subscale_") for c in scores.columns if c.startswith("subscale_")]
    alliance_scores = scores[scores["instrument"] == alliance]
    subscales = [s for s in subscales if alliance_scores[f"subscale_{s}"].notna().any()]

    base = _session_frame(scores, sessions, [alliance, *outcomes])
    alliance_part = _variable_block(alliance_scores, "score", "alliance", lag, base)
    for sub in subscales:
        block = _variable_block(alliance_scores, f"subscale_{sub}", f"alliance_{sub}", lag, base)
        alliance_part = alliance_part.join(block.drop(columns=[f"alliance_{sub}_next"]))
    alliance_part["alliance_within_detrended"] = _detrended(base, alliance_part["alliance_score"])
    alliance_part["alliance_early"] = _early_mean(
        base, alliance_part["alliance_score"], settings.early_sessions, settings.early_min_observed
    )

    frames = []
    for outcome in outcomes:
        symptom = _variable_block(scores[scores["instrument"] == outcome], "score", "symptom", lag, base)
        frame = pd.concat([base, symptom, alliance_part], axis=1)
        frame.insert(0, "outcome", outcome)
        frames.append(frame)
    derived = pd.concat(frames, ignore_index=True)
    derived["outcome"] = derived["outcome"].astype("string")
    return derived.sort_values(DERIVED_KEY, kind="stable").reset_index(drop=True)


def _session_frame(scores: pd.DataFrame, sessions: pd.DataFrame, instruments: list[str]) -> pd.DataFrame:
    """Every session of a registered client: its records plus sessions with a score but no record."""
    registered = set(sessions["client_id"])
    scored = scores.loc[
        scores["instrument"].isin(instruments) & scores["client_id"].isin(registered), ["client_id", "session"]
    ]
    frame = sessions[["client_id", "therapist_id", "session", "day"]].merge(
        scored.drop_duplicates(), on=["client_id", "session"], how="outer"
    )
    frame = frame.sort_values(["client_id", "session"], kind="stable").reset_index(drop=True)
    # A score without a session record belongs to the client's therapist of the nearest record.
    frame["therapist_id"] = frame.groupby("client_id")["therapist_id"].ffill()
    frame["therapist_id"] = frame.groupby("client_id")["therapist_id"].bfill().astype("string")
    frame["n_sessions"] = frame["client_id"].map(sessions.groupby("client_id").size()).astype("int64")
    frame["session"] = frame["session"].astype("int64")
    frame["day"] = frame["day"].astype("Int64")
    return frame


def _variable_block(
    scores: pd.DataFrame, column: str, prefix: str, lag: tuple[int, int | None],
    base: pd.DataFrame,
) -> pd.DataFrame:
    """``<prefix>_score``, ``_next``, ``_within``, ``_between_c`` aligned with ``base``'s rows.

    ``lag`` is (largest gap in session numbers, largest gap in days or None) for ``_next``.
    """
    max_lag_gap, max_lag_days = lag
    observed = scores.loc[scores[column].notna(), ["client_id", "session", column]]
    observed = observed.sort_values(["client_id", "session"], kind="stable")
    value = base[["client_id", "session"]].merge(observed, on=["client_id", "session"], how="left")[column]
    value = value.astype("float64").set_axis(base.index)

    # Next observed score of the same client, if it is at most max_lag_gap sessions later.
    next_session = observed.groupby("client_id")["session"].shift(-1)
    next_value = observed.groupby("client_id")[column].shift(-1)
    close = next_session - observed["session"] <= max_lag_gap
    if max_lag_days is not None:
        # Days come from the session registry; a pair without dates cannot be shown to be close.
        day = observed[["client_id", "session"]].merge(
            base[["client_id", "session", "day"]], on=["client_id", "session"], how="left"
        )["day"].astype("float64").set_axis(observed.index)
        next_day = day.groupby(observed["client_id"]).shift(-1)
        close &= (next_day - day <= max_lag_days).fillna(False)
    pairs = observed.assign(_next=next_value.where(close))
    lagged = base[["client_id", "session"]].merge(
        pairs[["client_id", "session", "_next"]], on=["client_id", "session"], how="left"
    )["_next"].astype("float64").set_axis(base.index)

    client_mean = value.groupby(base["client_id"]).transform("mean")
    grand_mean = value.groupby(base["client_id"]).mean().mean()
    return pd.DataFrame(
        {
            f"{prefix}_score": value,
            f"{prefix}_next": lagged,
            f"{prefix}_within": value - client_mean,
            f"{prefix}_between_c": client_mean - grand_mean,
        },
        index=base.index,
    )


def _detrended(base: pd.DataFrame, alliance: pd.Series) -> pd.Series:
    """Residual of a per-client OLS of alliance on session (NaN with < 3 observed scores)."""
    session = base["session"].astype("float64").where(alliance.notna())
    groups = base["client_id"]
    n = alliance.groupby(groups).transform("count")
    session_mean = session.groupby(groups).transform("mean")
    alliance_mean = alliance.groupby(groups).transform("mean")
    ds = session - session_mean
    da = alliance - alliance_mean
    sxx = (ds * ds).groupby(groups).transform("sum")
    sxy = (ds * da).groupby(groups).transform("sum")
    slope = (sxy / sxx.replace(0.0, np.nan)).fillna(0.0)
    residual = da - slope * ds
    return residual.where(n >= 3)


def _early_mean(base: pd.DataFrame, alliance: pd.Series, early_sessions: int, min_observed: int) -> pd.Series:
    # Counted from each client's first session record, so that services numbering sessions
    # from 3 (or from a different number per client) get the same window as those from 1.
    groups = base["client_id"]
    first = base["session"].groupby(groups).transform("min")
    early = alliance.where(base["session"] - first < early_sessions)
    mean = early.groupby(groups).transform("mean")
    count = early.groupby(groups).transform("count")
    return mean.where(count >= min_observed)
