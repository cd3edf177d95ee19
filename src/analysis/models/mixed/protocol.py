"""The convergence protocol: simplify a mixed model's random part one diagnosed step at a time.

docs/methods.md section 4: a fit that is singular or does not converge is simplified one step at
a time, following the parsimonious-model approach (Bates, Kliegl, Vasishth & Baayen 2015;
Matuschek, Kliegl, Vasishth, Baayen & Bates 2017), and the first fit that converges and is not
singular is reported. The step is chosen from the fit itself, by which part of its random-effects
covariance sits on the boundary of the parameter space:

1. ``drop_zero_variance``: a variance estimated at 0 (e.g. the therapist intercept when the
   therapist SD is 0) is dropped, keeping every other component;
2. ``uncorrelated_slope``: a correlation at +/-1 (a relative Cholesky factor of 0 under positive
   variances) is removed by fitting the term's components uncorrelated, lme4's
   ``(1 + session || client_id)``, written expanded as
   ``(1 | client_id) + (0 + session | client_id)``;
3. ``drop_random_slope``: otherwise (not converged, or singular for a reason not traced to one
   component, or a fit that failed with an error) the random slopes are dropped, keeping one
   random intercept per grouping factor;
4. ``drop_therapist``: then the therapist term.

Dropping a real slope makes the SEs of within-client terms too small (methods section 4), which
is why a boundary variance goes first: when the therapist SD is 0 the end point keeps
``(1 + session | client_id)``. The boundary is judged as lme4's ``isSingular`` judges it: a
diagonal element of the relative covariance factor (``theta``) below
:data:`analysis.models.mixed.engines.SINGULAR_TOLERANCE`, computed here from the fit's
random-effects frame, so that :func:`next_simplification` is a pure function of a formula and an
:class:`~analysis.models.mixed.engines.EngineFit`. Grouping factors listed in ``keep_groups`` never
lose their last term: the therapist ICC (R3) keeps its therapist term, because a therapist
variance of 0 is its answer, not a failure; a converged fit whose boundary components cannot go
is reported as it is, with its flags.

Inputs are model rows without missing values and an lme4-syntax formula; outputs are the
reported :class:`~analysis.models.mixed.engines.EngineFit` and one record per attempt (``step,
formula, converged, singular, gradient_norm, boundary, error``), for the report. Expected
simplifications are logged at INFO; a fit that stays unacceptable at the end is logged at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.models.mixed.engines import (
    INTERCEPT,
    SINGULAR_TOLERANCE,
    EngineFit,
    RandomTerm,
    get_engine,
    parse_random_part,
)
from analysis.models.mixed.specs import THERAPIST, join_formula

log = logging.getLogger(__name__)

#: Largest number of simplifications after the requested fit. Real models stop well before it
#: (M1 needs at most four); with no formula tried twice, it bounds the work whatever happens.
MAX_SIMPLIFICATIONS = 6

STEP_REQUESTED = "requested"
STEP_DROP_ZERO_VARIANCE = "drop_zero_variance"
STEP_UNCORRELATED = "uncorrelated_slope"
STEP_DROP_SLOPE = "drop_random_slope"
STEP_DROP_THERAPIST = "drop_therapist"
#: Every step name, in the order of methods section 4 (the requested fit first).
STEPS = (STEP_REQUESTED, STEP_DROP_ZERO_VARIANCE, STEP_UNCORRELATED, STEP_DROP_SLOPE,
         STEP_DROP_THERAPIST)

#: Errors an engine raises when the data cannot support a model (too few groups, rank
#: deficiency, non-finite values); turned into one DataError when no simpler model fits either.
FIT_ERRORS: tuple[type[BaseException], ...] = (ValueError, ArithmeticError, RuntimeError,
                                               np.linalg.LinAlgError)
try:  # the engine's own check of a model against the data (e.g. a grouping factor of 1 level)
    from mixedlm.models.checks import ModelCheckError
except ImportError:  # pragma: no cover - another engine
    pass
else:
    FIT_ERRORS += (ModelCheckError,)


# ---------------------------------------------------------------------------------------------
# The random part of a formula


def render_formula(response: str, fixed: list[str], terms: Sequence[RandomTerm]) -> str:
    """The lme4 formula of a response, fixed terms and random terms (uncorrelated expanded).

    Parameters
    ----------
    response : str
        The response variable.
    fixed : list of str
        The fixed terms.
    terms : sequence of RandomTerm
        The random terms (:func:`parse_random_part`).

    Returns
    -------
    str
        The formula.

    Examples
    --------
    >>> response, fixed, terms = parse_random_part("y ~ s + (1 + s || client_id)")
    >>> render_formula(response, fixed, terms)
    'y ~ s + (1 | client_id) + (0 + s | client_id)'
    """
    return join_formula(response, fixed, [(term.expr, term.group) for term in terms])


def expand_uncorrelated(formula: str) -> str:
    """``formula`` with lme4's ``||`` terms written out as separate, uncorrelated terms.

    Formulas without ``||`` are returned unchanged, character for character.

    Parameters
    ----------
    formula : str
        An lme4 formula.

    Returns
    -------
    str
        The formula with every ``(expr || group)`` written as one term per component.

    Examples
    --------
    >>> expand_uncorrelated("y ~ s + (1 + s || client_id)")
    'y ~ s + (1 | client_id) + (0 + s | client_id)'
    """
    if "||" not in formula:
        return formula
    return render_formula(*parse_random_part(formula))


# ---------------------------------------------------------------------------------------------
# Diagnosis: which component of a fit sits on the boundary


@dataclass(frozen=True)
class Boundary:
    """One component of a fitted random-effects covariance on the boundary of its space.

    Attributes
    ----------
    group : str
        Grouping factor.
    term : str
        The component (``(Intercept)`` or a slope).
    kind : str
        ``zero_variance`` (its variance is estimated at 0) or ``correlation`` (its correlation
        with ``partner`` is at +/-1: a relative Cholesky factor of 0 under a positive variance).
    value : float
        Its relative SD (zero variance) or its relative Cholesky factor (correlation): the
        number lme4's ``isSingular`` compares with the tolerance.
    partner : str
        For a correlation: the component it is perfectly correlated with.
    corr : float
        For a correlation: the estimated correlation with ``partner``.
    term_index : int
        Position of its random term in the formula (see :func:`parse_random_part`).
    """

    group: str
    term: str
    kind: str
    value: float
    partner: str = ""
    corr: float = float("nan")
    term_index: int = -1

    def describe(self) -> str:
        """A phrase for logs and the report, e.g. ``therapist_id (Intercept): variance 0``."""
        if self.kind == "zero_variance":
            return f"{self.group} {self.term}: variance 0"
        return f"{self.group} {self.partner}~{self.term}: correlation {self.corr:+.2f}"


def boundary_components(
    formula: str, fit: EngineFit, tolerance: float = SINGULAR_TOLERANCE
) -> list[Boundary]:
    """Components of ``fit``'s random-effects covariance that sit on the boundary.

    For each random term, the covariance matrix of its components relative to the residual
    variance is read from ``fit.random`` (the layout of :mod:`analysis.models.mixed.engines`). A
    component whose relative SD is below ``tolerance`` has a zero variance; among the others, a
    diagonal element of the Cholesky factor below ``tolerance`` marks a correlation at +/-1 (a
    component that is a linear function of the ones before it). These are the elements of
    lme4's ``theta`` that ``isSingular`` tests.

    Parameters
    ----------
    formula : str
        The formula that was fitted.
    fit : EngineFit
        Its fit.
    tolerance : float
        lme4's ``isSingular`` tolerance.

    Returns
    -------
    list of Boundary
        In formula order; empty when nothing is on the boundary or the frame lacks the
        variances (an engine that does not report them).

    Examples
    --------
    >>> from analysis.models.mixed.engines import get_engine
    >>> from analysis.simulate.examples import example_derived
    >>> data = example_derived().dropna(subset=["symptom_next"])
    >>> formula = ("symptom_next ~ symptom_score + alliance_within + session"
    ...            " + (1 + session | client_id) + (1 | therapist_id)")
    >>> fit = get_engine("mixedlm").fit(formula, data)
    >>> [(b.group, b.term, b.kind) for b in boundary_components(formula, fit)]
    [('client_id', 'session', 'correlation'), ('therapist_id', '(Intercept)', 'zero_variance')]
    """
    _, _, terms = parse_random_part(formula)
    random = fit.random
    term2 = random["term2"].fillna("").astype(str)
    residual = random.loc[random["group"] == "Residual", "variance"]
    if residual.empty or not np.isfinite(residual.iloc[0]) or residual.iloc[0] <= 0:
        return []
    sigma2 = float(residual.iloc[0])
    found: list[Boundary] = []
    for index, term in enumerate(terms):
        names = term.components
        covariance = _term_covariance(random, term2, term.group, names)
        if covariance is None:
            continue
        relative = covariance / sigma2
        relative_sd = np.sqrt(np.clip(np.diag(relative), 0.0, None))
        zero = relative_sd < tolerance
        for position in np.flatnonzero(zero):
            found.append(Boundary(term.group, names[position], "zero_variance",
                                  float(relative_sd[position]), term_index=index))
        kept = np.flatnonzero(~zero)
        factor_diagonal = _cholesky_diagonal(relative[np.ix_(kept, kept)])
        for place, position in enumerate(kept):
            if place == 0 or factor_diagonal[place] >= tolerance:
                continue
            # perfectly predicted by the components before it: name the most correlated one
            before = kept[:place]
            correlations = relative[position, before] / (relative_sd[position]
                                                         * relative_sd[before])
            strongest = int(np.argmax(np.abs(correlations)))
            found.append(Boundary(term.group, names[position], "correlation",
                                  float(factor_diagonal[place]), partner=names[before[strongest]],
                                  corr=float(np.clip(correlations[strongest], -1.0, 1.0)),
                                  term_index=index))
    return found


def _term_covariance(
    random: pd.DataFrame, term2: pd.Series, group: str, names: tuple[str, ...]
) -> np.ndarray | None:
    in_group = random["group"] == group
    matrix = np.zeros((len(names), len(names)))
    for i, name in enumerate(names):
        rows = random.loc[in_group & (random["term"] == name) & (term2 == ""), "variance"]
        if rows.empty or not np.isfinite(rows.iloc[0]):
            return None
        matrix[i, i] = float(rows.iloc[0])
        for j in range(i):
            pair = in_group & (term2 != "") & (
                ((random["term"] == names[j]) & (term2 == name))
                | ((random["term"] == name) & (term2 == names[j]))
            )
            value = random.loc[pair, "variance"]
            if len(value) and np.isfinite(value.iloc[0]):
                matrix[i, j] = matrix[j, i] = float(value.iloc[0])
    return matrix


def _cholesky_diagonal(matrix: np.ndarray) -> np.ndarray:
    # Cholesky without pivoting, tolerant of a singular matrix (a zero pivot gives a 0 factor).
    n = matrix.shape[0]
    factor = np.zeros_like(matrix)
    for j in range(n):
        pivot = matrix[j, j] - factor[j, :j] @ factor[j, :j]
        factor[j, j] = np.sqrt(max(pivot, 0.0))
        for i in range(j + 1, n):
            rest = matrix[i, j] - factor[i, :j] @ factor[j, :j]
            factor[i, j] = rest / factor[j, j] if factor[j, j] > 0 else 0.0
    return np.diag(factor).copy()


# ---------------------------------------------------------------------------------------------
# The protocol


def acceptable(fit: EngineFit) -> bool:
    """A fit is reported as is only if it converged (gradient check) and is not singular.

    Parameters
    ----------
    fit : EngineFit
        A fit of an engine.

    Returns
    -------
    bool
        Whether it converged and is not singular.

    Examples
    --------
    >>> from analysis.models.mixed.engines import get_engine
    >>> from analysis.simulate.examples import example_derived
    >>> data = example_derived().dropna(subset=["symptom_next"])
    >>> formula = ("symptom_next ~ symptom_score + alliance_within + session"
    ...            " + (1 + session | client_id) + (1 | therapist_id)")
    >>> acceptable(get_engine("mixedlm").fit(formula, data))
    False
    >>> simpler = "symptom_next ~ symptom_score + alliance_within + session + (1 | client_id)"
    >>> acceptable(get_engine("mixedlm").fit(simpler, data))
    True
    """
    return bool(fit.info.get("converged")) and not bool(fit.info.get("singular"))


def next_simplification(
    formula: str, fit: EngineFit | None, keep_groups: Iterable[str] = ()
) -> tuple[str, str] | None:
    """The next, simpler model after ``fit`` of ``formula`` (methods section 4), if any.

    Parameters
    ----------
    formula : str
        The formula that was fitted.
    fit : EngineFit or None
        Its fit; None when the fit failed with an error (only steps 3 and 4 then apply).
    keep_groups : iterable of str
        Grouping factors whose terms are never dropped altogether (R3 keeps
        ``therapist_id``); their slopes may still be uncorrelated or dropped.

    Returns
    -------
    (str, str) or None
        ``(step, simpler formula)``, or None when the fit is acceptable, when nothing simpler is
        left, or when a converged fit's boundary components cannot be dropped (a kept group's
        only term, or the last random term): the boundary estimate is then the answer.

    Examples
    --------
    A fit whose therapist variance is 0 loses the therapist term and keeps its random slope:
    ``y ~ s + (1 + s | client_id) + (1 | therapist_id)`` gives ``("drop_zero_variance",
    "y ~ s + (1 + s | client_id)")``.

    >>> from analysis.models.mixed.engines import get_engine
    >>> from analysis.simulate.examples import example_derived
    >>> data = example_derived().dropna(subset=["symptom_next"])
    >>> formula = ("symptom_next ~ symptom_score + alliance_within + session"
    ...            " + (1 + session | client_id) + (1 | therapist_id)")
    >>> next_simplification(formula, get_engine("mixedlm").fit(formula, data))
    ('drop_zero_variance', 'symptom_next ~ symptom_score + alliance_within + session + (1 +
     session | client_id)')
    """
    if fit is not None and acceptable(fit):
        return None
    keep = set(keep_groups)
    response, fixed, terms = parse_random_part(formula)
    found = boundary_components(formula, fit) if fit is not None else []
    if not found and fit is not None and fit.info.get("singular"):
        # the engine judged theta itself; read from the variances, a factor can land just
        # above the tolerance: take what is within ten times of it
        found = boundary_components(formula, fit, tolerance=10 * SINGULAR_TOLERANCE)

    def keeps_groups(simpler: list[RandomTerm]) -> bool:
        present = {term.group for term in simpler}
        return all(term.group in present for term in terms if term.group in keep)

    # 1. a variance at 0 (the most clearly degenerate first), unless that drops a kept group
    for boundary in sorted((b for b in found if b.kind == "zero_variance"),
                           key=lambda b: b.value):
        simpler = _drop_component(terms, boundary)
        if simpler and keeps_groups(simpler):
            return STEP_DROP_ZERO_VARIANCE, render_formula(response, fixed, simpler)

    # 2. a correlation at +/-1: the term's components uncorrelated
    for boundary in found:
        if boundary.kind == "correlation":
            simpler = _uncorrelated(terms, boundary.term_index)
            return STEP_UNCORRELATED, render_formula(response, fixed, simpler)

    if found and fit is not None and bool(fit.info.get("converged")):
        # what is on the boundary cannot go (a kept group, the last random term): the
        # boundary estimate is the answer, and dropping other components would not change it
        return None

    # 3. random slopes dropped (one random intercept per grouping factor)
    simpler = _intercepts_only(terms)
    if simpler != terms:
        return STEP_DROP_SLOPE, render_formula(response, fixed, simpler)

    # 4. the therapist term
    if THERAPIST not in keep:
        simpler = [term for term in terms if term.group != THERAPIST]
        if simpler and simpler != terms:
            return STEP_DROP_THERAPIST, render_formula(response, fixed, simpler)
    return None


def _drop_component(terms: list[RandomTerm], boundary: Boundary) -> list[RandomTerm] | None:
    simpler = []
    for index, term in enumerate(terms):
        if index != boundary.term_index:
            simpler.append(term)
        elif boundary.term == INTERCEPT:
            if term.slopes:
                simpler.append(RandomTerm(term.group, False, term.slopes))
        else:
            slopes = tuple(slope for slope in term.slopes if slope != boundary.term)
            if term.intercept or slopes:
                simpler.append(RandomTerm(term.group, term.intercept, slopes))
    # a model keeps at least one random term: a singular last term is reported with its flag
    return simpler or None


def _uncorrelated(terms: list[RandomTerm], index: int) -> list[RandomTerm]:
    term = terms[index]
    pieces = [RandomTerm(term.group, True)] if term.intercept else []
    pieces += [RandomTerm(term.group, False, (slope,)) for slope in term.slopes]
    return terms[:index] + pieces + terms[index + 1:]


def _intercepts_only(terms: list[RandomTerm]) -> list[RandomTerm]:
    groups = list(dict.fromkeys(term.group for term in terms))
    return [RandomTerm(group, True) for group in groups]


def fit_with_fallback(
    data: pd.DataFrame,
    formula: str,
    reml: bool = True,
    engine: str = "mixedlm",
    label: str = "",
    keep_groups: Iterable[str] = (),
    max_simplifications: int = MAX_SIMPLIFICATIONS,
) -> tuple[EngineFit, list[dict[str, Any]]]:
    """Fit ``formula``; while the fit is singular or not converged, simplify it (section 4).

    Parameters
    ----------
    data : DataFrame
        Model rows without missing values (grouping columns kept even when a step drops their
        term, so every attempt is fitted to the same rows).
    formula : str
        The requested lme4 formula (``||`` terms are fitted in their expanded form).
    reml : bool
        REML (True) or ML.
    engine : str
        Engine name (:func:`analysis.models.mixed.engines.get_engine`).
    label : str
        Names the fit in log messages (outcome, model, analysis).
    keep_groups : iterable of str
        Grouping factors never dropped: ``("therapist_id",)`` for the therapist ICC (R3).
    max_simplifications : int
        Most simplifications tried after the requested fit.

    Returns
    -------
    (EngineFit, list of dict)
        The first acceptable fit, or the last successful one when none is; and every attempt in
        order: ``step, formula, converged, singular, gradient_norm, boundary`` (the fit's
        components on the boundary, "; "-joined, "" when none) and ``error`` (None, or the
        message of a fit that failed).

    Raises
    ------
    DataError
        When every attempt failed with an error.

    Examples
    --------
    >>> from analysis.models.mixed.engines import get_engine
    >>> from analysis.simulate.examples import example_derived
    >>> data = example_derived().dropna(subset=["symptom_next"])
    >>> formula = ("symptom_next ~ symptom_score + alliance_within + session"
    ...            " + (1 + session | client_id) + (1 | therapist_id)")
    >>> fit, attempts = fit_with_fallback(data, formula)
    >>> for line in describe_attempts(attempts):
    ...     print(line)
    requested: singular (client_id (Intercept)~session: correlation +1.00; therapist_id (Intercept): variance 0)
    drop_zero_variance: singular (client_id (Intercept)~session: correlation +1.00)
    uncorrelated_slope: singular (client_id session: variance 0)
    drop_zero_variance: accepted
    >>> fit.formula
    'symptom_next ~ symptom_score + alliance_within + session + (1 | client_id)'
    """
    keep = tuple(keep_groups)
    fitter = get_engine(engine)
    attempts: list[dict[str, Any]] = []
    final: EngineFit | None = None
    tried: set[str] = set()
    step, candidate = STEP_REQUESTED, expand_uncorrelated(formula)
    for _ in range(max_simplifications + 1):
        tried.add(candidate)
        fit: EngineFit | None
        try:
            fit = fitter.fit(candidate, data, reml=reml)
        except FIT_ERRORS as error:
            fit = None
            attempts.append({"step": step, "formula": candidate, "converged": False,
                             "singular": None, "gradient_norm": None, "boundary": "",
                             "error": str(error)})
            log.info("%s: %s fit failed (%s)", label, step, error)
        else:
            final = fit
            found = boundary_components(candidate, fit)
            attempts.append({"step": step, "formula": candidate,
                             "converged": bool(fit.info["converged"]),
                             "singular": bool(fit.info["singular"]),
                             "gradient_norm": fit.info.get("gradient_norm"),
                             "boundary": "; ".join(b.describe() for b in found),
                             "error": None})
            if acceptable(fit):
                log.info("%s: %s fit accepted: %s", label, step, candidate)
                break
            problem = "singular" if fit.info["singular"] else "not converged"
            log.info("%s: %s fit is %s (max|scaled gradient| = %.3g%s): %s", label, step,
                     problem, _number(fit.info.get("gradient_norm")),
                     "; " + attempts[-1]["boundary"] if found else "", candidate)
        following = next_simplification(candidate, fit, keep)
        if following is None or following[1] in tried:
            break
        step, candidate = following
        log.info("%s: next step %s: %s", label, step, candidate)
    if final is None:
        raise DataError(
            f"{label}: the model could not be fitted with any random part "
            f"({'; '.join(str(attempt['error']) for attempt in attempts)}). "
            f"{_grouping_advice(data, formula)}"
        )
    if not acceptable(final):
        kept_boundary = [b for b in boundary_components(final.formula, final) if b.group in keep]
        if kept_boundary and final.info.get("converged"):
            log.info("%s: %s kept on the boundary (%s); reporting %s with its flags", label,
                     ", ".join(sorted({b.group for b in kept_boundary})),
                     "; ".join(b.describe() for b in kept_boundary), final.formula)
        else:
            log.warning("%s: no simpler random part is left; reporting %s with its flags",
                        label, final.formula)
    return final, attempts


def _grouping_advice(data: pd.DataFrame, formula: str) -> str:
    """What would help when no random part could be fitted, from the grouping factors' levels
    in the model rows (counts of people are not printed: only whether they are too few)."""
    groups = list(dict.fromkeys(term.group for term in parse_random_part(formula)[2]))
    few = [group for group in groups if group in data and data[group].nunique() < 2]
    if few:
        names = " and ".join("clients" if group == "client_id" else
                             "therapists" if group == THERAPIST else group for group in few)
        return (f"The model rows have fewer than 2 {names}, so a variance between them cannot "
                "be estimated: check that the outcome and the process measure are scored at "
                "the same sessions for more clients (data_flow.csv shows where rows were lost).")
    return ("The model rows (data_flow.csv: the analysis stage) may be too few for this "
            "random part: check that most clients have two or more sessions with both "
            "measures scored.")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def fallback_steps_taken(attempts: list[dict[str, Any]], final_formula: str) -> list[str]:
    """The simplification steps applied before the reported fit (empty when the request was kept).

    Parameters
    ----------
    attempts : list of dict
        The attempts of :func:`fit_with_fallback` (``step``, ``formula``, ``error``).
    final_formula : str
        The formula of the reported fit.

    Returns
    -------
    list of str
        The steps of the attempts after the request, up to the one that fitted ``final_formula``.

    Examples
    --------
    >>> fallback_steps_taken([{"step": "requested", "formula": "a", "error": None},
    ...                       {"step": "drop_zero_variance", "formula": "b", "error": None}], "b")
    ['drop_zero_variance']
    """
    taken = []
    for attempt in attempts:
        if attempt["step"] != STEP_REQUESTED:
            taken.append(attempt["step"])
        if attempt["formula"] == final_formula and attempt["error"] is None:
            break
    return taken


def describe_attempts(attempts: list[dict[str, Any]]) -> list[str]:
    """One line per attempt for the report, e.g. ``requested: singular (therapist_id
    (Intercept): variance 0)`` or ``drop_zero_variance: accepted``.

    Parameters
    ----------
    attempts : list of dict
        The attempts of :func:`fit_with_fallback`.

    Returns
    -------
    list of str
        One line per attempt.

    Examples
    --------
    >>> describe_attempts([
    ...     {"step": "requested", "converged": True, "singular": True,
    ...      "boundary": "therapist_id (Intercept): variance 0", "error": None},
    ...     {"step": "drop_zero_variance", "converged": True, "singular": False, "error": None}])
    ['requested: singular (therapist_id (Intercept): variance 0)', 'drop_zero_variance: accepted']
    """
    lines = []
    for attempt in attempts:
        if attempt.get("error"):
            state = f"failed ({attempt['error']})"
        elif attempt.get("converged") and not attempt.get("singular"):
            state = "accepted"
        else:
            state = "singular" if attempt.get("singular") else "not converged"
            if attempt.get("boundary"):
                state += f" ({attempt['boundary']})"
        lines.append(f"{attempt['step']}: {state}")
    return lines


__all__ = [
    "Boundary",
    "FIT_ERRORS",
    "MAX_SIMPLIFICATIONS",
    "RandomTerm",
    "STEPS",
    "acceptable",
    "boundary_components",
    "describe_attempts",
    "expand_uncorrelated",
    "fallback_steps_taken",
    "fit_with_fallback",
    "next_simplification",
    "parse_random_part",
    "render_formula",
]
