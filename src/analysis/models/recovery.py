"""Parameter recovery: does the primary model find the effect the generator put in, and does the
study show the biases that matter?

Each replicate simulates raw exports with known effects (:mod:`analysis.simulate`), runs them
through ingest, scoring and derivation as the pipeline does (:func:`analysis.synthetic.
derived_from_exports`) and fits the primary model M2 exactly as the pipeline does
(:func:`analysis.models.fitting.fit_planned_model`, convergence protocol included). Over
replicates it reports, per scenario and outcome, the bias of the within-client alliance term
(``alliance_within``) and the coverage of its 95% CI, each with its Monte Carlo standard error
(Morris, White & Crowther 2019, Statistics in Medicine 38:2074-2102).

Scenarios (:data:`SCENARIOS`):

- ``observed``: symptoms follow the OBSERVED WAI-SR score, split into the client's observed mean
  and the session's deviation from it, exactly as the analysis splits it. M2 is then the
  generating model: the estimate must be unbiased and its CI must cover the truth 95% of the time.
  This scenario gates the verdict.
- ``latent``: symptoms follow the LATENT (true) alliance, split at the client's true level; the
  WAI-SR measures it with the reliability in the instrument registry (.91). The analysis centres
  an error-laden score on a person mean that includes later sessions, so the within estimate is
  attenuated by about the within-client reliability of the score,
  ``lambda = 1 - (1 - r) * var(A) * mean(1 - 1/n_i) / mean(A_w^2)``
  (:func:`expected_within_attenuation`: the classical errors-in-variables factor, with the error
  variance ``(1 - r) var(A)`` implied by the reliability ``r`` and the share of it left after
  person-mean centring). The study reports the bias, the coverage, ``lambda`` and the estimate it
  predicts (``truth * lambda``) beside the generator's realised attenuation; this scenario is
  expected to fail the criteria and does not gate the verdict. It shows what a real analysis
  would get, not what the pipeline does wrong.

The study passes when, for every outcome of every gating scenario, coverage lies in
:data:`COVERAGE_RANGE` and ``|mean bias|`` is below :data:`MAX_RELATIVE_BIAS` of the true effect.
With 200 datasets the Monte Carlo SE of a coverage of 0.95 is 0.015, so the band is +-1.6 SE and
an exactly calibrated interval still falls outside it for one outcome with probability 0.07
(:func:`false_failure_probability`): ``make validate`` runs 500 (SE 0.010, probability 0.01).

Runs: ``make validate`` (the Snakemake workflow in ``workflow/validation/``: one job per batch of
datasets, combined into ``results/validation/recovery.csv`` and ``recovery_summary.csv``), or a
quick run in one process::

    python -m analysis.models.recovery --datasets 20 [--scenarios observed latent] [--clients 80]
        [--therapists 10] [--seed 1] [--verbose]
    python -m analysis.models.recovery --check results/validation/recovery.csv [--quiet]

Both print the summary (``--quiet``: only the verdict) and exit with status 1 when a gating
criterion fails.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.settings import DeriveSettings, IngestSettings, ScoreSettings, Settings

#: Acceptance criteria of the recovery study (for ``make validate``: at least MIN_DATASETS).
COVERAGE_RANGE = (0.925, 0.975)
MAX_RELATIVE_BIAS = 0.10
NOMINAL_COVERAGE = 0.95
MIN_DATASETS = 200

#: The term whose recovery is studied: M2's within-client alliance term (the primary test).
WITHIN_TERM = "alliance_within"

#: Columns of the replicate table (one row per scenario, dataset and outcome).
REPLICATE_COLUMNS = [
    "scenario", "seed", "outcome", "truth", "estimate", "se", "ci_low", "ci_high", "covered",
    "converged", "singular", "fallback_steps", "expected_attenuation", "realised_attenuation",
]


@dataclass(frozen=True)
class Scenario:
    """One data-generating scenario of the recovery study.

    Attributes
    ----------
    name : str
        Its key in :data:`SCENARIOS` and in the result tables.
    description : str
        One sentence for the summary.
    alliance_driver : str
        ``simulate_study(alliance_driver=...)``: what drives symptoms.
    effects : dict of str to float
        Overrides of :data:`analysis.simulate.DEFAULT_EFFECTS`.
    measurement_error : bool
        Symptoms follow a quantity the WAI-SR measures with error: the within estimate is
        expected to be attenuated by :func:`expected_within_attenuation`.
    gates : bool
        Whether the scenario's criteria decide the verdict (the estimator must be unbiased here).
    """

    name: str
    description: str
    alliance_driver: str
    effects: dict[str, float] = field(default_factory=dict)
    measurement_error: bool = False
    gates: bool = True

    def simulate_arguments(self) -> dict[str, Any]:
        return {"alliance_driver": self.alliance_driver, **self.effects}


SCENARIOS: dict[str, Scenario] = {
    "observed": Scenario(
        name="observed",
        description="symptoms follow the observed WAI-SR score, centred as the analysis centres "
                    "it: M2 is the generating model and must be unbiased",
        alliance_driver="observed",
    ),
    "latent": Scenario(
        name="latent",
        description="symptoms follow the latent alliance, measured by the WAI-SR with the "
                    "registry's reliability: the within estimate is attenuated",
        alliance_driver="latent",
        measurement_error=True,
        gates=False,
    ),
}


def get_scenario(name: str) -> Scenario:
    from analysis.errors import ConfigError

    if name not in SCENARIOS:
        raise ConfigError(f"recovery: unknown scenario {name!r}; the scenarios are "
                          f"{', '.join(SCENARIOS)}.")
    return SCENARIOS[name]


# ---------------------------------------------------------------------------------------------
# What a recovery job reads


@dataclass(frozen=True)
class RecoverySettings(Settings):
    """How simulated exports become ``derived`` (the study's ingest, scoring and derive settings),
    the planned primary M2 fit of each outcome, and the alliance instrument's reliability."""

    ingest: IngestSettings
    score: ScoreSettings
    derive: DeriveSettings
    fits: dict[str, dict[str, Any]]
    alliance_reliability: float | None = None

    @property
    def outcomes(self) -> tuple[str, ...]:
        return tuple(self.fits)


def recovery_settings(study, outcomes: Sequence[str] | None = None) -> RecoverySettings:
    """The recovery settings of a resolved :class:`~analysis.study.Study`.

    The study's input declaration must describe the simulator's exports (the shipped study's
    does). ``outcomes`` defaults to the study's; M2 is planned for them whether or not the
    study's ``models.run`` includes it.
    """
    from analysis.models.specs import ModelSettings, plan_fits
    from analysis.study import ingest_settings, score_settings

    keys = tuple(outcomes or study.outcome_keys)
    fits = plan_fits(ModelSettings(run=("M2",), sensitivity={},
                                   completers_min_sessions=study.models.completers_min_sessions),
                     study.alliance, [study.registry[key] for key in keys])
    primary = {fit.outcome: fit.as_dict() for fit in fits if fit.analysis == "primary"}
    return RecoverySettings(
        ingest=ingest_settings(study), score=score_settings(study), derive=study.derive,
        fits={key: primary[key] for key in keys},
        alliance_reliability=study.alliance.reliability,
    )


@dataclass(frozen=True)
class BatchSettings(Settings):
    """One job of the validation workflow: datasets ``seed + first .. seed + first + count - 1``
    of one scenario (the seed of a dataset depends on its number only, so results do not depend
    on the batch size; scenarios share seeds: common random numbers)."""

    scenario: str
    first: int
    count: int
    seed: int
    clients: int
    therapists: int
    max_sessions: int
    recovery: RecoverySettings


def plan_batches(n_datasets: int, batch_size: int) -> list[tuple[int, int]]:
    """``(first, count)`` of each batch: consecutive datasets, ``batch_size`` each."""
    if n_datasets < 1 or batch_size < 1:
        raise ValueError("plan_batches: n_datasets and batch_size must be >= 1.")
    return [(first, min(batch_size, n_datasets - first))
            for first in range(0, n_datasets, batch_size)]


# ---------------------------------------------------------------------------------------------
# One replicate

DatasetFactory = Callable[[int, int, int], tuple[pd.DataFrame, dict]]
Estimator = Callable[[pd.DataFrame, Any], dict]


def estimate_within(derived: pd.DataFrame, fit) -> dict[str, Any]:
    """M2's within-client alliance term, fitted as the pipeline fits it (the default estimator).

    Returns ``estimate, se, ci_low, ci_high, converged, singular, fallback_steps``.
    """
    from analysis.models.fitting import fit_planned_model

    result = fit_planned_model(derived, fit)
    term = next(row for row in result["fixed"] if row["term"] == WITHIN_TERM)
    return {
        "estimate": float(term["estimate"]),
        "se": float(term["se"]),
        "ci_low": float(term["ci_low"]),
        "ci_high": float(term["ci_high"]),
        "converged": bool(result["fit"]["converged"]),
        "singular": bool(result["fit"]["singular"]),
        "fallback_steps": ";".join(result["fit"]["fallback_steps"]),
    }


def expected_within_attenuation(derived: pd.DataFrame, reliability: float | None) -> float:
    """The factor measurement error multiplies the within-client alliance estimate by.

    With reliability ``r`` the observed score's error variance is ``(1 - r) var(A)`` (variance
    over all scored sessions). Person-mean centring keeps ``1 - 1/n_i`` of it for a client with
    ``n_i`` scored sessions, and the within part's mean square is ``mean(A_w^2)``; the classical
    errors-in-variables factor is then ``1 - (1 - r) var(A) mean(1 - 1/n_i) / mean(A_w^2)``: the
    within-client reliability, much lower than ``r`` because most alliance variance lies between
    clients. A first-order approximation: it ignores clipping at the scale's ceiling and the
    model's other terms. NaN without a reliability.
    """
    if reliability is None or not math.isfinite(float(reliability)):
        return float("nan")
    sessions = derived.drop_duplicates(["client_id", "session"])
    sessions = sessions[sessions["alliance_score"].notna() & sessions["alliance_within"].notna()]
    if len(sessions) < 3:
        return float("nan")
    scored = sessions.groupby("client_id")["session"].transform("size").to_numpy(dtype=float)
    error_variance = (1.0 - float(reliability)) * float(sessions["alliance_score"].var(ddof=1))
    within_square = float(np.mean(sessions["alliance_within"].to_numpy(dtype=float) ** 2))
    if within_square <= 0:
        return float("nan")
    return 1.0 - error_variance * float(np.mean(1.0 - 1.0 / scored)) / within_square


def simulate_derived(settings: RecoverySettings, scenario: Scenario, seed: int, n_clients: int,
                     n_therapists: int, max_sessions: int = 16) -> tuple[pd.DataFrame, dict]:
    """One simulated study of ``scenario`` through ingest, scoring and derivation."""
    from analysis.simulate import simulate_study
    from analysis.synthetic import derived_from_exports

    simulated = simulate_study(n_clients, n_therapists, seed, max_sessions=max_sessions,
                               **scenario.simulate_arguments())
    derived = derived_from_exports(simulated, settings.ingest, settings.score, settings.derive)
    return derived, simulated.truth


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
    scenario: str | Scenario = "observed",
    estimator: Estimator | None = None,
    settings: RecoverySettings | None = None,
    max_sessions: int = 16,
) -> pd.DataFrame:
    """Fit M2 to ``n_datasets`` simulated studies (seeds ``first_seed``, ``first_seed + 1``, ...).

    Parameters
    ----------
    n_datasets, n_clients, n_therapists, max_sessions : int
        Number and size of the simulated studies.
    first_seed : int
        Seed of the first study.
    outcomes : sequence of str
        Outcomes whose M2 is fitted in each study.
    make_dataset : callable, optional
        ``(seed, n_clients, n_therapists) -> (derived, truth)``; by default the whole pipeline
        from simulated raw exports of ``scenario`` (:func:`simulate_derived`). The truth dict
        needs ``truth["outcomes"][outcome]["within"]``.
    study : Study, optional
        Where ``settings`` come from when not given (:func:`recovery_settings`); by default the
        shipped study (``config/config.yaml``).
    scenario : str or Scenario
        A key of :data:`SCENARIOS`, or a scenario.
    estimator : callable, optional
        ``(derived, fit) -> dict`` with ``estimate, se, ci_low, ci_high`` (and optionally
        ``converged, singular, fallback_steps``); by default :func:`estimate_within`. Tests
        inject deliberately biased estimators to show that the study fails them.
    settings : RecoverySettings, optional

    Returns
    -------
    DataFrame
        One row per study and outcome, columns :data:`REPLICATE_COLUMNS`: ``covered`` says
        whether the CI covers the truth; ``expected_attenuation`` is
        :func:`expected_within_attenuation` for a scenario with measurement error (else 1);
        ``realised_attenuation`` the generator's (NaN where it reports none).
    """
    from analysis.models.specs import ResolvedFit

    scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
    settings = settings or recovery_settings(study or _shipped_study(), outcomes)
    make_dataset = make_dataset or partial(_dataset, settings, scenario, max_sessions)
    estimator = estimator or estimate_within
    fits = {outcome: ResolvedFit.from_dict(settings.fits[outcome]) for outcome in outcomes}
    rows = []
    for seed in range(first_seed, first_seed + n_datasets):
        derived, truth = make_dataset(seed, n_clients, n_therapists)
        attenuation = (expected_within_attenuation(derived, settings.alliance_reliability)
                       if scenario.measurement_error else 1.0)
        realised = (truth.get("alliance") or {}).get("realised_within_attenuation")
        for outcome in outcomes:
            estimate = {"converged": True, "singular": False, "fallback_steps": "",
                        **estimator(derived, fits[outcome])}
            true_value = true_within_effect(truth, outcome)
            rows.append({
                "scenario": scenario.name,
                "seed": seed,
                "outcome": outcome,
                "truth": true_value,
                "estimate": estimate["estimate"],
                "se": estimate["se"],
                "ci_low": estimate["ci_low"],
                "ci_high": estimate["ci_high"],
                "covered": bool(estimate["ci_low"] <= true_value <= estimate["ci_high"]),
                "converged": bool(estimate["converged"]),
                "singular": bool(estimate["singular"]),
                "fallback_steps": str(estimate["fallback_steps"]),
                "expected_attenuation": attenuation,
                "realised_attenuation": float("nan") if realised is None else float(realised),
            })
    return pd.DataFrame(rows, columns=REPLICATE_COLUMNS)


def run_batch(batch: BatchSettings) -> pd.DataFrame:
    """The replicates of one validation job (:class:`BatchSettings`)."""
    return recovery_replicates(
        batch.count, batch.clients, batch.therapists, first_seed=batch.seed + batch.first,
        outcomes=batch.recovery.outcomes, scenario=batch.scenario, settings=batch.recovery,
        max_sessions=batch.max_sessions,
    )


def combine_batches(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The batches' replicate tables as one, sorted by scenario, seed and outcome."""
    frames = [pd.read_csv(path, keep_default_na=False, na_values=[""],
                          dtype={"scenario": str, "outcome": str, "fallback_steps": str})
              for path in paths]
    replicates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=REPLICATE_COLUMNS)
    replicates["fallback_steps"] = replicates["fallback_steps"].fillna("").astype(str)
    return replicates.sort_values(["scenario", "seed", "outcome"], kind="stable").reset_index(
        drop=True)[REPLICATE_COLUMNS]


def _dataset(settings: RecoverySettings, scenario: Scenario, max_sessions: int, seed: int,
             n_clients: int, n_therapists: int) -> tuple[pd.DataFrame, dict]:
    return simulate_derived(settings, scenario, seed, n_clients, n_therapists, max_sessions)


def _shipped_study():
    from analysis.privacy import PROJECT_ROOT
    from analysis.study import load_study

    return load_study(PROJECT_ROOT / "config" / "config.yaml")


# ---------------------------------------------------------------------------------------------
# Summary and verdict


def summarise_recovery(
    replicates: pd.DataFrame,
    coverage_range: tuple[float, float] = COVERAGE_RANGE,
    max_relative_bias: float = MAX_RELATIVE_BIAS,
) -> pd.DataFrame:
    """Bias and coverage per scenario and outcome, with Monte Carlo SEs and the verdict.

    Columns: ``scenario, outcome, n_datasets, truth, mean_estimate, bias, bias_mcse,
    relative_bias, coverage, coverage_mcse, mean_se, sd_estimate, se_ratio`` (mean SE over the
    SD of the estimates: 1 when the SEs are right), ``share_fallback`` (fits that needed a simpler
    random part), ``share_converged``, ``expected_attenuation`` (mean over datasets; 1 without
    measurement error), ``expected_estimate`` (``truth * expected_attenuation``),
    ``estimate_ratio`` (``mean_estimate / truth``), ``realised_attenuation`` (the generator's),
    ``passed`` (coverage within ``coverage_range`` and ``|relative_bias| < max_relative_bias``)
    and ``gates`` (whether the scenario decides the verdict). A replicate table without a
    ``scenario`` column is one ``observed`` scenario.
    """
    if "scenario" not in replicates:
        replicates = replicates.assign(scenario="observed")
    rows = []
    for (name, outcome), group in replicates.groupby(["scenario", "outcome"], sort=True):
        n = int(len(group))
        truth = float(group["truth"].iloc[0])
        estimates = group["estimate"].to_numpy(dtype=float)
        mean_estimate = float(np.mean(estimates))
        sd_estimate = float(np.std(estimates, ddof=1)) if n > 1 else float("nan")
        bias = mean_estimate - truth
        coverage = float(group["covered"].astype(bool).mean())
        relative_bias = bias / abs(truth)
        expected = float(_column(group, "expected_attenuation", 1.0).mean())
        realised = _column(group, "realised_attenuation", np.nan)
        mean_se = float(group["se"].mean())
        scenario = SCENARIOS.get(str(name))
        rows.append({
            "scenario": str(name),
            "outcome": outcome,
            "n_datasets": n,
            "truth": truth,
            "mean_estimate": mean_estimate,
            "bias": bias,
            "bias_mcse": sd_estimate / math.sqrt(n) if n > 1 else float("nan"),
            "relative_bias": relative_bias,
            "coverage": coverage,
            "coverage_mcse": math.sqrt(coverage * (1.0 - coverage) / n),
            "mean_se": mean_se,
            "sd_estimate": sd_estimate,
            "se_ratio": mean_se / sd_estimate if sd_estimate > 0 else float("nan"),
            "share_fallback": float((group["fallback_steps"].fillna("").astype(str) != "").mean()),
            "share_converged": float(_column(group, "converged", True).astype(bool).mean()),
            "expected_attenuation": expected,
            "expected_estimate": truth * expected,
            "estimate_ratio": mean_estimate / truth if truth else float("nan"),
            "realised_attenuation": float(realised.mean()) if realised.notna().any()
            else float("nan"),
            "passed": bool(coverage_range[0] <= coverage <= coverage_range[1]
                           and abs(relative_bias) < max_relative_bias),
            "gates": True if scenario is None else scenario.gates,
        })
    return pd.DataFrame(rows)


def recovery_verdict(summary: pd.DataFrame) -> bool:
    """True when every outcome of every gating scenario passed (and there is one)."""
    gating = summary[summary["gates"].astype(bool)]
    return bool(len(gating)) and bool(gating["passed"].astype(bool).all())


def false_failure_probability(n_datasets: int,
                              coverage_range: tuple[float, float] = COVERAGE_RANGE,
                              coverage: float = NOMINAL_COVERAGE) -> float:
    """The probability that an interval with exactly ``coverage`` falls outside the band over
    ``n_datasets`` datasets (binomial Monte Carlo error), for one scenario and outcome."""
    from scipy.stats import binom

    low = math.ceil(coverage_range[0] * n_datasets - 1e-9)
    high = math.floor(coverage_range[1] * n_datasets + 1e-9)
    inside = binom.cdf(high, n_datasets, coverage) - binom.cdf(low - 1, n_datasets, coverage)
    return float(1.0 - inside)


SUMMARY_SHOWN = ["scenario", "outcome", "n_datasets", "truth", "mean_estimate", "bias",
                 "bias_mcse", "relative_bias", "coverage", "coverage_mcse", "se_ratio",
                 "expected_attenuation", "expected_estimate", "realised_attenuation",
                 "share_fallback", "passed", "gates"]


def format_summary(summary: pd.DataFrame,
                   coverage_range: tuple[float, float] = COVERAGE_RANGE,
                   max_relative_bias: float = MAX_RELATIVE_BIAS) -> str:
    """The summary as text: the table, one line per scenario and outcome, and the verdict."""
    shown = summary[[column for column in SUMMARY_SHOWN if column in summary]]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        table = shown.to_string(index=False, float_format=lambda value: f"{value:.4f}")
    lines = [table, ""]
    for row in summary.itertuples(index=False):
        scenario = SCENARIOS.get(row.scenario)
        text = (f"{row.scenario} / {row.outcome}: truth {row.truth:.3f}, mean estimate "
                f"{row.mean_estimate:.3f} (bias {row.bias:+.3f} +- {row.bias_mcse:.3f} MC SE, "
                f"{row.relative_bias:+.1%}); 95% CI coverage {row.coverage:.3f} +- "
                f"{row.coverage_mcse:.3f} over {row.n_datasets} datasets")
        if scenario is not None and scenario.measurement_error:
            text += (f"; expected attenuation from the alliance reliability "
                     f"{row.expected_attenuation:.3f}, i.e. an expected estimate of "
                     f"{row.expected_estimate:.3f} (realised in the generator "
                     f"{row.realised_attenuation:.3f}; estimate / truth "
                     f"{row.estimate_ratio:.3f})")
        text += "." if row.gates else " (reported, does not gate the verdict)."
        lines.append(text)
    n_min = int(summary["n_datasets"].min()) if len(summary) else 0
    lines.append("")
    lines.append(
        f"Criteria (gating scenarios): 95% CI coverage in [{coverage_range[0]:.3f}, "
        f"{coverage_range[1]:.3f}] and |mean bias| < {max_relative_bias:.0%} of the true effect. "
        f"With {n_min} datasets an exactly calibrated interval falls outside the band with "
        f"probability {false_failure_probability(max(n_min, 1), coverage_range):.3f} per "
        f"outcome" + (f"; use at least {MIN_DATASETS} datasets (make validate)."
                      if n_min < MIN_DATASETS else ".")
    )
    lines.append(f"Recovery study: {'PASSED' if recovery_verdict(summary) else 'FAILED'}")
    return "\n".join(lines)


def _column(group: pd.DataFrame, name: str, default: Any) -> pd.Series:
    return group[name] if name in group else pd.Series(default, index=group.index)


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.models.recovery",
        description="Parameter recovery of the primary model (M2) on simulated studies: a quick "
                    "run in this process, or the summary of a validation workflow's table.",
    )
    parser.add_argument("--datasets", type=int, default=20,
                        help="number of simulated studies per scenario (20; make validate: 500)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                        choices=list(SCENARIOS), help="scenarios (all)")
    parser.add_argument("--clients", type=int, default=80, help="clients per study")
    parser.add_argument("--therapists", type=int, default=10, help="therapists per study")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first study")
    parser.add_argument("--verbose", action="store_true", help="print every replicate")
    parser.add_argument("--check", metavar="RECOVERY_CSV",
                        help="summarise a combined replicate table (results/validation/"
                             "recovery.csv) instead of simulating")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the verdict (the workflow has printed the summary)")
    args = parser.parse_args(argv)
    # Fallback steps are counted in the summary (share_fallback); per-fit warnings would drown it.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.check:
        replicates = combine_batches([args.check])
    else:
        settings = recovery_settings(_shipped_study())
        replicates = pd.concat(
            [recovery_replicates(args.datasets, args.clients, args.therapists, args.seed,
                                 outcomes=settings.outcomes, scenario=name, settings=settings)
             for name in args.scenarios], ignore_index=True)
    if args.verbose:
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(replicates.to_string(index=False))
    summary = summarise_recovery(replicates)
    text = format_summary(summary)
    print(text.splitlines()[-1] if args.quiet else text)
    return 0 if recovery_verdict(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
