"""Time and peak memory of the dynamic panel model (analysis.models.panel.dpm) on a large panel.

Simulates 100,000 clients (default) over 8 sessions, with dropout and intermittent missing
scores and 1,000 therapists, and fits the primary model with cluster-robust SEs (the per-client
scores of the sandwich included). Prints the wall time of the fit, the peak resident memory of
the process and the lagged estimate. Goal (issue 17): well within 2 minutes and 4 GB on 2 cores.

    .venv/bin/python benchmarks/bench_dpm.py [--clients 100000] [--waves 8]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from analysis.models.panel.dpm import fit_dpm  # noqa: E402
from test_dpm import simulate_panel  # noqa: E402 - the tests' forward-in-time generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--waves", type=int, default=8)
    parser.add_argument("--therapists", type=int, default=1_000)
    args = parser.parse_args()
    panel = simulate_panel(args.clients, args.waves, seed=2026, same_session=-0.04,
                           dropout=0.1, intermittent=0.1, therapists=args.therapists)
    started = time.perf_counter()
    result = fit_dpm(panel, args.waves, cluster="therapist")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lagged = result["lagged"]
    print(f"clients {args.clients:,}, waves {args.waves}, therapists {args.therapists:,}, "
          f"missing-data patterns {result['convergence']['n_missing_patterns']}, "
          f"parameters {result['fit']['n_parameters']}")
    print(f"fit (estimates, observed information, fit indices, cluster-robust SEs): "
          f"{seconds:.1f} s; peak resident memory {peak_mb:,.0f} MB")
    print(f"converged {result['convergence']['converged']}; lagged a -> y "
          f"{lagged['estimate']:.4f} (SE {lagged['se']:.4f}, robust {lagged['se_robust']:.4f}); "
          f"true -0.8")


if __name__ == "__main__":
    main()
