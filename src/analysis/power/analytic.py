"""Closed-form power where one exists: the check of the Monte-Carlo machinery.

A two-level random-intercept model with a within-person predictor (sessions ``t = 1..T`` nested
in clients ``i = 1..N``)::

    y_it = b0 + b x_it + u_i + e_it,   u_i ~ N(0, sd_client^2),  e_it ~ N(0, sd_residual^2)

with ``x_it`` centred within each client (``x_it = z_it - mean_t z_it``, ``z_it ~ N(0,
sd_x^2)``). Because ``x`` varies only within clients, the GLS estimate of ``b`` is the within
estimate and its variance is ``sd_residual^2 / sum(x_it^2)``; the design's expected
within-person information is ``sum(x_it^2) = N (T - 1) sd_x^2``, so

    SE(b) = sd_residual / sqrt(N (T - 1) sd_x^2)

and the two-sided test at level alpha has power (normal approximation; the Satterthwaite df of
this design are in the hundreds)

    Phi(|b| / SE - z_{1-alpha/2}) + Phi(-|b| / SE - z_{1-alpha/2})

(Snijders & Bosker 2012, ch. 11; the within-person case of Raudenbush & Liu 2000). The client
variance drops out: it is what a within-person design buys. :func:`simulated_power` draws such
studies and tests ``b`` with the pipeline's mixed-model engine (lmerTest-equivalent
Satterthwaite t-test), counting rejections as :mod:`analysis.power.summary` does;
``tests/test_power.py`` checks that the two agree within the Monte-Carlo error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.power.summary import wilson_interval


def within_person_se(n_clients: int, n_sessions: int, sd_residual: float, sd_x: float) -> float:
    """SE of the within-person slope from the design's expected information."""
    information = n_clients * (n_sessions - 1) * sd_x**2 / sd_residual**2
    return 1.0 / math.sqrt(information)


def analytic_power(effect: float, se: float, alpha: float = 0.05) -> float:
    """Two-sided power of a z test of ``effect`` with standard error ``se``."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    ratio = abs(effect) / se
    return float(stats.norm.cdf(ratio - z) + stats.norm.cdf(-ratio - z))


def simulate_random_intercept(seed: int, n_clients: int, n_sessions: int, effect: float,
                              sd_client: float, sd_residual: float, sd_x: float) -> pd.DataFrame:
    """One balanced study of the model above: ``client_id, session, x_within, y``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, sd_x, (n_clients, n_sessions))
    x = z - z.mean(axis=1, keepdims=True)
    u = rng.normal(0.0, sd_client, (n_clients, 1))
    y = 10.0 + effect * x + u + rng.normal(0.0, sd_residual, (n_clients, n_sessions))
    return pd.DataFrame({
        "client_id": np.repeat([f"C{i:04d}" for i in range(n_clients)], n_sessions),
        "session": np.tile(np.arange(1, n_sessions + 1), n_clients),
        "x_within": x.ravel(), "y": y.ravel()})


def simulated_power(n_sims: int, seed: int, n_clients: int, n_sessions: int, effect: float,
                    sd_client: float, sd_residual: float, sd_x: float,
                    alpha: float = 0.05) -> dict[str, float]:
    """Monte-Carlo power of the random-intercept test: ``power``, its Wilson 95% CI and its
    Monte-Carlo SE, from ``n_sims`` studies with seeds ``seed, seed + 1, ...``."""
    from analysis.models.mixed.engines import get_engine

    engine = get_engine("mixedlm")
    rejected = 0
    for k in range(n_sims):
        data = simulate_random_intercept(seed + k, n_clients, n_sessions, effect, sd_client,
                                         sd_residual, sd_x)
        fit = engine.fit("y ~ x_within + (1 | client_id)", data, reml=True)
        p = float(fit.fixed.set_index("term").loc["x_within", "p"])
        rejected += bool(p < alpha)
    power = rejected / n_sims
    low, high = wilson_interval(rejected, n_sims)
    return {"power": power, "ci_low": low, "ci_high": high, "n_sims": n_sims,
            "mcse": math.sqrt(power * (1 - power) / n_sims)}
