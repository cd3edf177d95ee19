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

The totals themselves are one fact, :class:`StudyTotals` (the session registry's clients and
therapists, each outcome's episodes), and :func:`publish_counts` is the path for the columns of a
published table that hold counts of people.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.config import PROJECT_ROOT
from analysis.errors import ConfigError
from analysis.io import sha256_file

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


def format_count(n: int, min_cell: int, total: int | Iterable[int | None] | None = None) -> str:
    """A count of people as published: the one path for every output.

    ``"<min_cell"`` when 0 < n < min_cell. With ``total`` (what the count is part of: the
    study's clients, an outcome's episodes, ...), a count whose complement ``total - n`` is a
    small cell is shown as ``">{total - min_cell}"`` too (:func:`format_part`), because the
    published total would reveal the complement by subtraction. ``total`` may name several
    nested totals (an outcome's episodes within the study's clients, :meth:`StudyTotals.of`):
    the count is hidden when it is hidden within any of them, shown as the first that hides it.
    """
    n = int(n)
    for part_of in _totals(total):
        shown = format_part(n, part_of, min_cell)
        if shown != str(n):
            return shown
    if 0 < n < min_cell:
        return f"<{min_cell}"
    return str(n)


def _totals(total: int | Iterable[int | None] | None) -> list[int]:
    if total is None:
        return []
    if isinstance(total, (int, np.integer)):
        return [int(total)]
    return [int(value) for value in total if value is not None]


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


def is_suppressed(count: int, total: int | Iterable[int | None] | None, min_cell: int
                  ) -> bool:
    """Whether :func:`format_count` with ``total`` (None, one or several) hides ``count``."""
    return format_count(count, min_cell, total) != str(int(count))


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


#: The published tables' columns that hold counts of people, by the unit counted (episodes are
#: one per client and outcome, so they are parts of the clients).
PEOPLE_COUNT_COLUMNS: dict[str, str] = {
    "n_clients": "clients", "n_episodes": "clients", "n_episodes_fewer_than_2_scores": "clients",
    "n_therapists": "therapists",
}


@dataclass(frozen=True)
class StudyTotals:
    """The published totals every count of people is part of (complementary suppression).

    ``clients`` and ``therapists``: the study's after cleaning (the session registry, published in
    the data flow); ``episodes``: each outcome's episodes (the episode summary). A count of
    clients in an analysis of one outcome is part of that outcome's episodes and of the clients.
    """

    clients: int | None = None
    therapists: int | None = None
    episodes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, sessions: pd.DataFrame | None = None,
                    episodes: pd.DataFrame | None = None) -> "StudyTotals":
        """From the session registry (``client_id``, ``therapist_id``) and the episodes (one row
        per client and outcome); a table or column that is missing gives no total."""
        def distinct(column: str) -> int | None:
            if sessions is None or column not in sessions.columns:
                return None
            return int(sessions[column].dropna().nunique())

        per_outcome = ({} if episodes is None or "outcome" not in episodes.columns else
                       {str(outcome): int(n) for outcome, n in
                        episodes.groupby("outcome", sort=True, observed=True).size().items()})
        return cls(distinct("client_id"), distinct("therapist_id"), per_outcome)

    def of(self, unit: str, outcome: str | None = None) -> tuple[int, ...]:
        """The totals a count of ``unit`` ("clients" or "therapists") is part of, innermost first
        (for :func:`format_count`): the outcome's episodes, then the clients."""
        if unit == "therapists":
            totals = [self.therapists]
        elif unit == "clients":
            totals = [None if outcome is None else self.episodes.get(str(outcome)), self.clients]
        else:
            raise ValueError(f"unit {unit!r}: counts of people are of 'clients' or 'therapists'")
        return tuple(int(total) for total in totals if total is not None)


def publish_counts(frame: pd.DataFrame, min_cell: int, totals: StudyTotals,
                   columns: Mapping[str, str] = PEOPLE_COUNT_COLUMNS,
                   outcome_column: str = "outcome") -> pd.DataFrame:
    """A table as published: each count of people through :func:`format_count` with the totals
    it is part of (``totals.of(unit, the row's outcome)``).

    ``columns`` maps the columns holding counts to their unit (those absent from ``frame`` are
    skipped); a missing count stays missing.
    """
    out = frame.copy()
    if out.empty:
        return out
    outcomes = (out[outcome_column].astype("string").tolist() if outcome_column in out.columns
                else [None] * len(out))
    for column, unit in columns.items():
        if column not in out.columns:
            continue
        out[column] = [
            None if pd.isna(value) else format_count(
                int(value), min_cell, totals.of(unit, None if pd.isna(outcome) else outcome))
            for value, outcome in zip(out[column], outcomes)]
    return out
