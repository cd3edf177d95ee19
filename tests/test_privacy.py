"""Unit tests of analysis.privacy: pseudonyms, keys and small-cell suppression."""

import pandas as pd
import pytest

from analysis.dataflow import publish_data_flow
from analysis.errors import ConfigError
from analysis.privacy import DEMO_KEY, format_count, format_part, is_suppressed, pseudonymise, resolve_key


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
