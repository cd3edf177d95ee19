"""Which package modules a pipeline script runs: its rule's code inputs, from the import graph.

A rule whose script imports ``analysis.figures`` depends on ``figures.py`` and on every package
module that ``figures.py`` imports in turn (at the top or inside a function). Listing those files
by hand drifts as the code changes; :func:`module_files` reads them off the source with
:mod:`ast`, without importing anything, so the Snakefile can declare them as inputs and a code
change reruns exactly the jobs whose code changed.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "analysis"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_files(script: str | Path, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The package's source files that ``script`` imports, directly or transitively, sorted.

    Packages on the way (``analysis/__init__.py``, ``analysis/models/__init__.py``) are included:
    importing a submodule runs them.
    """
    seen: set[Path] = set()
    queue = list(_imports(Path(script).resolve(), package_dir))
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        queue.extend(_imports(path, package_dir))
    return sorted(str(path) for path in seen)


@lru_cache(maxsize=None)
def _imports(path: Path, package_dir: Path) -> tuple[Path, ...]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _files_of(alias.name, package_dir)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += _files_of(node.module, package_dir)
            for alias in node.names:
                # ``from analysis.models.mixed import fitting`` imports a module, not a name
                found += _files_of(f"{node.module}.{alias.name}", package_dir, must_exist=False)
    return tuple(dict.fromkeys(found))


def _files_of(module: str, package_dir: Path, must_exist: bool = True) -> list[Path]:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return []
    files = []
    folder = package_dir
    for depth, part in enumerate(parts[1:], start=1):
        init = folder / "__init__.py"
        if init.exists():
            files.append(init)
        if depth == len(parts) - 1:
            as_module, as_package = folder / f"{part}.py", folder / part / "__init__.py"
            if as_module.exists():
                files.append(as_module)
            elif as_package.exists():
                files.append(as_package)
            elif not must_exist:
                return []
        folder = folder / part
    if len(parts) == 1:
        files.append(package_dir / "__init__.py")
    return files
