"""The package's layers are kept: `lint-imports` checks the contracts of pyproject.toml.

The contracts (``[tool.importlinter]``) say which package may import which: the layers from the
entry points (simulation, notebooks' API, report) down to errors, the model families, no cycles,
and the models importing nothing above them. The first test runs them on the package as it is;
the others plant an upward import or a cycle in a temporary copy of the package and show that
the contracts catch it, so an import against the layers fails the suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The venv's own lint-imports (installed with the [test] extra), next to its Python.
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
NAMES = {contract["id"]: contract["name"] for contract in CONTRACTS}


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root/src`` with ``root/pyproject.toml``."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def counts(output: str) -> tuple[int, int]:
    """(kept, broken) from lint-imports' last line, ``Contracts: 4 kept, 0 broken.``"""
    match = re.search(r"Contracts: (\d+) kept, (\d+) broken\.", output)
    assert match, output[-3000:]
    return int(match.group(1)), int(match.group(2))


def one_line(output: str) -> str:
    # lint-imports wraps long contract names at the terminal width
    return " ".join(output.split())


def test_the_contracts_are_not_trivial():
    kinds = {contract["type"] for contract in CONTRACTS}
    assert {"layers", "acyclic_siblings", "forbidden"} <= kinds
    layers = next(c for c in CONTRACTS if c["id"] == "layers")["layers"]
    # from the entry points down to errors, through the models and the data stages
    assert len(layers) >= 10 and layers[-1] == "analysis.errors"
    flat = " ".join(layers)
    for package in ("analysis.simulate", "analysis.report", "analysis.figures", "analysis.models",
                    "analysis.ingest", "analysis.catalogue", "analysis.io"):
        assert package in flat, package
    assert flat.index("analysis.simulate") < flat.index("analysis.models")


def test_every_module_of_the_package_has_a_layer():
    # A module outside the layers would be checked by nothing: a new one needs its place.
    layers = next(c for c in CONTRACTS if c["id"] == "layers")["layers"]
    placed = {name.strip("() ") for layer in layers for name in layer.split("|")}
    package = ROOT / "src" / "analysis"
    modules = {f"analysis.{path.stem}" for path in package.glob("*.py")
               if path.stem not in ("__init__", "__main__")}
    modules |= {f"analysis.{path.parent.name}" for path in package.glob("*/__init__.py")}
    assert {"analysis.models", "analysis.simulate", "analysis.errors"} <= modules
    assert modules - placed == set()


def test_the_package_keeps_every_contract():
    result = lint_imports(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert counts(output) == (len(CONTRACTS), 0)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "analysis", tmp_path / "src" / "analysis",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(("module", "planted", "broken", "named"), [
    # a model reading the study (the upward arrow the recovery study used to draw): the study
    # imports the multiverse, so the panel models would reach it too, in a cycle
    ("models/panel/waves.py", "import analysis.study",
     {"layers", "models-below", "model-families", "no-cycles"},
     "analysis.models.panel.waves -> analysis.study"),
    # a stage reaching up into the models (which read the stage: a cycle too)
    ("derive.py", "from analysis.models.mixed import specs", {"layers", "no-cycles"},
     "analysis.derive -> analysis.models.mixed.specs"),
    # the mixed models using a family built on them
    ("models/mixed/engines.py", "from analysis.models.panel import fiml",
     {"model-families", "no-cycles"}, "analysis.models.mixed.engines -> analysis.models.panel.fiml"),
    # the instruments' cycle coming back
    ("instruments.py", "import analysis.instrument_declarations", {"layers", "no-cycles"},
     "analysis.instruments -> analysis.instrument_declarations"),
])
def test_a_planted_import_breaks_its_contracts(tmp_path, module, planted, broken, named):
    root = _copy(tmp_path)
    path = root / "src" / "analysis" / module
    text = path.read_text(encoding="utf-8")
    # after the module docstring and `from __future__`, so the file stays valid Python
    marker = "from __future__ import annotations\n"
    assert marker in text, module
    path.write_text(text.replace(marker, f"{marker}{planted}\n", 1), encoding="utf-8")
    result = lint_imports(root)
    output = one_line(result.stdout + result.stderr)
    assert result.returncode == 1, output[-6000:]
    assert counts(output) == (len(CONTRACTS) - len(broken), len(broken))
    for contract in broken:
        assert f"{one_line(NAMES[contract])} BROKEN" in output, contract
    assert named in output
