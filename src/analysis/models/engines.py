"""Engines that fit linear mixed models and return the same small, tidy result.

Two engines share one interface (:class:`Engine`): ``mixedlm`` (the primary engine, a port of
lme4 with a compiled core: REML or ML, Satterthwaite denominator df as lmerTest gives them) and
``statsmodels`` (``MixedLM``, an independent implementation used only to cross-check estimates).
Both take an lme4-syntax formula and a DataFrame that holds no missing values in the model's
variables, and return an :class:`EngineFit`: a fixed-effects frame (``term, estimate, se, df, t,
p, ci_low, ci_high``), a random-effects frame (``group, term, term2, variance, sd, corr``; one row
per variance, one per covariance, and a ``Residual`` row) and a fit-information dict
(``reml_criterion, deviance, loglik, aic, bic, optimizer_converged, converged, singular,
gradient_norm, hessian_positive_definite, optimizer, n_obs, n_clients, n_therapists``).

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
import warnings
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from analysis.models.specs import CLIENT, THERAPIST, split_formula

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
    _, _, random = split_formula(formula)
    frame = data.copy()
    for _, group in random:
        frame[group] = frame[group].astype(str)
    return frame


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
        return EngineFit(self.name, formula, reml, fixed, random, info)

    @staticmethod
    def _lower(model) -> np.ndarray:
        import mixedlm

        return np.asarray(mixedlm.getME(model, "lower"), dtype=float)

    @staticmethod
    def _random_frame(model) -> pd.DataFrame:
        varcorr = model.VarCorr()
        rows = []
        for name, group in varcorr.groups.items():
            terms = list(group.term_names)
            for term in terms:
                rows.append(
                    {"group": name, "term": term, "term2": "",
                     "variance": float(group.variance[term]), "sd": float(group.stddev[term]),
                     "corr": float("nan")}
                )
            for i in range(len(terms)):
                for j in range(i + 1, len(terms)):
                    rows.append(
                        {"group": name, "term": terms[i], "term2": terms[j],
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


class StatsmodelsEngine:
    """The cross-check engine: ``statsmodels`` ``MixedLM``.

    ``MixedLM`` has one grouping factor with (possibly correlated) random effects, plus
    independent variance components within it. It therefore fits exactly:

    - one grouping factor with random intercepts and correlated slopes, e.g.
      ``(1 + session | client_id)`` (groups = client, ``re_formula`` = the slope terms);
    - random intercepts for clients nested in therapists, ``(1 | client_id) + (1 | therapist_id)``
      when every client sees one therapist (groups = therapist, a client variance component).

    It cannot express random slopes together with a second grouping factor (its variance
    components are uncorrelated), nor crossed clients and therapists (a client seen by several
    therapists): :meth:`can_express` says so and the cross-check lists the reason instead of
    numbers. Its fixed-effect standard errors come from the joint Hessian of fixed and covariance
    parameters, so they can differ from lme4's conditional ones when the two are not orthogonal
    (e.g. with a lagged outcome as predictor); estimates are the comparison that matters.
    """

    name = "statsmodels"

    def can_express(self, formula: str, data: pd.DataFrame) -> tuple[bool, str]:
        _, _, random = split_formula(formula)
        if len(random) == 1:
            return True, ""
        if len(random) != 2:
            return False, "statsmodels MixedLM fits at most two nested grouping factors"
        groups = {group for _, group in random}
        if groups != {CLIENT, THERAPIST}:
            return False, "statsmodels MixedLM nests clients in therapists only"
        if any(expr != "1" for expr, _ in random):
            return False, (
                "statsmodels MixedLM cannot combine a correlated random slope with a second "
                "grouping factor (its variance components are uncorrelated)"
            )
        therapists_per_client = data.groupby(CLIENT, observed=True)[THERAPIST].nunique()
        if (therapists_per_client > 1).any():
            return False, (
                "clients are crossed with therapists (some clients saw more than one therapist); "
                "statsmodels MixedLM fits nested random intercepts only"
            )
        return True, ""

    def fit(self, formula: str, data: pd.DataFrame, reml: bool = True) -> EngineFit:
        import statsmodels.formula.api as smf

        expressible, reason = self.can_express(formula, data)
        if not expressible:
            raise ValueError(f"statsmodels cannot fit {formula!r} exactly: {reason}")
        response, fixed_terms, random = split_formula(formula)
        fixed_formula = f"{response} ~ " + " + ".join(fixed_terms or ["1"])
        frame = _model_frame(data, formula)
        if len(random) == 1:
            expr, group = random[0]
            slopes = [term.strip() for term in expr.split("+") if term.strip() not in ("1", "")]
            re_formula = "1" + "".join(f" + {term}" for term in slopes)
            model = smf.mixedlm(fixed_formula, frame, groups=group, re_formula=re_formula)
            component_names: list[str] = []
        else:
            model = smf.mixedlm(
                fixed_formula, frame, groups=THERAPIST, re_formula="1",
                vc_formula={CLIENT: f"0 + C({CLIENT})"},
            )
            component_names = [CLIENT]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(reml=reml)
        for warning in caught:
            log.info("statsmodels: %s", warning.message)
        names = list(result.fe_params.index)
        estimate = result.fe_params.to_numpy(dtype=float)
        se = result.bse_fe.to_numpy(dtype=float)
        z = estimate / se
        fixed = pd.DataFrame(
            {
                "term": [INTERCEPT if name == "Intercept" else name for name in names],
                "estimate": estimate,
                "se": se,
                "df": np.inf,
                "t": z,
                "p": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": estimate - stats.norm.ppf(0.975) * se,
                "ci_high": estimate + stats.norm.ppf(0.975) * se,
            }
        )
        group_name = random[0][1] if len(random) == 1 else THERAPIST
        random_frame = self._random_frame(result, group_name, component_names)
        scale = float(result.scale)
        variances = np.concatenate(
            [np.diag(np.asarray(result.cov_re, dtype=float)), np.asarray(result.vcomp, float)]
        )
        loglik = float(result.llf)
        n_random = np.asarray(result.cov_re).shape[0]
        n_params = len(names) + n_random * (n_random + 1) // 2 + len(component_names) + 1
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
            "hessian_positive_definite": bool(np.all(np.isfinite(se))),
            # statsmodels tries bfgs first and moves to lbfgs, then cg, only on failure
            "optimizer": "statsmodels default (bfgs; lbfgs, cg on failure)",
            **_group_counts(data),
        }
        return EngineFit(self.name, formula, reml, fixed, random_frame, info)

    @staticmethod
    def _random_frame(result, group: str, component_names: list[str]) -> pd.DataFrame:
        cov_re = result.cov_re
        # statsmodels names the random intercept after the grouping factor (or "Group")
        terms = [INTERCEPT if name in ("Group", "Intercept", group) else name
                 for name in cov_re.index]
        matrix = np.asarray(cov_re, dtype=float)
        rows = []
        for i, term in enumerate(terms):
            rows.append({"group": group, "term": term, "term2": "", "variance": matrix[i, i],
                         "sd": float(np.sqrt(max(matrix[i, i], 0.0))), "corr": float("nan")})
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                denominator = np.sqrt(matrix[i, i] * matrix[j, j])
                rows.append({"group": group, "term": terms[i], "term2": terms[j],
                             "variance": matrix[i, j], "sd": float("nan"),
                             "corr": float(matrix[i, j] / denominator) if denominator > 0
                             else float("nan")})
        for name, variance in zip(component_names, np.asarray(result.vcomp, dtype=float)):
            rows.append({"group": name, "term": INTERCEPT, "term2": "", "variance": variance,
                         "sd": float(np.sqrt(max(variance, 0.0))), "corr": float("nan")})
        scale = float(result.scale)
        rows.append({"group": "Residual", "term": "", "term2": "", "variance": scale,
                     "sd": float(np.sqrt(scale)), "corr": float("nan")})
        return pd.DataFrame(rows, columns=RANDOM_COLUMNS)


ENGINES: dict[str, Engine] = {"mixedlm": MixedlmEngine(), "statsmodels": StatsmodelsEngine()}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``mixedlm`` or ``statsmodels``)."""
    return ENGINES[name]
