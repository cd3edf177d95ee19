"""A seeded generator of realistic raw exports with known alliance effects.

The demo data and the recovery tests need service data whose answer is known. This module draws
a study in which clients are nested in therapists with unequal caseloads, attend weekly sessions
(with jitter and dropout) and fill in the WAI-SR at every session and the PHQ-9 and GAD-7 at
most sessions. Alliance items are drawn first; the OBSERVED alliance score (the mean of the
answered items, as the scoring stage computes it) is split into a client mean and a within-client
deviation, and symptoms then follow the lagged model of model M2 of docs/methods.md written in observed
quantities::

    Y[i, t+1] = intercept + rho * Y[i, t] + within * A_w[i, t] + between * A_b_c[i]
                + session_slope * t + u[i] + v[j] + e[i, t+1]

where ``Y[i, t]`` is the observed (as scored, prorated when items are missing) total at t, ``u``
and ``v`` are client and therapist random intercepts and ``e`` is residual noise; the new total
is the latent value rounded and clipped to the instrument's range and is spread over items that
sum to it exactly. Symptoms never act on alliance. Missing items, whole missing questionnaires
and (optionally) invalid rows for the cleaning stage are added at stated rates.

Inputs are plain values (sizes, a seed and effect overrides); :func:`simulate_study` returns a
:class:`SimulatedStudy` holding the two raw exports in the layout of the shared contract
(``sessions.csv``: ``client_id, therapist_id, session, session_date, wai_1..wai_12`` and the
identifying columns; ``outcomes.csv``: ``client_id, session, date, phq9_1..phq9_9,
gad7_1..gad7_7, record_number``), the per-session generated quantities (``generated``) and the
``truth`` dict; :func:`write_study` writes ``sessions.csv``, ``outcomes.csv`` and ``truth.yaml``.
Everything is vectorised over clients (the only Python loop runs over the session index), and the
same arguments give byte-identical files. Command line::

    python -m analysis.simulate --clients 400 --therapists 40 --seed 20261125 --out data/raw

``truth.yaml`` layout: ``outcomes.<key>`` (``phq9``, ``gad7``) holds ``within``, ``between``,
``rho``, ``session_slope``, ``intercept``, ``sd_client``, ``sd_therapist``, ``sd_residual``,
``intake_mean``, ``intake_sd``, the score range and the realised share of clipped scores;
``alliance`` the alliance parameters and the centring constant; ``correlations`` the
depression-anxiety correlations; ``missing`` the missing-data rates; ``invalid_rows`` the count
of each kind of invalid row; plus sizes, seed and the reproducing ``command``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml

from analysis.errors import ConfigError, UserError
from analysis.instruments import BUILT_IN
from analysis.io import atomic_path

# Outcome instruments as simulated: item count, item maximum (items start at 0) and the relative
# propensity of each item to carry a point of the total. PHQ-9 sleep and tiredness items are the
# most endorsed in clinical samples; item 9 (self-harm) is rarely above 0.
# Instrument facts (item counts, ranges, subscales) come from the registry, the one place they live.
OUTCOME_SPECS: dict[str, dict[str, Any]] = {
    "phq9": {
        "n_items": BUILT_IN["phq9"].n_items,
        "item_max": int(BUILT_IN["phq9"].item_max),
        "item_weights": (1.0, 1.1, 1.3, 1.4, 0.9, 0.9, 0.8, 0.6, 0.05),
    },
    "gad7": {
        "n_items": BUILT_IN["gad7"].n_items,
        "item_max": int(BUILT_IN["gad7"].item_max),
        "item_weights": (1.1, 1.0, 1.2, 1.0, 0.8, 1.0, 0.8),
    },
}

WAI_N_ITEMS = BUILT_IN["wai_sr"].n_items
WAI_ITEM_MIN = int(BUILT_IN["wai_sr"].item_min)
WAI_ITEM_MAX = int(BUILT_IN["wai_sr"].item_max)
WAI_SUBSCALES = BUILT_IN["wai_sr"].subscales
# Items differ a little in how readily clients endorse them (bond items run highest).
WAI_ITEM_OFFSETS = (0.05, 0.0, 0.15, -0.10, 0.10, -0.05, 0.20, -0.05, 0.10, 0.0, -0.15, -0.05)

# Scoring rule the generator mirrors when it computes observed scores: up to this many missing
# items are prorated (docs/methods.md section 1); more leave the administration unscored.
OUTCOME_MAX_PRORATED = BUILT_IN["phq9"].max_missing
WAI_MAX_PRORATED = 2

DEFAULT_EFFECTS: dict[str, float] = {
    # Depression (PHQ-9 total, 0-27): effects in points per WAI-SR point (1-5 mean scale).
    "phq9_within": -1.5,
    "phq9_between": -2.0,
    "phq9_rho": 0.5,
    "phq9_session_slope": -0.1,
    "phq9_intercept": 5.5,
    "phq9_sd_client": 1.2,
    "phq9_sd_therapist": 1.0,
    "phq9_sd_residual": 2.2,
    "phq9_intake_mean": 15.0,
    "phq9_intake_sd": 4.5,
    # Anxiety (GAD-7 total, 0-21): the PHQ-9 values scaled by the ratio of the ranges (21/27).
    "gad7_within": -1.2,
    "gad7_between": -1.6,
    "gad7_rho": 0.5,
    "gad7_session_slope": -0.08,
    "gad7_intercept": 4.5,
    "gad7_sd_client": 0.95,
    "gad7_sd_therapist": 0.8,
    "gad7_sd_residual": 1.7,
    "gad7_intake_mean": 13.0,
    "gad7_intake_sd": 3.6,
    # Depression and anxiety move together: correlations of the two outcomes' client and
    # therapist intercepts, residuals and intake scores.
    "outcome_client_correlation": 0.6,
    "outcome_therapist_correlation": 0.6,
    "outcome_residual_correlation": 0.5,
    "outcome_intake_correlation": 0.6,
    # Alliance (latent WAI-SR item scale 1-5): client level, per-session trend, noise. A latent
    # mean of 3.82 gives an observed mean near 3.9 once items are rounded and capped at 5.
    "alliance_mean": 3.82,
    "alliance_sd_client": 0.45,
    "alliance_trend_mean": 0.02,
    "alliance_trend_sd": 0.02,
    "alliance_sd_session": 0.25,
    "alliance_sd_item": 0.55,
}

# Missing data, per administration (each instrument at each attended session).
MISSING_RATES = {
    "whole_questionnaire": 0.05,
    "one_item": 0.03,
    "two_items": 0.01,
    "three_or_more_items": 0.005,
}

# Invalid rows for the cleaning stage, as shares of the rows of each file (at least one of each
# "few" kind whenever invalid rows are requested and the file has rows to copy).
INVALID_RATES = {
    "out_of_range": 0.005,
    "exact_duplicate": 0.005,
    "conflicting_duplicate": 0.001,
    "orphan_outcome": 0.001,
}
# Out-of-range values as they appear in exports: typing slips and missing-value codes.
WAI_BAD_VALUES = (0, 6, 7)
OUTCOME_BAD_VALUES = (4, 5, 9)

FIRST_DAY = np.datetime64("2023-01-01")
LAST_FIRST_DAY = np.datetime64("2025-12-31")

FIRST_NAMES = (
    "Aisha", "Ben", "Chloe", "Daniel", "Elif", "Fatima", "George", "Hannah", "Ibrahim", "Jade",
    "Kofi", "Laura", "Mohammed", "Niamh", "Oliver", "Priya", "Quentin", "Rosa", "Samuel", "Tomasz",
    "Uma", "Victor", "Wen", "Xavier", "Yusuf", "Zoe", "Amara", "Callum", "Dilnoza", "Emma",
    "Finley", "Grace", "Harvey", "Isla", "Jamal", "Katarzyna", "Leon", "Maya", "Nikhil", "Olivia",
)
LAST_NAMES = (
    "Adeyemi", "Brown", "Chen", "Davies", "Evans", "Fernandes", "Green", "Hussain", "Ivanova",
    "Jones", "Kowalski", "Lewis", "Murphy", "Nguyen", "O'Brien", "Patel", "Quinn", "Robinson",
    "Smith", "Taylor", "Uddin", "Vasquez", "Walker", "Xu", "Young", "Zielinski", "Ali", "Begum",
    "Campbell", "Doherty", "Edwards", "Fraser", "Gill", "Hughes", "Iqbal", "Khan", "Mensah",
    "Novak", "Okafor", "Wright",
)
# Intake notes as (text before the first name, whether the name appears, text after it).
NOTE_TEMPLATES = (
    ("", True, " reports low mood and poor sleep since the spring."),
    ("Referred by GP; ", True, " prefers evening appointments."),
    ("Works shifts, asked for reminders by text.", False, ""),
    ("Previous episode of depression treated with medication.", False, ""),
    ("", True, " says work stress and money worries are the main problems."),
    ("Self-referral. Lives with partner and two children.", False, ""),
    ("Carer for a parent; ", True, " finds it hard to attend weekly."),
    ("Panic attacks on public transport, avoids the bus.", False, ""),
    ("", True, " was bereaved last year; grief and worry."),
    ("Student, exams in May. Wants to work on worry.", False, ""),
)
# Phone numbers from the block reserved for drama (07700 900000-900999): never a real line.
PHONE_PREFIX = "07700 900"


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
        or made invalid), ``alliance_within`` and ``alliance_between_c`` as the generator used
        them; for each outcome ``<key>_total`` (the integer total the items sum to) and
        ``<key>_score`` (the observed score: prorated when items are missing, NaN when
        unscored or the questionnaire is missing).
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
    params = _resolve_effects(effects)
    _check_sizes(n_clients, n_therapists, max_sessions)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    rng_layout, rng_alliance, rng_symptoms, rng_missing, rng_invalid, rng_people = streams

    layout = _draw_layout(rng_layout, n_clients, n_therapists, max_sessions)
    client_of_row = layout["client_of_row"]

    wai_items, alliance_full = _draw_alliance_items(rng_alliance, layout, params)
    wai_items[_draw_missing_items(rng_missing, client_of_row.size, WAI_N_ITEMS, True)] = np.nan
    alliance_observed = _observed_mean(wai_items, WAI_MAX_PRORATED)

    # Invalid session rows are chosen before symptoms are drawn: the cleaning stage rejects them,
    # so their alliance is unobserved and must not enter the client means the effects act on.
    session_invalid = _choose_session_invalid(rng_invalid, wai_items, invalid_rows)
    alliance_observed[session_invalid["unusable_rows"]] = np.nan

    alliance = _split_alliance(alliance_observed, alliance_full, client_of_row, n_clients)
    symptoms = _draw_symptoms(rng_symptoms, rng_missing, layout, alliance, params)

    # A few outcome rows belong to clients with no session record (about one per 1,000 rows).
    n_orphans = (
        max(1, round(INVALID_RATES["orphan_outcome"] * client_of_row.size)) if invalid_rows else 0
    )
    labels = _draw_labels(rng_layout, n_clients, n_orphans, n_therapists)
    people = _draw_people(rng_people, layout, labels, n_orphans) if identifiers else None

    sessions, session_counts = _sessions_frame(layout, wai_items, session_invalid, labels, people)
    outcomes, outcome_counts = _outcomes_frame(
        rng_invalid, layout, symptoms, labels, people, invalid_rows, params
    )
    generated = _generated_frame(layout, alliance, symptoms, labels)
    truth = _truth(
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
    )
    return SimulatedStudy(sessions=sessions, outcomes=outcomes, truth=truth, generated=generated)


def write_study(study: SimulatedStudy, out_dir: str | Path) -> None:
    """Write ``sessions.csv``, ``outcomes.csv`` and ``truth.yaml`` into ``out_dir``, atomically.

    ``truth.yaml`` gains the ``command`` that reproduces the three files in ``out_dir``. CSV
    files use ``,`` and ``\\n``, empty cells for missing values; YAML keys are sorted.

    Parameters
    ----------
    study : SimulatedStudy
        The output of :func:`simulate_study`.
    out_dir : str or pathlib.Path
        Target folder (created if needed).
    """
    out = Path(out_dir)
    truth = dict(study.truth)
    truth["command"] = _command_line(truth, out)
    for name, frame in (("sessions.csv", study.sessions), ("outcomes.csv", study.outcomes)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    with atomic_path(out / "truth.yaml") as tmp:
        tmp.write_text(
            "# Generating parameters of the simulated study in this folder (analysis.simulate).\n"
            + yaml.safe_dump(truth, sort_keys=True, default_flow_style=False, width=100),
            encoding="utf-8",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: simulate a study and write its raw exports (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.simulate",
        description="Simulate raw therapy-service exports (sessions.csv, outcomes.csv) with "
        "known alliance effects, and truth.yaml with every generating parameter.",
    )
    parser.add_argument("--clients", type=int, required=True, help="number of clients")
    parser.add_argument("--therapists", type=int, required=True, help="number of therapists")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", required=True, help="folder to write the files into")
    parser.add_argument(
        "--max-sessions", type=int, default=16, help="most sessions a client attends (16)"
    )
    parser.add_argument(
        "--no-identifiers", action="store_true", help="leave out names, contacts and notes"
    )
    parser.add_argument(
        "--no-invalid", action="store_true", help="leave out invalid rows for the cleaning stage"
    )
    args = parser.parse_args(argv)
    try:
        study = simulate_study(
            args.clients,
            args.therapists,
            args.seed,
            max_sessions=args.max_sessions,
            identifiers=not args.no_identifiers,
            invalid_rows=not args.no_invalid,
        )
    except UserError as error:
        parser.error(str(error))
    write_study(study, args.out)
    print(
        f"wrote {len(study.sessions)} session rows and {len(study.outcomes)} outcome rows "
        f"for {args.clients} clients to {args.out}",
        file=sys.stderr,
    )
    return 0


# --------------------------------------------------------------------------------------------
# Parameters and layout


def _resolve_effects(effects: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(effects) - set(DEFAULT_EFFECTS))
    if unknown:
        raise ConfigError(
            f"simulate_study: unknown effect(s) {', '.join(unknown)}; the effects that can be set "
            f"are {', '.join(sorted(DEFAULT_EFFECTS))}."
        )
    params = {**DEFAULT_EFFECTS, **{key: float(value) for key, value in effects.items()}}
    for key, value in params.items():
        if not np.isfinite(value):
            raise ConfigError(f"simulate_study: effect {key} must be a finite number.")
        if (key.endswith("_sd") or "_sd_" in key) and value < 0:
            raise ConfigError(f"simulate_study: effect {key} is a standard deviation; use >= 0.")
        if key.endswith("_correlation") and not -1.0 <= value <= 1.0:
            raise ConfigError(f"simulate_study: effect {key} is a correlation; use -1 to 1.")
    return params


def _check_sizes(n_clients: int, n_therapists: int, max_sessions: int) -> None:
    for name, value in (
        ("n_clients (--clients)", n_clients),
        ("n_therapists (--therapists)", n_therapists),
        ("max_sessions (--max-sessions)", max_sessions),
    ):
        if int(value) != value or value < 1:
            raise ConfigError(f"simulate_study: {name} must be a whole number >= 1.")


def _draw_layout(
    rng: np.random.Generator, n_clients: int, n_therapists: int, max_sessions: int
) -> dict[str, np.ndarray]:
    """Therapist of each client, sessions attended, session numbers and dates (row space)."""
    # Unequal caseloads: therapist shares are log-normal; every therapist gets a first client
    # when there are enough clients, so no therapist is empty.
    caseload_share = rng.lognormal(0.0, 0.6, n_therapists)
    caseload_share /= caseload_share.sum()
    guaranteed = np.arange(min(n_clients, n_therapists))
    others = rng.choice(n_therapists, size=n_clients - guaranteed.size, p=caseload_share)
    therapist_of_client = rng.permutation(np.concatenate([guaranteed, others]))

    # Sessions attended: most clients stay 4-12 sessions; about one in eight leaves after 1-2.
    typical = np.rint(rng.normal(0.56 * max_sessions, 0.19 * max_sessions, n_clients))
    typical = np.clip(typical, min(3, max_sessions), max_sessions)
    early_dropout = rng.random(n_clients) < 0.12
    early_length = np.minimum(rng.choice([1, 2], size=n_clients, p=[0.6, 0.4]), max_sessions)
    n_sessions = np.where(early_dropout, early_length, typical).astype(np.int64)

    first_row = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    client_of_row = np.repeat(np.arange(n_clients), n_sessions)
    session = np.arange(client_of_row.size) - first_row[client_of_row] + 1

    # Weekly sessions on the client's usual weekday, now and then moved a working day earlier or
    # later, with the odd missed week or two. Moves of one working day keep consecutive sessions
    # at least three days apart, so a questionnaire dated the day before still links to its own.
    first_day = _random_working_days(rng, n_clients)
    weeks_to_next = 1 + rng.choice([0, 1, 2], size=client_of_row.size, p=[0.9, 0.08, 0.02])
    weeks_to_next = np.where(session == 1, 0, weeks_to_next)
    cumulative = np.cumsum(weeks_to_next)
    weeks_since_first = cumulative - cumulative[first_row][client_of_row]
    usual_day = first_day[client_of_row] + (7 * weeks_since_first).astype("timedelta64[D]")
    moved = rng.choice([-1, 0, 1], size=client_of_row.size, p=[0.15, 0.7, 0.15])
    moved = np.where(session == 1, 0, moved)
    session_date = np.busday_offset(usual_day, moved, roll="forward")
    return {
        "therapist_of_client": therapist_of_client,
        "n_sessions": n_sessions,
        "first_row": first_row,
        "client_of_row": client_of_row,
        "session": session.astype(np.int64),
        "session_date": session_date,
        "max_sessions": np.int64(max_sessions),
        "n_therapists": np.int64(n_therapists),
    }


def _random_working_days(rng: np.random.Generator, size: int) -> np.ndarray:
    """Working days (Monday to Friday) drawn uniformly from FIRST_DAY to LAST_FIRST_DAY."""
    working_days = int(np.busday_count(FIRST_DAY, LAST_FIRST_DAY + 1))
    return np.busday_offset(FIRST_DAY, rng.integers(0, working_days, size), roll="forward")


def _draw_labels(
    rng: np.random.Generator, n_clients: int, n_orphans: int, n_therapists: int
) -> dict[str, np.ndarray]:
    """Raw ids: ``CL-004217`` per person (clients, then orphans) and ``TH-017`` per therapist.

    Client numbers are random and unique and ascend with the client index, so rows sorted by
    client index are sorted by id; the orphans' numbers are unused by any client.
    """
    # At most a quarter of the number space is used, so ids look sparse as in real registers.
    id_space = max(10**6, 4 * n_clients)
    id_width = len(str(id_space - 1))
    client_numbers = np.sort(rng.choice(id_space - 1, size=n_clients, replace=False) + 1)
    # Orphan numbers are drawn apart from the clients' so that adding them changes no client id;
    # with three quarters of the space free, a second draw is rarely needed.
    while True:
        candidates = rng.choice(id_space - 1, size=2 * n_orphans + 10, replace=False) + 1
        unused = candidates[~np.isin(candidates, client_numbers)]
        if unused.size >= n_orphans:
            break
    numbers = np.concatenate([client_numbers, unused[:n_orphans]])
    therapist_width = max(3, len(str(n_therapists)))
    return {
        "numbers": numbers,
        "client": _labels("CL-", numbers, id_width),
        "therapist": _labels("TH-", np.arange(1, n_therapists + 1), therapist_width),
    }


def _labels(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.strings.add(prefix, np.strings.zfill(numbers.astype(str), width))


# --------------------------------------------------------------------------------------------
# Alliance


def _draw_alliance_items(
    rng: np.random.Generator, layout: dict[str, np.ndarray], params: dict[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """WAI-SR items (rows x 12, float) and the all-items mean of every administration."""
    client_of_row = layout["client_of_row"]
    n_clients = layout["n_sessions"].size
    level = rng.normal(params["alliance_mean"], params["alliance_sd_client"], n_clients)
    trend = rng.normal(params["alliance_trend_mean"], params["alliance_trend_sd"], n_clients)
    latent = (
        level[client_of_row]
        + trend[client_of_row] * (layout["session"] - 1)
        + rng.normal(0.0, params["alliance_sd_session"], client_of_row.size)
    )
    item_noise = rng.normal(0.0, params["alliance_sd_item"], (client_of_row.size, WAI_N_ITEMS))
    items = np.clip(
        np.rint(latent[:, None] + np.asarray(WAI_ITEM_OFFSETS) + item_noise),
        WAI_ITEM_MIN,
        WAI_ITEM_MAX,
    )
    return items, items.mean(axis=1)


def _observed_mean(items: np.ndarray, max_missing: int) -> np.ndarray:
    """Mean of the answered items; NaN with more than ``max_missing`` missing."""
    answered = ~np.isnan(items)
    n_answered = answered.sum(axis=1)
    scorable = (items.shape[1] - n_answered) <= max_missing
    sums = np.where(answered, items, 0.0).sum(axis=1)
    return np.where(scorable, sums / np.maximum(n_answered, 1), np.nan)


def _split_alliance(
    alliance_observed: np.ndarray,
    alliance_full: np.ndarray,
    client_of_row: np.ndarray,
    n_clients: int,
) -> dict[str, Any]:
    """Observed person means, centred between parts and within parts (docs/methods.md section 3).

    Symptoms need a within value at every session, also where the alliance went unobserved (the
    model then cannot use that session): there the all-items mean stands in. A client with no
    observed alliance at all gets the mean of the all-items means as person mean.
    """
    observed = ~np.isnan(alliance_observed)
    n_observed = np.bincount(client_of_row, weights=observed, minlength=n_clients)
    sum_observed = np.bincount(
        client_of_row, weights=np.where(observed, alliance_observed, 0.0), minlength=n_clients
    )
    n_rows = np.bincount(client_of_row, minlength=n_clients)
    full_mean = np.bincount(client_of_row, weights=alliance_full, minlength=n_clients) / n_rows
    has_observed = n_observed > 0
    person_mean = np.where(has_observed, sum_observed / np.maximum(n_observed, 1), full_mean)
    centre = float(person_mean[has_observed].mean()) if has_observed.any() else float("nan")
    between_c = person_mean - centre
    driving = np.where(observed, alliance_observed, alliance_full)
    return {
        "observed": alliance_observed,
        "within_driving": driving - person_mean[client_of_row],
        "within_observed": alliance_observed - np.where(has_observed, person_mean, np.nan)[
            client_of_row
        ],
        "between_c": between_c,
        "between_c_observed": np.where(has_observed, between_c, np.nan),
        "centre": centre,
    }


# --------------------------------------------------------------------------------------------
# Missing items


def _draw_missing_items(
    rng: np.random.Generator, n_rows: int, n_items: int, subscales: bool = False
) -> np.ndarray:
    """Boolean mask (rows x items) of missing items at the rates of :data:`MISSING_RATES`.

    With ``subscales`` (the WAI-SR) one or two missing items fall in different subscales, so
    every scoring rule in use scores them, and three or more include two of one subscale, so no
    rule does: the generator and the scoring stage then agree on which alliance is observed.
    """
    whole = rng.random(n_rows) < MISSING_RATES["whole_questionnaire"]
    draw = rng.random(n_rows)
    one = MISSING_RATES["one_item"]
    two = one + MISSING_RATES["two_items"]
    many = two + MISSING_RATES["three_or_more_items"]
    n_missing = np.select([draw < one, draw < two, draw < many], [1, 2, 3], default=0)
    most = max(3, n_items // 2)
    n_missing = np.where(n_missing == 3, rng.integers(3, most + 1, n_rows), n_missing)
    n_missing = np.where(whole, n_items, n_missing)

    mask = np.zeros((n_rows, n_items), dtype=bool)
    mask[whole] = True
    partial = (n_missing > 0) & (n_missing < n_items)
    mask[partial] = _random_subsets(rng, n_missing[partial], n_items)
    if subscales:
        membership = np.zeros((n_items, len(WAI_SUBSCALES)))
        for column, items in enumerate(WAI_SUBSCALES.values()):
            membership[np.asarray(items) - 1, column] = 1
        # Redraw the rows that break the rule; each pass fixes most of them.
        while True:
            rows = np.flatnonzero(partial)
            most_in_one = (mask[rows].astype(float) @ membership).max(axis=1)
            bad = rows[np.where(n_missing[rows] <= 2, most_in_one > 1, most_in_one < 2)]
            if bad.size == 0:
                break
            mask[bad] = _random_subsets(rng, n_missing[bad], n_items)
    return mask


def _random_subsets(rng: np.random.Generator, sizes: np.ndarray, n_items: int) -> np.ndarray:
    """Boolean mask (len(sizes) x n_items) with ``sizes[r]`` True items in row r, at random."""
    ranks = rng.random((sizes.size, n_items)).argsort(axis=1).argsort(axis=1)
    return ranks < sizes[:, None]


# --------------------------------------------------------------------------------------------
# Symptoms


def _draw_symptoms(
    rng: np.random.Generator,
    rng_missing: np.random.Generator,
    layout: dict[str, np.ndarray],
    alliance: dict[str, Any],
    params: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Totals, items and observed scores of each outcome, session by session (all clients at once).

    Returns, per outcome key: ``total`` (int, rows), ``items`` (rows x items, float, NaN =
    missing), ``score`` (observed score, NaN = unscored) and ``clipped`` (rows whose latent value
    fell outside the range before clipping).
    """
    client_of_row = layout["client_of_row"]
    n_sessions = layout["n_sessions"]
    first_row = layout["first_row"]
    therapist_of_client = layout["therapist_of_client"]
    n_clients = n_sessions.size
    n_therapists = int(layout["n_therapists"])
    n_rows = client_of_row.size
    keys = list(OUTCOME_SPECS)

    client_effect = _bivariate(
        rng, n_clients, [params[f"{k}_sd_client"] for k in keys],
        params["outcome_client_correlation"],
    )
    therapist_effect = _bivariate(
        rng, n_therapists, [params[f"{k}_sd_therapist"] for k in keys],
        params["outcome_therapist_correlation"],
    )
    residual = _bivariate(
        rng, n_rows, [params[f"{k}_sd_residual"] for k in keys],
        params["outcome_residual_correlation"],
    )
    intake = _bivariate(
        rng, n_clients, [params[f"{k}_intake_sd"] for k in keys],
        params["outcome_intake_correlation"],
    ) + np.array([params[f"{k}_intake_mean"] for k in keys])

    result: dict[str, dict[str, Any]] = {}
    for position, key in enumerate(keys):
        spec = OUTCOME_SPECS[key]
        top = spec["n_items"] * spec["item_max"]
        missing = _draw_missing_items(rng_missing, n_rows, spec["n_items"])
        result[key] = {
            "total": np.zeros(n_rows, dtype=np.int64),
            "items": np.full((n_rows, spec["n_items"]), np.nan),
            "score": np.full(n_rows, np.nan),
            "clipped": np.zeros(n_rows, dtype=bool),
            "missing": missing,
            "top": top,
            "position": position,
        }

    def place(key: str, rows: np.ndarray, latent: np.ndarray) -> None:
        state = result[key]
        spec = OUTCOME_SPECS[key]
        rounded = np.rint(latent)
        total = np.clip(rounded, 0, state["top"]).astype(np.int64)
        state["clipped"][rows] = rounded != total
        state["total"][rows] = total
        items = _split_total(rng, total, spec["item_weights"], spec["item_max"]).astype(float)
        missing = state["missing"][rows]
        items[missing] = np.nan
        state["items"][rows] = items
        state["score"][rows] = _observed_sum(items, OUTCOME_MAX_PRORATED)

    intake_rows = first_row
    for key in keys:
        place(key, intake_rows, intake[:, result[key]["position"]])

    within = alliance["within_driving"]
    between_c = alliance["between_c"]
    for t in range(1, int(layout["max_sessions"])):
        continuing = np.flatnonzero(n_sessions > t)
        if continuing.size == 0:
            break
        rows_now = first_row[continuing] + t - 1
        rows_next = rows_now + 1
        therapists = therapist_of_client[continuing]
        for key in keys:
            state = result[key]
            k = state["position"]
            # The observed score carries the process; where it is unscored (too many missing
            # items, questionnaire not given) the client's actual total does.
            now = np.where(
                np.isnan(state["score"][rows_now]),
                state["total"][rows_now],
                state["score"][rows_now],
            )
            latent = (
                params[f"{key}_intercept"]
                + params[f"{key}_rho"] * now
                + params[f"{key}_within"] * within[rows_now]
                + params[f"{key}_between"] * between_c[continuing]
                + params[f"{key}_session_slope"] * t
                + client_effect[continuing, k]
                + therapist_effect[therapists, k]
                + residual[rows_next, k]
            )
            place(key, rows_next, latent)
    return result


def _bivariate(
    rng: np.random.Generator, size: int, sds: Sequence[float], correlation: float
) -> np.ndarray:
    """``size`` x 2 normal draws with means 0, the given SDs and correlation."""
    # Written out rather than through a covariance factorisation, so that a zero SD or a
    # correlation of +-1 works too.
    first, second = rng.standard_normal((2, size))
    return np.column_stack(
        [
            sds[0] * first,
            sds[1] * (correlation * first + np.sqrt(1.0 - correlation**2) * second),
        ]
    )


def _split_total(
    rng: np.random.Generator, totals: np.ndarray, weights: Sequence[float], item_max: int
) -> np.ndarray:
    """Items (rows x len(weights), each 0..item_max) that sum exactly to ``totals``.

    Each item offers ``item_max`` unit slots; the total fills that many slots, drawn without
    replacement with probability proportional to the item's weight (exponential keys divided by
    the weight, smallest keys win; Efraimidis and Spirakis 2006).
    """
    n_items = len(weights)
    slot_weights = np.repeat(np.asarray(weights, dtype=float), item_max)
    keys = rng.exponential(size=(totals.size, n_items * item_max)) / slot_weights
    ordered = np.sort(keys, axis=1)
    cut = np.take_along_axis(ordered, np.clip(totals - 1, 0, None)[:, None], axis=1)
    cut[totals == 0] = -np.inf
    chosen = keys <= cut
    return chosen.reshape(totals.size, n_items, item_max).sum(axis=2)


def _observed_sum(items: np.ndarray, max_missing: int) -> np.ndarray:
    """Sum score as scored: prorated (mean of answered x items) with up to ``max_missing``."""
    return _observed_mean(items, max_missing) * items.shape[1]


# --------------------------------------------------------------------------------------------
# Invalid rows


def _invalid_counts(n_rows: int, enabled: bool) -> tuple[int, int, int]:
    """Out-of-range, conflicting-duplicate and exact-duplicate rows for a file of ``n_rows``."""
    if not enabled or n_rows == 0:
        return 0, 0, 0
    return (
        round(INVALID_RATES["out_of_range"] * n_rows),
        max(1, round(INVALID_RATES["conflicting_duplicate"] * n_rows)),
        round(INVALID_RATES["exact_duplicate"] * n_rows),
    )


def _pick_invalid_rows(
    rng: np.random.Generator, answered: np.ndarray, enabled: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint row sets: out-of-range and conflicting rows (among rows with answers) and exact
    duplicates (among the rest)."""
    n_out, n_conflict, n_duplicate = _invalid_counts(answered.size, enabled)
    candidates = rng.permutation(np.flatnonzero(answered))
    out_of_range = np.sort(candidates[:n_out])
    conflict = np.sort(candidates[n_out : n_out + n_conflict])
    available = np.ones(answered.size, dtype=bool)
    available[out_of_range] = False
    available[conflict] = False
    rest = np.flatnonzero(available)
    duplicate = np.sort(rng.choice(rest, size=min(n_duplicate, rest.size), replace=False))
    return out_of_range, conflict, duplicate


def _answered_position(rng: np.random.Generator, items: np.ndarray) -> np.ndarray:
    """For each row, a random column holding an answer (rows must have one)."""
    keys = rng.random(items.shape)
    keys[np.isnan(items)] = -1.0
    return keys.argmax(axis=1)


def _altered_copy(
    rng: np.random.Generator, items: np.ndarray, low: int, high: int
) -> np.ndarray:
    """A copy of ``items`` with one or two answered values moved by one step within range.

    The conflicting duplicate of a row: same client and session, different answers.
    """
    altered = items.copy()
    keys = rng.random(items.shape)
    keys[np.isnan(items)] = -1.0
    order = np.argsort(-keys, axis=1)
    rows = np.arange(items.shape[0])
    second_ok = (keys[rows, order[:, 1]] >= 0) & (rng.random(rows.size) < 0.5)
    for position, use in ((order[:, 0], np.ones(rows.size, bool)), (order[:, 1], second_ok)):
        current = altered[rows[use], position[use]]
        step = rng.choice([-1.0, 1.0], size=current.size)
        moved = current + step
        moved = np.where((moved < low) | (moved > high), current - step, moved)
        altered[rows[use], position[use]] = moved
    return altered


def _choose_session_invalid(
    rng: np.random.Generator, wai_items: np.ndarray, enabled: bool
) -> dict[str, np.ndarray]:
    """Which session rows get an out-of-range WAI-SR value, a conflicting copy or an exact copy."""
    answered = ~np.isnan(wai_items).all(axis=1)
    out_of_range, conflict, duplicate = _pick_invalid_rows(rng, answered, enabled)
    return {
        "out_of_range_rows": out_of_range,
        "out_of_range_columns": _answered_position(rng, wai_items[out_of_range]),
        "out_of_range_values": rng.choice(WAI_BAD_VALUES, size=out_of_range.size).astype(float),
        "conflict_rows": conflict,
        "conflict_items": _altered_copy(rng, wai_items[conflict], WAI_ITEM_MIN, WAI_ITEM_MAX),
        "duplicate_rows": duplicate,
        "unusable_rows": np.concatenate([out_of_range, conflict]),
    }


# --------------------------------------------------------------------------------------------
# Frames


def _int_column(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Float values with NaN as a nullable integer column (written as empty cells)."""
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _expand(values: np.ndarray, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Text held once per person (or therapist) repeated onto rows as a pandas string column.

    Taking from a string array is far cheaper than indexing wide fixed-width numpy strings.
    """
    return pd.array(values, dtype="str").take(index)


def _date_text(dates: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """ISO ``yyyy-mm-dd`` text of day dates (each distinct date formatted once)."""
    unique, inverse = np.unique(dates, return_inverse=True)
    return _expand(np.datetime_as_string(unique, unit="D"), inverse)


def _sessions_frame(
    layout: dict[str, np.ndarray],
    wai_items: np.ndarray,
    invalid: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    people: dict[str, np.ndarray] | None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The session export with invalid rows; a copy sits directly after its original."""
    n_rows = wai_items.shape[0]
    items = wai_items.copy()
    items[invalid["out_of_range_rows"], invalid["out_of_range_columns"]] = invalid[
        "out_of_range_values"
    ]
    source = np.concatenate(
        [np.arange(n_rows), invalid["duplicate_rows"], invalid["conflict_rows"]]
    )
    copy_rank = np.repeat([0, 1, 1], [n_rows, invalid["duplicate_rows"].size,
                                     invalid["conflict_rows"].size])
    all_items = np.concatenate(
        [items, items[invalid["duplicate_rows"]], invalid["conflict_items"]]
    )
    order = np.lexsort((copy_rank, source))
    source, all_items = source[order], all_items[order]
    client = layout["client_of_row"][source]

    columns: dict[str, Any] = {
        "client_id": _expand(labels["client"], client),
        "therapist_id": _expand(labels["therapist"], layout["therapist_of_client"][client]),
        "session": layout["session"][source],
        "session_date": _date_text(layout["session_date"][source]),
    }
    for k in range(WAI_N_ITEMS):
        columns[f"wai_{k + 1}"] = _int_column(all_items[:, k])
    if people is not None:
        for name in ("client_name", "email", "phone", "date_of_birth", "record_number", "notes"):
            columns[name] = _expand(people[name], client)
    counts = {
        "sessions_out_of_range": int(invalid["out_of_range_rows"].size),
        "sessions_exact_duplicates": int(invalid["duplicate_rows"].size),
        "sessions_conflicting_duplicates": int(invalid["conflict_rows"].size),
    }
    return pd.DataFrame(columns), counts


def _outcomes_frame(
    rng: np.random.Generator,
    layout: dict[str, np.ndarray],
    symptoms: dict[str, dict[str, Any]],
    labels: dict[str, np.ndarray],
    people: dict[str, np.ndarray] | None,
    enabled: bool,
    params: dict[str, float],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The outcome export: one row per session with at least one questionnaire, plus invalid
    rows (out-of-range values, copies, clients without a session record)."""
    keys = list(OUTCOME_SPECS)
    blocks = [symptoms[key]["items"] for key in keys]
    widths = [block.shape[1] for block in blocks]
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    all_items = np.concatenate(blocks, axis=1)
    given = ~np.isnan(all_items).all(axis=1)
    rows = np.flatnonzero(given)
    items = all_items[rows]
    n_rows = rows.size
    # Most questionnaires are filled in at the session; some online the evening before.
    day_before = rng.random(n_rows) < 0.1
    dates = layout["session_date"][rows] - day_before.astype("timedelta64[D]")

    answered = np.stack(
        [~np.isnan(items[:, s : s + w]).all(axis=1) for s, w in zip(starts, widths)], axis=1
    )
    out_of_range, conflict, duplicate = _pick_invalid_rows(rng, answered.any(axis=1), enabled)
    # The out-of-range value goes into one answered questionnaire of the row, chosen at random.
    block_keys = rng.random((out_of_range.size, len(keys)))
    block_keys[~answered[out_of_range]] = -1.0
    target = block_keys.argmax(axis=1)
    column_keys = rng.random((out_of_range.size, items.shape[1]))
    in_target = np.zeros_like(column_keys, dtype=bool)
    for block, (s, w) in enumerate(zip(starts, widths)):
        in_target[:, s : s + w] = (target == block)[:, None]
    column_keys[~in_target | np.isnan(items[out_of_range])] = -1.0
    bad_columns = column_keys.argmax(axis=1)
    items[out_of_range, bad_columns] = rng.choice(OUTCOME_BAD_VALUES, size=out_of_range.size)
    item_max = min(spec["item_max"] for spec in OUTCOME_SPECS.values())
    conflict_items = _altered_copy(rng, items[conflict], 0, item_max)

    n_orphans = labels["numbers"].size - layout["n_sessions"].size
    orphan_items, orphan_sessions, orphan_dates = _orphan_rows(rng, n_orphans, params)

    person = np.concatenate(
        [
            layout["client_of_row"][rows],
            layout["client_of_row"][rows][duplicate],
            layout["client_of_row"][rows][conflict],
            layout["n_sessions"].size + np.arange(n_orphans),
        ]
    )
    session = np.concatenate(
        [
            layout["session"][rows],
            layout["session"][rows][duplicate],
            layout["session"][rows][conflict],
            orphan_sessions,
        ]
    )
    date = np.concatenate([dates, dates[duplicate], dates[conflict], orphan_dates])
    item_rows = np.concatenate([items, items[duplicate], conflict_items, orphan_items])
    copy_rank = np.repeat([0, 1, 1, 0], [n_rows, duplicate.size, conflict.size, n_orphans])
    order = np.lexsort((copy_rank, session, labels["numbers"][person]))
    person, session, date, item_rows = person[order], session[order], date[order], item_rows[order]

    columns: dict[str, Any] = {
        "client_id": _expand(labels["client"], person),
        "session": session,
        "date": _date_text(date),
    }
    for key, s, w in zip(keys, starts, widths):
        for k in range(w):
            columns[f"{key}_{k + 1}"] = _int_column(item_rows[:, s + k])
    if people is not None:
        columns["record_number"] = _expand(people["record_number"], person)

    counts = {
        f"outcomes_out_of_range_{key}": int((target == block).sum())
        for block, key in enumerate(keys)
    }
    counts["outcomes_exact_duplicates"] = int(duplicate.size)
    counts["outcomes_conflicting_duplicates"] = int(conflict.size)
    counts["outcomes_orphan_client"] = int(n_orphans)
    return pd.DataFrame(columns), counts


def _orphan_rows(
    rng: np.random.Generator, n_orphans: int, params: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete questionnaires, session numbers and dates for outcome rows of unknown clients."""
    blocks = []
    for key, spec in OUTCOME_SPECS.items():
        top = spec["n_items"] * spec["item_max"]
        latent = rng.normal(params[f"{key}_intake_mean"], params[f"{key}_intake_sd"], n_orphans)
        totals = np.clip(np.rint(latent), 0, top).astype(np.int64)
        blocks.append(_split_total(rng, totals, spec["item_weights"], spec["item_max"]))
    items = np.concatenate(blocks, axis=1).astype(float)
    sessions = rng.integers(1, 5, n_orphans).astype(np.int64)
    return items, sessions, _random_working_days(rng, n_orphans)


def _draw_people(
    rng: np.random.Generator,
    layout: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    n_orphans: int,
) -> dict[str, np.ndarray]:
    """Plausible fake identifying details, one set per person (clients, then orphans).

    Names come from short lists (so they repeat, as real names do); record numbers and e-mail
    addresses are unique; e-mails use the reserved ``example.org`` domain and phone numbers the
    block reserved for drama (so phone numbers repeat across clients): no value can reach a real
    person.
    """
    n_people = labels["numbers"].size
    first = np.asarray(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n_people)]
    last = np.asarray(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n_people)]
    record_space = max(9_000_000, 4 * n_people)
    record = rng.choice(record_space, size=n_people, replace=False) + 1_000_000
    record_text = record.astype(str)
    email_local = np.strings.add(
        np.strings.add(np.strings.lower(first), "."),
        np.strings.replace(np.strings.lower(last), "'", ""),
    )
    # The record number in the address keeps addresses unique where names repeat.
    email = np.strings.add(np.strings.add(email_local, record_text), "@example.org")
    phone = np.strings.add(
        PHONE_PREFIX, np.strings.zfill(rng.integers(0, 1000, n_people).astype(str), 3)
    )

    reference = np.concatenate(
        [layout["session_date"][layout["first_row"]], _random_working_days(rng, n_orphans)]
    )
    # Adults referred to a talking-therapy service: 18 and over, most in their 20s to 40s.
    age_days = np.rint((18 + np.minimum(rng.gamma(2.0, 9.0, n_people), 70)) * 365.25)
    birth = reference - age_days.astype(np.int64).astype("timedelta64[D]")

    template = rng.integers(0, len(NOTE_TEMPLATES), n_people)
    before = np.asarray([t[0] for t in NOTE_TEMPLATES])[template]
    named = np.asarray([t[1] for t in NOTE_TEMPLATES])[template]
    after = np.asarray([t[2] for t in NOTE_TEMPLATES])[template]
    notes = np.strings.add(np.strings.add(before, np.where(named, first, "")), after)
    return {
        "client_name": np.strings.add(np.strings.add(first, " "), last),
        "email": email,
        "phone": phone,
        "date_of_birth": np.datetime_as_string(birth, unit="D"),
        "record_number": np.strings.add("MRN", record_text),
        "notes": notes,
    }


def _generated_frame(
    layout: dict[str, np.ndarray],
    alliance: dict[str, Any],
    symptoms: dict[str, dict[str, Any]],
    labels: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The generated per-session quantities, one row per attended session."""
    client = layout["client_of_row"]
    columns: dict[str, Any] = {
        "client_id": _expand(labels["client"], client),
        "therapist_id": _expand(labels["therapist"], layout["therapist_of_client"][client]),
        "session": layout["session"],
        "alliance_score": alliance["observed"],
        "alliance_within": alliance["within_observed"],
        "alliance_between_c": alliance["between_c_observed"][client],
    }
    for key, state in symptoms.items():
        columns[f"{key}_total"] = state["total"]
        columns[f"{key}_score"] = state["score"]
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------------
# Truth and command line


def _rounded(value: float) -> float:
    """Six significant digits: enough for any parameter, stable in YAML."""
    return float(f"{float(value):.6g}")


def _truth(
    *,
    n_clients: int,
    n_therapists: int,
    seed: int,
    max_sessions: int,
    identifiers: bool,
    invalid_rows: bool,
    params: dict[str, float],
    effects: dict[str, float],
    alliance: dict[str, Any],
    symptoms: dict[str, dict[str, Any]],
    invalid_counts: dict[str, int],
    n_session_rows: int,
    n_outcome_rows: int,
    n_attended: int,
) -> dict[str, Any]:
    outcomes = {}
    for key, state in symptoms.items():
        names = ("within", "between", "rho", "session_slope", "intercept", "sd_client",
                 "sd_therapist", "sd_residual", "intake_mean", "intake_sd")
        entry = {name: _rounded(params[f"{key}_{name}"]) for name in names}
        entry["score_range"] = [0, int(state["top"])]
        entry["clipped_share"] = _rounded(state["clipped"].mean()) if n_attended else 0.0
        outcomes[key] = entry
    observed = alliance["observed"]
    return {
        "generator": "analysis.simulate",
        "model": (
            "Y[i,t+1] = intercept + rho*Y[i,t] + within*A_w[i,t] + between*A_b_c[i] "
            "+ session_slope*t + u[i] + v[j] + e[i,t+1]; Y = observed score (prorated when "
            "items are missing), rounded and clipped to the score range; A = observed WAI-SR "
            "mean; A_w = A - client mean of observed A; A_b_c = client mean - mean over clients"
        ),
        "reverse_effect": "none: symptoms have no effect on alliance in the generating model",
        "n_clients": int(n_clients),
        "n_therapists": int(n_therapists),
        "seed": int(seed),
        "max_sessions": int(max_sessions),
        "identifiers": bool(identifiers),
        "invalid_rows_added": bool(invalid_rows),
        "overrides": {key: _rounded(value) for key, value in sorted(effects.items())},
        "outcomes": outcomes,
        "alliance": {
            "instrument": "wai_sr",
            "mean": _rounded(params["alliance_mean"]),
            "sd_client": _rounded(params["alliance_sd_client"]),
            "trend_mean": _rounded(params["alliance_trend_mean"]),
            "trend_sd": _rounded(params["alliance_trend_sd"]),
            "sd_session": _rounded(params["alliance_sd_session"]),
            "sd_item": _rounded(params["alliance_sd_item"]),
            "item_offsets": [_rounded(v) for v in WAI_ITEM_OFFSETS],
            "between_centre": _rounded(alliance["centre"]),
            "observed_mean": _rounded(np.nanmean(observed)) if (~np.isnan(observed)).any()
            else None,
        },
        "correlations": {
            name: _rounded(params[f"outcome_{name}_correlation"])
            for name in ("client", "therapist", "residual", "intake")
        },
        "missing": {key: _rounded(value) for key, value in MISSING_RATES.items()},
        "invalid_rates": {key: _rounded(value) for key, value in INVALID_RATES.items()},
        "invalid_rows": dict(sorted(invalid_counts.items())),
        "rows": {
            "attended_sessions": int(n_attended),
            "sessions_csv": int(n_session_rows),
            "outcomes_csv": int(n_outcome_rows),
        },
    }


def _command_line(truth: dict[str, Any], out_dir: Path) -> str:
    """The command that writes these files again (the CLI, or a Python call with overrides)."""
    if truth["overrides"]:
        arguments = [
            str(truth["n_clients"]),
            str(truth["n_therapists"]),
            f"seed={truth['seed']}",
            f"max_sessions={truth['max_sessions']}",
            f"identifiers={truth['identifiers']}",
            f"invalid_rows={truth['invalid_rows_added']}",
        ] + [f"{key}={value!r}" for key, value in truth["overrides"].items()]
        code = (
            "from analysis.simulate import simulate_study, write_study; "
            f"write_study(simulate_study({', '.join(arguments)}), {str(out_dir)!r})"
        )
        return f"python -c {shlex.quote(code)}"
    parts = [
        "python -m analysis.simulate",
        f"--clients {truth['n_clients']}",
        f"--therapists {truth['n_therapists']}",
        f"--seed {truth['seed']}",
        f"--out {shlex.quote(str(out_dir))}",
    ]
    if truth["max_sessions"] != 16:
        parts.append(f"--max-sessions {truth['max_sessions']}")
    if not truth["identifiers"]:
        parts.append("--no-identifiers")
    if not truth["invalid_rows_added"]:
        parts.append("--no-invalid")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
