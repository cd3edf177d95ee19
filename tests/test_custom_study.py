"""A trial's story, end to end: a custom instrument whose items are means, a config edit, a rerun.

A small trial (60 clients, 8 therapists) with a 9-item alliance scale and an anxiety scale of
three parcels that are item means on 0-3 (values such as 1.875). With the default
``integer_items: true`` almost every anxiety administration is rejected: the run stops right
after ingest, once, with a message naming the file, the instrument, the reason and the config key
that fixes it. After ``integer_items: false`` is added, the same command (no clean) reruns ingest
onward and the study completes. Its report must say what these data show: no exclusions, one
outcome, no ceiling problem, a Jacobson-Truax cut-off below the scale's floor (flagged), recovery
"not defined" without a caseness cut-off, and questionnaires at visits without a session record
counted as kept.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import LEFT_OUT, ROOT, run_snakemake

pytestmark = pytest.mark.slow

N_CLIENTS, N_THERAPISTS, N_SESSIONS = 60, 8, 8
UNMATCHED = 3  # questionnaires at a session number the session records do not have

CONFIG = {
    "study": {"name": "Trial with a custom anxiety scale", "seed": 11},
    "inputs": {
        "sessions": {
            "path": "data/raw/sessions.csv", "kind": "sessions",
            "columns": {"client": "pid", "therapist": "thx", "session": "visit", "date": "when"},
            "instruments": {"wai9": {"items": "wai{i}"}},
        },
        "anxiety": {
            "path": "data/raw/bai.csv",
            "columns": {"client": "pid", "session": "visit"},
            "instruments": {"bai3": {"items": ["bai_p1", "bai_p2", "bai_p3"]}},
        },
    },
    "instruments": {
        "wai9": {"label": "WAI-9", "construct": "alliance", "n_items": 9, "item_min": 1,
                 "item_max": 5, "scoring": "mean", "direction": "higher_better"},
        # no caseness cut-off, no reliable-change threshold: recovery is "not defined"
        "bai3": {"label": "BAI parcels", "construct": "anxiety", "n_items": 3, "item_min": 0,
                 "item_max": 3, "scoring": "mean", "direction": "higher_worse"},
    },
    "analysis": {"alliance": "wai9", "outcomes": ["bai3"]},
    # the multiverse and the manuscript are tested end to end elsewhere
    **{analysis: {"run": False} for analysis in LEFT_OUT},
    "models": {"run": ["M1", "M2", "DPM", "R1"],
               "sensitivity": {"detrended": False, "completers": False, "ml": False,
                               "subscales": False}},
}


def write_trial(raw: Path, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    clients = np.repeat(np.arange(N_CLIENTS), N_SESSIONS)
    visit = np.tile(np.arange(1, N_SESSIONS + 1), N_CLIENTS)
    therapist = (np.arange(N_CLIENTS) % N_THERAPISTS)[clients]
    level = rng.normal(3.2, 0.45, N_CLIENTS)[clients] + rng.normal(0, 0.3, len(clients))
    sessions = pd.DataFrame({
        "pid": [f"P{c:03d}" for c in clients], "thx": [f"T{t}" for t in therapist],
        "visit": visit,
        "when": (pd.Timestamp("2024-01-08") + pd.to_timedelta(clients * 3 + visit * 7, unit="D"))
        .strftime("%Y-%m-%d"),
    })
    for item in range(1, 10):
        sessions[f"wai{item}"] = np.clip(np.rint(level + rng.normal(0, 0.6, len(clients))), 1, 5
                                         ).astype(int)
    anxiety = 0.95 - 0.06 * visit + rng.normal(0, 0.45, N_CLIENTS)[clients] - 0.15 * (level - 3.2)
    bai = pd.DataFrame({"pid": sessions["pid"], "visit": visit})
    for parcel in range(1, 4):
        # parcels are means of eight 0-3 items: multiples of 1/8, mostly not whole
        value = np.clip(anxiety + rng.normal(0, 0.35, len(clients)), 0, 3)
        bai[f"bai_p{parcel}"] = np.round(value * 8) / 8
    extra = bai[bai["visit"] == N_SESSIONS].head(UNMATCHED).assign(visit=N_SESSIONS + 2)
    raw.mkdir(parents=True, exist_ok=True)
    sessions.to_csv(raw / "sessions.csv", index=False)
    pd.concat([bai, extra], ignore_index=True).to_csv(raw / "bai.csv", index=False)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    root = tmp_path_factory.mktemp("trial") / "project"
    root.mkdir()
    shutil.copy2(ROOT / "Snakefile", root / "Snakefile")
    shutil.copytree(ROOT / "workflow", root / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "config").mkdir()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    write_trial(root / "data" / "raw")
    first = run_snakemake(root, check=False)
    administrations = pd.read_parquet(root / "data/processed/administrations.parquet")
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    config["instruments"]["bai3"]["integer_items"] = False
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    second = run_snakemake(root, check=False)
    return {"root": root, "first": first, "second": second,
            "administrations_before": administrations}


def test_a_mostly_rejected_instrument_stops_the_run_once_with_the_fix(trial):
    first = trial["first"]
    assert first.returncode != 0
    console = first.stdout + first.stderr
    message = re.search(r"ERROR: (data/raw/bai\.csv: .*)", console).group(1)
    for part in ("bai3 administrations", "item_not_whole",
                 "instruments.bai3.integer_items: false", "quality.max_reject_share"):
        assert part in message, part
    # shown once (not three times), and nothing after ingest ran
    assert console.count(message[:60]) == 1, console[-4000:]
    assert "rule score" not in console and "rule fit_model" not in console
    # the console summary after ingest names the file and the instrument
    assert "bai3 (anxiety):" in console and "anxiety (data/raw/bai.csv):" in console


def test_the_config_edit_reruns_ingest_onward_without_a_clean(trial):
    second = trial["second"]
    assert second.returncode == 0, (second.stdout[-3000:], second.stderr[-6000:])
    log = second.stdout + second.stderr
    for rule in ("rule ingest:", "rule quality_gate:", "rule score:", "rule derive:",
                 "rule fit_model_bai3_M2:", "rule reviewer_report:"):
        assert rule in log, rule
    root = trial["root"]
    before = trial["administrations_before"]
    after = pd.read_parquet(root / "data/processed/administrations.parquet")
    assert (before["instrument"] == "bai3").sum() < 0.1 * N_CLIENTS * N_SESSIONS  # all parcels whole
    assert (after["instrument"] == "bai3").sum() == N_CLIENTS * N_SESSIONS + UNMATCHED
    models = pd.read_csv(root / "results/tables/models.csv")
    assert set(models["outcome"]) == {"bai3"}
    # a rerun now finds nothing to do
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(run_snakemake(root, "-n"))


@pytest.fixture(scope="module")
def report_text(trial) -> str:
    page = (trial["root"] / "results/report/index.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_report_says_none_for_zero_exclusions(report_text):
    assert "Exclusions at ingest: none." in report_text
    assert "not available in this run" not in report_text


def test_report_counts_questionnaires_without_a_session_record_as_kept(report_text):
    assert (f"were kept with the therapist of the client's nearest session record "
            f"(linking.unmatched_sessions: keep): {UNMATCHED}.") in report_text
    assert "No questionnaire belonged to a client without session records." in report_text


def test_report_has_one_outcome_and_no_ceiling_limitation(report_text):
    start = report_text.find("Precedes")
    assert report_text.count("Precedes (DPM, the dynamic panel model, the primary test)") == 1, \
        report_text[start:start + 400]
    assert report_text.count("The conventional multilevel model (M2") == 1
    assert "Ceiling of the alliance scale" not in report_text


def test_report_flags_a_cut_off_below_the_floor(report_text):
    assert "lies outside the BAI parcels range (0-3)" in report_text
    assert "episodes.functional_norms.bai3" in report_text


def test_recovery_without_a_caseness_cut_off_is_not_defined(trial, report_text):
    summary = pd.read_csv(trial["root"] / "results/tables/episodes_summary.csv")
    undefined = summary[summary["measure"].isin(["case_start", "recovery"])]
    assert (undefined["count"] == "not defined").all(), undefined
    assert "not defined" in report_text
