"""Unit tests of analysis.derive on small hand-made frames (values computed by hand)."""

import numpy as np
import pandas as pd
import pytest

from analysis.derive import derive_analysis_frame
from analysis.settings import DeriveSettings


def scores_frame(rows):
    frame = pd.DataFrame(rows, columns=["client_id", "session", "instrument", "score"])
    frame["subscale_task"] = np.where(frame["instrument"] == "wai_sr", frame["score"], np.nan)
    return frame


@pytest.fixture
def small():
    sessions = pd.DataFrame({
        "client_id": ["a"] * 4 + ["b"] * 3,
        "therapist_id": ["t1"] * 4 + ["t2"] * 3,
        "session": [1, 2, 3, 4, 1, 2, 4],
        "day": pd.array([0, 7, 14, 21, 0, 7, 21], dtype="Int64"),
    })
    scores = scores_frame([
        ("a", 1, "wai_sr", 3.0), ("a", 2, "wai_sr", 4.0), ("a", 3, "wai_sr", 5.0), ("a", 4, "wai_sr", 4.0),
        ("b", 1, "wai_sr", 2.0), ("b", 2, "wai_sr", 4.0), ("b", 4, "wai_sr", 3.0),
        ("a", 1, "phq9", 20.0), ("a", 2, "phq9", 16.0), ("a", 4, "phq9", 10.0),
        ("b", 1, "phq9", 12.0), ("b", 2, "phq9", 9.0), ("b", 4, "phq9", 6.0),
    ])
    return scores, sessions


def derive(scores, sessions, **kwargs):
    settings = DeriveSettings(alliance="wai_sr", outcomes=("phq9",), **kwargs)
    return derive_analysis_frame(scores, sessions, settings)


def test_within_between_split(small):
    derived = derive(*small).set_index(["client_id", "session"])
    # client a: alliance mean 4; client b: mean 3; mean of client means 3.5
    assert derived.loc[("a", 1), "alliance_within"] == pytest.approx(-1.0)
    assert derived.loc[("a", 3), "alliance_within"] == pytest.approx(1.0)
    assert derived.loc[("a", 1), "alliance_between_c"] == pytest.approx(0.5)
    assert derived.loc[("b", 4), "alliance_between_c"] == pytest.approx(-0.5)
    # symptoms: a mean 46/3, b mean 9, mean of means (46/3 + 9) / 2
    grand = (46 / 3 + 9) / 2
    assert derived.loc[("a", 2), "symptom_within"] == pytest.approx(16 - 46 / 3)
    assert derived.loc[("b", 1), "symptom_between_c"] == pytest.approx(9 - grand)
    assert np.isnan(derived.loc[("a", 3), "symptom_within"])  # no PHQ-9 at a's session 3


def test_lag_pairs_only_consecutive_sessions(small):
    derived = derive(*small).set_index(["client_id", "session"])
    assert derived.loc[("a", 1), "symptom_next"] == 16.0
    assert np.isnan(derived.loc[("a", 2), "symptom_next"])  # session 3 has no PHQ-9: no pair
    assert np.isnan(derived.loc[("b", 2), "symptom_next"])  # b skipped session 3: gap 2
    assert np.isnan(derived.loc[("a", 4), "symptom_next"])  # last session
    assert derived.loc[("a", 3), "alliance_next"] == 4.0
    wider = derive(*small, max_lag_gap=2).set_index(["client_id", "session"])
    assert wider.loc[("b", 2), "symptom_next"] == 6.0
    assert wider.loc[("a", 2), "symptom_next"] == 10.0


def test_lagged_outcome_is_never_centred(small):
    derived = derive(*small)
    paired = derived.dropna(subset=["symptom_next"])
    assert set(paired["symptom_next"]) <= set(small[0]["score"])


def test_detrended_within_needs_three_scores(small):
    scores, sessions = small
    derived = derive(scores, sessions).set_index(["client_id", "session"])
    # a: sessions 1-4, alliance 3,4,5,4: slope 0.4, mean session 2.5, mean 4
    expected = [3 - (4 + 0.4 * (1 - 2.5)), 4 - (4 + 0.4 * (2 - 2.5)), 5 - (4 + 0.4 * 0.5), 4 - (4 + 0.4 * 1.5)]
    assert derived.loc["a", "alliance_within_detrended"].tolist() == pytest.approx(expected)
    two_scores = scores[~((scores["client_id"] == "b") & (scores["session"] == 4))]
    derived = derive(two_scores, sessions).set_index(["client_id", "session"])
    assert derived.loc["b", "alliance_within_detrended"].isna().all()


def test_early_alliance_needs_min_observed(small):
    derived = derive(*small).set_index(["client_id", "session"])
    assert derived.loc[("a", 4), "alliance_early"] == pytest.approx(4.0)  # sessions 1-3
    assert derived.loc[("b", 1), "alliance_early"] == pytest.approx(3.0)  # sessions 1-2 observed
    strict = derive(*small, early_min_observed=3).set_index(["client_id", "session"])
    assert np.isnan(strict.loc[("b", 1), "alliance_early"])


def test_subscales_and_session_counts(small):
    derived = derive(*small).set_index(["client_id", "session"])
    assert derived.loc[("a", 1), "alliance_task_within"] == pytest.approx(-1.0)
    assert derived.loc[("a", 1), "n_sessions"] == 4
    assert derived.loc[("b", 1), "n_sessions"] == 3


def test_unknown_outcome_is_a_config_error(small):
    from analysis.errors import ConfigError

    with pytest.raises(ConfigError, match="analysis.outcomes"):
        derive_analysis_frame(*small, DeriveSettings(alliance="wai_sr", outcomes=("gad7",)))
