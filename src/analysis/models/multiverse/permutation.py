"""The fixed-variance GLS refit of the multiverse, and the retired within-client permutation null.

:class:`FixedVarianceGls` is the GLS of a fitted random-intercept model with its variance
components held fixed (Henderson's mixed-model equations; at the observed data it reproduces
REML's fixed-effect estimate and standard error exactly), which the bootstrap joint test
(:mod:`analysis.models.multiverse.bootstrap`) uses to re-estimate the multilevel specifications on
each resample, on a specification's rows
(:class:`~analysis.models.multiverse.design.Design`).

The permutation null (:func:`permutation_null`: each client's alliance shuffled over their
sessions) is no longer the joint test: it treats sessions as exchangeable and breaks alliance's
correlation with session and with the current symptom score, and with alliance trending over
sessions it rejected 7.0% at nominal 5%. It is kept only for comparison; the joint test is
:mod:`analysis.models.multiverse.bootstrap`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.mixed.specs import split_formula
from analysis.models.multiverse.design import BETWEEN_TERM, Block, Design

PERMUTATION_METHODS = ("fixed_variance", "refit")


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    # Steele, Lea & Flood (2014): a fast, well-mixing 64-bit finaliser (numpy wraps on overflow).
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_hashes(client_ids: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each (client id, session): the identity a shuffle key is made from."""
    clients = pd.util.hash_array(np.asarray(client_ids, dtype=object))
    return _splitmix64(clients ^ _splitmix64(np.asarray(sessions, dtype=np.uint64)))


def permutation_keys(row_hash: np.ndarray, seed: int, permutation: int) -> np.ndarray:
    """Uniform [0, 1) shuffle keys of permutation ``permutation`` under ``seed``, per row.

    A function of (seed, permutation, client id, session) only, so the same client's sessions
    are shuffled the same way in every data variant and every job.
    """
    salt = _splitmix64(np.array([seed & 0xFFFFFFFF, permutation], dtype=np.uint64))
    mixed = _splitmix64(row_hash ^ salt[0] ^ (salt[1] << np.uint64(1)))
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def permute_within_groups(values: np.ndarray, codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``values`` with each group's finite values shuffled over the group's finite positions.

    The rows must be sorted by group (as ``derived.parquet`` is by client). The shuffle orders
    each group's positions by ``keys``: uniform keys give a uniform random permutation.
    """
    finite = np.flatnonzero(np.isfinite(values))
    # one sort on group + key (keys lie in [0, 1)); stable, so equal keys keep their order
    order = np.argsort(codes[finite] + keys[finite], kind="stable")
    shuffled = values.copy()
    shuffled[finite[order]] = values[finite]
    return shuffled


# ---------------------------------------------------------------------------------------------
# The permutation null


class FixedVarianceGls:
    """GLS of one fitted specification with its variance components held fixed.

    Henderson's mixed-model equations for random intercepts ``Z u`` with ``u ~ N(0, s2_g I)``
    per grouping factor: with ``M = Z'Z + diag(s2 / s2_g)`` the estimate is
    ``beta = S^-1 (X'y - X'Z M^-1 Z'y)``, ``S = X'X - X'Z M^-1 Z'X``, and its covariance
    ``s2 S^-1``. ``Z'`` times a column is a group-wise sum (``numpy.bincount``); ``M`` is solved
    by block elimination: the factor with the most levels (clients) has a diagonal block, so
    only the Schur complement of the other factors (therapists: a small dense matrix) is
    factorised. The columns that do not change under permutation are reduced once.
    """

    #: Largest Schur complement solved densely (other factors' levels); larger ones use SuperLU.
    DENSE_LIMIT = 4000

    def __init__(self, design: Design, final: Any, data: pd.DataFrame) -> None:
        from analysis.models.mixed.engines import INTERCEPT, parse_random_part

        response, _, random_terms = parse_random_part(final.formula)
        if any(term.slopes or not term.intercept for term in random_terms):
            raise RuntimeError(f"multiverse {design.spec.id}: only random intercepts expected")
        random = final.random
        residual = float(random.loc[random["group"] == "Residual", "variance"].iloc[0])
        self.residual = residual
        self.terms = list(final.fixed["term"])
        self.dynamic = [name for name in (design.term, BETWEEN_TERM) if name in self.terms]
        self.static_names = [name for name in self.terms if name not in self.dynamic]
        n = len(data)
        self.static = np.column_stack([np.ones(n) if name == INTERCEPT
                                       else data[name].to_numpy(dtype=float)
                                       for name in self.static_names])
        self.y = data[response].to_numpy(dtype=float)
        groups = []
        for term in random_terms:
            variance = float(random.loc[(random["group"] == term.group)
                                        & (random["term2"].fillna("") == ""), "variance"].iloc[0])
            if not variance > 0:
                continue  # a variance at 0: that random effect is 0 and drops out
            codes, uniques = pd.factorize(data[term.group].astype(str))
            groups.append((codes.astype(np.int32), len(uniques), residual / variance))
        groups.sort(key=lambda group: -group[1])  # the factor with most levels first
        self.groups = groups
        if groups:
            self._factorise()
            zt_static, zt_y = self._zt(self.static), self._zt(self.y[:, None])
            self.minv_zt_static = self._solve(zt_static)
            self.minv_zt_y = self._solve(zt_y)
            self.ss = (self.static.T @ self.static
                       - self._dot(zt_static, self.minv_zt_static))
            self.sy = (self.static.T @ self.y - self._dot(zt_static, self.minv_zt_y)[:, 0])
        else:
            self.ss = self.static.T @ self.static
            self.sy = self.static.T @ self.y
        self.position = self.terms.index(design.term)

    # -- Z'X and M^-1 by blocks ----------------------------------------------------------------

    def _zt(self, columns: np.ndarray) -> list[np.ndarray]:
        """Z' columns, one (levels x k) block per grouping factor."""
        return [np.column_stack([np.bincount(codes, weights=columns[:, j], minlength=levels)
                                 for j in range(columns.shape[1])])
                for codes, levels, _ in self.groups]

    @staticmethod
    def _dot(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
        return sum(a.T @ b for a, b in zip(left, right))

    def _factorise(self) -> None:
        from scipy import sparse
        from scipy.linalg import cho_factor
        from scipy.sparse.linalg import splu

        (codes, levels, ratio), *others = self.groups
        self.diagonal = np.bincount(codes, minlength=levels) + ratio
        self.cross = None
        if not others:
            return
        offsets = np.cumsum([0] + [group[1] for group in others])
        rest = int(offsets[-1])
        other_codes = [group[0] + offsets[i] for i, group in enumerate(others)]
        ones = np.ones(len(codes))
        # B = Z_1' Z_rest (levels x rest); C = Z_rest' Z_rest + diag(ratios)
        self.cross = sparse.csr_matrix(
            (np.concatenate([ones] * len(others)),
             (np.concatenate([codes] * len(others)), np.concatenate(other_codes))),
            shape=(levels, rest))
        pairs_i = np.concatenate([a for a in other_codes for _ in other_codes])
        pairs_j = np.concatenate([b for _ in other_codes for b in other_codes])
        ratios = np.concatenate([np.full(group[1], group[2]) for group in others])
        rest_block = (sparse.csr_matrix((np.ones(len(pairs_i)), (pairs_i, pairs_j)),
                                        shape=(rest, rest)) + sparse.diags(ratios))
        scaled = sparse.diags(1.0 / self.diagonal) @ self.cross
        schur = rest_block - self.cross.T @ scaled
        if rest <= self.DENSE_LIMIT:
            self.schur = ("dense", cho_factor(schur.toarray()))
        else:
            self.schur = ("sparse", splu(sparse.csc_matrix(schur)))

    def _solve(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """M^-1 applied to the stacked right-hand sides ``blocks`` (one per factor)."""
        from scipy.linalg import cho_solve

        first = blocks[0] / self.diagonal[:, None]
        if self.cross is None:
            return [first]
        rest = np.vstack(blocks[1:]) - self.cross.T @ first
        kind, factor = self.schur
        rest = cho_solve(factor, rest) if kind == "dense" else factor.solve(rest)
        first = first - (self.cross @ rest) / self.diagonal[:, None]
        sizes = np.cumsum([group[1] for group in self.groups[1:]])[:-1]
        return [first, *np.split(rest, sizes)]

    # -- one permutation -----------------------------------------------------------------------

    def estimate(self, dynamic: np.ndarray) -> tuple[float, float]:
        """The term's estimate and standard error with the permuted columns ``dynamic``."""
        dd = dynamic.T @ dynamic
        ds = dynamic.T @ self.static
        dy = dynamic.T @ self.y
        if self.groups:
            zt_dynamic = self._zt(dynamic)
            minv = self._solve(zt_dynamic)
            dd = dd - self._dot(zt_dynamic, minv)
            ds = ds - self._dot(zt_dynamic, self.minv_zt_static)
            dy = dy - self._dot(zt_dynamic, self.minv_zt_y)[:, 0]
        order = self.dynamic + self.static_names
        lhs = np.block([[dd, ds], [ds.T, self.ss]])
        rhs = np.concatenate([dy, self.sy])
        try:
            inverse = np.linalg.inv(lhs)
        except np.linalg.LinAlgError:
            return float("nan"), float("nan")
        beta = inverse @ rhs
        where = order.index(self.terms[self.position])
        return float(beta[where]), float(math.sqrt(max(self.residual * inverse[where, where],
                                                       0.0)))


@dataclass
class _NullState:
    """What the permutation null of one fitted specification needs (and no more)."""

    design: Design
    formula: str
    df: float
    sd_y: float
    method: str
    solver: FixedVarianceGls | None = None
    data: pd.DataFrame | None = None  # the model frame, kept only for refits


def null_state(design: Design, final: Any, data: pd.DataFrame,
               method: str = "fixed_variance") -> _NullState:
    """The permutation state of a fitted specification (its model frame dropped when possible).

    Parameters
    ----------
    design : Design
        The specification's rows and how its alliance columns are built.
    final : EngineFit
        Its reported fit (final formula, variance components, the term's df).
    data : DataFrame
        Its model frame.
    method : {"fixed_variance", "refit"}
        See :func:`permutation_null`.
    """
    if method not in PERMUTATION_METHODS:
        raise DataError(f"multiverse.permutation_method must be one of {PERMUTATION_METHODS}")
    response = split_formula(final.formula)[0]
    row = final.fixed.loc[final.fixed["term"] == design.term].iloc[0]
    state = _NullState(design, final.formula, float(row["df"]),
                       float(data[response].std()), method)
    if method == "fixed_variance":
        state.solver = FixedVarianceGls(design, final, data)
        design.data = design.data.iloc[0:0]  # the static columns now live in the solver
    else:
        state.data = data
    return state


def permutation_null(block: Block, states: Sequence[Any], permutations: int, seed: int,
                     method: str | None = None) -> list[dict[str, Any]]:
    """The permuted estimates of the specifications of one data block.

    Parameters
    ----------
    block : Block
        The outcome's rows of one data variant.
    states : sequence
        Per specification its :func:`null_state`, or the ``(design, final fit, model frame)``
        that :func:`~analysis.models.multiverse.fit.fit_specification` returns (turned into one
        with ``method``).
    permutations : int
        Number of permutations (each the same shuffle in every block and job).
    seed : int
        ``study.seed``.
    method : {"fixed_variance", "refit"}, optional
        For states given as tuples: GLS with the observed variance components (default), or a
        REML refit of the final formula.

    Returns
    -------
    list of dict
        Per specification: ``method``, ``df`` (the observed fit's), and per permutation
        ``estimate``, ``se``, ``std_estimate`` and, for ``refit``, ``dfs``.
    """
    from analysis.models.mixed.engines import get_engine

    states = [state if isinstance(state, _NullState)
              else null_state(*state, method or "fixed_variance") for state in states]
    needs_detrended = any(state.design.spec.detrended
                          and state.design.spec.centring == "all_sessions" for state in states)
    outputs = [{"method": state.method, "df": state.df, "estimate": [], "se": [],
                "std_estimate": [], "dfs": []} for state in states]
    engine = get_engine("mixedlm") if any(state.solver is None for state in states) else None
    for permutation in range(permutations):
        columns = block.permuted(seed, permutation, needs_detrended)
        for state, output in zip(states, outputs):
            design = state.design
            alliance = design.alliance_columns(columns)
            if state.solver is not None:
                dynamic = np.column_stack([alliance[name] for name in state.solver.dynamic])
                estimate, se = state.solver.estimate(dynamic)
                df = state.df
            else:
                permuted = state.data.copy()
                for name, values in alliance.items():
                    permuted[name] = values
                fit = engine.fit(state.formula, permuted, reml=True)
                row = fit.fixed.loc[fit.fixed["term"] == design.term].iloc[0]
                estimate, se, df = float(row["estimate"]), float(row["se"]), float(row["df"])
            sd_x = float(np.nanstd(alliance[design.term], ddof=1))
            output["estimate"].append(estimate)
            output["se"].append(se)
            output["dfs"].append(df)
            output["std_estimate"].append(estimate * sd_x / state.sd_y
                                          if state.sd_y else float("nan"))
    for output, state in zip(outputs, states):
        if state.method == "fixed_variance":
            output.pop("dfs")
    return outputs


__all__ = [
    "PERMUTATION_METHODS",
    "FixedVarianceGls",
    "null_state",
    "permutation_keys",
    "permutation_null",
    "permute_within_groups",
    "row_hashes",
]
