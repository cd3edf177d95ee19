"""Scoring: prorating, reverse keying, mean scoring, subscales, bands, caseness, risk, range checks.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.instrument_declarations import build_registry
from analysis.scoring import (
    cronbach_alpha_input,
    item_range_violations,
    score_administrations,
)

NA = np.nan
REGISTRY = build_registry()
K = 12


def administrations(rows, index=None):
    """rows: (client_id, session, instrument, items, given_total)."""
    records = []
    for client_id, session, instrument, items, given_total in rows:
        record = {"client_id": client_id, "session": session, "instrument": instrument}
        padded = list(items) + [NA] * (K - len(items))
        record.update({f"item_{i}": float(value) for i, value in enumerate(padded, start=1)})
        record["given_total"] = given_total
        records.append(record)
    frame = pd.DataFrame(records, index=index)
    frame["client_id"] = frame["client_id"].astype("string")
    frame["instrument"] = frame["instrument"].astype("string")
    frame["session"] = frame["session"].astype("int64")
    frame["given_total"] = frame["given_total"].astype("float64")
    return frame


def score_one(instrument, items, given_total=NA, registry=REGISTRY):
    return score_administrations(administrations([("c1", 1, instrument, items, given_total)]), registry).iloc[0]


def test_phq9_complete():
    row = score_one("phq9", [1, 2, 3, 0, 1, 2, 3, 0, 1])  # sum 13
    assert (row["score"], row["total"], row["n_items_missing"], row["prorated"]) == (13, 13, 0, False)
    assert (row["band"], row["case"], row["risk_flag"]) == ("moderate", True, True)


def test_phq9_one_missing_is_prorated():
    row = score_one("phq9", [1, 1, 1, 1, 1, 1, 1, 2, NA])  # 9 answered-sum over 8 items x 9 = 10.125
    assert row["score"] == pytest.approx(10.125)
    assert (row["n_items_missing"], row["prorated"], row["band"], row["case"]) == (1, True, "moderate", True)
    assert pd.isna(row["risk_flag"])  # item 9 missing: the risk is unknown, not "no risk"


def test_phq9_two_missing_is_prorated():
    row = score_one("phq9", [2, 2, 2, 2, 2, 2, 2, NA, NA])  # mean 2 x 9 = 18
    assert (row["score"], row["n_items_missing"], row["prorated"], row["band"]) == (18, 2, True, "moderately severe")


def test_phq9_three_missing_has_no_score():
    row = score_one("phq9", [2, 2, 2, 2, 2, 2, NA, NA, NA])
    assert np.isnan(row["score"]) and np.isnan(row["total"])
    assert (row["n_items_missing"], row["prorated"]) == (3, False)
    assert pd.isna(row["band"]) and pd.isna(row["case"])


def test_phq9_risk_flag_from_item_9_only():
    assert score_one("phq9", [0] * 8 + [1])["risk_flag"]
    assert not score_one("phq9", [3] * 8 + [0])["risk_flag"]


def test_gad7_two_missing_prorated_three_not():
    row = score_one("gad7", [1, 2, 3, 0, 1, NA, NA])  # 7 over 5 answered x 7 = 9.8
    assert row["score"] == pytest.approx(9.8)
    assert (row["band"], row["case"], row["prorated"], row["risk_flag"]) == ("mild", True, True, False)
    assert np.isnan(score_one("gad7", [1, 2, 3, 0, NA, NA, NA])["score"])


def test_gad7_bands_and_caseness_from_complete_items():
    row = score_one("gad7", [1, 1, 1, 1, 1, 1, 1])  # 7: mild, below caseness 8
    assert (row["score"], row["band"], row["case"]) == (7, "mild", False)


def test_wai_sr_mean_total_and_subscales():
    items = [4, 4, 3, 5, 2, 5, 4, 3, 2, 4, 5, 3]
    row = score_one("wai_sr", items)
    assert row["score"] == pytest.approx(44 / 12)
    assert row["total"] == 44
    assert row["subscale_task"] == pytest.approx((4 + 4 + 4 + 3) / 4)  # items 1, 2, 10, 12
    assert row["subscale_goal"] == pytest.approx((5 + 5 + 3 + 5) / 4)  # items 4, 6, 8, 11
    assert row["subscale_bond"] == pytest.approx((3 + 2 + 4 + 2) / 4)  # items 3, 5, 7, 9
    assert pd.isna(row["band"]) and pd.isna(row["case"]) and not row["risk_flag"]


def test_wai_sr_subscale_with_one_missing_is_prorated():
    items = [NA, 4, 3, 5, 2, 5, 4, 3, 2, 4, 5, 3]  # 11 answered, sum 40
    row = score_one("wai_sr", items)
    assert row["subscale_task"] == pytest.approx(11 / 3)  # items 2, 10, 12: 4 + 4 + 3
    assert row["subscale_goal"] == pytest.approx(4.5)
    assert row["score"] == pytest.approx(40 / 11)
    assert row["total"] == pytest.approx(40 / 11 * 12)
    assert (row["n_items_missing"], row["prorated"]) == (1, True)


def test_wai_sr_subscale_with_two_missing_voids_it_and_the_score():
    items = [NA, NA, 3, 5, 2, 5, 4, 3, 2, 4, 5, 3]
    row = score_one("wai_sr", items)
    assert np.isnan(row["subscale_task"]) and np.isnan(row["score"]) and np.isnan(row["total"])
    assert row["subscale_goal"] == pytest.approx(4.5)
    assert row["subscale_bond"] == pytest.approx(11 / 4)
    assert not row["prorated"]


def test_wai_sr_one_missing_in_each_subscale_is_scored():
    items = [NA, 4, NA, NA, 2, 5, 4, 3, 2, 4, 5, 3]  # one each of task, bond, goal; 9 answered, sum 32
    row = score_one("wai_sr", items)
    assert row["score"] == pytest.approx(32 / 9)
    assert row["subscale_goal"] == pytest.approx((5 + 3 + 5) / 3)
    assert row["n_items_missing"] == 3


def test_srs_without_prorating():
    assert np.isnan(score_one("srs", [9, 9, 9, NA])["score"])
    row = score_one("srs", [9, 9.5, 8.5, 10])  # 37: no alliance concern
    assert (row["score"], row["case"]) == (37, False)
    assert score_one("srs", [9, 9, 9, 9])["case"]  # 36 flags a concern


def test_reverse_keying_in_a_custom_instrument():
    registry = build_registry({
        "mood": {"n_items": 3, "item_min": 1, "item_max": 5, "scoring": "mean", "direction": "higher_better",
                 "reverse_items": [2], "subscales": {"core": [1, 2]}},
        "strain": {"n_items": 3, "item_min": 0, "item_max": 4, "scoring": "sum", "direction": "higher_worse",
                   "reverse_items": [1, 3]},
    })
    mood = score_one("mood", [5, 1, 4], registry=registry)  # item 2 -> 5: (5 + 5 + 4) / 3
    assert mood["score"] == pytest.approx(14 / 3) and mood["total"] == 14
    assert mood["subscale_core"] == 5
    strain = score_one("strain", [1, 2, 4], registry=registry)  # 3 + 2 + 0
    assert strain["score"] == 5


def test_given_total_used_when_items_absent():
    row = score_one("phq9", [], given_total=12.0)
    assert (row["score"], row["total"], row["band"], row["case"]) == (12, 12, "moderate", True)
    assert (row["prorated"], row["n_items_missing"]) == (False, 0)
    assert pd.isna(row["risk_flag"])  # a pre-scored total has no item 9: the risk is unknown
    wai = score_one("wai_sr", [], given_total=4.0)  # on the score scale: mean 4, total 48
    assert (wai["score"], wai["total"]) == (4, 48) and np.isnan(wai["subscale_task"])
    assert np.isnan(score_one("phq9", [])["score"])


def test_output_columns_types_and_order():
    frame = administrations([
        ("c2", 1, "phq9", [1] * 9, NA),
        ("c1", 2, "wai_sr", [4] * 12, NA),
        ("c1", 2, "phq9", [0] * 9, NA),
        ("c1", 1, "phq9", [2] * 9, NA),
    ])
    scores = score_administrations(frame, REGISTRY)
    assert list(scores.columns) == [
        "client_id", "session", "instrument", "score", "total", "n_items_missing", "prorated", "band",
        "case", "risk_flag", "subscale_task", "subscale_goal", "subscale_bond"]
    assert list(zip(scores["instrument"], scores["client_id"], scores["session"])) == [
        ("phq9", "c1", 1), ("phq9", "c1", 2), ("phq9", "c2", 1), ("wai_sr", "c1", 2)]
    assert list(scores["score"]) == [18, 0, 9, 4]
    assert scores["subscale_task"].isna().tolist() == [True, True, True, False]
    assert str(scores["case"].dtype) == "boolean" and scores["prorated"].dtype == bool
    assert str(scores["client_id"].dtype).startswith("str") and scores["session"].dtype == "int64"


def test_range_violations_with_reasons():
    frame = administrations(
        [
            ("c1", 1, "phq9", [1, 1, 1, 5, 1, 1, 1, 1, 1], NA),
            ("c2", 1, "phq9", [1, 2.5, 1, 1, 1, 1, -1, 1, 1], NA),
            ("c3", 1, "srs", [7.5, 8, 9, 10], NA),
            ("c4", 1, "phq9", [], 30.0),
            ("c5", 1, "gad7", [0] * 7 + [1], NA),
        ],
        index=[10, 20, 30, 40, 50],
    )
    violations = item_range_violations(frame, REGISTRY)
    assert list(violations.columns) == ["row_index", "instrument", "item", "rule", "reason"]
    assert violations[["row_index", "item", "rule"]].astype(object).values.tolist() == [
        [10, 4, "out_of_range"],
        [20, 2, "not_integer"],
        [20, 7, "out_of_range"],
        [40, pd.NA, "total_out_of_range"],
        [50, 8, "extra_item"],
    ]
    assert list(violations["reason"]) == [
        "PHQ-9 item 4 is 5; allowed 0-3",
        "PHQ-9 item 2 is 2.5; allowed whole numbers 0-3",
        "PHQ-9 item 7 is -1; allowed 0-3",
        "PHQ-9 given total is 30; allowed 0-27",
        "GAD-7 item 8 is given but GAD-7 has 7 items",
    ]
    assert not violations["reason"].str.contains("c[0-9]").any()  # no identifiers


def test_text_item_values_are_not_numbers_and_not_echoed():
    frame = administrations([("c1", 1, "phq9", [1] * 9, NA), ("c2", 1, "phq9", [1] * 9, NA)])
    frame["item_3"] = pd.array(["2", "Jane Doe"], dtype="string")
    violations = item_range_violations(frame, REGISTRY)
    assert violations["rule"].tolist() == ["not_a_number"]
    assert violations["row_index"].tolist() == [1]
    assert "Jane" not in violations["reason"].iloc[0]


def test_valid_data_has_no_violations_and_scoring_refuses_invalid():
    assert item_range_violations(administrations([("c1", 1, "phq9", [3] * 9, NA)]), REGISTRY).empty
    with pytest.raises(DataError, match="PHQ-9 item 1 is 4"):
        score_administrations(administrations([("c1", 1, "phq9", [4] + [0] * 8, NA)]), REGISTRY)
    with pytest.raises(DataError, match="instrument 'bdi' is not in the instrument registry"):
        score_administrations(administrations([("c1", 1, "bdi", [0] * 9, NA)]), REGISTRY)


def test_cronbach_alpha_input_takes_first_complete_administration():
    registry = build_registry({"mini": {"n_items": 3, "item_min": 0, "item_max": 3, "scoring": "sum",
                                        "direction": "higher_worse", "reverse_items": [3]}})
    frame = administrations([
        ("b", 3, "mini", [1, 1, 1], NA),
        ("b", 1, "mini", [0, NA, 2], NA),  # incomplete: skipped
        ("b", 2, "mini", [2, 2, 0], NA),
        ("a", 5, "mini", [3, 3, 3], NA),
        ("a", 1, "phq9", [1] * 9, NA),
    ])
    matrix = cronbach_alpha_input(frame, registry["mini"])
    assert list(matrix.columns) == ["client_id", "session", "item_1", "item_2", "item_3"]
    assert matrix.values.tolist() == [["a", 5, 3.0, 3.0, 0.0], ["b", 2, 2.0, 2.0, 3.0]]


def test_scoring_is_vectorised():
    rng = np.random.default_rng(5)
    n = 100_000
    instrument = np.where(rng.random(n) < 0.5, "phq9", "wai_sr")
    items = rng.integers(0, 4, size=(n, K)).astype(float)
    items[instrument == "wai_sr"] += 1
    items[(instrument == "phq9")[:, None] & (np.arange(K) >= 9)] = NA
    items[rng.random((n, K)) < 0.05] = NA
    frame = pd.DataFrame(items, columns=[f"item_{i}" for i in range(1, K + 1)])
    frame.insert(0, "instrument", pd.array(instrument, dtype="string"))
    frame.insert(0, "session", np.arange(n) % 20 + 1)
    frame.insert(0, "client_id", pd.array([f"c{i // 20}" for i in range(n)], dtype="string"))
    frame["given_total"] = NA
    start = time.perf_counter()
    scores = score_administrations(frame, REGISTRY)
    elapsed = time.perf_counter() - start
    assert len(scores) == n
    assert elapsed < 3.0, f"scoring 100,000 administrations took {elapsed:.1f} s"
