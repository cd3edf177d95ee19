"""Throughput of the data stages: ingest + validate, score, derive on ~1,000,000 session rows.

Generates exports with the project's simulator (identifying columns included, so the allowlist
does real work), then times each stage in this process and prints rows/s and the peak resident
memory. Goal: all four stages in at most 60 s on 2 cores with at most 4 GB peak memory.

    python benchmarks/bench_ingest.py [--clients 125000] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis.config import load_config
from analysis.pipeline import PROJECT_ROOT, run_derive, run_ingest, run_scoring


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

        config = load_config(PROJECT_ROOT / "config" / "config.yaml")
        for table in config["inputs"].values():
            table["path"] = str(Path(folder) / Path(table["path"]).name)
        os.environ.setdefault(config["privacy"]["key_env"], "benchmark-key")

        timings = {}
        started = time.perf_counter()
        ingested = run_ingest(config)
        timings["ingest + validate"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = run_scoring(ingested["administrations"], config)
        timings["score"] = time.perf_counter() - started
        started = time.perf_counter()
        derived = run_derive(scores, ingested["sessions"], config)
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
