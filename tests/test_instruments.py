"""The instrument registry: built-ins as in docs/methods.md section 1, custom declarations, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import ConfigError
from analysis.instrument_declarations import build_registry
from analysis.instruments import (
    BUILT_IN,
    INSTRUMENT_CONFIG_KEYS,
    STAGE_READS,
    get_instrument,
    instrument_from_params,
)

BAI = {
    "label": "BAI",
    "construct": "anxiety",
    "n_items": 21,
    "item_min": 0,
    "item_max": 3,
    "scoring": "sum",
    "direction": "higher_worse",
    "bands": [
        {"label": "minimal", "min": 0, "max": 7},
        {"label": "mild", "min": 8, "max": 15},
        {"label": "moderate", "min": 16, "max": 25},
        {"label": "severe", "min": 26, "max": 63},
    ],
    "caseness": 16,
    "reliable_change": 9,
}


def test_built_ins_match_methods():
    registry = build_registry(None)
    assert list(registry) == ["phq9", "gad7", "wai_sr", "srs", "ors"]
    phq9, gad7, wai, srs, ors = (registry[k] for k in registry)
    assert (phq9.n_items, phq9.item_min, phq9.item_max, phq9.score_min, phq9.score_max) == (9, 0, 3, 0, 27)
    assert (phq9.caseness, phq9.case_when, phq9.reliable_change, phq9.risk_item) == (10, "at_or_above", 6, 9)
    assert (phq9.missing_rule, phq9.max_missing, phq9.direction) == ("prorate", 2, "higher_worse")
    assert (gad7.n_items, gad7.score_max, gad7.caseness, gad7.reliable_change, gad7.max_missing) == (7, 21, 8, 4, 2)
    assert gad7.risk_item is None
    assert (wai.n_items, wai.item_min, wai.item_max, wai.scoring) == (12, 1, 5, "mean")
    assert (wai.score_min, wai.score_max, wai.total_min, wai.total_max) == (1, 5, 12, 60)
    assert wai.subscales == {"task": (1, 2, 10, 12), "goal": (4, 6, 8, 11), "bond": (3, 5, 7, 9)}
    assert (wai.subscale_max_missing, wai.score_needs_subscales, wai.reverse_items) == (1, True, ())
    assert (srs.score_max, srs.caseness, srs.case_when, srs.missing_rule, srs.integer_items) == (
        40, 36, "at_or_below", "none", False)
    assert (ors.caseness, ors.case_when, ors.reliable_change, ors.direction) == (25, "below", 5, "higher_better")
    assert phq9.units == "PHQ-9 total (0-27)"
    assert wai.units == "WAI-SR mean (1-5)"


@pytest.mark.parametrize(
    "key, scores, labels",
    [
        ("phq9", [0, 4, 5, 9, 10, 14, 15, 19, 20, 27],
         ["minimal", "minimal", "mild", "mild", "moderate", "moderate", "moderately severe",
          "moderately severe", "severe", "severe"]),
        ("gad7", [0, 4, 5, 9, 10, 14, 15, 21],
         ["minimal", "minimal", "mild", "mild", "moderate", "moderate", "severe", "severe"]),
    ],
)
def test_bands_at_every_boundary(key, scores, labels):
    assert list(BUILT_IN[key].band_of(scores)) == labels


def test_bands_between_boundaries_missing_and_outside():
    bands = BUILT_IN["phq9"].band_of([9.875, np.nan, 28, -1])
    assert bands[0] == "mild"  # a prorated score takes the band whose lower bound it reached
    assert bands[1:].isna().all()
    assert BUILT_IN["wai_sr"].band_of([3.0]).isna().all()


@pytest.mark.parametrize(
    "key, scores, expected",
    [
        ("phq9", [9, 10, 9.9], [False, True, False]),
        ("gad7", [7, 8], [False, True]),
        ("srs", [36, 36.1], [True, False]),
        ("ors", [24.9, 25], [True, False]),
    ],
)
def test_caseness_cut_offs(key, scores, expected):
    assert list(BUILT_IN[key].is_case(scores)) == expected


def test_caseness_missing_score_or_no_cut_off_is_na():
    assert BUILT_IN["phq9"].is_case([np.nan]).isna().all()
    assert BUILT_IN["wai_sr"].is_case([4.0]).isna().all()


def test_improvement_is_direction_aware():
    assert BUILT_IN["phq9"].improvement([-7.0])[0] == 7.0
    assert BUILT_IN["ors"].improvement([6.0])[0] == 6.0


def test_custom_instrument_with_defaults():
    registry = build_registry({"bai": {k: BAI[k] for k in ("n_items", "item_min", "item_max", "scoring", "direction")}})
    bai = registry["bai"]
    assert list(registry)[-1] == "bai"
    assert (bai.label, bai.construct, bai.units) == ("BAI", "BAI", "BAI total (0-63)")
    assert (bai.missing_rule, bai.max_missing, bai.case_when, bai.caseness) == ("none", 0, "at_or_above", None)
    better = build_registry({"wellbeing": {"n_items": 5, "item_min": 1, "item_max": 5, "scoring": "mean",
                                           "direction": "higher_better", "caseness": 2.5}})["wellbeing"]
    assert better.case_when == "below"


def test_full_custom_declaration():
    bai = build_registry({"bai": BAI})["bai"]
    assert bai.bands[2] == ("moderate", 16, 25)
    assert list(bai.band_of([7, 8, 63])) == ["minimal", "mild", "severe"]
    assert list(bai.is_case([15, 16])) == [False, True]


def test_override_of_built_in_keeps_other_settings():
    registry = build_registry({"gad7": {"max_missing": 0}})
    gad7 = registry["gad7"]
    assert gad7.max_missing == 0 and gad7.missing_rule == "prorate"
    assert (gad7.caseness, gad7.reliable_change, gad7.bands) == (8, 4, BUILT_IN["gad7"].bands)
    assert list(registry) == ["phq9", "gad7", "wai_sr", "srs", "ors"]
    no_prorating = build_registry({"phq9": {"missing_rule": "none"}})["phq9"]
    assert (no_prorating.max_missing, no_prorating.risk_item) == (0, 9)


def test_built_ins_round_trip_through_config():
    for key, instrument in BUILT_IN.items():
        assert build_registry({key: instrument.to_config()})[key] == instrument


@pytest.mark.parametrize(
    "change, message",
    [
        ({"item_max": -1}, "instruments.bai.item_max"),
        ({"item_max": "3"}, "instruments.bai.item_max"),
        ({"n_items": 0}, "instruments.bai.n_items"),
        ({"scoring": "total"}, "instruments.bai.scoring"),
        ({"direction": "lower_better"}, "instruments.bai.direction"),
        ({"reverse_items": [22]}, "instruments.bai.reverse_items"),
        ({"reverse_items": [1, 1]}, "instruments.bai.reverse_items"),
        ({"subscales": {"somatic": [1, 30]}}, "instruments.bai.subscales.somatic"),
        ({"subscales": {"Somatic": [1]}}, "instruments.bai.subscales.Somatic"),
        ({"missing_rule": "prorate"}, "instruments.bai.max_missing"),
        ({"missing_rule": "none", "max_missing": 2}, "instruments.bai.max_missing"),
        ({"missing_rule": "prorate", "max_missing": 21}, "instruments.bai.max_missing"),
        ({"subscales": {"a": [1, 2]}, "missing_rule": "prorate", "max_missing": 1,
          "subscale_max_missing": 2}, "instruments.bai.subscale_max_missing"),
        ({"caseness": 64}, "instruments.bai.caseness"),
        ({"case_when": "over"}, "instruments.bai.case_when"),
        ({"reliable_change": 0}, "instruments.bai.reliable_change"),
        ({"reliability": 1.2}, "instruments.bai.reliability"),
        ({"functional_mean": 5}, "instruments.bai.functional_sd"),
        ({"risk_item": 22}, "instruments.bai.risk_item"),
        ({"item_min": 0.5}, "instruments.bai.item_min"),
        ({"bands": [{"label": "a", "min": 0, "max": 10}, {"label": "b", "min": 10, "max": 63}]},
         "instruments.bai.bands[1].min"),
        ({"bands": [{"label": "a", "min": 0, "max": 70}]}, "instruments.bai.bands[0]"),
        ({"bands": [{"label": "a", "min": 0, "maximum": 7}]}, "instruments.bai.bands[0].maximum"),
    ],
)
def test_invalid_declarations_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        build_registry({"bai": {**BAI, **change}})


def test_unknown_setting_suggests_the_closest_name():
    declaration = {**BAI, "n_item": 21}
    with pytest.raises(ConfigError, match=r"instruments\.bai\.n_item .*Did you mean 'n_items'"):
        build_registry({"bai": declaration})


def test_missing_required_key_and_bad_names():
    declaration = {k: v for k, v in BAI.items() if k != "item_max"}
    with pytest.raises(ConfigError, match=r"instruments\.bai\.item_max is missing"):
        build_registry({"bai": declaration})
    with pytest.raises(ConfigError, match=r"instruments\.BAI"):
        build_registry({"BAI": BAI})
    with pytest.raises(ConfigError, match=r"instruments\.bai: must be a mapping"):
        build_registry({"bai": 21})
    with pytest.raises(ConfigError, match=r"config key instruments:"):
        build_registry(["bai"])


def test_get_instrument_suggests_a_close_name():
    registry = build_registry()
    assert get_instrument(registry, "gad7", "analysis.outcomes").label == "GAD-7"
    with pytest.raises(ConfigError, match=r"analysis\.outcomes: unknown instrument 'phq-9'.*'phq9'"):
        get_instrument(registry, "phq-9", "analysis.outcomes")


def test_declaration_keys_agree_with_the_registry():
    # The config schema has no fragment per instrument (build_registry checks declarations, as
    # the tests above show); the keys the registry writes are the documented declaration keys,
    # and what each stage reads of an instrument is a subset of them.
    bai = build_registry({"bai": BAI})["bai"]
    assert list(bai.to_config()) == list(INSTRUMENT_CONFIG_KEYS)
    for stage, keys in STAGE_READS.items():
        assert set(keys) <= set(INSTRUMENT_CONFIG_KEYS), stage
        assert list(bai.params(stage)) == list(keys)
    # a stage's params give back the instrument, as far as the stage reads it
    assert instrument_from_params("bai", bai.params("report")) == bai
    assert instrument_from_params("bai", bai.params("score")).bands == bai.bands
