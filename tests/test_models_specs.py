"""The model-specification table, planned fits, sensitivity substitutions and fallback order."""

from __future__ import annotations

import pytest

from analysis.errors import ConfigError
from analysis.models import specs
from model_fixtures import make_config

from analysis.models.specs import (
    fallback_formulas,
    formula_variables,
    planned_cross_checks,
    planned_fits,
    resolve_fit,
    split_formula,
    substitute_terms,
)


def test_spec_table_holds_every_model_once_with_methods_formulas():
    table = specs.spec_table()
    assert list(table["model"]) == ["M0", "M1", "M2", "M3", "M4", "R1", "R2", "R3"]
    by_id = table.set_index("model")
    assert by_id.loc["M2", "formula"] == (
        "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
        " + (1 | client_id) + (1 | therapist_id)"
    )
    assert by_id.loc["M0", "formula"] == (
        "symptom_score ~ session + (1 + session | client_id) + (1 | therapist_id)"
    )
    assert by_id.loc["M3", "terms_of_interest"] == "symptom_within;symptom_between_c"
    assert set(by_id["kind"]) == {"lmm", "ols", "rm_corr", "alpha", "icc"}
    # exactly one primary test: the within-client alliance term of M2
    primary = table.loc[table["primary_term"].notna()]
    assert list(primary["model"]) == ["M2"]
    assert list(primary["primary_term"]) == ["alliance_within"]


def test_sensitivity_table_covers_each_switch_and_m1_m2():
    table = specs.sensitivity_table().set_index("analysis")
    assert {"primary", "detrended", "completers", "ml", "subscale_task", "subscale_goal",
            "subscale_bond"} == set(table.index)
    for analysis in table.index:
        applies = table.loc[analysis, "applies_to"].split(";")
        assert "M1" in applies and "M2" in applies
    assert "M3" in table.loc["ml", "applies_to"].split(";")
    assert table.loc["ml", "reml"] == False  # noqa: E712 (a numpy bool)
    assert table.loc["detrended", "substitutions"] == "alliance_within->alliance_within_detrended"


def test_split_and_join_formula_round_trip():
    formula = "y ~ a + b:c + I(a^2) + (1 + a | client_id) + (1 | therapist_id)"
    response, fixed, random = split_formula(formula)
    assert response == "y"
    assert fixed == ["a", "b:c", "I(a^2)"]
    assert random == [("1 + a", "client_id"), ("1", "therapist_id")]
    assert specs.join_formula(response, fixed, random) == formula


def test_formula_variables_skip_function_names():
    assert formula_variables("y ~ x + I(x^2) + log(z) + (1 + x | g)") == ["y", "x", "z", "g"]


def test_substitution_replaces_whole_names_only():
    formula = "y ~ alliance_within + alliance_within_detrended + alliance_between_c"
    out = substitute_terms(formula, (("alliance_within", "alliance_task_within"),))
    assert out == "y ~ alliance_task_within + alliance_within_detrended + alliance_between_c"


def test_fallback_order_drops_slope_then_therapist():
    steps = fallback_formulas(
        "symptom_score ~ session + (1 + session | client_id) + (1 | therapist_id)"
    )
    assert steps == [
        ("drop_random_slope",
         "symptom_score ~ session + (1 | client_id) + (1 | therapist_id)"),
        ("drop_therapist", "symptom_score ~ session + (1 | client_id)"),
    ]
    # M2 has no slope: the only step is dropping the therapist term
    m2 = specs.BUILTIN_MODELS["M2"].formula
    assert [step for step, _ in fallback_formulas(m2)] == ["drop_therapist"]
    # nothing left to drop
    assert fallback_formulas("y ~ x + (1 | client_id)") == []


def test_planned_fits_expand_models_outcomes_and_analyses():
    jobs = planned_fits(make_config())
    assert jobs == sorted(jobs)
    assert len(jobs) == len(set(jobs))
    assert ("phq9", "M2", "primary") in jobs
    assert ("gad7", "M2", "subscale_bond") in jobs
    assert ("phq9", "M3", "ml") in jobs
    assert ("phq9", "M3", "detrended") not in jobs  # no alliance_within in M3
    assert ("phq9", "R1", "ml") not in jobs
    # reliability also for the alliance instrument
    assert ("wai_sr", "R2", "primary") in jobs
    assert ("wai_sr", "M2", "primary") not in jobs
    per_outcome = [job for job in jobs if job[0] == "phq9"]
    # M0 3, M1 7, M2 7, M3 3, M4 2, R1 1, R2 1, R3 1
    assert len(per_outcome) == 25


def test_switches_turn_sensitivity_analyses_off():
    config = make_config(sensitivity={"detrended": False, "completers": False, "ml": False,
                                      "subscales": False}, run=["M2"])
    assert planned_fits(config) == [("gad7", "M2", "primary"), ("phq9", "M2", "primary")]


def test_resolve_fit_applies_substitutions_and_restrictions():
    config = make_config()
    task = resolve_fit(config, "phq9", "M2", "subscale_task")
    assert "alliance_task_within + alliance_task_between_c" in task.formula
    assert task.primary_term == "alliance_task_within"
    assert task.terms_of_interest == ("alliance_task_within", "alliance_task_between_c")
    assert resolve_fit(config, "phq9", "M1", "ml").reml is False
    completers = resolve_fit(config, "gad7", "M2", "completers")
    assert completers.completers_min_sessions == 8
    assert completers.formula == specs.BUILTIN_MODELS["M2"].formula
    assert resolve_fit(config, "phq9", "R3", "primary").fallbacks == ()


def test_resolve_fit_rejects_unplanned_jobs():
    config = make_config(sensitivity={"ml": False})
    with pytest.raises(ConfigError, match="models.sensitivity.ml"):
        resolve_fit(config, "phq9", "M2", "ml")
    with pytest.raises(ConfigError, match="Did you mean 'M2'"):
        resolve_fit(config, "phq9", "m2", "primary")


def test_unknown_model_in_run_names_the_key():
    with pytest.raises(ConfigError, match=r"models\.run\[1\].*M5.*Known models"):
        planned_fits(make_config(run=["M2", "M5"]))


def test_unknown_sensitivity_switch_names_the_key():
    with pytest.raises(ConfigError, match='models.sensitivity.detrend".*Did you mean'):
        planned_fits(make_config(sensitivity={"detrend": True}))


def test_custom_models_join_the_table():
    config = make_config(
        run=["M2"],
        custom=[{"id": "M2x", "formula": "symptom_next ~ symptom_score + alliance_within"
                 " + (1 | client_id)", "outcomes": ["phq9"]}],
    )
    jobs = planned_fits(config)
    assert ("phq9", "M2x", "primary") in jobs
    assert ("phq9", "M2x", "detrended") in jobs  # its formula uses alliance_within
    assert ("gad7", "M2x", "primary") not in jobs  # restricted to phq9
    custom = resolve_fit(config, "phq9", "M2x", "subscale_goal")
    assert custom.custom and custom.kind == "lmm"
    assert custom.formula == "symptom_next ~ symptom_score + alliance_goal_within + (1 | client_id)"
    assert custom.terms_of_interest == ("alliance_goal_within",)
    table = specs.spec_table(config)
    assert list(table["model"])[-1] == "M2x"


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"id": "M2", "formula": "y ~ x + (1 | client_id)"}, r"models\.custom\[0\]\.id 'M2'"),
        ({"id": "2bad", "formula": "y ~ x + (1 | client_id)"}, r"models\.custom\[0\]\.id"),
        ({"id": "Mx", "formula": "y ~ x"}, r"models\.custom\[0\]\.formula has no random"),
        ({"id": "Mx", "formula": "y x"}, r"models\.custom\[0\]\.formula must be"),
        ({"id": "Mx", "formula": "y ~ x + (1 | client_id)", "outcomes": ["phq8"]},
         r"models\.custom\[0\]\.outcomes.*phq8.*Did you mean"),
    ],
)
def test_custom_model_errors_name_the_key(declaration, message):
    with pytest.raises(ConfigError, match=message):
        planned_fits(make_config(custom=[declaration]))


def test_planned_cross_checks_are_primary_mixed_models():
    checks = planned_cross_checks(make_config())
    assert ("phq9", "M2", "primary") not in checks
    assert ("phq9", "M2") in checks and ("gad7", "R3") in checks
    assert not any(model in ("M4", "R1", "R2") for _, model in checks)


def test_subscale_analyses_follow_the_alliance_instrument():
    """Subscale analyses come from the alliance instrument: none for the SRS, a custom set for a
    custom alliance scale with subscales."""
    base = {"analysis": {"alliance": "srs", "outcomes": ["phq9"]},
            "models": {"run": ["M2"], "sensitivity": {"subscales": True}}}
    assert specs.planned_fits(base) == [("phq9", "M2", "primary")]
    custom = {**base, "analysis": {"alliance": "hai", "outcomes": ["phq9"]}, "instruments": {"hai": {
        "n_items": 4, "item_min": 1, "item_max": 6, "scoring": "mean", "direction": "higher_better",
        "subscales": {"helpful": [1, 2], "bond": [3, 4]}}}}
    assert [a for _, _, a in specs.planned_fits(custom)] == ["primary", "subscale_bond", "subscale_helpful"]
    resolved = specs.resolve_fit(custom, "phq9", "M2", "subscale_helpful")
    assert "alliance_helpful_within" in resolved.formula and "alliance_helpful_between_c" in resolved.formula
