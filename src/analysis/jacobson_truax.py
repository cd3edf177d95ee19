"""Jacobson-Truax: the reliable change index and the clinical-significance cut-off, per outcome.

Jacobson & Truax (1991), J Consult Clin Psychol 59(1), 12-19 (docs/methods.md section 2):
SE = SD_first x sqrt(1 - r_xx), S_diff = sqrt(2) x SE, RC = change / S_diff, reliable when |RC|
exceeds the criterion (1.96). ``r_xx`` comes from ``episodes.reliability``, else the registry,
else Cronbach's alpha of each client's first complete administration in the data
(:func:`estimate_sample_reliability`). The cut-off is c = (SD0 x M1 + SD1 x M0) / (SD0 + SD1)
with functional norms, else a = M1 -/+ 2 x SD1 from the sample's first scores.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import pandas as pd

from analysis.instruments import Instrument
from analysis.scoring import cronbach_alpha_input
from analysis.settings import EpisodeSettings

log = logging.getLogger(__name__)


def estimate_sample_reliability(
    administrations: pd.DataFrame,
    registry: Mapping[str, Instrument],
    instruments: Sequence[str],
) -> dict[str, float]:
    """Cronbach's alpha of each instrument's first complete administration per client.

    Parameters
    ----------
    administrations : DataFrame
        ``administrations.parquet``.
    registry : mapping of str to Instrument
    instruments : sequence of str
        Instrument keys (usually the outcome instruments).

    Returns
    -------
    dict of str to float
        Alpha (:func:`pingouin.cronbach_alpha`) per instrument, for instruments with at least two
        items and two clients and an alpha strictly between 0 and 1 (anything else cannot serve as
        ``r_xx``; it is left out and logged).

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> items = [[0, 1, 0, 1, 0, 0, 1], [1, 1, 2, 1, 1, 2, 1], [2, 2, 2, 3, 2, 1, 2],
    ...          [3, 3, 2, 3, 3, 3, 2], [1, 0, 1, 1, 0, 1, 1]]
    >>> administrations = pd.DataFrame(items, columns=[f"item_{i}" for i in range(1, 8)]).assign(
    ...     client_id=list("abcde"), session=1, instrument="gad7", given_total=float("nan"))
    >>> alphas = estimate_sample_reliability(administrations, build_registry(), ["gad7"])
    >>> {key: round(alpha, 3) for key, alpha in alphas.items()}
    {'gad7': 0.952}
    """
    alphas: dict[str, float] = {}
    for key in instruments:
        instrument = registry[key]
        matrix = cronbach_alpha_input(administrations, instrument)
        if instrument.n_items < 2 or len(matrix) < 2:
            log.info("%s: too few complete administrations for Cronbach's alpha", instrument.label)
            continue
        import pingouin

        alpha = float(pingouin.cronbach_alpha(data=matrix[instrument.item_columns])[0])
        if math.isfinite(alpha) and 0 < alpha < 1:
            alphas[key] = alpha
        else:
            log.warning(
                "%s: Cronbach's alpha of the first administrations is %s; not usable as r_xx",
                instrument.label,
                f"{alpha:.3f}" if math.isfinite(alpha) else "undefined",
            )
    return alphas


def jacobson_truax_parameters(
    episodes: pd.DataFrame,
    settings: EpisodeSettings,
    sample_reliability: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The numbers behind the Jacobson-Truax reliable change index and cut-off, per outcome.

    Parameters
    ----------
    episodes : DataFrame
        With ``outcome``, ``first_score`` and ``n_scored`` (or ``has_outcome``); the sample
        statistics use the first scores of episodes with an outcome (>= 2 scores).
    settings : EpisodeSettings
        The outcome instruments and the ``episodes`` config section.
    sample_reliability : mapping of str to float, optional
        Cronbach's alpha per instrument, used when config and registry give no ``r_xx``.
    The published copy (``n_with_outcome`` as a count of people, small cells hidden) is made by
    :func:`analysis.episodes.publish_episodes`.

    Returns
    -------
    DataFrame
        One row per outcome (in order of appearance): ``outcome, direction, n_with_outcome,
        mean_first, sd_first`` (sample SD, ddof 1), ``r_xx, r_xx_source`` ("config",
        "registry", "sample_alpha" or "unavailable"), ``se_measurement`` = SD_first x
        sqrt(1 - r_xx), ``s_diff`` = sqrt(2) x SE, ``rci_criterion``, ``reliable_change_points``
        (criterion x S_diff: the change in points that is reliable), ``functional_mean,
        functional_sd, norms_source`` ("config", "registry" or "none"), ``cutoff`` and
        ``cutoff_formula``: "c" = (SD0 x M1 + SD1 x M0) / (SD0 + SD1) with functional norms
        (M0, SD0) and the sample's first scores (M1, SD1); else "a" = M1 - 2 x SD1 for
        higher-is-worse instruments (M1 + 2 x SD1 for higher-is-better: "a" lies two SDs from the
        dysfunctional mean toward health); "unavailable" with fewer than two first scores.

    Notes
    -----
    Jacobson & Truax (1991), J Consult Clin Psychol 59(1), 12-19.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> settings = EpisodeSettings(outcomes=("phq9",), reliability={"phq9": 0.84},
    ...                            instruments={"phq9": BUILT_IN["phq9"].params("episodes")})
    >>> episodes = pd.DataFrame({"outcome": ["phq9"] * 4, "n_scored": [3, 2, 5, 2],
    ...                          "first_score": [10.0, 14.0, 18.0, 22.0]})
    >>> jacobson_truax_parameters(episodes, settings)[
    ...     ["sd_first", "s_diff", "cutoff", "cutoff_formula"]].round(4)
       sd_first  s_diff  cutoff cutoff_formula
    0     5.164  2.9212   5.672              a
    """
    registry = settings.registry()
    sample_reliability = dict(sample_reliability or {})
    has_outcome = (
        episodes["has_outcome"].astype(bool)
        if "has_outcome" in episodes.columns
        else episodes["n_scored"] >= 2
    )
    rows = []
    for key in pd.unique(episodes["outcome"].astype("string")):
        instrument = registry[str(key)]
        first = episodes.loc[(episodes["outcome"] == key) & has_outcome, "first_score"].dropna()
        first = first.to_numpy(dtype="float64")
        n = len(first)
        mean_first = float(first.mean()) if n else math.nan
        sd_first = float(first.std(ddof=1)) if n >= 2 else math.nan

        if key in settings.reliability:
            r_xx, r_source = float(settings.reliability[key]), "config"
        elif instrument.reliability is not None:
            r_xx, r_source = float(instrument.reliability), "registry"
        elif key in sample_reliability and math.isfinite(sample_reliability[key]):
            r_xx, r_source = float(sample_reliability[key]), "sample_alpha"
        else:
            r_xx, r_source = math.nan, "unavailable"
        se = sd_first * math.sqrt(1 - r_xx) if math.isfinite(r_xx) else math.nan
        s_diff = math.sqrt(2) * se

        if key in settings.functional_norms:
            norms = settings.functional_norms[key]
            m0, sd0, norms_source = float(norms["mean"]), float(norms["sd"]), "config"
        elif instrument.functional_mean is not None:
            m0, sd0 = float(instrument.functional_mean), float(instrument.functional_sd)
            norms_source = "registry"
        else:
            m0, sd0, norms_source = math.nan, math.nan, "none"

        if not math.isfinite(sd_first):
            cutoff, formula = math.nan, "unavailable"
        elif norms_source != "none":
            cutoff, formula = (sd0 * mean_first + sd_first * m0) / (sd0 + sd_first), "c"
        else:
            towards_health = -1.0 if instrument.direction == "higher_worse" else 1.0
            cutoff, formula = mean_first + towards_health * 2 * sd_first, "a"

        rows.append(
            {
                "outcome": str(key),
                "direction": instrument.direction,
                "n_with_outcome": n,
                "mean_first": mean_first,
                "sd_first": sd_first,
                "r_xx": r_xx,
                "r_xx_source": r_source,
                "se_measurement": se,
                "s_diff": s_diff,
                "rci_criterion": float(settings.rci_criterion),
                "reliable_change_points": float(settings.rci_criterion) * s_diff,
                "functional_mean": m0,
                "functional_sd": sd0,
                "norms_source": norms_source,
                "cutoff": cutoff,
                "cutoff_formula": formula,
            }
        )
    table = pd.DataFrame(rows, columns=[
        "outcome", "direction", "n_with_outcome", "mean_first", "sd_first", "r_xx",
        "r_xx_source", "se_measurement", "s_diff", "rci_criterion", "reliable_change_points",
        "functional_mean", "functional_sd", "norms_source", "cutoff", "cutoff_formula",
    ])
    table["n_with_outcome"] = table["n_with_outcome"].astype("int64")
    return table
