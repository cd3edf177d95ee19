"""The analysts' notebooks run from top to bottom on the outputs of a pipeline run.

Each ``notebooks/*.py`` (jupytext percent format, the source of truth) is converted to a notebook
and executed with nbclient in the project's ``notebooks/`` folder, where ``analysis.results``
finds the project. The outputs come from the end-to-end pipeline run of ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbclient
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
# The outputs the notebooks read; all must exist for a run to be meaningful.
REQUIRED_OUTPUTS = [
    "results/tables/models.csv", "results/tables/model_fit.csv",
    "results/tables/random_effects.csv", "results/tables/data_flow.csv",
    "results/tables/therapist_icc.csv", "results/tables/engine_agreement.csv",
    "results/tables/episodes_summary.csv", "data/processed/derived.parquet",
    "data/processed/sessions.parquet", "data/processed/scores.parquet",
    "data/processed/episodes.parquet",
]


def has_outputs(root: Path) -> bool:
    return all((root / relative).is_file() for relative in REQUIRED_OUTPUTS)


@pytest.fixture(scope="module")
def project_root(pipeline_run) -> Path:
    """The end-to-end run's project copy: the notebooks never depend on this checkout's state."""
    assert has_outputs(pipeline_run.root)
    return pipeline_run.root


def test_notebooks_present():
    assert [path.name for path in NOTEBOOKS] == [
        "01_data_overview.py", "02_alliance_outcome_models.py",
        "03_therapist_effects_and_sensitivity.py"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_percent_format_with_explanations(source):
    notebook = jupytext.read(source)
    assert notebook.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown"
    # every code cell but the imports follows an explanation within two cells
    assert kinds.count("markdown") >= 4
    # the notebooks read results only through analysis.results
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    for forbidden in ("read_csv", "read_parquet", "read_table", "open("):
        assert forbidden not in code


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_executes(source, project_root):
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(project_root / "notebooks")}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert errors == []
    # the notebook showed something: a table or a figure from its last code cell
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    assert last.get("outputs")
