"""One power job: simulate its studies from this study's parameters and fit DPM and M2 to each.

Each simulated study (:func:`analysis.simulate.dynamic.simulate_dynamic` with the parameters of
:func:`analysis.power.parameters.dynamic_parameters`) has the design's therapists, ``therapists x
clients_per_therapist`` clients (unequal caseloads, lognormal shares, as in the recovery study),
at most the design's sessions with the design's (or the observed) dropout, and the true effect of
the cell. Its ``derived`` frame is made by :mod:`analysis.derive`'s own code and the two planned
fits run exactly as the pipeline runs them (:func:`analysis.simulate.recovery.estimate_term`:
:func:`analysis.models.mixed.fitting.fit_planned_model`, the DPM with the study's wave choice and SE
type, M2 with its fallback protocol). A study is a rejection when its fit gave an estimate with p <
alpha, as the pipeline would have reported it (a fit that ends singular after the fallback
protocol is still reported, with its flags: M2's client variance is often at the boundary once
the previous symptom score is in the model); a fit that fails gives no estimate and counts as no
rejection. ``converged`` records whether the fit converged and was not singular.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.power.parameters import EFFECT_ESTIMATE as ESTIMATE_PARAMETER
from analysis.power.parameters import dynamic_parameters
from analysis.settings import (
    EFFECT_ESTIMATE,
    POWER_ESTIMATORS,
    PowerBatchSettings,
    study_seed,
)

#: Columns of a batch file: one row per simulated study and estimator.
REPLICATE_COLUMNS = [
    "outcome", "design", "design_therapists", "design_clients_per_therapist", "design_sessions",
    "dropout_hazard", "dropout_observed", "effect_kind", "effect", "index", "seed", "estimator",
    "term", "estimate", "se", "p", "converged", "rejected",
]


def true_effect(batch: PowerBatchSettings, parameters: pd.DataFrame) -> float:
    """The cell's true effect: this study's DPM estimate, or the smallest effect of interest."""
    if batch.effect == EFFECT_ESTIMATE:
        rows = parameters.loc[(parameters["outcome"].astype(str) == batch.outcome)
                              & (parameters["parameter"].astype(str) == ESTIMATE_PARAMETER)]
        return float(rows["value"].iloc[0])
    return float(batch.smallest_effect)


def run_power_batch(batch: PowerBatchSettings, parameters: pd.DataFrame) -> pd.DataFrame:
    """The simulated studies of one job and both estimators' tests (:data:`REPLICATE_COLUMNS`).

    Same settings and parameters give the same table: every study's seed comes from
    :func:`analysis.settings.study_seed`.
    """
    from analysis.simulate.recovery import TERMS, RecoverySettings, derived_from_long, estimate_term
    from analysis.models.mixed.specs import ResolvedFit
    from analysis.simulate.dynamic import simulate_dynamic

    design = batch.design
    effect = true_effect(batch, parameters)
    params = dynamic_parameters(parameters, batch.outcome, design.sessions, effect,
                                design.dropout)
    recovery = RecoverySettings(outcome=batch.outcome, fits=dict(batch.fits),
                                max_lag_gap=batch.max_lag_gap)
    fits = {name: ResolvedFit.from_dict(recovery.fits[name]) for name in POWER_ESTIMATORS}
    rows = []
    for index in range(batch.first, batch.first + batch.count):
        seed = study_seed(batch.seed, batch.outcome, design, index)
        long, _truth = simulate_dynamic(params, seed, design.clients, design.therapists)
        derived = derived_from_long(long, batch.outcome, batch.max_lag_gap)
        for name in POWER_ESTIMATORS:
            result = estimate_term(derived, fits[name], name)
            finite = math.isfinite(result["estimate"]) and math.isfinite(result["p"])
            converged = bool(result["converged"]) and finite
            rows.append({
                "outcome": batch.outcome, "design": design.id,
                "design_therapists": design.therapists,
                "design_clients_per_therapist": design.clients_per_therapist,
                "design_sessions": design.sessions, "dropout_hazard": float(params.dropout),
                "dropout_observed": design.dropout is None, "effect_kind": batch.effect,
                "effect": effect, "index": index, "seed": seed, "estimator": name,
                "term": TERMS[name], "estimate": result["estimate"], "se": result["se"],
                "p": result["p"], "converged": converged,
                "rejected": bool(finite and result["p"] < batch.alpha),
            })
    return pd.DataFrame(rows, columns=REPLICATE_COLUMNS)
