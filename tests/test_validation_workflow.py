"""The validation workflow (workflow/validation/Snakefile, `make validate`) end to end, tiny.

Two datasets of two scenario versions in batches of one, small studies: four batch jobs and the
combining step, run as docs/cluster.md says (from a copy of the project folder, with the default
profile). Each batch fits the primary dynamic panel model and the conventional M2 to each dataset.
The numbers must be those of an in-process run with the same seeds, and asking for more datasets
must add batches without redoing the finished ones (the jobs' params are stable).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.simulate import recovery
from conftest import ROOT, project_env

SCENARIOS = ("b_same_session_null", "e_measurement_error_effect")
TINY = ["datasets=2", "batch_size=1", "clients=90", "therapists=6", "seed=5", "min_sessions=3",
        "max_sessions=6", f"scenarios=[{','.join(SCENARIOS)}]"]


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", "workflow/validation/Snakefile",
               "--profile", "workflow/profiles/default", "--cores", "2", *args]
    result = subprocess.run(command, cwd=root, env=project_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def validation_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation") / "project"
    root.mkdir()
    for folder in ("workflow", "config"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = run(root, "--config", *TINY)
    return root, result


def test_one_job_per_batch_combined_into_one_table(validation_run):
    root, result = validation_run
    out = root / "results" / "validation"
    batches = sorted(path.relative_to(out).as_posix() for path in out.glob("batches/*/*.csv"))
    assert batches == [f"batches/{scenario}/batch_{n:04d}.csv"
                       for scenario in sorted(SCENARIOS) for n in (0, 1)]
    replicates = recovery.combine_batches([out / "recovery.csv"])
    assert list(replicates.columns) == recovery.REPLICATE_COLUMNS
    assert len(replicates) == 2 * 2 * 2  # scenarios x datasets x estimators
    assert set(replicates["estimator"]) == {"DPM", "M2"}
    # dataset k has seed + k in every scenario
    assert set(replicates.groupby("scenario")["seed"].unique().map(tuple)) == {(5, 6)}
    summary = pd.read_csv(out / "recovery_summary.csv")
    assert set(zip(summary["scenario"], summary["estimator"])) == {
        (s, e) for s in SCENARIOS for e in ("DPM", "M2")}
    text = (out / "recovery_summary.txt").read_text()
    # the summary is printed at the end of the run; two datasets cannot pass the gate, and the
    # failure names the scenario and the criterion
    assert "Recovery study: FAILED" in text and text.strip() in result.stdout
    assert "b_same_session_null / DPM: 2 datasets < 200" in text
    assert "e_measurement_error_effect / DPM" not in text.split("Gate failures:")[1]
    assert (root / "logs" / "validation" / "combine_recovery.log").exists()
    assert (root / "benchmarks" / "validation" / SCENARIOS[0] / "batch_0000.tsv").exists()


def test_the_workflow_gives_the_numbers_of_an_in_process_run(validation_run):
    root, _ = validation_run
    replicates = recovery.combine_batches([root / "results" / "validation" / "recovery.csv"])
    workflow = replicates[replicates["scenario"] == SCENARIOS[0]].reset_index(drop=True)
    direct = recovery.recovery_replicates(2, 90, 6, first_seed=5, scenario=SCENARIOS[0],
                                          min_sessions=3, max_sessions=6)
    direct = direct.sort_values(["seed", "estimator"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(workflow, direct, check_exact=False, rtol=1e-9,
                                  check_dtype=False)


def test_more_datasets_add_batches_and_leave_the_done_ones(validation_run):
    root, _ = validation_run
    three = [arg.replace("datasets=2", "datasets=3") for arg in TINY]
    planned = run(root, "--dry-run", "--config", *three).stdout
    # only the new batch of each scenario runs (then the combining step): the finished batches'
    # params are stable, so nothing else is redone
    assert re.search(r"^recovery_batch\s+2$", planned, re.MULTILINE), planned
    outputs = set(re.findall(r"output: (\S+batch_\d+\.csv)", planned))
    assert outputs == {f"results/validation/batches/{scenario}/batch_0002.csv"
                       for scenario in SCENARIOS}


def test_make_validate_exits_1_when_the_gate_fails(validation_run):
    root, _ = validation_run
    # the second step of `make validate`, after the workflow
    makefile = (ROOT / "Makefile").read_text()
    assert "-m analysis.simulate.recovery --check results/validation/recovery.csv --quiet" in makefile
    command = [sys.executable, "-m", "analysis.simulate.recovery", "--check",
               "results/validation/recovery.csv", "--quiet"]
    result = subprocess.run(command, cwd=root, env=project_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert "Gate failures:" in result.stdout and "Recovery study: FAILED" in result.stdout


def test_a_config_error_names_the_key(tmp_path):
    command = [sys.executable, "-m", "snakemake", "--snakefile",
               str(ROOT / "workflow" / "validation" / "Snakefile"), "--dry-run", "--cores", "1",
               "--config", "scenarios=[b_same_session_null,observed]",
               f"study_config={ROOT / 'config' / 'config.yaml'}"]
    result = subprocess.run(command, cwd=tmp_path, env=project_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    # the old scenarios generated symptoms from M2 itself; they are gone
    assert "config key scenarios" in result.stderr and "observed" in result.stderr
