"""Throughput of the data stages: ingest + validate, score, derive on ~1,000,000 session rows.

Generates exports with the project's simulator (identifying columns included, so the allowlist
does real work), then times each stage in this process and prints rows/s and the peak resident
memory. Goal: all four stages in at most 60 s on 2 cores with at most 4 GB peak memory.

    python benchmarks/bench_ingest.py [--clients 125000] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis.derive import derive_analysis_frame
from analysis.ingest import run_ingest
from analysis.scoring import score_administrations
from analysis.study import ingest_settings, score_settings
from analysis.simulate.synthetic import demo_study


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=125_000)
    parser.add_argument("--therapists", type=int, default=1_250)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        # Generated in a child process, so that the peak memory below is the stages' own.
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "analysis.simulate", "--clients", str(args.clients),
             "--therapists", str(args.therapists), "--seed", str(args.seed), "--out", folder],
            check=True,
        )
        print(f"generated the exports in {time.perf_counter() - started:.1f} s")

        # The shipped study (config/config.yaml) describes the simulator's exports.
        study = demo_study()
        settings = ingest_settings(study)
        settings = dataclasses.replace(settings, inputs=tuple(
            dataclasses.replace(table, path=str(Path(folder) / Path(table.path).name))
            for table in settings.inputs))
        os.environ.setdefault(study.key_env, "benchmark-key")

        timings = {}
        started = time.perf_counter()
        ingested = run_ingest(settings)
        timings["ingest + validate"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = score_administrations(ingested["administrations"],
                                       score_settings(study).registry())
        timings["score"] = time.perf_counter() - started
        started = time.perf_counter()
        derived = derive_analysis_frame(scores, ingested["sessions"], study.derive)
        timings["derive"] = time.perf_counter() - started

    total = sum(timings.values())
    rows = len(ingested["sessions"])
    print(f"{'stage':<20}{'seconds':>10}{'session rows/s':>18}")
    for stage, seconds in timings.items():
        print(f"{stage:<20}{seconds:>10.1f}{rows / seconds:>18,.0f}")
    print(f"{'total':<20}{total:>10.1f}{rows / total:>18,.0f}")
    print(f"administrations scored: {len(scores):,}; derived rows: {len(derived):,}")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")
    goal_met = total <= 60 and peak_rss_mb() <= 4096
    print("goal (<= 60 s, <= 4 GB):", "met" if goal_met else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
