"""Reading and writing the pipeline's files, atomically and deterministically.

Every file is written to a temporary name in the target folder and renamed into place, so that a
run killed mid-write never leaves a partial file that a later step (or a rerun) would trust.
Tables are written with a fixed float format and row order chosen by the caller, so the same
inputs give byte-identical files. A table that is a stage file of the catalogue is checked against
its contract (:mod:`analysis.contracts`): fully before it is written, and for its columns and
dtypes after it is read; other files are not checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from analysis.contracts import check_read, check_written


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give it the permissions of an ordinary new file.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``df`` as CSV (``.csv``) or Parquet (``.parquet``), atomically.

    CSV floats are written with 10 significant digits: enough for every reported statistic, and
    stable across platforms so reruns are byte-identical. A stage file's frame must meet its
    contract (:func:`analysis.contracts.check_written`): nothing is written otherwise.
    """
    target = Path(path)
    if target.suffix not in (".parquet", ".csv"):
        raise ValueError(f"write_table: unsupported file type {target.suffix!r} for {target}")
    check_written(df, target)
    with atomic_path(target) as tmp:
        if target.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table`; a stage file is checked for the columns and
    dtypes of its contract (:func:`analysis.contracts.check_read`)."""
    target = Path(path)
    frame = pd.read_parquet(target) if target.suffix == ".parquet" else pd.read_csv(target)
    check_read(frame, target)
    return frame


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(value: Any) -> Any:
    # numpy scalars and pandas NA reach here from fitted models
    if hasattr(value, "item"):
        return value.item()
    if value is pd.NA:
        return None
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, in hex (for provenance and recognising the demo data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
