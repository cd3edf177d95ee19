"""Unit tests of analysis.privacy: pseudonyms, keys and small-cell suppression."""

import pandas as pd
import pytest

from analysis.dataflow import publish_data_flow
from analysis.errors import ConfigError
from analysis.privacy import (
    DEMO_KEY,
    StudyTotals,
    format_count,
    format_part,
    is_suppressed,
    pseudonymise,
    publish_counts,
    resolve_key,
)


def test_format_count_primary_suppression():
    assert format_count(0, 10) == "0"
    assert format_count(3, 10) == "<10"
    assert format_count(9, 10) == "<10"
    assert format_count(10, 10) == "10"
    assert format_count(4, 5) == "<5"


def test_format_part_secondary_suppression():
    assert format_part(3, 100, 10) == "<10"
    assert format_part(95, 100, 10) == ">90"  # 5 left over would be revealed
    assert format_part(100, 100, 10) == "100"
    assert format_part(50, 100, 10) == "50"
    assert format_part(0, 100, 10) == "0"
    # a group smaller than the minimum cell: every part hidden, never ">-7"
    assert [format_part(n, 3, 10) for n in (0, 1, 3)] == ["<10"] * 3
    assert format_part(0, 0, 10) == "0"  # an empty group hides nothing
    assert is_suppressed(95, 100, 10) and not is_suppressed(50, 100, 10)


def test_published_data_flow_hides_small_complements():
    flow = pd.DataFrame({
        "stage": ["read", "rejected", "episodes", "episodes", "registry"],
        "source": ["a", "a", "phq9", "phq9", "sessions"],
        "unit": ["rows", "rows", "episodes", "episodes_with_outcome", "clients"],
        "reason": ["", "exact_duplicate", "", "", ""],
        "count": [100, 2, 40, 37, 8],
    })
    published = publish_data_flow(flow, 10)["count"].tolist()
    assert published == ["100", "2", "40", ">30", "<10"]


def test_pseudonyms_do_not_contain_the_raw_id():
    ids = pd.Series(["CL-000123", None])
    out = pseudonymise(ids, "secret", "c_")
    assert out[0].startswith("c_") and "000123" not in out[0] and pd.isna(out[1])


def test_key_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("ALLIANCE_PSEUDONYM_KEY", raising=False)
    variable = "ALLIANCE_PSEUDONYM_KEY"  # privacy.key_env
    assert resolve_key(variable, is_demo_data=True) == DEMO_KEY
    with pytest.raises(ConfigError, match="ALLIANCE_PSEUDONYM_KEY"):
        resolve_key(variable, is_demo_data=False)
    monkeypatch.setenv("ALLIANCE_PSEUDONYM_KEY", "s3cret")
    assert resolve_key(variable, is_demo_data=False) == "s3cret"


def test_a_count_within_nested_totals_is_hidden_by_the_innermost_that_hides_it():
    # 28 of an outcome's 30 episodes within 40 clients: the 2 left out of the outcome are hidden
    assert format_count(28, 10, (30, 40)) == ">20"
    assert format_count(28, 10, (40, 30)) == ">20"
    assert format_count(20, 10, (30, 40)) == "20"
    assert format_count(3, 10, (30, 40)) == "<10"
    assert format_count(39, 10, [None, 40]) == ">30"
    assert is_suppressed(39, (45, 40), 10) and not is_suppressed(20, (30, 40), 10)


def test_study_totals_come_from_the_registry_and_the_episodes():
    sessions = pd.DataFrame({"client_id": ["a", "a", "b", "c"],
                             "therapist_id": ["t1", "t1", "t2", None]})
    episodes = pd.DataFrame({"client_id": ["a", "b", "a"], "outcome": ["phq9", "phq9", "gad7"]})
    totals = StudyTotals.from_tables(sessions, episodes)
    assert (totals.clients, totals.therapists) == (3, 2)
    assert totals.of("clients", "phq9") == (2, 3) and totals.of("clients", "gad7") == (1, 3)
    assert totals.of("clients") == (3,) and totals.of("therapists", "phq9") == (2,)
    assert StudyTotals.from_tables(sessions.drop(columns="therapist_id")).of("therapists") == ()
    with pytest.raises(ValueError, match="clients"):
        totals.of("rows")


def test_published_count_columns_pass_the_one_path():
    totals = StudyTotals(clients=36, therapists=6, episodes={"phq9": 36, "gad7": 30})
    table = pd.DataFrame({"outcome": ["phq9", "gad7", "gad7"], "n_clients": [35, 28, None],
                          "n_therapists": [6, 4, 6], "n_obs": [3, 200, 5]})
    published = publish_counts(table, 10, totals)
    assert published["n_clients"].tolist()[:2] == [">26", ">20"]
    assert pd.isna(published["n_clients"].iloc[2])
    assert published["n_therapists"].tolist() == ["<10"] * 3
    assert published["n_obs"].tolist() == [3, 200, 5]  # not a count of people
    assert publish_counts(table.iloc[:0], 10, totals).empty


def test_published_data_flow_hides_a_fits_clients_within_its_outcomes_episodes():
    # 28 clients of phq9's 30 episodes (40 clients): as in the model tables, ">20"
    flow = pd.DataFrame({
        "stage": ["registry", "registry", "episodes", "analysis", "analysis", "analysis"],
        "source": ["sessions", "sessions", "phq9", "phq9 M2 primary", "phq9 M2 primary",
                   "phq9 M2 primary"],
        "unit": ["clients", "therapists", "episodes", "clients", "therapists", "observations"],
        "reason": [""] * 6,
        "count": [40, 12, 30, 28, 11, 300],
    })
    published = publish_data_flow(flow, 10)["count"].tolist()
    assert published == ["40", "12", "30", ">20", ">2", "300"]
