"""Fitting the multiverse: data variants, one fit per specification, the bootstrap null.

The plan (the choices, the estimands and their combinations) is
:mod:`analysis.models.multiverse.specifications`. This module does the work, in three stages that
match the pipeline's rules:

1. :func:`analysis.models.multiverse.data.prepare_data_variant` (one job per prorating option,
   in its own light module so that a change to the model code does not rescore the data).
2. :func:`fit_specification` (each specification in a job; :func:`fit_specifications` runs a
   job's list), by estimator:

   - ``mlm``: the rows of M2 for the outcome are selected with
     :func:`analysis.models.mixed.fitting.select_model_rows` (so the primary-option specification
     fits exactly the rows of the pipeline's M2), the person-mean split is recomputed on those rows
     when centring is ``model_rows`` (and the within part detrended on them when detrended), and
     M2's formula is fitted under the convergence protocol
     (:func:`analysis.models.mixed.protocol.fit_with_fallback`);
   - ``dpm``: the waves are chosen as for the pipeline's DPM
     (:func:`analysis.models.panel.waves.choose_waves` with ``models.panel``), every ``lag``-th wave
     kept, and :func:`analysis.models.panel.dpm.fit_dpm` fitted with alliance predetermined, paths
     equal over waves and, with ``random: full``, standard errors clustered by therapist (used
     from :data:`analysis.models.panel.dpm.MIN_CLUSTERS_FOR_ROBUST` therapists). The lag-1,
     primary-option specification is the pipeline's DPM (same function calls on the same rows);
   - ``riclpm``: the same panel, :func:`analysis.models.panel.riclpm.fit_riclpm` with lagged paths
     and innovation (co)variances equal over waves. A panel that cannot identify it is recorded as
     ``not_estimable`` with the reason; an inadmissible solution (a variance at or below 0) as
     ``inadmissible``: neither is summarised.

   Every fitted specification carries a ``fingerprint``: a hash of its final model (after the
   fallback simplification; for the DPM the standard-error type actually used) and of the data
   it was fitted to. Specifications with equal fingerprints are one analysis, counted once
   (:func:`analysis.models.multiverse.summary.combine_multiverse`).
   With ``resamples`` > 0 the job also computes the specification's bootstrap null
   (:mod:`analysis.models.multiverse.bootstrap`).
3. :func:`analysis.models.multiverse.summary.combine_multiverse` and
   :func:`analysis.models.multiverse.summary.summarise_multiverse`: ``multiverse.csv`` and the
   summary, one block per estimand (outcome x lag), with the joint test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.multiverse.specifications import Specification
from analysis.models.multiverse.data import NEXT_PREFIX
from analysis.models.multiverse.design import (
    BETWEEN_TERM,
    DETRENDED_TERM,
    MIN_DETREND_ROWS,
    TERM,
    Block,
    Design,
)
from analysis.models.mixed.records import json_ready
from analysis.models.mixed.specs import (
    CLIENT,
    THERAPIST,
    ResolvedFit,
    formula_variables,
    join_formula,
    split_formula,
    substitute_terms,
)
from analysis.settings import MultiverseFitSettings

log = logging.getLogger(__name__)

#: The panel models' term: alliance at the previous wave -> symptoms.
LAGGED_TERM = "alliance_lagged"
#: Columns of ``multiverse.csv`` (after the choice columns). ``fingerprint`` identifies the final
#: model and its data; ``duplicate_of`` names the first specification with the same fingerprint
#: (empty for a distinct one) and ``distinct`` says whether the row counts in the summary.
RESULT_COLUMNS = [
    "status", "reason", "term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
    "std_estimate", "significant_expected", "significant_opposite", "n_obs", "n_clients",
    "n_therapists", "n_waves", "converged",
    "singular", "simplified", "fallback_steps", "formula", "fingerprint", "duplicate_of",
    "distinct",
]
STATUS_FITTED = "fitted"
STATUS_NOT_ESTIMABLE = "not_estimable"
STATUS_INADMISSIBLE = "inadmissible"


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


def _design(block: Block, spec: Specification, resolved: ResolvedFit) -> Design:
    """Select the specification's rows (as the pipeline's M2 selects them)."""
    from analysis.models.mixed.fitting import select_model_rows

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
    design = Design(spec, resolved, rows, static, accounting, term, codes.astype(np.int64),
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


def fingerprint(*parts: Any) -> str:
    """A short hash of a final model and its data (frames hashed by value, in row order)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            digest.update(",".join(map(str, part.columns)).encode())
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def fit_specification(block: Block, spec: Specification, m2: ResolvedFit,
                      completers_min_sessions: int, dpm: ResolvedFit | None = None
                      ) -> tuple[dict[str, Any], Any]:
    """Fit one specification under its estimator.

    Parameters
    ----------
    block : Block
        The outcome's rows of the specification's data variant.
    spec : Specification
        Its options.
    m2 : ResolvedFit
        The pipeline's M2 of the outcome (the conventional model's formula).
    completers_min_sessions : int
        ``analysis.completers_min_sessions``.
    dpm : ResolvedFit, optional
        The pipeline's DPM of the outcome (its wave settings); needed by ``dpm`` and ``riclpm``.

    Returns
    -------
    (dict, object)
        The result record (``status`` ``fitted``; ``not_estimable`` with the reason when the data
        cannot support the model; ``inadmissible`` for a panel solution with a variance at or
        below 0) and what the bootstrap null needs (None when there is none).
    """
    if spec.estimator == "mlm":
        return _fit_mlm(block, spec, m2, completers_min_sessions)
    if dpm is None:
        raise DataError(f"multiverse {spec.id}: no dynamic panel settings for {spec.outcome}")
    return _fit_panel(block, spec, dpm, completers_min_sessions)


def _fit_mlm(block: Block, spec: Specification, m2: ResolvedFit,
             completers_min_sessions: int) -> tuple[dict[str, Any], Any]:
    from analysis.models.mixed.protocol import fallback_steps_taken, fit_with_fallback
    from analysis.models.mixed.standardise import standardised_estimates

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
        "n_therapists": final.info["n_therapists"], "n_waves": None,
        "converged": final.info["converged"],
        "singular": final.info["singular"], "simplified": bool(steps),
        "fallback_steps": steps, "formula": final.formula,
        # the final formula on the final model frame (the term renamed: a detrended within part
        # is a different column, so it differs by value, not by name)
        "fingerprint": fingerprint("mlm", final.formula,
                                   data[formula_variables(final.formula)]),
        "data": design.accounting,
    })
    return record, ("mlm", design, final, data)


def panel_of(rows: pd.DataFrame, outcome: str, panel_settings: Mapping[str, Any], lag: int
             ) -> tuple[pd.DataFrame, int, str]:
    """The wide panel of the panel models: the pipeline's waves, every ``lag``-th one kept.

    Returns
    -------
    (DataFrame, int, str)
        The panel (``client_id``, ``therapist_id`` when present, ``a1..aK``, ``y1..yK``), K and
        the waves in words.
    """
    from analysis.models.panel.waves import choose_waves, wide_panel

    choice = choose_waves(rows, outcome, **dict(panel_settings))
    panel, _ = wide_panel(rows, outcome, choice)
    waves = int(choice.n_waves)
    if lag == 1:
        return panel, waves, choice.description
    kept = list(range(1, waves + 1, lag))
    renamed = {f"{prefix}{wave}": f"{prefix}{position}"
               for position, wave in enumerate(kept, start=1) for prefix in ("a", "y")}
    others = [name for name in panel.columns if not re.fullmatch(r"[ay]\d+", name)]
    panel = panel[others + list(renamed)].rename(columns=renamed)
    return panel, len(kept), f"{choice.description}; every {lag}nd wave of these" if lag == 2 \
        else f"{choice.description}; every {lag}th wave of these"


def _fit_panel(block: Block, spec: Specification, dpm: ResolvedFit,
               completers_min_sessions: int) -> tuple[dict[str, Any], Any]:
    from analysis.models.panel.dpm import fit_dpm
    from analysis.models.panel.dpm_stage import fixed_row, inference
    from analysis.models.panel.dpm_stage import se_type as describe_se
    from analysis.models.panel.riclpm import fit_riclpm

    record: dict[str, Any] = {"specification": spec.as_dict(), "status": STATUS_FITTED,
                              "reason": "", "term": LAGGED_TERM}
    rows = block.frame
    accounting: dict[str, Any] = {"n_rows_outcome": int(len(rows)), "n_rows_not_completers": 0}
    if spec.sample == "completers":
        keep = rows["n_sessions"] >= completers_min_sessions
        accounting["n_rows_not_completers"] = int((~keep).sum())
        rows = rows.loc[keep]
    n_therapists = int(rows[THERAPIST].dropna().nunique()) if THERAPIST in rows else 0
    try:
        if rows.empty:
            raise DataError(f"no rows for outcome {spec.outcome!r}")
        panel, waves, waves_text = panel_of(rows, spec.outcome, dict(dpm.panel), spec.lag_gap)
        if spec.estimator == "dpm":
            standard_errors = inference(panel, n_therapists, by_therapist=spec.random == "full")
            result = fit_dpm(panel, waves, outcome="y", predetermined=("a",), equal_paths=True,
                             **standard_errors)
        else:
            result = fit_riclpm(panel, waves, constrained=True, equal_innovations=True)
    except DataError as error:
        log.info("multiverse %s: not estimable: %s", spec.id, error)
        record.update(status=STATUS_NOT_ESTIMABLE, reason=str(error))
        return record, None
    convergence = result["convergence"]
    values_panel = panel[[c for c in panel.columns if re.fullmatch(r"[ay]\d+", c)]]
    if spec.estimator == "dpm":
        lagged = result["lagged"]
        robust = bool(lagged.get("robust"))
        values = fixed_row(LAGGED_TERM, lagged, robust)
        se_type = describe_se(lagged, standard_errors)
        formula = (f"DPM: y[t] ~ y[t-1] + a[t-1] + client fixed effect, a predetermined, paths "
                   f"equal over waves; {waves} waves ({waves_text}); SE {se_type}")
        n_clients = int(result["fit"].get("n_clients") or len(panel))
        state = ("dpm", panel, waves, standard_errors, float(values["estimate"]),
                 float(result["autoregressive"]["estimate"]))
    else:
        paths = result["paths"]
        row = paths.loc[paths["label"] == "cross-lagged alliance -> symptoms"].iloc[0]
        estimate, se = float(row["estimate"]), float(row["se"])
        values = {"estimate": estimate, "se": se, "df": None,
                  "t": estimate / se if se else None, "p": float(row["p"]),
                  "ci_low": float(row["ci_lower"]), "ci_high": float(row["ci_upper"]),
                  # the completely standardised path, as the mean over waves
                  "std_estimate": float(paths.loc[paths["label"] == row["label"],
                                                  "std_estimate"].mean())}
        formula = (f"RI-CLPM: lagged paths and innovation (co)variances equal over waves; "
                   f"{waves} waves ({waves_text})")
        n_clients = int(len(values_panel.dropna(how="all")))
        state = None  # not in the joint test (see multiverse.bootstrap)
    admissible = bool(convergence.get("admissible", True))
    record.update({
        **{name: values[name] for name in ("estimate", "se", "df", "t", "p", "ci_low",
                                           "ci_high", "std_estimate")},
        "n_obs": int(values_panel.notna().to_numpy().sum()), "n_clients": n_clients,
        "n_therapists": n_therapists, "n_waves": waves,
        "converged": bool(convergence.get("converged")) and admissible,
        "singular": False, "simplified": False, "fallback_steps": [], "formula": formula,
        "fingerprint": fingerprint(spec.estimator, formula, values_panel),
        "data": {**accounting, "waves": waves_text},
    })
    if not admissible:
        problems = "; ".join(map(str, convergence.get("problems") or [])) or "inadmissible"
        record.update(status=STATUS_INADMISSIBLE, reason=problems)
        return record, None
    return record, state


def fit_specifications(variants: Mapping[str, pd.DataFrame], settings: MultiverseFitSettings
                       ) -> list[dict[str, Any]]:
    """Fit every specification of one job, and their bootstrap null when asked.

    Parameters
    ----------
    variants : mapping of str to DataFrame
        Prorating option -> its data variant (:func:`prepare_data_variant`).
    settings : MultiverseFitSettings
        The job's specifications, the pipeline's M2 per outcome (``fits[outcome]``) and DPM
        (``fits["<outcome>/DPM"]``), ``completers_min_sessions`` and the joint test's
        ``resamples`` (0 = none) and ``seed``.

    Returns
    -------
    list of dict
        One JSON-able result per specification, in the job's order (see
        :func:`fit_specification`; with resamples, a ``null`` entry holds the bootstrap
        estimates, standard errors and standardised estimates and the df).
    """
    from analysis.models.multiverse.bootstrap import bootstrap_null

    from analysis.models.multiverse.bootstrap import SIZE_CHECKED_ESTIMATORS

    specs = [Specification.from_dict(values) for values in settings.specifications]
    results: list[dict[str, Any]] = [{} for _ in specs]
    # One data block (prorating option x outcome) at a time; its specifications share the
    # bootstrap resamples of clients.
    for key in dict.fromkeys((spec.prorating, spec.outcome) for spec in specs):
        prorating, outcome = key
        if prorating not in variants:
            raise DataError(f"multiverse: no data variant for prorating {prorating!r}")
        block = Block.of(variants[prorating], outcome)
        m2 = ResolvedFit.from_dict(settings.fits[outcome])
        dpm_values = settings.fits.get(f"{outcome}/DPM")
        dpm = ResolvedFit.from_dict(dpm_values) if dpm_values else None
        states = []
        for index, spec in enumerate(specs):
            if (spec.prorating, spec.outcome) != key:
                continue
            record, state = fit_specification(block, spec, m2, settings.completers_min_sessions,
                                              dpm)
            results[index] = record
            if (state is not None and settings.resamples > 0
                    and spec.estimator in SIZE_CHECKED_ESTIMATORS):
                states.append((index, state))
        if states:
            nulls = bootstrap_null(block, [state for _, state in states], settings.resamples,
                                   settings.seed, outcome)
            for (index, _), null in zip(states, nulls):
                results[index]["null"] = null
    return [json_ready(result) for result in results]


__all__ = [
    "LAGGED_TERM",
    "RESULT_COLUMNS",
    "STATUS_FITTED",
    "STATUS_INADMISSIBLE",
    "STATUS_NOT_ESTIMABLE",
    "fingerprint",
    "fit_specification",
    "fit_specifications",
    "panel_of",
    "specification_fit",
]
