"""Putting a simulated study together: :func:`simulate_study` and :class:`SimulatedStudy`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.simulate.alliance import (
    draw_alliance,
    drive_by_latent,
    observed_score,
    split_alliance,
)
from analysis.errors import ConfigError
from analysis.simulate.engagement import add_engagement, resolve_engagement
from analysis.simulate.exports import generated_frame, outcomes_frame, sessions_frame
from analysis.simulate.invalid import choose_session_invalid
from analysis.simulate.layout import draw_labels, draw_layout
from analysis.simulate.missing import draw_missing_items
from analysis.simulate.parameters import (
    ALLIANCE,
    INVALID_RATES,
    check_driver,
    check_sizes,
    resolve_effects,
)
from analysis.simulate.people import draw_people
from analysis.simulate.symptoms import draw_symptoms
from analysis.simulate.truth import build_truth


@dataclass
class SimulatedStudy:
    """A simulated study: the two raw exports, the generated quantities and the truth.

    Attributes
    ----------
    sessions : pandas.DataFrame
        The session export (``sessions.csv`` layout of the shared contract).
    outcomes : pandas.DataFrame
        The outcome export (``outcomes.csv`` layout).
    truth : dict
        Every generating parameter, the sizes, the invalid-row counts and realised summaries.
    generated : pandas.DataFrame
        One row per attended session (before invalid rows were added): ``client_id,
        therapist_id, session``; ``alliance_score`` (observed WAI-SR mean, NaN when not scored
        or made invalid), ``alliance_within`` and ``alliance_between_c`` (the observed score
        split as the analysis splits it); ``alliance_latent`` (the true alliance T);
        ``alliance_driving_within`` and ``alliance_driving_between_c`` (the parts that drove
        symptoms: the observed split, or T's split with the latent driver); for each outcome
        ``<key>_total`` (the integer total the items sum to) and ``<key>_score`` (the observed
        score: prorated when items are missing, NaN when unscored or the questionnaire is
        missing).
    """

    sessions: pd.DataFrame
    outcomes: pd.DataFrame
    truth: dict[str, Any]
    generated: pd.DataFrame = field(repr=False)


def simulate_study(
    n_clients: int,
    n_therapists: int,
    seed: int,
    max_sessions: int = 16,
    identifiers: bool = True,
    invalid_rows: bool = True,
    alliance_driver: str = "observed",
    engagement: bool = False,
    engagement_effects: dict[str, float] | None = None,
    **effects: float,
) -> SimulatedStudy:
    """Simulate the raw exports of a therapy service with known alliance effects.

    Parameters
    ----------
    n_clients : int
        Clients with at least one session (>= 1).
    n_therapists : int
        Therapists (>= 1); each client sees exactly one. When there are at least as many clients
        as therapists every therapist has a client; caseloads are unequal.
    seed : int
        Seed of ``numpy.random.default_rng``; the same arguments give identical frames.
    max_sessions : int, default 16
        Most sessions a client attends (>= 1).
    identifiers : bool, default True
        Add identifying columns (``client_name, email, phone, date_of_birth, record_number,
        notes``) to the session export and ``record_number`` to the outcome export.
    invalid_rows : bool, default True
        Add out-of-range item values, exact and conflicting duplicate rows and outcome rows of
        clients without a session record, counted in ``truth["invalid_rows"]``.
    alliance_driver : {"observed", "latent"}, default "observed"
        What drives symptoms (:mod:`analysis.simulate.alliance`): the observed WAI-SR score
        split as the analysis splits it, or the latent true alliance, which the WAI-SR measures
        with the reliability in the instrument registry (the item noise follows from it unless
        ``alliance_sd_item`` is given).
    engagement : bool, default False
        Add attendance and endings (:mod:`analysis.simulate.engagement`): dropout whose hazard
        depends on the alliance with a known effect (the sessions after it removed), an
        ``ending`` column, and missed appointments with a ``status`` column; sessions are then
        numbered by appointment. Off, the exports are exactly those without it.
    engagement_effects : dict, optional
        Overrides of :data:`analysis.simulate.engagement.ENGAGEMENT_EFFECTS`.
    **effects : float
        Overrides of :data:`DEFAULT_EFFECTS` (e.g. ``phq9_within=-1.0``).

    Returns
    -------
    SimulatedStudy
        ``sessions`` and ``outcomes`` sorted by client then session (a duplicate directly after
        its original), empty cells for missing values; ``generated`` and ``truth`` as described
        in :class:`SimulatedStudy`.

    Examples
    --------
    >>> study = simulate_study(50, 5, seed=1)
    >>> sorted(study.truth["outcomes"])
    ['gad7', 'phq9']
    """
    params = resolve_effects(effects)
    check_sizes(n_clients, n_therapists, max_sessions)
    check_driver(alliance_driver)
    engagement_params = resolve_engagement(engagement_effects) if engagement else None
    if engagement_effects and not engagement:
        raise ConfigError("simulate_study: engagement_effects are given but engagement is off; "
                          "pass engagement=True (--engagement).")
    latent_driver = alliance_driver == "latent"
    # The latent driver measures the alliance with the registry's reliability, unless the item
    # noise is set directly.
    reliability = (ALLIANCE.reliability if latent_driver and "alliance_sd_item" not in effects
                   else None)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_layout, rng_alliance, rng_symptoms, rng_missing, rng_invalid, rng_people = streams

    layout = draw_layout(rng_layout, n_clients, n_therapists, max_sessions)
    client_of_row = layout["client_of_row"]

    drawn = draw_alliance(rng_alliance, layout, params, reliability)
    wai_items = drawn["items"]
    wai_items[draw_missing_items(rng_missing, client_of_row.size, ALLIANCE.n_items,
                                 ALLIANCE.subscales)] = np.nan
    alliance_observed = observed_score(wai_items)

    # Invalid session rows are chosen before symptoms are drawn: the cleaning stage rejects them,
    # so their alliance is unobserved and must not enter the client means the effects act on.
    session_invalid = choose_session_invalid(rng_invalid, wai_items, invalid_rows)
    alliance_observed[session_invalid["unusable_rows"]] = np.nan

    alliance = split_alliance(alliance_observed, drawn["full_mean"], client_of_row, n_clients)
    if latent_driver:
        alliance = drive_by_latent(alliance, drawn, client_of_row)
    symptoms = draw_symptoms(rng_symptoms, rng_missing, layout, alliance, params)

    # A few outcome rows belong to clients with no session record (about one per 1,000 rows).
    n_orphans = (
        max(1, round(INVALID_RATES["orphan_outcome"] * client_of_row.size)) if invalid_rows else 0
    )
    labels = draw_labels(rng_layout, n_clients, n_orphans, n_therapists)
    people = draw_people(rng_people, layout, labels, n_orphans) if identifiers else None

    sessions, session_counts = sessions_frame(layout, wai_items, session_invalid, labels, people)
    outcomes, outcome_counts = outcomes_frame(
        rng_invalid, layout, symptoms, labels, people, invalid_rows, params
    )
    generated = generated_frame(layout, alliance, symptoms, labels, drawn["latent"])
    engagement_truth = None
    if engagement_params is not None:
        # its own stream (the seventh child of the seed), so the other draws stay as without it
        rng_engagement = np.random.default_rng(np.random.SeedSequence(seed).spawn(7)[6])
        sessions, outcomes, generated, engagement_truth = add_engagement(
            sessions, outcomes, generated, rng_engagement, engagement_params)
    truth = build_truth(
        n_clients=n_clients,
        n_therapists=n_therapists,
        seed=seed,
        max_sessions=max_sessions,
        identifiers=identifiers,
        invalid_rows=invalid_rows,
        params=params,
        effects=effects,
        alliance=alliance,
        symptoms=symptoms,
        invalid_counts={**session_counts, **outcome_counts},
        n_session_rows=len(sessions),
        n_outcome_rows=len(outcomes),
        n_attended=int(client_of_row.size),
        reliability=reliability,
    )
    if engagement_truth is not None:
        truth["engagement"] = engagement_truth
    return SimulatedStudy(sessions=sessions, outcomes=outcomes, truth=truth, generated=generated)
