"""Unit tests of analysis.config: the schema check, defaults and the messages a user sees."""

from pathlib import Path

import pytest
import yaml

from analysis.config import check_config, load_config, load_schema, suggest
from analysis.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_shipped_config_is_valid_and_defaults_are_filled(shipped):
    config = load_config(ROOT / "config" / "config.yaml")
    assert config["analysis"]["max_lag_gap"] == 1
    minimal = check_config({"inputs": shipped["inputs"], "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]}})
    assert minimal["models"]["run"] == ["M0", "M1", "M2", "DPM", "M3", "DPM-reverse", "M4", "R1",
                                        "R2", "R3"]
    assert minimal["privacy"]["min_cell_count"] == 10
    assert minimal["inputs"]["sessions"]["layout"] == "long"


@pytest.mark.parametrize("change, words", [
    (lambda c: c.update(modles={}), ["unknown key", "modles", "Did you mean 'models'"]),
    (lambda c: c["analysis"].update(early_sesions=3), ["analysis.early_sesions", "'early_sessions'"]),
    (lambda c: c["linking"].update(by="dates"), ["linking.by", "session, date", "'date'"]),
    (lambda c: c["analysis"].pop("outcomes"), ["analysis.outcomes", "missing"]),
    (lambda c: c["privacy"].update(min_cell_count="ten"), ["privacy.min_cell_count", "integer"]),
    (lambda c: c["inputs"]["sessions"]["columns"].update(clinet="x"), ["inputs.sessions.columns.clinet", "'client'"]),
    (lambda c: c["inputs"]["outcomes"]["instruments"]["phq9"].update(items="phq9_"), ["items", "{i}"]),
])
def test_mistakes_name_the_key_and_suggest(shipped, change, words):
    change(shipped)
    with pytest.raises(ConfigError) as raised:
        check_config(shipped)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("analysis:\n  alliance: wai_sr\n   outcomes: [phq9]\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_suggest():
    assert suggest("phq-9", ["phq9", "gad7"]) == " Did you mean 'phq9'?"
    assert suggest("zzz", ["phq9", "gad7"]) == ""


def test_readme_example_config_is_valid():
    """The worked example in the README is a config the pipeline accepts."""
    import re

    from analysis.study import study_from_dict

    example = re.search(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    config = yaml.safe_load(example)
    # the whole study resolves: schema, instruments, inputs, episode settings and planned fits
    study = study_from_dict(config)
    assert study.alliance.key == config["analysis"]["alliance"]
    assert list(study.outcome_keys) == config["analysis"]["outcomes"]


# ---------------------------------------------------------------------------------------------
# optional means optional: a config with only inputs and analysis


OPTIONAL_SECTIONS = ("study", "privacy", "linking", "quality", "instruments", "episodes",
                     "models", "multiverse", "figures", "report", "manuscript")


@pytest.fixture
def minimal(shipped):
    return {"inputs": shipped["inputs"], "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]}}


def test_only_inputs_and_analysis_are_required():
    schema = load_schema()
    assert sorted(schema["required"]) == ["analysis", "inputs"]
    for name, section in schema["properties"].items():
        if name not in schema["required"]:
            assert "default" in section, f"the optional section {name} has no default"
    assert set(OPTIONAL_SECTIONS) <= set(schema["properties"])


def _documented_defaults(section: str) -> dict[str, str]:
    """The ``| key | default | meaning |`` table of ``## `section` `` in config/README.md."""
    import re

    text = (ROOT / "config" / "README.md").read_text()
    part = text.split(f"\n## `{section}`", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", part, re.M)
    return {key: value.strip().strip("`").strip('"') for key, value in rows}


@pytest.mark.parametrize("section", ["study", "privacy", "linking", "quality", "figures", "report",
                                     "manuscript"])
def test_minimal_config_resolves_to_the_documented_defaults(minimal, section):
    checked = check_config(minimal)
    documented = _documented_defaults(section)
    assert documented, f"config/README.md documents no defaults of {section}"
    assert set(documented) == set(checked[section])
    for key, value in checked[section].items():
        assert str(value).lower() == documented[key].lower(), f"{section}.{key}"


def test_minimal_config_resolves_the_whole_study(minimal):
    from analysis.study import study_from_dict

    study = study_from_dict(minimal)
    schema = load_schema()["properties"]
    privacy = schema["privacy"]["properties"]
    assert study.privacy.min_cell_count == privacy["min_cell_count"]["default"]
    assert study.report.privacy == study.privacy == study.figures.privacy
    assert study.key_env == privacy["key_env"]["default"]
    assert study.report.title == schema["study"]["properties"]["name"]["default"]
    assert study.seed == schema["study"]["properties"]["seed"]["default"]
    assert study.quality.max_reject_share == schema["quality"]["properties"][
        "max_reject_share"]["default"]
    assert study.figures.png_dpi == schema["figures"]["properties"]["png_dpi"]["default"]
    assert study.alpha == schema["report"]["properties"]["alpha"]["default"]
    assert study.linking.by == "session" and study.linking.orphan_outcomes == "reject"
    assert all(table.missing_values == () for table in study.inputs)


def test_report_templates_read_the_resolved_study_only(minimal):
    """The Snakemake report's templates see only ``snakemake.config``: the Snakefile puts the
    resolved study there under one key, and the templates read nothing else of it (no raw
    configuration), with only inputs and analysis in the config file too."""
    import re
    from types import SimpleNamespace

    import jinja2

    from analysis.study import RESOLVED_STUDY_KEY, study_from_dict

    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert re.search(r"^config\[RESOLVED_STUDY_KEY\] = STUDY\.report\.params\(\)$", common, re.M)
    assert "config.update" not in common
    study = study_from_dict(minimal)
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for template in sorted((ROOT / "workflow" / "report").glob("*.rst")):
        environment.from_string(template.read_text()).render(
            snakemake=SimpleNamespace(config={RESOLVED_STUDY_KEY: study.report.params()}))
    description = environment.from_string(
        (ROOT / "workflow" / "report" / "workflow.rst").read_text()).render(
        snakemake=SimpleNamespace(config={RESOLVED_STUDY_KEY: study.report.params()}))
    assert f"**{study.report.title}**" in description
    assert f'"<{study.privacy.min_cell_count}"' in description
    # the reviewer report's own templates and render code never read the raw config
    sources = [*(ROOT / "src" / "analysis" / "templates").rglob("*.j2"),
               *(ROOT / "src" / "analysis" / "report").glob("*.py")]
    pattern = re.compile(r"config(\.|\[[\"'])(" + "|".join(OPTIONAL_SECTIONS) + r")\b")
    offenders = [f"{path.name}: {match.group(0)}" for path in sources
                 for match in pattern.finditer(path.read_text())]
    assert offenders == []
