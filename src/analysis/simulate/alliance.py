"""The alliance: the true (latent) alliance of every session, the WAI-SR items that measure it,
the observed score, and the within- and between-client parts that drive symptoms.

The latent alliance of client i at session t is ``T[i, t] = level[i] + trend[i] * (t - 1) +
noise[i, t]``; each WAI-SR item is ``T + item offset + item noise``, rounded and kept within the
item range. The observed score is scored by :func:`analysis.scoring.score_item_matrix` with the
registry's WAI-SR rule, exactly as the scoring stage scores the exports.

What drives symptoms (``alliance_driver``, see :data:`ALLIANCE_DRIVERS`):

- ``observed``: the observed score, split as docs/methods.md section 3 splits it (person mean
  over the client's observed sessions, centred on the mean over clients; within = score - person
  mean). The analysis model M2 is then the generating model: its estimate should be unbiased.
- ``latent``: the latent alliance, split into the client's true level (centred on the mean level
  over clients) and the session's deviation from that level, ``T - level``. The WAI-SR measures
  it with error; the item noise is set so that the observed score's reliability is the
  registry's (:func:`item_sd_for_reliability`). Person-mean centring of an error-laden score
  attenuates the within estimate by about the within-client reliability
  (:func:`analysis.simulate.recovery.expected_within_attenuation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.scoring import score_item_matrix
from analysis.simulate.parameters import ALLIANCE, WAI_ITEM_OFFSETS

# The variance of an item's rounding error: a uniform error on (-0.5, 0.5).
ROUNDING_VARIANCE = 1.0 / 12.0


def draw_alliance(
    rng: np.random.Generator,
    layout: dict[str, np.ndarray],
    params: dict[str, float],
    reliability: float | None = None,
) -> dict[str, Any]:
    """WAI-SR items and the latent alliance of every attended session.

    With ``reliability`` the item noise SD comes from :func:`item_sd_for_reliability` (the
    latent driver), else from ``params["alliance_sd_item"]``; the random draws are the same
    either way (the SD only scales them).

    Returns ``items`` (rows x items, float), ``full_mean`` (the all-items mean of every
    administration), ``latent`` (T per row), ``level`` (per client) and ``sd_item``.
    """
    client_of_row = layout["client_of_row"]
    n_clients = layout["n_sessions"].size
    level = rng.normal(params["alliance_mean"], params["alliance_sd_client"], n_clients)
    trend = rng.normal(params["alliance_trend_mean"], params["alliance_trend_sd"], n_clients)
    latent = (
        level[client_of_row]
        + trend[client_of_row] * (layout["session"] - 1)
        + rng.normal(0.0, params["alliance_sd_session"], client_of_row.size)
    )
    sd_item = (params["alliance_sd_item"] if reliability is None
               else item_sd_for_reliability(latent, reliability, ALLIANCE.n_items))
    item_noise = rng.normal(0.0, sd_item, (client_of_row.size, ALLIANCE.n_items))
    items = np.clip(
        np.rint(latent[:, None] + np.asarray(WAI_ITEM_OFFSETS) + item_noise),
        ALLIANCE.item_min,
        ALLIANCE.item_max,
    )
    return {"items": items, "full_mean": items.mean(axis=1), "latent": latent, "level": level,
            "sd_item": float(sd_item)}


def item_sd_for_reliability(latent: np.ndarray, reliability: float, n_items: int) -> float:
    """The item noise SD that gives the mean of ``n_items`` items the reliability ``reliability``.

    Reliability is var(T) / var(observed) over administrations (what Cronbach's alpha estimates
    for parallel items): the mean's error variance is ``var(T) * (1 - r) / r``, and each item's
    error is its noise plus its rounding error (variance 1/12). Clipping at the item range is
    ignored, so the realised reliability (``truth["alliance"]["realised_reliability"]``) differs
    a little.
    """
    if not 0.0 < reliability < 1.0:
        raise ValueError(f"reliability must lie between 0 and 1 (got {reliability}).")
    variance = float(np.var(latent)) if latent.size > 1 else 0.0
    error_of_mean = variance * (1.0 - reliability) / reliability
    return float(np.sqrt(max(n_items * error_of_mean - ROUNDING_VARIANCE, 0.0)))


def observed_score(items: np.ndarray) -> np.ndarray:
    """The WAI-SR score of each administration as the scoring stage computes it (NaN: unscored)."""
    return score_item_matrix(items, ALLIANCE)


def split_alliance(
    alliance_observed: np.ndarray,
    alliance_full: np.ndarray,
    client_of_row: np.ndarray,
    n_clients: int,
) -> dict[str, Any]:
    """Observed person means, centred between parts and within parts (docs/methods.md section 3).

    These drive symptoms under the observed driver. Symptoms need a within value at every
    session, also where the alliance went unobserved (the model then cannot use that session):
    there the all-items mean stands in. A client with no observed alliance at all gets the mean
    of the all-items means as person mean.
    """
    observed = ~np.isnan(alliance_observed)
    n_observed = np.bincount(client_of_row, weights=observed, minlength=n_clients)
    sum_observed = np.bincount(
        client_of_row, weights=np.where(observed, alliance_observed, 0.0), minlength=n_clients
    )
    n_rows = np.bincount(client_of_row, minlength=n_clients)
    full_mean = np.bincount(client_of_row, weights=alliance_full, minlength=n_clients) / n_rows
    has_observed = n_observed > 0
    person_mean = np.where(has_observed, sum_observed / np.maximum(n_observed, 1), full_mean)
    centre = float(person_mean[has_observed].mean()) if has_observed.any() else float("nan")
    between_c = person_mean - centre
    driving = np.where(observed, alliance_observed, alliance_full)
    return {
        "driver": "observed",
        "observed": alliance_observed,
        "within_driving": driving - person_mean[client_of_row],
        "within_observed": alliance_observed - np.where(has_observed, person_mean, np.nan)[
            client_of_row
        ],
        "between_c": between_c,
        "between_c_observed": np.where(has_observed, between_c, np.nan),
        "centre": centre,
    }


def drive_by_latent(
    alliance: dict[str, Any], drawn: dict[str, Any], client_of_row: np.ndarray
) -> dict[str, Any]:
    """``alliance`` (from :func:`split_alliance`) with the latent alliance as the driver.

    Within: ``T - level`` (the session against the client's true level: no later session enters
    it); between: ``level`` centred on the mean level over clients. Adds the realised measurement
    quality for the truth: ``realised_reliability`` (squared correlation of the observed score
    with T) and ``realised_within_attenuation`` (the regression slope of the driving within part
    on the observed, person-mean-centred score: what an estimate of the within effect is
    multiplied by, to first order).
    """
    latent, level = drawn["latent"], drawn["level"]
    latent_centre = float(level.mean()) if level.size else float("nan")
    within_true = latent - level[client_of_row]
    observed = alliance["observed"]
    scored = ~np.isnan(observed)
    within_observed = alliance["within_observed"]
    usable = ~np.isnan(within_observed)
    if scored.sum() > 2 and np.std(observed[scored]) > 0:
        realised_reliability = float(np.corrcoef(observed[scored], latent[scored])[0, 1] ** 2)
    else:
        realised_reliability = float("nan")
    square = float(np.sum(within_observed[usable] ** 2))
    attenuation = (float(np.sum(within_observed[usable] * within_true[usable])) / square
                   if square > 0 else float("nan"))
    return {
        **alliance,
        "driver": "latent",
        "latent": latent,
        "within_driving": within_true,
        "between_c": level - latent_centre,
        "latent_centre": latent_centre,
        "sd_item": drawn["sd_item"],
        "realised_reliability": realised_reliability,
        "realised_within_attenuation": attenuation,
    }
