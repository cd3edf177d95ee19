"""Shared fixtures: a temporary copy of the project with simulated exports, and pipeline runs on it.

``pipeline_run`` (session scope) runs the whole Snakemake pipeline once, as a subprocess, on a
small simulated dataset carrying identifying columns, with ``data/raw`` read-only; other tests
(end-to-end checks, the leak test, the notebooks) read its outputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
E2E_CLIENTS, E2E_THERAPISTS, E2E_SEED = 160, 16, 7
TEST_KEY = "end-to-end-test-key"
# What the end-to-end runs that test something else leave out (ProjectCopy.switch_off): both
# have their own end-to-end tests. The tables that such a run does not write:
LEFT_OUT = ("multiverse", "manuscript")
LEFT_OUT_TABLES = frozenset({"multiverse.csv", "multiverse_summary.csv"})


@dataclass
class ProjectCopy:
    root: Path
    raw_checksums: dict[str, str]

    def snakemake(self, *args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
        return run_snakemake(self.root, *args, check=check, **popen)

    def switch_off(self, *analyses: str) -> None:
        """Set ``<analysis>.run: false`` in the copy's config (default: :data:`LEFT_OUT`).

        For the end-to-end runs that test something else (a stop and resume, a rerun, the
        cluster): the multiverse and the manuscript have their own end-to-end tests, and leaving
        them out saves each such run about a third of its jobs."""
        import yaml

        path = self.root / "config" / "config.yaml"
        config = yaml.safe_load(path.read_text())
        for analysis in analyses or LEFT_OUT:
            config[analysis] = {**(config.get(analysis) or {}), "run": False}
        path.write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/default", "--cores", "2", *args]


def project_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ALLIANCE_PSEUDONYM_KEY"] = TEST_KEY
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_snakemake(root: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        snakemake_command(*args), cwd=root, env=project_env(), capture_output=True, text=True, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def make_project_copy(destination: Path, n_clients=E2E_CLIENTS, n_therapists=E2E_THERAPISTS, seed=E2E_SEED) -> ProjectCopy:
    """Copy the workflow and config; simulate exports into a read-only data/raw."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "Snakefile", destination / "Snakefile")
    for folder in ("workflow", "config", "notebooks"):
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, destination / folder, ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    raw = destination / "data" / "raw"
    raw.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "analysis.simulate", "--clients", str(n_clients), "--therapists",
         str(n_therapists), "--seed", str(seed), "--out", str(raw)],
        check=True, capture_output=True, text=True,
    )
    for path in [raw, *raw.iterdir()]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return ProjectCopy(destination, checksums(raw))


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> ProjectCopy:
    """The whole pipeline, run once from scratch on simulated data, and its Snakemake report."""
    project = make_project_copy(tmp_path_factory.mktemp("pipeline") / "project")
    project.snakemake()
    project.snakemake("--report", "results/report.zip")
    return project


def check_balance(flow) -> list[str]:
    """Where ingest's flow accounting does not balance (an empty list when all of it does).

    Rows per input file, and administrations per input file and instrument: read = kept +
    rejected (kept administrations are split by the route that linked them, rejected ones by rule).
    """
    problems = []
    for unit, keys in (("rows", ["source"]), ("administrations", ["source", "instrument"])):
        part = flow[flow["unit"] == unit]
        for key, group in part.groupby(keys, sort=True, dropna=False):
            read, kept, rejected = (int(group.loc[group["stage"] == stage, "count"].sum())
                                    for stage in ("read", "kept", "rejected"))
            if read != kept + rejected:
                where = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
                problems.append(f"{where}: {unit} read {read} != kept {kept} + rejected {rejected}")
    return problems


def r_package_missing(package: str, debian: str) -> str | None:
    """Why R's ``package`` cannot be used here (None when it can): the skip reason of the tests
    that validate against it. ``debian`` is the package that installs it."""
    if shutil.which("Rscript") is None:
        return f"Rscript is not installed (apt-get install {debian})"
    probe = subprocess.run(
        ["Rscript", "-e", f"suppressPackageStartupMessages(library({package}))"],
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return f"the R package {package} is not installed (apt-get install {debian})"
    return None


# In continuous integration the validation against R and the browser test must run: a skip
# there (R or Chromium missing) is turned into a failure, so a green run always means they ran.
REQUIRED_WHEN = {
    "ALLIANCE_REQUIRE_R": lambda item: item.get_closest_marker("r") is not None,
    "ALLIANCE_REQUIRE_CHROMIUM": lambda item: item.module.__name__.endswith("test_report_browser"),
    "ALLIANCE_REQUIRE_SLURM": lambda item: item.get_closest_marker("slurm") is not None,
    "ALLIANCE_REQUIRE_TEX": lambda item: item.get_closest_marker("tex") is not None,
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and any(os.environ.get(variable) and applies(item) for variable, applies in REQUIRED_WHEN.items()):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"required here but skipped: {reason}"


# The tests run on several processes with ``pytest -n 2 --dist loadfile`` (the README's test
# command): each module stays on one process, so its module-scoped fixtures (the cluster run,
# R reference fits, small pipeline runs) are made once; the session's pipeline run is made once
# per process that needs it. (``--dist loadgroup`` with xdist_group marks did not group at all
# with pytest 9.2 and pytest-xdist 3.8: a module's tests were spread over both processes and each
# built the module's fixtures, the cluster run among them.)
