"""Data contracts at every stage boundary (analysis.contracts, through analysis.io).

Every catalogue table has a contract and every column a kind; a frame that meets its contract is
written and read back; a file whose column has the wrong dtype stops the next stage with a message
naming the file, the column and the rule that writes it, both through ``read_table`` and in a real
Snakemake run of one downstream rule; files outside the catalogue are not checked; and checking a
file does not load pandera, statsmodels or matplotlib into a job.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import contracts
from analysis.catalogue import FILES
from analysis.errors import DataError
from analysis.io import read_table, write_table

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted(name for name, entry in FILES.items() if not entry.path.endswith(contracts.NOT_TABLES))


def stage_path(root: Path, name: str) -> Path:
    return root / FILES[name].path


# ---------------------------------------------------------------------------------------------
# Coverage: one contract per catalogue table, a kind for every column


def test_every_catalogue_table_has_a_contract():
    missing = [name for name in TABLES if name not in contracts.SPECS]
    assert not missing, f"catalogue tables without a contract in analysis/contracts.py: {missing}"
    unknown = sorted(set(contracts.SPECS) - set(FILES))
    assert not unknown, f"contracts for names the catalogue does not have: {unknown}"
    for name in TABLES:
        assert contracts.contract(name) is not None, name


def test_every_column_has_a_kind():
    for name in TABLES:
        spec = contracts.SPECS[name]
        names = contracts._names(spec.columns)
        assert names, f"{name}: no columns"
        assert len(set(names)) == len(names), f"{name}: a column is listed twice"
        without = [column for column in names if column not in contracts.COLUMN_KINDS]
        assert not without, (f"{name}: columns without a kind (add one line each to "
                              f"COLUMN_KINDS): {without}")
        assert set(spec.keys) <= set(names), f"{name}: a key column is not one of its columns"
        if not isinstance(spec.suppressed, contracts.Listed):  # a shared list names more
            assert set(spec.suppressed) <= set(names), f"{name}: a suppressed column is not listed"
    assert set(contracts.COLUMN_KINDS.values()) <= set(contracts.KINDS)


def test_published_tables_allow_extra_columns_and_processed_files_do_not():
    for name in TABLES:
        assert contracts.SPECS[name].strict == (not FILES[name].published), name


def listed_items() -> set[contracts.Listed]:
    items = set()
    for spec in contracts.SPECS.values():
        for names in (spec.columns, spec.suppressed):
            if isinstance(names, contracts.Listed):
                items.add(names)
            else:
                items |= {item for item in names if isinstance(item, contracts.Listed)}
    return items


def test_column_lists_read_from_source_equal_the_modules_own():
    """A list read off a module's source (without importing it) is the list the module has;
    a list that is not a literal in its module is taken by importing the module."""
    items = listed_items()
    assert len(items) >= 10
    not_literal = set()
    for item in items:
        imported = getattr(importlib.import_module(item.module), item.attribute)
        from_source = contracts._literal_in_source(item.module, item.attribute)
        if from_source is contracts._NOT_FOUND:
            not_literal.add(f"{item.module}.{item.attribute}")
        else:
            assert from_source == imported, item
        assert contracts.module_constant(item.module, item.attribute) == imported, item
    # every list a light job may check is a literal (read without importing its module)
    assert not_literal <= {"analysis.models.multiverse.specifications.CHOICE_NAMES"}, not_literal


def test_writer_column_lists_are_used_not_copied():
    from analysis.models.mixed.tables import TABLE_COLUMNS
    from analysis.scoring import SCORE_COLUMNS

    assert [c.name for c in contracts.contract("models").columns] == TABLE_COLUMNS["models"]
    assert [c.name for c in contracts.contract("scores").columns] == SCORE_COLUMNS
    assert contracts.contract("models").declared("n_clients").kind == "published_count"


# ---------------------------------------------------------------------------------------------
# Matching files to the catalogue


def test_paths_match_relative_to_any_project_folder(tmp_path):
    assert contracts.entry_for("data/processed/derived.parquet").name == "derived"
    assert contracts.entry_for(tmp_path / "data/processed/derived.parquet").name == "derived"
    assert contracts.entry_for("./results/tables/models.csv").name == "models"
    assert contracts.entry_for(tmp_path / "derived.parquet") is None
    assert contracts.entry_for(tmp_path / "data/processed/other.parquet") is None
    assert contracts.entry_for(tmp_path / "elsewhere/derived.parquet") is None


def test_files_outside_the_catalogue_are_not_checked(tmp_path):
    anything = pd.DataFrame({"session": ["not a number"], "whatever": [1]})
    for relative in ("derived.parquet", "scratch/data/derived.csv", "data/processed/x.parquet"):
        write_table(anything, tmp_path / relative)
        assert read_table(tmp_path / relative)["session"].tolist() == ["not a number"]


# ---------------------------------------------------------------------------------------------
# A correct frame passes


@pytest.mark.parametrize("name", TABLES)
def test_a_frame_that_meets_its_contract_is_written_and_read(tmp_path, name):
    frame = contracts.example_frame(name)
    write_table(frame, stage_path(tmp_path, name))
    back = read_table(stage_path(tmp_path, name))
    assert list(back.columns) == list(frame.columns)


def test_the_demo_outputs_meet_their_contracts(tmp_path):
    """Frames shaped like the real outputs: missing values, nullable dtypes, empty columns."""
    derived = pd.DataFrame({
        "outcome": pd.array(["phq9", "phq9"], dtype="string"),
        "client_id": pd.array(["c_1", "c_1"], dtype="string"),
        "therapist_id": pd.array(["t_1", pd.NA], dtype="string"),
        "session": np.array([1, 2], dtype="int64"),
        "day": pd.array([0, pd.NA], dtype="Int64"),
        "n_sessions": np.array([2, 2], dtype="int64"),
        **{column: [1.0, np.nan] for column in (
            "symptom_score", "symptom_next", "symptom_within", "symptom_between_c",
            "alliance_score", "alliance_next", "alliance_within", "alliance_between_c",
            "alliance_within_detrended", "alliance_early", "alliance_task_score",
            "alliance_task_within", "alliance_task_between_c")},
    })
    write_table(derived, stage_path(tmp_path, "derived"))
    read_table(stage_path(tmp_path, "derived"))

    # a published table: counts of people hidden as "<10", an empty text column, a nullable
    # integer column (read back from CSV as floats), a boolean column with a gap
    models = contracts.example_frame("models")
    models = pd.concat([models, models], ignore_index=True)
    models["n_clients"] = pd.Series(["<10", 250], dtype=object)
    models["family"] = np.nan
    models["n_obs"] = [100.0, np.nan]
    models["converged"] = pd.Series([True, None], dtype=object)
    models["extra_column_from_another_engineer"] = "fine"
    write_table(models, stage_path(tmp_path, "models"))
    back = read_table(stage_path(tmp_path, "models"))
    assert back["n_obs"].dtype == "float64" and back["family"].isna().all()

    # an empty table, as a header only (no dtype survives a CSV)
    empty = pd.DataFrame(columns=contracts._names(contracts.SPECS["ingest_flags"].columns))
    write_table(empty, stage_path(tmp_path, "ingest_flags"))
    assert read_table(stage_path(tmp_path, "ingest_flags")).empty


# ---------------------------------------------------------------------------------------------
# A file that breaks its contract stops the reader


def test_derived_with_session_as_text_stops_the_reader(tmp_path):
    derived = contracts.example_frame("derived")
    derived["session"] = derived["session"].astype("string")
    target = stage_path(tmp_path, "derived")
    target.parent.mkdir(parents=True)
    derived.to_parquet(target, index=False)  # as an older or foreign writer would
    with pytest.raises(DataError) as raised:
        read_table(target)
    message = str(raised.value)
    assert str(target) in message
    assert "'session'" in message and "whole numbers" in message and "string" in message
    assert "rule derive" in message and "rerun the step that writes it" in message


def test_scores_with_score_as_text_stops_the_reader(tmp_path):
    scores = contracts.example_frame("scores")
    scores["score"] = scores["score"].astype(str)
    target = stage_path(tmp_path, "scores")
    target.parent.mkdir(parents=True)
    scores.to_parquet(target, index=False)
    with pytest.raises(DataError, match=r"scores\.parquet.*\n.*'score': expected numbers"
                                        r"(?s:.*)rule score"):
        read_table(target)


def test_a_missing_column_stops_the_reader_of_a_published_table(tmp_path):
    models = contracts.example_frame("models").drop(columns=["estimate"])
    target = stage_path(tmp_path, "models")
    target.parent.mkdir(parents=True)
    models.to_csv(target, index=False)
    with pytest.raises(DataError, match=r"'estimate': missing(?s:.*)rule combine_models"):
        read_table(target)


def test_a_reader_sees_every_problem_at_once(tmp_path):
    derived = contracts.example_frame("derived").drop(columns=["alliance_within"])
    derived["session"] = 1.5
    derived["alliance_task_score"] = "high"  # a pattern column
    target = stage_path(tmp_path, "derived")
    target.parent.mkdir(parents=True)
    derived.to_parquet(target, index=False)
    message = str(pytest.raises(DataError, read_table, target).value)
    for column in ("'session'", "'alliance_within'", "'alliance_task_score'"):
        assert column in message


# ---------------------------------------------------------------------------------------------
# A writer is checked fully, before anything reaches the disk


def test_a_writer_cannot_write_a_frame_that_breaks_its_contract(tmp_path):
    target = stage_path(tmp_path, "derived")
    derived = contracts.example_frame("derived")

    wrong_dtype = derived.assign(session=derived["session"].astype(float) + 0.5)
    with pytest.raises(DataError, match=r"derived\.parquet: not written(?s:.*)'session': "
                                        r"expected whole numbers(?s:.*)rule derive"):
        write_table(wrong_dtype, target)

    key_missing = derived.assign(client_id=pd.array([pd.NA], dtype="string"))
    with pytest.raises(DataError, match=r"'client_id': 1 missing value\(s\) in a key column"):
        write_table(key_missing, target)

    undeclared = derived.assign(client_name="Alice")  # the ingest allowlist stays an allowlist
    with pytest.raises(DataError, match=r"'client_name': not in the contract"):
        write_table(undeclared, target)

    assert not target.parent.exists() or not list(target.parent.iterdir())


def test_a_published_table_may_carry_extra_columns_but_not_drop_one(tmp_path):
    rm_corr = contracts.example_frame("rm_corr")
    write_table(rm_corr.assign(method="closed_form"), stage_path(tmp_path, "rm_corr"))
    with pytest.raises(DataError, match=r"'r': missing"):
        write_table(rm_corr.drop(columns=["r"]), stage_path(tmp_path, "rm_corr"))


def test_a_csv_integer_column_with_gaps_must_still_hold_whole_numbers(tmp_path):
    flow = contracts.example_frame("data_flow_full")
    with pytest.raises(DataError, match="'count': expected whole numbers"):
        write_table(flow.assign(count=[2.5]), stage_path(tmp_path, "data_flow_full"))


# ---------------------------------------------------------------------------------------------
# Jobs stay light


def test_checking_a_file_loads_no_heavy_library(tmp_path):
    """A fit job reads derived.parquet (and others read rejects.csv, models.csv): checking them
    must not import pandera, statsmodels or matplotlib (or the modules that import them)."""
    for name in ("derived", "rejects", "models", "scores", "episodes", "data_quality"):
        write_table(contracts.example_frame(name), stage_path(tmp_path, name))
    script = (
        "import sys\n"
        "from analysis.io import read_table\n"
        f"for name in {['derived', 'rejects', 'models', 'scores', 'episodes', 'data_quality']!r}:\n"
        "    read_table(__import__('analysis.catalogue').catalogue.FILES[name].path)\n"
        "heavy = [m for m in ('pandera', 'statsmodels', 'matplotlib', 'analysis.ingest',\n"
        "                     'analysis.models.mixed.tables') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_checks_cost_little_on_a_large_frame():
    rows = 200_000
    derived = pd.DataFrame({
        "outcome": pd.array(["phq9"] * rows, dtype="string"),
        "client_id": pd.array([f"c_{i // 10}" for i in range(rows)], dtype="string"),
        "therapist_id": pd.array([f"t_{i // 1000}" for i in range(rows)], dtype="string"),
        "session": np.arange(rows, dtype="int64") % 10 + 1,
        "day": pd.array(np.arange(rows) % 70, dtype="Int64"),
        "n_sessions": np.full(rows, 10, dtype="int64"),
        **{c.name: np.random.default_rng(0).normal(size=rows)
           for c in contracts.contract("derived").columns if c.kind == "float"},
    })
    start = time.perf_counter()
    contracts.check_written(derived, "data/processed/derived.parquet")
    contracts.check_read(derived, "data/processed/derived.parquet")
    # generous bound for a loaded CI machine; measured ~2 ms on a quiet one
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------------------------------------
# The next stage stops in a real run


def test_a_pipeline_step_stops_on_a_bad_upstream_file(tmp_path):
    """scores.parquet with `score` as text: `snakemake` runs only rule derive, which stops with
    the file, the column and the rule to rerun, and writes nothing."""
    from conftest import run_snakemake

    shutil.copy2(ROOT / "Snakefile", tmp_path / "Snakefile")
    for folder in ("workflow", "config"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    scores = contracts.example_frame("scores")
    scores["score"] = scores["score"].astype(str)
    processed = stage_path(tmp_path, "scores").parent
    processed.mkdir(parents=True)
    scores.to_parquet(stage_path(tmp_path, "scores"), index=False)
    write_table(contracts.example_frame("sessions"), stage_path(tmp_path, "sessions"))

    result = run_snakemake(tmp_path, FILES["derived"].path, "--allowed-rules", "derive",
                           check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "data/processed/scores.parquet does not match its contract" in output, output[-3000:]
    assert "'score': expected numbers" in output and "rule score" in output
    assert not stage_path(tmp_path, "derived").exists()


def test_a_catalogue_path_with_wildcards_matches_one_folder_level(monkeypatch):
    from analysis.catalogue import StageFile

    entry = StageFile("spec_table", "results/multiverse/{spec}/estimates.csv", "multiverse", "x")
    monkeypatch.setitem(contracts.FILES, entry.name, entry)
    assert contracts.entry_for("/p/results/multiverse/s01/estimates.csv") is entry
    assert contracts.entry_for("/p/results/multiverse/a/b/estimates.csv") is None
    # declared in the catalogue but without a contract: not checked at run time (a test fails)
    assert contracts.contract_for("/p/results/multiverse/s01/estimates.csv") is None


def test_text_that_looks_like_numbers_in_a_csv_is_still_text(tmp_path):
    """A CSV keeps no dtypes: raw column names such as "2023" come back as numbers."""
    rejects = contracts.example_frame("rejects").assign(column="2023")
    write_table(rejects, stage_path(tmp_path, "rejects"))
    assert read_table(stage_path(tmp_path, "rejects"))["column"].tolist() == [2023]
    with pytest.raises(DataError, match="'column': expected text"):
        write_table(rejects.assign(column=2023), stage_path(tmp_path, "rejects"))
