"""Tests of analysis.results: finding the project folder, loading each output, and the message
when an output has not been made yet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis import results
from analysis.errors import UserError
from analysis.contracts import example_frame
from analysis.io import write_table

ROOT = Path(__file__).resolve().parents[1]

LOADERS = {
    "models": results.load_models,
    "random_effects": results.load_random_effects,
    "model_fit": results.load_model_fit,
    "sessions": results.load_sessions,
    "derived": results.load_derived,
    "scores": results.load_scores,
    "episodes": results.load_episodes,
    "data_flow": results.load_data_flow,
}


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with the real config and schema and a small file for every output."""
    (tmp_path / "config").mkdir()
    shutil.copy2(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "workflow" / "schemas").mkdir(parents=True)
    shutil.copy2(ROOT / "workflow" / "schemas" / "config.schema.yaml",
                 tmp_path / "workflow" / "schemas" / "config.schema.yaml")
    for name, relative in results.OUTPUT_FILES.items():
        # a one-row frame that meets the file's contract (write_table checks it)
        write_table(example_frame(name), tmp_path / relative)
    return tmp_path


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_each_loader_reads_its_file(project, name):
    frame = LOADERS[name](root=project)
    assert list(frame.columns) == list(example_frame(name).columns) and len(frame) == 1


def test_root_found_from_a_subfolder(project, monkeypatch):
    subfolder = project / "notebooks" / "deeper"
    subfolder.mkdir(parents=True)
    monkeypatch.chdir(subfolder)
    assert results.find_project_root() == project.resolve()
    assert len(results.load_models()) == 1


def test_missing_output_says_run_make_report(project):
    (project / results.OUTPUT_FILES["episodes"]).unlink()
    expected = r"data/processed/episodes.parquet.*run `make report` first"
    with pytest.raises(UserError, match=expected):
        results.load_episodes(root=project)


def test_no_project_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="config/config.yaml"):
        results.load_models()
    with pytest.raises(UserError, match="holds no config/config.yaml"):
        results.load_models(root=tmp_path)


def test_unknown_output_name(project):
    with pytest.raises(UserError, match="known outputs"):
        results.load_output("model", root=project)


def test_load_study_is_checked_with_defaults(project):
    study = results.load_study(root=project)
    assert study.outcome_keys == ("phq9", "gad7")
    assert study.privacy.min_cell_count == 10
    # the schema fills in defaults (e.g. the episodes section the config file does not spell out)
    assert study.episodes.caseness_rule == "any_outcome"
    assert study.episodes.rci_criterion == 1.96
