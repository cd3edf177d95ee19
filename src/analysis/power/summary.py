"""Power per design, effect and estimator, with its Monte-Carlo confidence interval: ``power.csv``.

Power is the share of simulated studies whose test of the effect had p < alpha, as the pipeline
would have reported it (a fit that failed to give an estimate counts as no rejection;
``n_converged`` says how many fits converged without a singular variance; ``mean_estimate`` and
``mean_se`` are over the studies with an estimate). Its 95%
Monte-Carlo CI is the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001, Statist Sci
16(2), recommend it over the Wald interval for a binomial share, which collapses at 0 and 1):

    (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = Phi^-1(0.975)

The table holds designs, effects and aggregates of simulated studies only: no count of this
study's people and no client row (STACK.md's privacy rules).
"""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd
from scipy import stats

from analysis.power.simulation import REPLICATE_COLUMNS

#: Columns of ``power.csv``.
POWER_COLUMNS = [
    "outcome", "design", "design_therapists", "design_clients_per_therapist", "design_clients",
    "design_sessions", "dropout_hazard", "dropout_observed", "effect_kind", "effect",
    "estimator", "term", "n_sims", "n_converged", "n_rejected", "power", "ci_low", "ci_high",
    "ci_method", "mean_estimate", "mean_se", "alpha",
]
CI_METHOD = "Wilson score 95%"


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial share (``(nan, nan)`` with no trials)."""
    if trials <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + level / 2))
    share = successes / trials
    centre = share + z * z / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def read_batches(paths: Iterable[str]) -> pd.DataFrame:
    """The batch files as one table, in a fixed order."""
    frames = [pd.read_csv(path, dtype={"outcome": str, "design": str, "effect_kind": str,
                                       "estimator": str, "term": str})
              for path in paths]
    replicates = (pd.concat(frames, ignore_index=True) if frames
                  else pd.DataFrame(columns=REPLICATE_COLUMNS))
    return replicates.sort_values(["outcome", "design", "effect_kind", "estimator", "index"],
                                  kind="stable").reset_index(drop=True)


def summarise_power(replicates: pd.DataFrame, alpha: float,
                    order: list[tuple[str, str, str]] | None = None) -> pd.DataFrame:
    """One row per outcome, design, effect and estimator (:data:`POWER_COLUMNS`).

    ``order``: the ``(outcome, design id, effect kind)`` cells in table order (the config's);
    by default sorted.
    """
    keys = ["outcome", "design", "effect_kind", "estimator"]
    rows = []
    for (outcome, design, effect_kind, estimator), group in replicates.groupby(keys, sort=True):
        first = group.iloc[0]
        n = int(len(group))
        rejected = int(group["rejected"].astype(bool).sum())
        converged = group.loc[group["converged"].astype(bool)]
        estimated = group.loc[group["estimate"].astype(float).notna()]
        low, high = wilson_interval(rejected, n)
        rows.append({
            "outcome": outcome, "design": design,
            "design_therapists": int(first["design_therapists"]),
            "design_clients_per_therapist": int(first["design_clients_per_therapist"]),
            "design_clients": (int(first["design_therapists"])
                               * int(first["design_clients_per_therapist"])),
            "design_sessions": int(first["design_sessions"]),
            "dropout_hazard": float(first["dropout_hazard"]),
            "dropout_observed": bool(first["dropout_observed"]), "effect_kind": effect_kind,
            "effect": float(first["effect"]), "estimator": estimator, "term": first["term"],
            "n_sims": n, "n_converged": int(len(converged)), "n_rejected": rejected,
            "power": rejected / n if n else math.nan, "ci_low": low, "ci_high": high,
            "ci_method": CI_METHOD,
            "mean_estimate": float(estimated["estimate"].mean()) if len(estimated) else math.nan,
            "mean_se": float(estimated["se"].mean()) if len(estimated) else math.nan,
            "alpha": float(alpha),
        })
    table = pd.DataFrame(rows, columns=POWER_COLUMNS)
    if order is not None and not table.empty:
        rank = {cell: position for position, cell in enumerate(order)}
        table["_rank"] = [rank.get((o, d, e), len(rank)) for o, d, e in
                          zip(table["outcome"], table["design"], table["effect_kind"])]
        table["_estimator"] = table["estimator"].map({"DPM": 0, "M2": 1}).fillna(2)
        table = (table.sort_values(["_rank", "_estimator"], kind="stable")
                 .drop(columns=["_rank", "_estimator"]).reset_index(drop=True))
    return table
