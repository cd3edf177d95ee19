"""Data-quality gates: what ingest rejected, told per file and instrument, and the stop."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.quality import check_quality, console_summary, summarise_quality, upstream_text
from analysis.settings import QualitySettings

SETTINGS = QualitySettings(max_reject_share=0.2,
                           inputs={"sessions": "data/raw/sessions.csv", "trial": "data/raw/bai.csv"})


def flow() -> pd.DataFrame:
    rows = [
        ("sessions", "read", "", "rows", "", 100), ("sessions", "rejected", "", "rows",
                                                   "exact_duplicate", 2),
        ("sessions", "kept", "", "rows", "", 98),
        ("sessions", "read", "wai", "administrations", "", 98),
        ("sessions", "kept", "wai", "administrations", "in a session record", 98),
        ("trial", "read", "", "rows", "", 50), ("trial", "kept", "", "rows", "", 50),
        ("trial", "read", "bai", "administrations", "", 50),
        ("trial", "rejected", "bai", "administrations", "item_not_whole", 45),
        ("trial", "rejected", "bai", "administrations", "item_out_of_range", 3),
        ("trial", "kept", "bai", "administrations", "linked to a session record by session "
                                                    "number", 2),
    ]
    return pd.DataFrame(rows, columns=["source", "stage", "instrument", "unit", "reason", "count"])


def rejects() -> pd.DataFrame:
    return pd.DataFrame({
        "file": ["data/raw/bai.csv", "data/raw/bai.csv", "data/raw/sessions.csv"],
        "row": [7, 3, 12], "column": ["bai_p2", "bai_p1", ""], "instrument": ["bai", "bai", ""],
        "rule": ["item_not_whole", "item_not_whole", "exact_duplicate"],
        "reason": ["BAI item 2 is not a whole number (value 1.875)",
                   "BAI item 1 is not a whole number (value 0.5)",
                   "exact duplicate of row 11: dropped"],
    })


def test_summary_counts_per_file_and_instrument_with_top_reason_and_example():
    summary = summarise_quality(flow(), rejects(), SETTINGS)
    bai = summary[summary["instrument"] == "bai"].iloc[0]
    assert (bai["read"], bai["kept"], bai["rejected"]) == (50, 2, 48)
    assert bai["rejected_share"] == pytest.approx(0.96)
    assert bai["top_rule"] == "item_not_whole" and bai["top_rule_count"] == 45
    # the example is the first such row of the file (sorted by row), never an identifier
    assert bai["example"].startswith("data/raw/bai.csv row 3, column bai_p1")
    assert bai["fix"].startswith("instruments.bai.integer_items: false")
    sessions = summary[(summary["scope"] == "file") & (summary["source"] == "sessions")].iloc[0]
    assert (sessions["read"], sessions["kept"], sessions["rejected"]) == (100, 98, 2)


def test_console_summary_names_every_file_and_instrument():
    text = console_summary(summarise_quality(flow(), rejects(), SETTINGS))
    assert "trial (data/raw/bai.csv): 50 rows read, 50 kept, 0 rejected" in text
    assert "bai (trial): 50 administrations read, 2 kept, 48 rejected (96.0%)" in text
    assert "most often item_not_whole (45)" in text


def test_the_gate_stops_with_file_instrument_reason_and_the_fixing_key():
    summary = summarise_quality(flow(), rejects(), SETTINGS)
    with pytest.raises(DataError) as error:
        check_quality(summary, SETTINGS)
    message = str(error.value)
    for part in ("data/raw/bai.csv", "48 of 50 bai administrations", "96.0%",
                 "quality.max_reject_share (20%)", "item_not_whole (45)",
                 "instruments.bai.integer_items: false", "data/processed/rejects.csv"):
        assert part in message, part


def test_the_gate_passes_under_the_threshold():
    summary = summarise_quality(flow(), rejects(), QualitySettings(max_reject_share=0.97,
                                                                   inputs=SETTINGS.inputs))
    check_quality(summary, QualitySettings(max_reject_share=0.97))


def test_upstream_text_says_what_was_scored_and_rejected():
    summary = summarise_quality(flow(), rejects(), SETTINGS)
    scores = pd.DataFrame({"instrument": ["bai", "bai"], "score": [1.0, float("nan")]})
    text = upstream_text(summary, scores, ["bai"])
    assert "bai: 1 administrations scored of 50 read, 48 rejected at ingest" in text
    assert "most often item_not_whole: 45" in text and "1 not scored" in text
