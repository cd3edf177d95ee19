"""Privacy: pseudonyms for identifiers and small-cell suppression for published counts.

Clinical data is sensitive. Identifiers are replaced at ingest by keyed hashes (HMAC-SHA256) under
a secret key from an environment variable, so the same client gets the same pseudonym across runs
and files, but nobody without the key can link a pseudonym back. Published tables and figures
show counts of people below a threshold as "<N".

One path for every published count of people (tables, figure titles and labels, report sentences,
logs): :func:`format_count`. Given the total the count is part of (the study's clients, the
episodes of an outcome, the therapists), it also applies complementary suppression, so that a
count is never published when the rest of its total is a small cell (62 of 64 clients would reveal
the 2 left out). A rate is published only when neither its count nor its denominator is hidden
(:func:`publish_rate`): 22/62 = 35.5% beside a hidden 62 would reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ConfigError
from analysis.io import sha256_file

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHECKSUMS = PROJECT_ROOT / "data" / "raw" / "SHA256SUMS"

# The documented public key for the shipped demo data. It protects nothing: real data must use a
# secret key of its own (see README, "Privacy").
DEMO_KEY = "alliance-outcome-demo-key-not-secret"


def pseudonymise(ids: pd.Series, key: str, prefix: str) -> pd.Series:
    """Replace identifiers by ``prefix`` + the first 16 hex digits of HMAC-SHA256(key, id).

    Missing identifiers stay missing. 64 bits make collisions negligible for any service's size.
    """
    key_bytes = key.encode("utf-8")
    # Hash each distinct id once; a million rows have far fewer distinct clients.
    codes, uniques = pd.factorize(ids.astype("string"), use_na_sentinel=True)
    hashed = np.array(
        [prefix + hmac.new(key_bytes, str(raw).encode("utf-8"), hashlib.sha256).hexdigest()[:16] for raw in uniques]
        + [None],
        dtype=object,
    )
    # code -1 (missing) picks the trailing None
    return pd.Series(hashed[codes], index=ids.index, dtype="string")


def is_demo_data(paths: list[Path], checksums_file: Path = DEMO_CHECKSUMS) -> bool:
    """True when every input file is one of the shipped demo files (by SHA-256)."""
    if not checksums_file.exists():
        return False
    known = {line.split()[0] for line in checksums_file.read_text().splitlines() if line.strip()}
    return all(path.exists() and sha256_file(path) in known for path in paths)


def resolve_key(variable: str, is_demo_data: bool) -> str:
    """The pseudonymisation key: from the environment variable ``variable`` (privacy.key_env).

    Without the variable, the shipped demo data (recognised by its checksums) falls back to the
    documented demo key; any other data stops with a message saying what to set.
    """
    key = os.environ.get(variable, "")
    if key:
        return key
    if is_demo_data:
        return DEMO_KEY
    raise ConfigError(
        f"config key privacy.key_env: the environment variable {variable} is not set. "
        f"Identifiers are pseudonymised with a secret key; set one before running, e.g. "
        f"`export {variable}=$(python -c 'import secrets; print(secrets.token_hex(32))')`, "
        f"and keep it safe (the same key gives the same pseudonyms next time)."
    )


def format_count(n: int, min_cell: int, total: int | None = None) -> str:
    """A count of people as published: the one path for every output.

    ``"<min_cell"`` when 0 < n < min_cell. With ``total`` (what the count is part of: the
    study's clients, an outcome's episodes, ...), a count whose complement ``total - n`` is a
    small cell is shown as ``">{total - min_cell}"`` too (:func:`format_part`), because the
    published total would reveal the complement by subtraction.
    """
    if total is not None:
        return format_part(n, total, min_cell)
    n = int(n)
    if 0 < n < min_cell:
        return f"<{min_cell}"
    return str(n)


def format_part(count: int, total: int, min_cell: int) -> str:
    """A count published beside its total, with secondary suppression.

    Primary: a count below ``min_cell`` is "<min_cell". Secondary: when the rest of the total
    (``total - count``) is a small cell, publishing the count would reveal it by subtraction, so the
    count is shown as ">{total - min_cell}" instead.
    """
    count, total = int(count), int(total)
    if count > total:  # not a part of this total (e.g. a different population): primary only
        return format_count(count, min_cell)
    if 0 < count < min_cell:
        return f"<{min_cell}"
    if 0 < total - count < min_cell:
        return f">{total - min_cell}"
    return str(count)


def is_suppressed(count: int, total: int | None, min_cell: int) -> bool:
    """Whether :func:`format_part` (or :func:`format_count` without a total) hides ``count``."""
    shown = format_count(count, min_cell) if total is None else format_part(count, total, min_cell)
    return shown != str(int(count))


def publish_rate(count: int, denominator: int, min_cell: int, total: int | None = None
                 ) -> float:
    """``count / denominator`` as published, or NaN when it would reveal a hidden count.

    A rate is suppressed when the count is hidden within its denominator (primary or
    complementary), when the denominator is itself hidden (a small cell, or, given ``total``, the
    complement of a small cell in it), or when the denominator is 0: the rate and the published
    count give the denominator back, and vice versa. A rate of 0 reveals nothing and is kept.
    """
    count, denominator = int(count), int(denominator)
    if count == 0 and denominator > 0:
        return 0.0  # 0 of any denominator: reveals nothing
    if denominator <= 0 or is_suppressed(count, denominator, min_cell) or is_suppressed(
            denominator, total, min_cell):
        return float("nan")
    return count / denominator


def hidden_counts(total: int, min_cell: int) -> set[int]:
    """Every count of people that must not appear as a number among the parts of ``total``:
    the small cells (1 to min_cell - 1) and the counts whose complement is one."""
    total = int(total)
    small = set(range(1, min_cell))
    complements = {total - k for k in small if total - k > 0}
    return (small | complements) - ({total} if total >= min_cell else set())
