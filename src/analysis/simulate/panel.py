"""A seeded generator of panel data from a random-intercept cross-lagged panel model (RI-CLPM).

The RI-CLPM check (:mod:`analysis.models.panel.riclpm`) needs data whose within-client carry-over
and cross-lagged effects are known. This module draws them from the model of Hamaker, Kuiper and
Grasman (2015). For client ``i`` and wave ``t = 1..K`` (wave = session number)::

    A[i, t] = mu_A[t] + RI_A[i] + wA[i, t]        Y[i, t] = mu_Y[t] + RI_Y[i] + wY[i, t]
    wA[i, t] = ar_alliance * wA[i, t-1] + cl_symptoms_to_alliance * wY[i, t-1] + dA[i, t]
    wY[i, t] = ar_symptoms * wY[i, t-1] + cl_alliance_to_symptoms * wA[i, t-1] + dY[i, t]

with (RI_A, RI_Y), (wA[1], wY[1]) and the innovations (dA[t], dY[t]) bivariate normal and
mutually independent (optionally plus independent measurement error, ``error_sd``, which the
standard RI-CLPM does not model). Parameters are given on a standard latent scale; ``alliance_scale`` and
``symptom_scale`` (location, SD) map the latent values onto score units (a WAI-SR-like
``(3.9, 0.5)`` and a PHQ-9-like ``(14, 4)``, say), and the truth dict holds every parameter both on
the latent scale and in score units, the units in which
:func:`analysis.models.panel.riclpm.fit_riclpm` estimates them.

Missing waves are whole missed sessions (both scores missing), wave 1 always observed: ``"mcar"``
drops each later wave independently with probability ``missing_rate``; ``"mar"`` is monotone
dropout whose hazard after wave ``t`` rises with the symptom score observed at ``t`` (missing at
random given the observed data, so FIML stays unbiased while a complete-case analysis would not).

Output is either the wide panel of :func:`analysis.models.panel.riclpm.panel_from_derived`
(``client_id, a1..aK, y1..yK``) or a long frame in the ``derived`` layout (``outcome, client_id,
therapist_id, session, alliance_score, symptom_score``; one row per attended session), and the two
round-trip: ``panel_from_derived(long, outcome)`` returns the wide panel for the same arguments.
Everything is vectorised over clients; the only Python loop runs over the K waves.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from analysis.errors import ConfigError

#: Default generating parameters on the standard latent scale (alliance and symptoms both SD ~ 1).
DEFAULT_PATHS: dict[str, float] = {
    "ar_alliance": 0.30,
    "ar_symptoms": 0.40,
    "cl_alliance_to_symptoms": -0.15,
    "cl_symptoms_to_alliance": -0.10,
    "ri_var_alliance": 1.0,
    "ri_var_symptoms": 1.0,
    "ri_cov": -0.30,
    "w1_var_alliance": 1.0,
    "w1_var_symptoms": 1.0,
    "w1_cov": -0.20,
    "innovation_var_alliance": 0.80,
    "innovation_var_symptoms": 0.80,
    "innovation_cov": -0.15,
}

# How each parameter rescales when alliance and symptoms are put into score units (powers of the
# alliance and symptom SDs): a path from x to y scales by sd_y / sd_x, a covariance by sd_x * sd_y.
_SCALING = {
    "ar_alliance": (0, 0),
    "ar_symptoms": (0, 0),
    "cl_alliance_to_symptoms": (-1, 1),
    "cl_symptoms_to_alliance": (1, -1),
    "ri_var_alliance": (2, 0),
    "ri_var_symptoms": (0, 2),
    "ri_cov": (1, 1),
    "w1_var_alliance": (2, 0),
    "w1_var_symptoms": (0, 2),
    "w1_cov": (1, 1),
    "innovation_var_alliance": (2, 0),
    "innovation_var_symptoms": (0, 2),
    "innovation_cov": (1, 1),
}

# How steeply the dropout hazard of "mar" rises per latent SD of the current symptom score.
MAR_SLOPE = 0.8


def simulate_riclpm(
    n_clients: int,
    waves: int,
    seed: int,
    *,
    output: Literal["wide", "derived"] = "wide",
    missing_rate: float = 0.0,
    missing: Literal["mcar", "mar"] = "mcar",
    alliance_scale: tuple[float, float] = (0.0, 1.0),
    symptom_scale: tuple[float, float] = (0.0, 1.0),
    alliance_trend: float = 0.0,
    symptom_trend: float = 0.0,
    error_sd: float = 0.0,
    outcome: str = "phq9",
    n_therapists: int = 10,
    **paths: float,
) -> tuple[pd.DataFrame, dict]:
    """Draw an RI-CLPM panel with known paths, and the truth.

    Parameters
    ----------
    n_clients : int
        Number of clients (each has wave 1).
    waves : int
        Number of waves K (sessions 1..K).
    seed : int
        Seed of ``numpy.random.default_rng``; the same arguments give identical frames.
    output : {"wide", "derived"}
        ``"wide"``: one row per client, ``client_id, a1..aK, y1..yK`` with NaN for missed waves.
        ``"derived"``: one row per attended session, ``outcome, client_id, therapist_id, session,
        alliance_score, symptom_score``.
    missing_rate : float
        ``"mcar"``: probability that any wave after the first is missed. ``"mar"``: baseline
        per-wave dropout hazard (at the average symptom score).
    missing : {"mcar", "mar"}
        Intermittent missing completely at random, or monotone dropout driven by the symptom score
        observed at the previous wave.
    alliance_scale, symptom_scale : (float, float)
        Location and SD mapping the latent scale onto score units.
    alliance_trend, symptom_trend : float
        Change of the wave mean per session, in score units (the model's free wave intercepts
        absorb it).
    error_sd : float
        SD (latent scale) of independent measurement error added to every score. The standard
        RI-CLPM has none, so with ``error_sd > 0`` it no longer fits exactly (for checks of fit
        indices away from their bounds).
    outcome : str
        Value of the ``outcome`` column of the derived layout.
    n_therapists : int
        Clients are spread evenly (at random) over this many therapists in the derived layout; the
        RI-CLPM has no therapist term, so no therapist effect is generated.
    **paths : float
        Overrides of :data:`DEFAULT_PATHS` (latent scale).

    Returns
    -------
    (DataFrame, dict)
        The frame and the truth: ``paths`` (latent scale), ``paths_in_score_units``, sizes, seed,
        missing-data settings and the realised share of observed waves.

    Raises
    ------
    ConfigError
        For an unknown path name, a covariance matrix that is not positive definite, or sizes or
        rates out of range.

    Examples
    --------
    >>> panel, truth = simulate_riclpm(200, 4, seed=1)
    >>> list(panel.columns)
    ['client_id', 'a1', 'a2', 'a3', 'a4', 'y1', 'y2', 'y3', 'y4']
    >>> truth["paths"]["cl_alliance_to_symptoms"]
    -0.15
    """
    unknown = sorted(set(paths) - set(DEFAULT_PATHS))
    if unknown:
        raise ConfigError(
            f"simulate_riclpm: unknown parameter(s) {unknown}; known: {sorted(DEFAULT_PATHS)}"
        )
    params = {**DEFAULT_PATHS, **{key: float(value) for key, value in paths.items()}}
    if n_clients < 1 or waves < 1:
        raise ConfigError(
            f"simulate_riclpm: n_clients ({n_clients}) and waves ({waves}) must be >= 1"
        )
    if error_sd < 0:
        raise ConfigError(f"simulate_riclpm: error_sd must be >= 0, got {error_sd}")
    if not 0.0 <= missing_rate < 1.0:
        raise ConfigError(f"simulate_riclpm: missing_rate must be in [0, 1), got {missing_rate}")
    if missing not in ("mcar", "mar"):
        raise ConfigError(f"simulate_riclpm: missing must be 'mcar' or 'mar', got {missing!r}")
    if output not in ("wide", "derived"):
        raise ConfigError(f"simulate_riclpm: output must be 'wide' or 'derived', got {output!r}")

    rng = np.random.default_rng(seed)
    ri = _bivariate(rng, n_clients, params, "ri_var_alliance", "ri_var_symptoms", "ri_cov")
    within = np.empty((n_clients, waves, 2))
    within[:, 0] = _bivariate(rng, n_clients, params, "w1_var_alliance", "w1_var_symptoms",
                              "w1_cov")
    # Row vector convention: w[t] = w[t-1] @ lagged, columns (alliance, symptoms).
    lagged = np.array([
        [params["ar_alliance"], params["cl_alliance_to_symptoms"]],
        [params["cl_symptoms_to_alliance"], params["ar_symptoms"]],
    ])
    for t in range(1, waves):
        innovation = _bivariate(rng, n_clients, params, "innovation_var_alliance",
                                "innovation_var_symptoms", "innovation_cov")
        within[:, t] = within[:, t - 1] @ lagged + innovation
    latent = ri[:, None, :] + within
    if error_sd > 0:
        latent = latent + error_sd * rng.standard_normal(latent.shape)

    observed = np.ones((n_clients, waves), dtype=bool)
    if missing_rate > 0 and waves > 1:
        if missing == "mcar":
            observed[:, 1:] = rng.random((n_clients, waves - 1)) >= missing_rate
        else:
            symptom_sd = latent[:, :, 1].std()
            base = np.log(missing_rate / (1 - missing_rate))
            draws = rng.random((n_clients, waves - 1))
            for t in range(1, waves):
                hazard = 1 / (1 + np.exp(-(base + MAR_SLOPE * latent[:, t - 1, 1] / symptom_sd)))
                observed[:, t] = observed[:, t - 1] & (draws[:, t - 1] >= hazard)

    session = np.arange(waves, dtype=float)
    alliance = alliance_scale[0] + alliance_trend * session + alliance_scale[1] * latent[:, :, 0]
    symptoms = symptom_scale[0] + symptom_trend * session + symptom_scale[1] * latent[:, :, 1]
    alliance[~observed] = np.nan
    symptoms[~observed] = np.nan
    client_id = pd.array([f"c{index:06d}" for index in range(n_clients)], dtype="string")

    truth = {
        "paths": params,
        "paths_in_score_units": {
            key: value * alliance_scale[1] ** _SCALING[key][0]
            * symptom_scale[1] ** _SCALING[key][1]
            for key, value in params.items()
        },
        "n_clients": n_clients,
        "waves": waves,
        "seed": seed,
        "missing": missing,
        "missing_rate": missing_rate,
        "observed_share": float(observed.mean()),
        "alliance_scale": tuple(alliance_scale),
        "symptom_scale": tuple(symptom_scale),
        "error_sd": error_sd,
    }
    if output == "wide":
        wide = pd.DataFrame({"client_id": client_id})
        for t in range(waves):
            wide[f"a{t + 1}"] = alliance[:, t]
        for t in range(waves):
            wide[f"y{t + 1}"] = symptoms[:, t]
        return wide, truth

    therapist_of_client = rng.permutation(np.arange(n_clients) % max(n_therapists, 1))
    rows, waves_index = np.nonzero(observed)  # row-major: sorted by client, then session
    derived = pd.DataFrame({
        "outcome": pd.array([outcome] * len(rows), dtype="string"),
        "client_id": client_id[rows],
        "therapist_id": pd.array(
            [f"t{index:04d}" for index in therapist_of_client[rows]], dtype="string"
        ),
        "session": (waves_index + 1).astype("int64"),
        "alliance_score": alliance[rows, waves_index],
        "symptom_score": symptoms[rows, waves_index],
    })
    return derived, truth


def _bivariate(rng: np.random.Generator, n: int, params: dict, var_a: str, var_y: str,
               cov: str) -> np.ndarray:
    matrix = np.array([[params[var_a], params[cov]], [params[cov], params[var_y]]])
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ConfigError(
            f"simulate_riclpm: {var_a}, {var_y} and {cov} do not form a positive-definite "
            f"covariance matrix ({matrix.tolist()})"
        ) from None
    return rng.standard_normal((n, 2)) @ factor.T
