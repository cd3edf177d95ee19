"""Fitting the multiverse: data variants, one M2 fit per specification, the permutation null.

The plan (the choices and their combinations) is :mod:`analysis.models.multiverse`. This module
does the work, in three stages that match the pipeline's rules:

1. :func:`analysis.models.multiverse_data.prepare_data_variant` (one job per prorating option,
   in its own light module so that a change to the model code does not rescore the data): the
   administrations are scored by the registry's rules (``lenient``) or with prorating switched
   off (``strict``) and derived once per lag gap.
2. :func:`fit_specification` (each specification in a job; :func:`fit_specifications` runs a
   job's list): the rows of M2 for the specification's outcome are selected with
   :func:`analysis.models.fitting.select_model_rows` (so the primary specification fits exactly
   the rows of the pipeline's M2), the person-mean split is recomputed on those rows when
   centring is ``model_rows`` (and the within part detrended on them when detrended), and M2 is
   fitted under the convergence protocol (:func:`analysis.models.protocol.fit_with_fallback`).
   With ``permutations`` > 0 the job also computes the specification's permutation null
   (:func:`permutation_null`).
3. :func:`combine_multiverse` and :func:`summarise_multiverse`: ``multiverse.csv`` (one row per
   specification) and the summary with the joint test of Simonsohn, Simmons & Nelson (2020).

The permutation test. Under the null hypothesis that a client's alliance at a session carries
no information about the next session's symptoms beyond the client's mean alliance, the
client's alliance scores are exchangeable over their sessions. Each permutation shuffles every
client's observed alliance scores over that client's sessions (the between-client part is
unchanged), the within-client variables are recomputed from the shuffled scores, and every
specification is estimated on the shuffled data; the observed statistics over all
specifications are compared with their permutation distribution. The shuffle of permutation
``k`` is a function of (``study.seed``, ``k``, client id, session) only (:func:`permutation_keys`),
so every specification, in whichever job, sees the same shuffled data. p-values are
``(1 + #{null >= observed}) / (1 + permutations)`` (Phipson & Smyth 2010).

Refitting every specification by REML for every permutation is exact but infeasible at scale
(128 specifications x 200 permutations = 25,600 mixed-model fits: about an hour on the demo's
400 clients, about 15 hours at 100,000 clients). The default, ``fixed_variance``, re-estimates
each permuted specification by generalised least squares with the variance components of its
observed fit held fixed (Henderson's mixed-model equations; the GLS estimate given the variance
components is what REML reports for the fixed effects, so at the observed data it reproduces the
fitted estimate and standard error exactly). Permuting a within-client covariate leaves the
variance components nearly unchanged, so the null estimates differ from refitted ones by a small
fraction of their spread (tests/test_multiverse.py measures it); df are the observed fit's
Satterthwaite df. ``refit`` (config ``multiverse.permutation_method``) refits by REML with the
observed fit's final formula, for checks on small data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.multiverse import CHOICE_NAMES, Specification
from analysis.models.multiverse_data import NEXT_PREFIX
from analysis.models.records import json_ready
from analysis.models.specs import (
    CLIENT,
    THERAPIST,
    ResolvedFit,
    join_formula,
    split_formula,
    substitute_terms,
)
from analysis.settings import MultiverseFitSettings, MultiverseSummarySettings

log = logging.getLogger(__name__)

#: The term of M2 whose estimate the multiverse collects, and its detrended version.
TERM = "alliance_within"
DETRENDED_TERM = "alliance_within_detrended"
BETWEEN_TERM = "alliance_between_c"
#: Clients need this many rows for a per-client trend (as in analysis.derive).
MIN_DETREND_ROWS = 3
#: Columns of ``multiverse.csv`` (after the choice columns).
RESULT_COLUMNS = [
    "status", "reason", "term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
    "std_estimate", "significant_expected", "significant_opposite", "n_obs", "n_clients",
    "n_therapists", "converged",
    "singular", "simplified", "fallback_steps", "formula",
]
STATUS_FITTED = "fitted"
STATUS_NOT_ESTIMABLE = "not_estimable"
PERMUTATION_METHODS = ("fixed_variance", "refit")
#: Memory the permutation states of one group of specifications may take (see
#: fit_specifications); measured about 90 bytes per row of the data block and specification
#: (GLS arrays, row positions), taken as 200 for the model frame while a fit is running.
PERMUTATION_MEMORY_MB = 1024
_STATE_BYTES_PER_ROW = 200


# ---------------------------------------------------------------------------------------------
# 2. One specification


def specification_fit(m2: ResolvedFit, spec: Specification, completers_min_sessions: int
                      ) -> ResolvedFit:
    """M2 as the specification asks: detrended term, random part, completers.

    Parameters
    ----------
    m2 : ResolvedFit
        The primary-analysis M2 of the specification's outcome (from the study's plan).
    spec : Specification
        The options.
    completers_min_sessions : int
        ``analysis.completers_min_sessions`` (used when ``sample`` is ``completers``).

    Returns
    -------
    ResolvedFit
        ``analysis`` is the specification's id; ``primary_term`` the alliance term it reports.
    """
    formula = m2.formula or ""
    term = TERM
    if spec.detrended:
        formula = substitute_terms(formula, ((TERM, DETRENDED_TERM),))
        term = DETRENDED_TERM
    if spec.random == "minimal":
        response, fixed, random = split_formula(formula)
        formula = join_formula(response, fixed,
                               [(expr, group) for expr, group in random if group != THERAPIST])
    return dataclasses.replace(
        m2, analysis=spec.id, formula=formula, primary_term=term, terms_of_interest=(term,),
        tested_terms=(), completers_min_sessions=(completers_min_sessions
                                                  if spec.sample == "completers" else None),
    )


@dataclass
class _Block:
    """One outcome's rows of one data variant, with what every permutation needs."""

    frame: pd.DataFrame
    codes: np.ndarray          # client code per row (the frame is sorted by client, session)
    n_clients: int
    session: np.ndarray
    alliance: np.ndarray       # the observed alliance score (NaN where none)
    row_hash: np.ndarray | None = None

    @classmethod
    def of(cls, variant: pd.DataFrame, outcome: str) -> "_Block":
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

    def permuted(self, seed: int, permutation: int, detrended: bool) -> dict[str, np.ndarray]:
        """The alliance columns after permutation ``permutation`` of each client's scores."""
        if self.row_hash is None:
            self.row_hash = row_hashes(self.frame[CLIENT].to_numpy(dtype=object),
                                       self.frame["session"].to_numpy(dtype=np.int64))
        keys = permutation_keys(self.row_hash, seed, permutation)
        shuffled = permute_within_groups(self.alliance, self.codes, keys)
        means = group_means(self.codes, self.alliance, self.n_clients)
        columns = {TERM: shuffled - means[self.codes],
                   BETWEEN_TERM: self.frame[BETWEEN_TERM].to_numpy(dtype=float, na_value=np.nan)}
        if detrended:
            columns[DETRENDED_TERM] = group_detrend(self.codes, self.session, shuffled,
                                                    self.n_clients)
        return columns


@dataclass
class _Design:
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
        from analysis.models.specs import formula_variables
        return formula_variables(self.resolved.formula or "")


def _design(block: _Block, spec: Specification, resolved: ResolvedFit) -> _Design:
    """Select the specification's rows (as the pipeline's M2 selects them)."""
    from analysis.models.fitting import select_model_rows

    frame = block.frame.rename(columns={f"{NEXT_PREFIX}{spec.lag_gap}": "symptom_next"})
    if "symptom_next" not in frame:
        raise DataError(f"multiverse data: no next symptom score for lag gap {spec.lag_gap} "
                        "(the data variant was derived for other multiverse.choices.lag_gap)")
    term = resolved.primary_term or TERM
    # Centring over the model's rows selects the rows with the raw within part (the detrended
    # part of all sessions has its own missing values) and detrends on those rows afterwards.
    selector = (dataclasses.replace(resolved, formula=substitute_terms(
        resolved.formula or "", ((DETRENDED_TERM, TERM),))) if spec.centring == "model_rows"
        else resolved)
    data, accounting = select_model_rows(frame, selector)
    variables = list(data.columns)
    keep = frame[variables].notna().all(axis=1).to_numpy(copy=True)
    if selector.completers_min_sessions is not None:
        keep = keep & (frame["n_sessions"] >= selector.completers_min_sessions).to_numpy()
    rows = np.flatnonzero(keep)
    # The positions must give exactly the rows select_model_rows gave, in its order.
    check = frame.iloc[rows][variables].reset_index(drop=True)
    if len(check) != len(data) or not check.equals(data):  # pragma: no cover - a contract change
        raise RuntimeError(f"multiverse {spec.id}: row positions disagree with select_model_rows")
    static = data.drop(columns=[c for c in (TERM, DETRENDED_TERM, BETWEEN_TERM) if c in data])
    codes, uniques = pd.factorize(static[CLIENT])
    design = _Design(spec, resolved, rows, static, accounting, term, codes.astype(np.int64),
                     len(uniques), static["session"].to_numpy(dtype=float))
    if spec.centring == "model_rows" and spec.detrended:
        counts = np.bincount(design.codes, minlength=design.n_clients)
        enough = counts[design.codes] >= MIN_DETREND_ROWS
        accounting["n_rows_detrend_too_few"] = int((~enough).sum())
        if not enough.any():
            raise DataError(f"no client has {MIN_DETREND_ROWS} or more model rows to detrend")
        design.rows = rows[enough]
        design.data = static.loc[enough].reset_index(drop=True)
        codes, uniques = pd.factorize(design.data[CLIENT])
        design.codes, design.n_clients = codes.astype(np.int64), len(uniques)
        design.session = design.data["session"].to_numpy(dtype=float)
        accounting["n_obs"] = int(len(design.rows))
    return design


def fit_specification(block: _Block, spec: Specification, m2: ResolvedFit,
                      completers_min_sessions: int) -> tuple[dict[str, Any], Any]:
    """Fit one specification (M2's alliance term) under the convergence protocol.

    Parameters
    ----------
    block : _Block
        The outcome's rows of the specification's data variant.
    spec : Specification
        Its options.
    m2 : ResolvedFit
        The primary M2 of the outcome.
    completers_min_sessions : int
        ``analysis.completers_min_sessions``.

    Returns
    -------
    (dict, object)
        The result record (``status`` ``fitted``, or ``not_estimable`` with the reason when the
        data cannot support the model: no rows, or every simplification failed) and what the
        permutation null needs (None when not fitted).
    """
    from analysis.models.protocol import fallback_steps_taken, fit_with_fallback
    from analysis.models.standardise import standardised_estimates

    resolved = specification_fit(m2, spec, completers_min_sessions)
    record: dict[str, Any] = {"specification": spec.as_dict(), "status": STATUS_FITTED,
                              "reason": "", "term": resolved.primary_term,
                              "requested_formula": resolved.formula}
    try:
        design = _design(block, spec, resolved)
        data = design.frame(block.observed())
        final, attempts = fit_with_fallback(data, resolved.formula or "", reml=True,
                                            label=f"multiverse {spec.id}")
    except DataError as error:
        log.info("multiverse %s: not estimable: %s", spec.id, error)
        record.update(status=STATUS_NOT_ESTIMABLE, reason=str(error))
        return record, None
    fixed = final.fixed.copy()
    response = split_formula(final.formula)[0]
    fixed["std_estimate"] = standardised_estimates(fixed, data, response)
    row = fixed.loc[fixed["term"] == design.term]
    if row.empty:  # pragma: no cover - the term is in every formula built above
        raise RuntimeError(f"multiverse {spec.id}: term {design.term} missing from the fit")
    values = row.iloc[0]
    steps = fallback_steps_taken(attempts, final.formula)
    record.update({
        **{name: values[name] for name in ("estimate", "se", "df", "t", "p", "ci_low",
                                           "ci_high", "std_estimate")},
        "n_obs": final.info["n_obs"], "n_clients": final.info["n_clients"],
        "n_therapists": final.info["n_therapists"], "converged": final.info["converged"],
        "singular": final.info["singular"], "simplified": bool(steps),
        "fallback_steps": steps, "formula": final.formula, "data": design.accounting,
    })
    return record, (design, final, data)


def fit_specifications(variants: Mapping[str, pd.DataFrame], settings: MultiverseFitSettings
                       ) -> list[dict[str, Any]]:
    """Fit every specification of one job, and their permutation null when asked.

    Parameters
    ----------
    variants : mapping of str to DataFrame
        Prorating option -> its data variant (:func:`prepare_data_variant`).
    settings : MultiverseFitSettings
        The job's specifications, the primary M2 per outcome, ``completers_min_sessions`` and
        the permutation settings (``permutations`` 0 = none).

    Returns
    -------
    list of dict
        One JSON-able result per specification, in the job's order (see
        :func:`fit_specification`; with permutations, a ``null`` entry holds the permuted
        estimates, standard errors, standardised estimates and the df).
    """
    if settings.permutation_method not in PERMUTATION_METHODS:
        raise DataError(f"multiverse.permutation_method must be one of {PERMUTATION_METHODS}")
    specs = [Specification.from_dict(values) for values in settings.specifications]
    results: list[dict[str, Any]] = [{} for _ in specs]
    # One data block (prorating option x outcome) at a time; with permutations, its
    # specifications in groups whose permutation states fit in PERMUTATION_MEMORY_MB, each group
    # sharing one shuffle of the block per permutation.
    for key in dict.fromkeys((spec.prorating, spec.outcome) for spec in specs):
        prorating, outcome = key
        if prorating not in variants:
            raise DataError(f"multiverse: no data variant for prorating {prorating!r}")
        block = _Block.of(variants[prorating], outcome)
        m2 = ResolvedFit.from_dict(settings.fits[outcome])
        members = [index for index, spec in enumerate(specs)
                   if (spec.prorating, spec.outcome) == key]
        size = len(members)
        if settings.permutations > 0:
            size = max(1, int(PERMUTATION_MEMORY_MB * 2**20
                              // (_STATE_BYTES_PER_ROW * max(len(block.frame), 1))))
        for start in range(0, len(members), size):
            states = []
            for index in members[start:start + size]:
                record, state = fit_specification(block, specs[index], m2,
                                                  settings.completers_min_sessions)
                results[index] = record
                if state is not None and settings.permutations > 0:
                    states.append((index, null_state(*state, settings.permutation_method)))
            if states:
                nulls = permutation_null(block, [state for _, state in states],
                                         settings.permutations, settings.seed)
                for (index, _), null in zip(states, nulls):
                    results[index]["null"] = null
    return [json_ready(result) for result in results]


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


class _FixedVarianceGls:
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

    def __init__(self, design: _Design, final: Any, data: pd.DataFrame) -> None:
        from analysis.models.engines import INTERCEPT, parse_random_part

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

    design: _Design
    formula: str
    df: float
    sd_y: float
    method: str
    solver: _FixedVarianceGls | None = None
    data: pd.DataFrame | None = None  # the model frame, kept only for refits


def null_state(design: _Design, final: Any, data: pd.DataFrame,
               method: str = "fixed_variance") -> _NullState:
    """The permutation state of a fitted specification (its model frame dropped when possible).

    Parameters
    ----------
    design : _Design
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
        state.solver = _FixedVarianceGls(design, final, data)
        design.data = design.data.iloc[0:0]  # the static columns now live in the solver
    else:
        state.data = data
    return state


def permutation_null(block: _Block, states: Sequence[Any], permutations: int, seed: int,
                     method: str | None = None) -> list[dict[str, Any]]:
    """The permuted estimates of the specifications of one data block.

    Parameters
    ----------
    block : _Block
        The outcome's rows of one data variant.
    states : sequence
        Per specification its :func:`null_state`, or the ``(design, final fit, model frame)``
        that :func:`fit_specification` returns (turned into one with ``method``).
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
    from analysis.models.engines import get_engine

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


# ---------------------------------------------------------------------------------------------
# 3. Combining and summarising


def combine_multiverse(results: Iterable[Mapping[str, Any]],
                       settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse.csv``: one row per specification, in enumeration order.

    Parameters
    ----------
    results : iterable of dict
        Every specification's result (:func:`fit_specifications`).
    settings : MultiverseSummarySettings
        The level (``report.alpha``) and each outcome's expected sign.

    Returns
    -------
    DataFrame
        ``index, id``, the choices (:data:`~analysis.models.multiverse.CHOICE_NAMES`),
        ``primary`` and :data:`RESULT_COLUMNS`. ``significant_expected`` is True when p is below
        the level and the estimate has the expected sign (alliance up, symptoms down),
        ``significant_opposite`` when p is below the level and the sign is the other one.
        ``n_clients`` is a count of people, kept numeric here (small counts are suppressed where
        the table is published, :func:`publish_multiverse`).
    """
    rows = []
    for result in results:
        spec = result["specification"]
        row = {"index": int(spec["index"]), "id": spec["id"],
               **{name: spec[name] for name in CHOICE_NAMES}, "primary": bool(spec["primary"])}
        for name in RESULT_COLUMNS:
            value = result.get(name)
            if name == "fallback_steps":
                value = "; ".join(value or [])
            row[name] = value
        sign = settings.expected_signs.get(str(spec["outcome"]), -1)
        row["significant_expected"] = _significant(result.get("estimate"), result.get("p"),
                                                   sign, settings.alpha)
        row["significant_opposite"] = _significant(result.get("estimate"), result.get("p"),
                                                   -sign, settings.alpha)
        rows.append(row)
    columns = ["index", "id", *CHOICE_NAMES, "primary", *RESULT_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    frame = frame.sort_values("index", kind="stable").reset_index(drop=True)
    for name in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high", "std_estimate"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in ("n_obs", "n_clients", "n_therapists"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    for name in ("converged", "singular", "simplified"):
        frame[name] = frame[name].astype("boolean")
    for name in ("reason", "fallback_steps", "formula", "term"):
        frame[name] = frame[name].fillna("").astype(str)
    return frame


def publish_multiverse(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """The table as published: clients below ``min_cell`` shown as "<min_cell"."""
    from analysis.privacy import format_count

    out = table.copy()
    out["n_clients"] = [None if pd.isna(value) else format_count(int(value), min_cell)
                        for value in out["n_clients"]]
    return out


def _significant(estimate: Any, p: Any, sign: int, alpha: float) -> bool:
    try:
        estimate, p = float(estimate), float(p)
    except (TypeError, ValueError):
        return False
    return bool(math.isfinite(p) and p < alpha and np.sign(estimate) == sign)


#: Joint-test statistics (Simonsohn, Simmons & Nelson 2020), each read in the expected direction.
JOINT_STATISTICS = {
    "share_significant_expected": "share of specifications with a significant estimate in the "
                                  "expected direction",
    "median_signed_std_estimate": "median standardised estimate, signed so that the expected "
                                  "direction is positive",
    "mean_signed_z": "mean t statistic, signed so that the expected direction is positive "
                     "(Stouffer-type)",
}


def joint_statistics(estimate: np.ndarray, std_estimate: np.ndarray, se: np.ndarray,
                     df: np.ndarray, signs: np.ndarray, alpha: float) -> dict[str, float]:
    """The three joint statistics over specifications (arrays over specifications, NaN = none).

    Parameters
    ----------
    estimate, std_estimate, se, df : array
        Per specification (or, in the last axis, per specification and rows for permutations).
    signs : array
        The expected sign of each specification's outcome.
    alpha : float
        The level of "significant".

    Returns
    -------
    dict
        :data:`JOINT_STATISTICS` keys -> values (arrays when the inputs are 2-D: one per row).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        t = estimate / se
        p = 2 * stats.t.sf(np.abs(t), df)
        significant = (p < alpha) & (np.sign(estimate) == signs)
        usable = np.isfinite(t)
        n = usable.sum(axis=-1)
        share = np.where(n > 0, significant.sum(axis=-1) / np.maximum(n, 1), np.nan)
        signed_std = np.where(usable, std_estimate * signs, np.nan)
        signed_t = np.where(usable, t * signs, np.nan)
        all_missing = n == 0
        median = np.nanmedian(np.where(all_missing[..., None], 0.0, signed_std), axis=-1)
        mean_z = np.nanmean(np.where(all_missing[..., None], 0.0, signed_t), axis=-1)
    median = np.where(all_missing, np.nan, median)
    mean_z = np.where(all_missing, np.nan, mean_z)
    return {"share_significant_expected": share, "median_signed_std_estimate": median,
            "mean_signed_z": mean_z}


def permutation_test(results: Sequence[Mapping[str, Any]], settings: MultiverseSummarySettings
                     ) -> pd.DataFrame:
    """The joint test: each statistic's permutation p-value over all fitted specifications.

    Parameters
    ----------
    results : sequence of dict
        The specifications' results with their ``null`` entries (:func:`fit_specifications`
        with permutations).
    settings : MultiverseSummarySettings
        Level, expected signs and the number of permutations.

    Returns
    -------
    DataFrame
        One row per statistic: ``statistic, observed, null_median, null_q95, p_permutation,
        permutations, n_specifications``; p is ``(1 + #{null >= observed}) / (1 + permutations)``
        (Phipson & Smyth 2010). Empty when no specification carries a null.

    Notes
    -----
    Simonsohn, Simmons & Nelson (2020), Nature Human Behaviour 4, 1208-1214: the specification
    curve's joint inference under the null, generated here by shuffling each client's alliance
    over their sessions (the module docstring says how, and what is approximated).
    """
    usable = [result for result in results
              if result.get("status") == STATUS_FITTED and result.get("null")]
    if not usable:
        return pd.DataFrame(columns=["statistic", "observed", "null_median", "null_q95",
                                     "p_permutation", "permutations", "n_specifications"])
    signs = np.array([settings.expected_signs.get(r["specification"]["outcome"], -1)
                      for r in usable], dtype=float)

    def column(name: str, source: str | None = None) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else float(r[name]) for r in usable])

    observed = joint_statistics(column("estimate"), column("std_estimate"), column("se"),
                                column("df"), signs, settings.alpha)
    lengths = {len(r["null"]["estimate"]) for r in usable}
    if len(lengths) != 1:
        raise DataError(f"multiverse: specifications carry different numbers of permutations "
                        f"({sorted(lengths)}); rerun the multiverse jobs")
    (count,) = lengths

    def null(name: str) -> np.ndarray:
        return np.array([[np.nan if v is None else float(v) for v in r["null"][name]]
                         for r in usable]).T  # permutations x specifications

    dfs = (null("dfs") if "dfs" in usable[0]["null"]
           else np.tile([float(r["null"]["df"]) for r in usable], (count, 1)))
    permuted = joint_statistics(null("estimate"), null("std_estimate"), null("se"), dfs,
                                signs[None, :], settings.alpha)
    rows = []
    for name in JOINT_STATISTICS:
        values = np.asarray(permuted[name], dtype=float)
        value = float(observed[name])
        at_least = int(np.sum(values >= value - 1e-12)) if math.isfinite(value) else count
        rows.append({"statistic": name, "observed": value,
                     "null_median": float(np.nanmedian(values)),
                     "null_q95": float(np.nanquantile(values, 0.95)),
                     "p_permutation": (1 + at_least) / (1 + count), "permutations": count,
                     "n_specifications": len(usable)})
    return pd.DataFrame(rows)


def summarise_multiverse(table: pd.DataFrame, joint: pd.DataFrame,
                         settings: MultiverseSummarySettings) -> pd.DataFrame:
    """``multiverse_summary.csv``: the curve in numbers, overall and per outcome, and the test.

    Parameters
    ----------
    table : DataFrame
        :func:`combine_multiverse`'s table.
    joint : DataFrame
        :func:`permutation_test`'s table (may be empty).
    settings : MultiverseSummarySettings
        The level and the signs.

    Returns
    -------
    DataFrame
        Long format ``scope, statistic, value, p_permutation, permutations``: per scope (``all``
        and each outcome) the numbers of specifications, fitted and simplified ones, the count
        and share significant in the expected and in the opposite direction, the median,
        minimum and maximum estimate (per outcome, in its units) and standardised estimate;
        then the joint statistics of ``all`` with their permutation p-values.
    """
    rows = []
    scopes = [("all", table)] + [(str(outcome), table.loc[table["outcome"] == outcome])
                                 for outcome in dict.fromkeys(table["outcome"])]
    for scope, rows_of_scope in scopes:
        fitted = rows_of_scope.loc[rows_of_scope["status"] == STATUS_FITTED]
        n = len(fitted)
        values = {
            "n_specifications": len(rows_of_scope),
            "n_fitted": n,
            "n_simplified": int(fitted["simplified"].fillna(False).astype(bool).sum()),
            "n_significant_expected": int(fitted["significant_expected"].sum()),
            "share_significant_expected": (float(fitted["significant_expected"].mean())
                                           if n else np.nan),
            "n_significant_opposite": int(fitted["significant_opposite"].sum()),
            "median_std_estimate": float(fitted["std_estimate"].median()) if n else np.nan,
            "min_std_estimate": float(fitted["std_estimate"].min()) if n else np.nan,
            "max_std_estimate": float(fitted["std_estimate"].max()) if n else np.nan,
        }
        if scope != "all":
            values.update({
                "median_estimate": float(fitted["estimate"].median()) if n else np.nan,
                "min_estimate": float(fitted["estimate"].min()) if n else np.nan,
                "max_estimate": float(fitted["estimate"].max()) if n else np.nan,
                "primary_estimate": float(fitted.loc[fitted["primary"], "estimate"].iloc[0])
                if fitted["primary"].any() else np.nan,
            })
        for name, value in values.items():
            rows.append({"scope": scope, "statistic": name, "value": value,
                         "p_permutation": np.nan, "permutations": 0})
    for row in joint.to_dict("records"):
        rows.append({"scope": "all", "statistic": f"joint_{row['statistic']}",
                     "value": row["observed"], "p_permutation": row["p_permutation"],
                     "permutations": int(row["permutations"])})
    return pd.DataFrame(rows, columns=["scope", "statistic", "value", "p_permutation",
                                       "permutations"])


__all__ = [
    "JOINT_STATISTICS",
    "PERMUTATION_METHODS",
    "RESULT_COLUMNS",
    "combine_multiverse",
    "fit_specification",
    "fit_specifications",
    "group_detrend",
    "group_means",
    "joint_statistics",
    "permutation_keys",
    "null_state",
    "permutation_null",
    "permutation_test",
    "permute_within_groups",
    "publish_multiverse",
    "row_hashes",
    "specification_fit",
    "summarise_multiverse",
]
