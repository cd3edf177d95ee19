"""The generating parameters of the simulated studies: this study's fitted components.

The future studies are drawn from the joint dynamic process of the recovery study
(:mod:`analysis.simulate.dynamic`: stable client and therapist levels, within-client states of
alliance and symptoms that act on each other from session to session, dropout and missing
questionnaires), with every parameter taken from this run, in the outcome's own units:

========================  =========================================================================
parameter                 source
========================  =========================================================================
effect (estimate)         DPM, primary: the lagged alliance path (``alliance_lagged``)
symptom_ar                DPM, primary: the symptoms' autoregression (``symptom_lagged``)
alliance_ar               DPM-reverse, primary: the alliance's autoregression (``alliance_lagged``)
lagged_reverse            DPM-reverse, primary: symptoms at t on alliance at t+1
                          (``symptom_lagged``)
symptom_mean, _trend      R3, primary: intercept and session slope (the mean at session 1, the
                          improvement per session)
symptom_sd_client,        R3, primary: the client and therapist random-intercept SDs and the
_sd_therapist, _sd_first  residual SD (the within-client SD of the symptom state)
symptom_sd_innovation     M2, primary: the residual SD (symptoms at t+1 given symptoms and alliance
                          at t and the client)
alliance_sd_innovation    M3, primary: the residual SD (alliance at t+1 given alliance and symptoms
                          at t and the client)
alliance_mean, _trend,    ``alliance_score ~ session + (1 | client_id) + (1 | therapist_id)``
_sd_client,               fitted here to the outcome's rows of ``derived.parquet`` (REML, the
_sd_therapist, _sd_first  pipeline's mixed-model engine): R3's model with the alliance as response
level_correlation         the correlation of the clients' mean alliance and mean symptoms
min_sessions              the 10th percentile of the clients' courses of scored sessions (at
                          least 2): every simulated client attends that many
dropout_s<T>              for each course length T of the grid (``power.grid.sessions``): the
                          observed per-session hazard of ending before session T, from
                          min_sessions on (clients who reached T completed the designed course:
                          censored there); the designs with dropout null use it
dropout                   the same over the study's own longest course
intermittent_missing      the share of sessions between a client's first and last with a missing
                          score
same_session_reverse,     0: not estimated (dropout completely at random given the design; no
dropout_symptom_slope     same-session path from symptoms to the alliance)
========================  =========================================================================

Inputs: the fit files of the outcome (``results/fits/<outcome>/<model>/primary.json``) and
``derived.parquet``. Output: ``power_parameters.csv``, one row per outcome and parameter
(:data:`PARAMETER_COLUMNS`): aggregate parameters only, no count of people and no client row.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.errors import DataError

#: Columns of ``power_parameters.csv``.
PARAMETER_COLUMNS = ["outcome", "parameter", "value", "source"]
#: The parameter holding this study's estimate of the effect (the true effect "estimate").
EFFECT_ESTIMATE = "effect_estimate"
#: The formula of the alliance's variance components (R3's, with the alliance as response).
ALLIANCE_FORMULA = "alliance_score ~ session + (1 | client_id) + (1 | therapist_id)"

_SOURCES = {
    "DPM": "DPM primary fit",
    "DPM-reverse": "DPM-reverse primary fit",
    "M2": "M2 primary fit",
    "M3": "M3 primary fit",
    "R3": "R3 primary fit",
}


def _fixed(fits: Mapping[str, Mapping[str, Any]], model: str, term: str,
           field: str = "estimate") -> float:
    fit = fits[model]
    for row in fit.get("fixed") or []:
        if row.get("term") == term and row.get(field) is not None:
            return float(row[field])
    reason = (fit.get("fit") or {}).get("reason") or "the term is not in the fit file"
    raise DataError(f"{model} (primary) fit file: no {field} of {term!r} ({reason}); the power "
                    "simulation draws from it. Rerun the fit, or set power.run: false.")


def _random_sd(fits: Mapping[str, Mapping[str, Any]], model: str, group: str,
               required: bool = True) -> float:
    for row in fits[model].get("random") or []:
        if row.get("group") == group and not row.get("term2") and row.get("sd") is not None:
            return float(row["sd"])
    if required:
        raise DataError(f"{model} (primary) fit file: no {group} variance component; the power "
                        "simulation draws from it. Rerun the fit, or set power.run: false.")
    return 0.0  # a component dropped on the boundary: variance estimated at 0


def _row(outcome: str, parameter: str, value: float, source: str) -> dict[str, Any]:
    return {"outcome": outcome, "parameter": parameter, "value": float(value), "source": source}


def generating_parameters(outcome: str, fits: Mapping[str, Mapping[str, Any]],
                          derived: pd.DataFrame,
                          course_lengths: Sequence[int] = ()) -> pd.DataFrame:
    """The generating parameters of ``outcome`` (see the module docstring for each source).

    Parameters
    ----------
    outcome : str
    fits : mapping
        The primary fit files (as read from JSON) of ``DPM``, ``DPM-reverse``, ``M2``, ``M3``
        and ``R3`` for the outcome.
    derived : DataFrame
        ``derived.parquet``: ``outcome, client_id, therapist_id, session, alliance_score,
        symptom_score``.
    course_lengths : sequence of int
        The sessions of the designs (``power.grid.sessions``): the observed dropout is given
        for each, censored at that length.

    Returns
    -------
    DataFrame
        Columns :data:`PARAMETER_COLUMNS`, one row per parameter.
    """
    rows = derived.loc[derived["outcome"].astype(str) == outcome]
    scored = rows.dropna(subset=["alliance_score", "symptom_score"])
    if scored["client_id"].nunique() < 3:
        raise DataError(f"derived.parquet: fewer than 3 clients with both scores for outcome "
                        f"{outcome!r}; the power simulation cannot read dropout from them.")
    out = [
        _row(outcome, EFFECT_ESTIMATE, _fixed(fits, "DPM", "alliance_lagged"),
             f"{_SOURCES['DPM']}: alliance_lagged"),
        _row(outcome, "effect_se", _fixed(fits, "DPM", "alliance_lagged", "se"),
             f"{_SOURCES['DPM']}: alliance_lagged, its SE"),
        _row(outcome, "symptom_ar", _fixed(fits, "DPM", "symptom_lagged"),
             f"{_SOURCES['DPM']}: symptom_lagged"),
        _row(outcome, "alliance_ar", _fixed(fits, "DPM-reverse", "alliance_lagged"),
             f"{_SOURCES['DPM-reverse']}: alliance_lagged"),
        _row(outcome, "lagged_reverse", _fixed(fits, "DPM-reverse", "symptom_lagged"),
             f"{_SOURCES['DPM-reverse']}: symptom_lagged"),
    ]
    intercept, slope = _fixed(fits, "R3", "(Intercept)"), _fixed(fits, "R3", "session")
    out += [
        _row(outcome, "symptom_mean", intercept + slope, f"{_SOURCES['R3']}: mean at session 1"),
        _row(outcome, "symptom_trend", -slope, f"{_SOURCES['R3']}: improvement per session"),
        _row(outcome, "symptom_sd_client", _random_sd(fits, "R3", "client_id"),
             f"{_SOURCES['R3']}: client intercept SD"),
        _row(outcome, "symptom_sd_therapist", _random_sd(fits, "R3", "therapist_id", False),
             f"{_SOURCES['R3']}: therapist intercept SD"),
        _row(outcome, "symptom_sd_first", _random_sd(fits, "R3", "Residual"),
             f"{_SOURCES['R3']}: residual SD"),
        _row(outcome, "symptom_sd_innovation", _random_sd(fits, "M2", "Residual"),
             f"{_SOURCES['M2']}: residual SD"),
        _row(outcome, "alliance_sd_innovation", _random_sd(fits, "M3", "Residual"),
             f"{_SOURCES['M3']}: residual SD"),
    ]
    out += _alliance_components(outcome, scored)
    out += _attendance(outcome, scored, course_lengths)
    out += [
        _row(outcome, "same_session_reverse", 0.0, "not estimated (set to 0)"),
        _row(outcome, "dropout_symptom_slope", 0.0,
             "not estimated (dropout completely at random, set to 0)"),
    ]
    return pd.DataFrame(out, columns=PARAMETER_COLUMNS)


def _alliance_components(outcome: str, scored: pd.DataFrame) -> list[dict[str, Any]]:
    """The alliance's mean, trend and variance components (R3's model, alliance as response),
    and the correlation of the clients' mean alliance and mean symptoms."""
    from analysis.models.mixed.engines import get_engine

    data = scored[["client_id", "therapist_id", "session", "alliance_score"]].copy()
    data["client_id"] = data["client_id"].astype(str)
    therapist = data["therapist_id"].notna().all() and data["therapist_id"].nunique() > 1
    formula = ALLIANCE_FORMULA if therapist else ALLIANCE_FORMULA.replace(
        " + (1 | therapist_id)", "")
    if therapist:
        data["therapist_id"] = data["therapist_id"].astype(str)
    else:
        data = data.drop(columns="therapist_id")
    fit = get_engine("mixedlm").fit(formula, data, reml=True)
    fixed = fit.fixed.set_index("term")["estimate"]
    random = fit.random.loc[fit.random["term2"].fillna("").astype(str) == ""]
    sds = {str(group): float(sd) for group, sd in zip(random["group"], random["sd"])}
    source = f"{formula} fitted to derived.parquet (REML)"
    means = scored.groupby("client_id", sort=True)[["alliance_score", "symptom_score"]].mean()
    correlation = float(np.corrcoef(means["alliance_score"], means["symptom_score"])[0, 1])
    if not math.isfinite(correlation):
        correlation = 0.0
    return [
        _row(outcome, "alliance_mean", float(fixed["(Intercept)"] + fixed["session"]),
             f"{source}: mean at session 1"),
        _row(outcome, "alliance_trend", float(fixed["session"]),
             f"{source}: change per session"),
        _row(outcome, "alliance_sd_client", sds.get("client_id", 0.0),
             f"{source}: client intercept SD"),
        _row(outcome, "alliance_sd_therapist", sds.get("therapist_id", 0.0),
             f"{source}: therapist intercept SD"),
        _row(outcome, "alliance_sd_first", sds.get("Residual", 0.0), f"{source}: residual SD"),
        _row(outcome, "level_correlation", float(np.clip(correlation, -0.95, 0.95)),
             "derived.parquet: correlation of the clients' mean alliance and mean symptoms"),
    ]


def observed_attendance(scored: pd.DataFrame, course_length: int | None = None
                        ) -> dict[str, float]:
    """``min_sessions``, ``dropout`` and ``intermittent_missing`` of the clients' scored sessions.

    A client's course runs from their first to their last session with both scores (its length
    ``span`` in sessions). ``min_sessions``: the 10th percentile of the spans (at least 2; a
    constant hazard from the very shortest course on would make far too many short courses).
    ``dropout``: the per-session hazard of ending after sessions ``min_sessions .. T - 1``, ``T``
    the ``course_length`` (default: the longest course), over the clients whose course reached
    ``min_sessions``: those ending before ``T`` over the sessions at which they could have ended;
    a client who reached ``T`` completed the course and is censored there.
    ``intermittent_missing``: sessions inside courses without both scores, over the sessions
    inside courses.
    """
    by_client = scored.groupby("client_id", sort=True)["session"]
    first, last, count = by_client.min(), by_client.max(), by_client.nunique()
    span = (last - first + 1).astype(int)
    longest = int(course_length or span.max())
    shortest = int(max(2, min(np.percentile(span, 10, method="lower"), longest)))
    at_risk = span[span >= shortest]
    ended = int((at_risk < longest).sum())
    exposure = int((np.minimum(at_risk, longest - 1) - shortest + 1).clip(lower=0).sum())
    hazard = ended / exposure if exposure > 0 else 0.0
    inside = (span - 2).clip(lower=0)
    present = (count - 2).clip(lower=0)
    intermittent = float((inside - present).sum() / inside.sum()) if inside.sum() > 0 else 0.0
    return {"min_sessions": float(shortest), "dropout": float(min(hazard, 0.95)),
            "intermittent_missing": float(min(max(intermittent, 0.0), 0.95))}


def _attendance(outcome: str, scored: pd.DataFrame,
                course_lengths: Sequence[int]) -> list[dict[str, Any]]:
    observed = observed_attendance(scored)
    rows = [
        _row(outcome, "min_sessions", observed["min_sessions"],
             "derived.parquet: 10th percentile of the courses of scored sessions (at least 2)"),
        _row(outcome, "dropout", observed["dropout"],
             "derived.parquet: observed per-session hazard of ending before the study's longest "
             "course"),
    ]
    for length in sorted({int(length) for length in course_lengths}):
        rows.append(_row(outcome, f"dropout_s{length}",
                         observed_attendance(scored, length)["dropout"],
                         f"derived.parquet: observed per-session hazard of ending before session "
                         f"{length} (the designs with {length} sessions)"))
    rows.append(_row(outcome, "intermittent_missing", observed["intermittent_missing"],
                     "derived.parquet: share of sessions inside courses without both scores"))
    return rows


def dynamic_parameters(parameters: pd.DataFrame, outcome: str, sessions: int,
                       effect: float, dropout: float | None = None):
    """The :class:`~analysis.simulate.dynamic.DynamicParameters` of one design and true effect.

    ``sessions`` is the design's longest course (``max_sessions``); ``dropout`` the design's
    hazard (None: the one observed before that many sessions, ``dropout_s<sessions>``).
    """
    from analysis.simulate.dynamic import DynamicParameters

    rows = parameters.loc[parameters["outcome"].astype(str) == outcome]
    values = dict(zip(rows["parameter"].astype(str), rows["value"].astype(float)))
    fields = {field.name for field in dataclasses.fields(DynamicParameters)}
    chosen = {name: value for name, value in values.items() if name in fields}
    chosen["min_sessions"] = int(min(int(values["min_sessions"]), sessions))
    chosen["max_sessions"] = int(sessions)
    chosen["effect"] = float(effect)
    chosen["dropout"] = float(dropout if dropout is not None
                              else values.get(f"dropout_s{sessions}", values["dropout"]))
    params = DynamicParameters(**chosen)
    params.check()
    return params
