"""Benchmark of the model engines on a large simulated service.

Simulates raw exports for 100,000 clients and 1,000 therapists (about 800,000 session rows),
runs them through ingest, scoring and derivation
(:func:`analysis.simulate.synthetic.derived_from_simulation`) and times, for each mixed model of
docs/methods.md section 4 (PHQ-9 outcome), the stages of the primary engine: the fit
(``mixedlm.lmer``), the summary with Satterthwaite df (``tidy``) and our convergence check (gradient
and Hessian of the deviance). The same rows are fitted by R's lme4/lmerTest through ``Rscript
tests/r/fit_lmer.R`` when R is installed (timed inside R, so file reading is excluded), and by
statsmodels ``MixedLM`` on a 10,000-client subset (beside mixedlm on the same subset). It prints
seconds, speed ratios and the largest relative difference of the fixed effects between engines. The
goal: M2 with the therapist term at 100,000 clients at least 5 times faster than lmerTest, with the
same estimates to 1e-4.

Usage::

    python benchmarks/bench_models.py [--clients 100000] [--therapists 1000] [--seed 1]
        [--models M2 M3 R3 M0 M1] [--r-models ...] [--subset-clients 10000] [--no-r]
        [--no-statsmodels]

Each model is first fitted by mixedlm on the subset (which also warms up its compiled core, as
loading lme4 does for R outside the timed region), then timed on all rows.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.models.mixed.engines import MixedlmEngine, StatsmodelsEngine, scaled_gradient_check
from analysis.models.mixed.fitting import select_model_rows
from analysis.simulate.synthetic import derived_from_simulation

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = ROOT / "tests" / "r" / "fit_lmer.R"
OUTCOME = "phq9"


def benchmark_study(models: list[str]):
    """The shipped study with the PHQ-9 as its only outcome and ``models`` run."""
    from analysis.config import load_config
    from analysis.study import study_from_dict

    config = load_config(ROOT / "config" / "config.yaml")
    config["analysis"] = {**config["analysis"], "outcomes": [OUTCOME]}
    config["models"] = {**config["models"], "run": models, "custom": []}
    return study_from_dict(config)


def time_mixedlm(formula: str, rows: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Seconds per stage of the primary engine, and its fixed effects."""
    import mixedlm

    frame = rows.copy()
    for group in ("client_id", "therapist_id"):
        frame[group] = frame[group].astype(str)
    start = time.perf_counter()
    model = mixedlm.lmer(formula, frame, REML=True)
    fitted = time.perf_counter()
    tidy = model.tidy(conf_int=True)
    summarised = time.perf_counter()
    check = scaled_gradient_check(model.as_function("deviance"), np.asarray(model.theta),
                                  np.asarray(mixedlm.getME(model, "lower"), dtype=float))
    checked = time.perf_counter()
    seconds = {
        "mixedlm_fit": fitted - start,
        "mixedlm_summary": summarised - fitted,
        "mixedlm_check": checked - summarised,
        "mixedlm_total": checked - start,
        "gradient_norm": check["gradient_norm"],
        "singular": bool(model.is_singular()),
    }
    fixed = pd.DataFrame({"term": tidy["term"].astype(str), "estimate": tidy["estimate"],
                          "se": tidy["std.error"], "df": tidy["df"]})
    return seconds, fixed


def time_lmertest(jobs: list[tuple[str, str, pd.DataFrame]], folder: Path) -> dict[str, dict]:
    """lmerTest timings (measured inside R) and fixed effects, per model id."""
    rows = []
    for model_id, formula, data in jobs:
        path = folder / f"{model_id}.csv"
        data.to_csv(path, index=False, float_format="%.17g")
        rows.append({"id": model_id, "data": str(path), "formula": formula, "reml": "TRUE"})
    pd.DataFrame(rows).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(folder / "jobs.csv"), str(folder)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"Rscript failed:\n{run.stderr}")
    results = {}
    for model_id, _, _ in jobs:
        fit = pd.read_csv(folder / f"{model_id}_fit.csv").iloc[0]
        results[model_id] = {
            "lmertest_fit": float(fit["seconds_fit"]),
            "lmertest_summary": float(fit["seconds_summary"]),
            "lmertest_total": float(fit["seconds_fit"] + fit["seconds_summary"]),
            "fixed": pd.read_csv(folder / f"{model_id}_fixed.csv"),
        }
    return results


def max_relative_difference(ours: pd.DataFrame, theirs: pd.DataFrame, column: str) -> float:
    merged = ours.merge(theirs, on="term", suffixes=("_a", "_b"))
    scale = np.maximum(merged[f"{column}_b"].abs(), 1e-12)
    return float(((merged[f"{column}_a"] - merged[f"{column}_b"]).abs() / scale).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--therapists", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=["M2", "M3", "R3", "M0", "M1"])
    parser.add_argument("--r-models", nargs="+", default=None,
                        help="models fitted by lme4/lmerTest (default: all of --models)")
    parser.add_argument("--subset-clients", type=int, default=10_000)
    parser.add_argument("--no-r", action="store_true", help="skip lme4/lmerTest")
    parser.add_argument("--no-statsmodels", action="store_true", help="skip statsmodels")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    derived, _ = derived_from_simulation(args.seed, args.clients, args.therapists)
    print(f"simulate + ingest + score + derive: {time.perf_counter() - start:.1f} s, "
          f"{int((derived['outcome'] == OUTCOME).sum()):,} {OUTCOME} session rows, "
          f"{args.clients:,} clients, {args.therapists:,} therapists", flush=True)

    study = benchmark_study(args.models)
    with_r = not args.no_r and shutil.which("Rscript") is not None
    if not args.no_r and not with_r:
        print("Rscript not found: lme4/lmerTest timings skipped")
    subset_ids = set(
        np.sort(derived["client_id"].astype(str).unique())[: args.subset_clients]
    )
    results, r_jobs = [], []
    r_models = args.r_models or args.models
    for model_id in args.models:
        resolved = study.fit(OUTCOME, model_id, "primary")
        rows, _ = select_model_rows(derived, resolved)
        result = {"model": model_id, "rows": len(rows),
                  "clients": int(rows["client_id"].nunique())}
        subset = rows.loc[rows["client_id"].astype(str).isin(subset_ids)]
        result["subset_rows"] = len(subset)
        tick = time.perf_counter()
        mine = MixedlmEngine().fit(resolved.formula, subset)
        result["mixedlm_subset"] = time.perf_counter() - tick
        if not args.no_statsmodels:
            expressible, reason = StatsmodelsEngine().can_express(resolved.formula, subset)
            if expressible:
                tick = time.perf_counter()
                other = StatsmodelsEngine().fit(resolved.formula, subset)
                result["statsmodels_subset"] = time.perf_counter() - tick
                result["subset_max_rel_diff"] = max_relative_difference(
                    mine.fixed, other.fixed, "estimate")
                print(f"{model_id}: {args.subset_clients:,}-client subset: statsmodels "
                      f"{result['statsmodels_subset']:.1f} s, mixedlm "
                      f"{result['mixedlm_subset']:.1f} s", flush=True)
            else:
                result["statsmodels_note"] = reason
        gc.collect()
        seconds, fixed = time_mixedlm(resolved.formula, rows)
        result.update({**seconds, "fixed": fixed})
        print(f"{model_id}: mixedlm {seconds['mixedlm_total']:.1f} s "
              f"(fit {seconds['mixedlm_fit']:.1f}, summary {seconds['mixedlm_summary']:.1f}, "
              f"check {seconds['mixedlm_check']:.1f})", flush=True)
        results.append(result)
        if model_id in r_models:
            r_jobs.append((model_id, resolved.formula, rows))

    if with_r:
        with tempfile.TemporaryDirectory() as folder:
            lmertest = time_lmertest(r_jobs, Path(folder))
        for result in results:
            if result["model"] not in lmertest:
                continue
            reference = lmertest[result["model"]]
            result.update({key: value for key, value in reference.items() if key != "fixed"})
            result["estimate_max_rel_diff"] = max_relative_difference(
                result["fixed"], reference["fixed"], "estimate")
            result["se_max_rel_diff"] = max_relative_difference(
                result["fixed"], reference["fixed"], "se")
            result["df_max_rel_diff"] = max_relative_difference(
                result["fixed"], reference["fixed"], "df")
            result["speedup_vs_lmertest"] = result["lmertest_total"] / result["mixedlm_total"]

    table = pd.DataFrame([{k: v for k, v in r.items() if k != "fixed"} for r in results])
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print()
        print(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    if with_r and "M2" in r_models and "M2" in args.models:
        m2 = table.set_index("model").loc["M2"]
        goal = m2["speedup_vs_lmertest"] >= 5 and m2["estimate_max_rel_diff"] <= 1e-4
        print(f"\nGoal (M2 >= 5x faster than lmerTest, estimates within 1e-4): "
              f"{'met' if goal else 'NOT met'} (speed-up {m2['speedup_vs_lmertest']:.1f}x, "
              f"largest relative difference {m2['estimate_max_rel_diff']:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
