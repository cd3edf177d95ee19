"""The dynamic panel model with fixed effects by maximum likelihood: the primary lagged estimator.

Method: Allison, Williams & Moral-Benito (2017), "Maximum likelihood for cross-lagged panel models
with fixed effects", Socius 3; applied to the alliance by Falkenstroem, Finkel, Sandell, Rubel &
Holmqvist (2017), J Consult Clin Psychol 85(6). The model (docs: METHODS section 4a), with waves
t = 1..K (sessions):

    y_t = a_t + b y_{t-1} + c x_{t-1} + d w + eta + e_t,   t = 2..K

``eta`` is a latent fixed effect (loading 1 on every y_t, t >= 2) that covaries freely with y_1 and
with every wave of the time-varying predictors, so stable between-client differences cannot bias
b or c. A predetermined predictor (the alliance) is not strictly exogenous: x_s covaries with the
errors e_t of earlier outcome waves (t < s), so the outcome may move later values of the
predictor without biasing c; by default (``contemporaneous_feedback``, METHODS 4a: e_s with
s <= t) x_t also covaries with e_t, so symptoms may act on the same session's alliance, which dpm's
own model (s < t only) would turn into a biased c. An exogenous time-varying predictor has no such covariances. A
time-invariant covariate w (``| ed`` in dpm's formula) covaries with y_1 and the time-varying
predictors but not with eta (its coefficient is identified only under that assumption, as in
the paper). All predictors (y_1, every predictor wave, the invariant covariates) covary freely
with each other and are modelled as random variables (lavaan ``fixed.x = FALSE``), so missing
predictor waves enter full-information ML like any other score.

With ``contemporaneous_feedback=False`` the model is exactly the one the R package dpm (Jacob
Long; ``dpm(y ~ pre(lag(x)) + lag(z) | w)``) writes for lavaan (the default adds the K-2
same-wave covariances); :func:`dpm_description` writes the same lavaan syntax, with dpm's labels
(``p1`` autoregression, ``en1..`` predetermined, ``ex1..`` exogenous, ``c1..`` invariant
coefficients, ``v`` the common error variance with ``equal_errors``); dpm fits it with
``lavaan::sem``. The fit here uses the project's FIML engine over missing-data patterns
(:mod:`analysis.models.panel.fiml`, as the RI-CLPM) on a RAM-form model (:mod:`analysis.models.panel.ram`):

- Estimates: Fisher scoring then Newton steps on the observed Hessian, to a gradient at rounding
  level; starting values from the observed moments (paths 0).
- SEs from the observed information (the Hessian of the log-likelihood), lavaan's default under
  ``missing = "ml"`` and what ``dpm(..., information = "observed")`` requests (the setting with
  which dpm reproduces Stata's xtdpdml and the paper).
- Cluster-robust SEs (``cluster``: the therapist column): the sandwich H^-1 M H^-1 with the
  observed information H as bread and M = sum over clusters of the outer product of the cluster's
  summed per-client scores. This is what lavaan 0.6.14 computes for ``estimator = "MLR",
  cluster = ..., missing = "ml"`` (tests/test_dpm.py checks it live). Used for inference only
  with at least :data:`MIN_CLUSTERS_FOR_ROBUST` clusters.
- Fit indices as lavaan reports them (chi-square against the saturated model fitted by EM under
  FIML; CFI/TLI against the independence model with free means and variances; RMSEA with N;
  SRMR with mean residuals).
- Standardised estimates: lavaan ``std.all``.

Checked against lavaan 0.6.14 on simulated panels (balanced, unbalanced with dropout and
intermittent gaps, free per-wave paths, equal errors, clusters) and on the published example of
the paper (the Cornwell-Rupert wage panel: chi-square 138.48 on 76 df): tests/test_dpm.py.
Deterministic: no random numbers.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import ConfigError, DataError
from analysis.models.panel.fiml import (
    GRADIENT_TOLERANCE,
    inverse_information,
    minimise,
    n_patterns,
    pattern_statistics,
    saturated_moments,
)
from analysis.models.panel.ram import RamModel, RamObjective, Statement

#: Fewest waves of the model: with 2 the fixed effect is not identified.
MIN_WAVES = 3
#: Fewest clusters (therapists) for which the cluster-robust SEs are used for inference. With few
#: clusters the sandwich's meat is estimated from few independent sums: cluster-robust SEs are
#: then biased downwards and tests over-reject (Cameron & Miller 2015, J Human Resources 50(2),
#: section VI: "few" clusters is 20 to 50; McNeish & Stapleton 2016, Educ Psychol Rev 28,
#: found sandwich SEs too small below about 20-25 clusters). Below this number the robust SEs
#: are still reported, but inference rests on the observed-information SEs.
MIN_CLUSTERS_FOR_ROBUST = 20
#: Default of ``contemporaneous_feedback`` (see :func:`dpm_description`).
CONTEMPORANEOUS_FEEDBACK = True
#: Name of the latent fixed effect (dpm's).
FIXED_EFFECT = "alpha"
#: Columns of the ``paths`` table (``se_robust``, ``p_robust`` are added when clusters are given).
PATH_COLUMNS = [
    "lhs", "op", "rhs", "label", "parameter", "wave", "free",
    "estimate", "se", "z", "p", "ci_lower", "ci_upper", "std_estimate",
]
ROBUST_COLUMNS = ["se_robust", "p_robust"]
FIT_KEYS = [
    "n_clients", "n_waves", "n_observed_values", "n_parameters", "loglik", "loglik_saturated",
    "chisq", "df", "pvalue", "baseline_chisq", "baseline_df", "cfi", "tli", "rmsea", "srmr",
    "aic", "bic",
]
CONVERGENCE_KEYS = [
    "converged", "admissible", "nonpositive_variances", "optimizer", "optimizer_success",
    "optimizer_message", "iterations", "newton_steps", "max_abs_gradient",
    "information_min_eigenvalue", "saturated_em_iterations", "saturated_converged",
    "n_missing_patterns",
]
LAGGED_KEYS = [
    "predictor", "outcome", "parameter", "estimate", "se", "z", "p", "ci_lower", "ci_upper",
    "std_estimate", "std_estimate_kind", "se_robust", "p_robust", "ci_robust_lower",
    "ci_robust_upper", "df_robust", "n_clusters", "robust", "equal_paths",
]

_Z95 = float(stats.norm.ppf(0.975))


# --- the model ---------------------------------------------------------------------------------

def _names(waves: int, outcome: str, predetermined: Sequence[str], exogenous: Sequence[str],
           invariant: Sequence[str]) -> dict:
    """Variable names: the outcome waves, the predictor block (each time-varying predictor at
    waves 1..K-1, y_1, the invariant covariates) and the observed order of the fit."""
    lagged = range(1, waves)  # x_{t-1} for t = 2..K: waves 1..K-1 (x_K is not in the model)
    pre = [f"{x}{t}" for x in predetermined for t in lagged]
    exo = [f"{x}{t}" for x in exogenous for t in lagged]
    outcomes = [f"{outcome}{t}" for t in range(1, waves + 1)]
    block = pre + exo + [outcomes[0]] + list(invariant)
    return {"outcomes": outcomes, "pre": pre, "exo": exo, "block": block,
            "observed": outcomes + pre + exo + list(invariant)}


def _statements(waves: int, outcome: str, predetermined: Sequence[str],
                exogenous: Sequence[str], invariant: Sequence[str], equal_paths: bool,
                equal_errors: bool, contemporaneous_feedback: bool) -> tuple[list[str], list[tuple[str, list[Statement]]]]:
    """The model as dpm writes it: (observed names, [(section comment, statements)])."""
    names = _names(waves, outcome, predetermined, exogenous, invariant)
    y = names["outcomes"]
    alpha = FIXED_EFFECT

    def label(base: str, t: int) -> str:
        return base if equal_paths else f"{base}_{t}"

    regressions = []
    for t in range(2, waves + 1):
        for j, x in enumerate(predetermined, 1):
            regressions.append(Statement(y[t - 1], "~", f"{x}{t - 1}", label(f"en{j}", t)))
        for j, x in enumerate(exogenous, 1):
            regressions.append(Statement(y[t - 1], "~", f"{x}{t - 1}", label(f"ex{j}", t)))
        for j, w in enumerate(invariant, 1):
            # dpm keeps invariant coefficients equal over waves even with free lagged paths.
            regressions.append(Statement(y[t - 1], "~", w, f"c{j}"))
        regressions.append(Statement(y[t - 1], "~", y[t - 2], label("p1", t)))
    loadings = [Statement(alpha, "=~", y[t - 1], fixed=1.0) for t in range(2, waves + 1)]
    # The fixed effect covaries with y_1 and every time-varying predictor wave, not with the
    # invariant covariates (their coefficients would not be identified otherwise).
    alpha_covs = [Statement(alpha, "~~", v) for v in names["pre"] + names["exo"] + [y[0]]]
    # Predetermined: the error of y_t covaries with the predictor at later waves s > t
    # (s <= K-1, the last wave in the model), as dpm and xtdpdml write it.
    future = []
    for t in range(2, waves):
        for x in predetermined:
            first = t if contemporaneous_feedback else t + 1
            future += [Statement(y[t - 1], "~~", f"{x}{s}") for s in range(first, waves)]
    block = names["block"]
    pre_set = set(names["pre"])
    pre_covs, exo_covs = [], []
    for i, v in enumerate(block):
        target = pre_covs if v in pre_set else exo_covs
        target += [Statement(v, "~~", other) for other in block[i + 1:]]
    errors = [Statement(y[t - 1], "~~", y[t - 1], "v" if equal_errors else "")
              for t in range(2, waves + 1)]
    intercepts = [Statement(y[t - 1], "~1", "") for t in range(2, waves + 1)]
    # Added by lavaan itself (auto.var, meanstructure), not written by dpm.
    implicit = ([Statement(alpha, "~~", alpha, written=False)]
                + [Statement(v, "~~", v, written=False) for v in block]
                + [Statement(v, "~1", "", written=False) for v in block]
                + [Statement(alpha, "~1", "", fixed=0.0, written=False)])
    sections = [
        ("## Main regressions", regressions),
        ("## Alpha latent variable (random intercept)", loadings),
        ("## Alpha free to covary with observed variables (fixed effects)", alpha_covs),
        ("## Correlating DV errors with same-wave and future values of predetermined predictors"
         if contemporaneous_feedback else
         "## Correlating DV errors with future values of predetermined predictors", future),
        ("## Predetermined predictors covariances", pre_covs),
        ("## Exogenous (time varying and invariant) predictors covariances", exo_covs),
        ("## Holding DV error variance constant for each wave" if equal_errors
         else "## DV error variance free to vary across waves", errors),
        ("## Let DV variance vary across waves", intercepts),
        ("## (added by lavaan: variances and intercepts of the predictors)", implicit),
    ]
    return names["observed"], sections


def _render(statement: Statement) -> str:
    if statement.op == "~1":
        return "1"
    prefix = (f"{statement.label}*" if statement.label
              else f"{statement.fixed:g}*" if statement.fixed is not None else "")
    return prefix + statement.rhs


def dpm_description(waves: int, *, outcome: str = "y", predetermined: Sequence[str] = ("a",),
                    exogenous: Sequence[str] = (), invariant: Sequence[str] = (),
                    equal_paths: bool = True, equal_errors: bool = False,
                    contemporaneous_feedback: bool = CONTEMPORANEOUS_FEEDBACK) -> str:
    """The dynamic panel model in lavaan syntax: the model the R package dpm generates.

    For ``dpm(y ~ pre(lag(a)) + lag(z) | w, error.inv = equal_errors)`` on a panel with waves
    1..K, with the panel's column names (``y1``, ``a1``, ...: wave appended without dpm's
    underscore) and dpm's labels. Statements on one left-hand side are joined on one line, as
    dpm writes them; variances and intercepts of the predictors are left to lavaan (``sem``'s
    defaults add them), exactly as dpm leaves them.

    Parameters
    ----------
    waves : int
        K >= 3.
    outcome, predetermined, exogenous, invariant
        Column stems of the outcome, the predetermined and the strictly exogenous time-varying
        predictors (each lagged by one wave), and the time-invariant covariates.
    equal_paths : bool
        Lagged paths equal over waves (default; dpm's default) or free per wave (dpm's
        ``y.free = TRUE, x.free = TRUE``; the invariant covariates' coefficients stay equal).
    equal_errors : bool
        Error variances equal over waves (dpm's ``error.inv = TRUE``).
    contemporaneous_feedback : bool
        True (default, METHODS 4a: the predictor may covary with the errors e_s, s <= t): the
        error of y_t also covaries with the predetermined predictor at the same wave t (the
        outcome may act on the same session's alliance). False: only with later waves (s > t),
        exactly dpm's (and Stata xtdpdml's) model. Measured (20,000 simulated clients, 6 waves,
        no true effect, symptoms lowering same-session alliance by 0.04 per point): False gave
        c = +1.50 (SE 0.03, chi-square 2153 on 25 df); True gave 0.08 (SE 0.05, chi-square
        17.6 on 21 df). Without a same-session effect both are unbiased; True costs K-2 degrees
        of freedom and some precision.

    Returns
    -------
    str
        The lavaan model syntax, one line per left-hand side.

    Examples
    --------
    >>> print(dpm_description(3).splitlines()[1])
    y2 ~ en1*a1 + p1*y1
    """
    _check_spec(waves, outcome, predetermined, exogenous, invariant)
    _, sections = _statements(waves, outcome, tuple(predetermined), tuple(exogenous),
                              tuple(invariant), equal_paths, equal_errors,
                              contemporaneous_feedback)
    lines = []
    for comment, statements in sections:
        written = [s for s in statements if s.written]
        if not written:
            continue
        lines.append(comment)
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in written:
            grouped.setdefault((s.lhs, s.op if s.op != "~1" else "~"), []).append(_render(s))
        for (lhs, op), terms in grouped.items():
            lines.append(f"{lhs} {op} " + " + ".join(terms))
    return "\n".join(lines) + "\n"


def n_free_parameters(waves: int, *, predetermined: Sequence[str] = ("a",),
                      exogenous: Sequence[str] = (), invariant: Sequence[str] = (),
                      equal_paths: bool = True, equal_errors: bool = False,
                      contemporaneous_feedback: bool = CONTEMPORANEOUS_FEEDBACK) -> int:
    """Number of free parameters of the model (means and predictor (co)variances included).

    Parameters
    ----------
    waves : int
        K >= 3.
    predetermined, exogenous, invariant, equal_paths, equal_errors, contemporaneous_feedback
        The model, as in :func:`dpm_description`.

    Returns
    -------
    int
        The number of free parameters.

    Examples
    --------
    >>> n_free_parameters(8), n_free_parameters(8, contemporaneous_feedback=False)
    (90, 84)
    """
    return _model(waves, "y", tuple(predetermined), tuple(exogenous), tuple(invariant),
                  equal_paths, equal_errors, contemporaneous_feedback).n_parameters


def _model(waves, outcome, predetermined, exogenous, invariant, equal_paths, equal_errors,
           contemporaneous_feedback) -> RamModel:
    observed, sections = _statements(waves, outcome, predetermined, exogenous, invariant,
                                     equal_paths, equal_errors, contemporaneous_feedback)
    statements = [s for _, group in sections for s in group]
    return RamModel(observed, [FIXED_EFFECT], statements)


# --- fitting -----------------------------------------------------------------------------------

def fit_dpm(panel: pd.DataFrame, waves: int, *, outcome: str = "y",
            predetermined: Sequence[str] = ("a",), exogenous: Sequence[str] = (),
            invariant: Sequence[str] = (), equal_paths: bool = True, equal_errors: bool = False,
            cluster: str | None = None, min_clusters: int = MIN_CLUSTERS_FOR_ROBUST,
            contemporaneous_feedback: bool = CONTEMPORANEOUS_FEEDBACK,
            robust_by_client: bool = False) -> dict:
    """Fit the dynamic panel model to a wide panel by full-information maximum likelihood.

    Parameters
    ----------
    panel : DataFrame
        One row per client: ``{outcome}1..{outcome}K``, ``{p}1..{p}K`` for each time-varying
        predictor (wave K of a predictor is not used: it would predict wave K+1), the invariant
        covariates by name, optionally the ``cluster`` column; NaN marks a missing score (the
        layout of :func:`analysis.models.panel.riclpm.panel_from_derived`). Rows without any score are
        dropped. The reverse model is ``fit_dpm(panel, K, outcome="a", predetermined=("y",))``.
    waves : int
        K >= 3, the number of waves (sessions 1..K).
    outcome, predetermined, exogenous, invariant, equal_paths, equal_errors
        The model, see :func:`dpm_description`.
    cluster : str, optional
        Column with each client's cluster (therapist): adds cluster-robust SEs.
    min_clusters : int
        Fewest clusters for which the robust SEs are used for inference
        (:data:`MIN_CLUSTERS_FOR_ROBUST`).
    robust_by_client : bool
        Without ``cluster``: robust SEs with every client (row) its own cluster, the sandwich
        that lavaan's ``estimator = "MLR"`` gives with ``cluster`` set to a client id (rows
        resampled with replacement stay separate clusters).

    Returns
    -------
    dict
        ``paths``: DataFrame, one row per model statement (:data:`PATH_COLUMNS`, plus
        ``se_robust`` and ``p_robust`` with a cluster column): lavaan's ``lhs``/``op``/``rhs``,
        a descriptive ``label`` (``"autoregressive y"``, ``"cross-lagged a -> y"``, ...), the
        lavaan ``parameter`` label (shared by equal rows), the outcome ``wave`` of the row (NA
        where none), ``free``, estimate, observed-information ``se``, ``z``, ``p``, 95% Wald
        interval and lavaan's ``std.all`` as ``std_estimate``.
        ``fit``: :data:`FIT_KEYS` as lavaan reports them. ``convergence``:
        :data:`CONVERGENCE_KEYS` (``converged`` is checked on the gradient and the information,
        not taken from the optimizer). ``lagged``: the cross-lagged coefficient of
        ``predetermined[0]`` -> outcome, :data:`LAGGED_KEYS` (with free paths: the mean over
        waves, its SE from the covariance of the per-wave estimates, ``std_estimate_kind`` says
        so). ``autoregressive``: b (estimate, se, z, p, ci_lower, ci_upper, std_estimate and the
        ``*_robust`` values, NaN without clusters). ``description``: the
        lavaan syntax. ``seconds``: the wall time (the one entry that differs between runs).

    Raises
    ------
    DataError
        Missing or non-numeric columns, too few waves, fewer clients than parameters, a column
        with no variance or fewer than 2 values, consecutive waves never observed together,
        missing cluster ids.
    ConfigError
        Bad arguments (names, ``min_clusters``).

    Examples
    --------
    >>> from analysis.simulate.dynamic import simulate_dynamic, wide_panel
    >>> long, truth = simulate_dynamic("a_no_reverse_effect", seed=3, n_clients=120,
    ...                                n_therapists=12, min_sessions=4, max_sessions=6)
    >>> truth["effect"]
    -1.0
    >>> panel = wide_panel(long, 4)
    >>> list(panel.columns)
    ['client_id', 'therapist_id', 'y1', 'y2', 'y3', 'y4', 'a1', 'a2', 'a3', 'a4']
    >>> result = fit_dpm(panel, 4)
    >>> result["convergence"]["converged"], result["fit"]["n_clients"], result["fit"]["df"]
    (True, 120, 5)
    >>> {key: round(result["lagged"][key], 3) for key in ("estimate", "se", "ci_lower", "ci_upper")}
    {'estimate': -1.171, 'se': 1.329, 'ci_lower': -3.775, 'ci_upper': 1.434}
    >>> result["paths"][["lhs", "op", "rhs", "label", "parameter"]].head(4)
      lhs op rhs                label parameter
    0  y2  ~  a1  cross-lagged a -> y       en1
    1  y2  ~  y1     autoregressive y        p1
    2  y3  ~  a2  cross-lagged a -> y       en1
    3  y3  ~  y2     autoregressive y        p1
    """
    started = time.perf_counter()
    # Before tuple(): a bare string would silently become a tuple of its letters.
    _check_spec(waves, outcome, predetermined, exogenous, invariant)
    with _single_threaded_blas():
        result = _fit(panel, waves, outcome, tuple(predetermined), tuple(exogenous),
                      tuple(invariant), bool(equal_paths), bool(equal_errors), cluster,
                      min_clusters, bool(contemporaneous_feedback), bool(robust_by_client))
    result["seconds"] = time.perf_counter() - started
    return result


def _single_threaded_blas():
    # Small matrices: a threaded BLAS only adds waiting on a shared 2-core machine (see riclpm).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit(panel, waves, outcome, predetermined, exogenous, invariant, equal_paths, equal_errors,
         cluster, min_clusters, contemporaneous_feedback, robust_by_client=False) -> dict:
    _check_spec(waves, outcome, predetermined, exogenous, invariant)
    if isinstance(min_clusters, bool) or not isinstance(min_clusters, (int, np.integer)) \
            or min_clusters < 2:
        raise ConfigError(f"min_clusters must be a whole number >= 2, got {min_clusters!r}")
    model = _model(waves, outcome, predetermined, exogenous, invariant, equal_paths,
                   equal_errors, contemporaneous_feedback)
    data, clusters = _checked_data(panel, waves, outcome, predetermined, exogenous, invariant,
                                   model, cluster)
    n_clients = data.shape[0]
    if clusters is None and robust_by_client:
        clusters = np.arange(n_clients).astype(str).astype(object)
    patterns = pattern_statistics(data)
    objective = RamObjective(model, patterns)
    optimum = minimise(objective, _starting_values(model, data, waves, outcome))
    theta = optimum.theta
    information = 0.5 * n_clients * objective.hessian(theta)  # observed, of the log-likelihood
    covariance, min_eigenvalue = inverse_information(information)
    gradient = objective.gradient(theta)
    max_gradient = float(np.max(np.abs(gradient))) if len(gradient) else 0.0

    robust_cov = None
    n_clusters = None
    sums = None
    if clusters is not None:
        n_clusters = int(len(np.unique(clusters)))
        scores = model.casewise_scores(theta, data)
        _, cluster_index = np.unique(clusters, return_inverse=True)
        sums = np.zeros((n_clusters, model.n_parameters))
        np.add.at(sums, cluster_index, scores)
        # lavaan's small-sample factor G / (G - 1) (as Stata's vce(cluster)); without it the
        # SEs equal the plain score sandwich (checked in tests/test_dpm.py against both).
        meat = sums.T @ sums * n_clusters / (n_clusters - 1)
        robust_cov = covariance @ meat @ covariance

    paths = _paths_table(model, theta, covariance, robust_cov, outcome, predetermined,
                         exogenous, invariant)
    variance_params = {k for s, k in zip(model.statements, model.statement_parameter)
                       if s.op == "~~" and s.lhs == s.rhs and k >= 0}
    negative = sorted({model.parameter_names[k] for k in variance_params if theta[k] <= 0})
    loglik = objective.loglik(theta)
    saturated = saturated_moments(patterns, data)
    fit = _fit_indices(model, theta, data, loglik, saturated, waves)
    convergence = {
        "converged": bool(optimum.success and max_gradient < GRADIENT_TOLERANCE
                          and min_eigenvalue > 0),
        "admissible": not negative,
        "nonpositive_variances": negative,
        "optimizer": "Fisher scoring + Newton (observed information)",
        "optimizer_success": optimum.success,
        "optimizer_message": optimum.message,
        "iterations": optimum.iterations,
        "newton_steps": optimum.newton_steps,
        "max_abs_gradient": max_gradient,
        "information_min_eigenvalue": min_eigenvalue,
        "saturated_em_iterations": saturated.iterations,
        "saturated_converged": saturated.converged,
        "n_missing_patterns": n_patterns(patterns),
    }
    lagged = _lagged(model, theta, covariance, robust_cov, paths, outcome, predetermined[0],
                     equal_paths, n_clusters, min_clusters, sums)
    ar_rows = (paths["label"] == f"autoregressive {outcome}").to_numpy()
    autoregressive = _combination(model, theta, covariance, paths, ar_rows)
    autoregressive["std_estimate"] = float(paths.loc[ar_rows, "std_estimate"].mean())
    robust_ar = (_combination(model, theta, robust_cov, paths, ar_rows)
                 if robust_cov is not None else dict.fromkeys(("se", "p", "ci_lower",
                                                               "ci_upper"), float("nan")))
    autoregressive.update(se_robust=robust_ar["se"], p_robust=robust_ar["p"],
                          ci_robust_lower=robust_ar["ci_lower"],
                          ci_robust_upper=robust_ar["ci_upper"],
                          df_robust=robust_df(_weights(model, paths, ar_rows)[0], covariance,
                                              sums))
    return {"paths": paths, "fit": fit, "convergence": convergence, "lagged": lagged,
            "autoregressive": autoregressive,
            "description": dpm_description(waves, outcome=outcome, predetermined=predetermined,
                                           exogenous=exogenous, invariant=invariant,
                                           equal_paths=equal_paths, equal_errors=equal_errors,
                                           contemporaneous_feedback=contemporaneous_feedback)}


# --- input checks ------------------------------------------------------------------------------

def _check_spec(waves, outcome, predetermined, exogenous, invariant) -> None:
    if isinstance(waves, bool) or not isinstance(waves, (int, np.integer)) or waves < MIN_WAVES:
        raise DataError(
            f"dynamic panel model: needs at least {MIN_WAVES} waves (sessions) for the fixed "
            f"effect to be identified, got {waves!r}; use 3 or more sessions as waves"
        )
    for name, value in (("predetermined", predetermined), ("exogenous", exogenous),
                        ("invariant", invariant)):
        if isinstance(value, str):
            raise ConfigError(f"dynamic panel model: {name} must be a list of column names, "
                              f"got the string {value!r} (write ({value!r},))")
    if not predetermined and not exogenous:
        raise ConfigError("dynamic panel model: give at least one time-varying predictor "
                          "(predetermined, e.g. ('a',))")
    stems = [outcome, *predetermined, *exogenous]
    if len(set(stems)) != len(stems) or set(stems) & set(invariant) \
            or len(set(invariant)) != len(invariant):
        raise ConfigError(f"dynamic panel model: outcome {outcome!r}, predictors "
                          f"{list(predetermined) + list(exogenous)} and invariant covariates "
                          f"{list(invariant)} must all be different")
    for name in [*stems, *invariant]:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", name) \
                or name == FIXED_EFFECT:
            raise ConfigError(f"dynamic panel model: {name!r} is not a usable column name "
                              f"(letters, digits, '_' or '.', starting with a letter; not "
                              f"{FIXED_EFFECT!r})")
    clash = [(a, b) for a in stems for b in stems if a != b and re.fullmatch(
        rf"{re.escape(a)}\d+", b)]
    if clash:
        raise ConfigError(f"dynamic panel model: the wave columns of {clash[0][0]!r} and "
                          f"{clash[0][1]!r} cannot be told apart; rename one")


def _checked_data(panel, waves, outcome, predetermined, exogenous, invariant, model, cluster):
    names = model.observed
    absent = [name for name in names if name not in panel.columns]
    if cluster is not None and cluster not in panel.columns:
        absent.append(cluster)
    if absent:
        raise DataError(
            f"dynamic panel model: panel column(s) {absent} are missing for {waves} waves "
            f"(outcome {outcome!r}, predictors {list(predetermined) + list(exogenous)}); build "
            "the panel with riclpm.panel_from_derived using the same number of sessions"
        )
    columns = []
    for name in names:
        try:
            columns.append(pd.to_numeric(panel[name]).to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError):
            raise DataError(f"dynamic panel model, column {name!r}: values are not numbers"
                            ) from None
    data = np.column_stack(columns) if len(panel) else np.empty((0, len(names)))
    if np.isinf(data).any():
        column = names[int(np.flatnonzero(np.isinf(data).any(axis=0))[0])]
        raise DataError(f"dynamic panel model, column {column!r}: infinite values")
    keep = np.isfinite(data).any(axis=1)
    data = data[keep]
    clusters = None
    if cluster is not None:
        ids = panel[cluster].to_numpy()[keep]
        lost = pd.isna(ids)
        if lost.any():
            raise DataError(
                f"dynamic panel model, column {cluster!r}: {int(lost.sum())} client(s) have no "
                "cluster (therapist) id; fill them in or fit without cluster-robust SEs"
            )
        clusters = np.array([str(v) for v in ids], dtype=object)

    seen = np.isfinite(data)
    per_client = seen.sum(axis=1)
    needed = model.n_parameters
    with_two = int((per_client >= 2).sum())
    if with_two < needed:
        raise DataError(
            f"dynamic panel model: {data.shape[0]} clients have data in sessions 1-{waves} and "
            f"{with_two} of them have two or more scores; the model with {waves} waves has "
            f"{needed} free parameters and needs at least {needed} such clients. Use fewer "
            "waves (sessions), or more clients."
        )
    p = len(names)
    moments = p * (p + 1) // 2 + p
    if moments < needed:  # pragma: no cover - only for exotic specifications
        raise DataError(f"dynamic panel model: {needed} parameters but only {moments} means "
                        "and covariances; use more waves")
    for j, name in enumerate(names):
        values = data[seen[:, j], j]
        if values.size < 2:
            raise DataError(
                f"dynamic panel model, column {name!r}: {values.size} client(s) have a value; "
                "use fewer waves (sessions)"
            )
        if np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())):
            raise DataError(
                f"dynamic panel model, column {name!r}: all {values.size} values are equal "
                "(no variance), so the model cannot be fitted; check that session's scores or "
                "use fewer waves (sessions)"
            )
    y = [names.index(f"{outcome}{t}") for t in range(1, waves + 1)]
    for t in range(1, waves):
        if not (seen[:, y[t - 1]] & seen[:, y[t]]).any():
            raise DataError(
                f"dynamic panel model: no client has {outcome!r} at both wave {t} and wave "
                f"{t + 1}, so the autoregression between them is not identified; use fewer "
                "waves (sessions)"
            )
    return data, clusters


# --- starting values ---------------------------------------------------------------------------

def _starting_values(model: RamModel, data: np.ndarray, waves: int, outcome: str) -> np.ndarray:
    """Observed means and variances; the outcome's variance split between the fixed effect
    and the errors; paths and covariances 0 (a positive-definite start)."""
    mean = np.nanmean(data, axis=0)
    variance = np.nanvar(data, axis=0)
    index = {name: j for j, name in enumerate(model.observed)}
    outcome_var = float(np.mean([variance[index[f"{outcome}{t}"]]
                                 for t in range(2, waves + 1)]))
    start = np.zeros(model.n_parameters)
    done = set()
    for s, k in zip(model.statements, model.statement_parameter):
        if k < 0 or k in done:
            continue
        done.add(k)
        if s.op == "~1":
            start[k] = mean[index[s.lhs]]
        elif s.op == "~~" and s.lhs == s.rhs:
            if s.lhs == FIXED_EFFECT:
                start[k] = 0.25 * outcome_var
            elif s.lhs == f"{outcome}1" or s.lhs not in index or \
                    not re.fullmatch(rf"{re.escape(outcome)}\d+", s.lhs):
                start[k] = variance[index[s.lhs]]
            else:
                start[k] = 0.5 * outcome_var
    return start


# --- results -----------------------------------------------------------------------------------

def _describe(model: RamModel, outcome, predetermined, exogenous, invariant):
    """Per statement: a descriptive label and the wave it belongs to."""
    stem_of = {}
    for name in model.observed:
        for stem in (outcome, *predetermined, *exogenous):
            match = re.fullmatch(rf"{re.escape(stem)}(\d+)", name)
            if match:
                stem_of[name] = (stem, int(match.group(1)))
    for w in invariant:
        stem_of[w] = (w, None)
    labels, waves = [], []
    for s in model.statements:
        lhs_stem, lhs_wave = stem_of.get(s.lhs, (s.lhs, None))
        rhs_stem, rhs_wave = stem_of.get(s.rhs, (s.rhs, None))
        endogenous = lhs_stem == outcome and lhs_wave is not None and lhs_wave >= 2
        if s.op == "~":
            if rhs_stem == outcome:
                text = f"autoregressive {outcome}"
            elif rhs_stem in predetermined:
                text = f"cross-lagged {rhs_stem} -> {outcome}"
            elif rhs_stem in exogenous:
                text = f"lagged exogenous {rhs_stem} -> {outcome}"
            else:
                text = f"invariant {rhs_stem} -> {outcome}"
            wave = lhs_wave
        elif s.op == "=~":
            text, wave = "fixed-effect loading", rhs_wave
        elif s.op == "~1":
            text = ("intercept" if endogenous else "fixed-effect mean (fixed 0)"
                    if s.lhs == FIXED_EFFECT else "predictor mean")
            wave = lhs_wave
        elif s.lhs == FIXED_EFFECT:
            text = "fixed-effect variance" if s.rhs == FIXED_EFFECT else "fixed-effect covariance"
            wave = rhs_wave
        elif endogenous and s.lhs == s.rhs:
            text, wave = "error variance", lhs_wave
        elif endogenous:
            text, wave = "error x later predetermined covariance", lhs_wave
        else:
            text = "predictor variance" if s.lhs == s.rhs else "predictor covariance"
            wave = lhs_wave
        labels.append(text)
        waves.append(wave)
    return labels, waves


def _paths_table(model, theta, covariance, robust_cov, outcome, predetermined, exogenous,
                 invariant) -> pd.DataFrame:
    k = np.array(model.statement_parameter)
    free = k >= 0
    estimate = np.array([theta[i] if i >= 0 else s.fixed
                         for s, i in zip(model.statements, k)], dtype=float)
    se_all = np.sqrt(np.clip(np.diag(covariance), 0, None)) if len(theta) else np.array([])
    se = np.where(free, se_all[np.maximum(k, 0)] if len(theta) else np.nan, np.nan)
    labels, waves = _describe(model, outcome, predetermined, exogenous, invariant)
    table = pd.DataFrame({
        "lhs": [s.lhs for s in model.statements],
        "op": [s.op for s in model.statements],
        "rhs": [s.rhs for s in model.statements],
        "label": labels,
        "parameter": [s.label if s.label else (model.parameter_names[i] if i >= 0 else "")
                      for s, i in zip(model.statements, k)],
        "wave": pd.array(waves, dtype="Int64"),
        "free": free,
        "estimate": estimate,
        "se": se,
    })
    table["z"] = table["estimate"] / table["se"]
    table["p"] = 2 * stats.norm.sf(np.abs(table["z"]))
    table["ci_lower"] = table["estimate"] - _Z95 * table["se"]
    table["ci_upper"] = table["estimate"] + _Z95 * table["se"]
    table["std_estimate"] = model.standardised(theta)
    columns = list(PATH_COLUMNS)
    if robust_cov is not None:
        robust_se = np.sqrt(np.clip(np.diag(robust_cov), 0, None))
        table["se_robust"] = np.where(free, robust_se[np.maximum(k, 0)], np.nan)
        table["p_robust"] = 2 * stats.norm.sf(np.abs(table["estimate"] / table["se_robust"]))
        columns += ROBUST_COLUMNS
    for column in ("lhs", "op", "rhs", "label", "parameter"):
        table[column] = table[column].astype("string")
    return table[columns]


def _weights(model: RamModel, paths: pd.DataFrame, rows) -> tuple[np.ndarray, int]:
    """Weights over the parameters of the mean over the selected rows (one row per wave)."""
    weights = np.zeros(model.n_parameters)
    chosen = np.flatnonzero(np.asarray(rows))
    for i in chosen:
        weights[model.statement_parameter[i]] += 1.0 / len(chosen)
    return weights, len(chosen)


def _combination(model, theta, covariance, paths, rows) -> dict:
    weights, _ = _weights(model, paths, rows)
    estimate = float(weights @ theta)
    se = float(math.sqrt(max(weights @ covariance @ weights, 0.0))) \
        if np.isfinite(covariance).all() else float("nan")
    z = estimate / se if se > 0 else float("nan")
    return {"estimate": estimate, "se": se, "z": z,
            "p": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else float("nan"),
            "ci_lower": estimate - _Z95 * se, "ci_upper": estimate + _Z95 * se}


def robust_df(weights: np.ndarray, covariance: np.ndarray,
              cluster_scores: np.ndarray | None) -> float:
    """Degrees of freedom of the sandwich variance of ``weights @ theta`` (Pan & Wall 2002).

    The sandwich variance is a sum over clusters, ``V = c * sum_g u_g**2`` with
    ``u_g = weights' A^-1 s_g`` (``A^-1`` the inverse observed information, ``s_g`` the cluster's
    score sum, ``c = G / (G - 1)``). Its sampling variance is estimated from the spread of the
    ``u_g**2`` (``G / (G - 1) * sum_g (u_g**2 - mean)**2``, times ``c**2``), and V is matched to
    a scaled chi-square: ``df = 2 V**2 / var(V)``, at most ``G - 1``. With equal, normal cluster
    contributions this is about G; clusters that differ in how much they carry (clients with 4
    and with 12 sessions) make V noisier and df smaller, so the Wald test uses t(df) instead of
    the normal: without it the 95% intervals covered 0.93 at 150 clients in the recovery study.

    Parameters
    ----------
    weights : numpy.ndarray
        The contrast over the free parameters (one entry per parameter).
    covariance : numpy.ndarray
        The inverse observed information (parameters x parameters).
    cluster_scores : numpy.ndarray or None
        The score sums of each cluster (clusters x parameters); None: no sandwich, NaN.

    Returns
    -------
    float
        The degrees of freedom (NaN without clusters, or with fewer than 2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> round(robust_df(np.array([1.0]), np.eye(1), rng.normal(size=(200, 1))))
    156
    >>> uneven = rng.normal(size=(200, 1)) * np.repeat([0.2, 3.0], 100)[:, None]
    >>> round(robust_df(np.array([1.0]), np.eye(1), uneven))
    97
    """
    if cluster_scores is None or len(cluster_scores) < 2:
        return float("nan")
    n_clusters = len(cluster_scores)
    squares = (cluster_scores @ (covariance @ weights)) ** 2
    spread = n_clusters / (n_clusters - 1) * float(np.sum((squares - squares.mean()) ** 2))
    if not np.isfinite(spread) or spread <= 0:
        return float(n_clusters - 1)
    return float(min(2.0 * float(squares.sum()) ** 2 / spread, n_clusters - 1))


def _lagged(model, theta, covariance, robust_cov, paths, outcome, predictor, equal_paths,
            n_clusters, min_clusters, cluster_scores=None) -> dict:
    rows = (paths["label"] == f"cross-lagged {predictor} -> {outcome}").to_numpy()
    result = _combination(model, theta, covariance, paths, rows)
    waves = paths.loc[rows, "wave"]
    span = f"waves {int(waves.min())}-{int(waves.max())}"
    result["std_estimate"] = float(paths.loc[rows, "std_estimate"].mean())
    result["std_estimate_kind"] = (
        f"mean over {span} of lavaan std.all (the standardised value differs by wave "
        "because the implied SDs do" + (", even with the path equal over waves)" if equal_paths
                                        else "; the path itself is free per wave)"))
    if robust_cov is not None:
        robust = _combination(model, theta, robust_cov, paths, rows)
        se_r, p_r = robust["se"], robust["p"]
        ci_r = (robust["ci_lower"], robust["ci_upper"])
    else:
        se_r = p_r = float("nan")
        ci_r = (float("nan"), float("nan"))
    parameters = sorted(set(paths.loc[rows, "parameter"].astype(str)))
    return {
        "predictor": predictor, "outcome": outcome,
        "parameter": parameters[0] if len(parameters) == 1 else ", ".join(parameters),
        "estimate": result["estimate"], "se": result["se"], "z": result["z"], "p": result["p"],
        "ci_lower": result["ci_lower"], "ci_upper": result["ci_upper"],
        "std_estimate": result["std_estimate"], "std_estimate_kind": result["std_estimate_kind"],
        "se_robust": se_r, "p_robust": p_r, "ci_robust_lower": ci_r[0],
        "ci_robust_upper": ci_r[1], "n_clusters": n_clusters,
        "df_robust": robust_df(_weights(model, paths, rows)[0], covariance, cluster_scores),
        "robust": bool(n_clusters is not None and n_clusters >= min_clusters
                       and np.isfinite(se_r)),
        "equal_paths": bool(equal_paths),
        "estimate_kind": ("one coefficient, equal over " + span) if equal_paths
        else f"mean over {span} of the per-wave coefficients (SE from their covariance)",
    }


def _fit_indices(model: RamModel, theta, data, loglik, saturated, waves) -> dict:
    n_clients, p = data.shape
    n_parameters = model.n_parameters
    moments = p * (p + 1) // 2 + p
    df = moments - n_parameters
    chisq = max(0.0, 2.0 * (saturated.loglik - loglik))
    # Independence model with free means and variances: under FIML it factorises by column.
    seen = np.isfinite(data)
    counts = seen.sum(axis=0)
    variances = np.nanvar(data, axis=0)
    baseline_loglik = float(-0.5 * np.sum(counts * (math.log(2 * math.pi) + np.log(variances)
                                                    + 1.0)))
    baseline_chisq = 2.0 * (saturated.loglik - baseline_loglik)
    baseline_df = moments - 2 * p
    pvalue = float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")
    t_model, t_base = chisq - df, baseline_chisq - baseline_df
    if t_model < 0 and t_base < 0:
        cfi = 1.0
    else:
        cfi = 1.0 - max(0.0, t_model) / max(0.0, t_model, t_base)
    tli = ((baseline_chisq / baseline_df - chisq / df) / (baseline_chisq / baseline_df - 1)
           if df > 0 else float("nan"))
    rmsea = math.sqrt(max(0.0, chisq / df - 1.0) / n_clients) if df > 0 else float("nan")
    sigma, mean = model.implied(theta)
    sd = np.sqrt(np.diag(saturated.cov))
    residual_cov = (saturated.cov - sigma) / np.outer(sd, sd)
    residual_mean = (saturated.mean - mean) / sd
    lower = np.tril_indices(p)
    srmr = math.sqrt((np.sum(residual_cov[lower] ** 2) + np.sum(residual_mean ** 2)) / moments)
    return {
        "n_clients": int(n_clients), "n_waves": int(waves),
        "n_observed_values": int(seen.sum()), "n_parameters": int(n_parameters),
        "loglik": float(loglik), "loglik_saturated": float(saturated.loglik),
        "chisq": float(chisq), "df": int(df), "pvalue": pvalue,
        "baseline_chisq": float(baseline_chisq), "baseline_df": int(baseline_df),
        "cfi": float(cfi), "tli": float(tli), "rmsea": float(rmsea), "srmr": float(srmr),
        "aic": float(-2 * loglik + 2 * n_parameters),
        "bic": float(-2 * loglik + n_parameters * math.log(n_clients)),
    }
