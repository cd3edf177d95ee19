"""Small analysis frames for the examples in the package's docstrings.

:func:`example_derived` draws a study from a dynamic-panel scenario (:mod:`analysis.simulate.dynamic`:
alliance and symptom scores per session, clients nested in therapists) and runs it through the
derive stage (:func:`analysis.derive.derive_analysis_frame`), so a model's example fits what the
pipeline would fit, on a frame small enough to fit in well under a second.
"""

from __future__ import annotations

import pandas as pd


def example_derived(n_clients: int = 40, n_therapists: int = 8, max_sessions: int = 8,
                    seed: int = 3, scenario: str = "a_no_reverse_effect",
                    alliance: str = "wai_sr", outcome: str = "phq9") -> pd.DataFrame:
    """A ``derived`` frame of a small simulated study (one outcome).

    Parameters
    ----------
    n_clients, n_therapists, max_sessions : int
        The study's size.
    seed : int
        Seed of the simulation: the same arguments give the same frame.
    scenario : str
        A scenario of :func:`analysis.simulate.dynamic.get_scenario` (the default: the alliance
        lowers next session's symptoms, no reverse path).
    alliance, outcome : str
        The instrument keys the simulated alliance and symptom scores are given.

    Returns
    -------
    DataFrame
        The derived frame (:mod:`analysis.derive`): one row per (outcome, client, session).

    Examples
    --------
    >>> derived = example_derived()
    >>> derived.shape
    (257, 16)
    >>> derived[["client_id", "therapist_id", "session", "symptom_score", "alliance_within"]
    ...         ].head(3).round(2)
      client_id therapist_id  session  symptom_score  alliance_within
    0    C00001         T001        1          11.67            -0.19
    1    C00001         T001        2          10.36            -0.22
    2    C00001         T001        3          16.09            -0.11
    """
    from analysis.derive import derive_analysis_frame
    from analysis.settings import DeriveSettings
    from analysis.simulate.dynamic import simulate_dynamic

    long, _ = simulate_dynamic(scenario, seed=seed, n_clients=n_clients,
                               n_therapists=n_therapists, max_sessions=max_sessions)
    scores = long.melt(id_vars=["client_id", "session"],
                       value_vars=["alliance_score", "symptom_score"],
                       var_name="instrument", value_name="score")
    scores["instrument"] = scores["instrument"].map({"alliance_score": alliance,
                                                     "symptom_score": outcome})
    sessions = long[["client_id", "therapist_id", "session"]].assign(day=7 * (long["session"] - 1))
    return derive_analysis_frame(scores, sessions,
                                 DeriveSettings(alliance=alliance, outcomes=(outcome,)))
