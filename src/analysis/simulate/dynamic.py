"""Alliance and symptoms as a joint dynamic process: the scenarios of the recovery study.

No estimator of the pipeline generated these data. Every client ``i`` (nested in a therapist
``j``) has a stable trajectory of each score and a within-client state that evolves session by
session; the alliance and symptom states act on each other, and the alliance at a session acts on
the symptoms at the next session with a known effect ``c``. Units are the data's own: the
alliance on the WAI-SR mean-item scale (1-5), symptoms in PHQ-9 total points (0-27).

For session (wave) ``t = 1..T`` (``T`` the most sessions a client can attend)::

    stable trajectories  LY[i, t] = muY(t) + sY[i] + tY[j] + gY[i] * (t - 1)
                         LA[i, t] = muA(t) + sA[i] + tA[j] + gA[i] * (t - 1)
    scores               Y[i, t] = LY[i, t] + wY[i, t]         A[i, t] = LA[i, t] + wA[i, t]
    first session        wY[i, 1] ~ N(0, sd_y1^2)
                         wA[i, 1] = r0 wY[i, 1] + N(0, sd_a1^2)
    later sessions       wY[i, t] = b wY[i, t-1] + c wA[i, t-1] + e[i, t]
                         wA[i, t] = phi wA[i, t-1] + d wY[i, t-1] + r0 wY[i, t] + u[i, t]

with the innovations ``e ~ N(0, sd_e^2)`` and ``u ~ N(0, sd_u^2)`` independent over sessions and
clients; the client levels ``(sY, sA)`` bivariate normal (correlation ``level_correlation``:
clients with more symptoms tend to report a weaker alliance); therapist levels ``tY, tA``
independent normal; the client slopes ``gY, gA`` (scenario d) normal, independent of each other
and of the levels (``slope_correlation`` 0 by default; see below). Population trajectories
``muY(t) = symptom_mean - symptom_trend * (t - 1)`` (symptoms improve on average) and
``muA(t) = alliance_mean + alliance_trend * (t - 1)``.

What ``c`` is. Substituting the stable trajectories gives, for ``t >= 2``::

    Y[i, t] = b Y[i, t-1] + c A[i, t-1] + k(t) + f[i] + trend[i] * t + e[i, t]

with a client constant ``f[i] = (1 - b) (sY + tY) - c (sA + tA) + ...`` and ``trend[i] =
(1 - b) gY[i] - c gA[i]``. So ``c`` is the change in the expected symptom score at the next
session per alliance point at this session, holding this session's symptom score and the
client's stable parts fixed: the quantity the dynamic panel model's lagged alliance path and the
conventional M2's within-client alliance term (``A_w``) both set out to estimate. Under scenario
``a_no_reverse`` the two target the same number; the reverse paths ``r0`` (same session) and
``d`` (next session) leave ``c`` unchanged and only change what the data reveal. With
measurement error (scenario e) the truth stays the effect of the latent alliance.

The generator never uses a person mean over a client's sessions (nor any centring of an
estimator): the stable parts are drawn, not computed from the scores.

Scenarios (:data:`SCENARIOS`: ``<family>_null`` with ``c = 0`` and ``<family>_effect`` with
:data:`REALISTIC_EFFECT`; the two versions of a family share their seeds):

- ``a_no_reverse``: no reverse path (``r0 = d = 0``);
- ``b_same_session``: symptoms lower the same session's alliance, ``r0 = -0.04`` alliance
  points per symptom point above the client's stable trajectory (the size measured in issue 17);
- ``c_lagged_reverse``: symptoms at t change the alliance at t + 1, ``d = -0.04``;
- ``d_trends``: client-specific linear trends in both scores (slope SDs 0.25 symptom and 0.03
  alliance points per session), uncorrelated with each other and with the levels, with the
  dynamics of ``b_same_session``. The dynamic panel model has one fixed effect per client, not a
  client-specific slope, so this checks whether incidental trends break it. Correlated slopes
  (clients whose alliance improves faster also improve faster) are a time-varying confounder
  that no model with a client intercept removes; they can be generated (``slope_correlation``)
  but are not a gated scenario;
- ``e_measurement_error``: the alliance is measured with error (reliability
  :data:`ALLIANCE_RELIABILITY` of the observed score over clients and sessions, as the WAI-SR's
  in the registry), with the dynamics of ``a_no_reverse``; reported against the latent ``c``,
  not gated.

Missing data: every client attends at least ``min_sessions`` sessions; after each later session
the client ends with a probability that rises with the symptom score at that session (dropout
missing at random given the observed scores), up to ``max_sessions``. Between the first and the
last attended session each session's questionnaires are missing with probability
``intermittent_missing`` (both scores; the process goes on unobserved).

Output: a long frame, one row per session with scores (``client_id, therapist_id, session,
alliance_score, symptom_score``, plus ``alliance_true`` and ``symptom_true``), and the truth dict.
Everything is vectorised over clients; the only Python loop runs over sessions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import ConfigError

#: The realistic non-null effect: PHQ-9 points at the next session per WAI-SR point.
REALISTIC_EFFECT = -1.0
#: Reliability of the observed alliance score in scenario (e) (the WAI-SR's in the registry).
ALLIANCE_RELIABILITY = 0.91


@dataclass(frozen=True)
class DynamicParameters:
    """Parameters of the joint process (see the module docstring). Score units throughout."""

    # the effect under study and the autoregressions
    effect: float = 0.0            # c: alliance at t -> symptoms at t + 1
    symptom_ar: float = 0.3        # b
    alliance_ar: float = 0.3       # phi
    # reverse paths
    same_session_reverse: float = 0.0   # r0: symptoms at t -> alliance at t
    lagged_reverse: float = 0.0         # d: symptoms at t -> alliance at t + 1
    # population trajectories
    symptom_mean: float = 15.0
    symptom_trend: float = 0.4     # average improvement per session
    alliance_mean: float = 3.85
    alliance_trend: float = 0.02
    # stable parts
    symptom_sd_client: float = 3.0
    alliance_sd_client: float = 0.45
    level_correlation: float = -0.3
    symptom_sd_therapist: float = 1.0
    alliance_sd_therapist: float = 0.15
    symptom_sd_slope: float = 0.0
    alliance_sd_slope: float = 0.0
    slope_correlation: float = 0.0
    # within-client states
    symptom_sd_first: float = 3.0
    alliance_sd_first: float = 0.25
    symptom_sd_innovation: float = 2.5
    alliance_sd_innovation: float = 0.22
    # measurement of the alliance: reliability of the observed score (1: no error)
    alliance_reliability: float = 1.0
    # attendance and missing questionnaires
    min_sessions: int = 4
    max_sessions: int = 12
    dropout: float = 0.15                 # hazard of ending after a session, at the mean symptom
    dropout_symptom_slope: float = 0.08   # log-odds per symptom point above muY(t)
    intermittent_missing: float = 0.08

    def check(self) -> None:
        if not (1 <= self.min_sessions <= self.max_sessions) or self.max_sessions < 2:
            raise ConfigError("simulate_dynamic: need 1 <= min_sessions <= max_sessions and "
                              "max_sessions >= 2.")
        for name in ("level_correlation", "slope_correlation"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"simulate_dynamic: {name} is a correlation; use -1 to 1.")
        for name in ("dropout", "intermittent_missing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"simulate_dynamic: {name} is a probability; use 0 to < 1.")
        if not 0.0 < self.alliance_reliability <= 1.0:
            raise ConfigError("simulate_dynamic: alliance_reliability must be in (0, 1].")
        for field in dataclasses.fields(self):
            if "_sd_" in field.name and getattr(self, field.name) < 0:
                raise ConfigError(f"simulate_dynamic: {field.name} is an SD; use >= 0.")


@dataclass(frozen=True)
class DynamicScenario:
    """One scenario version: its key, a sentence, parameter overrides, and its role.

    ``gates``: whether the primary estimator's criteria decide ``make validate``'s verdict.
    ``null``: ``c = 0`` (the rejection rate is a type I error rate).
    """

    name: str
    family: str
    description: str
    overrides: dict[str, float] = dataclasses.field(default_factory=dict)
    null: bool = True
    gates: bool = True

    def parameters(self, **sizes: Any) -> DynamicParameters:
        effect = 0.0 if self.null else REALISTIC_EFFECT
        return DynamicParameters(**{**self.overrides, "effect": effect, **sizes})


_SAME = "(-0.04 alliance points per symptom point)"
_FAMILIES: dict[str, tuple[str, dict[str, float], bool]] = {
    "a_no_reverse": ("no reverse path", {}, True),
    "b_same_session": (f"symptoms lower the same session's alliance {_SAME}",
                       {"same_session_reverse": -0.04}, True),
    "c_lagged_reverse": (f"symptoms at t change the alliance at t+1 {_SAME}",
                         {"lagged_reverse": -0.04}, True),
    "d_trends": ("client-specific linear trends in both (uncorrelated slopes), with the reverse "
                 "path of b",
                 {"same_session_reverse": -0.04, "symptom_sd_slope": 0.25,
                  "alliance_sd_slope": 0.03}, True),
    "e_measurement_error": (f"alliance measured with error (reliability "
                            f"{ALLIANCE_RELIABILITY}), no reverse path; truth = effect of the "
                            f"latent alliance",
                            {"alliance_reliability": ALLIANCE_RELIABILITY}, False),
}


def _scenarios() -> dict[str, DynamicScenario]:
    out = {}
    for family, (text, overrides, gates) in _FAMILIES.items():
        for null in (True, False):
            name = f"{family}_{'null' if null else 'effect'}"
            effect = "no true effect" if null else f"true effect c = {REALISTIC_EFFECT}"
            out[name] = DynamicScenario(name=name, family=family, description=f"{text}; {effect}",
                                        overrides=dict(overrides), null=null, gates=gates)
    return out


#: The scenario versions of the recovery study, ``<family>_null`` and ``<family>_effect``.
SCENARIOS: dict[str, DynamicScenario] = _scenarios()


def get_scenario(name: str) -> DynamicScenario:
    if name not in SCENARIOS:
        raise ConfigError(f"recovery: unknown scenario {name!r}; the scenarios are "
                          f"{', '.join(SCENARIOS)}.")
    return SCENARIOS[name]


def simulate_dynamic(
    scenario: str | DynamicScenario | DynamicParameters,
    seed: int,
    n_clients: int = 150,
    n_therapists: int = 15,
    **sizes: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw one study of a scenario (or of explicit parameters); the same arguments give the
    same frame.

    Parameters
    ----------
    scenario : str, DynamicScenario or DynamicParameters
    seed : int
        Seed of ``numpy.random.default_rng``.
    n_clients, n_therapists : int
    **sizes
        ``min_sessions``, ``max_sessions`` (and any other :class:`DynamicParameters` field) for a
        named scenario.

    Returns
    -------
    (DataFrame, dict)
        One row per session with scores: ``client_id, therapist_id, session, alliance_score,
        symptom_score, alliance_true, symptom_true``; and the truth: ``effect`` (c),
        ``parameters``, ``scenario``, sizes and the realised share of sessions with scores.
    """
    if isinstance(scenario, str):
        scenario = get_scenario(scenario)
    if isinstance(scenario, DynamicScenario):
        params, name = scenario.parameters(**sizes), scenario.name
    else:
        params, name = dataclasses.replace(scenario, **sizes), "custom"
    params.check()
    if n_clients < 2 or n_therapists < 1:
        raise ConfigError("simulate_dynamic: need at least 2 clients and 1 therapist.")
    rng = np.random.default_rng(seed)
    n, T = int(n_clients), int(params.max_sessions)

    # Unequal caseloads; every therapist has a client when there are enough clients.
    share = rng.lognormal(0.0, 0.5, n_therapists)
    share /= share.sum()
    guaranteed = np.arange(min(n, n_therapists))
    therapist = rng.permutation(np.concatenate(
        [guaranteed, rng.choice(n_therapists, size=n - guaranteed.size, p=share)]))

    levels = _bivariate(rng, n, params.symptom_sd_client, params.alliance_sd_client,
                        params.level_correlation)
    slopes = _bivariate(rng, n, params.symptom_sd_slope, params.alliance_sd_slope,
                        params.slope_correlation)
    t_y = rng.normal(0.0, params.symptom_sd_therapist, n_therapists)[therapist]
    t_a = rng.normal(0.0, params.alliance_sd_therapist, n_therapists)[therapist]
    stable_y = levels[:, 0] + t_y
    stable_a = levels[:, 1] + t_a

    sessions = np.arange(1, T + 1)
    mu_y = params.symptom_mean - params.symptom_trend * (sessions - 1)
    mu_a = params.alliance_mean + params.alliance_trend * (sessions - 1)
    w_y = np.empty((n, T))
    w_a = np.empty((n, T))
    w_y[:, 0] = rng.normal(0.0, params.symptom_sd_first, n)
    w_a[:, 0] = (params.same_session_reverse * w_y[:, 0]
                 + rng.normal(0.0, params.alliance_sd_first, n))
    for t in range(1, T):
        w_y[:, t] = (params.symptom_ar * w_y[:, t - 1] + params.effect * w_a[:, t - 1]
                     + rng.normal(0.0, params.symptom_sd_innovation, n))
        w_a[:, t] = (params.alliance_ar * w_a[:, t - 1] + params.lagged_reverse * w_y[:, t - 1]
                     + params.same_session_reverse * w_y[:, t]
                     + rng.normal(0.0, params.alliance_sd_innovation, n))
    elapsed = sessions - 1
    y = mu_y + stable_y[:, None] + slopes[:, [0]] * elapsed + w_y
    a_true = mu_a + stable_a[:, None] + slopes[:, [1]] * elapsed + w_a

    # Observed alliance: latent plus independent error giving the stated reliability.
    error_sd = 0.0
    if params.alliance_reliability < 1.0:
        error_sd = float(np.sqrt(np.var(a_true) * (1 - params.alliance_reliability)
                                 / params.alliance_reliability))
    a_obs = a_true + rng.normal(0.0, 1.0, (n, T)) * error_sd

    # Attendance: dropout after each session from min_sessions on, more likely with higher
    # symptoms than the session's population mean (missing at random given observed scores).
    attended = np.ones((n, T), dtype=bool)
    active = np.ones(n, dtype=bool)
    base = np.log(params.dropout / (1 - params.dropout)) if params.dropout > 0 else -np.inf
    for t in range(T):
        attended[:, t] = active
        if t + 1 >= params.min_sessions and t + 1 < T:
            logit = base + params.dropout_symptom_slope * (y[:, t] - mu_y[t])
            active = active & (rng.random(n) >= 1.0 / (1.0 + np.exp(-logit)))
    last = attended.sum(axis=1)
    # Intermittent missing questionnaires strictly between the first and the last session.
    inside = (sessions[None, :] > 1) & (sessions[None, :] < last[:, None])
    scored = attended & ~(inside & (rng.random((n, T)) < params.intermittent_missing))

    client, col = np.nonzero(scored)
    frame = pd.DataFrame({
        "client_id": np.char.add("C", np.char.zfill((client + 1).astype(str), 5)),
        "therapist_id": np.char.add("T", np.char.zfill((therapist[client] + 1).astype(str), 3)),
        "session": (col + 1).astype(np.int64),
        "alliance_score": a_obs[client, col],
        "symptom_score": y[client, col],
        "alliance_true": a_true[client, col],
        "symptom_true": y[client, col],
    })
    truth = {
        "scenario": name,
        "seed": int(seed),
        "effect": float(params.effect),
        "parameters": dataclasses.asdict(params),
        "n_clients": n,
        "n_therapists": int(n_therapists),
        "alliance_error_sd": error_sd,
        "share_scored": float(scored.sum() / attended.sum()),
        "mean_sessions_attended": float(last.mean()),
    }
    return frame, truth


def wide_panel(long: pd.DataFrame, waves: int, alliance: str = "alliance_score",
               symptoms: str = "symptom_score") -> pd.DataFrame:
    """One row per client: ``client_id, therapist_id, y1..yK, a1..aK`` (NaN = no score)."""
    rows = long[long["session"] <= waves]
    clients = long.drop_duplicates("client_id")[["client_id", "therapist_id"]]
    out = clients.set_index("client_id")
    for prefix, column in (("y", symptoms), ("a", alliance)):
        wide = rows.pivot(index="client_id", columns="session", values=column)
        wide = wide.reindex(index=out.index, columns=range(1, waves + 1))
        wide.columns = [f"{prefix}{k}" for k in wide.columns]
        out = out.join(wide)
    return out.reset_index()


def _bivariate(rng: np.random.Generator, n: int, sd1: float, sd2: float,
               correlation: float) -> np.ndarray:
    z = rng.standard_normal((n, 2))
    second = correlation * z[:, 0] + np.sqrt(1.0 - correlation**2) * z[:, 1]
    return np.column_stack([sd1 * z[:, 0], sd2 * second])
