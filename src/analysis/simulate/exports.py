"""The two raw exports as a service's system writes them, the generated quantities, and files.

``sessions.csv``: ``client_id, therapist_id, session, session_date, wai_1..wai_12`` and the
identifying columns; ``outcomes.csv``: ``client_id, session, date, phq9_1..phq9_9,
gad7_1..gad7_7, record_number``. Rows are sorted by client then session, a duplicate directly
after its original; missing values are empty cells, items whole numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from analysis.io import atomic_path
from analysis.simulate.invalid import altered_copy, pick_invalid_rows
from analysis.simulate.layout import random_working_days
from analysis.simulate.parameters import (
    ALLIANCE,
    OUTCOME_BAD_VALUES,
    OUTCOME_ITEM_WEIGHTS,
    OUTCOMES,
)
from analysis.simulate.people import IDENTIFYING_COLUMNS
from analysis.simulate.symptoms import split_total
from analysis.simulate.truth import command_line

if TYPE_CHECKING:
    from analysis.simulate.generator import SimulatedStudy


def write_study(study: "SimulatedStudy", out_dir: str | Path) -> None:
    """Write ``sessions.csv``, ``outcomes.csv`` and ``truth.yaml`` into ``out_dir``, atomically.

    ``truth.yaml`` gains the ``command`` that reproduces the three files in ``out_dir``. CSV
    files use ``,`` and ``\\n``, empty cells for missing values; YAML keys are sorted.

    Parameters
    ----------
    study : SimulatedStudy
        The output of :func:`analysis.simulate.simulate_study`.
    out_dir : str or pathlib.Path
        Target folder (created if needed).
    """
    out = Path(out_dir)
    truth = dict(study.truth)
    truth["command"] = command_line(truth, out)
    for name, frame in (("sessions.csv", study.sessions), ("outcomes.csv", study.outcomes)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    with atomic_path(out / "truth.yaml") as tmp:
        tmp.write_text(
            "# Generating parameters of the simulated study in this folder (analysis.simulate).\n"
            + yaml.safe_dump(truth, sort_keys=True, default_flow_style=False, width=100),
            encoding="utf-8",
        )


def int_column(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Float values with NaN as a nullable integer column (written as empty cells)."""
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def expand(values: np.ndarray, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Text held once per person (or therapist) repeated onto rows as a pandas string column.

    Taking from a string array is far cheaper than indexing wide fixed-width numpy strings.
    """
    return pd.array(values, dtype="str").take(index)


def date_text(dates: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """ISO ``yyyy-mm-dd`` text of day dates (each distinct date formatted once)."""
    unique, inverse = np.unique(dates, return_inverse=True)
    return expand(np.datetime_as_string(unique, unit="D"), inverse)


def sessions_frame(
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
        "client_id": expand(labels["client"], client),
        "therapist_id": expand(labels["therapist"], layout["therapist_of_client"][client]),
        "session": layout["session"][source],
        "session_date": date_text(layout["session_date"][source]),
    }
    for k in range(ALLIANCE.n_items):
        columns[f"wai_{k + 1}"] = int_column(all_items[:, k])
    if people is not None:
        for name in IDENTIFYING_COLUMNS:
            columns[name] = expand(people[name], client)
    counts = {
        "sessions_out_of_range": int(invalid["out_of_range_rows"].size),
        "sessions_exact_duplicates": int(invalid["duplicate_rows"].size),
        "sessions_conflicting_duplicates": int(invalid["conflict_rows"].size),
    }
    return pd.DataFrame(columns), counts


def outcomes_frame(
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
    keys = list(OUTCOMES)
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
    out_of_range, conflict, duplicate = pick_invalid_rows(rng, answered.any(axis=1), enabled)
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
    # One range for the whole row of items: the narrowest of the outcomes' (all are 0-3).
    item_low = max(instrument.item_min for instrument in OUTCOMES.values())
    item_high = min(instrument.item_max for instrument in OUTCOMES.values())
    conflict_items = altered_copy(rng, items[conflict], item_low, item_high)

    n_orphans = labels["numbers"].size - layout["n_sessions"].size
    orphan_items, orphan_sessions, orphan_dates = orphan_rows(rng, n_orphans, params)

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
        "client_id": expand(labels["client"], person),
        "session": session,
        "date": date_text(date),
    }
    for key, s, w in zip(keys, starts, widths):
        for k in range(w):
            columns[f"{key}_{k + 1}"] = int_column(item_rows[:, s + k])
    if people is not None:
        columns["record_number"] = expand(people["record_number"], person)

    counts = {
        f"outcomes_out_of_range_{key}": int((target == block).sum())
        for block, key in enumerate(keys)
    }
    counts["outcomes_exact_duplicates"] = int(duplicate.size)
    counts["outcomes_conflicting_duplicates"] = int(conflict.size)
    counts["outcomes_orphan_client"] = int(n_orphans)
    return pd.DataFrame(columns), counts


def orphan_rows(
    rng: np.random.Generator, n_orphans: int, params: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete questionnaires, session numbers and dates for outcome rows of unknown clients."""
    blocks = []
    for key, instrument in OUTCOMES.items():
        latent = rng.normal(params[f"{key}_intake_mean"], params[f"{key}_intake_sd"], n_orphans)
        totals = np.clip(np.rint(latent), instrument.total_min, instrument.total_max)
        blocks.append(split_total(rng, totals.astype(np.int64), OUTCOME_ITEM_WEIGHTS[key],
                                  int(instrument.item_max)))
    items = np.concatenate(blocks, axis=1).astype(float)
    sessions = rng.integers(1, 5, n_orphans).astype(np.int64)
    return items, sessions, random_working_days(rng, n_orphans)


def generated_frame(
    layout: dict[str, np.ndarray],
    alliance: dict[str, Any],
    symptoms: dict[str, dict[str, Any]],
    labels: dict[str, np.ndarray],
    latent: np.ndarray,
) -> pd.DataFrame:
    """The generated per-session quantities, one row per attended session."""
    client = layout["client_of_row"]
    columns: dict[str, Any] = {
        "client_id": expand(labels["client"], client),
        "therapist_id": expand(labels["therapist"], layout["therapist_of_client"][client]),
        "session": layout["session"],
        "alliance_score": alliance["observed"],
        "alliance_within": alliance["within_observed"],
        "alliance_between_c": alliance["between_c_observed"][client],
        "alliance_latent": latent,
        "alliance_driving_within": alliance["within_driving"],
        "alliance_driving_between_c": alliance["between_c"][client],
    }
    for key, state in symptoms.items():
        columns[f"{key}_total"] = state["total"]
        columns[f"{key}_score"] = state["score"]
    return pd.DataFrame(columns)
