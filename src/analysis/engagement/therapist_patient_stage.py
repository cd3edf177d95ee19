"""The therapist-patient stage: Baldwin et al.'s decomposition per outcome, and its tables.

The pipeline's steps around :mod:`analysis.engagement.therapist_patient` (docs/methods.md
section 8):

- :func:`fit_therapist_patient_outcome` (rule ``fit_therapist_patient``, one job per outcome):
  the model ``end_score ~ start_score + alliance_therapist + alliance_client +
  (1 | therapist_id)`` on one row per client, and the therapists' points of the figure (each
  therapist's mean alliance over their clients against their clients' mean pre-post change);
  "not_estimated" with the reason when the design cannot carry it (no therapist ids, too few
  therapists with enough clients), never an error;
- :func:`combine_therapist_patient` (rule ``combine_therapist_patient``):
  ``results/tables/therapist_patient_alliance.csv`` (counts of clients through
  :func:`analysis.privacy.format_count`) and the figure's points (``therapist_patient_points``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.engagement.therapist_patient import (
    RESULT_COLUMNS,
    client_outcome_table,
    fit_therapist_patient,
    therapist_patient_rows,
)
from analysis.privacy import format_count

#: Columns of ``therapist_patient_points`` (one row per outcome and therapist in the model).
POINT_COLUMNS = ["outcome", "therapist_id", "n_clients", "alliance_therapist", "alliance_mean",
                 "mean_change", "mean_end_score"]


def fit_therapist_patient_outcome(derived: pd.DataFrame, outcome: str) -> dict[str, Any]:
    """The decomposition of one outcome and its therapists' points, as a JSON-able dict.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (``outcome, client_id, therapist_id, session, symptom_score,
        alliance_score``).
    outcome : str
        The outcome instrument.

    Returns
    -------
    dict
        ``outcome``, ``table`` (records of :data:`~analysis.engagement.therapist_patient
        .RESULT_COLUMNS`, one per term) and ``points`` (records of :data:`POINT_COLUMNS`; none
        when not estimated), and ``totals`` (the outcome's clients and therapists, for the
        published counts).

    Examples
    --------
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> result = fit_therapist_patient_outcome(derived, "phq9")
    >>> pd.DataFrame(result["table"])[["term", "status", "estimate", "se", "p"]].round(3)
                     term     status  estimate     se      p
    0         (Intercept)  estimated     4.961  1.379  0.000
    1         start_score  estimated     0.550  0.087  0.000
    2  alliance_therapist  estimated    -1.789  1.685  0.302
    3     alliance_client  estimated    -1.027  0.739  0.167
    >>> result["totals"], len(result["points"])
    ({'clients': 120, 'therapists': 12}, 11)
    """
    rows = derived.loc[derived["outcome"].astype(str) == outcome]
    clients = client_outcome_table(rows)
    table = fit_therapist_patient(clients, outcome)
    points: list[dict[str, Any]] = []
    if (table["status"] == "estimated").all():
        model_rows, _, _ = therapist_patient_rows(clients)
        model_rows = model_rows.assign(change=model_rows["end_score"] - model_rows["start_score"])
        grouped = model_rows.groupby("therapist_id", sort=True)
        frame = pd.DataFrame({
            "n_clients": grouped.size(),
            "alliance_therapist": grouped["alliance_therapist"].first(),
            "alliance_mean": grouped["alliance_mean"].mean(),
            "mean_change": grouped["change"].mean(),
            "mean_end_score": grouped["end_score"].mean(),
        }).reset_index()
        frame.insert(0, "outcome", outcome)
        points = frame[POINT_COLUMNS].to_dict("records")
    totals = {"clients": int(clients["client_id"].nunique()),
              "therapists": int(clients["therapist_id"].nunique())
              if "therapist_id" in clients else 0}
    return {"outcome": outcome, "table": _records(table), "points": points, "totals": totals}


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    # pandas' NA is not JSON: missing values become None
    return [{key: (None if _missing(value) else value) for key, value in row.items()}
            for row in table.to_dict("records")]


def _missing(value: Any) -> bool:
    return value is pd.NA or (isinstance(value, float) and np.isnan(value))


def combine_therapist_patient(fits: Iterable[Mapping[str, Any]], min_cell: int
                              ) -> dict[str, pd.DataFrame]:
    """The published table (one row per outcome and term) and the figure's points.

    Parameters
    ----------
    fits : iterable of dict
        :func:`fit_therapist_patient_outcome`'s results, one per outcome.
    min_cell : int
        The smallest count of people published as a number (``privacy.min_cell_count``).

    Returns
    -------
    dict of str to DataFrame
        ``therapist_patient_alliance`` (:data:`~analysis.engagement.therapist_patient
        .RESULT_COLUMNS`; counts of clients and therapists as published text, each beside the
        outcome's total) and ``therapist_patient_points`` (:data:`POINT_COLUMNS`).

    Examples
    --------
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> tables = combine_therapist_patient([fit_therapist_patient_outcome(derived, "phq9")],
    ...                                    min_cell=10)
    >>> {name: table.shape for name, table in tables.items()}
    {'therapist_patient_alliance': (4, 18), 'therapist_patient_points': (11, 7)}
    >>> tables["therapist_patient_alliance"][["term", "n_clients", "n_therapists"]]
                     term n_clients n_therapists
    0         (Intercept)      >110           >2
    1         start_score      >110           >2
    2  alliance_therapist      >110           >2
    3     alliance_client      >110           >2
    """
    fits = list(fits)
    table = pd.DataFrame([row for fit in fits for row in fit["table"]]).reindex(
        columns=RESULT_COLUMNS)
    for name in ("outcome", "term", "status", "reason"):
        table[name] = table[name].fillna("").astype("string")
    for name in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high", "therapist_sd",
                 "residual_sd"):
        table[name] = table[name].astype(float)
    for name in ("singular", "converged"):
        table[name] = table[name].astype("boolean")
    # counts of people beside the totals they are parts of (complementary suppression)
    totals = pd.DataFrame([fit.get("totals") or {} for fit in fits for _ in fit["table"]],
                          columns=["clients", "therapists"])
    for name, total in (("n_clients", "clients"), ("n_clients_excluded", "clients"),
                        ("n_therapists", "therapists")):
        table[name] = pd.array([None if pd.isna(n) else format_count(
            int(n), min_cell, None if pd.isna(t) or not t else int(t))
            for n, t in zip(table[name], totals[total])], dtype="string")
    points = pd.DataFrame([point for fit in fits for point in fit["points"]]).reindex(
        columns=POINT_COLUMNS)
    points["outcome"] = points["outcome"].astype("string")
    points["therapist_id"] = points["therapist_id"].astype("string")
    points["n_clients"] = points["n_clients"].astype("int64")
    for name in POINT_COLUMNS[3:]:
        points[name] = points[name].astype(float)
    return {"therapist_patient_alliance": table, "therapist_patient_points": points}


__all__ = ["POINT_COLUMNS", "combine_therapist_patient", "fit_therapist_patient_outcome"]
