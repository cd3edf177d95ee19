"""Multiple-testing families: primary (Holm) and secondary (BH) tests, descriptive terms in none."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.models.mixed.tables import add_adjusted_p, models_table
from analysis.study import study_from_dict


def fit(model: str, outcome: str, terms: dict[str, float], study) -> dict:
    spec = study.fit(outcome, model, "primary").as_dict()
    return {"outcome": outcome, "model": model, "analysis": "primary", "spec": spec,
            "fit": {"n_obs": 100, "n_clients": 20, "n_therapists": 5},
            "fixed": [{"term": term, "estimate": 0.1, "se": 0.1, "df": 50.0, "t": 1.0, "p": p,
                       "ci_low": -0.1, "ci_high": 0.3, "std_estimate": 0.1}
                      for term, p in terms.items()]}


def config() -> dict:
    import yaml
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml")
                          .read_text())


def test_descriptive_terms_enter_no_family_and_do_not_shift_the_others():
    study = study_from_dict(config())
    fits = [
        fit("M0", "phq9", {"(Intercept)": 1e-30, "session": 1e-12}, study),
        fit("M1", "phq9", {"(Intercept)": 1e-20, "session": 1e-9, "alliance_within": 0.03,
                           "alliance_between_c": 0.04}, study),
        fit("M2", "phq9", {"(Intercept)": 0.5, "symptom_score": 1e-40, "alliance_within": 0.035,
                           "alliance_between_c": 0.045, "session": 0.2}, study),
        fit("DPM", "phq9", {"alliance_lagged": 0.01, "symptom_lagged": 1e-50}, study),
    ]
    models = models_table(fits)
    descriptive = models[models["family"].fillna("") == ""]
    assert set(zip(descriptive["model"], descriptive["term"])) >= {
        ("M0", "session"), ("M0", "(Intercept)"), ("M1", "session"), ("M2", "symptom_score"),
        ("DPM", "symptom_lagged")}
    assert descriptive["p_bh"].isna().all() and descriptive["p_holm"].isna().all()
    secondary = models[models["family"] == "secondary"].sort_values(["model", "term"])
    # BH over exactly the four secondary alliance terms (M1's two, the conventional M2's two):
    # the near-zero growth slope (M0), the autoregression and the covariates would have lowered
    # every adjusted p had they entered the family
    expected = multipletests([0.04, 0.03, 0.045, 0.035], method="fdr_bh")[1]
    assert np.allclose(secondary["p_bh"].to_numpy(), expected)
    assert (secondary["p_bh"] > 0.04).all()  # not significant: they stay so
    primary = models[models["family"] == "primary"]
    # the primary test is the dynamic panel model's lagged alliance (METHODS 4a)
    assert list(primary["model"]) == ["DPM"]
    assert list(primary["term"]) == ["alliance_lagged"] and primary["p_holm"].iloc[0] == 0.01


def test_a_biased_family_would_be_caught():
    """The same toy vector with the M0 slope added to the family: adjusted p drop below .05."""
    with_slope = multipletests([1e-12, 0.04, 0.03, 0.045], method="fdr_bh")[1][1:]
    without = multipletests([0.04, 0.03, 0.045], method="fdr_bh")[1]
    assert (with_slope < 0.05).all() and (without >= 0.045).all()


def test_families_are_formed_from_the_family_column():
    frame = pd.DataFrame({
        "analysis": ["primary"] * 4, "p": [0.01, 0.02, 0.03, 1e-9],
        "family": ["primary", "secondary", "secondary", ""],
    })
    out = add_adjusted_p(frame)
    assert out["p_holm"].notna().tolist() == [True, False, False, False]
    assert out["p_bh"].notna().tolist() == [False, True, True, False]


def test_one_console_line_summarises_the_simplified_fits():
    from analysis.models.mixed.tables import simplification_summary

    model_fit = pd.DataFrame({"fallback_steps": ["", "drop_zero_variance", None,
                                                 "uncorrelated_slope;drop_random_slope"]})
    assert simplification_summary(model_fit).startswith("2 of 4 fits simplified their random part")
    assert simplification_summary(model_fit.iloc[[0, 2]]) == ""
