"""Privacy: pseudonyms for identifiers and small-cell suppression for published counts.

Clinical data is sensitive. Identifiers are replaced at ingest by keyed hashes (HMAC-SHA256) under
a secret key from an environment variable, so the same client gets the same pseudonym across runs
and files, but nobody without the key can link a pseudonym back. Published tables and figures
show counts of people below a threshold as "<N".
"""

from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np
import pandas as pd

from analysis.errors import ConfigError

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


def resolve_key(privacy_config: dict, is_demo_data: bool) -> str:
    """The pseudonymisation key: from the environment variable named in config.

    Without the variable, the demo data falls back to the documented demo key (if
    ``privacy.allow_demo_key`` is true); any other data stops with a message saying what to set.
    """
    variable = privacy_config.get("key_env", "ALLIANCE_PSEUDONYM_KEY")
    key = os.environ.get(variable, "")
    if key:
        return key
    if is_demo_data and privacy_config.get("allow_demo_key", False):
        return DEMO_KEY
    raise ConfigError(
        f"config key privacy.key_env: the environment variable {variable} is not set. "
        f"Identifiers are pseudonymised with a secret key; set one before running, e.g. "
        f"`export {variable}=$(python -c 'import secrets; print(secrets.token_hex(32))')`, "
        f"and keep it safe (the same key gives the same pseudonyms next time)."
    )


def format_count(n: int, min_cell: int) -> str:
    """A count of people as published: ``"<min_cell"`` when 0 < n < min_cell, else the number."""
    n = int(n)
    if 0 < n < min_cell:
        return f"<{min_cell}"
    return str(n)


def suppress_counts(counts: pd.Series, min_cell: int) -> pd.Series:
    """Format a column of counts, with secondary suppression.

    Primary: each count below ``min_cell`` (and above 0) becomes "<min_cell". Secondary: when
    exactly one cell of the column is suppressed, a published total would reveal it, so the next
    smallest non-zero cell is suppressed too.
    """
    values = counts.astype("int64")
    suppressed = (values > 0) & (values < min_cell)
    if suppressed.sum() == 1 and len(values) > 1:
        candidates = values[(~suppressed) & (values > 0)]
        if not candidates.empty:
            suppressed.loc[candidates.sort_values(kind="stable").index[0]] = True
    return values.astype(str).where(~suppressed, other=_masked_label(values, suppressed, min_cell))


def _masked_label(values: pd.Series, suppressed: pd.Series, min_cell: int) -> pd.Series:
    # A secondarily suppressed cell may be >= min_cell: publishing "<10" for it would be false,
    # so it is shown as "suppressed".
    labels = pd.Series(f"<{min_cell}", index=values.index, dtype="object")
    labels[suppressed & (values >= min_cell)] = "suppressed"
    return labels.astype(str)
