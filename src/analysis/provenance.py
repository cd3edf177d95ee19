"""Provenance: exactly what produced a report (commit, file hashes, package versions, seed)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from analysis.io import sha256_file

# Package versions listed under provenance.
PROVENANCE_PACKAGES = (
    "alliance-outcome", "snakemake", "pandas", "numpy", "scipy", "statsmodels", "pingouin",
    "mixedlm", "pandera", "matplotlib", "seaborn", "jinja2", "pyarrow", "semopy",
)


def git_commit(root: str | Path) -> str:
    """The checked-out commit, with a note when tracked files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=root, capture_output=True, text=True, check=True,
                                 timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not available (not a git checkout)"
    return commit + (" (with uncommitted changes to tracked files)" if changed else "")


def package_versions(packages: Sequence[str] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages the results depend on, plus Python."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def collect_provenance(root: str | Path, config_sha256: str, seed: int,
                       input_files: Sequence[str | Path],
                       result_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Everything needed to say exactly what produced the report.

    Parameters
    ----------
    root : path
        The project folder; file paths are shown relative to it.
    config_sha256 : str
        SHA-256 of the checked configuration (with its defaults) as canonical JSON.
    seed : int
        ``study.seed``.
    input_files, result_files : sequence of paths
        Hashed one by one.

    Returns
    -------
    dict
        ``commit``, ``config_sha256``, ``inputs`` and ``results`` (lists of (path, sha256)),
        ``packages`` (name -> version) and ``seeds``.
    """
    root = Path(root)

    def hashed(paths: Sequence[str | Path]) -> list[tuple[str, str]]:
        return [(_relative(Path(path), root), sha256_file(path))
                for path in sorted(map(str, paths))]

    return {
        "commit": git_commit(root),
        "config_sha256": config_sha256,
        "inputs": hashed(input_files),
        "results": hashed(result_files),
        "packages": package_versions(),
        "seeds": {"study.seed": seed},
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
