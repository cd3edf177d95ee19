"""Engines that fit linear mixed models and return the same small, tidy result.

Two engines share one interface (:class:`Engine`): ``mixedlm`` (the primary engine, a port of
lme4 with a compiled core: REML or ML, Satterthwaite denominator df as lmerTest gives them) and
``statsmodels`` (``MixedLM``, an independent implementation used only to cross-check estimates).
Both take an lme4-syntax formula and a DataFrame that holds no missing values in the model's
variables, and return an :class:`EngineFit`: a fixed-effects frame (``term, estimate, se, df, t,
p, ci_low, ci_high``), a random-effects frame (``group, term, term2, variance, sd, corr``; one row
per variance, one per covariance, and a ``Residual`` row; ``group`` is the grouping factor, also
for the pieces of an uncorrelated term such as ``(1 | client_id) + (0 + session | client_id)``)
and a fit-information dict (``reml_criterion, deviance, loglik, aic, bic, optimizer_converged,
converged, singular, gradient_norm, hessian_positive_definite, optimizer, n_obs, n_clients,
n_therapists``; the statsmodels engine adds ``se_method``, ``se_joint`` and
``independent_blocks``). Formulas may use lme4's ``||`` for uncorrelated terms
(:func:`parse_random_part` reads the random part of any formula the engines accept).

Convergence is judged as lme4 does, never on the optimizer's flag alone: the gradient and
Hessian of the (REML or ML) deviance with respect to the covariance parameters are computed by
central finite differences at the estimate, and the fit counts as converged when the largest
scaled gradient ``|chol(H)^-1 g|`` (the smaller of it and the raw gradient, per component) is at
most :data:`GRADIENT_TOLERANCE` (lme4's default, 0.002) and the Hessian is positive definite.
Parameters on their boundary (a variance estimated as zero) are left out of that check: they
make the fit singular, which is judged separately (:data:`SINGULAR_TOLERANCE`, lme4's default).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from analysis.models.mixed.specs import CLIENT, THERAPIST, split_formula

log = logging.getLogger(__name__)

#: Largest scaled gradient of the deviance accepted as convergence (lme4 ``check.conv.grad``).
GRADIENT_TOLERANCE = 2e-3
#: A relative covariance factor below this is a variance on its boundary (lme4 ``isSingular``).
SINGULAR_TOLERANCE = 1e-4
#: Step of the finite differences on the covariance parameters (lme4 ``deriv12`` uses 1e-4).
DERIVATIVE_STEP = 1e-4

FIXED_COLUMNS = ["term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high"]
RANDOM_COLUMNS = ["group", "term", "term2", "variance", "sd", "corr"]
INTERCEPT = "(Intercept)"


@dataclass
class EngineFit:
    """What every engine returns for one fitted model.

    Attributes
    ----------
    engine : str
        ``mixedlm`` or ``statsmodels``.
    formula : str
        The lme4-syntax formula that was fitted.
    reml : bool
        REML (True) or ML (False).
    fixed : DataFrame
        Columns :data:`FIXED_COLUMNS`, one row per fixed effect, in formula order.
    random : DataFrame
        Columns :data:`RANDOM_COLUMNS`: variance rows (``term2`` empty, ``corr`` NaN),
        covariance rows (``variance`` holds the covariance, ``sd`` NaN) and ``Residual``.
    info : dict
        Fit information (see the module docstring); plain Python values.
    """

    engine: str
    formula: str
    reml: bool
    fixed: pd.DataFrame
    random: pd.DataFrame
    info: dict = field(default_factory=dict)


class Engine(Protocol):
    """The interface of a mixed-model engine."""

    name: str

    def can_express(self, formula: str, data: pd.DataFrame) -> tuple[bool, str]:
        """Whether the engine fits exactly this model; if not, the reason."""

    def fit(self, formula: str, data: pd.DataFrame, reml: bool = True) -> EngineFit:
        """Fit ``formula`` to ``data`` (no missing values in the model variables)."""


def _group_counts(data: pd.DataFrame) -> dict:
    n_therapists = int(data[THERAPIST].nunique()) if THERAPIST in data else 0
    return {
        "n_obs": int(len(data)),
        "n_clients": int(data[CLIENT].nunique()) if CLIENT in data else 0,
        "n_therapists": n_therapists,
    }


def _model_frame(data: pd.DataFrame, formula: str) -> pd.DataFrame:
    # Grouping factors as plain strings: both engines then treat them as categorical labels.
    frame = data.copy()
    for group in dict.fromkeys(term.group for term in parse_random_part(formula)[2]):
        frame[group] = frame[group].astype(str)
    return frame


# ---------------------------------------------------------------------------------------------
# The random part of a formula


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)``: an intercept and/or slopes, correlated.

    Attributes
    ----------
    group : str
        The grouping factor (a column).
    intercept : bool
        Whether the term has a random intercept.
    slopes : tuple of str
        Random slopes, in formula order.
    """

    group: str
    intercept: bool
    slopes: tuple[str, ...] = ()

    @property
    def components(self) -> tuple[str, ...]:
        """Names as the random-effects frame writes them (``(Intercept)``, slopes)."""
        return ((INTERCEPT,) if self.intercept else ()) + self.slopes

    @property
    def expr(self) -> str:
        """The left side of the bar: ``1``, ``1 + session`` or ``0 + session``."""
        if self.intercept:
            return " + ".join(["1", *self.slopes])
        return " + ".join(["0", *self.slopes])


def parse_random_part(formula: str) -> tuple[str, list[str], list[RandomTerm]]:
    """Response, fixed terms and random terms of an lme4 formula.

    ``(1 + x || g)`` (lme4's uncorrelated terms) is expanded into ``(1 | g) + (0 + x | g)``;
    ``0 +`` or ``- 1`` removes the intercept, which is otherwise implicit as in lme4.

    >>> parse_random_part("y ~ s + (1 + s || c) + (1 | t)")[2]  # doctest: +NORMALIZE_WHITESPACE
    [RandomTerm(group='c', intercept=True, slopes=()),
     RandomTerm(group='c', intercept=False, slopes=('s',)),
     RandomTerm(group='t', intercept=True, slopes=())]
    """
    response, fixed, random = split_formula(formula)
    terms: list[RandomTerm] = []
    for expr, group in random:
        uncorrelated = group.startswith("|")  # split_formula reads "a || g" as ("a", "| g")
        group = group.lstrip("|").strip()
        intercept, slopes = True, []
        for token in (part.strip() for part in expr.split("+")):
            removed = re.fullmatch(r"(.*?)\s*-\s*1", token)
            if removed:
                intercept, token = False, removed.group(1).strip()
            if token in ("0", "-1"):
                intercept = False
            elif token and token != "1":
                slopes.append(token)
        if uncorrelated:
            terms += [RandomTerm(group, True)] if intercept else []
            terms += [RandomTerm(group, False, (slope,)) for slope in slopes]
        else:
            terms.append(RandomTerm(group, intercept, tuple(slopes)))
    return response, fixed, terms


# ---------------------------------------------------------------------------------------------
# Convergence check


def finite_difference_derivatives(
    deviance: Callable[[np.ndarray], float], theta: np.ndarray, step: float = DERIVATIVE_STEP
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of ``deviance`` at ``theta`` by central finite differences."""
    theta = np.asarray(theta, dtype=float)
    n = len(theta)
    centre = float(deviance(theta))
    gradient = np.zeros(n)
    hessian = np.zeros((n, n))
    unit = np.eye(n) * step
    plus = np.array([deviance(theta + unit[i]) for i in range(n)])
    minus = np.array([deviance(theta - unit[i]) for i in range(n)])
    gradient[:] = (plus - minus) / (2 * step)
    hessian[np.diag_indices(n)] = (plus - 2 * centre + minus) / step**2
    for i in range(n):
        for j in range(i + 1, n):
            value = (
                deviance(theta + unit[i] + unit[j])
                - deviance(theta + unit[i] - unit[j])
                - deviance(theta - unit[i] + unit[j])
                + deviance(theta - unit[i] - unit[j])
            ) / (4 * step**2)
            hessian[i, j] = hessian[j, i] = value
    return gradient, hessian


def scaled_gradient_check(
    deviance: Callable[[np.ndarray], float],
    theta: np.ndarray,
    lower: np.ndarray,
    tolerance: float = GRADIENT_TOLERANCE,
) -> dict:
    """lme4's convergence check of a fit's covariance parameters.

    Parameters
    ----------
    deviance : callable
        The REML or ML deviance as a function of the covariance parameters ``theta``.
    theta : array
        The estimate.
    lower : array
        Lower bounds of ``theta`` (0 for variances' factors, -inf otherwise).
    tolerance : float
        Largest accepted scaled gradient.

    Returns
    -------
    dict
        ``gradient_norm`` (max over free parameters of min(|scaled gradient|, |gradient|), as
        lme4 reports "max|grad|"), ``hessian_positive_definite`` and ``gradient_ok``.
    """
    theta = np.asarray(theta, dtype=float)
    lower = np.asarray(lower, dtype=float)
    free = ~(np.isfinite(lower) & (theta - lower < SINGULAR_TOLERANCE))
    if not free.any():
        return {"gradient_norm": 0.0, "hessian_positive_definite": True, "gradient_ok": True}
    gradient, hessian = finite_difference_derivatives(deviance, theta)
    gradient, hessian = gradient[free], hessian[np.ix_(free, free)]
    if not (np.all(np.isfinite(gradient)) and np.all(np.isfinite(hessian))):
        return {"gradient_norm": float("nan"), "hessian_positive_definite": False,
                "gradient_ok": False}
    try:
        upper = np.linalg.cholesky(hessian).T  # H = R'R as R's chol() returns R
        scaled = np.linalg.solve(upper, gradient)
        positive_definite = True
    except np.linalg.LinAlgError:
        scaled = gradient
        positive_definite = False
    largest = float(np.max(np.minimum(np.abs(scaled), np.abs(gradient))))
    return {
        "gradient_norm": largest,
        "hessian_positive_definite": positive_definite,
        "gradient_ok": bool(positive_definite and largest <= tolerance),
    }


# ---------------------------------------------------------------------------------------------
# mixedlm


class MixedlmEngine:
    """The primary engine: ``mixedlm.lmer`` (lme4 port) with lmerTest's Satterthwaite df.

    It fits every lme4 formula the pipeline uses: crossed or nested random intercepts,
    correlated random slopes, REML or ML.
    """

    name = "mixedlm"

    def can_express(self, formula: str, data: pd.DataFrame) -> tuple[bool, str]:
        return True, ""

    def fit(self, formula: str, data: pd.DataFrame, reml: bool = True) -> EngineFit:
        import mixedlm

        frame = _model_frame(data, formula)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = mixedlm.lmer(formula, frame, REML=reml)
            tidy = model.tidy(conf_int=True)
        for warning in caught:
            log.info("mixedlm: %s", warning.message)
        fixed = pd.DataFrame(
            {
                "term": tidy["term"].astype(str),
                "estimate": tidy["estimate"].astype(float),
                "se": tidy["std.error"].astype(float),
                "df": tidy["df"].astype(float),
                "t": tidy["statistic"].astype(float),
                "p": tidy["p.value"].astype(float),
                "ci_low": tidy["conf.low"].astype(float),
                "ci_high": tidy["conf.high"].astype(float),
            }
        )
        random = self._random_frame(model)
        check = scaled_gradient_check(
            model.as_function("deviance"), np.asarray(model.theta), self._lower(model)
        )
        singular = bool(model.is_singular(tol=SINGULAR_TOLERANCE))
        loglik = float(model.logLik().value)
        info = {
            "reml_criterion": float(model.REMLcrit()) if reml else float("nan"),
            "deviance": -2.0 * loglik,
            "loglik": loglik,
            "aic": float(model.AIC()),
            "bic": float(model.BIC()),
            "optimizer_converged": bool(model.converged),
            "converged": bool(check["gradient_ok"] and np.all(np.isfinite(fixed["estimate"]))),
            "singular": singular,
            "gradient_norm": check["gradient_norm"],
            "hessian_positive_definite": check["hessian_positive_definite"],
            "optimizer": str(model.optimizer),
            **_group_counts(data),
        }
        result = EngineFit(self.name, formula, reml, fixed, random, info)
        # The mixedlm fit itself, for what the fit job derives from it in the same process
        # (analysis.models.mixed.diagnostics); not a field: never compared, written or pickled.
        result.native = model
        return result

    @staticmethod
    def _lower(model) -> np.ndarray:
        import mixedlm

        return np.asarray(mixedlm.getME(model, "lower"), dtype=float)

    @staticmethod
    def _random_frame(model) -> pd.DataFrame:
        varcorr = model.VarCorr()
        rows = []
        for name, group in varcorr.groups.items():
            # An uncorrelated term written out, (1 | g) + (0 + x | g), comes back as groups "g"
            # and "g.1" (as in lme4): rows name the grouping factor, the term tells them apart.
            factor = str(getattr(group, "grouping_factor", None) or name)
            terms = list(group.term_names)
            for term in terms:
                rows.append(
                    {"group": factor, "term": term, "term2": "",
                     "variance": float(group.variance[term]), "sd": float(group.stddev[term]),
                     "corr": float("nan")}
                )
            if group.corr is None:
                continue  # (1 + x || g): covariances fixed at 0, not estimated
            for i in range(len(terms)):
                for j in range(i + 1, len(terms)):
                    rows.append(
                        {"group": factor, "term": terms[i], "term2": terms[j],
                         "variance": float(group.cov[i, j]), "sd": float("nan"),
                         "corr": float(group.corr[i, j])}
                    )
        residual = float(varcorr.residual)
        rows.append(
            {"group": "Residual", "term": "", "term2": "", "variance": residual,
             "sd": float(np.sqrt(residual)), "corr": float("nan")}
        )
        return pd.DataFrame(rows, columns=RANDOM_COLUMNS)


# ---------------------------------------------------------------------------------------------
# statsmodels

#: An independent block with more random-effect columns than this gets sparse design matrices
#: (statsmodels' dense path solves a q x q system per block and keeps an n x q copy of it).
SPARSE_COLUMNS = 300


class StatsmodelsEngine:
    """The cross-check engine: ``statsmodels`` ``MixedLM``.

    ``MixedLM`` has one grouping variable with (possibly correlated) random effects, plus
    independent variance components within it. It fits exactly:

    - one random term, e.g. ``(1 + session | client_id)``: groups = client, ``re_formula`` = the
      term's intercept and slopes (correlated);
    - several random terms of one component each, e.g. ``(1 | client_id) + (1 | therapist_id)``
      (nested or crossed) or the uncorrelated ``(1 | client_id) + (0 + session | client_id) +
      (1 | therapist_id)``: each term is a variance component (one column per level of its
      factor, times the slope's values for a slope). statsmodels' groups must be independent,
      so they are the connected components of the design (levels that share a row are joined):
      the therapists with their clients when clients are nested in therapists, one block when
      clients and therapists are crossed throughout (the "one constant group" formulation, which
      is exact but slow: a block's cost grows with the square of its levels).

    It cannot express a correlated random slope together with another random term (variance
    components are uncorrelated): :meth:`can_express` says so and the cross-check lists the
    reason instead of numbers.

    Standard errors: statsmodels' own (``bse_fe``) come from the joint Hessian of fixed and
    covariance parameters; lme4 conditions on the covariance estimates, ``sigma^2 (X' V^-1
    X)^-1``. Where the two are not orthogonal (a lagged outcome as predictor, as in M2) they
    differ by far more than the estimates do. So ``fixed["se"]`` here is the conditional SE,
    computed from statsmodels' variance estimates with statsmodels' design matrices, and the
    joint-Hessian SEs are kept in ``info["se_joint"]``.
    """

    name = "statsmodels"

    def can_express(self, formula: str, data: pd.DataFrame) -> tuple[bool, str]:
        _, _, terms = parse_random_part(formula)
        if not terms:
            return False, "the formula has no random term"
        if len(terms) == 1:
            return True, ""
        if any(len(term.components) > 1 for term in terms):
            return False, (
                "statsmodels MixedLM cannot combine a correlated random slope with another "
                "random term (its variance components are uncorrelated)"
            )
        columns = set(data.columns)
        unknown = [slope for term in terms for slope in term.slopes if slope not in columns]
        if unknown:
            return False, (
                f"the random slope {unknown[0]!r} is not a column: statsmodels variance "
                "components here take plain columns only"
            )
        return True, ""

    def fit(self, formula: str, data: pd.DataFrame, reml: bool = True) -> EngineFit:
        import statsmodels.formula.api as smf
        from statsmodels.regression.mixed_linear_model import MixedLM

        expressible, reason = self.can_express(formula, data)
        if not expressible:
            raise ValueError(f"statsmodels cannot fit {formula!r} exactly: {reason}")
        response, fixed_terms, terms = parse_random_part(formula)
        fixed_formula = f"{response} ~ " + " + ".join(fixed_terms or ["1"])
        frame = _model_frame(data, formula).reset_index(drop=True)
        if len(terms) == 1:
            term = terms[0]
            model = smf.mixedlm(fixed_formula, frame, groups=term.group,
                                re_formula=term.expr)
            blocks = int(frame[term.group].nunique())
        else:
            design = smf.ols(fixed_formula, frame)
            exog = pd.DataFrame(design.exog, columns=design.exog_names)
            labels = independent_blocks(frame, [term.group for term in terms])
            model = MixedLM(design.endog, exog, groups=labels,
                            exog_vc=_variance_components(frame, terms, labels))
            blocks = int(labels.max()) + 1 if len(labels) else 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(reml=reml)
        for warning in caught:
            log.info("statsmodels: %s", warning.message)
        names = [INTERCEPT if name == "Intercept" else str(name)
                 for name in result.fe_params.index]
        estimate = result.fe_params.to_numpy(dtype=float)
        joint_se = np.asarray(result.bse_fe, dtype=float)
        se = conditional_standard_errors(model, result)
        z = estimate / se
        fixed = pd.DataFrame(
            {
                "term": names,
                "estimate": estimate,
                "se": se,
                "df": np.inf,
                "t": z,
                "p": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": estimate - stats.norm.ppf(0.975) * se,
                "ci_high": estimate + stats.norm.ppf(0.975) * se,
            }
        )
        random_frame = self._random_frame(result, terms)
        scale = float(result.scale)
        variances = np.concatenate(
            [np.diag(np.asarray(result.cov_re, dtype=float)), np.asarray(result.vcomp, float)]
        )
        loglik = float(result.llf)
        n_random = np.asarray(result.cov_re).shape[0]
        n_params = len(names) + n_random * (n_random + 1) // 2 + len(result.vcomp) + 1
        info = {
            "reml_criterion": -2.0 * loglik if reml else float("nan"),
            "deviance": -2.0 * loglik,
            "loglik": loglik,
            "aic": float("nan") if reml else -2.0 * loglik + 2 * n_params,
            "bic": float("nan") if reml else float(-2.0 * loglik + np.log(len(frame)) * n_params),
            "optimizer_converged": bool(result.converged),
            # statsmodels can report convergence with a collapsed variance and between-group
            # effects of exactly 0.0: a collapsed variance never counts as converged here.
            "converged": bool(result.converged and np.all(variances > 1e-8 * scale)
                              and np.all(np.isfinite(estimate))),
            "singular": bool(np.any(variances <= SINGULAR_TOLERANCE**2 * scale)),
            "gradient_norm": float("nan"),
            "hessian_positive_definite": bool(np.all(np.isfinite(joint_se))),
            # statsmodels tries bfgs first and moves to lbfgs, then cg, only on failure
            "optimizer": "statsmodels default (bfgs; lbfgs, cg on failure)",
            "se_method": "conditional on the variance estimates: sigma^2 (X' V^-1 X)^-1",
            "se_joint": {name: float(value) for name, value in zip(names, joint_se)},
            "independent_blocks": blocks,
            **_group_counts(data),
        }
        return EngineFit(self.name, formula, reml, fixed, random_frame, info)

    @staticmethod
    def _random_frame(result, terms: list[RandomTerm]) -> pd.DataFrame:
        rows = []
        if len(terms) == 1:
            group = terms[0].group
            matrix = np.asarray(result.cov_re, dtype=float)
            # statsmodels names the random intercept after the grouping factor (or "Group")
            names = [INTERCEPT if name in ("Group", "Intercept", group) else str(name)
                     for name in result.cov_re.index]
            for i, term in enumerate(names):
                rows.append({"group": group, "term": term, "term2": "",
                             "variance": matrix[i, i],
                             "sd": float(np.sqrt(max(matrix[i, i], 0.0))), "corr": float("nan")})
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    denominator = np.sqrt(matrix[i, i] * matrix[j, j])
                    rows.append({"group": group, "term": names[i], "term2": names[j],
                                 "variance": matrix[i, j], "sd": float("nan"),
                                 "corr": float(matrix[i, j] / denominator) if denominator > 0
                                 else float("nan")})
        else:
            for term, variance in zip(terms, np.asarray(result.vcomp, dtype=float)):
                rows.append({"group": term.group, "term": term.components[0], "term2": "",
                             "variance": float(variance),
                             "sd": float(np.sqrt(max(variance, 0.0))), "corr": float("nan")})
        scale = float(result.scale)
        rows.append({"group": "Residual", "term": "", "term2": "", "variance": scale,
                     "sd": float(np.sqrt(scale)), "corr": float("nan")})
        return pd.DataFrame(rows, columns=RANDOM_COLUMNS)


def largest_block_levels(formula: str, data: pd.DataFrame) -> int:
    """Random-effect columns of the largest block statsmodels fits ``formula`` in.

    One random term: its components (a block is one level of its factor). Several: the levels
    of every random term within the largest independent block (:func:`independent_blocks`),
    e.g. all clients plus all therapists when they are crossed throughout. statsmodels' time
    and memory grow steeply with it (measured on 2 cores: 1,100 columns 26 s CPU and 0.8 GB,
    5,250 columns about 10 min CPU and 18.7 GB).
    """
    _, _, terms = parse_random_part(formula)
    if len(terms) <= 1:
        return len(terms[0].components) if terms else 0
    frame = _model_frame(data, formula)
    labels = independent_blocks(frame, [term.group for term in terms])
    levels = pd.Series(0, index=np.unique(labels))
    for term in terms:
        levels = levels + frame.groupby(labels)[term.group].nunique()
    return int(levels.max()) if len(levels) else 0


def independent_blocks(frame: pd.DataFrame, groups: list[str]) -> np.ndarray:
    """Label of each row's independent block: connected components of the grouping levels.

    Two rows are in one block when they share a level of any grouping factor, directly or
    through other rows. With clients nested in therapists the blocks are the therapists'
    caseloads; with one grouping factor they are its levels.

    Returns
    -------
    ndarray of int
        Block labels 0, 1, ... numbered in order of first appearance.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    factors = list(dict.fromkeys(groups))
    codes, offset = [], 0
    for name in factors:
        code, levels = pd.factorize(frame[name], sort=True)
        codes.append(code + offset)
        offset += len(levels)
    n_rows = len(frame)
    if n_rows == 0:
        return np.zeros(0, dtype=int)
    # every level of every factor is a node; each row links its levels to a row node
    row_nodes = offset + np.arange(n_rows)
    source = np.concatenate([row_nodes] * len(codes))
    target = np.concatenate(codes)
    graph = coo_matrix((np.ones(len(source)), (source, target)),
                       shape=(offset + n_rows, offset + n_rows))
    _, component = connected_components(graph, directed=False)
    labels = component[row_nodes]
    first = pd.unique(labels)
    renumber = np.empty(component.max() + 1, dtype=int)
    renumber[first] = np.arange(len(first))
    return renumber[labels]


def _variance_components(frame: pd.DataFrame, terms: list[RandomTerm], labels: np.ndarray):
    """statsmodels ``VCSpec``: one component per random term, one column per level per block."""
    from scipy import sparse
    from statsmodels.regression.mixed_linear_model import VCSpec

    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    block_rows = np.split(order, bounds) if len(order) else []
    codes = {term.group: frame[term.group].to_numpy() for term in terms}
    names, colnames, mats = [], [], []
    levels_per_block = [sum(len(pd.unique(codes[term.group][rows])) for term in terms)
                        for rows in block_rows]
    for term in terms:
        values = (np.ones(len(frame)) if term.intercept
                  else frame[term.slopes[0]].to_numpy(dtype=float))
        term_names, term_mats = [], []
        for rows, width in zip(block_rows, levels_per_block):
            code, levels = pd.factorize(codes[term.group][rows], sort=True)
            matrix = sparse.csr_array((values[rows], (np.arange(len(rows)), code)),
                                      shape=(len(rows), len(levels)))
            term_mats.append(matrix if width > SPARSE_COLUMNS else matrix.toarray())
            term_names.append([str(level) for level in levels])
        names.append(term.group if term.intercept else f"{term.group}:{term.slopes[0]}")
        colnames.append(term_names)
        mats.append(term_mats)
    return VCSpec(names, colnames, mats)


def conditional_standard_errors(model, result) -> np.ndarray:
    """Fixed-effect SEs conditional on the variance estimates, as lme4 reports them.

    ``sqrt(diag(sigma^2 (X' (I + Z D Z')^-1 X)^-1))`` with ``D`` the random-effects covariance
    relative to the residual variance ``sigma^2``, from a fitted statsmodels ``MixedLM``
    (``model``, ``result``), block by block with the Woodbury identity: ``X'X - B' (I + L'Z'ZL)^-1
    B`` with ``B = L'Z'X`` and ``D = LL'`` (which allows a singular ``D``).
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    scale = float(result.scale)
    cov_re = np.asarray(result.cov_re, dtype=float).reshape(model.k_re, model.k_re) / scale
    vcomp = np.asarray(result.vcomp, dtype=float) / scale
    factor_re = _psd_factor(cov_re)
    information = np.zeros((model.k_fe, model.k_fe))
    for index in range(len(model.group_labels)):
        exog = np.asarray(model.exog_li[index], dtype=float)
        pieces = []
        if model.k_re:
            pieces.append(np.asarray(model.exog_re_li[index], dtype=float) @ factor_re)
        for j in range(model.k_vc):
            pieces.append(model.exog_vc.mats[j][index] * np.sqrt(max(vcomp[j], 0.0)))
        information += exog.T @ exog
        if not pieces:
            continue
        if any(sparse.issparse(piece) for piece in pieces):
            z = sparse.hstack([sparse.csr_array(piece) for piece in pieces]).tocsc()
            inner = (sparse.identity(z.shape[1], format="csc") + z.T @ z).tocsc()
            cross = np.asarray(z.T @ exog)
            solved = splu(inner).solve(cross)
        else:
            z = np.hstack(pieces)
            inner = np.eye(z.shape[1]) + z.T @ z
            cross = z.T @ exog
            solved = np.linalg.solve(inner, cross)
        information -= cross.T @ solved
    covariance = scale * np.linalg.inv(information)
    return np.sqrt(np.diag(covariance))


def _psd_factor(matrix: np.ndarray) -> np.ndarray:
    # L with L L' = matrix for a positive semi-definite matrix (singular allowed)
    if matrix.size == 0:
        return matrix
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


ENGINES: dict[str, Engine] = {"mixedlm": MixedlmEngine(), "statsmodels": StatsmodelsEngine()}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``mixedlm`` or ``statsmodels``)."""
    return ENGINES[name]
