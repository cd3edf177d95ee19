"""The bad-input corpus (tests/data/bad/): every user mistake ends in rejects or one clear message.

Each case folder holds small exports and ``case.yaml``: a config overlay (merged onto the shipped
config, with paths pointing at the case's files) and the expected outcome: ``ok`` (no rejects),
``rejects`` (these rules, this many times) or ``error`` (a ``UserError`` whose message contains
these words). The end-to-end tests check that such errors reach the user without a traceback.
"""

from pathlib import Path

import pytest
import yaml

from analysis.errors import UserError
from analysis.ingest import run_ingest
from analysis.study import ingest_settings, study_from_dict
from conftest import check_balance

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "tests" / "data" / "bad").iterdir() if p.is_dir())


def merge(base: dict, overlay: dict) -> dict:
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def case_config(case: Path, overlay: dict) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name in config["inputs"]:
        config["inputs"][name]["path"] = str(case / Path(config["inputs"][name]["path"]).name)
    text = yaml.safe_dump(overlay).replace("{case}", str(case))
    return merge(config, yaml.safe_load(text) or {})


def run_case(case: Path, overlay: dict):
    study = study_from_dict(case_config(case, overlay))
    return run_ingest(ingest_settings(study))


def test_corpus_has_the_required_cases():
    names = {case.name for case in CASES}
    assert len(names) >= 15
    assert {"missing_required_column", "wrong_delimiter", "non_numeric_item", "out_of_range_item",
            "invalid_session_number", "conflicting_duplicates", "empty_file", "header_only", "utf8_bom",
            "latin1_declared", "unknown_instrument", "missing_file", "mixed_id_types",
            "missing_client_id", "unparseable_dates", "column_two_roles"} <= names


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_case(case, monkeypatch):
    monkeypatch.setenv("ALLIANCE_PSEUDONYM_KEY", "test-key")
    spec = yaml.safe_load((case / "case.yaml").read_text())
    expect = spec["expect"]
    if expect["outcome"] == "error":
        with pytest.raises(UserError) as raised:
            run_case(case, spec["config"])
        message = str(raised.value)
        for word in expect["message"]:
            assert word in message, f"{case.name}: {word!r} not in message: {message}"
        assert "CL-" not in message  # never an identifier's value
        return
    result = run_case(case, spec["config"])
    rejects, flow = result["rejects"], result["flow"]
    assert check_balance(flow) == []
    assert not rejects.astype(str).apply(lambda c: c.str.contains("CL-")).any().any()
    if expect["outcome"] == "ok":
        assert rejects.empty, rejects.to_string()
        assert result["sessions"]["client_id"].nunique() == 3
    else:
        counts = rejects["rule"].value_counts().to_dict()
        assert counts == expect["rules"], f"{case.name}: {counts}"
        for column in ("file", "row", "column", "rule", "reason"):
            assert rejects[column].notna().all()
