"""Rules' code inputs come from the import graph, not hand lists."""

from __future__ import annotations

from pathlib import Path

from analysis.codedeps import module_files

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
PACKAGE = ROOT / "src" / "analysis"


def names(script: str) -> set[str]:
    return {str(Path(path).relative_to(PACKAGE)) for path in module_files(SCRIPTS / script)}


def test_direct_transitive_and_lazy_imports_are_found():
    fit = names("fit_model.py")
    # direct (fitting), transitive (fitting -> specs -> settings) and function-level (the R1
    # module is imported inside fitting's dispatch) imports, and the packages on the way
    for module in ("models/mixed/fitting.py", "models/mixed/specs.py", "settings.py",
                   "models/descriptive/correlation.py", "models/mixed/protocol.py",
                   "models/mixed/__init__.py", "models/__init__.py", "__init__.py"):
        assert module in fit, module


def test_a_script_does_not_depend_on_modules_it_never_imports():
    ingest = names("ingest.py")
    assert "ingest/validation.py" in ingest and "privacy.py" in ingest
    assert not {"figures.py", "models/mixed/fitting.py", "episodes.py", "simulate/__init__.py"} & ingest


def test_every_script_resolves(tmp_path):
    for script in SCRIPTS.glob("*.py"):
        assert names(script.name), script.name


def test_a_submodule_imported_by_name_counts(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("from analysis.models.mixed import engines\nimport os\n")
    assert "models/mixed/engines.py" in {str(Path(p).relative_to(PACKAGE)) for p in module_files(script)}
