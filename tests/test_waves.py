"""The shared wave chooser of the panel models (analysis.models.panel.waves) and its settings.

- Which sessions are waves: sessions numbered from 3, per-client offsets (origin "client"
  aligns them, origin "study" does not), the share of clients that must reach a wave, the cap.
- The wide panel built from a choice (the layout the RI-CLPM and the dynamic panel model read).
- The settings: ``models.panel`` resolved in study.py into ``PanelWaveSettings`` and carried by
  the RI-CLPM's settings (so its rule's params change when a wave setting does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.errors import ConfigError, DataError
from analysis.models.panel.waves import (
    DEFAULT_MAX_WAVES,
    DEFAULT_MIN_SHARE,
    DEFAULT_ORIGIN,
    WaveChoice,
    choose_waves,
    wide_panel,
)
from analysis.settings import PanelWaveSettings, RiclpmSettings

ROOT = Path(__file__).resolve().parents[1]


def frame(courses: dict[str, list[int]], outcome: str = "phq9", therapist: bool = True,
          missing: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """A derived frame: each client's session numbers, scores on every session except those in
    ``missing`` (rows kept, both scores NaN: a session record without a questionnaire)."""
    rows = []
    for n, (client, sessions) in enumerate(courses.items()):
        for session in sessions:
            empty = session in (missing or {}).get(client, [])
            rows.append({"outcome": outcome, "client_id": client, "session": session,
                         "alliance_score": np.nan if empty else 4.0 + 0.1 * session + n,
                         "symptom_score": np.nan if empty else 15.0 - session + n,
                         **({"therapist_id": f"t{n % 2}"} if therapist else {})})
    return pd.DataFrame(rows)


# ten clients numbered from 3: lengths 2..11 sessions (3..4, 3..5, ..., 3..13)
FROM_3 = {f"c{k:02d}": list(range(3, 3 + length)) for k, length in enumerate(range(2, 12))}


def test_defaults_are_the_schemas():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    panel = schema["properties"]["models"]["properties"]["panel"]["properties"]
    assert panel["min_share"]["default"] == DEFAULT_MIN_SHARE == PanelWaveSettings().min_share
    assert panel["max_waves"]["default"] == DEFAULT_MAX_WAVES == PanelWaveSettings().max_waves
    assert panel["origin"]["default"] == DEFAULT_ORIGIN == PanelWaveSettings().origin
    riclpm = schema["properties"]["models"]["properties"]["riclpm"]["properties"]
    assert riclpm["sessions"]["default"] is None and RiclpmSettings().sessions is None
    assert riclpm["equal_innovations"]["default"] is RiclpmSettings().equal_innovations


def test_sessions_numbered_from_3_need_no_config_edit():
    for origin in ("study", "client"):
        choice = choose_waves(frame(FROM_3), "phq9", min_share=0.5, max_waves=None,
                              origin=origin)
        # a client of length L reaches L waves: lengths 2..11 -> wave k reached by 12 - k of 10
        assert choice.share_reaching == (1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
        assert choice.n_waves == 7 and choice.n_clients == 10
        if origin == "study":
            assert choice.sessions == (3, 4, 5, 6, 7, 8, 9) and choice.first_session == 3
            assert choice.description == (
                "sessions 3 to 9, the sessions that at least 50% of clients reached, counted "
                "from the study's first session (3)")
        else:
            assert choice.sessions == (1, 2, 3, 4, 5, 6, 7) and choice.first_session is None
            assert choice.description.startswith("each client's sessions 1 to 7")
            assert "counted from each client's first session" in choice.description


def test_per_client_offsets_are_aligned_by_origin_client():
    # every client attends 6 sessions, but their numbers start at 1, 11, 21, ... (offsets)
    courses = {f"c{k}": list(range(1 + 10 * k, 7 + 10 * k)) for k in range(6)}
    by_client = choose_waves(frame(courses), "phq9", min_share=0.5, max_waves=None,
                             origin="client")
    assert by_client.sessions == (1, 2, 3, 4, 5, 6)
    assert by_client.share_reaching == (1.0,) * 6
    assert by_client.first_sessions_differ
    # the study's clock: session 1 is reached by one client in six, so no wave qualifies
    by_study = choose_waves(frame(courses), "phq9", min_share=0.5, max_waves=None,
                            origin="study")
    assert by_study.n_waves == 0 and by_study.sessions == ()
    assert by_study.share_by_wave[0] == pytest.approx(1 / 6)
    assert by_study.description.startswith("no session was reached by at least 50%")

    panel, counts = wide_panel(frame(courses), "phq9", by_client)
    assert len(panel) == 6 and counts["clients_2plus_waves"] == 6
    assert panel[[f"y{t}" for t in range(1, 7)]].notna().all().all()
    # wave 1 of client c3 is their session 31
    row = panel.set_index("client_id").loc["c3"]
    assert row["y1"] == 15.0 - 31 + 3 and row["therapist_id"] == "t1"


def test_a_missed_session_is_a_missing_wave_not_a_shift():
    courses = {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4], "c": [1, 2, 3, 4]}
    derived = frame(courses, missing={"b": [2]})
    choice = choose_waves(derived, "phq9", min_share=1.0, max_waves=None, origin="client")
    assert choice.sessions == (1, 2, 3, 4)
    panel, _ = wide_panel(derived, "phq9", choice)
    row = panel.set_index("client_id").loc["b"]
    assert np.isnan(row["y2"]) and row["y3"] == 15.0 - 3 + 1


def test_min_share_sets_how_far_the_waves_go():
    derived = frame(FROM_3)
    lengths = {share: choose_waves(derived, "phq9", min_share=share, max_waves=None,
                                   origin="study").n_waves
               for share in (1.0, 0.9, 0.75, 0.5, 0.3, 0.1)}
    assert lengths == {1.0: 2, 0.9: 3, 0.75: 4, 0.5: 7, 0.3: 9, 0.1: 11}
    choice = choose_waves(derived, "phq9", min_share=0.5, max_waves=None, origin="study")
    assert choice.waves_for_share(0.3) == 9 and choice.share_for_waves(9) == pytest.approx(0.3)
    assert choice.share_for_waves(12) is None


def test_max_waves_caps_the_choice():
    derived = frame(FROM_3)
    choice = choose_waves(derived, "phq9", min_share=0.1, max_waves=5, origin="study")
    assert choice.sessions == (3, 4, 5, 6, 7) and choice.capped
    assert choice.description.endswith("capped at 5 waves")
    uncapped = choose_waves(derived, "phq9", min_share=0.5, max_waves=10, origin="study")
    assert uncapped.n_waves == 7 and not uncapped.capped


def test_an_explicit_number_of_waves_overrides_the_choice():
    choice = choose_waves(frame(FROM_3), "phq9", min_share=0.9, max_waves=4, origin="study",
                          n_waves=9)
    assert choice.sessions == tuple(range(3, 12)) and choice.explicit and not choice.capped
    assert "the first 9 sessions as configured" in choice.description


def test_choice_round_trips_through_plain_values():
    choice = choose_waves(frame(FROM_3), "phq9", min_share=0.5, max_waves=None, origin="study")
    assert WaveChoice.from_dict(choice.as_dict()) == choice


def test_only_scored_sessions_count_and_other_outcomes_are_ignored():
    derived = pd.concat([frame(FROM_3), frame({"x": list(range(1, 40))}, outcome="gad7")])
    # session records without any score before the first questionnaire do not move the origin
    early = frame({"c00": [1, 2]}, missing={"c00": [1, 2]})
    choice = choose_waves(pd.concat([derived, early]), "phq9", min_share=0.5, max_waves=None,
                          origin="study")
    assert choice.first_session == 3 and choice.n_clients == 10


def test_without_therapist_ids_the_panel_has_none():
    choice = choose_waves(frame(FROM_3, therapist=False), "phq9", min_share=0.5,
                          max_waves=None, origin="client")
    panel, _ = wide_panel(frame(FROM_3, therapist=False), "phq9", choice)
    assert "therapist_id" not in panel.columns
    assert list(panel.columns) == ["client_id", *[f"a{t}" for t in range(1, 8)],
                                   *[f"y{t}" for t in range(1, 8)]]


@pytest.mark.parametrize("arguments, key", [
    ({"min_share": 0.0}, "models.panel.min_share"),
    ({"min_share": 1.5}, "models.panel.min_share"),
    ({"max_waves": 0}, "models.panel.max_waves"),
    ({"origin": "first"}, "models.panel.origin"),
    ({"n_waves": 0}, "models.riclpm.sessions"),
])
def test_options_out_of_range_name_the_key(arguments, key):
    options = {"min_share": 0.5, "max_waves": None, "origin": "study", **arguments}
    with pytest.raises(ConfigError, match=key):
        choose_waves(frame(FROM_3), "phq9", **options)


def test_malformed_frames_are_data_errors():
    with pytest.raises(DataError, match="no rows for outcome 'gad7'"):
        choose_waves(frame(FROM_3), "gad7")
    with pytest.raises(DataError, match="symptom_score"):
        choose_waves(frame(FROM_3).drop(columns="symptom_score"), "phq9")
    with pytest.raises(DataError, match="not whole session numbers"):
        choose_waves(frame(FROM_3).assign(session=2.5), "phq9")


# --- settings resolution ------------------------------------------------------------------------

def _config(**models) -> dict:
    """The shipped config with its RI-CLPM and panel keys at their defaults, then ``models``."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    section = config.setdefault("models", {})
    section.pop("panel", None)
    section["riclpm"] = {"run": True}
    section.update(models)
    config["multiverse"] = {"run": False}  # not read by the panel settings
    return config


def test_settings_resolved_from_models_panel():
    from analysis.study import study_from_dict

    study = study_from_dict(_config())
    assert study.panel_waves == PanelWaveSettings()
    assert study.riclpm.waves == study.panel_waves and study.riclpm.sessions is None
    custom = study_from_dict(_config(panel={"min_share": 0.4, "max_waves": None,
                                            "origin": "study"},
                                     riclpm={"sessions": 5, "equal_innovations": False}))
    assert custom.panel_waves == PanelWaveSettings(min_share=0.4, max_waves=None,
                                                   origin="study")
    assert custom.riclpm.waves == custom.panel_waves
    assert (custom.riclpm.sessions, custom.riclpm.equal_innovations) == (5, False)
    assert custom.report.riclpm == custom.riclpm


def test_rule_params_carry_every_setting_the_stage_reads():
    from analysis.study import study_from_dict

    params = study_from_dict(_config(panel={"min_share": 0.4})).riclpm.params()
    assert params == {"sessions": None, "free_paths_sensitivity": True,
                      "equal_innovations": True,
                      "waves": {"min_share": 0.4, "max_waves": 10, "origin": "client"}}
    assert RiclpmSettings.from_params(params).waves == PanelWaveSettings(min_share=0.4)
    baseline = study_from_dict(_config()).riclpm.params()
    assert baseline != params  # a models.panel edit reruns the RI-CLPM


@pytest.mark.parametrize("models, message", [
    ({"panel": {"min_share": 0}}, "min_share"),
    ({"panel": {"origin": "first"}}, "origin"),
    ({"panel": {"max_waves": 2}}, "max_waves"),
    ({"riclpm": {"sessions": 2}}, "sessions"),
])
def test_schema_rejects_bad_values(models, message):
    from analysis.study import study_from_dict

    with pytest.raises(ConfigError, match=message):
        study_from_dict(_config(**models))
