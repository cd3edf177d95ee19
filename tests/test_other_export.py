"""A differently shaped export runs the whole pipeline by config alone.

The simulated study is re-exported the way a clinic's system might: session records as an Excel
workbook with its own column names and day/month/year dates; PHQ-9 as pre-scored totals in wide
layout (one column per session) in a semicolon-separated Latin-1 file; anxiety as a study-specific
7-item scale declared in config (not built in), in a file with dates but no session numbers, so it
is linked to sessions by date. Only config changes; the pipeline runs end to end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, run_snakemake

pytestmark = pytest.mark.slow


def reshape_exports(simulated: Path, raw: Path) -> None:
    sessions = pd.read_csv(simulated / "sessions.csv", dtype=str)
    outcomes = pd.read_csv(simulated / "outcomes.csv", dtype=str)
    visits = sessions.rename(columns={
        "client_id": "PatientRef", "therapist_id": "ClinicianCode", "session": "VisitNo",
        **{f"wai_{i}": f"WAI item {i}" for i in range(1, 13)},
    })
    visits["VisitDate"] = pd.to_datetime(visits.pop("session_date")).dt.strftime("%d/%m/%Y")
    visits.to_excel(raw / "visits.xlsx", sheet_name="Visits", index=False)

    items = outcomes[[f"phq9_{i}" for i in range(1, 10)]].apply(pd.to_numeric, errors="coerce")
    outcomes["total"] = items.sum(axis=1, min_count=9)  # totals only where complete
    valid = outcomes.dropna(subset=["total"]).drop_duplicates(["client_id", "session"], keep=False)
    wide = valid.pivot(index="client_id", columns="session", values="total")
    wide.columns = [f"PHQ9_total_s{int(s)}" for s in wide.columns]
    wide.index.name = "PatientRef"
    wide.reset_index().to_csv(raw / "phq_scores.csv", sep=";", encoding="latin-1", index=False)

    anxiety = outcomes.rename(columns={"client_id": "Ref", "date": "Completed",
                                       **{f"gad7_{i}": f"A{i}" for i in range(1, 8)}})
    anxiety = anxiety[["Ref", "Completed", *[f"A{i}" for i in range(1, 8)]]]
    anxiety = anxiety.dropna(subset=[f"A{i}" for i in range(1, 8)], how="all")
    anxiety.to_csv(raw / "anxiety.csv", index=False)


CONFIG = {
    "study": {"name": "Differently shaped export", "seed": 3},
    "inputs": {
        "visits": {
            "path": "data/raw/visits.xlsx", "kind": "sessions", "format": "excel", "sheet": "Visits",
            "date_format": "%d/%m/%Y",
            "columns": {"client": "PatientRef", "therapist": "ClinicianCode", "session": "VisitNo",
                        "date": "VisitDate"},
            "instruments": {"wai_sr": {"items": "WAI item {i}"}},
        },
        "phq": {
            "path": "data/raw/phq_scores.csv", "delimiter": ";", "encoding": "latin-1", "layout": "wide",
            "columns": {"client": "PatientRef"},
            "instruments": {"phq9": {"total": "PHQ9_total_s{session}"}},
        },
        "anxiety": {
            "path": "data/raw/anxiety.csv",
            "columns": {"client": "Ref", "date": "Completed"},
            "instruments": {"anx7": {"items": "A{i}"}},
        },
    },
    "linking": {"by": "date", "window_days": 2},
    "instruments": {
        "anx7": {"label": "ANX-7", "construct": "anxiety", "n_items": 7, "item_min": 0, "item_max": 3,
                 "scoring": "sum", "direction": "higher_worse", "missing_rule": "prorate",
                 "max_missing": 2, "caseness": 8, "reliable_change": 4},
    },
    "analysis": {"alliance": "wai_sr", "outcomes": ["phq9", "anx7"]},
    "models": {"run": ["M2", "R1"],
               "sensitivity": {"detrended": False, "completers": False, "ml": False, "subscales": False}},
    # the export's shape is what is tested: the specification curve and the manuscript are not
    "multiverse": {"run": False},
    "manuscript": {"run": False},
}


def test_differently_shaped_export_runs_end_to_end(tmp_path):
    project = tmp_path / "clinic"
    project.mkdir()
    shutil.copy2(ROOT / "Snakefile", project / "Snakefile")
    shutil.copytree(ROOT / "workflow", project / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "config").mkdir()
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    simulated = tmp_path / "simulated"
    subprocess.run([sys.executable, "-m", "analysis.simulate", "--clients", "120", "--therapists", "12",
                    "--seed", "11", "--out", str(simulated)], check=True, capture_output=True)
    raw = project / "data" / "raw"
    raw.mkdir(parents=True)
    reshape_exports(simulated, raw)

    run_snakemake(project)

    models = pd.read_csv(project / "results/tables/models.csv")
    primary = models[(models["model"] == "M2") & (models["term"] == "alliance_within")]
    assert set(primary["outcome"]) == {"phq9", "anx7"}
    assert primary["se"].notna().all() and (primary["n_clients"] > 80).all()
    flow = pd.read_csv(project / "data/processed/data_flow.csv", keep_default_na=False)
    read = flow[(flow["stage"] == "read")].set_index("source")["count"]
    assert set(read.index) == {"visits", "phq", "anxiety"}
    assert (project / "results/report/index.html").exists()
