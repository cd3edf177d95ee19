"""Attendance and endings with a known alliance effect on dropout (``engagement=True``).

Off by default, so the demo data and every default simulation stay as they were. When on,
:func:`add_engagement` turns a simulated study's exports into those of a service that records
attendance and endings:

1. **Dropout with a known alliance effect.** After each attended session ``t`` before the
   client's planned last one, the client drops out with probability
   ``logistic(dropout_intercept + dropout_between * A_between_c + dropout_within * A_within_t)``
   (the observed alliance split as the analysis splits it, in WAI-SR points; a missing alliance
   counts as the client's mean). This is exactly the discrete-time hazard model of
   :func:`analysis.engagement.dropout.fit_dropout_hazard` (without the symptom and session
   terms, whose true coefficients are 0). The sessions after a dropout are removed from both
   exports; the ``ending`` column of the session export says ``dropped out`` on every row of
   such a client and ``completed`` on those of a client who reached their planned last session.
2. **Missed appointments.** Before each attended session after the first, a did-not-attend
   appointment is added with probability ``dna_rate``. Appointments are numbered in order, so
   the ``session`` column of both exports is the appointment number (a missed one leaves a gap
   in the attended sessions), and the session export gains a ``status`` column (``attended`` or
   ``did not attend``); a missed appointment has a date and no questionnaire.

The client's alliance mean is taken over the planned sessions (before dropout), so the
analysis's mean over the sessions attended differs a little from the one that drove dropout:
the between-client estimate is recovered in sign and rough size (``tests/test_simulate.py``).
The within-client term is not a recovery target: the planned mean includes sessions after the
dropout, which the analysis cannot see, and with the default ``dropout_within`` of 0 the fitted
within-client term came out positive (0.9 log odds per point at 600 clients, seed 11).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import ConfigError

#: The default engagement effects: log odds of dropping out after a session. A baseline hazard
#: of about 6% per session, 1.5 log odds lower per WAI-SR point of the client's mean alliance
#: (about -0.7 per SD between clients, d = 0.7 on Sharf et al.'s scale), no within-client effect,
#: and one appointment in ten missed.
ENGAGEMENT_EFFECTS: dict[str, float] = {
    "dropout_intercept": -2.75,
    "dropout_between": -1.5,
    "dropout_within": 0.0,
    "dna_rate": 0.1,
}
#: The values of the session export's ``status`` and ``ending`` columns.
ATTENDED, DID_NOT_ATTEND = "attended", "did not attend"
COMPLETED, DROPPED_OUT = "completed", "dropped out"


def resolve_engagement(overrides: dict[str, Any] | None) -> dict[str, float]:
    """:data:`ENGAGEMENT_EFFECTS` with ``overrides`` applied (a ConfigError naming the key)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(ENGAGEMENT_EFFECTS))
    if unknown:
        raise ConfigError(f"simulate_study: unknown engagement effect(s) {', '.join(unknown)}; "
                          f"the ones that can be set are {', '.join(ENGAGEMENT_EFFECTS)}.")
    effects = {**ENGAGEMENT_EFFECTS, **{key: float(value) for key, value in overrides.items()}}
    if not 0.0 <= effects["dna_rate"] < 1.0:
        raise ConfigError("simulate_study: engagement effect dna_rate must be in [0, 1).")
    return effects


def add_engagement(sessions: pd.DataFrame, outcomes: pd.DataFrame, generated: pd.DataFrame,
                   rng: np.random.Generator, effects: dict[str, float]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Dropout with a known alliance effect, endings and missed appointments (module docstring).

    Parameters
    ----------
    sessions, outcomes : DataFrame
        The two raw exports of :func:`analysis.simulate.simulate_study` (raw client ids).
    generated : DataFrame
        Its generated quantities (one row per planned attended session, in client and session
        order, with ``alliance_within`` and ``alliance_between_c``).
    rng : numpy Generator
        The engagement's own random stream.
    effects : dict
        :func:`resolve_engagement` output.

    Returns
    -------
    (DataFrame, DataFrame, DataFrame, dict)
        The session export (with ``status`` and ``ending``), the outcome export and the
        generated frame, all cut at each dropout and renumbered by appointment, and the truth's
        ``engagement`` entry (the effects and the realised counts).
    """
    client = generated["client_id"].to_numpy()
    first = np.r_[True, client[1:] != client[:-1]]
    last = np.r_[client[1:] != client[:-1], True]
    within = np.nan_to_num(generated["alliance_within"].to_numpy(dtype=float))
    between = np.nan_to_num(generated["alliance_between_c"].to_numpy(dtype=float))
    logit = (effects["dropout_intercept"] + effects["dropout_between"] * between
             + effects["dropout_within"] * within)
    leaves = (rng.random(len(generated)) < 1.0 / (1.0 + np.exp(-logit))) & ~last
    # a row is kept when no earlier row of the client was a dropout
    start = np.flatnonzero(first)
    counts = np.diff(np.r_[start, len(generated)])
    left_before = np.cumsum(leaves) - leaves
    left_before = left_before - np.repeat(left_before[start], counts)
    keep = left_before == 0
    dropped = pd.Series(leaves & keep, index=generated.index).groupby(client, sort=False).any()

    kept = generated.loc[keep].reset_index(drop=True)
    kept_first = np.r_[True, kept["client_id"].to_numpy()[1:] != kept["client_id"].to_numpy()[:-1]]
    missed = (rng.random(len(kept)) < effects["dna_rate"]) & ~kept_first
    # appointment number of each attended session: its rank plus the missed ones before it
    steps = 1 + missed.astype(np.int64)
    cumulative = np.cumsum(steps)
    kept_start = np.flatnonzero(kept_first)
    appointment = cumulative - np.repeat(cumulative[kept_start] - 1,
                                         np.diff(np.r_[kept_start, len(kept)]))
    number = pd.Series(appointment, index=pd.MultiIndex.from_arrays(
        [kept["client_id"], kept["session"]]))

    def renumber(frame: pd.DataFrame) -> pd.DataFrame:
        keys = pd.MultiIndex.from_arrays([frame["client_id"].astype(str),
                                          pd.to_numeric(frame["session"], errors="coerce")])
        mapped = number.reindex(keys).to_numpy()
        known_client = frame["client_id"].isin(set(generated["client_id"]))
        # rows of planned sessions after a dropout go; orphan rows (no client) stay as they are
        out = frame.loc[~known_client.to_numpy() | ~np.isnan(mapped)].copy()
        values = mapped[~known_client.to_numpy() | ~np.isnan(mapped)]
        out["session"] = np.where(np.isnan(values), out["session"], values).astype("int64")
        return out

    new_sessions = renumber(sessions)
    new_outcomes = renumber(outcomes)
    new_sessions.insert(new_sessions.columns.get_loc("session_date") + 1, "status", ATTENDED)
    dna = kept.loc[missed, ["client_id", "therapist_id"]].copy()
    dna["session"] = appointment[missed] - 1
    dates = pd.to_datetime(sessions.drop_duplicates(["client_id", "session"])
                           .set_index(["client_id", "session"])["session_date"])
    rows = np.flatnonzero(missed)
    this = dates.reindex(pd.MultiIndex.from_arrays(
        [kept["client_id"].to_numpy()[rows], kept["session"].to_numpy()[rows]])).to_numpy()
    before = dates.reindex(pd.MultiIndex.from_arrays(
        [kept["client_id"].to_numpy()[rows - 1], kept["session"].to_numpy()[rows - 1]])).to_numpy()
    # a missed appointment halfway between the attended sessions around it
    dna["session_date"] = pd.DatetimeIndex(before + (this - before) / 2).floor("D").strftime(
        "%Y-%m-%d")
    dna["status"] = DID_NOT_ATTEND
    new_sessions = pd.concat([new_sessions, dna], ignore_index=True)
    ending = np.where(dropped.reindex(new_sessions["client_id"]).fillna(False).to_numpy(),
                      DROPPED_OUT, COMPLETED)
    new_sessions["ending"] = ending
    new_sessions = new_sessions.sort_values(["client_id", "session"], kind="stable")
    new_outcomes = new_outcomes.sort_values(["client_id", "session"], kind="stable")
    new_generated = kept.assign(session=appointment.astype(np.int64))
    truth = {
        "effects": dict(effects),
        "n_dropped_out": int(dropped.sum()),
        "n_completed": int((~dropped).sum()),
        "n_missed_appointments": int(missed.sum()),
        "n_sessions_removed": int((~keep).sum()),
        "hazard": "logit P(dropout after session t) = dropout_intercept + dropout_between * "
                  "A_between_c + dropout_within * A_within_t (observed alliance, planned "
                  "sessions; WAI-SR points)",
    }
    return (new_sessions.reset_index(drop=True), new_outcomes.reset_index(drop=True),
            new_generated, truth)


__all__ = ["ATTENDED", "COMPLETED", "DID_NOT_ATTEND", "DROPPED_OUT", "ENGAGEMENT_EFFECTS",
           "add_engagement", "resolve_engagement"]
