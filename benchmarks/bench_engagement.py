"""The engagement jobs in the pipeline (dropout, therapist-patient, sudden gains): time and memory
of every job, at scale.

Makes a scratch copy of the project (as benchmarks/bench_pipeline.py does) with simulated exports
(100,000 clients, 1,000 therapists by default) or the shipped demo, builds everything upstream of
the engagement jobs first (ingest, score, derive, episodes: timed but not counted), then runs, as
a subprocess,

    snakemake --profile workflow/profiles/default --cores 2 <engagement tables and figures>

and prints every job's wall seconds and peak memory (its benchmark file where its rule declares
one, and this script's sampling of the process tree, as bench_pipeline.py measures them), with
the goal: each engagement job within 60 s and 4 GB on 2 cores at 100,000 clients.

    python benchmarks/bench_engagement.py                      # 100,000 clients
    python benchmarks/bench_engagement.py --demo
    python benchmarks/bench_engagement.py --clients 20000 --therapists 200 --keep
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_multiverse import run, scale_arguments, scratch_project  # noqa: E402
from bench_pipeline import report, run_pipeline  # noqa: E402

BENCH_KEY = "engagement-benchmark-key"
UPSTREAM = ["data/processed/derived.parquet", "data/processed/sessions.parquet",
            "data/processed/offered_sessions.parquet", "data/processed/jacobson_truax.parquet"]
TABLES = ["results/tables/dropout.csv", "results/tables/attendance.csv",
          "results/tables/therapist_patient_alliance.csv", "results/tables/sudden_gains.csv",
          "results/tables/sudden_gains_summary.csv"]
FIGURES = ["results/figures/dropout_km.png", "results/figures/therapist_patient_{outcome}.png",
           "results/figures/sudden_gains_{outcome}.png"]
OUTCOMES = ("phq9", "gad7")
#: The rules of the engagement analyses (workflow/rules/engagement.smk and their figures).
RULES = ("dropout_episodes", "fit_dropout", "combine_dropout", "fit_therapist_patient",
         "combine_therapist_patient", "fit_sudden_gains", "combine_sudden_gains",
         "figure_dropout_km", "figure_therapist_patient", "figure_sudden_gains")
GOAL_JOB_S, GOAL_JOB_MB = 60.0, 4096.0


def targets() -> list[str]:
    figures = [figure.format(outcome=outcome) for figure in FIGURES for outcome in OUTCOMES]
    return TABLES + sorted(set(figures))


def main(argv: list[str] | None = None) -> int:
    parser = scale_arguments(__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=0.2,
                        help="seconds between memory samples of the process tree")
    args = parser.parse_args(argv)

    base, workdir, env = scratch_project(args, "bench_engagement_", BENCH_KEY)
    upstream = run(workdir, env, UPSTREAM, [], args.cores)
    print(f"upstream (ingest, score, derive, episodes; not counted): {upstream['wall']:.1f} s "
          f"wall, {upstream['cpu']:.1f} s CPU")
    # the engagement run's own Snakemake log is the one run_pipeline reads
    shutil.rmtree(workdir / ".snakemake" / "log", ignore_errors=True)
    result = run_pipeline("engagement", workdir, env, targets(), args.interval, args.cores,
                          with_report=False)
    print(report(result, top=40))
    jobs = [job for job in result.jobs if job.rule in RULES]
    slowest = max(jobs, key=lambda job: job.seconds or 0.0, default=None)
    largest = max(jobs, key=lambda job: job.peak_mb or 0.0, default=None)
    met = (result.returncode == 0 and bool(jobs)
           and all((job.seconds or 0.0) <= GOAL_JOB_S and (job.peak_mb or 0.0) <= GOAL_JOB_MB
                   for job in jobs))
    if slowest is not None and largest is not None:
        print(f"goal: each engagement job <= {GOAL_JOB_S:.0f} s and <= {GOAL_JOB_MB:.0f} MB: "
              f"slowest {slowest.name} {slowest.seconds or 0.0:.1f} s, largest {largest.name} "
              f"{largest.peak_mb or 0.0:.0f} MB -> {'met' if met else 'NOT met'}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"\nkept: {workdir}")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
