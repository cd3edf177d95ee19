"""Unit tests of analysis.config: the schema check, defaults and the messages a user sees."""

from pathlib import Path

import pytest
import yaml

from analysis.config import check_config, load_config, suggest
from analysis.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_shipped_config_is_valid_and_defaults_are_filled(shipped):
    config = load_config(ROOT / "config" / "config.yaml")
    assert config["analysis"]["max_lag_gap"] == 1
    minimal = check_config({"inputs": shipped["inputs"], "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]}})
    assert minimal["models"]["run"] == ["M0", "M1", "M2", "M3", "M4", "R1", "R2", "R3"]
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
