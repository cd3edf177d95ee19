"""End to end: the whole Snakemake pipeline as a subprocess on small simulated exports.

The session fixture ``pipeline_run`` (tests/conftest.py) runs it once from scratch with
``data/raw`` read-only and identifying columns in the exports; these tests check what a user and a
reviewer rely on: the outputs exist, the primary estimate recovers the simulated truth, no input
file changed, every row is accounted for, no identifier leaked, two runs agree byte for byte, and a
run killed during the models stage resumes to the same results.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import (
    LEFT_OUT_TABLES,
    check_balance,
    checksums,
    make_project_copy,
    project_env,
    run_snakemake,
    snakemake_command,
)

pytestmark = pytest.mark.slow

TABLES = "results/tables"


def test_outputs_exist(pipeline_run):
    root = pipeline_run.root
    for path in [
        "results/tables/models.csv", "results/tables/data_flow.csv", "results/tables/episodes_summary.csv",
        "results/figures/forest_alliance.svg", "results/figures/forest_alliance.png", "results/report.zip",
        "data/processed/rejects.csv",
    ]:
        assert (root / path).stat().st_size > 0, path
    with zipfile.ZipFile(root / "results/report.zip") as report:
        assert any(name.endswith("report.html") for name in report.namelist())


def test_primary_lagged_alliance_ci_contains_truth(pipeline_run):
    """The demo's symptoms follow a lagged model without reverse paths, so the primary dynamic
    panel model and the conventional M2 both target the generating within-client effect."""
    root = pipeline_run.root
    truth = yaml.safe_load((root / "data/raw/truth.yaml").read_text())
    models = pd.read_csv(root / TABLES / "models.csv")
    for model, term in (("DPM", "alliance_lagged"), ("M2", "alliance_within")):
        rows = models[(models["model"] == model) & (models["analysis"] == "primary")
                      & (models["term"] == term)]
        assert set(rows["outcome"]) == {"phq9", "gad7"}
        for row in rows.itertuples():
            true_value = truth["outcomes"][row.outcome]["within"]
            assert row.ci_low <= true_value <= row.ci_high, (model, row.outcome, row.ci_low,
                                                             true_value, row.ci_high)
    primary = models[models["primary_test"].astype(str) == "True"]
    assert set(zip(primary["model"], primary["term"])) == {("DPM", "alliance_lagged")}


def test_reviewer_report_states_the_published_numbers(pipeline_run):
    """The plain-language answer quotes models.csv: estimates, CIs and Holm-adjusted p."""
    import html as html_module

    from analysis.report.formatting import format_ci, format_number, format_p_clause

    root = pipeline_run.root
    page = html_module.unescape((root / "results/report/index.html").read_text(encoding="utf-8"))
    models = pd.read_csv(root / TABLES / "models.csv")
    primary = models[(models["model"] == "DPM") & (models["analysis"] == "primary") & (models["term"] == "alliance_lagged")]
    assert len(primary) == 2
    for row in primary.itertuples():
        quoted = (f"b = {format_number(row.estimate)}, 95% CI {format_ci(row.ci_low, row.ci_high)}, "
                  f"Holm-adjusted {format_p_clause(row.p_holm)}")
        assert quoted in page, quoted
    # small counts of people are suppressed in what reviewers read
    assert ">&lt;10<" in (root / "results/report/index.html").read_text(encoding="utf-8")


def test_raw_data_unchanged(pipeline_run):
    raw = pipeline_run.root / "data" / "raw"
    assert checksums(raw) == pipeline_run.raw_checksums


def test_every_row_is_accounted_for(pipeline_run):
    flow = pd.read_csv(pipeline_run.root / "data/processed/data_flow.csv", keep_default_na=False)
    assert check_balance(flow) == []
    rejects = pd.read_csv(pipeline_run.root / "data/processed/rejects.csv", keep_default_na=False)
    truth = yaml.safe_load((pipeline_run.root / "data/raw/truth.yaml").read_text())
    assert (rejects["rule"] == "exact_duplicate").sum() == (
        truth["invalid_rows"]["sessions_exact_duplicates"] + truth["invalid_rows"]["outcomes_exact_duplicates"]
    )
    assert (rejects["rule"] == "orphan_outcome").sum() == truth["invalid_rows"]["outcomes_orphan_client"]


def _identifier_values(raw: Path) -> tuple[set[str], set[str]]:
    """Whole identifying values, and the single words of client names."""
    sessions = pd.read_csv(raw / "sessions.csv", dtype=str)
    outcomes = pd.read_csv(raw / "outcomes.csv", dtype=str)
    values: set[str] = set()
    for column in ("client_id", "therapist_id", "client_name", "email", "phone", "date_of_birth",
                   "record_number", "notes", "session_date"):
        values |= set(sessions[column].dropna())
    values |= set(outcomes["client_id"].dropna()) | set(outcomes["record_number"].dropna()) | set(outcomes["date"].dropna())
    name_parts = {part for name in sessions["client_name"].dropna() for part in name.split() if len(part) > 3}
    return {value for value in values if len(value) >= 4}, name_parts


DATA_URI = re.compile(r"data:([\w/+.-]+)(?:;[\w=-]+)*;base64,([A-Za-z0-9+/=]+)")


def _expand(text: str):
    """The text without embedded files, and each embedded (base64) text file decoded."""
    yield DATA_URI.sub("", text)
    for match in DATA_URI.finditer(text):
        if not match.group(1).startswith(("image/png", "image/jpeg", "font/")):
            yield base64.b64decode(match.group(2)).decode("utf-8", errors="ignore")


def _searchable_texts(path: Path):
    """Every text a person could read in an output file (PNG pixels cannot be searched)."""
    if path.suffix == ".png":
        return
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        yield " ".join(frame.columns) + "\n" + frame.astype(str).to_csv(index=False)
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith((".png", ".jpg", ".woff", ".woff2", ".ttf")):
                    yield from _expand(archive.read(name).decode("utf-8", errors="ignore"))
    else:
        yield from _expand(path.read_bytes().decode("utf-8", errors="ignore"))


def test_no_identifier_leaks(pipeline_run):
    root = pipeline_run.root
    identifiers, name_parts = _identifier_values(root / "data" / "raw")
    assert len(identifiers) > 100 and len(name_parts) > 20
    searched = [p for folder in ("data/processed", "results", "logs", "benchmarks") if (root / folder).exists()
                for p in (root / folder).rglob("*") if p.is_file()]
    assert len(searched) > 20
    name_pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, name_parts))) + r")\b")
    hits = []
    for path in searched:
        for text in _searchable_texts(path):
            hits += [(str(path.relative_to(root)), value) for value in identifiers if value in text]
            # Single first or last names: searched in our own outputs; the Snakemake report's
            # bundled third-party scripts credit their authors by name.
            if path.suffix != ".zip":
                hits += [(str(path.relative_to(root)), m.group(0)) for m in name_pattern.finditer(text)]
    assert not hits, f"identifiers found in outputs: {[h[0] for h in hits[:20]]}"


def test_user_errors_stop_without_traceback(pipeline_run, tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text("analysis:\n  alliance: wai_sr\n  outcomes: [phq9, gad7]\n  max_lag_gapp: 2\n")
    result = run_snakemake(pipeline_run.root, "-n", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert "max_lag_gapp" in result.stderr and "Did you mean 'max_lag_gap'" in result.stderr
    assert "Traceback" not in result.stderr
    misspelt = tmp_path / "instrument.yaml"
    misspelt.write_text("analysis:\n  alliance: wai_sr\n  outcomes: [phq9, gad-7]\n")
    result = run_snakemake(pipeline_run.root, "-n", "--configfile", str(misspelt), check=False)
    assert result.returncode != 0 and "gad-7" in result.stderr and "Did you mean 'gad7'" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_errors_stop_with_one_message(tmp_path):
    """A user's data mistake ends the run with the file, column and what to do; no traceback."""
    project = make_project_copy(tmp_path / "bad", n_clients=20, n_therapists=2)
    bad = Path(__file__).parent / "data" / "bad" / "missing_required_column" / "sessions.csv"
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(yaml.safe_dump({"inputs": {"sessions": {"path": str(bad)}}}))
    result = run_snakemake(project.root, "--configfile", str(overlay), check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ERROR: " in output and "therapist_id" in output and "inputs.sessions.columns.therapist" in output
    assert "Traceback" not in output


def _published_tables(root: Path) -> dict[str, bytes]:
    files = sorted((root / TABLES).glob("*.csv")) + sorted((root / "data/processed").glob("*.csv"))
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def test_two_runs_from_scratch_are_byte_identical(pipeline_run, tmp_path):
    again = make_project_copy(tmp_path / "again")
    # the multiverse's and the manuscript's reruns: test_multiverse.py, test_manuscript.py
    again.switch_off()
    again.snakemake()
    first, second = _published_tables(pipeline_run.root), _published_tables(again.root)
    assert len(second) > 10 and set(first) - set(second) == {
        f"{TABLES}/{name}" for name in LEFT_OUT_TABLES}, \
        sorted(set(first) ^ set(second))
    different = [name for name in second if first[name] != second[name]]
    assert not different, f"tables differ between identical runs: {different}"
    svgs = sorted((again.root / "results/figures").glob("*.svg"))
    assert len(svgs) > 5
    for svg in svgs:
        assert svg.read_bytes() == (pipeline_run.root / "results/figures" / svg.name).read_bytes(), svg.name


def _wait_for_model_jobs(root: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (root / "logs" / "fit_model").exists() and any((root / "logs" / "fit_model").iterdir()):
            return
        if process.poll() is not None:
            raise AssertionError("the pipeline finished before the models stage could be interrupted")
        time.sleep(0.2)
    raise AssertionError("the models stage did not start in time")


@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_resumes_to_identical_outputs(pipeline_run, tmp_path, kill_signal):
    project = make_project_copy(tmp_path / "killed")
    # What is tested is the stop and the resume: the multiverse and the manuscript (their own
    # reruns are tested elsewhere) are left out to keep the two runs short.
    project.switch_off()
    process = subprocess.Popen(
        snakemake_command(), cwd=project.root, env=project_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_for_model_jobs(project.root, process)
        time.sleep(1.0)
        # The whole process group: Snakemake and the jobs it started, as a scheduler would.
        os.killpg(process.pid, kill_signal)
        # On SIGTERM Snakemake lets the jobs that are running finish; like a scheduler at the end
        # of its grace period (SLURM's KillWait), send SIGKILL when it has not stopped by then.
        try:
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert not (project.root / TABLES / "models.csv").exists()
    leftovers = [p for p in (project.root / "results").rglob("*.tmp")]
    if process.returncode == -signal.SIGKILL:
        # A killed Snakemake cannot release its lock; the README tells users to run --unlock.
        project.snakemake("--unlock")
    project.snakemake()
    assert not [p for p in (project.root / "results").rglob("*.tmp") if p not in leftovers]
    first, resumed = _published_tables(pipeline_run.root), _published_tables(project.root)
    assert f"{TABLES}/models.csv" in resumed and f"{TABLES}/data_flow.csv" in resumed
    assert {name: first[name] for name in resumed} == resumed
