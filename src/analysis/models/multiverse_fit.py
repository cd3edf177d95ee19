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
   (:func:`analysis.models.multiverse_permutation.permutation_null`).
3. :func:`analysis.models.multiverse_summary.combine_multiverse` and
   :func:`analysis.models.multiverse_summary.summarise_multiverse`: ``multiverse.csv`` (one row
   per specification) and the summary with the joint test of Simonsohn, Simmons & Nelson (2020).

The permutation test (what is shuffled, and how the null is estimated) is described in
:mod:`analysis.models.multiverse_permutation`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.multiverse import Specification
from analysis.models.multiverse_data import NEXT_PREFIX
from analysis.models.multiverse_permutation import (
    BETWEEN_TERM,
    MIN_DETREND_ROWS,
    PERMUTATION_METHODS,
    group_detrend,
    group_means,
    null_state,
    permutation_keys,
    permutation_null,
    permute_within_groups,
    row_hashes,
)
from analysis.models.records import json_ready
from analysis.models.specs import (
    CLIENT,
    THERAPIST,
    ResolvedFit,
    join_formula,
    split_formula,
    substitute_terms,
)
from analysis.settings import MultiverseFitSettings

log = logging.getLogger(__name__)

#: The term of M2 whose estimate the multiverse collects, and its detrended version (the
#: between-client term BETWEEN_TERM is in multiverse_permutation, which needs it).
TERM = "alliance_within"
DETRENDED_TERM = "alliance_within_detrended"
#: Columns of ``multiverse.csv`` (after the choice columns).
RESULT_COLUMNS = [
    "status", "reason", "term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
    "std_estimate", "significant_expected", "significant_opposite", "n_obs", "n_clients",
    "n_therapists", "converged",
    "singular", "simplified", "fallback_steps", "formula",
]
STATUS_FITTED = "fitted"
STATUS_NOT_ESTIMABLE = "not_estimable"
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


__all__ = [
    "RESULT_COLUMNS",
    "fit_specification",
    "fit_specifications",
    "specification_fit",
]
