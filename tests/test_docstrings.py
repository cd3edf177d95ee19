"""The public API reads like a statistics library's: every documented function says what it takes
and returns and shows a runnable example, and every example in the package runs as written.

Modules are named by import name (not by file), so the test follows a module that moves: walking
the package finds every module wherever it lives, and :data:`DOCUMENTED_MODULES` names the
modules a user calls (the notebooks' API, the models, the data stages).
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import analysis

#: The modules whose every public function carries numpydoc Parameters, Returns and Examples.
DOCUMENTED_MODULES = (
    "analysis.results",
    "analysis.ingest.linking",
    "analysis.ingest.reading",
    "analysis.scoring",
    "analysis.episodes",
    "analysis.jacobson_truax",
    "analysis.derive",
    "analysis.quality",
    "analysis.dataflow",
    "analysis.privacy",
    "analysis.engagement.dropout",
    "analysis.engagement.dropout_stage",
    "analysis.engagement.therapist_patient",
    "analysis.engagement.therapist_patient_stage",
    "analysis.engagement.sudden_gains",
    "analysis.engagement.sudden_gains_stage",
    "analysis.models.mixed.specs",
    "analysis.models.mixed.fitting",
    "analysis.models.mixed.protocol",
    "analysis.models.panel.dpm",
    "analysis.models.panel.dpm_stage",
    "analysis.models.panel.riclpm",
    "analysis.models.panel.riclpm_stage",
    "analysis.models.mixed.crosscheck",
    "analysis.models.mixed.tables",
    "analysis.models.descriptive.correlation",
    "analysis.models.descriptive.reliability",
    "analysis.models.descriptive.early",
    "analysis.models.multiverse.specifications",
    "analysis.models.multiverse.summary",
    "analysis.models.panel.waves",
)

DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def package_modules() -> list[str]:
    """Every module of the ``analysis`` package, by import name (a ``__main__`` is a command: it
    runs when imported, and holds no examples)."""
    names = ["analysis"]
    for info in pkgutil.walk_packages(analysis.__path__, prefix="analysis."):
        if not info.name.endswith(".__main__"):
            names.append(info.name)
    return sorted(names)


def public_functions(module) -> list[tuple[str, object]]:
    """The public functions defined in ``module`` (exported by ``__all__`` when it has one)."""
    names = getattr(module, "__all__", None) or [name for name in vars(module)
                                                 if not name.startswith("_")]
    return [(name, getattr(module, name)) for name in names
            if inspect.isfunction(getattr(module, name))
            and getattr(module, name).__module__ == module.__name__]


def section(doc: str, title: str) -> bool:
    """Whether a numpydoc docstring has the section ``title`` (its underline follows)."""
    return re.search(rf"^{title}\n-{{3,}}\s*$", doc, flags=re.MULTILINE) is not None


def test_the_walk_finds_the_documented_modules():
    found = set(package_modules())
    missing = [name for name in DOCUMENTED_MODULES if name not in found]
    assert not missing, f"documented modules not in the package (renamed?): {missing}"


@pytest.mark.parametrize("module_name", package_modules())
def test_examples_run_as_written(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    failures = []
    for test in finder.find(module, module_name, globs=dict(vars(module))):
        if not test.examples:
            continue
        runner.run(test, out=failures.append, clear_globs=True)
    assert not failures, f"{module_name}: examples that do not print what they show:\n" + "".join(
        failures)


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_public_functions_are_documented(module_name):
    module = importlib.import_module(module_name)
    functions = public_functions(module)
    assert functions, f"{module_name} defines no public function: is it still a documented module?"
    gaps = []
    for name, function in functions:
        doc = inspect.getdoc(function) or ""
        takes = [parameter for parameter in inspect.signature(function).parameters]
        titles = (("Parameters",) if takes else ()) + ("Returns", "Examples")
        lacking = [title for title in titles if not section(doc, title)
                   and not (title == "Returns" and section(doc, "Yields"))]
        if section(doc, "Examples") and ">>>" not in doc.split("Examples", 1)[1]:
            lacking.append("a `>>>` line in Examples")
        if lacking:
            gaps.append(f"{name}: no {', '.join(lacking)}")
    assert not gaps, f"{module_name}: public functions without numpydoc sections:\n  " + "\n  ".join(
        gaps)
