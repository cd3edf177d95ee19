"""Who sees whom, and when: therapists' caseloads, sessions attended, session dates and raw ids.

Everything is indexed in "row space": one row per attended session, clients in order, sessions
1..n within each client (``client_of_row``, ``first_row`` of each client, ``session``).
"""

from __future__ import annotations

import numpy as np

FIRST_DAY = np.datetime64("2023-01-01")
LAST_FIRST_DAY = np.datetime64("2025-12-31")


def draw_layout(
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
    first_day = random_working_days(rng, n_clients)
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


def random_working_days(rng: np.random.Generator, size: int) -> np.ndarray:
    """Working days (Monday to Friday) drawn uniformly from FIRST_DAY to LAST_FIRST_DAY."""
    working_days = int(np.busday_count(FIRST_DAY, LAST_FIRST_DAY + 1))
    return np.busday_offset(FIRST_DAY, rng.integers(0, working_days, size), roll="forward")


def draw_labels(
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
