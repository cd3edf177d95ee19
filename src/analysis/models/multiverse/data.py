"""The multiverse's data variants: the pipeline's scoring and derivation under other settings.

One job per prorating option (:mod:`analysis.models.multiverse.specifications` lists the choices)
calls :func:`prepare_data_variant`: the administrations are scored with
:func:`analysis.scoring.score_administrations`, by the registry's rules (``lenient``) or with
prorating switched off (``strict``), and the session variables derived with
:func:`analysis.derive.derive_analysis_frame` with the primary analysis's settings. The result
is one frame with the derived columns the multiverse reads and, per lag of
``multiverse.choices.lag_gap``, the symptom score that many sessions later
(``symptom_next_gap<g>``): lag 1 is derive's ``symptom_next`` with consecutive sessions only
(``max_lag_gap`` 1; ``max_lag_days`` as configured), so it equals the pipeline's when the pipeline
pairs consecutive sessions; lag g > 1 is the same client's score at session number s + g exactly
(not the next score within g sessions, which would pool lags under one coefficient). Nothing of scoring or derivation is reimplemented here:
only their settings change. The fits are in :mod:`analysis.models.multiverse.fit`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pandas as pd

from analysis.errors import DataError
from analysis.settings import MultiverseDataSettings

#: The columns of a data variant (besides ``symptom_next_gap<g>``).
VARIANT_COLUMNS = ["outcome", "client_id", "therapist_id", "session", "n_sessions",
                   "symptom_score", "alliance_score", "alliance_within", "alliance_between_c",
                   "alliance_within_detrended"]
#: The symptom score g sessions later is ``symptom_next_gap<g>``.
NEXT_PREFIX = "symptom_next_gap"


def strict_instruments(instruments: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Scoring rules with prorating switched off: any missing item leaves no score.

    Parameters
    ----------
    instruments : mapping
        Instrument key -> its scoring declaration (:meth:`Instrument.params` for ``score``).

    Returns
    -------
    dict
        The same declarations with ``missing_rule: none`` and no missing item allowed (total or
        subscale), the registry's meaning of "no prorating".
    """
    return {key: {**dict(values), "missing_rule": "none", "max_missing": 0,
                  "subscale_max_missing": 0}
            for key, values in instruments.items()}


def prepare_data_variant(administrations: pd.DataFrame, sessions: pd.DataFrame,
                         settings: MultiverseDataSettings) -> pd.DataFrame:
    """The derived frame of one scoring variant, with the next symptom score per lag gap.

    Parameters
    ----------
    administrations : DataFrame
        ``administrations.parquet`` (rows of other instruments are ignored).
    sessions : DataFrame
        ``sessions.parquet``.
    settings : MultiverseDataSettings
        The prorating option (``lenient``: the registry's rules; ``strict``: no prorating), the
        scoring rules of alliance and outcomes, the derive settings and the lag gaps.

    Returns
    -------
    DataFrame
        :data:`VARIANT_COLUMNS` and ``symptom_next_gap<g>`` for each lag gap, one row per outcome,
        client and session, in the order of ``derived.parquet``. With ``lenient`` and the primary
        lag gap the columns equal those of ``derived.parquet``.

    Notes
    -----
    Scoring and derivation are the pipeline's own functions
    (:func:`analysis.scoring.score_administrations`,
    :func:`analysis.derive.derive_analysis_frame`); only their settings change.
    """
    from analysis.derive import DERIVED_KEY, derive_analysis_frame
    from analysis.instruments import registry_from_params
    from analysis.scoring import score_administrations

    if settings.prorating not in ("lenient", "strict"):
        raise DataError(f"multiverse.choices.prorating: unknown option {settings.prorating!r}")
    rules = (settings.instruments if settings.prorating == "lenient"
             else strict_instruments(settings.instruments))
    registry = registry_from_params(rules)
    chosen = administrations.loc[administrations["instrument"].isin(list(registry))]
    scores = score_administrations(chosen.reset_index(drop=True), registry)
    derived = derive_analysis_frame(scores, sessions,
                                    dataclasses.replace(settings.derive, max_lag_gap=1))
    variant = derived[VARIANT_COLUMNS].copy()
    for gap in settings.lag_gaps:
        variant[f"{NEXT_PREFIX}{int(gap)}"] = (derived["symptom_next"].to_numpy() if int(gap) == 1
                                               else exact_lag(variant, int(gap)))
    if not derived[DERIVED_KEY].equals(variant[DERIVED_KEY]):  # pragma: no cover
        raise RuntimeError("derive changed the rows")
    return variant


def exact_lag(frame: pd.DataFrame, lag: int) -> "np.ndarray":
    """The same client's symptom score at session number s + ``lag`` (NaN when none), per row.

    ``frame`` holds ``outcome, client_id, session, symptom_score`` (one row per outcome, client
    and session).
    """
    import numpy as np

    keys = ["outcome", "client_id", "session"]
    later = frame[keys + ["symptom_score"]].dropna(subset=["symptom_score"]).copy()
    later["session"] = later["session"] - lag
    merged = frame[keys].merge(later, on=keys, how="left", validate="one_to_one")
    return merged["symptom_score"].to_numpy(dtype=float, na_value=np.nan)


__all__ = ["NEXT_PREFIX", "VARIANT_COLUMNS", "prepare_data_variant", "strict_instruments"]
