"""The simulator's parameters: instruments from the registry, effects, rates, and their checks.

Every fact about a questionnaire (item count and range, subscales, scoring and missing-item rule,
reliability) comes from the instrument registry (:data:`analysis.instruments.BUILT_IN`); what is
here is what the generator chooses: effect sizes, how readily each item is endorsed, missing-data
and invalid-row rates, and the out-of-range values that exports contain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.errors import ConfigError
from analysis.instruments import BUILT_IN, Instrument

#: The alliance instrument and the outcome instruments the generator writes, by key.
ALLIANCE: Instrument = BUILT_IN["wai_sr"]
OUTCOMES: dict[str, Instrument] = {key: BUILT_IN[key] for key in ("phq9", "gad7")}

# How readily each outcome item carries a point of the total (relative weights). PHQ-9 sleep and
# tiredness items are the most endorsed in clinical samples; item 9 (self-harm) is rarely above 0.
OUTCOME_ITEM_WEIGHTS: dict[str, tuple[float, ...]] = {
    "phq9": (1.0, 1.1, 1.3, 1.4, 0.9, 0.9, 0.8, 0.6, 0.05),
    "gad7": (1.1, 1.0, 1.2, 1.0, 0.8, 1.0, 0.8),
}
# Alliance items differ a little in how readily clients endorse them (bond items run highest).
WAI_ITEM_OFFSETS = (0.05, 0.0, 0.15, -0.10, 0.10, -0.05, 0.20, -0.05, 0.10, 0.0, -0.15, -0.05)

#: What drives symptoms: the OBSERVED alliance score centred on the client's observed mean (the
#: analysis model is then exactly the generating model), or the LATENT true alliance, which the
#: WAI-SR measures with error (its reliability in the registry), centred on the client's true
#: level (no future sessions enter it).
ALLIANCE_DRIVERS = ("observed", "latent")

DEFAULT_EFFECTS: dict[str, float] = {
    # Depression (PHQ-9 total, 0-27): effects in points per WAI-SR point (1-5 mean scale).
    "phq9_within": -1.5,
    "phq9_between": -2.0,
    "phq9_rho": 0.5,
    "phq9_session_slope": -0.1,
    "phq9_intercept": 5.5,
    "phq9_sd_client": 1.2,
    "phq9_sd_therapist": 1.0,
    "phq9_sd_residual": 2.2,
    "phq9_intake_mean": 15.0,
    "phq9_intake_sd": 4.5,
    # Anxiety (GAD-7 total, 0-21): the PHQ-9 values scaled by the ratio of the ranges (21/27).
    "gad7_within": -1.2,
    "gad7_between": -1.6,
    "gad7_rho": 0.5,
    "gad7_session_slope": -0.08,
    "gad7_intercept": 4.5,
    "gad7_sd_client": 0.95,
    "gad7_sd_therapist": 0.8,
    "gad7_sd_residual": 1.7,
    "gad7_intake_mean": 13.0,
    "gad7_intake_sd": 3.6,
    # Depression and anxiety move together: correlations of the two outcomes' client and
    # therapist intercepts, residuals and intake scores.
    "outcome_client_correlation": 0.6,
    "outcome_therapist_correlation": 0.6,
    "outcome_residual_correlation": 0.5,
    "outcome_intake_correlation": 0.6,
    # Alliance (latent WAI-SR item scale 1-5): client level, per-session trend, noise. A latent
    # mean of 3.82 gives an observed mean near 3.9 once items are rounded and capped at 5.
    # With the latent driver, the item noise is set from the WAI-SR's reliability instead
    # (analysis.simulate.alliance.item_sd_for_reliability) unless alliance_sd_item is given.
    "alliance_mean": 3.82,
    "alliance_sd_client": 0.45,
    "alliance_trend_mean": 0.02,
    "alliance_trend_sd": 0.02,
    "alliance_sd_session": 0.25,
    "alliance_sd_item": 0.55,
}

# Missing data, per administration (each instrument at each attended session).
MISSING_RATES = {
    "whole_questionnaire": 0.05,
    "one_item": 0.03,
    "two_items": 0.01,
    "three_or_more_items": 0.005,
}

# Invalid rows for the cleaning stage, as shares of the rows of each file (at least one of each
# "few" kind whenever invalid rows are requested and the file has rows to copy).
INVALID_RATES = {
    "out_of_range": 0.005,
    "exact_duplicate": 0.005,
    "conflicting_duplicate": 0.001,
    "orphan_outcome": 0.001,
}
# Out-of-range values as they appear in exports: typing slips and missing-value codes (outside
# the registry's item ranges: WAI-SR 1-5, PHQ-9 and GAD-7 0-3).
WAI_BAD_VALUES = (0, 6, 7)
OUTCOME_BAD_VALUES = (4, 5, 9)


def resolve_effects(effects: dict[str, Any]) -> dict[str, float]:
    """:data:`DEFAULT_EFFECTS` with ``effects`` applied, checked (a ConfigError naming the key)."""
    unknown = sorted(set(effects) - set(DEFAULT_EFFECTS))
    if unknown:
        raise ConfigError(
            f"simulate_study: unknown effect(s) {', '.join(unknown)}; the effects that can be set "
            f"are {', '.join(sorted(DEFAULT_EFFECTS))}."
        )
    params = {**DEFAULT_EFFECTS, **{key: float(value) for key, value in effects.items()}}
    for key, value in params.items():
        if not np.isfinite(value):
            raise ConfigError(f"simulate_study: effect {key} must be a finite number.")
        if (key.endswith("_sd") or "_sd_" in key) and value < 0:
            raise ConfigError(f"simulate_study: effect {key} is a standard deviation; use >= 0.")
        if key.endswith("_correlation") and not -1.0 <= value <= 1.0:
            raise ConfigError(f"simulate_study: effect {key} is a correlation; use -1 to 1.")
    return params


def check_sizes(n_clients: int, n_therapists: int, max_sessions: int) -> None:
    for name, value in (
        ("n_clients (--clients)", n_clients),
        ("n_therapists (--therapists)", n_therapists),
        ("max_sessions (--max-sessions)", max_sessions),
    ):
        if int(value) != value or value < 1:
            raise ConfigError(f"simulate_study: {name} must be a whole number >= 1.")


def check_driver(alliance_driver: str) -> None:
    if alliance_driver not in ALLIANCE_DRIVERS:
        raise ConfigError(
            f"simulate_study: alliance_driver (--alliance-driver) is {alliance_driver!r}; use "
            f"one of {', '.join(ALLIANCE_DRIVERS)}."
        )
