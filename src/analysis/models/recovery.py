"""Parameter recovery: does the primary model find the effect the generator put in?

Each replicate simulates raw exports with known effects (:mod:`analysis.simulate`), runs them
through ingest, scoring and derivation (:func:`analysis.synthetic.derived_from_simulation`) and
fits the primary model M2 exactly as the pipeline does (:func:`analysis.models.fitting.
fit_planned_model`, convergence protocol included). Over replicates it reports, per outcome, the
coverage of the 95% CI of the within-client alliance term and the mean bias relative to the true
effect. The study passes when coverage lies in [0.90, 0.99] and |mean bias| is below 10% of the
true effect.

Command line (``make validate``)::

    python -m analysis.models.recovery --datasets 200 [--clients 80] [--therapists 10] [--seed 1]

prints one row per replicate and outcome only with ``--verbose``, always the summary, and exits
with status 1 when a criterion fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis.models.fitting import fit_planned_model

#: Acceptance criteria of the recovery study.
COVERAGE_RANGE = (0.90, 0.99)
MAX_RELATIVE_BIAS = 0.10

DatasetFactory = Callable[[int, int, int], tuple[pd.DataFrame, dict]]


def _simulated_derived(seed: int, n_clients: int, n_therapists: int) -> tuple[pd.DataFrame, dict]:
    from analysis.synthetic import derived_from_simulation

    return derived_from_simulation(seed, n_clients, n_therapists)


def _recovery_study(outcomes: Sequence[str]):
    """The shipped study restricted to ``outcomes``, M2 and the primary analysis."""
    from analysis.config import load_config
    from analysis.privacy import PROJECT_ROOT
    from analysis.study import study_from_dict

    config = load_config(PROJECT_ROOT / "config" / "config.yaml")
    config["analysis"] = {**config["analysis"], "outcomes": list(outcomes)}
    config["models"] = {**config["models"], "run": ["M2"], "custom": [],
                        "sensitivity": {key: False for key in config["models"]["sensitivity"]}}
    return study_from_dict(config)


def true_within_effect(truth: dict, outcome: str) -> float:
    """The generator's within-client alliance effect on the next-session outcome."""
    return float(truth["outcomes"][outcome]["within"])


def recovery_replicates(
    n_datasets: int,
    n_clients: int = 80,
    n_therapists: int = 10,
    first_seed: int = 1,
    outcomes: Sequence[str] = ("phq9", "gad7"),
    make_dataset: DatasetFactory | None = None,
    study=None,
) -> pd.DataFrame:
    """Fit M2 to ``n_datasets`` simulated studies (seeds ``first_seed``, ``first_seed + 1``, ...).

    Parameters
    ----------
    n_datasets, n_clients, n_therapists : int
        Number and size of the simulated studies.
    first_seed : int
        Seed of the first study.
    outcomes : sequence of str
        Outcomes whose M2 is fitted in each study.
    make_dataset : callable, optional
        ``(seed, n_clients, n_therapists) -> (derived, truth)``; by default the whole pipeline
        from simulated raw exports (:func:`analysis.synthetic.derived_from_simulation`). The truth
        dict needs ``truth["outcomes"][outcome]["within"]``.
    study : Study, optional
        The study whose planned ``(outcome, M2, primary)`` fits are used; by default the shipped
        study restricted to ``outcomes``, M2 and the primary analysis.

    Returns
    -------
    DataFrame
        One row per study and outcome: ``seed, outcome, truth, estimate, se, ci_low, ci_high,
        covered, converged, singular, fallback_steps``.
    """
    make_dataset = make_dataset or _simulated_derived
    study = study or _recovery_study(outcomes)
    rows = []
    for seed in range(first_seed, first_seed + n_datasets):
        derived, truth = make_dataset(seed, n_clients, n_therapists)
        for outcome in outcomes:
            fit = fit_planned_model(derived, study.fit(outcome, "M2", "primary"))
            term = next(row for row in fit["fixed"] if row["term"] == "alliance_within")
            true_value = true_within_effect(truth, outcome)
            rows.append(
                {
                    "seed": seed,
                    "outcome": outcome,
                    "truth": true_value,
                    "estimate": term["estimate"],
                    "se": term["se"],
                    "ci_low": term["ci_low"],
                    "ci_high": term["ci_high"],
                    "covered": term["ci_low"] <= true_value <= term["ci_high"],
                    "converged": fit["fit"]["converged"],
                    "singular": fit["fit"]["singular"],
                    "fallback_steps": ";".join(fit["fit"]["fallback_steps"]),
                }
            )
    return pd.DataFrame(rows)


def summarise_recovery(replicates: pd.DataFrame) -> pd.DataFrame:
    """Coverage and bias per outcome, with the acceptance verdict.

    Columns: ``outcome, n_datasets, truth, mean_estimate, bias, relative_bias, coverage,
    mean_se, sd_estimate`` (the SEs should match the spread of the estimates),
    ``share_fallback`` (share of fits that needed a simpler random part) and ``passed``.
    """
    rows = []
    for outcome, group in replicates.groupby("outcome", sort=True):
        truth = float(group["truth"].iloc[0])
        mean_estimate = float(group["estimate"].mean())
        bias = mean_estimate - truth
        coverage = float(group["covered"].mean())
        relative_bias = bias / abs(truth)
        rows.append(
            {
                "outcome": outcome,
                "n_datasets": int(len(group)),
                "truth": truth,
                "mean_estimate": mean_estimate,
                "bias": bias,
                "relative_bias": relative_bias,
                "coverage": coverage,
                "mean_se": float(group["se"].mean()),
                "sd_estimate": float(group["estimate"].std()),
                "share_fallback": float((group["fallback_steps"] != "").mean()),
                "passed": bool(
                    COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1]
                    and abs(relative_bias) < MAX_RELATIVE_BIAS
                ),
            }
        )
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.models.recovery",
        description="Parameter recovery of the primary model (M2) on simulated studies.",
    )
    parser.add_argument("--datasets", type=int, default=200, help="number of simulated studies")
    parser.add_argument("--clients", type=int, default=80, help="clients per study")
    parser.add_argument("--therapists", type=int, default=10, help="therapists per study")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first study")
    parser.add_argument("--verbose", action="store_true", help="print every replicate")
    args = parser.parse_args(argv)
    # Fallback steps are counted in the summary (share_fallback); per-fit warnings would drown it.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    replicates = recovery_replicates(args.datasets, args.clients, args.therapists, args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        if args.verbose:
            print(replicates.to_string(index=False))
        summary = summarise_recovery(replicates)
        print(summary.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    verdict = bool(np.all(summary["passed"]))
    print(
        f"\nCriteria: 95% CI coverage in [{COVERAGE_RANGE[0]:.2f}, {COVERAGE_RANGE[1]:.2f}], "
        f"|mean bias| < {MAX_RELATIVE_BIAS:.0%} of the true effect: "
        f"{'PASSED' if verdict else 'FAILED'}"
    )
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
