"""Episode outcomes: change, reliable change, caseness, recovery, Jacobson-Truax and the summary.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.episodes import (
    EPISODE_COLUMNS,
    combine_episodes,
    compute_episodes,
    estimate_sample_reliability,
    jacobson_truax_parameters,
    publish_episodes,
    summarise_episodes,
)
from analysis.errors import ConfigError, DataError
from analysis.instrument_declarations import build_registry
from analysis.settings import EpisodeSettings
from analysis.study import study_from_dict

REGISTRY = build_registry()
OUTCOMES = ["phq9", "gad7"]
ROOT = Path(__file__).resolve().parents[1]


def settings(outcomes=OUTCOMES, registry=REGISTRY, **episode_config) -> EpisodeSettings:
    """Episode settings for ``outcomes`` with the ``episodes`` config keys given (defaults else)."""
    return EpisodeSettings(
        outcomes=tuple(outcomes),
        instruments={key: registry[key].params("episodes") for key in outcomes},
        **episode_config,
    )

# client: {instrument: [(session, score), ...]}
COURSES = {
    "imp": {"phq9": [(1, 18), (2, 12), (3, 8), (4, np.nan)], "gad7": [(1, 12), (3, 5)]},
    "det": {"phq9": [(1, 6), (2, 14)], "gad7": [(1, 5), (2, 6)]},
    "non": {"phq9": [(1, 4), (2, 3)], "gad7": [(1, 3), (2, 2)]},
    "one": {"phq9": [(1, 15)], "gad7": [(1, 10)]},
    "mix": {"phq9": [(2, 16), (5, 9)], "gad7": [(2, 9), (5, 14)]},
    "edge": {"phq9": [(1, 12), (2, 7)], "gad7": [(1, 8), (2, 4)]},
}


def make_scores(courses):
    rows = [
        {"client_id": client, "session": session, "instrument": instrument, "score": float(score)}
        for client, by_instrument in courses.items()
        for instrument, course in by_instrument.items()
        for session, score in course
    ]
    scores = pd.DataFrame(rows)
    scores["client_id"] = scores["client_id"].astype("string")
    scores["instrument"] = scores["instrument"].astype("string")
    return scores


def make_sessions(courses, extra_clients=()):
    rows = []
    for client, by_instrument in courses.items():
        sessions = sorted({s for course in by_instrument.values() for s, _ in course})
        rows += [{"client_id": client, "therapist_id": "t1", "session": s} for s in sessions]
    for client in extra_clients:
        rows.append({"client_id": client, "therapist_id": "t2", "session": 1})
    sessions = pd.DataFrame(rows)
    return sessions.astype({"client_id": "string", "therapist_id": "string", "session": "int64"})


@pytest.fixture
def shipped_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def episodes():
    return compute_episodes(
        make_scores(COURSES), make_sessions(COURSES, extra_clients=["zero"]),
        settings(reliability={"phq9": 0.84, "gad7": 0.8}),
    )


def row(frame, client, outcome=None):
    selected = frame[frame["client_id"] == client]
    if outcome is not None:
        selected = selected[selected["outcome"] == outcome]
    assert len(selected) == 1
    return selected.iloc[0]


def test_one_row_per_client_and_outcome_in_order(episodes):
    assert list(episodes.columns) == EPISODE_COLUMNS
    assert len(episodes) == 2 * 7
    assert list(episodes["outcome"]) == ["phq9"] * 7 + ["gad7"] * 7
    assert list(episodes["client_id"][:7]) == sorted(["imp", "det", "non", "one", "mix", "edge", "zero"])


def test_improver(episodes):
    phq = row(episodes, "imp", "phq9")  # 18 -> 8; the NaN score at session 4 does not count
    assert (phq["n_scored"], phq["first_session"], phq["last_session"]) == (3, 1, 3)
    assert (phq["change"], phq["improvement"], phq["has_outcome"]) == (-10, 10, True)
    assert (phq["case_start"], phq["case_end"]) == (True, False)
    assert (phq["reliable_improvement"], phq["reliable_deterioration"]) == (True, False)
    gad = row(episodes, "imp", "gad7")  # 12 -> 5: 7 >= 4
    assert (gad["change"], gad["reliable_improvement"], gad["case_end"]) == (-7, True, False)


def test_deteriorator_and_non_case(episodes):
    det = row(episodes, "det", "phq9")  # 6 -> 14: worse by 8 >= 6
    assert (det["reliable_improvement"], det["reliable_deterioration"]) == (False, True)
    assert (det["case_start"], det["case_end"]) == (False, True)
    non = row(episodes, "non", "gad7")  # 3 -> 2
    assert (non["case_start"], non["reliable_improvement"], non["reliable_deterioration"]) == (False, False, False)


def test_threshold_is_inclusive(episodes):
    assert row(episodes, "edge", "gad7")["reliable_improvement"]  # 8 -> 4: exactly 4
    assert not row(episodes, "edge", "phq9")["reliable_improvement"]  # 12 -> 7: 5 < 6


def test_fewer_than_two_scores_keep_a_row_with_na_flags(episodes):
    one = row(episodes, "one", "phq9")
    assert (one["n_scored"], one["has_outcome"], one["first_score"]) == (1, False, 15)
    assert one["case_start"]  # the first score is known
    for column in ("change", "rci"):
        assert np.isnan(one[column])
    for column in ("case_end", "reliable_improvement", "reliable_deterioration", "jt_reliable_improvement",
                   "jt_clinically_significant", "jt_recovered"):
        assert pd.isna(one[column]), column
    zero = row(episodes, "zero", "gad7")
    assert (zero["n_scored"], zero["therapist_id"]) == (0, "t2")
    assert pd.isna(zero["first_session"]) and np.isnan(zero["first_score"]) and pd.isna(zero["case_start"])


def test_jacobson_truax_numbers(episodes):
    # PHQ-9 first scores with an outcome: 18, 6, 4, 16, 12 -> mean 11.2, SD sqrt(148.8 / 4) = 6.09918
    parameters = jacobson_truax_parameters(episodes, settings(reliability={"phq9": 0.84}))
    phq = parameters.set_index("outcome").loc["phq9"]
    sd = math.sqrt(37.2)
    assert (phq["n_with_outcome"], phq["mean_first"]) == (5, pytest.approx(11.2))
    assert phq["sd_first"] == pytest.approx(sd)
    assert (phq["r_xx"], phq["r_xx_source"]) == (0.84, "config")
    assert phq["se_measurement"] == pytest.approx(sd * 0.4)
    assert phq["s_diff"] == pytest.approx(math.sqrt(2) * sd * 0.4)  # 3.45024
    assert (phq["cutoff"], phq["cutoff_formula"]) == (pytest.approx(11.2 - 2 * sd), "a")
    assert phq["reliable_change_points"] == pytest.approx(1.96 * math.sqrt(2) * sd * 0.4)
    # the RCI of the improver: -10 / 3.45024 = -2.898
    assert row(episodes, "imp", "phq9")["rci"] == pytest.approx(-10 / (math.sqrt(2) * sd * 0.4))
    assert row(episodes, "imp", "phq9")["jt_reliable_improvement"]
    assert row(episodes, "det", "phq9")["jt_reliable_deterioration"]  # 8 / 3.45 = 2.32
    assert not row(episodes, "edge", "phq9")["jt_reliable_improvement"]  # -5 / 3.45 = -1.45


def test_jacobson_truax_cut_off_c_with_functional_norms(episodes):
    config = settings(reliability={"phq9": 0.84}, functional_norms={"phq9": {"mean": 3, "sd": 3}})
    phq = jacobson_truax_parameters(episodes, config).set_index("outcome").loc["phq9"]
    sd = math.sqrt(37.2)
    assert phq["cutoff"] == pytest.approx((3 * 11.2 + sd * 3) / (3 + sd))  # 5.7036
    assert (phq["cutoff_formula"], phq["norms_source"]) == ("c", "config")


def test_jacobson_truax_clinical_significance_and_sources():
    courses = {
        "a": {"phq9": [(1, 20), (2, 4)]},
        "b": {"phq9": [(1, 10), (2, 8)]},
        "c": {"phq9": [(1, 14), (2, 2)]},
        "d": {"phq9": [(1, 8), (2, 9)]},
        "e": {"phq9": [(1, 1)]},
    }
    # first scores 20, 10, 14, 8: mean 13, SD sqrt(84 / 3) = 5.2915; a = 13 - 10.583 = 2.417
    # r_xx 0.8 (sample alpha): S_diff = sqrt(2) x 5.2915 x sqrt(0.2) = 3.3466
    phq9 = settings(["phq9"])
    episodes = compute_episodes(make_scores(courses), make_sessions(courses), phq9,
                                sample_reliability={"phq9": 0.8})
    parameters = jacobson_truax_parameters(episodes, phq9, {"phq9": 0.8}).iloc[0]
    assert (parameters["r_xx_source"], parameters["cutoff"]) == ("sample_alpha", pytest.approx(13 - 2 * math.sqrt(28)))
    assert parameters["s_diff"] == pytest.approx(math.sqrt(2) * math.sqrt(28) * math.sqrt(0.2))
    c = row(episodes, "c")  # 14 -> 2 crosses 2.417, RC = -12 / 3.3466 = -3.59
    assert (c["jt_clinically_significant"], c["jt_reliable_improvement"], c["jt_recovered"]) == (True, True, True)
    a = row(episodes, "a")  # 20 -> 4: reliable but stays above the cut-off
    assert (a["jt_clinically_significant"], a["jt_reliable_improvement"], a["jt_recovered"]) == (False, True, False)
    assert row(episodes, "a")["rci"] == pytest.approx(-16 / 3.346640106)
    assert pd.isna(row(episodes, "e")["jt_clinically_significant"])
    published = publish_episodes(episodes, combine_episodes(episodes, phq9),
                                 jacobson_truax_parameters(episodes, phq9, {"phq9": 0.8}),
                                 min_cell=10)["jacobson_truax"].iloc[0]
    assert published["n_with_outcome"] == "<10"
    unavailable = jacobson_truax_parameters(episodes, phq9).iloc[0]
    assert unavailable["r_xx_source"] == "unavailable" and np.isnan(unavailable["s_diff"])


def test_cut_off_a_lies_toward_health_for_higher_better():
    episodes = pd.DataFrame({"outcome": ["ors", "ors"], "n_scored": [2, 3], "first_score": [15.0, 25.0]})
    ors = jacobson_truax_parameters(episodes, settings(["ors"], reliability={"ors": 0.9})).iloc[0]
    assert ors["cutoff"] == pytest.approx(20 + 2 * math.sqrt(50))


def test_sample_reliability_is_cronbach_alpha():
    registry = build_registry({"mini": {"n_items": 3, "item_min": 0, "item_max": 3, "scoring": "sum",
                                        "direction": "higher_worse"}})
    matrix = [[0, 1, 1], [1, 1, 2], [2, 3, 2], [3, 3, 3]]
    frame = pd.DataFrame({"client_id": pd.array(list("abcd"), dtype="string"), "session": 1,
                          "instrument": pd.array(["mini"] * 4, dtype="string")})
    for i in range(3):
        frame[f"item_{i + 1}"] = [float(r[i]) for r in matrix]
    # item variances 5/3, 4/3, 2/3; total variance 29/3 -> alpha = 1.5 x (1 - 11/29) = 27/29
    assert estimate_sample_reliability(frame, registry, ["mini"])["mini"] == pytest.approx(27 / 29)


def test_main_therapist_is_the_one_at_most_sessions():
    courses = {"x": {"phq9": [(1, 10), (2, 9), (3, 8)]}}
    sessions = pd.DataFrame({"client_id": ["x"] * 3, "therapist_id": ["t9", "t3", "t3"], "session": [1, 2, 3]})
    episodes = compute_episodes(make_scores(courses), sessions.astype({"client_id": "string", "therapist_id": "string"}),
                                settings(["phq9"]))
    assert row(episodes, "x")["therapist_id"] == "t3"


def test_combined_flags(episodes):
    combined = combine_episodes(episodes, settings()).set_index("client_id")
    imp = combined.loc["imp"]  # case at start on both; both below at the end; both reliably improved
    assert (imp["has_outcome"], imp["case_start"], imp["recovery"]) == (True, True, True)
    assert (imp["reliable_improvement"], imp["reliable_deterioration"], imp["reliable_recovery"]) == (True, False, True)
    det = combined.loc["det"]  # no case at start: recovery does not apply
    assert (det["case_start"], det["reliable_improvement"], det["reliable_deterioration"]) == (False, False, True)
    assert pd.isna(det["recovery"]) and pd.isna(det["reliable_recovery"])
    mix = combined.loc["mix"]  # PHQ-9 reliably better, GAD-7 reliably worse: neither combined flag
    assert (mix["case_start"], mix["recovery"], mix["reliable_improvement"], mix["reliable_deterioration"]) == (
        True, False, False, False)
    edge = combined.loc["edge"]  # cases at start (12, 8); 7 and 4 below at the end; GAD-7 reliable only
    assert (edge["recovery"], edge["reliable_improvement"], edge["reliable_recovery"]) == (True, True, True)
    one = combined.loc["one"]
    assert (one["has_outcome"], one["case_start"], one["n_outcomes_with_outcome"]) == (False, True, 0)
    assert pd.isna(one["recovery"]) and pd.isna(one["reliable_improvement"])
    assert pd.isna(combined.loc["zero", "case_start"])


def test_combination_rules_are_configurable(episodes):
    strict = combine_episodes(episodes, settings(caseness_rule="all_outcomes",
                                                 reliable_change_rule="all_outcomes")).set_index("client_id")
    assert strict.loc["edge", "case_start"]  # 12 >= 10 and 8 >= 8
    assert not strict.loc["edge", "reliable_improvement"]  # PHQ-9 change of 5 is not reliable
    assert strict.loc["imp", "reliable_improvement"]
    assert not strict.loc["mix", "reliable_deterioration"]  # only GAD-7 reliably worse
    assert not strict.loc["det", "case_start"]  # PHQ-9 6 and GAD-7 5: neither a case
    # cased_outcomes: only the measures that were a case at start must end below caseness
    courses = {"p": {"phq9": [(1, 15), (2, 5)], "gad7": [(1, 4), (2, 9)]}}
    both = compute_episodes(make_scores(courses), make_sessions(courses), settings())
    assert not combine_episodes(both, settings()).iloc[0]["recovery"]
    assert combine_episodes(both, settings(recovery_rule="cased_outcomes")).iloc[0]["recovery"]


def test_summary_counts_rates_and_suppression():
    n = 25
    episodes = pd.DataFrame({
        "client_id": [f"c{i:02d}" for i in range(n)],
        "outcome": "phq9",
        "has_outcome": [True] * 20 + [False] * 5,
        "case_start": pd.array([True] * 15 + [False] * 10, dtype="boolean"),
        "case_end": pd.array([True] * 3 + [False] * 17 + [None] * 5, dtype="boolean"),
        "reliable_improvement": pd.array([True] * 12 + [False] * 8 + [None] * 5, dtype="boolean"),
        "reliable_deterioration": pd.array([False] * 20 + [None] * 5, dtype="boolean"),
    })
    for column in ("jt_reliable_improvement", "jt_reliable_deterioration", "jt_clinically_significant", "jt_recovered"):
        episodes[column] = pd.array([None] * n, dtype="boolean")
    combined = pd.DataFrame({
        "client_id": episodes["client_id"], "has_outcome": episodes["has_outcome"],
        "case_start": episodes["case_start"],
        "recovery": pd.array([True] * 4 + [False] * 11 + [None] * 10, dtype="boolean"),
        "reliable_improvement": episodes["reliable_improvement"],
        "reliable_deterioration": episodes["reliable_deterioration"],
        "reliable_recovery": pd.array([True] * 4 + [False] * 11 + [None] * 10, dtype="boolean"),
    })
    summary = summarise_episodes(episodes, combined, min_cell=10).set_index(["outcome", "measure"])
    assert list(summary.columns) == ["n_episodes", "n_with_outcome", "n_denominator", "count", "rate"]
    assert summary.index.get_level_values("outcome").unique().tolist() == ["phq9", "combined"]
    # 20 of 25 with an outcome: the 5 without would be revealed by subtraction (secondary suppression)
    has = summary.loc[("phq9", "has_outcome")]
    assert (has["n_episodes"], has["n_with_outcome"], has["n_denominator"], has["count"]) == ("25", ">15", "25", ">15")
    assert np.isnan(has["rate"])
    improved = summary.loc[("phq9", "reliable_improvement")]  # 12 of 20: 8 not improved
    assert (improved["count"], improved["n_denominator"]) == (">10", ">15") and np.isnan(improved["rate"])
    start = summary.loc[("phq9", "case_start")]  # 15 of 25: both parts shown
    assert (start["count"], start["n_denominator"], start["rate"]) == ("15", "25", pytest.approx(0.6))
    ended_case = summary.loc[("phq9", "case_end")]  # 3 of 20: suppressed, no rate
    assert ended_case["count"] == "<10" and np.isnan(ended_case["rate"])
    worse = summary.loc[("phq9", "reliable_deterioration")]  # 0 is shown
    assert (worse["count"], worse["rate"]) == ("0", 0.0)
    jt = summary.loc[("phq9", "jt_recovered")]  # never defined
    assert (jt["n_denominator"], jt["count"]) == ("0", "0") and np.isnan(jt["rate"])
    recovery = summary.loc[("combined", "recovery")]  # 4 of 15 cases
    assert (recovery["count"], recovery["n_denominator"]) == ("<10", "15") and np.isnan(recovery["rate"])


def test_configuration_and_data_errors(shipped_config):
    # The episodes section is checked by the schema and the study (analysis.study), before the
    # stage runs: each mistake names its config key.
    def study_with(change):
        config = copy.deepcopy(shipped_config)
        change(config)
        return study_from_dict(config)

    with pytest.raises(ConfigError, match=r"episodes\.recovery_rul\b.*'recovery_rule'"):
        study_with(lambda c: c.update(episodes={"recovery_rul": "all_outcomes"}))
    with pytest.raises(ConfigError, match=r"episodes\.caseness_rule"):
        study_with(lambda c: c.update(episodes={"caseness_rule": "either"}))
    with pytest.raises(ConfigError, match=r"episodes\.reliability\.phq9"):
        study_with(lambda c: c.update(episodes={"reliability": {"phq9": 1.5}}))
    with pytest.raises(ConfigError, match=r"episodes\.functional_norms\.gad7"):
        study_with(lambda c: c.update(episodes={"functional_norms": {"gad7": {"mean": 3}}}))
    with pytest.raises(ConfigError, match=r"analysis\.outcomes: unknown instrument 'phq'"):
        study_with(lambda c: c["analysis"].update(outcomes=["phq"]))
    # a valid section reaches the stage as its settings
    episode_settings = study_with(lambda c: c.update(episodes={
        "recovery_rule": "cased_outcomes", "reliability": {"phq9": 0.84}})).episodes
    assert episode_settings.recovery_rule == "cased_outcomes"
    assert episode_settings.reliability == {"phq9": 0.84}
    assert episode_settings.outcomes == ("phq9", "gad7")
    scores, sessions = make_scores(COURSES), make_sessions(COURSES)
    with pytest.raises(DataError, match="repeat a \\(client, session\\)"):
        compute_episodes(pd.concat([scores, scores.iloc[:1]]), sessions, settings())
