"""The resolved study: the one reader of the configuration, and settings that round-trip as params."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import ConfigError
from analysis.instruments import STAGE_READS, registry_from_params
from analysis.study import ingest_settings, load_study, score_settings, study_from_dict

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "analysis"


@pytest.fixture(scope="module")
def study():
    return load_study(ROOT / "config" / "config.yaml")


def test_the_raw_config_is_read_in_one_module_only():
    """Stages take typed settings; only the study (and the schema check) read the dict."""
    pattern = re.compile(r"config\[\"|config\.get\(\"|\bconfig\[")
    readers = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if pattern.search(path.read_text()))
    assert readers == ["study.py"], readers


def test_no_stage_function_takes_a_config_argument():
    signature = re.compile(r"def \w+\([^)]*\bconfig\s*:", re.S)
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.name not in ("config.py", "study.py") and signature.search(path.read_text())]
    assert offenders == []


@pytest.mark.parametrize("settings", [
    lambda s: ingest_settings(s), lambda s: score_settings(s), lambda s: s.derive,
    lambda s: s.episodes, lambda s: s.quality, lambda s: s.figures, lambda s: s.report,
    lambda s: s.models, lambda s: s.cross_check_settings(),
])
def test_settings_round_trip_through_plain_params(study, settings):
    value = settings(study)
    params = value.params()
    assert type(value).from_params(params) == value
    # plain values only: Snakemake compares params by value and must never pickle pandas objects
    assert repr(params) == repr(type(value).from_params(params).params())


def test_fit_settings_carry_the_resolved_fit_and_only_the_instrument_r2_reads(study):
    m2 = study.fit_settings("phq9", "M2", "primary")
    assert m2["fit"]["formula"].startswith("symptom_next ~") and m2["instruments"] == {}
    r2 = study.fit_settings("wai_sr", "R2", "primary")
    assert set(r2["instruments"]) == {"wai_sr"}
    assert set(r2["instruments"]["wai_sr"]) == set(STAGE_READS["models"])


def test_each_stage_gets_only_the_instrument_keys_it_reads(study):
    for stage, settings in [("ingest", ingest_settings(study)), ("score", score_settings(study)),
                            ("episodes", study.episodes), ("figures", study.figures)]:
        for declaration in settings.instruments.values():
            assert set(declaration) == set(STAGE_READS[stage]), stage


def test_an_unknown_instrument_names_the_key():
    config = yaml_config()
    config["analysis"]["outcomes"] = ["phq9", "gad8"]
    with pytest.raises(ConfigError, match=r"analysis.outcomes.*gad8.*Did you mean 'gad7'"):
        study_from_dict(config)


def test_an_outcome_no_table_declares_is_named():
    config = yaml_config()
    config["analysis"]["outcomes"] = ["phq9", "ors"]
    with pytest.raises(ConfigError, match=r"no input table declares instrument 'ors'"):
        study_from_dict(config)


def test_episode_settings_are_checked_by_the_schema_with_the_key_named():
    config = yaml_config()
    config["episodes"] = {"recovery_rule": "every_outcome"}
    with pytest.raises(ConfigError, match=r"episodes.recovery_rule"):
        study_from_dict(config)
    config["episodes"] = {"reliability": {"phq99": 0.8}}
    with pytest.raises(ConfigError, match=r"episodes.reliability.phq99"):
        study_from_dict(config)


def test_defaults_live_in_the_schema_and_reach_the_settings():
    study = study_from_dict(yaml_config())
    assert study.quality.max_reject_share == 0.2
    assert study.linking.unmatched_sessions == "keep"
    assert study.derive.max_lag_days is None
    assert study.figures.png_dpi == 300
    assert study.report.ceiling_share == 0.15


# Settings fields whose setting the schema does not hold: derived from the data or the design,
# or the value meaning "off" of a section that is switched on elsewhere.
NOT_IN_THE_SCHEMA = {
    "ModelSettings.custom", "MultiverseSettings.resamples", "MultiverseFitSettings.resamples",
    "MultiverseFitSettings.seed", "MultiverseSummarySettings.resamples",
    "DropoutSettings.status_recorded", "DropoutSettings.ending_recorded",
    "EngagementSettings.dropout", "EngagementSettings.dropout_hazard",
    "EngagementSettings.therapist_patient", "EngagementSettings.sudden_gains",
    "ReportSettings.riclpm", "ReportSettings.multiverse",
    # power: the simulated tests' level is METHODS' p < .05, not a setting; the models a study
    # lacks are found, not set; a design's dropout None is "as observed in this study"
    "PowerSettings.alpha", "PowerSettings.missing_models", "PowerDesign.dropout",
}


def test_every_default_of_the_settings_is_read_from_the_schema():
    """Defaults are written once, in the schema: a field of analysis.settings either reads its
    default there (schema_default), starts empty (field(default_factory=...)), or holds what
    the schema has no key for."""
    import ast

    from analysis.config import load_schema
    from analysis.settings import schema_default

    tree = ast.parse((PACKAGE / "settings.py").read_text())
    literal, read = set(), []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not (isinstance(item, ast.AnnAssign) and item.value is not None):
                continue
            call = getattr(item.value, "func", None)
            if getattr(call, "id", "") == "schema_default":
                read.append(ast.literal_eval(item.value.args[0]))
            elif getattr(call, "id", "") != "field":
                literal.add(f"{node.name}.{item.target.id}")
    assert literal == NOT_IN_THE_SCHEMA
    assert len(read) >= 38
    schema = load_schema()
    for key in read:
        node = schema
        for part in key.split("."):
            node = node["additionalProperties"] if part == "*" else node["properties"][part]
        assert "default" in node, key
    # the same values a config without these keys resolves to
    study = study_from_dict(yaml_config())
    assert study.episodes.rci_criterion == schema_default("episodes.rci_criterion") == 1.96
    assert study.models.run == schema_default("models.run", tuple)


def test_custom_models_are_read_once_and_passed_on_resolved(monkeypatch):
    """models.custom is read in resolve_study only: the planned fits, the study's specs and the
    report's view take the resolved models."""
    from analysis.models.mixed import specs
    from analysis.report.view import ReportView
    from analysis.settings import ReportSettings
    import analysis.study as study_module

    reads = []
    original = specs.model_specs

    def counting(*args, **kwargs):
        reads.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(specs, "model_specs", counting)
    monkeypatch.setattr(study_module, "model_specs", counting)
    config = yaml_config()
    config["models"]["custom"] = [{"id": "Mx", "title": "Early slope", "outcomes": ["phq9"],
                                   "formula": "symptom_next ~ symptom_score + alliance_within"
                                              " + (1 | client_id)"}]
    resolved = study_from_dict(config)
    view = ReportView(ReportSettings.from_params(resolved.report.params()))
    assert resolved.model_specs["Mx"] == view.specs["Mx"]
    assert view.specs["Mx"].outcomes == ("phq9",) and view.specs["Mx"].custom
    assert view.specs["Mx"].terms_of_interest == ("alliance_within",)
    assert {fit.outcome for fit in resolved.fits if fit.model == "Mx"} == {"phq9"}
    assert "Mx" in view.models_run
    assert len(reads) == 1
    # what travels is the resolved model, not the declaration
    assert resolved.report.models.custom[0]["question"] == "Custom model declared in config " \
        "(models.custom[0])."


def test_the_report_reads_the_reject_threshold_the_quality_gate_reads():
    config = yaml_config()
    config["quality"] = {"max_reject_share": 0.35}
    resolved = study_from_dict(config)
    assert resolved.report.max_reject_share == resolved.quality.max_reject_share == 0.35


def test_a_projected_instrument_scores_like_the_full_one(study):
    """What a stage reads of an instrument is enough: scoring with the score projection gives
    the same scores as with the full declaration."""
    from analysis.scoring import score_administrations
    from model_fixtures import simulate_administrations

    administrations = simulate_administrations(60, seed=3)
    full = {key: study.registry[key] for key in administrations["instrument"].unique()}
    projected = registry_from_params({key: instrument.params("score")
                                      for key, instrument in full.items()})
    pd.testing.assert_frame_equal(score_administrations(administrations, full),
                                  score_administrations(administrations, projected))


def yaml_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
