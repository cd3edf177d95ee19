"""The whole Snakemake pipeline end to end, from scratch: wall time, time and memory per job.

Makes a scratch copy of the project (Snakefile, workflow/, config/, notebooks/; empty results/ and
data/processed/) with the shipped demo data in data/raw, and another with simulated exports
(100,000 clients, 1,000 therapists by default; the simulation is timed on its own and not
counted), runs the same command as the first line of `make report` in each as a subprocess

    snakemake --profile workflow/profiles/default --cores 2

(with ALLIANCE_PSEUDONYM_KEY set for the simulated data) and prints one plain-text table per run:

* the wall time end to end, and the start-up before the first job (parsing, DAG);
* every job's wall time from Snakemake's log (one-second resolution), sorted by cost, beside its
  seconds and peak memory (max_rss) from its benchmark file (benchmarks/rules/**.tsv) where its
  rule declares `benchmark:`, and its peak resident memory sampled by this script every
  --interval seconds (every job, benchmark file or not; jobs shorter than the interval may be
  missed);
* the same aggregated per rule (jobs, total s, max s, max MB), the rules without `benchmark:`,
  and the peak memory of one job and of the whole run (all processes at once);
* the goals: 100,000 clients in at most 3 minutes wall with at most 4 GB per job; the demo in at
  most 60 s; 1,000,000 clients completing on a 24 GB machine (stretch: 20 minutes).

    python benchmarks/bench_pipeline.py                       # demo, then 100,000 clients
    python benchmarks/bench_pipeline.py --demo-only
    python benchmarks/bench_pipeline.py --skip-demo --clients 1000000 --therapists 10000
    python benchmarks/bench_pipeline.py --skip-demo --models M0 M1 M2 M3 M4 R2 R3
    python benchmarks/bench_pipeline.py --json benchmarks/output/pipeline.json --keep

`--models` (or `--configfile FILE`) changes the simulated run only: the list is written to an
overriding config file in the scratch copy and passed with `--configfile` (Snakemake merges it
over config/config.yaml key by key). The demo always runs the shipped config. `--snakemake-args`
is passed to both runs. `--project DIR` benchmarks another checkout (e.g. a `git worktree` of
the last commit): its Snakefile, workflow and config are copied, and its src/ is put first on
PYTHONPATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "notebooks")
KEY_VARIABLE = "ALLIANCE_PSEUDONYM_KEY"
BENCH_KEY = "pipeline-benchmark-key"
MB = 1024 * 1024

# Goals (see benchmarks/README.md).
GOAL_SIM_WALL_S, GOAL_JOB_MB, GOAL_SIM_CLIENTS = 180, 4096, 100_000
GOAL_DEMO_WALL_S = 60


# ---------------------------------------------------------------------------------------------
# The scratch copy
# ---------------------------------------------------------------------------------------------

def make_copy(project: Path, destination: Path) -> None:
    """Snakefile, workflow/, config/, notebooks/; empty data/raw, data/processed and results/."""
    if destination.exists() and any(destination.iterdir()):
        raise SystemExit(f"{destination} exists and is not empty: the pipeline must start from scratch")
    destination.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = project / name
        if source.is_dir():
            shutil.copytree(source, destination / name,
                            ignore=shutil.ignore_patterns("*.ipynb", "__pycache__", ".ipynb_checkpoints"))
        elif source.is_file():
            shutil.copy2(source, destination / name)
    for folder in ("data/raw", "data/processed", "results"):
        (destination / folder).mkdir(parents=True, exist_ok=True)


def simulate(destination: Path, clients: int, therapists: int, seed: int, env: dict) -> dict:
    """Run the simulator into data/raw in a child process; its seconds and peak memory."""
    raw = destination / "data" / "raw"
    command = [sys.executable, "-m", "analysis.simulate", "--clients", str(clients),
               "--therapists", str(therapists), "--seed", str(seed), "--out", str(raw)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.stderr.write(output.decode(errors="replace"))
        raise SystemExit(f"the simulator failed ({process.returncode})")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "command": shlex.join(command[1:])}


def copy_demo_data(project: Path, destination: Path) -> None:
    raw = project / "data" / "raw"
    for path in raw.iterdir():
        if path.is_file():
            shutil.copy2(path, destination / "data" / "raw" / path.name)


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")) - 1, 0)


# ---------------------------------------------------------------------------------------------
# Memory sampling: every process under Snakemake, grouped by the job script it runs
# ---------------------------------------------------------------------------------------------

SCRIPT_PATTERN = re.compile(r"\.snakemake/scripts/(tmp[^/\s'\"]+\.py)")
LOG_PATTERN = re.compile(rb"logs/[A-Za-z0-9_./=-]+?\.log")


class MemorySampler(threading.Thread):
    """Polls the Snakemake process tree: peak RSS per job script and of the whole tree."""

    def __init__(self, pid: int, workdir: Path, interval: float):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.workdir = workdir
        self.interval = interval
        self.stop_event = threading.Event()
        self.jobs: dict[str, dict] = {}  # script name -> {"peak_mb", "log", "first", "last"}
        self.tree_peak_mb = 0.0
        self.samples = 0
        self.commands: dict[int, str] = {}

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join()

    def sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        now = time.time()
        total = 0
        per_job: dict[str, int] = {}
        cpu: dict[str, dict[int, float]] = {}
        for process in processes:
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    command = self.commands.get(process.pid) or " ".join(process.cmdline())
                    times = process.cpu_times()
            except psutil.Error:
                continue
            self.commands[process.pid] = command
            total += rss
            match = SCRIPT_PATTERN.search(command)
            if match:
                per_job[match.group(1)] = per_job.get(match.group(1), 0) + rss
                cpu.setdefault(match.group(1), {})[process.pid] = times.user + times.system
        self.samples += 1
        self.tree_peak_mb = max(self.tree_peak_mb, total / MB)
        for script, rss in per_job.items():
            job = self.jobs.get(script)
            if job is None:
                job = self.jobs[script] = {"peak_mb": 0.0, "log": self.job_log(script), "first": now, "cpu": {}}
            job["peak_mb"] = max(job["peak_mb"], rss / MB)
            job["cpu"].update(cpu[script])
            job["last"] = now

    def job_log(self, script: str) -> str | None:
        """The job's log path, read from the pickled Snakemake object in its script's preamble."""
        try:
            head = (self.workdir / ".snakemake" / "scripts" / script).read_bytes()[:200_000]
        except OSError:
            return None
        match = LOG_PATTERN.search(head)
        return match.group(0).decode() if match else None


# ---------------------------------------------------------------------------------------------
# Snakemake's log and benchmark files
# ---------------------------------------------------------------------------------------------

@dataclass
class Job:
    jobid: int
    rule: str
    start: dt.datetime | None = None
    finish: dt.datetime | None = None
    wildcards: str = ""
    log: str | None = None
    benchmark: str | None = None
    bench_s: float | None = None
    bench_max_rss_mb: float | None = None
    sampled_peak_mb: float | None = None
    sampled_cpu_s: float | None = None
    failed: bool = False

    @property
    def name(self) -> str:
        return f"{self.rule}[{self.wildcards}]" if self.wildcards else self.rule

    @property
    def log_s(self) -> float | None:
        if self.start is None or self.finish is None:
            return None
        return (self.finish - self.start).total_seconds()

    @property
    def seconds(self) -> float | None:
        """Benchmark-file seconds where there are some (finer), else the log's."""
        return self.bench_s if self.bench_s is not None else self.log_s

    @property
    def peak_mb(self) -> float | None:
        values = [v for v in (self.bench_max_rss_mb, self.sampled_peak_mb) if v is not None]
        return max(values) if values else None


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE_LINE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
ATTRIBUTE = re.compile(r"^\s+(jobid|wildcards|log|benchmark): (.*)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")
ERROR = re.compile(r"^Error in rule (\S+):")
STARTED = re.compile(r"^\s*Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def parse_snakemake_log(path: Path) -> tuple[dict[int, Job], dt.datetime | None]:
    """Jobs with start (scheduled) and finish times; the run's start time."""
    jobs: dict[int, Job] = {}
    stamp = None
    run_start = None
    pending: Job | None = None
    in_error = False
    for line in path.read_text(errors="replace").splitlines():
        if run_start is None and (match := STARTED.match(line)):
            run_start = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            continue
        if match := STAMP.match(line):
            stamp = dt.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            continue
        if match := RULE_LINE.match(line):
            pending = Job(jobid=-1, rule=match.group(1), start=stamp)
            in_error = False
            continue
        if match := ERROR.match(line):
            in_error = True
            pending = None
            continue
        if match := ATTRIBUTE.match(line):
            key, value = match.groups()
            if in_error:
                if key == "jobid" and int(value) in jobs:
                    jobs[int(value)].failed = True
                continue
            if pending is None:
                continue
            if key == "jobid":
                pending.jobid = int(value)
                jobs[pending.jobid] = pending
            else:
                setattr(pending, key, value.strip())
            continue
        if match := FINISHED.match(line):
            job = jobs.get(int(match.group(1)))
            if job is not None:
                job.finish = stamp
            pending = None
            continue
        if line and not line.startswith((" ", "\t")):
            pending = None
    return jobs, run_start


def read_benchmark(path: Path) -> tuple[float, float | None]:
    """Seconds and max_rss (MB) of a Snakemake benchmark file (the mean over repeats)."""
    lines = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    seconds = [float(row[header.index("s")]) for row in rows]
    rss = []
    if "max_rss" in header:
        for row in rows:
            try:
                rss.append(float(row[header.index("max_rss")]))
            except ValueError:  # "-" when the job was too short to measure
                pass
    return sum(seconds) / len(seconds), (max(rss) if rss else None)


def rules_in_workflow(workdir: Path) -> dict[str, bool]:
    """Every rule of the copied workflow and whether it declares `benchmark:`."""
    rules: dict[str, bool] = {}
    files = [workdir / "Snakefile", *sorted((workdir / "workflow" / "rules").glob("*.smk"))]
    for path in files:
        current = None
        for line in path.read_text().splitlines():
            if match := re.match(r"^(?:rule|checkpoint) (\w+):", line):
                current = match.group(1)
                rules[current] = False
            elif current and re.match(r"^\s+benchmark:", line):
                rules[current] = True
            elif line and not line[0].isspace() and not line.startswith("#"):
                current = None
    return rules


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    label: str
    workdir: str
    command: str
    returncode: int
    wall_s: float
    startup_s: float | None
    jobs: list[Job]
    rules_without_benchmark: list[str]
    tree_peak_mb: float
    samples: int
    inputs: dict = field(default_factory=dict)
    processed_mb: dict = field(default_factory=dict)
    simulation: dict | None = None
    report_wall_s: float | None = None
    output_tail: str = ""
    load: dict = field(default_factory=dict)


def run_pipeline(label: str, workdir: Path, env: dict, extra: list[str], interval: float,
                 cores: int, with_report: bool) -> RunResult:
    command = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default",
               "--cores", str(cores), *extra]
    output_path = workdir / "bench_pipeline.snakemake.out"
    print(f"[{label}] running in {workdir}: snakemake {shlex.join(command[3:])}", file=sys.stderr, flush=True)
    launched = dt.datetime.now()
    load_before = os.getloadavg()[0]
    cpu_before = psutil.cpu_times()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with output_path.open("wb") as output:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT)
        sampler = MemorySampler(process.pid, workdir, interval)
        sampler.start()
        returncode = process.wait()
        wall = time.perf_counter() - started
        sampler.stop()
    # CPU seconds of this run (every process under Snakemake, once waited for) and of the machine.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    run_cpu = (children.ru_utime - children_before.ru_utime) + (children.ru_stime - children_before.ru_stime)
    cpu_after = psutil.cpu_times()
    busy = lambda t: t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    machine_cpu = busy(cpu_after) - busy(cpu_before)
    load = {"load_1min_before": load_before, "load_1min_after": os.getloadavg()[0], "run_cpu_s": run_cpu,
            "other_cpu_s": max(machine_cpu - run_cpu, 0.0), "cpus": os.cpu_count()}
    report_wall = None
    if with_report and returncode == 0:
        started = time.perf_counter()
        subprocess.run([*command, "--report", "results/report.zip"], cwd=workdir, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        report_wall = time.perf_counter() - started

    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    jobs: dict[int, Job] = {}
    run_start = None
    if logs:
        jobs, run_start = parse_snakemake_log(logs[0])
    jobs.pop(next((i for i, j in jobs.items() if j.rule == "all"), None), None)

    # Benchmark files, matched to their job by path (the log names each job's benchmark file).
    by_benchmark = {job.benchmark: job for job in jobs.values() if job.benchmark}
    for path in sorted((workdir / "benchmarks" / "rules").rglob("*.tsv")):
        relative = str(path.relative_to(workdir))
        job = by_benchmark.get(relative)
        if job is None:
            rule = path.relative_to(workdir / "benchmarks" / "rules").parts[0].removesuffix(".tsv")
            job = Job(jobid=-1 - len(jobs), rule=rule, wildcards=path.stem, benchmark=relative)
            jobs[job.jobid] = job
        job.bench_s, job.bench_max_rss_mb = read_benchmark(path)

    by_log = {job.log: job for job in jobs.values() if job.log}
    for script, sampled in sampler.jobs.items():
        job = by_log.get(sampled["log"] or "")
        if job is None:  # no log path found: keep the figure under the script's name
            rule = script.split(".", 1)[1].removesuffix(".py") if "." in script else script
            job = Job(jobid=-1 - len(jobs), rule=f"{rule} (script, unmatched)")
            jobs[job.jobid] = job
        job.sampled_peak_mb = max(job.sampled_peak_mb or 0.0, sampled["peak_mb"])
        job.sampled_cpu_s = (job.sampled_cpu_s or 0.0) + sum(sampled["cpu"].values())

    startup = None
    starts = [job.start for job in jobs.values() if job.start is not None]
    if starts:
        startup = max((min(starts) - launched.replace(microsecond=0)).total_seconds(), 0.0)
    declared = rules_in_workflow(workdir)
    ran = {job.rule for job in jobs.values()}
    without = sorted(rule for rule, has in declared.items() if not has and rule in ran)

    raw = workdir / "data" / "raw"
    inputs = {path.name: count_rows(path) for path in sorted(raw.glob("*.csv"))}
    processed = {
        path.name: round(path.stat().st_size / MB, 1)
        for path in sorted((workdir / "data" / "processed").glob("*")) if path.is_file()
    }
    tail = output_path.read_text(errors="replace")[-4000:] if returncode != 0 else ""
    return RunResult(label, str(workdir), shlex.join(["snakemake", *command[3:]]), returncode, wall, startup,
                     sorted(jobs.values(), key=lambda j: -(j.seconds or 0.0)), without,
                     sampler.tree_peak_mb, sampler.samples, inputs, processed, report_wall_s=report_wall,
                     output_tail=tail, load=load)


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

def fmt(value, spec=".1f", missing="-") -> str:
    return missing if value is None else format(value, spec)


def per_rule(jobs: list[Job]) -> list[dict]:
    rules: dict[str, dict] = {}
    for job in jobs:
        entry = rules.setdefault(job.rule, {"rule": job.rule, "jobs": 0, "total_s": 0.0, "max_s": 0.0,
                                            "cpu_s": 0.0, "max_mb": None, "failed": 0})
        entry["jobs"] += 1
        entry["cpu_s"] += job.sampled_cpu_s or 0.0
        entry["total_s"] += job.seconds or 0.0
        entry["max_s"] = max(entry["max_s"], job.seconds or 0.0)
        if job.peak_mb is not None:
            entry["max_mb"] = max(entry["max_mb"] or 0.0, job.peak_mb)
        entry["failed"] += job.failed
    return sorted(rules.values(), key=lambda e: -e["total_s"])


def report(result: RunResult, top: int) -> str:
    lines = [f"== {result.label} ==", f"command: {result.command}  (in {result.workdir})"]
    if result.simulation:
        sim = result.simulation
        lines.append(f"simulation (not counted): {sim['seconds']:.1f} s, peak {sim['peak_mb']:,.0f} MB"
                     f"  [{sim['command']}]")
    lines.append("input rows: " + ", ".join(f"{name} {rows:,}" for name, rows in result.inputs.items()))
    if result.processed_mb:
        lines.append("data/processed (MB): " + ", ".join(f"{k} {v:,.1f}" for k, v in result.processed_mb.items()))
    status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    jobs = result.jobs
    finished = [job for job in jobs if job.finish is not None or job.bench_s is not None]
    serial = sum(job.seconds or 0.0 for job in jobs)
    lines.append(f"pipeline wall time: {result.wall_s:.1f} s  [{status}]; {len(finished)} jobs finished;"
                 f" start-up before the first job {fmt(result.startup_s, '.0f')} s;"
                 f" sum of job times {serial:.0f} s, of job CPU {sum(j.sampled_cpu_s or 0.0 for j in jobs):.0f} s")
    if result.load:
        load = result.load
        lines.append(f"CPU: this run {load['run_cpu_s']:.0f} s, other processes {load['other_cpu_s']:.0f} s"
                     f" ({load['other_cpu_s'] / (result.wall_s * load['cpus']):.0%} of {load['cpus']} CPUs);"
                     f" load average {load['load_1min_before']:.1f} before, {load['load_1min_after']:.1f} after")
    if result.report_wall_s is not None:
        lines.append(f"--report results/report.zip: {result.report_wall_s:.1f} s")
    job_peak = max((job.peak_mb for job in jobs if job.peak_mb is not None), default=None)
    peak_job = next((job for job in jobs if job.peak_mb == job_peak), None)
    lines.append(f"peak memory of one job: {fmt(job_peak, ',.0f')} MB ({peak_job.name if peak_job else '-'});"
                 f" of all processes at once (sampled): {result.tree_peak_mb:,.0f} MB")
    lines.append("")
    shown = jobs if top <= 0 else jobs[:top]
    width = max([len(job.name) for job in shown] + [20])
    lines.append(f"jobs by cost ({len(shown)} of {len(jobs)}; log s = started to finished in Snakemake's log,"
                 " 1-s resolution; bench = the job's benchmark file; cpu s and sampled MB = this script's"
                 " polling, a lower bound)")
    lines.append(f"{'job':<{width}} {'log s':>6} {'bench s':>8} {'cpu s':>6} {'bench MB':>9} {'sampled MB':>11}")
    for job in shown:
        flag = "  FAILED" if job.failed else ""
        lines.append(f"{job.name:<{width}} {fmt(job.log_s, '.0f'):>6} {fmt(job.bench_s):>8} {fmt(job.sampled_cpu_s):>6}"
                     f" {fmt(job.bench_max_rss_mb, ',.0f'):>9} {fmt(job.sampled_peak_mb, ',.0f'):>11}{flag}")
    lines.append("")
    lines.append("per rule (seconds: benchmark file where there is one, else the log)")
    rules = per_rule(jobs)
    width = max([len(entry["rule"]) for entry in rules] + [10])
    lines.append(f"{'rule':<{width}} {'jobs':>5} {'total s':>8} {'max s':>7} {'cpu s':>7} {'max MB':>8} {'share':>6}")
    for entry in rules:
        share = entry["total_s"] / serial if serial else 0.0
        failed = f"  ({entry['failed']} failed)" if entry["failed"] else ""
        lines.append(f"{entry['rule']:<{width}} {entry['jobs']:>5} {entry['total_s']:>8.1f} {entry['max_s']:>7.1f}"
                     f" {entry['cpu_s']:>7.1f} {fmt(entry['max_mb'], ',.0f'):>8} {share:>6.0%}{failed}")
    lines.append("")
    lines.append("rules without benchmark: " + (", ".join(result.rules_without_benchmark) or "none"))
    if result.output_tail:
        lines += ["", "last lines of Snakemake's output:", result.output_tail]
    return "\n".join(lines)


def goals(results: dict[str, RunResult]) -> list[str]:
    lines = []
    demo = results.get("demo")
    if demo:
        met = demo.returncode == 0 and demo.wall_s <= GOAL_DEMO_WALL_S
        lines.append(f"goal demo <= {GOAL_DEMO_WALL_S} s wall: {demo.wall_s:.1f} s -> {'met' if met else 'NOT met'}")
    sim = results.get("simulated")
    if sim:
        job_peak = max((job.peak_mb for job in sim.jobs if job.peak_mb is not None), default=0.0)
        clients = sim.simulation.get("clients") if sim.simulation else None
        met = sim.returncode == 0 and sim.wall_s <= GOAL_SIM_WALL_S and job_peak <= GOAL_JOB_MB
        scale = "" if clients == GOAL_SIM_CLIENTS else f" (goal is set for {GOAL_SIM_CLIENTS:,} clients; this run had {clients:,})"
        lines.append(f"goal {GOAL_SIM_CLIENTS:,} clients <= {GOAL_SIM_WALL_S} s wall and <= {GOAL_JOB_MB} MB per job:"
                     f" {sim.wall_s:.1f} s, {job_peak:,.0f} MB -> {'met' if met else 'NOT met'}{scale}")
    return lines


def as_json(results: dict[str, RunResult], machine: dict) -> dict:
    out = {"machine": machine, "runs": {}}
    for label, result in results.items():
        data = asdict(result)
        data["jobs"] = [
            {"jobid": job.jobid, "rule": job.rule, "wildcards": job.wildcards, "name": job.name,
             "log_s": job.log_s, "bench_s": job.bench_s, "bench_max_rss_mb": job.bench_max_rss_mb,
             "sampled_peak_mb": job.sampled_peak_mb, "sampled_cpu_s": job.sampled_cpu_s, "seconds": job.seconds, "peak_mb": job.peak_mb,
             "failed": job.failed}
            for job in result.jobs
        ]
        data["rules"] = per_rule(result.jobs)
        data["peak_job_mb"] = max((job.peak_mb for job in result.jobs if job.peak_mb is not None), default=None)
        out["runs"][label] = data
    return out


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--therapists", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--demo-only", action="store_true", help="only the shipped demo data and config")
    which.add_argument("--skip-demo", action="store_true", help="only the simulated data")
    parser.add_argument("--models", nargs="+", metavar="MODEL",
                        help="simulated run only: models.run for this run (e.g. M0 M1 M2 M3 M4 R2 R3)")
    parser.add_argument("--configfile", type=Path,
                        help="simulated run only: a YAML file merged over config/config.yaml")
    parser.add_argument("--snakemake-args", default="",
                        help="more arguments for both Snakemake runs, as one string")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path,
                        help="make the scratch copies under this folder (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--project", type=Path, default=ROOT,
                        help="the checkout to copy (default: this one); its src/ goes first on PYTHONPATH")
    parser.add_argument("--interval", type=float, default=0.2, help="memory sampling interval, seconds")
    parser.add_argument("--top", type=int, default=25, help="jobs to list (0: all)")
    parser.add_argument("--with-report", action="store_true",
                        help="also time `--report results/report.zip` (not counted in the wall time)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    project = args.project.resolve()
    env = dict(os.environ)
    if (project / "src" / "analysis").is_dir() and project != ROOT:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project / "src"), env.get("PYTHONPATH")]))
    extra = shlex.split(args.snakemake_args)

    base = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    base.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    machine = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
        "cpus": os.cpu_count(), "cores_used": args.cores,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(), "project": str(project),
    }
    print(f"{machine['date']}  {machine['cpus']} CPUs, {machine['memory_gb']} GB, Python {machine['python']},"
          f" project {project}; --cores {args.cores}")
    results: dict[str, RunResult] = {}
    try:
        if not args.skip_demo:
            workdir = base / "demo"
            make_copy(project, workdir)
            created.append(workdir)
            copy_demo_data(project, workdir)
            result = run_pipeline("demo", workdir, env, extra, args.interval, args.cores, args.with_report)
            result.label = "demo data (data/raw as shipped, config/config.yaml)"
            results["demo"] = result
            print(report(result, args.top), flush=True)
            print(flush=True)
        if not args.demo_only:
            workdir = base / f"simulated-{args.clients}"
            make_copy(project, workdir)
            created.append(workdir)
            sim_env = dict(env)
            sim_env.setdefault(KEY_VARIABLE, BENCH_KEY)
            print(f"[simulated] simulating {args.clients:,} clients / {args.therapists:,} therapists"
                  f" (seed {args.seed})", file=sys.stderr, flush=True)
            simulation = simulate(workdir, args.clients, args.therapists, args.seed, sim_env)
            simulation.update(clients=args.clients, therapists=args.therapists, seed=args.seed)
            sim_extra = list(extra)
            overrides = []
            if args.configfile:
                target = workdir / "config" / f"bench_override_{args.configfile.name}"
                shutil.copy2(args.configfile, target)
                overrides.append(str(target.relative_to(workdir)))
            if args.models:
                target = workdir / "config" / "bench_models.yaml"
                target.write_text("# written by benchmarks/bench_pipeline.py --models\nmodels:\n  run: ["
                                  + ", ".join(args.models) + "]\n")
                overrides.append(str(target.relative_to(workdir)))
            if overrides:
                sim_extra += ["--configfile", "config/config.yaml", *overrides]
            result = run_pipeline("simulated", workdir, sim_env, sim_extra, args.interval, args.cores,
                                  args.with_report)
            result.label = (f"{args.clients:,} clients, {args.therapists:,} therapists (seed {args.seed})"
                            + (f", models {' '.join(args.models)}" if args.models else ""))
            result.simulation = simulation
            results["simulated"] = result
            print(report(result, args.top), flush=True)
            print(flush=True)
    finally:
        if args.keep:
            for path in created:
                print(f"kept {path}", file=sys.stderr)
        else:
            for path in created:
                shutil.rmtree(path, ignore_errors=True)
            if not args.workdir:
                shutil.rmtree(base, ignore_errors=True)

    for line in goals(results):
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(as_json(results, machine), indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(result.returncode == 0 for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
