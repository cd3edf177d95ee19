"""Symptoms: the PHQ-9 and GAD-7 totals of every session, their items and observed scores.

Intake totals are drawn for the first session; each later total follows the lagged model M2 of
docs/methods.md in the alliance parts that drive symptoms (:mod:`analysis.simulate.alliance`)::

    Y[i, t+1] = intercept + rho * Y[i, t] + within * A_w[i, t] + between * A_b_c[i]
                + session_slope * t + u[i] + v[j] + e[i, t+1]

where ``Y[i, t]`` is the observed score at t (as scored, prorated when items are missing), ``u``
and ``v`` are client and therapist random intercepts and ``e`` is residual noise; the new total
is the latent value rounded and clipped to the instrument's range and is spread over items that
sum to it exactly. Scores are computed by :func:`analysis.scoring.score_item_matrix` with each
instrument's registry rule. Symptoms never act on alliance.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from analysis.scoring import score_item_matrix
from analysis.simulate.missing import draw_missing_items
from analysis.simulate.parameters import OUTCOME_ITEM_WEIGHTS, OUTCOMES


def draw_symptoms(
    rng: np.random.Generator,
    rng_missing: np.random.Generator,
    layout: dict[str, np.ndarray],
    alliance: dict[str, Any],
    params: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Totals, items and observed scores of each outcome, session by session (all clients at once).

    Returns, per outcome key: ``total`` (int, rows), ``items`` (rows x items, float, NaN =
    missing), ``score`` (observed score, NaN = unscored), ``clipped`` (rows whose latent value
    fell outside the range before clipping) and ``top`` (the highest total).
    """
    client_of_row = layout["client_of_row"]
    n_sessions = layout["n_sessions"]
    first_row = layout["first_row"]
    therapist_of_client = layout["therapist_of_client"]
    n_clients = n_sessions.size
    n_therapists = int(layout["n_therapists"])
    n_rows = client_of_row.size
    keys = list(OUTCOMES)

    client_effect = bivariate(
        rng, n_clients, [params[f"{k}_sd_client"] for k in keys],
        params["outcome_client_correlation"],
    )
    therapist_effect = bivariate(
        rng, n_therapists, [params[f"{k}_sd_therapist"] for k in keys],
        params["outcome_therapist_correlation"],
    )
    residual = bivariate(
        rng, n_rows, [params[f"{k}_sd_residual"] for k in keys],
        params["outcome_residual_correlation"],
    )
    intake = bivariate(
        rng, n_clients, [params[f"{k}_intake_sd"] for k in keys],
        params["outcome_intake_correlation"],
    ) + np.array([params[f"{k}_intake_mean"] for k in keys])

    result: dict[str, dict[str, Any]] = {}
    for position, key in enumerate(keys):
        instrument = OUTCOMES[key]
        missing = draw_missing_items(rng_missing, n_rows, instrument.n_items)
        result[key] = {
            "total": np.zeros(n_rows, dtype=np.int64),
            "items": np.full((n_rows, instrument.n_items), np.nan),
            "score": np.full(n_rows, np.nan),
            "clipped": np.zeros(n_rows, dtype=bool),
            "missing": missing,
            "top": int(instrument.total_max),
            "position": position,
        }

    def place(key: str, rows: np.ndarray, latent: np.ndarray) -> None:
        state = result[key]
        instrument = OUTCOMES[key]
        rounded = np.rint(latent)
        total = np.clip(rounded, instrument.total_min, state["top"]).astype(np.int64)
        state["clipped"][rows] = rounded != total
        state["total"][rows] = total
        items = split_total(rng, total, OUTCOME_ITEM_WEIGHTS[key], int(instrument.item_max))
        items = items.astype(float)
        missing = state["missing"][rows]
        items[missing] = np.nan
        state["items"][rows] = items
        state["score"][rows] = score_item_matrix(items, instrument)

    intake_rows = first_row
    for key in keys:
        place(key, intake_rows, intake[:, result[key]["position"]])

    within = alliance["within_driving"]
    between_c = alliance["between_c"]
    for t in range(1, int(layout["max_sessions"])):
        continuing = np.flatnonzero(n_sessions > t)
        if continuing.size == 0:
            break
        rows_now = first_row[continuing] + t - 1
        rows_next = rows_now + 1
        therapists = therapist_of_client[continuing]
        for key in keys:
            state = result[key]
            k = state["position"]
            # The observed score carries the process; where it is unscored (too many missing
            # items, questionnaire not given) the client's actual total does.
            now = np.where(
                np.isnan(state["score"][rows_now]),
                state["total"][rows_now],
                state["score"][rows_now],
            )
            latent = (
                params[f"{key}_intercept"]
                + params[f"{key}_rho"] * now
                + params[f"{key}_within"] * within[rows_now]
                + params[f"{key}_between"] * between_c[continuing]
                + params[f"{key}_session_slope"] * t
                + client_effect[continuing, k]
                + therapist_effect[therapists, k]
                + residual[rows_next, k]
            )
            place(key, rows_next, latent)
    return result


def bivariate(
    rng: np.random.Generator, size: int, sds: Sequence[float], correlation: float
) -> np.ndarray:
    """``size`` x 2 normal draws with means 0, the given SDs and correlation."""
    # Written out rather than through a covariance factorisation, so that a zero SD or a
    # correlation of +-1 works too.
    first, second = rng.standard_normal((2, size))
    return np.column_stack(
        [
            sds[0] * first,
            sds[1] * (correlation * first + np.sqrt(1.0 - correlation**2) * second),
        ]
    )


def split_total(
    rng: np.random.Generator, totals: np.ndarray, weights: Sequence[float], item_max: int
) -> np.ndarray:
    """Items (rows x len(weights), each 0..item_max) that sum exactly to ``totals``.

    Each item offers ``item_max`` unit slots; the total fills that many slots, drawn without
    replacement with probability proportional to the item's weight (exponential keys divided by
    the weight, smallest keys win; Efraimidis and Spirakis 2006). Items start at 0, as the
    PHQ-9's and GAD-7's do.
    """
    n_items = len(weights)
    slot_weights = np.repeat(np.asarray(weights, dtype=float), item_max)
    keys = rng.exponential(size=(totals.size, n_items * item_max)) / slot_weights
    ordered = np.sort(keys, axis=1)
    cut = np.take_along_axis(ordered, np.clip(totals - 1, 0, None)[:, None], axis=1)
    cut[totals == 0] = -np.inf
    chosen = keys <= cut
    return chosen.reshape(totals.size, n_items, item_max).sum(axis=2)
