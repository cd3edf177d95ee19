"""The multiverse and the RI-CLPM check in the pipeline: their jobs' time, on the demo or at scale.

Makes a scratch copy of the project (as benchmarks/bench_pipeline.py does) with the shipped demo
data or simulated exports, builds everything upstream of the new stages first (ingest, score,
derive: timed but not counted), then runs, as subprocesses,

    snakemake --profile workflow/profiles/default --cores 2 <multiverse and RI-CLPM targets>

once per value of --permutations (the number of resamples of the bootstrap joint test, 0 = off,
multiverse.joint_test; it reruns only the multiverse's
fit jobs and the combined table). For each run it prints the wall time, the CPU time of every
process (Snakemake and its jobs, from the kernel's accounting of the children), and each job's
wall and CPU seconds from its benchmark file (benchmarks/rules/**.tsv).

    python benchmarks/bench_multiverse.py --demo
    python benchmarks/bench_multiverse.py --clients 100000 --therapists 1000 --seed 7 \\
        --permutations 0 200
    python benchmarks/bench_multiverse.py --demo --specifications-per-job 1   # one job each

Wall times depend on what else the machine runs; the CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import copy_demo_data, make_copy, simulate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY_VARIABLE, BENCH_KEY = "ALLIANCE_PSEUDONYM_KEY", "multiverse-benchmark-key"
UPSTREAM = ["data/processed/derived.parquet", "data/processed/administrations.parquet",
            "data/processed/sessions.parquet", "results/tables/data_quality.csv"]
TARGETS = ["results/tables/multiverse.csv", "results/tables/multiverse_summary.csv",
           "results/figures/specification_curve.png", "results/tables/riclpm_fit.csv"]


def run(workdir: Path, env: dict, targets: list[str], extra: list[str], cores: int) -> dict:
    """One Snakemake run: wall seconds and the CPU seconds of every process it started."""
    command = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default",
               "--cores", str(cores), *targets, *extra]  # --configfile takes the rest
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(output.decode(errors="replace")[-6000:])
        raise SystemExit("snakemake failed")
    # wait4 gives the child's usage including its waited-for descendants (every job)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def job_benchmarks(workdir: Path, rules: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """(job, wall seconds, CPU seconds) from the benchmark files of the given rules' folders."""
    rows = []
    for rule in rules:
        for path in sorted((workdir / "benchmarks" / "rules" / rule).glob("*.tsv")):
            with path.open() as handle:
                record = list(csv.DictReader(handle, delimiter="\t"))[-1]
            cpu = record.get("cpu_time", "")
            rows.append((f"{rule}/{path.stem}", float(record["s"]),
                         float(cpu) if cpu not in ("", "NA", "-") else float("nan")))
    return rows


def scale_arguments(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark of some stages on a scratch copy: data, size, cores, folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--demo", action="store_true", help="the shipped demo data and config")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--therapists", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--project", type=Path, default=ROOT,
                        help="the checkout to copy (default: this one); its src/ goes first on "
                             "PYTHONPATH")
    return parser


def scratch_project(args: argparse.Namespace, prefix: str, key: str
                    ) -> tuple[Path, Path, dict]:
    """A scratch copy with the demo data or simulated exports: (base folder, project folder,
    environment of the runs)."""
    base = args.workdir or Path(tempfile.mkdtemp(prefix=prefix))
    workdir = base / ("demo" if args.demo else f"sim{args.clients}")
    env = dict(os.environ, MPLBACKEND="Agg")
    project = args.project.resolve()
    env["PYTHONPATH"] = os.pathsep.join([str(project / "src"), env.get("PYTHONPATH", "")])
    make_copy(project, workdir)
    if args.demo:
        copy_demo_data(ROOT, workdir)
        print("data: the shipped demo (400 clients, 40 therapists)")
    else:
        env[KEY_VARIABLE] = key
        made = simulate(workdir, args.clients, args.therapists, args.seed, env)
        print(f"data: alliance-simulate {made['command']} ({made['seconds']:.0f} s)")
    return base, workdir, env


def main(argv: list[str] | None = None) -> int:
    parser = scale_arguments(__doc__.split("\n")[0])
    parser.add_argument("--permutations", type=int, nargs="+", default=[0],
                        help="one run per value (0 = no joint test)")
    parser.add_argument("--specifications-per-job", type=int, default=None)
    args = parser.parse_args(argv)

    base, workdir, env = scratch_project(args, "bench_multiverse_", BENCH_KEY)
    upstream = run(workdir, env, UPSTREAM, [], args.cores)
    print(f"upstream (ingest, score, derive; not counted): {upstream['wall']:.1f} s wall, "
          f"{upstream['cpu']:.1f} s CPU")
    targets = TARGETS + [f"results/figures/riclpm_{outcome}.png" for outcome in ("phq9", "gad7")]
    for permutations in args.permutations:
        override = workdir / "config" / f"bench_multiverse_{permutations}.yaml"
        lines = ["multiverse:", "  joint_test:", f"    run: {'true' if permutations else 'false'}",
                 f"    resamples: {max(permutations, 199)}"]
        if args.specifications_per_job:
            lines.append(f"  specifications_per_job: {args.specifications_per_job}")
        override.write_text("\n".join(lines) + "\n")
        result = run(workdir, env, targets, ["--configfile", "config/config.yaml",
                                             str(override.relative_to(workdir))], args.cores)
        print(f"\npermutations {permutations}: {result['wall']:.1f} s wall, "
              f"{result['cpu']:.1f} s CPU (Snakemake and every job), "
              f"peak {result['peak_mb']:.0f} MB in one process")
        print(f"{'job':34s} {'wall s':>8s} {'CPU s':>8s}")
        for job, wall, cpu in job_benchmarks(workdir, ("multiverse_data", "fit_multiverse",
                                                       "fit_riclpm")):
            print(f"{job:34s} {wall:8.1f} {cpu:8.1f}")
    if not args.keep and args.workdir is None:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"\nkept: {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
