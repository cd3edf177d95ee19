"""Size of the multiverse's joint test (null-imposed cluster bootstrap of clients) at nominal 5%.

Draws null datasets (no effect of alliance on symptoms, no effect of symptoms on alliance) in
which alliance trends upward over sessions (``--trend``, default 0.08 points per session) and
symptoms fall, runs the joint test of analysis.models.multiverse.summary.joint_test on each, and
prints the rejection rate of each joint statistic at p <= .05 with its 95% Clopper-Pearson
interval. The test may only be switched on (multiverse.joint_test.run) while the rates hold
4-6%.

The specifications (one estimand: lag 1, one outcome): ``--estimators mlm`` (default) the four
conventional multilevel specifications (centring over all sessions / model rows x client +
therapist / client-only random part), re-estimated by GLS at their variance components;
``--estimators mlm,dpm`` adds the dynamic panel model (therapist-clustered SEs), refitted by ML
in every resample (about 0.3 s a fit, so about 20 times slower: run it with fewer datasets or on
more cores). With ``--resamples 19`` the Monte Carlo test rejects when no resample is at least as
extreme as observed, so an exact test rejects 1/20 = 5% (Dufour 2006); fewer resamples than the
pipeline's 199 change the test's power, not its size.

    python benchmarks/size_multiverse_joint_test.py --datasets 200 --resamples 99
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from analysis.models.multiverse.specifications import enumerate_specifications
from analysis.models.multiverse.design import Block, group_detrend
from analysis.models.multiverse.fit import fit_specification
from analysis.models.multiverse.summary import JOINT_STATISTICS, joint_test
from analysis.settings import MultiverseSummarySettings


def simulate_null(seed: int, n_clients: int, n_therapists: int, trend: float) -> pd.DataFrame:
    """A multiverse data variant (one outcome, lag 1) with no alliance effect at all."""
    rng = np.random.default_rng(seed)
    therapist = rng.integers(0, n_therapists, n_clients)
    therapist_effect = rng.normal(0, 1.0, n_therapists)
    level = rng.normal(14, 3.5, n_clients) + therapist_effect[therapist]
    alliance_level = 5 - 0.08 * (level - 14) + rng.normal(0, 0.6, n_clients)
    rows = []
    for client in range(n_clients):
        sessions = int(rng.integers(4, 11))
        y = level[client] + rng.normal(0, 3)
        for session in range(1, sessions + 1):
            if session > 1:
                y = 0.3 * y + 0.7 * (level[client] - 0.4 * session) + rng.normal(0, 3)
            alliance = alliance_level[client] + trend * session + rng.normal(0, 0.5)
            rows.append((f"c{client:04d}", f"t{therapist[client]:02d}", session, y, alliance,
                         sessions))
    frame = pd.DataFrame(rows, columns=["client_id", "therapist_id", "session", "symptom_score",
                                        "alliance_score", "n_sessions"])
    frame.insert(0, "outcome", "phq9")
    grouped = frame.groupby("client_id")
    mean = grouped["alliance_score"].transform("mean")
    frame["alliance_within"] = frame["alliance_score"] - mean
    client_mean = grouped["alliance_score"].mean()
    frame["alliance_between_c"] = mean - client_mean.mean()
    codes, uniques = pd.factorize(frame["client_id"])
    frame["alliance_within_detrended"] = group_detrend(
        codes, frame["session"].to_numpy(float), frame["alliance_score"].to_numpy(float),
        len(uniques))
    frame["symptom_next_gap1"] = grouped["symptom_score"].shift(-1)
    return frame


def fits():
    from analysis.instrument_declarations import build_registry
    from analysis.models.mixed.specs import ModelSettings, plan_fits

    registry = build_registry()
    planned = plan_fits(ModelSettings(run=("M2", "DPM"), sensitivity={},
                                      panel={"min_share": 0.5, "max_waves": 10,
                                             "origin": "client"}),
                        registry["wai_sr"], [registry["phq9"]])
    by_model = {fit.model: fit for fit in planned if fit.analysis == "primary"}
    return by_model["M2"], by_model["DPM"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=19)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--therapists", type=int, default=20)
    parser.add_argument("--trend", type=float, default=0.08)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--estimators", default="mlm",
                        help="comma-separated: mlm (four specifications), dpm (one: clustered)")
    args = parser.parse_args()

    from analysis.models.multiverse.bootstrap import bootstrap_null

    m2, dpm = fits()
    specs = [spec for spec in enumerate_specifications(
        {"prorating": ["lenient"], "lag_gap": [1], "outcome": ["phq9"],
         "estimator": args.estimators.split(","), "centring": ["all_sessions", "model_rows"],
         "detrended": [False], "random": ["full", "minimal"], "sample": ["all"]})
        if not (spec.estimator == "dpm" and spec.random == "minimal")]
    settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
                                         expected_signs={"phq9": -1},
                                         resamples=args.resamples)
    rejected = {name: 0 for name in JOINT_STATISTICS}
    null_means, started, done = [], time.perf_counter(), 0
    for dataset in range(args.datasets):
        block = Block.of(simulate_null(args.seed + dataset, args.clients, args.therapists,
                                        args.trend), "phq9")
        results, states = [], []
        for spec in specs:
            record, state = fit_specification(block, spec, m2, 8, dpm)
            results.append(record)
            if state is not None:
                states.append((len(results) - 1, state))
        nulls = bootstrap_null(block, [state for _, state in states], args.resamples,
                               args.seed + dataset, "phq9")
        for (index, _), null in zip(states, nulls):
            results[index]["null"] = null
            null_means.append(np.nanmean(null["estimate"]))
        joint = joint_test(results, settings)
        for row in joint.to_dict("records"):
            rejected[row["statistic"]] += bool(row["p_bootstrap"] <= 0.05)
        done += 1
        if done % 20 == 0:
            print(f"{done} datasets, {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\nJoint test size at nominal 5%: {done} null datasets, {args.resamples} resamples, "
          f"{len(specs)} specifications ({args.clients} clients, {args.therapists} therapists, "
          f"alliance trend {args.trend} per session); {time.perf_counter() - started:.0f} s")
    for name, count in rejected.items():
        low = stats.beta.ppf(0.025, count, done - count + 1) if count else 0.0
        high = stats.beta.ppf(0.975, count + 1, done - count) if count < done else 1.0
        print(f"  {name}: {count}/{done} = {count / done:.1%} (95% CI {low:.1%} to {high:.1%})")
    print(f"  mean bootstrap estimate under the imposed null: {np.mean(null_means):+.4f} "
          f"(SD over specifications and datasets {np.std(null_means):.4f})")


if __name__ == "__main__":
    main()
