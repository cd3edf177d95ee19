"""The pipeline on a real SLURM cluster, through workflow/profiles/slurm.

The cluster tests run the whole pipeline once (without the multiverse and the manuscript, tested
in their own modules), on the same simulated data as the session's local run (``pipeline_run``),
on a cluster whose node is this machine (``workflow/cluster/local-slurm.sh start`` makes one; CI
does). While it runs, the scheduler kills one model fit (``scancel``); the
profile's ``retries`` must resubmit it, and the run must end with the same result tables, byte
for byte, as the local run, and with nothing left for Snakemake to redo. Where no such cluster
answers, they are skipped with the reason.

The profile tests only parse the workflow with the profile (lint, dry run): they need the
``[slurm]`` extra, not a cluster.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import (LEFT_OUT_TABLES, ProjectCopy, checksums, make_project_copy, project_env,
                      run_snakemake)

PROFILE = "workflow/profiles/slurm"
# A run that takes longer than this is stuck (about 3 minutes on 2 idle cores; 27 on a machine
# loaded 10 times over).
RUN_TIMEOUT = 2700
# The rule whose first running job the scheduler kills.
# The fitting rules are made from the plan (fit_model_<outcome>_<model>): any one of them.
KILLED_RULE = "fit_model_"
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
# The user's own settings would point the test run elsewhere: the local cluster has no accounts,
# and its one partition is the default.
USER_SETTINGS = ("SLURM_ACCOUNT", "SBATCH_ACCOUNT", "SLURM_PARTITION", "SBATCH_PARTITION")
PLUGIN_MISSING = 'the SLURM executor plugin is not installed (pip install -e ".[slurm]")'


def plugin_installed() -> bool:
    return importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def slurm_unavailable() -> str | None:
    """Why the cluster tests cannot run here, or None when they can."""
    if not plugin_installed():
        return PLUGIN_MISSING
    missing = [tool for tool in ("sbatch", "squeue", "scancel", "sinfo") if shutil.which(tool) is None]
    if missing:
        return f"SLURM's commands are missing ({', '.join(missing)}): apt-get install slurm-wlm munge"
    try:
        nodes = subprocess.run(["sinfo", "--noheader", "--format=%N|%t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s (start a cluster here: sudo workflow/cluster/local-slurm.sh start)"
    if nodes.returncode != 0 or not nodes.stdout.strip():
        last_line = (nodes.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no SLURM cluster answers (start one here: sudo workflow/cluster/local-slurm.sh start): {last_line}"
    host = socket.gethostname().split(".")[0]
    rows = [line.split("|") for line in nodes.stdout.split()]
    if any(name != host for name, _ in rows):
        # The project copy lives in pytest's temporary folder, which other nodes do not see.
        names = ", ".join(sorted({name for name, _ in rows}))
        return f"the cluster's nodes ({names}) are not this machine ({host})"
    if not any(state in ("idle", "mix", "alloc", "comp") for _, state in rows):
        return f"the cluster's node does not accept jobs (state {rows[0][1]})"
    return None


def cluster_env(**variables: str) -> dict[str, str]:
    env = project_env()
    for variable in USER_SETTINGS:
        env.pop(variable, None)
    env.update(variables)
    return env


def squeue(*args: str) -> list[list[str]]:
    result = subprocess.run(["squeue", "--noheader", *args], capture_output=True, text=True, timeout=60)
    return [line.split("|") for line in result.stdout.splitlines() if line.strip()]


def final_state(job_id: str) -> str:
    """The job's state once it has left RUNNING and COMPLETING (waits up to 30 s)."""
    state = ""
    for _ in range(60):
        rows = squeue("--jobs", job_id, "--states=all", "--format=%T")
        state = rows[0][0] if rows else ""
        if state not in ("RUNNING", "COMPLETING"):
            break
        time.sleep(0.5)
    return state


def kill_first_running_job(project: Path, log_path: Path, stop: threading.Event, found: dict) -> None:
    """Cancel, through the scheduler, the run's first KILLED_RULE job once its script runs."""
    tried = set()
    while not stop.is_set():
        run_id = re.search(r"SLURM run ID: (\S+)", log_path.read_text(errors="replace"))
        if run_id:
            found["run_id"] = run_id.group(1)
            for job_id, comment in squeue("--name", found["run_id"], "--states=RUNNING", "--format=%i|%k"):
                if job_id in tried or not comment.startswith(f"rule_{KILLED_RULE}"):
                    continue
                # The job's own log says when Snakemake inside it has started the rule's script.
                logs = (project / ".snakemake" / "slurm_logs").glob(f"rule_{KILLED_RULE}*/**/{job_id}.log")
                if not any("Shell command" in path.read_text(errors="replace") for path in logs):
                    continue
                tried.add(job_id)
                subprocess.run(["scancel", "--state=RUNNING", job_id], capture_output=True, timeout=60)
                if final_state(job_id) == "CANCELLED":  # (not when it finished before the signal)
                    found["killed"] = job_id
                    return
        stop.wait(0.2)


@dataclass
class ClusterRun:
    project: ProjectCopy
    returncode: int
    log: str
    seconds: float
    run_id: str | None
    submitted: dict[str, str]  # SLURM job id -> Snakemake job id
    killed: str | None  # SLURM job id of the job the scheduler killed
    scheduler_states: dict[str, str] = field(default_factory=dict)  # SLURM job id -> state


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory, request) -> ClusterRun:
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    project = make_project_copy(tmp_path_factory.mktemp("slurm") / "project")
    # What is tested is the cluster: submission, a killed job's retry, local rules. The multiverse
    # and the manuscript (tested end to end in their own modules) add a third of the jobs.
    project.switch_off()
    command = [
        sys.executable, "-m", "snakemake", "--profile", PROFILE,
        # One machine: files appear at once, and job states can be asked for often.
        "--latency-wait", "5", "--slurm-init-seconds-before-status-checks", "2",
    ]
    log_path = project.root / "slurm-run.log"
    found: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=kill_first_running_job, args=(project.root, log_path, stop, found), daemon=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=project.root, env=cluster_env(), stdout=log, stderr=subprocess.STDOUT)
        killer.start()
        try:
            # The local run on the same data (shared with other tests) goes on meanwhile.
            request.getfixturevalue("pipeline_run")
            returncode = process.wait(timeout=max(60, RUN_TIMEOUT - (time.monotonic() - start)))
        except BaseException:
            process.send_signal(signal.SIGINT)  # Snakemake cancels its SLURM jobs on the way out
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            stop.set()
            killer.join(timeout=60)
            seconds = time.monotonic() - start
            states = {}
            if found.get("run_id"):
                rows = squeue("--name", found["run_id"], "--states=all", "--format=%i|%T")
                states = {job_id: state for job_id, state in rows}
                subprocess.run(["scancel", "--name", found["run_id"]], capture_output=True, timeout=60)
    text = log_path.read_text(errors="replace")
    submitted = {slurm_id: job_id for job_id, slurm_id in SUBMITTED.findall(text)}
    return ClusterRun(project, returncode, text, seconds, found.get("run_id"), submitted, found.get("killed"), states)


@pytest.mark.slurm
@pytest.mark.slow
def test_pipeline_completes_on_slurm(cluster_run):
    assert cluster_run.returncode == 0, f"snakemake on SLURM failed:\n{cluster_run.log[-6000:]}"


@pytest.mark.slurm
@pytest.mark.slow
def test_jobs_went_through_sbatch(cluster_run):
    assert cluster_run.run_id, f"no SLURM run ID in Snakemake's log:\n{cluster_run.log[-4000:]}"
    assert cluster_run.submitted, f"no job was submitted with sbatch:\n{cluster_run.log[-4000:]}"
    submitted_rules = set(re.findall(r"\nrule (\w+):", cluster_run.log))
    local_rules = set(re.findall(r"\nlocalrule (\w+):", cluster_run.log)) - {"all"}
    assert {"ingest", "derive"} <= submitted_rules
    assert {name for name in submitted_rules if name.startswith(KILLED_RULE)}, "no fit was submitted"
    assert not submitted_rules & local_rules, "a rule ran both as a job and locally"
    # Figures and combining steps run on the submit host (workflow/rules/cluster.smk).
    assert {name for name in local_rules if name.startswith("figure_")}, "no figure ran on the submit host"
    assert not {name for name in submitted_rules if name.startswith(("figure_", "combine_"))}
    # The scheduler knows every job Snakemake submitted (finished jobs stay listed for MinJobAge),
    # and all of them completed, except the one it was told to kill.
    unknown = set(cluster_run.submitted) - set(cluster_run.scheduler_states)
    assert not unknown, f"SLURM does not know the jobs {sorted(unknown, key=int)}"
    not_completed = {job: state for job, state in cluster_run.scheduler_states.items()
                     if state != "COMPLETED" and job != cluster_run.killed}
    assert not not_completed, f"jobs that did not complete: {not_completed}"


@pytest.mark.slurm
@pytest.mark.slow
def test_killed_job_was_resubmitted(cluster_run):
    assert cluster_run.killed, f"no running {KILLED_RULE} job could be cancelled:\n{cluster_run.log[-4000:]}"
    assert cluster_run.scheduler_states.get(cluster_run.killed) == "CANCELLED"
    assert f"SLURM-job '{cluster_run.killed}' failed, SLURM status is: 'CANCELLED'" in cluster_run.log
    snakemake_job = cluster_run.submitted[cluster_run.killed]
    again = [slurm_id for slurm_id, job in cluster_run.submitted.items()
             if job == snakemake_job and int(slurm_id) > int(cluster_run.killed)]
    assert again, f"Snakemake job {snakemake_job} was not submitted again after SLURM job {cluster_run.killed} was cancelled"
    assert [cluster_run.scheduler_states.get(job) for job in again] == ["COMPLETED"] * len(again)


@pytest.mark.slurm
@pytest.mark.slow
def test_tables_identical_to_local_run(cluster_run, pipeline_run):
    assert cluster_run.returncode == 0, "the SLURM run failed (see test_pipeline_completes_on_slurm)"
    local = sorted((pipeline_run.root / "results" / "tables").glob("*.csv"))
    cluster = sorted((cluster_run.project.root / "results" / "tables").glob("*.csv"))
    assert local, "the local run wrote no tables"
    assert [path.name for path in cluster] == [path.name for path in local
                                               if path.name not in LEFT_OUT_TABLES]
    by_name = {path.name: path for path in local}
    differing = [path.name for path in cluster if path.read_bytes() != by_name[path.name].read_bytes()]
    assert not differing, f"tables that differ between the SLURM and the local run: {differing}"


@pytest.mark.slurm
@pytest.mark.slow
def test_nothing_left_to_redo(cluster_run):
    """No output is missing, incomplete or stale after the kill: a local dry run finds nothing to do."""
    assert cluster_run.returncode == 0, "the SLURM run failed (see test_pipeline_completes_on_slurm)"
    result = run_snakemake(cluster_run.project.root, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-4000:]


@pytest.mark.slurm
@pytest.mark.slow
def test_raw_data_untouched(cluster_run):
    assert checksums(cluster_run.project.root / "data" / "raw") == cluster_run.project.raw_checksums


@pytest.fixture(scope="module")
def profile_project(tmp_path_factory) -> ProjectCopy:
    """A small project copy in which the workflow is parsed with the profile (nothing runs)."""
    if not plugin_installed():
        pytest.skip(PLUGIN_MISSING)
    return make_project_copy(tmp_path_factory.mktemp("slurm-profile") / "project", n_clients=40, n_therapists=4)


def parse_with(project: ProjectCopy, *args: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=project.root, env=cluster_env(**variables),
                          capture_output=True, text=True, timeout=600)


def lint_findings(result: subprocess.CompletedProcess) -> list[str]:
    output = result.stdout + result.stderr
    return sorted(line.strip() for line in output.splitlines() if line.strip().startswith("* "))


@pytest.mark.slurm
def test_profile_adds_no_lint_findings(profile_project):
    """`snakemake --lint` reads the profile, and finds nothing there that it does not find without it."""
    with_profile = parse_with(profile_project, "--profile", PROFILE, "--lint")
    without = parse_with(profile_project, "--lint")
    assert "Lints for" in with_profile.stdout + with_profile.stderr or with_profile.returncode == 0, with_profile.stderr[-3000:]
    assert lint_findings(with_profile) == lint_findings(without)


@pytest.fixture(scope="module")
def dry_run(profile_project) -> subprocess.CompletedProcess:
    """A dry run with the profile and none of the user's account or partition settings."""
    result = parse_with(profile_project, "--profile", PROFILE, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slurm
def test_profile_takes_account_and_partition_from_the_environment(profile_project, dry_run):
    resources = re.findall(r"resources: (.*)", dry_run.stdout)
    assert resources and not any("slurm_account" in line or "slurm_partition" in line for line in resources)

    chosen = parse_with(profile_project, "--profile", PROFILE, "--dry-run", SLURM_PARTITION="short", SBATCH_ACCOUNT="study42")
    assert chosen.returncode == 0, chosen.stderr[-3000:]
    resources = re.findall(r"resources: (.*)", chosen.stdout)
    assert resources and all("slurm_partition=short" in line and "slurm_account=study42" in line for line in resources)


@pytest.mark.slurm
def test_profile_settings_reach_the_rules(profile_project, dry_run):
    """Per-rule settings name rules that exist: Snakemake ignores unknown names without a word."""
    import yte

    with open(profile_project.root / PROFILE / "config.yaml") as stream:
        profile = yte.process_yaml(stream, require_use_yte=True)
    rules = set(re.findall(r"^(?:local)?rule (\w+):", dry_run.stdout, flags=re.MULTILINE))
    # the same profile runs the parameter-recovery workflow (make validate)
    validation = parse_with(profile_project, "--snakefile", "workflow/validation/Snakefile", "--list-rules")
    assert validation.returncode == 0, validation.stderr[-3000:]
    rules |= set(validation.stdout.split())
    # and the rules outside the default run (the power analysis: `snakemake power`)
    listed = parse_with(profile_project, "--profile", PROFILE, "--list-rules")
    assert listed.returncode == 0, listed.stderr[-3000:]
    rules |= set(listed.stdout.split())
    assert set(profile["set-resources"]) <= rules, f"not rules of the workflow: {set(profile['set-resources']) - rules}"
    # the fitting rules are made from the plan (fit_model_<outcome>_<model>): the default applies
    fits = re.findall(r"rule fit_model_\w+:\n(?:    .*\n)*?    resources: (.*)", dry_run.stdout)
    assert fits and all(re.search(r"\bmem_mb=2000\b", line) and re.search(r"\bruntime=60\b", line) for line in fits)
