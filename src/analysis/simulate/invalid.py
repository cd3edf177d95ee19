"""Invalid rows for the cleaning stage: out-of-range values, exact and conflicting duplicates.

Rates are :data:`~analysis.simulate.parameters.INVALID_RATES`; the out-of-range values lie
outside the registry's item ranges. Each kind is counted in ``truth["invalid_rows"]``.
"""

from __future__ import annotations

import numpy as np

from analysis.simulate.parameters import ALLIANCE, INVALID_RATES, WAI_BAD_VALUES


def invalid_counts(n_rows: int, enabled: bool) -> tuple[int, int, int]:
    """Out-of-range, conflicting-duplicate and exact-duplicate rows for a file of ``n_rows``."""
    if not enabled or n_rows == 0:
        return 0, 0, 0
    return (
        round(INVALID_RATES["out_of_range"] * n_rows),
        max(1, round(INVALID_RATES["conflicting_duplicate"] * n_rows)),
        round(INVALID_RATES["exact_duplicate"] * n_rows),
    )


def pick_invalid_rows(
    rng: np.random.Generator, answered: np.ndarray, enabled: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint row sets: out-of-range and conflicting rows (among rows with answers) and exact
    duplicates (among the rest)."""
    n_out, n_conflict, n_duplicate = invalid_counts(answered.size, enabled)
    candidates = rng.permutation(np.flatnonzero(answered))
    out_of_range = np.sort(candidates[:n_out])
    conflict = np.sort(candidates[n_out : n_out + n_conflict])
    available = np.ones(answered.size, dtype=bool)
    available[out_of_range] = False
    available[conflict] = False
    rest = np.flatnonzero(available)
    duplicate = np.sort(rng.choice(rest, size=min(n_duplicate, rest.size), replace=False))
    return out_of_range, conflict, duplicate


def answered_position(rng: np.random.Generator, items: np.ndarray) -> np.ndarray:
    """For each row, a random column holding an answer (rows must have one)."""
    keys = rng.random(items.shape)
    keys[np.isnan(items)] = -1.0
    return keys.argmax(axis=1)


def altered_copy(
    rng: np.random.Generator, items: np.ndarray, low: float, high: float
) -> np.ndarray:
    """A copy of ``items`` with one or two answered values moved by one step within range.

    The conflicting duplicate of a row: same client and session, different answers.
    """
    altered = items.copy()
    keys = rng.random(items.shape)
    keys[np.isnan(items)] = -1.0
    order = np.argsort(-keys, axis=1)
    rows = np.arange(items.shape[0])
    second_ok = (keys[rows, order[:, 1]] >= 0) & (rng.random(rows.size) < 0.5)
    for position, use in ((order[:, 0], np.ones(rows.size, bool)), (order[:, 1], second_ok)):
        current = altered[rows[use], position[use]]
        step = rng.choice([-1.0, 1.0], size=current.size)
        moved = current + step
        moved = np.where((moved < low) | (moved > high), current - step, moved)
        altered[rows[use], position[use]] = moved
    return altered


def choose_session_invalid(
    rng: np.random.Generator, wai_items: np.ndarray, enabled: bool
) -> dict[str, np.ndarray]:
    """Which session rows get an out-of-range WAI-SR value, a conflicting copy or an exact copy."""
    answered = ~np.isnan(wai_items).all(axis=1)
    out_of_range, conflict, duplicate = pick_invalid_rows(rng, answered, enabled)
    return {
        "out_of_range_rows": out_of_range,
        "out_of_range_columns": answered_position(rng, wai_items[out_of_range]),
        "out_of_range_values": rng.choice(WAI_BAD_VALUES, size=out_of_range.size).astype(float),
        "conflict_rows": conflict,
        "conflict_items": altered_copy(rng, wai_items[conflict], ALLIANCE.item_min,
                                       ALLIANCE.item_max),
        "duplicate_rows": duplicate,
        "unusable_rows": np.concatenate([out_of_range, conflict]),
    }
