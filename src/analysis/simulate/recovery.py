"""Parameter recovery that can fail: the primary estimator on data no fitted model generated.

Each replicate draws a study from a joint dynamic process of alliance and symptoms
(:mod:`analysis.simulate.dynamic`: clients nested in therapists, 4-12 sessions with dropout and
intermittent missing questionnaires, stable client parts, reverse paths from symptoms to the
alliance) with a known effect ``c`` of the alliance at a session on symptoms at the next. Two
estimators are fitted to every dataset exactly as the pipeline fits them
(:func:`analysis.models.mixed.fitting.fit_planned_model` on a ``derived`` frame whose lag and
person-mean columns are made by :mod:`analysis.derive`'s own code):

- ``DPM`` (primary): the dynamic panel model of docs/methods.md section 4a, its lagged alliance
  path (``alliance_lagged``), waves chosen as the pipeline chooses them;
- ``M2`` (conventional): ``Y_next ~ Y + A_w + A_b_c + session + (1 | client) + (1 | therapist)``
  with its fallback protocol, its within-client alliance term (``alliance_within``).

The truth both are compared with is the generator's ``c`` (PHQ-9 points at the next session per
WAI-SR point at this session, holding this session's symptoms and the client's stable parts):
the quantity the DPM's lagged path targets, and the one M2's ``A_w`` term targets as well when
symptoms do not act on the alliance (scenario ``a_no_reverse``); under the other scenarios M2
still claims to estimate it, and its bias is the distance. Under ``e_measurement_error`` the truth
is the effect of the latent alliance (both estimators see only the error-laden score).

Scenarios (:data:`SCENARIOS`, from :mod:`analysis.simulate.dynamic`): ``a_no_reverse``,
``b_same_session``, ``c_lagged_reverse``, ``d_trends`` (gated) and ``e_measurement_error``
(reported, not gated), each ``_null`` (c = 0) and ``_effect`` (c = -1). The old scenarios, in
which symptoms were generated from M2 itself, are gone: an estimator checked on data from its own
model cannot fail.

Gate (:func:`gate_failures`; the primary in the gated scenarios only): at least
:data:`MIN_DATASETS` datasets; 95% CI coverage in :data:`COVERAGE_RANGE`; ``|bias| <=``
:data:`MAX_BIAS_SE` ``x`` the mean SE; in the null versions a rejection rate (p < .05) in
:data:`TYPE_I_RANGE`; fits converged in at least :data:`MIN_CONVERGED` of the datasets. M2's
figures sit beside, never gated. Monte Carlo error: with ``n`` datasets the bias criterion is
``0.1 sqrt(n)`` Monte Carlo SEs wide (1.4 at 200), so an unbiased estimator fails it by chance
with probability ``2 (1 - Phi(0.1 sqrt(n)))`` (0.16 at 200, 0.025 at 500);
:func:`false_failure_probabilities` gives each criterion's and the summary prints them.

Runs: ``make validate`` (workflow/validation/: one job per batch of datasets of one scenario,
combined into ``results/validation/recovery.csv``, one row per scenario, dataset and estimator, and
``recovery_summary.csv``, one row per scenario and estimator), or in one process::

    python -m analysis.simulate.recovery --datasets 20 [--scenarios b_same_session_null ...]
        [--clients 150] [--therapists 15] [--seed 1] [--estimators DPM]
    python -m analysis.simulate.recovery --check results/validation/recovery.csv [--quiet]
        [--write-table docs/validation/recovery.csv] [--markdown]

Both print the summary and exit with status 1 when a gate fails, naming it.
:func:`load_recovery_summary` reads the committed table (``docs/validation/recovery.csv``).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.config import PROJECT_ROOT
from analysis.settings import Settings
from analysis.simulate.dynamic import SCENARIOS, DynamicScenario, get_scenario, simulate_dynamic

#: Acceptance criteria for the primary estimator (docs/methods.md section 4a).
COVERAGE_RANGE = (0.925, 0.975)
MAX_BIAS_SE = 0.10
TYPE_I_RANGE = (0.025, 0.075)
MIN_CONVERGED = 0.95
MIN_DATASETS = 200
ALPHA = 0.05
NOMINAL_COVERAGE = 0.95

PRIMARY = "DPM"
CONVENTIONAL = "M2"
ESTIMATORS = (PRIMARY, CONVENTIONAL)
#: The term of each estimator whose recovery is studied.
TERMS = {PRIMARY: "alliance_lagged", CONVENTIONAL: "alliance_within"}
#: The outcome instrument whose planned fits are used (the generator's symptoms are in its units).
OUTCOME = "phq9"
#: The committed recovery table of the measured run.
DOCS_TABLE = PROJECT_ROOT / "docs" / "validation" / "recovery.csv"
#: The primary alone in studies of 5,000 clients: whether a bias shrinks with more clients
#: (docs/methods.md section 7; made by the command written there). Not a gate.
LARGE_STUDY_TABLE = PROJECT_ROOT / "docs" / "validation" / "large_study.csv"
#: The scenario the report's limitations quote.
QUOTED_SCENARIO = "b_same_session_null"
#: The scenario with client-specific incidental trends, no true effect.
TREND_SCENARIO = "d_trends_null"

REPLICATE_COLUMNS = [
    "scenario", "seed", "estimator", "truth", "estimate", "se", "df", "ci_low", "ci_high", "p",
    "covered", "rejected", "converged", "fallback_steps", "n_clients", "n_waves",
]

Scenario = DynamicScenario


# ---------------------------------------------------------------------------------------------
# What a recovery job reads


@dataclass(frozen=True)
class RecoverySettings(Settings):
    """The planned fits of both estimators (``ResolvedFit.as_dict()`` by estimator) for the
    outcome, and the study's lag rule for ``symptom_next``."""

    outcome: str
    fits: dict[str, dict[str, Any]]
    max_lag_gap: int = 1


def recovery_settings(study, outcome: str = OUTCOME) -> RecoverySettings:
    """The M2 and DPM fits of a resolved :class:`~analysis.study.Study`, as it plans them
    (main analysis, the study's wave settings for the DPM), whatever its ``models.run``."""
    from analysis.models.mixed.specs import ModelSettings, plan_fits

    models = study.models
    fits = plan_fits(ModelSettings(run=ESTIMATORS, sensitivity={},
                                   completers_min_sessions=models.completers_min_sessions,
                                   panel=dict(getattr(models, "panel", {}) or {})),
                     study.alliance, [study.registry[outcome]])
    planned = {fit.model: fit.as_dict() for fit in fits
               if fit.analysis == "primary" and fit.outcome == outcome}
    return RecoverySettings(outcome=outcome, fits={name: planned[name] for name in ESTIMATORS},
                            max_lag_gap=int(study.derive.max_lag_gap))


@dataclass(frozen=True)
class BatchSettings(Settings):
    """One job of the validation workflow: datasets ``first .. first + count - 1`` of one
    scenario; dataset ``k`` has seed ``seed + k`` in every scenario (common random numbers: the
    null and effect versions of a family differ only in ``c``), whatever the batch size."""

    scenario: str
    first: int
    count: int
    seed: int
    clients: int
    therapists: int
    min_sessions: int
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


def derived_from_long(long: pd.DataFrame, outcome: str = OUTCOME,
                      max_lag_gap: int = 1) -> pd.DataFrame:
    """The ``derived`` frame of a simulated study, its lag and person-mean columns made by
    :mod:`analysis.derive`'s code (``symptom_next`` pairs sessions at most ``max_lag_gap``
    apart; ``alliance_within`` and ``alliance_between_c`` centre on the client's observed mean)."""
    from analysis.derive import _variable_block

    base = long[["client_id", "therapist_id", "session"]].reset_index(drop=True)
    lag = (int(max_lag_gap), None)
    scores = long.reset_index(drop=True)
    symptom = _variable_block(scores, "symptom_score", "symptom", lag, base)
    alliance = _variable_block(scores, "alliance_score", "alliance", lag, base)
    derived = pd.concat([base, symptom, alliance], axis=1)
    derived.insert(0, "outcome", outcome)
    derived["outcome"] = derived["outcome"].astype("string")
    derived["n_sessions"] = base.groupby("client_id")["session"].transform("size")
    return derived


def simulate_derived(settings: RecoverySettings, scenario: str | Scenario, seed: int,
                     n_clients: int, n_therapists: int, min_sessions: int = 4,
                     max_sessions: int = 12) -> tuple[pd.DataFrame, dict]:
    """One simulated study of ``scenario`` as a ``derived`` frame, and its truth."""
    long, truth = simulate_dynamic(scenario, seed, n_clients, n_therapists,
                                   min_sessions=min_sessions, max_sessions=max_sessions)
    return derived_from_long(long, settings.outcome, settings.max_lag_gap), truth


def estimate_term(derived: pd.DataFrame, fit, estimator: str) -> dict[str, Any]:
    """Fit one planned model as the pipeline does and return its studied term.

    Returns ``estimate, se, df, ci_low, ci_high, p, converged, fallback_steps, n_clients,
    n_waves`` (``df`` NaN for a normal reference);
    a fit that fails or is not identified gives NaNs and ``converged = False``.
    """
    from analysis.errors import DataError
    from analysis.models.mixed.fitting import fit_planned_model

    empty = {"estimate": math.nan, "se": math.nan, "df": math.nan, "ci_low": math.nan,
             "ci_high": math.nan,
             "p": math.nan, "converged": False, "fallback_steps": "", "n_clients": 0,
             "n_waves": math.nan}
    try:
        result = fit_planned_model(derived, fit)
    except (DataError, np.linalg.LinAlgError, ValueError) as error:
        logging.getLogger(__name__).warning("%s failed: %s", estimator, error)
        return {**empty, "fallback_steps": f"failed: {error}"[:200]}
    info = result.get("fit", {})
    row = next((row for row in result.get("fixed", []) if row["term"] == TERMS[estimator]), None)
    if row is None or row.get("estimate") is None:
        return {**empty, "fallback_steps": str(info.get("reason") or "term not estimated")[:200]}
    return {
        "estimate": float(row["estimate"]),
        "se": float(row["se"]),
        # The reference distribution's df (t), NaN for a normal (z) reference.
        "df": float(row["df"]) if row.get("df") is not None else math.nan,
        "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "p": float(row["p"]) if row.get("p") is not None else math.nan,
        "converged": bool(info.get("converged", True)) and not bool(info.get("singular", False)),
        "fallback_steps": ";".join(info.get("fallback_steps") or []),
        "n_clients": int(info.get("n_clients") or derived["client_id"].nunique()),
        "n_waves": float(info["n_waves"]) if info.get("n_waves") is not None else math.nan,
    }


DatasetFactory = Callable[[int], tuple[pd.DataFrame, dict]]
EstimatorFunction = Callable[[pd.DataFrame, Any, str], dict]


def recovery_replicates(
    n_datasets: int,
    n_clients: int = 150,
    n_therapists: int = 15,
    first_seed: int = 1,
    scenario: str | Scenario = QUOTED_SCENARIO,
    estimators: Sequence[str] = ESTIMATORS,
    settings: RecoverySettings | None = None,
    study=None,
    min_sessions: int = 4,
    max_sessions: int = 12,
    make_dataset: DatasetFactory | None = None,
    estimate: EstimatorFunction | None = None,
) -> pd.DataFrame:
    """Fit the estimators to ``n_datasets`` studies (seeds ``first_seed``, ``first_seed + 1``...).

    ``make_dataset(seed) -> (derived, truth)`` replaces the generator and ``estimate(derived,
    fit, estimator) -> dict`` the fits (:func:`estimate_term`); tests use them to show that the
    gate fails a biased or overconfident estimator. Returns one row per dataset and estimator,
    columns :data:`REPLICATE_COLUMNS`.
    """
    from analysis.models.mixed.specs import ResolvedFit

    scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
    settings = settings or recovery_settings(study or _shipped_study())
    estimate = estimate or estimate_term
    fits = {name: ResolvedFit.from_dict(settings.fits[name]) for name in estimators}
    rows = []
    for seed in range(first_seed, first_seed + n_datasets):
        if make_dataset is None:
            derived, truth = simulate_derived(settings, scenario, seed, n_clients, n_therapists,
                                              min_sessions, max_sessions)
        else:
            derived, truth = make_dataset(seed)
        true_value = float(truth["effect"])
        for name in estimators:
            result = {"p": math.nan, "converged": True, "fallback_steps": "",
                      "n_clients": int(derived["client_id"].nunique()), "n_waves": math.nan,
                      **estimate(derived, fits[name], name)}
            finite = math.isfinite(result["estimate"])
            rows.append({
                "scenario": scenario.name, "seed": seed, "estimator": name, "truth": true_value,
                **{key: result[key] for key in ("estimate", "se", "ci_low", "ci_high", "p")},
                "df": result.get("df", math.nan),
                "covered": bool(finite and result["ci_low"] <= true_value <= result["ci_high"]),
                "rejected": bool(finite and result["p"] < ALPHA),
                "converged": bool(result["converged"]) and finite,
                "fallback_steps": str(result["fallback_steps"]),
                "n_clients": int(result["n_clients"]),
                "n_waves": result["n_waves"],
            })
    return pd.DataFrame(rows, columns=REPLICATE_COLUMNS)


def run_batch(batch: BatchSettings) -> pd.DataFrame:
    """The replicates of one validation job (:class:`BatchSettings`)."""
    return recovery_replicates(
        batch.count, batch.clients, batch.therapists, first_seed=batch.seed + batch.first,
        scenario=batch.scenario, settings=batch.recovery, min_sessions=batch.min_sessions,
        max_sessions=batch.max_sessions,
    )


def combine_batches(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The batches' replicate tables as one, sorted by scenario, seed and estimator."""
    frames = [pd.read_csv(path, keep_default_na=False, na_values=[""],
                          dtype={"scenario": str, "estimator": str, "fallback_steps": str})
              for path in paths]
    replicates = (pd.concat(frames, ignore_index=True) if frames
                  else pd.DataFrame(columns=REPLICATE_COLUMNS))
    replicates["fallback_steps"] = replicates["fallback_steps"].fillna("").astype(str)
    if "df" not in replicates:  # a table from before the reference df was recorded (normal)
        replicates["df"] = np.nan
    return replicates.sort_values(["scenario", "seed", "estimator"], kind="stable").reset_index(
        drop=True)[REPLICATE_COLUMNS]


def _shipped_study():
    from analysis.study import load_study

    return load_study(PROJECT_ROOT / "config" / "config.yaml")


# ---------------------------------------------------------------------------------------------
# Summary and gate

SUMMARY_COLUMNS = [
    "scenario", "estimator", "role", "null", "gates", "n_datasets", "n_converged", "n_clients",
    "truth", "mean_estimate", "bias", "bias_mcse", "mean_se", "sd_estimate", "se_ratio",
    "bias_over_se", "coverage", "coverage_mcse", "rejection_rate", "rejection_mcse",
    "share_converged", "share_fallback", "passed", "failed_criteria",
]


def summarise_recovery(replicates: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario and estimator (columns :data:`SUMMARY_COLUMNS`).

    ``n_clients`` is the clients per simulated study (median over datasets). Over the converged
    fits: mean estimate, bias (mean estimate minus truth) with its Monte Carlo SE, mean SE, SD
    of the estimates, ``se_ratio`` (mean SE / SD: 1 when the SEs are right), ``bias_over_se``
    (``|bias| / mean SE``), 95% CI coverage and rejection rate (p < .05: the type I error rate
    in a null version, the power otherwise) with their Monte Carlo SEs; the
    share of datasets whose fit converged and of fits that needed a fallback step. ``gates``
    is true for the primary in a gated scenario; ``passed`` and ``failed_criteria`` apply the
    gate there (empty elsewhere: M2 is never gated).
    """
    rows = []
    for (name, estimator), group in replicates.groupby(["scenario", "estimator"], sort=False):
        scenario = SCENARIOS.get(str(name))
        ok = group[group["converged"].astype(bool) & np.isfinite(group["estimate"].astype(float))]
        n, m = int(len(group)), int(len(ok))
        truth = float(group["truth"].iloc[0])
        estimates = ok["estimate"].to_numpy(dtype=float)
        mean_estimate = float(estimates.mean()) if m else math.nan
        sd = float(estimates.std(ddof=1)) if m > 1 else math.nan
        mean_se = float(ok["se"].mean()) if m else math.nan
        bias = mean_estimate - truth
        coverage = float(ok["covered"].astype(bool).mean()) if m else math.nan
        rejection = float(ok["rejected"].astype(bool).mean()) if m else math.nan
        row = {
            "scenario": str(name),
            "estimator": str(estimator),
            "role": "primary" if estimator == PRIMARY else "conventional",
            "null": bool(scenario.null) if scenario else bool(truth == 0),
            "gates": bool(estimator == PRIMARY and (scenario.gates if scenario else True)),
            "n_datasets": n,
            "n_converged": m,
            "n_clients": int(group["n_clients"].median()) if n else 0,
            "truth": truth,
            "mean_estimate": mean_estimate,
            "bias": bias,
            "bias_mcse": sd / math.sqrt(m) if m > 1 else math.nan,
            "mean_se": mean_se,
            "sd_estimate": sd,
            "se_ratio": mean_se / sd if m > 1 and sd > 0 else math.nan,
            "bias_over_se": abs(bias) / mean_se if m and mean_se > 0 else math.nan,
            "coverage": coverage,
            "coverage_mcse": math.sqrt(coverage * (1 - coverage) / m) if m else math.nan,
            "rejection_rate": rejection,
            "rejection_mcse": math.sqrt(rejection * (1 - rejection) / m) if m else math.nan,
            "share_converged": m / n if n else math.nan,
            "share_fallback": float((group["fallback_steps"].fillna("").astype(str) != "")
                                    .mean()),
        }
        failed = gate_failures(row) if row["gates"] else []
        row["passed"] = (not failed) if row["gates"] else None
        row["failed_criteria"] = "; ".join(failed)
        rows.append(row)
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = {name: i for i, name in enumerate(SCENARIOS)}
    summary["_order"] = summary["scenario"].map(order).fillna(len(order))
    summary["_estimator"] = summary["estimator"].map({PRIMARY: 0, CONVENTIONAL: 1}).fillna(2)
    return summary.sort_values(["_order", "scenario", "_estimator"]).drop(
        columns=["_order", "_estimator"]).reset_index(drop=True)


def gate_failures(row: dict[str, Any] | pd.Series, min_datasets: int = MIN_DATASETS) -> list[str]:
    """The gate criteria a summary row of the primary fails (empty: passed)."""
    failed = []
    if row["n_datasets"] < min_datasets:
        failed.append(f"{row['n_datasets']} datasets < {min_datasets}")
    if not row["share_converged"] >= MIN_CONVERGED:
        failed.append(f"converged in {row['share_converged']:.3f} < {MIN_CONVERGED}")
    low, high = COVERAGE_RANGE
    if not low <= row["coverage"] <= high:
        failed.append(f"coverage {row['coverage']:.3f} outside [{low}, {high}]")
    if not abs(row["bias"]) <= MAX_BIAS_SE * row["mean_se"]:
        failed.append(f"|bias| {abs(row['bias']):.4f} > {MAX_BIAS_SE} x mean SE "
                      f"{row['mean_se']:.4f}")
    if row["null"]:
        low, high = TYPE_I_RANGE
        if not low <= row["rejection_rate"] <= high:
            failed.append(f"type I error {row['rejection_rate']:.3f} outside [{low}, {high}]")
    return failed


def recovery_verdict(summary: pd.DataFrame) -> bool:
    """True when every gated row passed (and there is one)."""
    gating = summary[summary["gates"].astype(bool)]
    return bool(len(gating)) and bool(gating["passed"].astype(bool).all())


def false_failure_probabilities(n_datasets: int) -> dict[str, float]:
    """The probability that an exactly calibrated, unbiased estimator fails each criterion over
    ``n_datasets`` datasets by Monte Carlo error alone (one scenario version): ``coverage`` and
    ``type_i`` binomial, ``bias`` normal (the bias criterion is ``0.1 sqrt(n)`` MC SEs wide)."""
    from scipy.stats import binom, norm

    def outside(band, rate):
        low = math.ceil(band[0] * n_datasets - 1e-9)
        high = math.floor(band[1] * n_datasets + 1e-9)
        return float(1 - (binom.cdf(high, n_datasets, rate)
                          - binom.cdf(low - 1, n_datasets, rate)))

    return {"coverage": outside(COVERAGE_RANGE, NOMINAL_COVERAGE),
            "type_i": outside(TYPE_I_RANGE, ALPHA),
            "bias": float(2 * norm.sf(MAX_BIAS_SE * math.sqrt(n_datasets)))}


SUMMARY_SHOWN = ["scenario", "estimator", "n_datasets", "truth", "mean_estimate", "bias",
                 "bias_mcse", "mean_se", "se_ratio", "bias_over_se", "coverage",
                 "rejection_rate", "share_converged", "passed"]


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as text: the table, the gate's failures by name, and the verdict."""
    shown = summary[[column for column in SUMMARY_SHOWN if column in summary]].copy()
    shown["passed"] = shown["passed"].map(
        lambda value: "-" if value is None or (isinstance(value, float) and math.isnan(value))
        else ("yes" if bool(value) else "NO"))
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        lines = [shown.to_string(index=False, float_format=lambda value: f"{value:.4f}"), ""]
    for row in summary.itertuples(index=False):
        scenario = SCENARIOS.get(row.scenario)
        if row.estimator == PRIMARY and scenario is not None:
            lines.append(f"{row.scenario}: {scenario.description}"
                         + ("" if scenario.gates else " (reported against the latent truth, "
                                                      "not gated)"))
    gating = summary[summary["gates"].astype(bool)]
    n_min = int(gating["n_datasets"].min()) if len(gating) else 0
    chance = false_failure_probabilities(max(n_min, 1))
    lines += ["", (
        f"Gate (the primary {PRIMARY} in the gated scenarios; {CONVENTIONAL} is reported beside "
        f"it, not gated): >= {MIN_DATASETS} datasets, 95% CI coverage in "
        f"[{COVERAGE_RANGE[0]}, {COVERAGE_RANGE[1]}], |bias| <= {MAX_BIAS_SE} x mean SE, type I "
        f"error in [{TYPE_I_RANGE[0]}, {TYPE_I_RANGE[1]}] in the null versions, converged in >= "
        f"{MIN_CONVERGED:.0%} of datasets. With {n_min} datasets an exactly calibrated, unbiased "
        f"estimator fails a criterion by Monte Carlo error alone with probability "
        f"{chance['coverage']:.3f} (coverage), {chance['bias']:.3f} (bias), "
        f"{chance['type_i']:.3f} (type I error) per scenario version.")]
    failures = [f"  {row.scenario} / {row.estimator}: {row.failed_criteria}"
                for row in gating.itertuples(index=False) if not row.passed]
    if failures:
        lines += ["Gate failures:", *failures]
    lines.append(f"Recovery study: {'PASSED' if recovery_verdict(summary) else 'FAILED'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The committed table, and what the report and docs/methods.md quote

DOCS_COLUMNS = ["scenario", "estimator", "role", "null", "gates", "n_datasets", "n_clients",
                "truth", "mean_estimate", "bias", "bias_mcse", "mean_se", "se_ratio",
                "bias_over_se", "coverage", "rejection_rate", "share_converged", "passed",
                "failed_criteria"]


def write_docs_table(summary: pd.DataFrame, path: str | Path = DOCS_TABLE) -> Path:
    """The summary as the committed recovery table (rounded to 4 decimals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = summary[DOCS_COLUMNS].copy()
    table.to_csv(path, index=False, float_format="%.4f")
    return path


def methods_table(summary: pd.DataFrame | None = None) -> str:
    """The markdown table of docs/methods.md's recovery subsection: per scenario, the primary's
    and M2's mean estimate, coverage and rejection rate (from :data:`DOCS_TABLE` by default)."""
    summary = pd.read_csv(DOCS_TABLE) if summary is None else summary
    lines = ["| scenario | true c | DPM mean (bias / SE) | DPM coverage | DPM p < .05 | "
             "M2 mean | M2 coverage | M2 p < .05 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, group in summary.groupby("scenario", sort=False):
        by = {row["estimator"]: row for row in group.to_dict("records")}
        dpm, m2 = by.get(PRIMARY), by.get(CONVENTIONAL)
        if dpm is None or m2 is None:
            continue
        label = f"{name}" + ("" if bool(dpm["gates"]) else " (not gated)")
        lines.append(
            f"| {label} | {dpm['truth']:g} | {dpm['mean_estimate']:+.2f} "
            f"({dpm['bias_over_se']:.3f}) | {dpm['coverage']:.3f} | {dpm['rejection_rate']:.3f} "
            f"| {m2['mean_estimate']:+.2f} | {m2['coverage']:.3f} | {m2['rejection_rate']:.3f} |")
    return "\n".join(lines)


def load_recovery_summary(path: str | Path = DOCS_TABLE,
                          scenario: str = QUOTED_SCENARIO) -> dict[str, Any] | None:
    """The measured figures of the primary and of M2 under ``scenario`` (by default symptoms
    lowering the same-session alliance, no true effect), from the committed recovery table.

    Returns ``{"scenario", "description", "n_datasets", "truth", "primary": {...},
    "conventional": {...}, "gate_passed"}`` where each estimator's dict holds ``estimator,
    mean_estimate, bias, coverage, rejection_rate, mean_se, share_converged``; ``gate_passed``
    is the verdict over all gated rows of the table. None when the table or the scenario's rows
    are missing.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    if not {"scenario", "estimator", "mean_estimate"}.issubset(table.columns):
        return None
    rows = table[table["scenario"].astype(str) == scenario]
    by = {str(row["estimator"]): row for row in rows.to_dict("records")}
    if PRIMARY not in by or CONVENTIONAL not in by:
        return None
    keys = ("estimator", "mean_estimate", "bias", "coverage", "rejection_rate", "mean_se",
            "share_converged")

    def figures(row: dict) -> dict[str, Any]:
        return {key: (row[key] if key == "estimator" else float(row[key])) for key in keys}

    gating = table[table["gates"].astype(str).str.lower() == "true"]
    passed = gating["passed"].astype(str).str.lower() == "true"
    known = SCENARIOS.get(scenario)
    return {
        "scenario": scenario,
        "description": known.description if known else "",
        "n_datasets": int(by[PRIMARY]["n_datasets"]),
        "truth": float(by[PRIMARY]["truth"]),
        "primary": figures(by[PRIMARY]),
        "conventional": figures(by[CONVENTIONAL]),
        "gate_passed": bool(len(gating)) and bool(passed.all()),
    }


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.simulate.recovery",
        description="Parameter recovery of the primary dynamic panel model (and the conventional "
                    "M2 beside it) on simulated studies: a quick run in this process, or the "
                    "summary of a validation workflow's table.")
    parser.add_argument("--datasets", type=int, default=20,
                        help="simulated studies per scenario (20; make validate: 2000; the "
                             "gate needs 200 or more)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                        choices=list(SCENARIOS), help="scenarios (all)")
    parser.add_argument("--clients", type=int, default=150, help="clients per study")
    parser.add_argument("--therapists", type=int, default=15, help="therapists per study")
    parser.add_argument("--min-sessions", type=int, default=4)
    parser.add_argument("--max-sessions", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first study")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS),
                        choices=list(ESTIMATORS),
                        help="estimators to fit (both; DPM alone for a quick check of the "
                             "primary in large studies, where M2 is slow)")
    parser.add_argument("--check", metavar="RECOVERY_CSV",
                        help="summarise a combined replicate table (results/validation/"
                             "recovery.csv) instead of simulating")
    parser.add_argument("--write-table", metavar="CSV",
                        help="also write the summary as the committed table "
                             "(docs/validation/recovery.csv)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the table of docs/methods.md's recovery subsection")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the gate failures and the verdict")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.check:
        replicates = combine_batches([args.check])
    else:
        settings = recovery_settings(_shipped_study())
        replicates = pd.concat(
            [recovery_replicates(args.datasets, args.clients, args.therapists, args.seed,
                                 scenario=name, estimators=args.estimators, settings=settings,
                                 min_sessions=args.min_sessions, max_sessions=args.max_sessions)
             for name in args.scenarios], ignore_index=True)
    summary = summarise_recovery(replicates)
    text = format_summary(summary)
    if args.quiet:
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if line == "Gate failures:"),
                     len(lines) - 1)
        text = "\n".join(lines[start:])
    print(text)
    if args.write_table:
        print(f"wrote {write_docs_table(summary, args.write_table)}")
    if args.markdown:
        print("\n" + methods_table(summary))
    return 0 if recovery_verdict(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
