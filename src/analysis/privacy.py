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

    Parameters
    ----------
    ids : Series
        The identifiers (any type; compared as text).
    key : str
        The secret key (:func:`resolve_key`).
    prefix : str
        Put before each pseudonym (``"C"`` for clients, ``"T"`` for therapists).

    Returns
    -------
    Series
        The pseudonyms (string dtype), on the index of ``ids``.

    Examples
    --------
    >>> ids = pd.Series(["1001", "1002", "1001", None])
    >>> pseudonymise(ids, key="demo", prefix="C").tolist()
    ['C8b21da62956fbade', 'C7f9499fb4d740e7e', 'C8b21da62956fbade', <NA>]
    >>> pseudonymise(ids, key="another key", prefix="C")[0] == pseudonymise(ids, "demo", "C")[0]
    False
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
    """True when every input file is one of the shipped demo files (by SHA-256).

    Parameters
    ----------
    paths : list of Path
        The input files.
    checksums_file : Path
        The shipped demo files' SHA-256 sums (``sha256sum`` format).

    Returns
    -------
    bool
        Whether every file exists and its checksum is listed.

    Examples
    --------
    >>> import tempfile
    >>> from analysis.io import sha256_file
    >>> temporary = tempfile.TemporaryDirectory()
    >>> folder = Path(temporary.name)
    >>> _ = (folder / "sessions.csv").write_text("client,session\\n1,1\\n")
    >>> _ = (folder / "SHA256SUMS").write_text(sha256_file(folder / "sessions.csv") + "  sessions.csv\\n")
    >>> is_demo_data([folder / "sessions.csv"], folder / "SHA256SUMS")
    True
    >>> _ = (folder / "sessions.csv").write_text("client,session\\n1,2\\n")
    >>> is_demo_data([folder / "sessions.csv"], folder / "SHA256SUMS")
    False
    >>> temporary.cleanup()
    """
    if not checksums_file.exists():
        return False
    known = {line.split()[0] for line in checksums_file.read_text().splitlines() if line.strip()}
    return all(path.exists() and sha256_file(path) in known for path in paths)


def resolve_key(variable: str, is_demo_data: bool) -> str:
    """The pseudonymisation key: from the environment variable ``variable`` (privacy.key_env).

    Without the variable, the shipped demo data (recognised by its checksums) falls back to the
    documented demo key; any other data stops with a message saying what to set.

    Parameters
    ----------
    variable : str
        The environment variable that holds the key (config ``privacy.key_env``).
    is_demo_data : bool
        Whether the inputs are the shipped demo data (:func:`is_demo_data`).

    Returns
    -------
    str
        The key.

    Raises
    ------
    ConfigError
        When the variable is not set and the data are not the demo data.

    Examples
    --------
    >>> os.environ["EXAMPLE_PSEUDONYM_KEY"] = "a secret of this service"
    >>> resolve_key("EXAMPLE_PSEUDONYM_KEY", is_demo_data=False)
    'a secret of this service'
    >>> del os.environ["EXAMPLE_PSEUDONYM_KEY"]
    >>> resolve_key("EXAMPLE_PSEUDONYM_KEY", is_demo_data=True) == DEMO_KEY
    True
    >>> resolve_key("EXAMPLE_PSEUDONYM_KEY", is_demo_data=False)
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: config key privacy.key_env: the environment variable EXAMPLE_PSEUDONYM_KEY is not set. ...
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

    Parameters
    ----------
    n : int
        The count of people.
    min_cell : int
        The smallest count published as a number (config ``privacy.min_cell``).
    total : int or iterable of int, optional
        The total(s) the count is part of, innermost first (None entries are skipped).

    Returns
    -------
    str
        The count as published.

    Examples
    --------
    >>> format_count(3, min_cell=10)
    '<10'
    >>> format_count(0, min_cell=10)
    '0'
    >>> format_count(58, min_cell=10)
    '58'
    >>> format_count(58, min_cell=10, total=64)
    '>54'
    >>> format_count(40, min_cell=10, total=(45, 64))
    '>35'
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
    count is shown as ">{total - min_cell}" instead. Every part of a total below ``min_cell``
    is hidden ("<min_cell"): the group itself is a small cell.

    Parameters
    ----------
    count : int
        The count of people.
    total : int
        The total it is part of.
    min_cell : int
        The smallest count published as a number.

    Returns
    -------
    str
        The count as published.

    Examples
    --------
    >>> format_part(3, 64, min_cell=10)
    '<10'
    >>> format_part(62, 64, min_cell=10)
    '>54'
    >>> format_part(50, 64, min_cell=10)
    '50'
    >>> format_part(0, 4, min_cell=10)
    '<10'
    """
    count, total = int(count), int(total)
    if count > total:  # not a part of this total (e.g. a different population): primary only
        return format_count(count, min_cell)
    if 0 < total < min_cell:  # the whole group is a small cell: so is every part of it
        return f"<{min_cell}"
    if 0 < count < min_cell:
        return f"<{min_cell}"
    if 0 < total - count < min_cell:
        return f">{total - min_cell}"
    return str(count)


def is_suppressed(count: int, total: int | Iterable[int | None] | None, min_cell: int
                  ) -> bool:
    """Whether :func:`format_count` with ``total`` (None, one or several) hides ``count``.

    Parameters
    ----------
    count : int
        The count of people.
    total : int or iterable of int, optional
        The total(s) it is part of.
    min_cell : int
        The smallest count published as a number.

    Returns
    -------
    bool
        True when the count is not published as its number.

    Examples
    --------
    >>> is_suppressed(62, 64, min_cell=10)
    True
    >>> is_suppressed(50, 64, min_cell=10)
    False
    >>> is_suppressed(5, None, min_cell=10)
    True
    """
    return format_count(count, min_cell, total) != str(int(count))


def publish_rate(count: int, denominator: int, min_cell: int, total: int | None = None
                 ) -> float:
    """``count / denominator`` as published, or NaN when it would reveal a hidden count.

    A rate is suppressed when the count is hidden within its denominator (primary or
    complementary), when the denominator is itself hidden (a small cell, or, given ``total``, the
    complement of a small cell in it), or when the denominator is 0: the rate and the published
    count give the denominator back, and vice versa. A rate of 0 reveals nothing and is kept.

    Parameters
    ----------
    count : int
        The numerator (a count of people).
    denominator : int
        The count it is a part of.
    min_cell : int
        The smallest count published as a number.
    total : int, optional
        The total the denominator is part of.

    Returns
    -------
    float
        The rate, or NaN when it is suppressed.

    Examples
    --------
    >>> publish_rate(22, 40, min_cell=10)
    0.55
    >>> publish_rate(22, 62, min_cell=10, total=64)
    nan
    >>> publish_rate(3, 40, min_cell=10)
    nan
    >>> publish_rate(0, 5, min_cell=10)
    0.0
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
    the small cells (1 to min_cell - 1) and the counts whose complement is one.

    Parameters
    ----------
    total : int
        The total the counts are part of.
    min_cell : int
        The smallest count published as a number.

    Returns
    -------
    set of int
        The counts that must not be published as numbers.

    Examples
    --------
    >>> sorted(hidden_counts(14, min_cell=5))
    [1, 2, 3, 4, 10, 11, 12, 13]
    """
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

    Parameters
    ----------
    frame : DataFrame
        The table to publish.
    min_cell : int
        The smallest count published as a number.
    totals : StudyTotals
        The study's published totals.
    columns : dict
        ``{column: unit}`` for the columns that hold counts of people (unit "clients" or
        "therapists"); default :data:`PEOPLE_COUNT_COLUMNS`.
    outcome_column : str
        The column naming each row's outcome (its episodes are the innermost total).

    Returns
    -------
    DataFrame
        A copy of ``frame`` with the count columns as published text.

    Examples
    --------
    >>> table = pd.DataFrame({"outcome": ["phq9", "gad7"], "n_clients": [58, 7],
    ...                       "n_therapists": [12, 3]})
    >>> totals = StudyTotals(clients=64, therapists=12, episodes={"phq9": 60, "gad7": 50})
    >>> publish_counts(table, min_cell=5, totals=totals)
      outcome n_clients n_therapists
    0    phq9       >55           12
    1    gad7         7           <5
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
