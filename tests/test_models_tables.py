"""Combining fit results into tables: multiple-testing columns, sorting, suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.privacy import StudyTotals
from analysis.models.mixed.tables import (
    TABLE_COLUMNS,
    add_adjusted_p,
    combine_fits,
    models_table,
    term_role,
)


def fake_fit(outcome, model, analysis, terms, p_values, interest=(), primary=None,
             n_clients=120, fallback=()):
    """A fit result as fit_planned_model writes it, with chosen terms and p values.

    The terms of interest are tested (as for the built-in models M1-M4: ``tested_terms`` of the
    spec, :meth:`analysis.models.mixed.specs.ResolvedFit.as_dict`).
    """
    return {
        "outcome": outcome,
        "model": model,
        "analysis": analysis,
        "spec": {"kind": "lmm", "terms_of_interest": list(interest), "primary_term": primary,
                 "tested_terms": list(interest)},
        "data": {"n_rows_missing": 3, "n_rows_not_completers": 0},
        "fixed": [
            {"term": term, "estimate": 1.0 + index, "se": 0.5, "df": 40.0, "t": 2.0, "p": p,
             "ci_low": 0.0, "ci_high": 2.0, "std_estimate": 0.1}
            for index, (term, p) in enumerate(zip(terms, p_values))
        ],
        "random": [
            {"group": "client_id", "term": "(Intercept)", "term2": "", "variance": 1.0,
             "sd": 1.0, "corr": None},
            {"group": "Residual", "term": "", "term2": "", "variance": 2.0, "sd": 2 ** 0.5,
             "corr": None},
        ],
        "fit": {"n_obs": 800, "n_clients": n_clients, "n_therapists": 12, "converged": True,
                "singular": False, "formula": "y ~ x + (1 | client_id)",
                "requested_formula": "y ~ x + (1 | client_id) + (1 | therapist_id)",
                "fallback_steps": list(fallback), "attempts": [], "engine": "mixedlm",
                "reml": True, "gradient_norm": 1e-6},
    }


#: The study's totals the fake fits' counts are part of: none of them a small complement.
TOTALS = StudyTotals(clients=200, therapists=30, episodes={"phq9": 180, "gad7": 180})

M2_TERMS = ["(Intercept)", "symptom_score", "alliance_within", "alliance_between_c", "session"]
M1_TERMS = ["(Intercept)", "session", "alliance_within", "alliance_between_c"]


@pytest.fixture()
def fits():
    return [
        fake_fit("phq9", "M2", "primary", M2_TERMS, [1e-9, 1e-9, 0.01, 0.02, 0.5],
                 interest=("alliance_within", "alliance_between_c"), primary="alliance_within"),
        fake_fit("gad7", "M2", "primary", M2_TERMS, [1e-9, 1e-9, 0.04, 0.03, 0.5],
                 interest=("alliance_within", "alliance_between_c"), primary="alliance_within"),
        fake_fit("phq9", "M1", "primary", M1_TERMS, [1e-9, 1e-9, 0.01, 0.5],
                 interest=("alliance_within", "alliance_between_c"), fallback=["drop_therapist"]),
        fake_fit("phq9", "M2", "subscale_task", [
            "(Intercept)", "symptom_score", "alliance_task_within", "alliance_task_between_c",
            "session"], [1e-9, 1e-9, 0.2, 0.3, 0.5],
            interest=("alliance_task_within", "alliance_task_between_c"),
            primary="alliance_task_within", n_clients=8),
        fake_fit("phq9", "M2", "ml", M2_TERMS, [1e-9, 1e-9, 0.011, 0.021, 0.5],
                 interest=("alliance_within", "alliance_between_c"), primary="alliance_within"),
    ]


def test_holm_over_primary_tests_and_bh_over_the_other_terms(fits):
    models = models_table(fits)
    primary = models.loc[models["analysis"] == "primary"].set_index(["outcome", "model", "term"])
    # Holm over p = 0.01 (phq9) and 0.04 (gad7): 0.02 and 0.04
    assert primary.loc[("phq9", "M2", "alliance_within"), "p_holm"] == pytest.approx(0.02)
    assert primary.loc[("gad7", "M2", "alliance_within"), "p_holm"] == pytest.approx(0.04)
    # BH over the 4 other terms of interest: p = 0.02, 0.03, 0.01, 0.5 -> ranks 2, 3, 1, 4
    assert primary.loc[("phq9", "M1", "alliance_within"), "p_bh"] == pytest.approx(0.04)
    assert primary.loc[("phq9", "M2", "alliance_between_c"), "p_bh"] == pytest.approx(0.04)
    assert primary.loc[("gad7", "M2", "alliance_between_c"), "p_bh"] == pytest.approx(0.04)
    assert primary.loc[("phq9", "M1", "alliance_between_c"), "p_bh"] == pytest.approx(0.5)
    # primary tests are not in the BH family; other terms are in neither
    assert np.isnan(primary.loc[("phq9", "M2", "alliance_within"), "p_bh"])
    assert primary.loc[("phq9", "M2", "session"), ["p_holm", "p_bh"]].isna().all()
    # raw p kept
    assert primary.loc[("gad7", "M2", "alliance_within"), "p"] == 0.04


def test_each_sensitivity_analysis_is_its_own_family(fits):
    models = models_table(fits)
    ml = models.loc[(models["analysis"] == "ml") & (models["term"] == "alliance_within")]
    # the only primary test in the ml analysis: Holm leaves it unchanged
    assert ml["p_holm"].iloc[0] == pytest.approx(0.011)
    task = models.loc[models["term"] == "alliance_task_within"]
    assert bool(task["primary_test"].iloc[0]) and task["p_holm"].iloc[0] == pytest.approx(0.2)


def test_add_adjusted_p_ignores_missing_p():
    frame = pd.DataFrame({"analysis": ["primary"] * 3, "p": [0.01, np.nan, 0.03],
                          "family": ["secondary"] * 3})
    out = add_adjusted_p(frame)
    # BH over the two present p values: 0.01 * 2 / 1 = 0.02 and 0.03 * 2 / 2 = 0.03
    assert out["p_bh"].iloc[0] == pytest.approx(0.02)
    assert out["p_bh"].iloc[2] == pytest.approx(0.03)
    assert np.isnan(out["p_bh"].iloc[1])


def test_tables_have_documented_columns_and_sorted_rows(fits):
    tables = combine_fits(fits, [], min_cell=10, totals=TOTALS)
    for name, columns in TABLE_COLUMNS.items():
        assert list(tables[name].columns) == columns, name
    models = tables["models"]
    keys = list(dict.fromkeys(zip(models["outcome"], models["model"], models["analysis"])))
    assert keys == [("gad7", "M2", "primary"), ("phq9", "M1", "primary"),
                    ("phq9", "M2", "primary"), ("phq9", "M2", "ml"),
                    ("phq9", "M2", "subscale_task")]
    # terms stay in formula order
    first = models.loc[(models["outcome"] == "gad7")]
    assert list(first["term"]) == M2_TERMS
    fit_table = tables["model_fit"].set_index(["outcome", "model", "analysis"])
    assert fit_table.loc[("phq9", "M1", "primary"), "fallback_steps"] == "drop_therapist"
    assert fit_table.loc[("phq9", "M2", "primary"), "fallback_steps"] == ""
    assert "attempts" not in tables["model_fit"]


def test_small_client_counts_are_suppressed(fits):
    models = combine_fits(fits, [], min_cell=10, totals=TOTALS)["models"]
    counts = models.groupby("analysis")["n_clients"].first()
    assert counts["subscale_task"] == "<10"
    assert counts["primary"] == "120"
    assert set(models["n_therapists"]) == {"12"}


def test_counts_whose_complement_in_a_study_total_is_small_are_hidden(fits):
    # 120 of phq9's 122 episodes (2 left out), 12 of 13 therapists (1 left out); gad7's 120
    # clients are part of 200 episodes and clients: shown
    totals = StudyTotals(clients=200, therapists=13, episodes={"phq9": 122, "gad7": 200})
    tables = combine_fits(fits, [], min_cell=10, totals=totals)
    models = tables["models"].drop_duplicates(["outcome", "model", "analysis"]).set_index(
        ["outcome", "model", "analysis"])
    assert models.loc[("phq9", "M2", "primary"), "n_clients"] == ">112"
    assert models.loc[("gad7", "M2", "primary"), "n_clients"] == "120"
    assert models.loc[("phq9", "M2", "subscale_task"), "n_clients"] == "<10"
    assert set(models["n_therapists"]) == {">3"}
    fit_table = tables["model_fit"].set_index(["outcome", "model", "analysis"])
    assert fit_table.loc[("phq9", "M2", "primary"), "n_clients"] == ">112"
    assert set(fit_table["n_therapists"]) == {">3"}
    # the unpublished counts (the data flow's input) stay exact
    assert set(tables["fit_counts"]["n_clients"]) == {120, 8}


def test_same_fits_in_any_order_give_identical_tables(fits, tmp_path):
    from analysis.io import write_table

    forward = combine_fits(fits, [], min_cell=10, totals=TOTALS)
    backward = combine_fits(list(reversed(fits)), [], min_cell=10, totals=TOTALS)
    for name in TABLE_COLUMNS:
        write_table(forward[name], tmp_path / "a.csv")
        write_table(backward[name], tmp_path / "b.csv")
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes(), name


def test_sensitivity_table_lines_analyses_up_by_role(fits):
    sensitivity = combine_fits(fits, [], min_cell=10, totals=TOTALS)["sensitivity"]
    within = sensitivity.loc[(sensitivity["outcome"] == "phq9")
                             & (sensitivity["role"] == "alliance_within")]
    assert list(within["analysis"]) == ["primary", "ml", "subscale_task"]
    assert list(within["term"]) == ["alliance_within", "alliance_within",
                                    "alliance_task_within"]
    # models run in one analysis only (M1 here, gad7 M2) are not repeated there
    assert not ((sensitivity["model"] == "M1").any())
    assert term_role("alliance_goal_between_c", "subscale_goal") == "alliance_between_c"
    assert term_role("alliance_within", "primary") == "alliance_within"


def test_engine_agreement_rows_drop_per_term_details():
    check = {"outcome": "phq9", "model": "M2", "analysis": "primary", "engine": "statsmodels",
             "formula": "f", "expressible": True, "reason": "", "n_clients": 40, "n_terms": 5,
             "max_abs_diff": 1e-6, "max_rel_diff": 2e-6, "max_abs_se_diff": 1e-3,
             "max_rel_se_diff": 0.01, "flag": False, "se_flag": True, "tolerance": 1e-3,
             "terms": [{"term": "x"}]}
    table = combine_fits([], [check], min_cell=10, totals=TOTALS)["engine_agreement"]
    assert len(table) == 1 and "terms" not in table
    assert table["flag"].iloc[0] == False  # noqa: E712
