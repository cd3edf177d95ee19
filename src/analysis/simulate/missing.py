"""Missing items and missing questionnaires, at the rates of :data:`MISSING_RATES`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from analysis.simulate.parameters import MISSING_RATES


def draw_missing_items(
    rng: np.random.Generator,
    n_rows: int,
    n_items: int,
    subscales: Mapping[str, Sequence[int]] | None = None,
) -> np.ndarray:
    """Boolean mask (rows x items) of missing items at the rates of :data:`MISSING_RATES`.

    With ``subscales`` (the WAI-SR's, from the registry) one or two missing items fall in
    different subscales and three or more include two of one subscale. The registry's WAI-SR
    rule (a subscale may miss one of its items) then scores exactly the administrations with at
    most two missing items, as would a stricter rule of at most two missing items in all: every
    scoring rule a sensitivity analysis may use agrees on which alliance is observed.
    """
    whole = rng.random(n_rows) < MISSING_RATES["whole_questionnaire"]
    draw = rng.random(n_rows)
    one = MISSING_RATES["one_item"]
    two = one + MISSING_RATES["two_items"]
    many = two + MISSING_RATES["three_or_more_items"]
    n_missing = np.select([draw < one, draw < two, draw < many], [1, 2, 3], default=0)
    most = max(3, n_items // 2)
    n_missing = np.where(n_missing == 3, rng.integers(3, most + 1, n_rows), n_missing)
    n_missing = np.where(whole, n_items, n_missing)

    mask = np.zeros((n_rows, n_items), dtype=bool)
    mask[whole] = True
    partial = (n_missing > 0) & (n_missing < n_items)
    mask[partial] = random_subsets(rng, n_missing[partial], n_items)
    if subscales:
        membership = np.zeros((n_items, len(subscales)))
        for column, items in enumerate(subscales.values()):
            membership[np.asarray(items) - 1, column] = 1
        # Redraw the rows that break the rule; each pass fixes most of them.
        while True:
            rows = np.flatnonzero(partial)
            most_in_one = (mask[rows].astype(float) @ membership).max(axis=1)
            bad = rows[np.where(n_missing[rows] <= 2, most_in_one > 1, most_in_one < 2)]
            if bad.size == 0:
                break
            mask[bad] = random_subsets(rng, n_missing[bad], n_items)
    return mask


def random_subsets(rng: np.random.Generator, sizes: np.ndarray, n_items: int) -> np.ndarray:
    """Boolean mask (len(sizes) x n_items) with ``sizes[r]`` True items in row r, at random."""
    ranks = rng.random((sizes.size, n_items)).argsort(axis=1).argsort(axis=1)
    return ranks < sizes[:, None]
