"""What the multiverse's fits, bootstrap and permutation share: one outcome's rows and one
specification's model rows.

:class:`Block` holds one outcome's rows of a data variant (:mod:`analysis.models.multiverse.data`)
with the client codes every resample and permutation needs; :class:`Design` holds the rows and
fixed columns of one specification and builds its alliance columns (centred over all sessions or
over the model's rows, detrended or not) from the block's observed or permuted ones, with the
vectorised per-client helpers :func:`group_means` and :func:`group_detrend`. The fits are in
:mod:`analysis.models.multiverse.fit`, which selects a specification's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.mixed.specs import CLIENT, ResolvedFit
from analysis.models.multiverse.specifications import Specification

#: The term of M2 whose estimate the multiverse collects, and its detrended version.
TERM = "alliance_within"
DETRENDED_TERM = "alliance_within_detrended"
#: The between-client alliance term of M2 (a permutation leaves it as it is, but the
#: specification's model rows may recentre it).
BETWEEN_TERM = "alliance_between_c"
#: Clients need this many rows for a per-client trend (as in analysis.derive).
MIN_DETREND_ROWS = 3


# ---------------------------------------------------------------------------------------------
# Group-wise helpers (numpy; the permutation loop calls them many times)


def group_means(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """The mean of the finite ``values`` of each group (NaN for a group without one)."""
    finite = np.isfinite(values)
    totals = np.bincount(codes[finite], weights=values[finite], minlength=n_groups)
    counts = np.bincount(codes[finite], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts


def group_detrend(codes: np.ndarray, session: np.ndarray, values: np.ndarray, n_groups: int,
                  min_rows: int = MIN_DETREND_ROWS) -> np.ndarray:
    """Residuals of a per-group OLS of ``values`` on ``session`` (NaN with < ``min_rows``).

    The same quantity as the derived ``alliance_within_detrended`` (docs/methods.md section 3;
    :func:`analysis.derive.derive_analysis_frame`), vectorised with ``numpy.bincount`` for the
    permutation loop; tests/test_multiverse.py checks that the two agree.
    """
    finite = np.isfinite(values)
    groups = codes[finite]
    counts = np.bincount(groups, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        session_mean = np.bincount(groups, weights=session[finite], minlength=n_groups) / counts
        value_mean = np.bincount(groups, weights=values[finite], minlength=n_groups) / counts
        ds = session - session_mean[codes]
        dv = values - value_mean[codes]
        sxx = np.bincount(groups, weights=(ds * ds)[finite], minlength=n_groups)
        sxy = np.bincount(groups, weights=(ds * dv)[finite], minlength=n_groups)
        slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    residual = dv - slope[codes] * ds
    residual[~finite | (counts[codes] < min_rows)] = np.nan
    return residual


@dataclass
class Block:
    """One outcome's rows of one data variant, with what every permutation needs."""

    frame: pd.DataFrame
    codes: np.ndarray          # client code per row (the frame is sorted by client, session)
    n_clients: int
    session: np.ndarray
    alliance: np.ndarray       # the observed alliance score (NaN where none)

    @classmethod
    def of(cls, variant: pd.DataFrame, outcome: str) -> "Block":
        frame = variant.loc[variant["outcome"] == outcome].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"multiverse data: no rows for outcome {outcome!r}")
        codes, uniques = pd.factorize(frame[CLIENT])
        return cls(frame, codes.astype(np.int64), len(uniques),
                   frame["session"].to_numpy(dtype=float),
                   frame["alliance_score"].to_numpy(dtype=float, na_value=np.nan))

    def observed(self) -> dict[str, np.ndarray]:
        """The derived alliance columns (as ``derived.parquet`` holds them)."""
        return {name: self.frame[name].to_numpy(dtype=float, na_value=np.nan)
                for name in (TERM, BETWEEN_TERM, DETRENDED_TERM)}


@dataclass
class Design:
    """The rows and fixed columns of one specification, and how its alliance columns are built."""

    spec: Specification
    resolved: ResolvedFit
    rows: np.ndarray                  # positions in the block
    data: pd.DataFrame                # the model frame without the alliance columns
    accounting: dict[str, Any]
    term: str
    codes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    n_clients: int = 0
    session: np.ndarray = field(default_factory=lambda: np.empty(0))

    def alliance_columns(self, block_columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The specification's alliance columns from the block's (observed or permuted) ones."""
        within_source = DETRENDED_TERM if (self.spec.detrended
                                           and self.spec.centring == "all_sessions") else TERM
        within = block_columns[within_source][self.rows]
        between = block_columns[BETWEEN_TERM][self.rows]
        if self.spec.centring == "model_rows":
            # The split over the model's rows: the client mean of the all-session within part
            # is the shift of the client's mean over these rows (constants cancel).
            shift = group_means(self.codes, within, self.n_clients)
            within = within - shift[self.codes]
            client_between = group_means(self.codes, between + shift[self.codes], self.n_clients)
            between = client_between[self.codes] - np.nanmean(client_between)
            if self.spec.detrended:
                within = group_detrend(self.codes, self.session, within, self.n_clients)
        return {self.term: within, BETWEEN_TERM: between}

    def frame(self, block_columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """The model frame with the alliance columns built from ``block_columns``."""
        data = self.data.copy()
        for name, values in self.alliance_columns(block_columns).items():
            data[name] = values
        return data[self.columns]

    @property
    def columns(self) -> list[str]:
        from analysis.models.mixed.specs import formula_variables
        return formula_variables(self.resolved.formula or "")


__all__ = [
    "BETWEEN_TERM",
    "DETRENDED_TERM",
    "MIN_DETREND_ROWS",
    "TERM",
    "Block",
    "Design",
    "group_detrend",
    "group_means",
]
