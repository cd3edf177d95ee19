"""The model-specification table, planned fits, sensitivity substitutions and fallback order."""

from __future__ import annotations

import pytest

from analysis.errors import ConfigError
from analysis.instruments import BUILT_IN
from analysis.models.mixed import specs
from analysis.models.mixed.specs import (
    ResolvedFit,
    enabled_analyses,
    formula_variables,
    model_specs,
    planned_cross_checks,
    split_formula,
    substitute_terms,
)
from model_fixtures import make_study, planned_jobs


def test_spec_table_holds_every_model_once_with_methods_formulas():
    table = model_specs()
    assert list(table) == ["M0", "M1", "M2", "DPM", "M3", "DPM-reverse", "M4", "R1", "R2", "R3"]
    assert table["M2"].formula == (
        "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
        " + (1 | client_id) + (1 | therapist_id)"
    )
    assert table["M0"].formula == (
        "symptom_score ~ session + (1 + session | client_id) + (1 | therapist_id)"
    )
    assert table["M3"].terms_of_interest == ("symptom_within", "symptom_between_c")
    assert {spec.kind for spec in table.values()} == {"lmm", "ols", "rm_corr", "alpha", "icc",
                                                       "dpm"}
    # exactly one primary test: the lagged alliance term of the dynamic panel model (METHODS
    # 4a); the conventional M2 is a secondary test
    primary = [spec for spec in table.values() if spec.primary_term is not None]
    assert [spec.id for spec in primary] == ["DPM"]
    assert [spec.primary_term for spec in primary] == ["alliance_lagged"]
    assert table["M2"].tested and "alliance_within" in table["M2"].terms_of_interest
    assert table["DPM-reverse"].terms_of_interest == ("symptom_lagged",)


def test_sensitivity_table_covers_each_switch_and_m1_m2():
    switches = {"detrended": True, "completers": True, "ml": True, "subscales": True}
    table = {row.id: row for row in enabled_analyses(switches, BUILT_IN["wai_sr"])}
    assert {"primary", "detrended", "completers", "ml", "subscale_task", "subscale_goal",
            "subscale_bond"} == set(table)
    for row in table.values():
        assert "M1" in row.applies_to and "M2" in row.applies_to
    assert "M3" in table["ml"].applies_to
    assert table["ml"].reml is False
    assert table["detrended"].substitutions == (("alliance_within", "alliance_within_detrended"),)


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


def test_planned_fits_expand_models_outcomes_and_analyses():
    jobs = planned_jobs(make_study())
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
    # M0 3, M1 7, M2 7, DPM 3, M3 3, DPM-reverse 3, M4 2, R1 1, R2 1, R3 1
    assert len(per_outcome) == 31
    assert ("phq9", "DPM", "free_paths") in jobs and ("phq9", "DPM", "ml") not in jobs


def test_switches_turn_sensitivity_analyses_off():
    study = make_study(sensitivity={"detrended": False, "completers": False, "ml": False,
                                    "subscales": False}, run=["M2"])
    assert planned_jobs(study) == [("gad7", "M2", "primary"), ("phq9", "M2", "primary")]


def test_resolve_fit_applies_substitutions_and_restrictions():
    study = make_study()
    task = study.fit("phq9", "M2", "subscale_task")
    assert "alliance_task_within + alliance_task_between_c" in task.formula
    assert task.primary_term is None  # M2 is conventional: its terms are secondary tests
    assert task.terms_of_interest == ("alliance_task_within", "alliance_task_between_c")
    assert study.fit("phq9", "M1", "ml").reml is False
    completers = study.fit("gad7", "M2", "completers")
    assert completers.completers_min_sessions == 8
    assert completers.formula == specs.BUILTIN_MODELS["M2"].formula
    # R3 is the ICC model: its kind is what keeps its therapist term in the convergence protocol
    assert study.fit("phq9", "R3", "primary").kind == "icc"
    # the alliance and the expected sign (WAI-SR higher = better, PHQ-9 higher = worse)
    assert (task.alliance, task.expected_sign) == ("wai_sr", -1)
    assert task.label == "M2 for phq9 (subscale_task)"
    # a fit job's params round-trip
    assert ResolvedFit.from_dict(task.as_dict()) == task


def test_resolve_fit_rejects_unplanned_jobs():
    study = make_study(sensitivity={"ml": False})
    with pytest.raises(ConfigError, match="not planned.*models.sensitivity"):
        study.fit("phq9", "M2", "ml")
    with pytest.raises(ConfigError, match="Did you mean 'M2'"):
        study.fit("phq9", "m2", "primary")


def test_unknown_model_in_run_names_the_key():
    with pytest.raises(ConfigError, match=r"models\.run\[1\].*M5.*Known models"):
        make_study(run=["M2", "M5"])


def test_unknown_sensitivity_switch_names_the_key():
    with pytest.raises(ConfigError, match='models.sensitivity.detrend".*Did you mean'):
        make_study(sensitivity={"detrend": True})


def test_custom_models_join_the_table():
    study = make_study(
        run=["M2"],
        custom=[{"id": "M2x", "formula": "symptom_next ~ symptom_score + alliance_within"
                 " + (1 | client_id)", "outcomes": ["phq9"]}],
    )
    jobs = planned_jobs(study)
    assert ("phq9", "M2x", "primary") in jobs
    assert ("phq9", "M2x", "detrended") in jobs  # its formula uses alliance_within
    assert ("gad7", "M2x", "primary") not in jobs  # restricted to phq9
    custom = study.fit("phq9", "M2x", "subscale_goal")
    assert custom.custom and custom.kind == "lmm"
    assert custom.formula == "symptom_next ~ symptom_score + alliance_goal_within + (1 | client_id)"
    assert custom.terms_of_interest == ("alliance_goal_within",)
    assert list(study.model_specs)[-1] == "M2x"


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"id": "M2", "formula": "y ~ x + (1 | client_id)"}, r"models\.custom\[0\]\.id 'M2'"),
        # the schema checks the id's pattern first, and names the key its own way
        ({"id": "2bad", "formula": "y ~ x + (1 | client_id)"}, r"models\.custom(\[0\]|\.0)\.id"),
        ({"id": "Mx", "formula": "y ~ x"}, r"models\.custom\[0\]\.formula has no random"),
        ({"id": "Mx", "formula": "y x"}, r"models\.custom\[0\]\.formula must be"),
        ({"id": "Mx", "formula": "y ~ x + (1 | client_id)", "outcomes": ["phq8"]},
         r"models\.custom\[0\]\.outcomes.*phq8.*Did you mean"),
    ],
)
def test_custom_model_errors_name_the_key(declaration, message):
    with pytest.raises(ConfigError, match=message):
        make_study(custom=[declaration])


def test_planned_cross_checks_are_primary_mixed_models():
    study = make_study()
    checks = planned_cross_checks(study.fits)
    assert checks == study.cross_checks
    assert ("phq9", "M2", "primary") not in checks
    assert ("phq9", "M2") in checks and ("gad7", "R3") in checks
    assert not any(model in ("M4", "R1", "R2") for _, model in checks)


def test_subscale_analyses_follow_the_alliance_instrument():
    """Subscale analyses come from the alliance instrument: none for the SRS, a custom set for a
    custom alliance scale with subscales."""
    only_subscales = {"detrended": False, "completers": False, "ml": False, "subscales": True}
    base = {"outcomes": ("phq9",), "run": ["M2"], "sensitivity": only_subscales}
    assert planned_jobs(make_study(alliance="srs", **base)) == [("phq9", "M2", "primary")]
    custom = make_study(alliance="hai", instruments={"hai": {
        "n_items": 4, "item_min": 1, "item_max": 6, "scoring": "mean", "direction": "higher_better",
        "subscales": {"helpful": [1, 2], "bond": [3, 4]}}}, **base)
    assert [a for _, _, a in planned_jobs(custom)] == ["primary", "subscale_bond", "subscale_helpful"]
    resolved = custom.fit("phq9", "M2", "subscale_helpful")
    assert "alliance_helpful_within" in resolved.formula and "alliance_helpful_between_c" in resolved.formula
