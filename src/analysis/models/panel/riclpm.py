"""The random-intercept cross-lagged panel model (RI-CLPM) of alliance and symptoms.

The lagged multilevel models (M2, M3 of docs/methods.md) mix stable between-client differences
into the lagged effects when autoregression is strong. The RI-CLPM (Hamaker, Kuiper & Grasman
2015) separates them: each client's scores are a wave mean, a stable random intercept per variable
(the between-client part) and a within-client component; the within components carry over from
wave to wave (autoregressive paths) and act on each other (cross-lagged paths:
alliance -> later symptoms, symptoms -> later alliance).

Input is the pipeline's ``derived`` frame (one row per outcome x client x session); the waves
are the sessions that :func:`analysis.models.panel.waves.choose_waves` chooses (the consecutive
sessions from the time origin that enough clients reach; shared with the dynamic panel model).
:func:`panel_from_derived` builds the wide panel (``client_id``, ``therapist_id`` when known,
``a1..aK, y1..yK``; a missed session is NaN), :func:`riclpm_description` writes the model in
lavaan syntax (also read by semopy), and :func:`fit_riclpm` fits it by full-information maximum
likelihood (FIML, missing waves assumed missing at random) and returns tidy results: a table of
every parameter (``PATH_COLUMNS``), fit indices (``FIT_KEYS``) and convergence information.

Innovation (co)variances are free per wave (Hamaker et al. 2015) or, with
``equal_innovations=True``, held equal over waves 2..K (one variance per variable and one
covariance: 3 parameters instead of 3(K-1)), a stationarity assumption that lets more waves enter
with few clients and keeps per-wave variances from being estimated below zero on thin waves.

How the fit is computed, and why (checked against R lavaan 0.6.14 in tests/test_riclpm.py):

- semopy 2.3.11 parses the description into its model matrices (a ``semopy.ModelMeans``: free
  intercepts of the observed scores, latent means 0, lavaan's ``missing = "ml"`` setting) and
  supplies the derivatives of the implied covariance and means and the standardised estimates.
  Not used from semopy, measured: ``semopy.Model(...).fit(obj="FIML")`` has no mean structure
  (it takes the scores as centred at 0; on PHQ-9-scaled scores its paths were meaningless, e.g.
  an alliance autoregression of 0.68 against lavaan's 0.26); ``ModelMeans.fit`` gives lavaan's
  estimates but loops over every client's row at every evaluation (82 s for 2,000 clients and
  6 waves; 6 s for 400 clients and 4 waves) and its standard errors come from the complete-data
  expected information, too small when waves are missing (0.053 against lavaan's 0.064).
- The same FIML objective is computed by :mod:`analysis.models.panel.fiml` from per-missing-pattern
  sufficient statistics (count, mean, covariance): identical values (tested against semopy's
  ``obj_fiml``) at a cost that does not grow with the number of clients. It is minimised by
  Fisher scoring from moment-based starting values, then Newton steps on the observed Hessian,
  to a gradient at rounding level (about 1 s for 100,000 clients and 6 waves).
- Standard errors come from the observed information matrix (the Hessian of the log-likelihood
  at the estimates, by central differences of the analytic gradient), lavaan's default under
  ``missing = "ml"``.
- The chi-square test compares with the saturated model (free means and covariances, fitted by
  EM under FIML); the baseline of CFI/TLI is the independence model with free means and
  variances; RMSEA uses N, the number of clients (lavaan's ``likelihood = "normal"``); SRMR is
  Bentler's with mean residuals, against the EM moments; AIC/BIC count the wave means as
  parameters. All as lavaan reports them.
- Standardised estimates are lavaan's ``std.all``: semopy's standardised output, except that a
  covariance is divided by the two variances of its own matrix (so an innovation covariance is
  the innovations' correlation), as lavaan does; semopy divides by the total implied SDs.
- Estimation is deterministic (no random numbers): the same panel gives identical results.
"""

from __future__ import annotations

import contextlib
import math
import re
import time

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.panel.fiml import (
    GRADIENT_TOLERANCE,
    FimlObjective,
    Saturated,
    active_parameters,
    inverse_information,
    minimise,
    n_patterns,
    pattern_statistics,
    saturated_moments,
)
from analysis.models.panel.waves import WaveChoice, choose_waves, wave_counts, wide_panel

#: Column prefixes of the wide panel: ``a<t>`` alliance, ``y<t>`` symptoms at wave t.
ALLIANCE_PREFIX = "a"
SYMPTOM_PREFIX = "y"
#: Fewest waves with which the RI-CLPM is identified (with 2 it has more parameters than moments).
MIN_WAVES = 3
#: Columns of the ``paths`` table returned by :func:`fit_riclpm`.
PATH_COLUMNS = [
    "lhs", "op", "rhs", "label", "wave", "parameter", "free",
    "estimate", "se", "z", "p", "ci_lower", "ci_upper", "std_estimate",
]
#: Keys of the ``fit`` dict returned by :func:`fit_riclpm`.
FIT_KEYS = [
    "n_clients", "n_waves", "n_observed_values", "n_parameters", "loglik", "loglik_saturated",
    "chisq", "df", "pvalue", "baseline_chisq", "baseline_df", "cfi", "tli", "rmsea", "srmr",
    "aic", "bic",
]
#: Keys of the ``convergence`` dict returned by :func:`fit_riclpm`.
CONVERGENCE_KEYS = [
    "converged", "admissible", "nonpositive_variances", "problems", "optimizer",
    "optimizer_success", "optimizer_message", "iterations", "newton_steps", "max_abs_gradient",
    "information_min_eigenvalue", "saturated_em_iterations", "saturated_converged",
    "n_missing_patterns", "semopy_version",
]

_Z95 = float(stats.norm.ppf(0.975))

_ORDER = [
    "autoregressive alliance", "autoregressive symptoms", "cross-lagged alliance -> symptoms",
    "cross-lagged symptoms -> alliance", "random intercept variance alliance",
    "random intercept variance symptoms", "random intercept covariance",
    "wave-1 within variance alliance", "wave-1 within variance symptoms",
    "wave-1 within covariance", "innovation variance alliance", "innovation variance symptoms",
    "innovation covariance", "random intercept x wave-1 within covariance (fixed 0)",
    "wave mean alliance", "wave mean symptoms", "random intercept loading alliance",
    "random intercept loading symptoms", "within component loading alliance",
    "within component loading symptoms", "measurement error variance (fixed 0)",
]


class PanelIdentificationError(DataError):
    """The panel cannot identify the RI-CLPM (a :class:`~analysis.errors.DataError`).

    ``kind`` says why, so that a caller can say what would help: ``"too_few_waves"``,
    ``"too_few_clients"`` (``needed`` parameters, ``available`` clients with two or more waves),
    ``"wave_without_data"``, ``"no_variance"`` or ``"no_consecutive"`` (``wave``: the first wave
    concerned, counting from 1).
    """

    def __init__(self, message: str, kind: str, wave: int | None = None,
                 needed: int | None = None, available: int | None = None):
        super().__init__(message)
        self.kind, self.wave, self.needed, self.available = kind, wave, needed, available


def panel_from_derived(
    derived: pd.DataFrame, outcome: str, sessions: WaveChoice | int | None = None
) -> tuple[pd.DataFrame, dict]:
    """The wide alliance-symptom panel of one outcome over the chosen waves.

    Parameters
    ----------
    derived : DataFrame
        The pipeline's derived frame: one row per outcome x client x session, with columns
        ``outcome``, ``client_id``, ``session`` (whole numbers, from any first number),
        ``alliance_score`` and ``symptom_score``; ``therapist_id`` is carried over when present
        (others are ignored).
    outcome : str
        The outcome whose rows are used (``"phq9"``, ``"gad7"``, ...).
    sessions : WaveChoice, int or None
        The waves: a :class:`~analysis.models.panel.waves.WaveChoice` (from
        :func:`~analysis.models.panel.waves.choose_waves`); an int K, the K sessions from the study's
        first observed session number (sessions 1..K when numbered from 1); None, the choice by
        the defaults of ``models.panel``.

    Returns
    -------
    (DataFrame, dict)
        The panel: one row per client with at least one score in the waves, sorted by
        ``client_id``, columns ``client_id``, ``therapist_id`` (when the derived frame has it),
        ``a1..aK, y1..yK`` (float; NaN where the session or that score is missing;
        full-information ML uses the partial rows). The counts: ``clients`` (clients of the
        outcome), ``clients_with_data`` (rows of the panel), ``clients_2plus_waves`` (clients
        with a score at two or more of the waves), ``clients_by_waves`` (number of waves with a
        score -> clients), ``alliance_per_wave`` and ``symptoms_per_wave`` (wave -> clients with
        that score), ``sessions`` (K), ``outcome`` and ``waves`` (the choice, as a dict).

    Raises
    ------
    DataError
        A required column is missing, the outcome has no rows, a row has no client id, sessions
        are not whole numbers, scores are not numbers, or a client has two rows for one session.
    ConfigError
        ``sessions`` is an int below 1.

    Examples
    --------
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(50, 4, seed=1, output="derived")
    >>> panel, counts = panel_from_derived(derived, "phq9", sessions=3)
    >>> list(panel.columns), counts["clients_with_data"]
    (['client_id', 'therapist_id', 'a1', 'a2', 'a3', 'y1', 'y2', 'y3'], 50)
    """
    if isinstance(sessions, WaveChoice):
        choice = sessions
    elif sessions is None:
        choice = choose_waves(derived, outcome)
    else:
        choice = choose_waves(derived, outcome, origin="study", n_waves=sessions)
    return wide_panel(derived, outcome, choice)


def riclpm_description(waves: int, constrained: bool = True,
                       equal_innovations: bool = False) -> str:
    """The RI-CLPM in lavaan syntax (read by semopy and by R's lavaan alike).

    The specification of Hamaker, Kuiper & Grasman (2015) as coded by Mulder & Hamaker (2021):
    random intercepts ``RIa``, ``RIy`` with all loadings fixed to 1; one within component per
    score and wave (``wa<t>``, ``wy<t>``, loading 1); autoregressive and cross-lagged paths between
    consecutive within components; the wave-1 within covariance and the later innovations'
    covariances; the random intercepts' variances and covariance; the random intercepts
    uncorrelated with the wave-1 within components; measurement error variances fixed to 0. The
    intercepts of the observed scores (wave means) are free and added by the fitting program
    (lavaan ``meanstructure = TRUE``; semopy ``ModelMeans``).

    Parameters
    ----------
    waves : int
        Number of waves K (>= 3 for an identified model).
    constrained : bool
        True (default): each lagged path is one parameter over all waves (labels ``ar_a``,
        ``ar_y``, ``cl_ay`` for alliance -> symptoms, ``cl_ya`` for symptoms -> alliance). False:
        free per wave (a sensitivity analysis).
    equal_innovations : bool
        False (default): the innovation variances and covariance of waves 2..K are free per wave.
        True: held equal over those waves (labels ``iv_a``, ``iv_y``, ``ic_ay``); the wave-1
        (co)variances stay free, as they are the within-client (co)variances at the start, not
        innovations.

    Returns
    -------
    str
        The model text, one statement per line.

    Raises
    ------
    DataError
        ``waves`` below 3 (the model is not identified).

    Examples
    --------
    >>> print(riclpm_description(3).splitlines()[11])
    wa2 ~ ar_a*wa1 + cl_ya*wy1
    """
    _check_waves(waves)
    ks = range(1, waves + 1)
    lines = [
        "# Random intercepts (stable between-client differences)",
        "RIa =~ " + " + ".join(f"1*{ALLIANCE_PREFIX}{t}" for t in ks),
        "RIy =~ " + " + ".join(f"1*{SYMPTOM_PREFIX}{t}" for t in ks),
        "# Within-client components",
    ]
    for t in ks:
        lines.append(f"wa{t} =~ 1*{ALLIANCE_PREFIX}{t}")
        lines.append(f"wy{t} =~ 1*{SYMPTOM_PREFIX}{t}")
    lines.append("# Autoregressive and cross-lagged paths between within-client components")
    for t in range(2, waves + 1):
        if constrained:
            lines.append(f"wa{t} ~ ar_a*wa{t - 1} + cl_ya*wy{t - 1}")
            lines.append(f"wy{t} ~ cl_ay*wa{t - 1} + ar_y*wy{t - 1}")
        else:
            lines.append(f"wa{t} ~ wa{t - 1} + wy{t - 1}")
            lines.append(f"wy{t} ~ wa{t - 1} + wy{t - 1}")
    lines.append("# Wave-1 within (co)variances and the later innovations' (co)variances"
                 + (" (equal over waves)" if equal_innovations else ""))
    for t in ks:
        equal = equal_innovations and t > 1
        lines.append(f"wa{t} ~~ {'iv_a*' if equal else ''}wa{t}")
        lines.append(f"wy{t} ~~ {'iv_y*' if equal else ''}wy{t}")
        lines.append(f"wa{t} ~~ {'ic_ay*' if equal else ''}wy{t}")
    lines += [
        "# Random intercepts: variances, covariance, uncorrelated with the wave-1 within parts",
        "RIa ~~ RIa",
        "RIy ~~ RIy",
        "RIa ~~ RIy",
        "RIa ~~ 0*wa1",
        "RIa ~~ 0*wy1",
        "RIy ~~ 0*wa1",
        "RIy ~~ 0*wy1",
        "# No measurement error: the scores are fully split into the parts above",
    ]
    for t in ks:
        lines.append(f"{ALLIANCE_PREFIX}{t} ~~ 0*{ALLIANCE_PREFIX}{t}")
        lines.append(f"{SYMPTOM_PREFIX}{t} ~~ 0*{SYMPTOM_PREFIX}{t}")
    return "\n".join(lines) + "\n"


def n_free_parameters(waves: int, constrained: bool = True,
                      equal_innovations: bool = False) -> int:
    """Number of free parameters of the RI-CLPM with K waves (wave means included).

    2K wave means, 3 random-intercept (co)variances, 3 wave-1 within (co)variances,
    3(K-1) innovation (co)variances (3 when equal over waves) and 4 lagged paths (4(K-1) when
    free per wave).

    Parameters
    ----------
    waves : int
        K, the number of waves.
    constrained : bool
        Lagged paths equal over waves (True) or free per wave.
    equal_innovations : bool
        Innovation (co)variances equal over waves.

    Returns
    -------
    int
        The number of free parameters.

    Examples
    --------
    >>> n_free_parameters(6), n_free_parameters(6, constrained=False)
    (37, 53)
    >>> n_free_parameters(6, equal_innovations=True), n_free_parameters(10, True, True)
    (25, 33)
    """
    _check_waves(waves)
    innovations = 3 if equal_innovations else 3 * (waves - 1)
    return 2 * waves + 6 + innovations + (4 if constrained else 4 * (waves - 1))


def fit_riclpm(panel: pd.DataFrame, waves: int, constrained: bool = True,
               equal_innovations: bool = False, wave_labels: list[str] | None = None) -> dict:
    """Fit the RI-CLPM to a wide panel by full-information maximum likelihood.

    Parameters
    ----------
    panel : DataFrame
        Wide panel as returned by :func:`panel_from_derived`: columns ``a1..aK`` and ``y1..yK``
        (others are ignored); NaN marks a missing score. Rows without any score are dropped.
    waves : int
        K, the number of waves to model (the first K of the panel's columns).
    constrained : bool
        Lagged paths equal over waves (default) or free per wave.
    equal_innovations : bool
        Innovation variances and covariance equal over waves 2..K (see
        :func:`riclpm_description`); default free per wave.
    wave_labels : list of str, optional
        How messages name wave 1..K (e.g. ``["session 3", "session 4", ...]``); default
        ``"wave <k>"``.

    Returns
    -------
    dict
        ``paths``: DataFrame with columns :data:`PATH_COLUMNS`, one row per model parameter
        (fixed ones included, ``free`` False, ``se`` NaN). ``op`` and ``lhs``/``rhs`` follow
        lavaan (``=~`` loadings, ``~`` paths, ``~~`` (co)variances, ``~1`` intercepts); ``label``
        says what the row is (``"autoregressive alliance"``, ``"cross-lagged alliance ->
        symptoms"``, ``"innovation covariance"``, ...); ``wave`` the wave the row belongs to (the
        outcome wave of a path; NA for random-intercept terms); ``parameter`` the parameter's name
        (shared by the rows of a constrained path); ``se`` from the observed information; ``z``,
        two-sided normal ``p`` and the 95% Wald interval; ``std_estimate`` the completely
        standardised estimate (lavaan ``std.all``: by the model-implied SDs).
        ``fit``: dict with keys :data:`FIT_KEYS` (NaN where undefined, e.g. RMSEA at df = 0).
        ``convergence``: dict with keys :data:`CONVERGENCE_KEYS` (``converged`` is checked on the
        final gradient and the observed information, not taken from the optimizer;
        ``admissible`` is False when a variance is estimated at or below 0 or the latent
        covariance matrix is not positive semi-definite (a correlation beyond -1 or 1);
        ``problems`` lists what makes the fit inadmissible or unconverged, in words).
        ``description``: the model text. ``seconds``: wall time of the fit (the one entry that
        differs between identical runs).

    Raises
    ------
    PanelIdentificationError
        (a DataError) Fewer than 3 waves, fewer clients with two or more waves than free
        parameters, a score column with fewer than 2 values or no variance, or two consecutive
        waves that no client has both of.
    DataError
        Missing or non-numeric columns.

    Notes
    -----
    Method: Hamaker, Kuiper & Grasman (2015), Psychological Methods 20(1), 102-116;
    specification as in Mulder & Hamaker (2021), Structural Equation Modeling 28(4), 638-648.
    Checked against R lavaan 0.6.14 (``lavaan(..., missing = "ml", estimator = "ML")``, observed
    information): estimates, SEs, standardised estimates and fit indices agree to 1e-3 relative
    (tests/test_riclpm.py). Deterministic: the fit uses no random numbers, so the same panel gives
    identical numbers.

    Examples
    --------
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> panel, truth = simulate_riclpm(300, 4, seed=5)
    >>> result = fit_riclpm(panel, 4)
    >>> result["convergence"]["converged"], result["fit"]["df"]
    (True, 17)
    """
    started = time.perf_counter()
    with _single_threaded_blas():
        result = _fit(panel, waves, constrained, equal_innovations, wave_labels)
    result["seconds"] = time.perf_counter() - started
    return result


def _single_threaded_blas():
    # The matrices here are at most 2K x 2K; a threaded BLAS only adds start-up and, on a busy
    # machine, waiting: measured 96 ms vs 6 ms per gradient-and-information evaluation on
    # 2 loaded cores. threadpoolctl comes with semopy (through scikit-learn).
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - semopy's dependencies always include it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit(panel: pd.DataFrame, waves: int, constrained: bool, equal_innovations: bool = False,
         wave_labels: list[str] | None = None) -> dict:
    import semopy  # heavy import (sympy, statsmodels); only this check needs it

    data, observed_names = _checked_data(panel, waves, constrained, equal_innovations,
                                         wave_labels)
    n_clients = data.shape[0]
    description = riclpm_description(waves, constrained, equal_innovations)
    model = semopy.ModelMeans(description)
    intercept_only = list(model.vars["observed_exogenous"]) == ["1"]
    if not intercept_only:  # pragma: no cover - a change in semopy's variable classification
        raise RuntimeError(f"semopy classified {model.vars['observed_exogenous']} as exogenous")
    order = list(model.vars["observed"])
    data = data[:, [observed_names.index(name) for name in order]]
    # semopy's load sets up the parameter bookkeeping; its starting values are replaced by
    # moment-based ones (see _starting_values), from which scoring converges far faster.
    model.load(pd.DataFrame(data, columns=order))
    patterns = pattern_statistics(data)
    objective = FimlObjective(model, patterns)
    optimum = minimise(objective, _starting_values(model, data))
    theta = optimum.theta
    model.param_vals = theta
    model.update_matrices(theta)

    information = 0.5 * n_clients * objective.hessian(theta)  # observed, of the log-likelihood
    covariance, min_eigenvalue = inverse_information(information)
    gradient = objective.gradient(theta)
    max_gradient = float(np.max(np.abs(gradient))) if len(gradient) else 0.0
    variances = {name for name, param in active_parameters(model)
                 for loc in param.locations if loc.indices[0] == loc.indices[1]
                 and loc.matrix is model.mx_psi}
    negative = [name for (name, _), value in zip(active_parameters(model), theta)
                if name in variances and value <= 0]

    paths = _paths_table(model, theta, covariance)
    psi = np.asarray(model.mx_psi, dtype=float)
    psi_ok = bool(np.linalg.eigvalsh(psi).min() >= -1e-10 * max(1.0, float(np.abs(psi).max())))
    converged = bool(optimum.success and max_gradient < GRADIENT_TOLERANCE
                     and min_eigenvalue > 0)  # False when NaN
    problems = _problems(paths, negative, psi_ok, optimum.success, max_gradient, min_eigenvalue,
                         wave_labels)
    loglik = objective.loglik(theta)
    saturated = saturated_moments(patterns, data)
    model.update_matrices(theta)
    fit = _fit_indices(model, data, loglik, saturated, waves, len(theta))
    convergence = {
        "converged": converged,
        "admissible": not negative and psi_ok,
        "nonpositive_variances": negative,
        "problems": problems,
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
        "semopy_version": semopy.__version__,
    }
    return {"paths": paths, "fit": fit, "convergence": convergence,
            "description": description}


# --- input checks ------------------------------------------------------------------------------

def _check_waves(waves: int) -> None:
    if isinstance(waves, bool) or not isinstance(waves, (int, np.integer)) or waves < MIN_WAVES:
        raise PanelIdentificationError(
            f"the RI-CLPM needs at least {MIN_WAVES} waves (sessions) to be identified, got "
            f"{waves!r}", kind="too_few_waves")


def _problems(paths: pd.DataFrame, negative: list[str], psi_ok: bool, optimizer_success: bool,
              max_gradient: float, min_eigenvalue: float, wave_labels: list[str] | None
              ) -> list[str]:
    """What makes a fit inadmissible or unconverged, in words (empty when neither)."""
    problems = []
    for name in negative:
        rows = paths.loc[paths["parameter"] == name]
        if rows.empty:  # pragma: no cover - every free parameter has a row
            problems.append(f"variance {name} estimated at or below zero")
            continue
        row = rows.iloc[0]
        if pd.isna(row["wave"]):
            where = ""
        elif len(rows) > 1:
            where = " (equal over waves)"
        else:
            where = f" at {_wave_name(int(row['wave']), wave_labels)}"
        problems.append(f"{row['label']}{where} estimated at {row['estimate']:.3g}, not above "
                        "zero")
    if not psi_ok and not negative:  # a negative variance already makes it indefinite
        problems.append("the covariance matrix of the latent components is not positive "
                        "semi-definite (a correlation beyond -1 or 1)")
    if not optimizer_success or not max_gradient < GRADIENT_TOLERANCE:
        problems.append(f"the estimation did not reach a maximum (largest gradient "
                        f"{max_gradient:.2g})")
    if not min_eigenvalue > 0:
        problems.append("the information matrix is not positive definite (some parameters are "
                        "not identified by these data; their standard errors are undefined)")
    return problems


def _wave_name(wave: int, wave_labels: list[str] | None) -> str:
    if wave_labels and 1 <= wave <= len(wave_labels):
        return f"wave {wave} ({wave_labels[wave - 1]})"
    return f"wave {wave}"


def _checked_data(panel: pd.DataFrame, waves: int, constrained: bool,
                  equal_innovations: bool = False, wave_labels: list[str] | None = None
                  ) -> tuple[np.ndarray, list]:
    _check_waves(waves)
    names = ([f"{ALLIANCE_PREFIX}{t}" for t in range(1, waves + 1)]
             + [f"{SYMPTOM_PREFIX}{t}" for t in range(1, waves + 1)])
    absent = [name for name in names if name not in panel.columns]
    if absent:
        raise DataError(
            f"RI-CLPM panel: column(s) {absent} are missing for {waves} waves (build the panel "
            "with panel_from_derived from the same wave choice)"
        )
    columns = []
    for name in names:
        try:
            columns.append(pd.to_numeric(panel[name]).to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError):
            raise DataError(f"RI-CLPM panel, column {name!r}: values are not numbers") from None
    data = np.column_stack(columns) if len(panel) else np.empty((0, len(names)))
    if np.isinf(data).any():
        column = names[int(np.flatnonzero(np.isinf(data).any(axis=0))[0])]
        raise DataError(f"RI-CLPM panel, column {column!r}: infinite values")
    data = data[np.isfinite(data).any(axis=1)]

    frame = pd.DataFrame(data, columns=names)
    counts = wave_counts(frame, waves)
    needed = n_free_parameters(waves, constrained, equal_innovations)
    if counts["clients_2plus_waves"] < needed:
        spread = ", ".join(f"{k} wave{'s' if k != 1 else ''}: {n}"
                           for k, n in counts["clients_by_waves"].items() if k > 0 and n)
        raise PanelIdentificationError(
            f"RI-CLPM panel: {counts['clients_with_data']} clients have data in the {waves} "
            f"waves ({spread or 'none'}); the model with {waves} waves has {needed} free "
            f"parameters and needs at least {needed} clients with two or more waves, but "
            f"{counts['clients_2plus_waves']} have them.", kind="too_few_clients",
            needed=needed, available=counts["clients_2plus_waves"])
    for j, name in enumerate(names):
        values = data[np.isfinite(data[:, j]), j]
        wave = int(name[1:])
        score = "alliance_score" if name.startswith(ALLIANCE_PREFIX) else "symptom_score"
        where = _wave_name(wave, wave_labels)
        if values.size < 2:
            raise PanelIdentificationError(
                f"RI-CLPM panel, column {name!r} ({score} at {where}): {values.size} "
                "client(s) have a value", kind="wave_without_data", wave=wave)
        if np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())):
            raise PanelIdentificationError(
                f"RI-CLPM panel, column {name!r} ({score} at {where}): all "
                f"{values.size} values are equal (no variance), so the model cannot be fitted",
                kind="no_variance", wave=wave)
    seen = np.isfinite(data)
    for t in range(1, waves):
        both = int((seen[:, [t - 1, waves + t - 1]].any(axis=1)
                    & seen[:, [t, waves + t]].any(axis=1)).sum())
        if both == 0:
            raise PanelIdentificationError(
                f"RI-CLPM panel: no client has scores at both {_wave_name(t, wave_labels)} and "
                f"{_wave_name(t + 1, wave_labels)}, so the lagged paths between them are not "
                "identified", kind="no_consecutive", wave=t)
    return data, names


# --- starting values ---------------------------------------------------------------------------

def _starting_values(model, data: np.ndarray) -> np.ndarray:
    """Moment-based starting values: wave means at the observed means, each score's observed
    variance split evenly between its random intercept and its within component, paths and
    covariances 0 (lavaan's "simple" start in spirit). The implied covariance is then positive
    definite, unlike with semopy's defaults (latent variances 0.05), from which scoring wandered
    for 150+ iterations on PHQ-9-scaled scores."""
    order = list(model.vars["observed"])
    mean = np.nanmean(data, axis=0)
    variance = np.nanvar(data, axis=0)
    half_of = {name: variance[j] / 2 for j, name in enumerate(order)}
    alliance = [v for name, v in half_of.items() if name.startswith(ALLIANCE_PREFIX)]
    symptoms = [v for name, v in half_of.items() if name.startswith(SYMPTOM_PREFIX)]
    half_of["RIa"], half_of["RIy"] = float(np.mean(alliance)), float(np.mean(symptoms))
    for name in order:
        half_of[f"w{name}"] = half_of[name]
    rows_gamma2 = model.names_gamma2[0]
    rows_psi = model.names_psi[0]
    start = []
    for _, param in active_parameters(model):
        loc = param.locations[0]
        if loc.matrix is model.mx_gamma2:
            start.append(float(mean[order.index(rows_gamma2[loc.indices[0]])]))
        elif loc.matrix is model.mx_psi and loc.indices[0] == loc.indices[1]:
            start.append(float(half_of[rows_psi[loc.indices[0]]]))
        else:
            start.append(0.0)
    return np.array(start)


# --- the paths table ---------------------------------------------------------------------------

def _paths_table(model, theta: np.ndarray, covariance: np.ndarray) -> pd.DataFrame:
    from semopy.inspector import inspect_list

    # Every parameter location of every model matrix, in lavaan's notation.
    active = [name for name, _ in active_parameters(model)]
    value_of = dict(zip(active, theta))
    se_of = dict(zip(active, np.sqrt(np.clip(np.diag(covariance), 0, None))))
    matrices = [("beta", "~"), ("lambda", "=~"), ("psi", "~~"), ("theta", "~~"),
                ("gamma1", "~1"), ("gamma2", "~1")]
    records = []
    for name, param in model.parameters.items():
        for loc in param.locations:
            for matrix, op in matrices:
                if loc.matrix is getattr(model, f"mx_{matrix}", None):
                    rows, cols = getattr(model, f"names_{matrix}")
                    row, col = rows[loc.indices[0]], cols[loc.indices[1]]
                    lhs, rhs = (col, row) if op == "=~" else (row, "" if op == "~1" else col)
                    records.append((lhs, op, rhs, name if param.active else "", param.active,
                                    float(value_of[name] if param.active else param.start),
                                    se_of.get(name, np.nan)))
                    break
    table = pd.DataFrame(records, columns=["lhs", "op", "rhs", "parameter", "free", "estimate",
                                           "se"])

    # semopy's completely standardised estimates (lavaan std.all: by the model-implied SDs),
    # keyed by the row in the same notation; its listing says "x ~ 1" for an intercept and
    # "indicator ~ factor" for a loading.
    listing = inspect_list(model, information=None, std_est=True)
    standardised = {}
    latents = set(model.vars["latent"])
    for left, op, right, value in zip(listing["lval"], listing["op"], listing["rval"],
                                      listing["Est. Std"]):
        if op == "~" and right == "1":
            key = (left, "~1", "")
        elif op == "~" and right in latents and left not in latents:
            key = (right, "=~", left)
        else:
            key = (left, op, right)
        standardised[key] = float(value)
    table["std_estimate"] = [standardised.get(key, np.nan)
                             for key in zip(table["lhs"], table["op"], table["rhs"])]
    # Covariances as lavaan standardises them (cov.std = TRUE): by the two variances of the same
    # matrix, so an innovation covariance becomes the innovations' correlation. semopy divides by
    # the total implied SDs instead; the two agree for exogenous variables (wave 1, intercepts).
    variance = {lhs: value for lhs, op, rhs, value in
                zip(table["lhs"], table["op"], table["rhs"], table["estimate"])
                if op == "~~" and lhs == rhs}
    covariance_rows = (table["op"] == "~~") & (table["lhs"] != table["rhs"])
    table.loc[covariance_rows, "std_estimate"] = [
        value / math.sqrt(variance[lhs] * variance[rhs])
        if variance[lhs] > 0 and variance[rhs] > 0 else np.nan
        for lhs, rhs, value in zip(table.loc[covariance_rows, "lhs"],
                                   table.loc[covariance_rows, "rhs"],
                                   table.loc[covariance_rows, "estimate"])
    ]

    table["label"] = [_label(*row) for row in zip(table["lhs"], table["op"], table["rhs"])]
    table["wave"] = pd.array([_wave(*row) for row in zip(table["lhs"], table["op"], table["rhs"])],
                             dtype="Int64")
    table["z"] = table["estimate"] / table["se"]
    table["p"] = 2 * stats.norm.sf(np.abs(table["z"]))
    table["ci_lower"] = table["estimate"] - _Z95 * table["se"]
    table["ci_upper"] = table["estimate"] + _Z95 * table["se"]
    order = table["label"].map({label: k for k, label in enumerate(_ORDER)})
    table = table.assign(_order=order).sort_values(
        ["_order", "wave", "lhs", "rhs"], na_position="first", kind="stable", ignore_index=True)
    for column in ("lhs", "op", "rhs", "label", "parameter"):
        table[column] = table[column].astype("string")
    return table[PATH_COLUMNS]


def _variable(name: str) -> str:
    return "alliance" if name == "RIa" or name.startswith(("wa", ALLIANCE_PREFIX)) else "symptoms"


def _label(lhs: str, op: str, rhs: str) -> str:
    if op == "~":
        if lhs[:2] == rhs[:2]:
            return f"autoregressive {_variable(lhs)}"
        return f"cross-lagged {_variable(rhs)} -> {_variable(lhs)}"
    if op == "=~":
        kind = "random intercept" if lhs.startswith("RI") else "within component"
        return f"{kind} loading {_variable(rhs)}"
    if op == "~1":
        return f"wave mean {_variable(lhs)}"
    if lhs.startswith("RI") and rhs.startswith("RI"):
        return ("random intercept covariance" if lhs != rhs
                else f"random intercept variance {_variable(lhs)}")
    if lhs.startswith("RI") or rhs.startswith("RI"):
        return "random intercept x wave-1 within covariance (fixed 0)"
    if lhs.startswith("w"):
        part = "wave-1 within" if lhs[2:] == "1" else "innovation"
        return (f"{part} covariance" if lhs != rhs else f"{part} variance {_variable(lhs)}")
    return "measurement error variance (fixed 0)"


def _wave(lhs: str, op: str, rhs: str) -> int | None:
    # The wave a row belongs to: of the indicator of a loading, else of the (first) wave-indexed
    # side; random-intercept (co)variances have none.
    for name in (rhs,) if op == "=~" else (lhs, rhs):
        match = re.fullmatch(rf"w?[{ALLIANCE_PREFIX}{SYMPTOM_PREFIX}](\d+)", name)
        if match:
            return int(match.group(1))
    return None


# --- fit indices -------------------------------------------------------------------------------

def _fit_indices(model, data: np.ndarray, loglik: float, saturated: Saturated, waves: int,
                 n_parameters: int) -> dict:
    n_clients = data.shape[0]
    p = 2 * waves
    moments = p * (p + 1) // 2 + p
    df = moments - n_parameters
    chisq = max(0.0, 2.0 * (saturated.loglik - loglik))
    # Independence model with free means and variances: under FIML it factorises by column,
    # so its ML estimates are each column's observed mean and (biased) variance.
    seen = np.isfinite(data)
    counts = seen.sum(axis=0)
    variances = np.nanvar(data, axis=0)
    baseline_loglik = float(-0.5 * np.sum(counts * (math.log(2 * math.pi) + np.log(variances)
                                                    + 1.0)))
    baseline_chisq = 2.0 * (saturated.loglik - baseline_loglik)
    baseline_df = moments - 2 * p
    pvalue = float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan
    t_model, t_base = chisq - df, baseline_chisq - baseline_df
    if t_model < 0 and t_base < 0:
        cfi = 1.0
    else:
        cfi = 1.0 - max(0.0, t_model) / max(0.0, t_model, t_base)
    tli = ((baseline_chisq / baseline_df - chisq / df) / (baseline_chisq / baseline_df - 1)
           if df > 0 else np.nan)
    rmsea = math.sqrt(max(0.0, chisq / df - 1.0) / n_clients) if df > 0 else np.nan

    sigma, (m, _) = model.calc_sigma()
    mean = (m @ model.mx_gamma1 + model.mx_gamma2)[:, 0]
    sd = np.sqrt(np.diag(saturated.cov))
    residual_cov = (saturated.cov - sigma) / np.outer(sd, sd)
    residual_mean = (saturated.mean - mean) / sd
    lower = np.tril_indices(p)
    srmr = math.sqrt((np.sum(residual_cov[lower] ** 2) + np.sum(residual_mean ** 2)) / moments)
    return {
        "n_clients": int(n_clients),
        "n_waves": int(waves),
        "n_observed_values": int(seen.sum()),
        "n_parameters": int(n_parameters),
        "loglik": float(loglik),
        "loglik_saturated": float(saturated.loglik),
        "chisq": float(chisq),
        "df": int(df),
        "pvalue": pvalue,
        "baseline_chisq": float(baseline_chisq),
        "baseline_df": int(baseline_df),
        "cfi": float(cfi),
        "tli": float(tli),
        "rmsea": float(rmsea),
        "srmr": float(srmr),
        "aic": float(-2 * loglik + 2 * n_parameters),
        "bic": float(-2 * loglik + n_parameters * math.log(n_clients)),
    }
