"""The multiverse's joint test: a null-imposed cluster bootstrap of clients.

Simonsohn, Simmons & Nelson (2020, Nature Human Behaviour 4, 1208-1214) test a specification
curve as a whole by generating it under the null: in each specification the estimated effect is
removed from the outcome, the units are resampled with replacement, and every specification is
refitted; the observed curve's statistics are compared with their distribution over resamples.
Here the units are clients (all of a client's sessions move together, so the dependence within a
client is kept), and the null is imposed per specification and estimator:

- conventional multilevel model (``mlm``): ``symptom_next* = symptom_next - b * alliance_within``
  (b the specification's estimate); the other columns are unchanged;
- dynamic panel model (``dpm``): the effect is removed from every wave through the model's own
  dynamics, ``y*_t = y_t - d_t`` with ``d_1 = 0`` and ``d_t = rho * d_(t-1) + b * a_(t-1)`` (rho the
  autoregression), so that the null data follow the fitted model with b = 0 exactly; a missing
  ``a_(t-1)`` enters as the client's mean observed alliance (an approximation that only touches
  the waves after it).

Resample ``r`` of an outcome draws every client's multiplicity from a multinomial over the sorted
client ids of the outcome, seeded by (``study.seed``, ``r``, outcome), so every specification of
the outcome, in whichever job and data variant, sees the same resampled clients; a client drawn
k times enters as k clients. Specifications restricted to completers keep the drawn completers.
The multilevel specifications are re-estimated by generalised least squares with the variance
components of their observed fit (:class:`~analysis.models.multiverse.permutation.FixedVarianceGls`,
which reproduces REML's estimate and standard error at those components); the dynamic panel
specifications are refitted by ML. The RI-CLPM specifications are not in the joint test: imposing
the null on their latent within-person parts would need the latent scores, and their curve is
shown without it. p-values are ``(1 + #{null >= observed}) / (1 + resamples)``.

Why this test and not the within-client shuffle used before: shuffling alliance over a client's
sessions treats sessions as exchangeable and breaks alliance's correlation with session and with
the current symptom score; with alliance trending over sessions its null was too narrow (7.0% at
nominal 5%). Freedman-Lane residual permutation needs exchangeable residuals, which a model with
a lagged outcome and clustered sessions does not give. The bootstrap keeps every within-client
dependence. Its size was measured before the test could be switched on:
``benchmarks/size_multiverse_joint_test.py`` (figure in benchmarks/README.md).
"""

from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.multiverse.specifications import MIN_RESAMPLES
from analysis.models.mixed.specs import CLIENT, split_formula


def client_counts(clients: Sequence[Any], seed: int, resample: int, outcome: str) -> pd.Series:
    """How many times each client is drawn in resample ``resample`` (multinomial, n draws).

    The draw depends on (seed, resample, outcome) and the sorted client ids only.
    """
    ids = np.sort(np.asarray(pd.unique(pd.Series(list(clients), dtype=object).astype(str)),
                             dtype=object))
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(resample),
                                 zlib.crc32(str(outcome).encode("utf-8"))])
    counts = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids))) if len(ids) else []
    return pd.Series(np.asarray(counts, dtype=np.int64), index=ids)


def resample_rows(frame: pd.DataFrame, counts: pd.Series, client: str = CLIENT) -> pd.DataFrame:
    """``frame`` with each client's rows repeated as often as the client was drawn.

    Copy k of a client becomes client ``"<id>#<k>"``; rows keep their order within a copy.
    """
    ids = frame[client].astype(str).to_numpy()
    per_row = counts.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    positions = np.repeat(np.arange(len(frame)), per_row)
    copy = np.arange(len(positions)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    out = frame.iloc[positions].reset_index(drop=True)
    out[client] = pd.Series(ids[positions], dtype=object) + "#" + pd.Series(copy).astype(str)
    # copies of a client stay together, in client order (the GLS needs no order; ML neither)
    order = np.lexsort((np.arange(len(out)), copy, ids[positions]))
    return out.iloc[order].reset_index(drop=True)


def impose_null_mlm(data: pd.DataFrame, response: str, term: str, estimate: float
                    ) -> pd.DataFrame:
    """The model frame with the estimated effect of ``term`` removed from the response."""
    out = data.copy()
    out[response] = out[response] - estimate * out[term]
    return out


def impose_null_dpm(panel: pd.DataFrame, waves: int, estimate: float, rho: float,
                    outcome: str = "y", predictor: str = "a") -> pd.DataFrame:
    """The panel with the cross-lagged effect removed through the model's dynamics.

    ``y*_t = y_t - d_t``, ``d_1 = 0``, ``d_t = rho d_(t-1) + b a_(t-1)``: then
    ``y*_t = rho y*_(t-1) + (the rest of the model)`` with no alliance term. A missing
    ``a_(t-1)`` enters as the client's mean observed alliance over the waves.
    """
    out = panel.copy()
    alliance = panel[[f"{predictor}{t}" for t in range(1, waves + 1)]].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(np.isfinite(alliance), alliance, np.nan), axis=1)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    filled = np.where(np.isfinite(alliance), alliance, mean[:, None])
    shift = np.zeros(len(panel))
    for t in range(2, waves + 1):
        shift = rho * shift + estimate * filled[:, t - 2]
        out[f"{outcome}{t}"] = panel[f"{outcome}{t}"].to_numpy(dtype=float) - shift
    return out


#: The estimators whose specifications enter the joint test: those whose size the null-imposed
#: bootstrap has been shown to hold (benchmarks/size_multiverse_joint_test.py: 6.0% at nominal 5%
#: over 200 null datasets with trending alliance, conventional multilevel specifications). The
#: dynamic panel specifications join when their size check (``--estimators mlm,dpm``) has run.
SIZE_CHECKED_ESTIMATORS = ("mlm",)
#: That measured size: rejection rate at nominal 5% (median statistic) and null datasets.
MEASURED_SIZE = (0.060, 200)

class _MlmNull:
    """The null of one multilevel specification: its model frame with the effect removed."""

    def __init__(self, design: Any, final: Any, data: pd.DataFrame) -> None:
        self.design, self.final = design, final
        self.response = split_formula(final.formula)[0]
        row = final.fixed.loc[final.fixed["term"] == design.term].iloc[0]
        self.df = float(row["df"])
        self.data = impose_null_mlm(data, self.response, design.term, float(row["estimate"]))

    def estimate(self, counts: pd.Series) -> tuple[float, float, float]:
        from analysis.models.multiverse.permutation import FixedVarianceGls

        data = resample_rows(self.data, counts)
        if data[CLIENT].nunique() < 3:
            return float("nan"), float("nan"), float("nan")
        solver = FixedVarianceGls(self.design, self.final, data)
        dynamic = np.column_stack([data[name].to_numpy(dtype=float) for name in solver.dynamic])
        estimate, se = solver.estimate(dynamic)
        sd_y = float(data[self.response].std())
        sd_x = float(data[self.design.term].std())
        return estimate, se, estimate * sd_x / sd_y if sd_y else float("nan")


class _DpmNull:
    """The null of one dynamic panel specification: its panel with the effect removed."""

    df = float("nan")  # large-sample (z) inference

    def __init__(self, panel: pd.DataFrame, waves: int, standard_errors: dict, estimate: float,
                 rho: float) -> None:
        # standard_errors: the fit_dpm arguments of the original fit (dpm_stage.inference)
        self.waves, self.standard_errors = waves, dict(standard_errors)
        self.panel = impose_null_dpm(panel, waves, estimate, rho)

    def estimate(self, counts: pd.Series) -> tuple[float, float, float]:
        from analysis.models.panel.dpm import fit_dpm
        from analysis.models.panel.dpm_stage import fixed_row

        panel = resample_rows(self.panel, counts)
        try:
            result = fit_dpm(panel, self.waves, outcome="y", predetermined=("a",),
                             equal_paths=True, **self.standard_errors)
        except DataError:
            return float("nan"), float("nan"), float("nan")
        lagged = result["lagged"]
        values = fixed_row("alliance_lagged", lagged, bool(lagged.get("robust")))
        if not result["convergence"].get("converged"):
            return float("nan"), float("nan"), float("nan")
        return (float(values["estimate"]), float(values["se"]),
                float(values.get("std_estimate") or float("nan")))


def null_state(state: tuple) -> Any:
    """The bootstrap state of a fitted specification (what ``fit_specification`` returned)."""
    kind, *rest = state
    if kind == "mlm":
        return _MlmNull(*rest)
    if kind == "dpm":
        return _DpmNull(*rest)
    raise ValueError(f"no bootstrap null for estimator {kind!r}")  # pragma: no cover


def bootstrap_null(block: Any, states: Sequence[Any], resamples: int, seed: int, outcome: str
                   ) -> list[dict[str, Any]]:
    """The null-imposed bootstrap estimates of the specifications of one data block.

    Parameters
    ----------
    block : Block
        The outcome's rows of one data variant (its clients are resampled).
    states : sequence
        Per specification the state :func:`~analysis.models.multiverse.fit.fit_specification`
        returned (or a :func:`null_state`).
    resamples : int
        Number of bootstrap resamples.
    seed : int
        ``study.seed``.
    outcome : str
        The outcome (part of the resamples' seed).

    Returns
    -------
    list of dict
        Per specification: ``method`` ("null-imposed cluster bootstrap"), ``df`` (the observed
        fit's; NaN for z inference) and per resample ``estimate``, ``se``, ``std_estimate``.
    """
    nulls = [state if isinstance(state, (_MlmNull, _DpmNull)) else null_state(state)
             for state in states]
    clients = block.frame[CLIENT].astype(str).unique()
    outputs = [{"method": "null-imposed cluster bootstrap", "df": null.df, "estimate": [],
                "se": [], "std_estimate": []} for null in nulls]
    for resample in range(int(resamples)):
        counts = client_counts(clients, seed, resample, outcome)
        for null, output in zip(nulls, outputs):
            estimate, se, std = null.estimate(counts)
            output["estimate"].append(estimate)
            output["se"].append(se)
            output["std_estimate"].append(std)
    return outputs


__all__ = [
    "MIN_RESAMPLES",
    "bootstrap_null",
    "client_counts",
    "impose_null_dpm",
    "impose_null_mlm",
    "null_state",
    "resample_rows",
]
