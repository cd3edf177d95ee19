"""A structural equation model in RAM form (McArdle & McDonald 1984), for the FIML engine.

Every variable (observed or latent) v obeys v = m + A v + e with Var(e) = S, so the implied mean
and covariance of all variables are B m and B S B' with B = (I - A)^-1; the observed ones are a
subset. A model is a list of :class:`Statement` rows in lavaan's notation (``~`` regression,
``=~`` loading, ``~~`` (co)variance, ``~1`` intercept), each free (a parameter, shared by rows
with the same label: an equality constraint, as in lavaan) or fixed at a value.

Why not semopy (as :mod:`analysis.models.panel.riclpm` uses): semopy's ``ModelMeans`` treats an
observed variable that is only ever a predictor as a fixed covariate (its ``Gamma1`` matrix); in the
dynamic panel model those predictors covary with the latent fixed effect and with later errors,
so they must be modelled as random (lavaan ``fixed.x = FALSE``), which a RAM model does directly.

- :class:`RamModel`: the parameter bookkeeping, the implied moments and their analytic
  derivatives (all parameters at once), lavaan's completely standardised solution (``std.all``)
  and per-client scores of the FIML log-likelihood (vectorised within missing-data patterns),
  the meat of the cluster-robust sandwich.
- :class:`RamObjective`: :class:`analysis.models.panel.fiml.FimlObjective` over a RAM model, so the
  pattern-statistics FIML objective, its gradient, information, Hessian and
  :func:`analysis.models.panel.fiml.minimise` are reused unchanged.

Deterministic: no random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.models.panel.fiml import FimlObjective, _batched_inverse


@dataclass(frozen=True)
class Statement:
    """One model row in lavaan's notation. ``fixed`` None means free; ``label`` shared by free
    rows makes them one parameter; ``written`` False for rows the fitting program adds itself
    (variances of exogenous variables, their intercepts) and the model text leaves out."""

    lhs: str
    op: str
    rhs: str
    label: str = ""
    fixed: float | None = None
    written: bool = True


class RamModel:
    """The RAM matrices of a list of statements, with the observed variables first."""

    def __init__(self, observed: list[str], latent: list[str], statements: list[Statement]):
        self.observed = list(observed)
        self.latent = list(latent)
        self.names = self.observed + self.latent
        self.statements = list(statements)
        index = {name: i for i, name in enumerate(self.names)}
        unknown = {s.lhs for s in statements} | {s.rhs for s in statements if s.op != "~1"}
        unknown -= set(index)
        if unknown:
            raise ValueError(f"statements name variables not in the model: {sorted(unknown)}")
        self.parameter_names: list[str] = []
        param_of: dict[str, int] = {}
        # One entry per statement: (matrix, row, col, parameter index or -1, fixed value).
        self.entries = []
        self.statement_parameter = []
        for number, s in enumerate(statements):
            if s.op == "~":
                matrix, row, col = "A", index[s.lhs], index[s.rhs]
            elif s.op == "=~":
                matrix, row, col = "A", index[s.rhs], index[s.lhs]
            elif s.op == "~~":
                matrix, row, col = "S", index[s.lhs], index[s.rhs]
            elif s.op == "~1":
                matrix, row, col = "m", index[s.lhs], 0
            else:
                raise ValueError(f"unknown operator {s.op!r}")
            if s.fixed is None:
                key = s.label or f"#{number}"
                if key not in param_of:
                    param_of[key] = len(self.parameter_names)
                    self.parameter_names.append(s.label or f"{s.lhs}{s.op}{s.rhs}")
                k = param_of[key]
            else:
                k = -1
            self.entries.append((matrix, row, col, k, 0.0 if s.fixed is None else s.fixed))
            self.statement_parameter.append(k)
        self.n_parameters = len(self.parameter_names)
        self.n_vars = len(self.names)
        self.n_observed = len(self.observed)
        self.theta = np.zeros(self.n_parameters)
        self._by_matrix = {}
        for name in ("A", "S", "m"):
            chosen = [e for e in self.entries if e[0] == name]
            self._by_matrix[name] = (np.array([e[1] for e in chosen], dtype=int),
                                     np.array([e[2] for e in chosen], dtype=int),
                                     np.array([e[3] for e in chosen], dtype=int),
                                     np.array([e[4] for e in chosen], dtype=float))

    # --- the model matrices and implied moments ----------------------------------------------

    def update_matrices(self, theta: np.ndarray) -> None:
        # The interface fiml.minimise calls on its objective's model; nothing is cached.
        self.theta = np.asarray(theta, dtype=float).copy()

    def _values(self, name: str, theta: np.ndarray) -> np.ndarray:
        _, _, k, fixed = self._by_matrix[name]
        return np.where(k >= 0, theta[np.maximum(k, 0)] if len(theta) else 0.0, fixed)

    def matrices(self, theta: np.ndarray):
        v = self.n_vars
        a = np.zeros((v, v))
        s = np.zeros((v, v))
        m = np.zeros(v)
        rows, cols, _, _ = self._by_matrix["A"]
        a[rows, cols] = self._values("A", theta)
        rows, cols, _, _ = self._by_matrix["S"]
        values = self._values("S", theta)
        s[rows, cols] = values
        s[cols, rows] = values
        rows, _, _, _ = self._by_matrix["m"]
        m[rows] = self._values("m", theta)
        return a, s, m

    def implied_all(self, theta: np.ndarray):
        """Mean and covariance of all variables (observed first), and B = (I - A)^-1."""
        a, s, m = self.matrices(theta)
        b = np.linalg.inv(np.eye(self.n_vars) - a)
        return b @ m, b @ s @ b.T, b, s

    def implied(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, cov, _, _ = self.implied_all(theta)
        p = self.n_observed
        return cov[:p, :p], mean[:p]

    def derivatives(self, theta: np.ndarray):
        """Observed implied covariance and mean and their derivatives (k x p x p, k x p)."""
        mean, omega, b, _ = self.implied_all(theta)
        p, k = self.n_observed, self.n_parameters
        bo = b[:p]  # rows of B for the observed variables
        d_sigma = np.zeros((k, p, p))
        d_mean = np.zeros((k, p))
        rows, cols, params, _ = self._by_matrix["A"]
        free = params >= 0
        if free.any():
            i, j, q = rows[free], cols[free], params[free]
            # d(B S B')/dA_ij = B e_i e_j' Omega + its transpose; d(B m)/dA_ij = B e_i mu_j
            half = bo[:, i].T[:, :, None] * omega[j][:, :p][:, None, :]
            np.add.at(d_sigma, q, half + np.swapaxes(half, 1, 2))
            np.add.at(d_mean, q, bo[:, i].T * mean[j][:, None])
        rows, cols, params, _ = self._by_matrix["S"]
        free = params >= 0
        if free.any():
            i, j, q = rows[free], cols[free], params[free]
            outer = bo[:, i].T[:, :, None] * bo[:, j].T[:, None, :]
            off = (i != j)[:, None, None]
            np.add.at(d_sigma, q, outer + off * np.swapaxes(outer, 1, 2))
        rows, _, params, _ = self._by_matrix["m"]
        free = params >= 0
        if free.any():
            np.add.at(d_mean, params[free], bo[:, rows[free]].T)
        return omega[:p, :p], mean[:p], d_sigma, d_mean

    # --- lavaan's std.all ---------------------------------------------------------------------

    def standardised(self, theta: np.ndarray) -> np.ndarray:
        """The completely standardised value of every statement (lavaan ``std.all``): paths
        and loadings scaled by the model-implied SDs, intercepts divided by the implied SD,
        variances divided by the implied variance, and a covariance divided by the square roots
        of the two variances of its own matrix (residual variances for endogenous variables),
        as lavaan does."""
        _, omega, _, s = self.implied_all(theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            sd = np.sqrt(np.diag(omega))
            own = np.sqrt(np.abs(np.diag(s)))
            out = []
            values = {name: self._values(name, theta) for name in ("A", "S", "m")}
            counters = {"A": 0, "S": 0, "m": 0}
            for matrix, row, col, _, _ in self.entries:
                value = values[matrix][counters[matrix]]
                counters[matrix] += 1
                if matrix == "A":  # row <- col: value * sd(col) / sd(row)
                    out.append(value * sd[col] / sd[row])
                elif matrix == "m":
                    out.append(value / sd[row])
                elif row == col:
                    out.append(value / omega[row, row])
                else:
                    out.append(value / (own[row] * own[col]))
        return np.array(out, dtype=float)

    # --- per-client scores --------------------------------------------------------------------

    def casewise_scores(self, theta: np.ndarray, data: np.ndarray,
                        chunk: int = 20000) -> np.ndarray:
        """Derivatives of each client's log-likelihood (n x k) at theta.

        For a client with observed columns o and residual r = x_o - mu_o, the log-likelihood is
        -(log|S_oo| + r' S_oo^-1 r) / 2 + const, so with z = S_oo^-1 r its derivative is
        -(tr(S_oo^-1 dS_oo) - z' dS_oo z) / 2 + z' dmu_o. Clients are grouped by missing-data
        pattern, so each pattern needs one inverse and the quadratic terms are one matrix product
        (vec(z z') times the stacked vec(dS_oo)), in chunks to bound memory.
        """
        sigma, mean, d_sigma, d_mean = self.derivatives(theta)
        n, p = data.shape
        k = self.n_parameters
        scores = np.zeros((n, k))
        seen = np.isfinite(data)
        codes = seen @ (1 << np.arange(p, dtype=np.int64))
        unique, inverse = np.unique(codes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse))])
        for g, code in enumerate(unique):
            rows = order[bounds[g]:bounds[g + 1]]
            o = np.flatnonzero((code >> np.arange(p)) & 1)
            if len(o) == 0:
                continue
            s_inv, _ = _batched_inverse(sigma[np.ix_(o, o)][None])
            s_inv = s_inv[0]
            d_s = d_sigma[:, o][:, :, o]  # (k, q, q)
            trace = np.einsum("ab,kba->k", s_inv, d_s)
            d_s_flat = d_s.reshape(k, -1).T  # (q*q, k)
            d_m = d_mean[:, o].T  # (q, k)
            for start in range(0, len(rows), chunk):
                block = rows[start:start + chunk]
                z = (data[np.ix_(block, o)] - mean[o]) @ s_inv
                quadratic = (z[:, :, None] * z[:, None, :]).reshape(len(block), -1) @ d_s_flat
                scores[block] = -0.5 * (trace[None, :] - quadratic) + z @ d_m
        return scores


class RamObjective(FimlObjective):
    """The pattern-statistics FIML objective of :mod:`analysis.models.panel.fiml` over a RAM model:
    only the implied moments and their derivatives come from here."""

    def __init__(self, model: RamModel, groups):
        super().__init__(model, groups)

    def moments(self, x: np.ndarray):
        sigma, mean = self.model.implied(x)
        return sigma, mean, None, None

    def derivatives(self, x: np.ndarray):
        return self.model.derivatives(x)
