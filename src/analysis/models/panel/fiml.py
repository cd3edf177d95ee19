"""Full-information maximum likelihood for a structural equation model over missing-data patterns.

Under FIML (missing values assumed missing at random) each client contributes the normal
likelihood of the scores they have. With the model-implied covariance and mean of the observed
columns S_p, mu_p, the clients of one missing-data pattern p add n_p [log|S_p| + tr(S_p^-1 C_p)
+ (m_p - mu_p)' S_p^-1 (m_p - mu_p)] to -2 log-likelihood, where n_p, m_p, C_p are their count,
sample mean and covariance: these per-pattern sufficient statistics (:func:`pattern_statistics`)
carry all the data the likelihood needs. Each evaluation then costs one small matrix inverse per
pattern, whatever the number of clients; semopy's own FIML (``ModelMeans.obj_fiml``, whose values
:class:`FimlObjective` equals, tested in tests/test_riclpm.py) loops over every client's row.

- :class:`FimlObjective`: -2 log-likelihood / N of a ``semopy.ModelMeans`` (semopy supplies the
  implied moments and their derivatives), its analytic gradient, the expected information and the
  observed Hessian (central differences of the gradient).
- :func:`minimise`: Fisher scoring from the caller's starting values, then Newton steps on the
  observed Hessian, to a gradient below :data:`GRADIENT_TOLERANCE`.
- :func:`inverse_information`: the covariance of the estimates from the observed information
  (lavaan's default under ``missing = "ml"``); NaN when the information is not positive definite.
- :func:`saturated_moments`: the unrestricted model (free means and covariances) fitted by EM on
  the same statistics, the reference of the chi-square test and of SRMR.

The model (its description, starting values, tables and fit indices) is the caller's, e.g.
:mod:`analysis.models.panel.riclpm`. Deterministic: no random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Convergence is checked, not taken from the optimizer: the largest gradient element of the
# per-client objective (-2 log-likelihood / N) must be below this and the observed information
# positive definite. A variance estimated at or below 0 (an inadmissible solution, as lavaan
# warns) is reported separately in ``admissible``/``nonpositive_variances``.
GRADIENT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _PatternGroup:
    """The missing-data patterns with q observed columns, stacked (g patterns)."""

    observed: np.ndarray  # (g, q) indices of the observed columns
    missing: np.ndarray  # (g, p - q) indices of the missing columns
    n: np.ndarray  # (g,) clients with the pattern
    mean: np.ndarray  # (g, q) sample means of the observed columns
    cov: np.ndarray  # (g, q, q) sample covariances about those means, divided by n


def pattern_statistics(data: np.ndarray) -> list[_PatternGroup]:
    seen = np.isfinite(data)
    p = data.shape[1]
    codes = seen @ (1 << np.arange(p, dtype=np.int64))
    unique, inverse, sizes = np.unique(codes, return_inverse=True, return_counts=True)
    # One stable sort, then contiguous blocks: linear in the number of clients.
    rows_by_pattern = np.split(np.argsort(inverse, kind="stable"), np.cumsum(sizes)[:-1])
    by_size: dict[int, list] = {}
    for code, rows in zip(unique, rows_by_pattern):  # codes sorted: a fixed order
        observed = np.flatnonzero((code >> np.arange(p)) & 1)
        block = data[rows][:, observed]
        mean = block.mean(axis=0)
        centred = block - mean
        by_size.setdefault(len(observed), []).append(
            (observed, np.setdiff1d(np.arange(p), observed), len(block), mean,
             centred.T @ centred / len(block)))
    return [
        _PatternGroup(*(np.array([pattern[i] for pattern in members]) for i in range(2)),
                      np.array([pattern[2] for pattern in members], dtype=float),
                      *(np.array([pattern[i] for pattern in members]) for i in (3, 4)))
        for _, members in sorted(by_size.items())
    ]


def n_patterns(groups: list[_PatternGroup]) -> int:
    return int(sum(len(group.n) for group in groups))


def _block(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows_g, cols_g] for every pattern g: (g, len(rows_g), len(cols_g))."""
    return matrix[rows[:, :, None], cols[:, None, :]]


def _batched_inverse(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of a stack of positive-definite matrices (Cholesky; raises
    LinAlgError if any is not positive definite)."""
    factor = np.linalg.cholesky(matrices)
    inverse_factor = np.linalg.inv(factor)
    logdet = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
    return np.swapaxes(inverse_factor, 1, 2) @ inverse_factor, logdet


def _minus2_loglik(groups: list[_PatternGroup], mean: np.ndarray, cov: np.ndarray) -> float:
    """-2 log-likelihood of the observed data (without the 2*pi term) under N(mean, cov);
    inf when a pattern's covariance is not positive definite."""
    total = 0.0
    for group in groups:
        try:
            inverse, logdet = _batched_inverse(_block(cov, group.observed, group.observed))
        except np.linalg.LinAlgError:
            return np.inf
        d = group.mean - mean[group.observed]
        total += group.n @ (logdet + np.einsum("gij,gji->g", group.cov, inverse)
                            + np.einsum("gi,gij,gj->g", d, inverse, d))
    return float(total)


class FimlObjective:
    """-2 log-likelihood / N (without the 2*pi term) of a semopy ModelMeans, and its derivatives.

    Equals semopy's ``model.obj_fiml(x) / N`` (tested), written over missing-data patterns:
    sum_p n_p [log|S_p| + tr(S_p^-1 C_p) + (m_p - mu_p)' S_p^-1 (m_p - mu_p)] / N, with S_p, mu_p
    the implied covariance and mean of the pattern's observed columns and C_p, m_p their sample
    covariance and mean.
    """

    def __init__(self, model, groups: list[_PatternGroup]):
        self.model = model
        self.groups = groups
        self.n = float(sum(group.n.sum() for group in groups))
        self.n_values = int(sum(group.n.sum() * group.observed.shape[1] for group in groups))

    def moments(self, x: np.ndarray):
        model = self.model
        model.update_matrices(x)
        sigma, (m, c) = model.calc_sigma()
        # The mean structure of ModelMeans with the intercept as its only exogenous column
        # (semopy's calc_mean without the multiplication by a row of ones per client).
        mean = (m @ model.mx_gamma1 + model.mx_gamma2)[:, 0]
        return sigma, mean, m, c

    def derivatives(self, x: np.ndarray):
        """Implied covariance and mean, and their derivatives (k x p x p, k x p)."""
        model = self.model
        sigma, mean, m, c = self.moments(x)
        p, k = sigma.shape[0], len(x)
        d_sigma = np.zeros((k, p, p))
        d_mean = np.zeros((k, p))
        c_gamma1 = c @ model.mx_gamma1
        for i, (grad, diffs) in enumerate(zip(model.calc_sigma_grad(m, c), model.mx_diffs)):
            if np.ndim(grad):
                d_sigma[i] = grad
            # semopy's calc_mean_grad, for one row.
            if diffs[0] is not None:  # Beta
                d_mean[i] += (m @ diffs[0] @ c_gamma1)[:, 0]
            if diffs[1] is not None:  # Lambda
                d_mean[i] += (diffs[1] @ c_gamma1)[:, 0]
            if diffs[4] is not None:  # Gamma1
                d_mean[i] += (m @ diffs[4])[:, 0]
            if diffs[5] is not None:  # Gamma2
                d_mean[i] += diffs[5][:, 0]
        return sigma, mean, d_sigma, d_mean

    def value(self, x: np.ndarray) -> float:
        sigma, mean, _, _ = self.moments(x)
        return _minus2_loglik(self.groups, mean, sigma) / self.n

    def gradient(self, x: np.ndarray, information: bool = False):
        """The gradient; with ``information=True`` also the expected information on the same
        scale (the expected Hessian of the objective, for Fisher scoring)."""
        sigma, mean, d_sigma, d_mean = self.derivatives(x)
        p, k = sigma.shape[0], len(x)
        weight_sigma = np.zeros((p, p))
        weight_mean = np.zeros(p)
        expected = np.zeros((k, k))
        for group in self.groups:
            rows, cols = group.observed[:, :, None], group.observed[:, None, :]
            try:
                inverse, _ = _batched_inverse(sigma[rows, cols])
            except np.linalg.LinAlgError:
                infinite = np.full(k, np.inf)
                return (infinite, np.full((k, k), np.nan)) if information else infinite
            d = group.mean - mean[group.observed]
            moment = group.cov + d[:, :, None] * d[:, None, :]
            weight = inverse - inverse @ moment @ inverse
            np.add.at(weight_sigma, (rows, cols), group.n[:, None, None] * weight)
            np.add.at(weight_mean, group.observed,
                      group.n[:, None] * np.einsum("gij,gj->gi", inverse, d))
            if information:
                root = np.sqrt(group.n)[None, :, None, None]
                scaled = np.einsum("gab,kgbc->kgac", inverse, d_sigma[:, rows, cols]) * root
                expected += (scaled.reshape(k, -1)
                             @ np.swapaxes(scaled, 2, 3).reshape(k, -1).T)
                d_mean_o = d_mean[:, group.observed] * np.sqrt(group.n)[None, :, None]
                expected += 2.0 * np.einsum("kga,gab,jgb->kj", d_mean_o, inverse, d_mean_o,
                                            optimize=True)
        grad = (np.einsum("kij,ij->k", d_sigma, weight_sigma) - 2.0 * d_mean @ weight_mean) / self.n
        if information:
            return grad, expected / self.n
        return grad

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """Observed Hessian: central differences of the analytic gradient, symmetrised."""
        k = len(x)
        hessian = np.empty((k, k))
        for i in range(k):
            h = 1e-5 * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            hessian[:, i] = (self.gradient(up) - self.gradient(down)) / (2 * h)
        self.model.update_matrices(x)
        return (hessian + hessian.T) / 2

    def loglik(self, x: np.ndarray) -> float:
        return -0.5 * (self.n * self.value(x) + self.n_values * math.log(2 * math.pi))


def active_parameters(model) -> list:
    """The free parameters of a semopy model, (name, parameter) pairs in the order of theta."""
    return [(name, param) for name, param in model.parameters.items() if param.active]


@dataclass(frozen=True)
class _Optimum:
    theta: np.ndarray
    iterations: int
    newton_steps: int
    success: bool
    message: str


def minimise(objective: FimlObjective, theta: np.ndarray, max_iterations: int = 500
             ) -> _Optimum:
    """Fisher scoring with step halving, then Newton steps on the observed Hessian.

    Scoring (the expected information is positive definite wherever the implied covariance is)
    makes steady progress from the starting values; Newton steps then converge quadratically,
    so the estimates are exact to many more digits than a quasi-Newton stop on the objective.
    Parameters are unbounded, as in lavaan: a negative variance estimate is reported, not hidden.
    """
    current = objective.value(theta)
    if not np.isfinite(current):
        return _Optimum(theta, 0, 0, False, "the starting values give a non-positive-definite "
                        "implied covariance matrix")
    iteration = 0
    message = f"no convergence in {max_iterations} Fisher-scoring iterations"
    for iteration in range(1, max_iterations + 1):
        gradient, information = objective.gradient(theta, information=True)
        # Scoring converges linearly and, close to the optimum, its line search works below the
        # resolution of the objective; it hands over to Newton well before that.
        if np.max(np.abs(gradient)) < 1e-6:
            message = "Fisher scoring reached the Newton stage (gradient below 1e-6)"
            break
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            message = "singular expected information during Fisher scoring"
            break
        length = 1.0
        while length > 1e-10:
            candidate = theta - length * step
            value = objective.value(candidate)
            if np.isfinite(value) and value <= current - 1e-4 * length * (gradient @ step):
                break
            length /= 2
        else:
            message = "Fisher scoring stalled (no decrease along the scoring direction)"
            break
        theta, current = candidate, value
    newton_steps = 0
    gradient = objective.gradient(theta)
    for _ in range(5):
        size = np.max(np.abs(gradient))
        if size < 1e-12:
            break
        try:
            step = np.linalg.solve(objective.hessian(theta), gradient)
        except np.linalg.LinAlgError:
            break
        candidate = theta - step
        value = objective.value(candidate)
        candidate_gradient = objective.gradient(candidate)
        # Accept on the gradient: at this stage the objective changes below its resolution.
        if not (np.isfinite(value) and value <= current + 1e-12 * abs(current)
                and np.max(np.abs(candidate_gradient)) < size):
            break
        theta, current, gradient = candidate, value, candidate_gradient
        newton_steps += 1
    objective.model.update_matrices(theta)
    success = bool(np.max(np.abs(objective.gradient(theta))) < GRADIENT_TOLERANCE)
    return _Optimum(theta, iteration, newton_steps, success, message)


def inverse_information(information: np.ndarray) -> tuple[np.ndarray, float]:
    if not np.isfinite(information).all():
        return np.full_like(information, np.nan), float("nan")
    eigenvalues = np.linalg.eigvalsh(information)
    min_eigenvalue = float(eigenvalues.min()) if eigenvalues.size else 0.0
    if min_eigenvalue <= 0:
        return np.full_like(information, np.nan), min_eigenvalue
    return np.linalg.inv(information), min_eigenvalue


# --- the saturated model -----------------------------------------------------------------------

@dataclass(frozen=True)
class Saturated:
    mean: np.ndarray
    cov: np.ndarray
    loglik: float
    iterations: int
    converged: bool


def saturated_moments(groups: list[_PatternGroup], data: np.ndarray,
                      max_iterations: int = 10000, tolerance: float = 1e-12) -> Saturated:
    """ML means and covariances under FIML (the unrestricted model), by EM on the pattern
    sufficient statistics (Little & Rubin 2002, section 11.2), from the observed means and
    variances."""
    n_values = sum(group.n.sum() * group.observed.shape[1] for group in groups)
    constant = n_values * math.log(2 * math.pi)
    mean = np.nanmean(data, axis=0)
    cov = np.diag(np.nanvar(data, axis=0))
    p = len(mean)
    n = sum(group.n.sum() for group in groups)
    previous = -np.inf
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        total = np.zeros(p)
        cross = np.zeros((p, p))
        for group in groups:
            o, m = group.observed, group.missing
            o_rows, o_cols = o[:, :, None], o[:, None, :]
            second_oo = group.cov + group.mean[:, :, None] * group.mean[:, None, :]
            weight = group.n[:, None]
            np.add.at(total, o, weight * group.mean)
            np.add.at(cross, (o_rows, o_cols), weight[:, :, None] * second_oo)
            if m.shape[1] == 0:
                continue
            inverse, _ = _batched_inverse(_block(cov, o, o))
            regression = _block(cov, m, o) @ inverse  # (g, missing, observed)
            shift = mean[m] - np.einsum("gmo,go->gm", regression, mean[o])
            predicted = np.einsum("gmo,go->gm", regression, group.mean)
            first_m = shift + predicted
            second_mo = shift[:, :, None] * group.mean[:, None, :] + regression @ second_oo
            second_mm = (shift[:, :, None] * shift[:, None, :]
                         + shift[:, :, None] * predicted[:, None, :]
                         + predicted[:, :, None] * shift[:, None, :]
                         + regression @ second_oo @ np.swapaxes(regression, 1, 2)
                         + _block(cov, m, m) - regression @ _block(cov, o, m))
            np.add.at(total, m, weight * first_m)
            np.add.at(cross, (m[:, :, None], o[:, None, :]), weight[:, :, None] * second_mo)
            np.add.at(cross, (o[:, :, None], m[:, None, :]),
                      weight[:, :, None] * np.swapaxes(second_mo, 1, 2))
            np.add.at(cross, (m[:, :, None], m[:, None, :]), weight[:, :, None] * second_mm)
        mean = total / n
        cov = cross / n - np.outer(mean, mean)
        cov = (cov + cov.T) / 2
        loglik = -0.5 * (_minus2_loglik(groups, mean, cov) + constant)
        if abs(loglik - previous) <= tolerance * max(1.0, abs(loglik)):
            converged = True
            break
        previous = loglik
    return Saturated(mean, cov, float(loglik), iteration, converged)
