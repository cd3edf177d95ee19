"""Inputs for every figure family of the figure table, from one simulated study of any size.

:func:`figure_inputs` builds the stage files the figures read (``derived``, ``sessions``,
``scores``, ``episodes``, the Jacobson-Truax parameters, ``models.csv``, the data-flow table,
the engagement, RI-CLPM and multiverse tables) from :func:`model_fixtures.simulate_derived`, and the fit files of the models the figures need:
fitted for real (small studies, through the fit job's own function) or, for large ones, built
cheaply with numpy through the same summary functions the fit job uses
(:mod:`analysis.models.mixed.diagnostics`), so no mixed model is fitted on 50,000 clients.
:func:`family_inputs` gives one family's inputs by input name, as the figure job passes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.figures.table import FIT_INPUT, FigureFamily
from analysis.models.mixed.diagnostics import random_effect_summaries, residual_summary
from model_fixtures import episodes_from_derived, make_study, simulate_derived

OUTCOMES = ("phq9", "gad7")


def make_models(outcomes=OUTCOMES) -> pd.DataFrame:
    """A ``models.csv``-like table with alliance terms of M1-M4 and sensitivity analyses."""
    rows = []
    for outcome in outcomes:
        for model, analysis, term, estimate in (
            ("M1", "primary", "alliance_within", -0.8),
            ("M1", "primary", "alliance_between_c", -1.9),
            ("M2", "primary", "symptom_score", 0.5), ("M2", "primary", "alliance_within", -1.4),
            ("M2", "primary", "alliance_between_c", -2.1),
            ("M2", "detrended", "alliance_within_detrended", -1.2),
            ("M2", "subscale_task", "alliance_task_within", -1.1),
            ("M3", "primary", "alliance_score", 0.6), ("M3", "primary", "symptom_within", -0.01),
            ("M4", "primary", "alliance_early", -2.5),
        ):
            rows.append({"outcome": outcome, "model": model, "analysis": analysis, "term": term,
                         "estimate": estimate, "se": 0.4, "ci_low": estimate - 0.78,
                         "ci_high": estimate + 0.78, "p_holm": 0.01 if (model, term) == (
                             "M2", "alliance_within") and analysis == "primary" else np.nan,
                         "p_bh": 0.2})
    return pd.DataFrame(rows)


def make_flow(n_clients: int) -> pd.DataFrame:
    return pd.DataFrame({
        "stage": ["read", "rejected", "kept", "registry", "analysis", "analysis", "episodes"],
        "source": ["sessions", "sessions", "sessions", "sessions", "phq9 M2 primary",
                   "gad7 M2 primary", "phq9"],
        "unit": ["rows", "rows", "rows", "clients", "clients", "clients",
                 "episodes_with_outcome"],
        "reason": ["", "duplicate row", "", "", "", "", ""],
        "count": [str(8 * n_clients + 7), "7", str(8 * n_clients), str(n_clients),
                  str(n_clients), "<10", str(n_clients)],
    })


def sessions_and_scores(derived: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    first = derived["outcome"] == OUTCOMES[0]
    sessions = derived.loc[first, ["client_id", "therapist_id", "session", "day"]]
    parts = [derived.loc[:, ["outcome", "client_id", "session", "symptom_score"]].rename(
        columns={"outcome": "instrument", "symptom_score": "score"})]
    parts.append(derived.loc[first, ["client_id", "session", "alliance_score"]].rename(
        columns={"alliance_score": "score"}).assign(instrument="wai_sr"))
    scores = pd.concat(parts, ignore_index=True)
    scores["score"] = scores["score"].round()
    scores.loc[scores["instrument"] == "wai_sr", "score"] = np.clip(
        parts[1]["score"].to_numpy(), 1, 5)
    scores["instrument"] = scores["instrument"].astype("string")
    scores["n_items_missing"] = (np.arange(len(scores)) % 10 == 0).astype("int64")
    # every 7th administration not given
    return sessions.reset_index(drop=True), scores.loc[np.arange(len(scores)) % 7 != 3]


def jacobson_truax_parameters(cutoff_below_floor: bool) -> pd.DataFrame:
    # gad7's cut-off below the scale (a = M1 - 2 SD1 < 0 in a small, spread-out sample)
    return pd.DataFrame({
        "outcome": list(OUTCOMES), "s_diff": [3.0, 2.4], "rci_criterion": [1.96, 1.96],
        "reliable_change_points": [5.88, 4.7],
        "cutoff": [10.0, -1.8 if cutoff_below_floor else 8.0], "cutoff_formula": ["a", "a"],
    })


def synthetic_fit(model: str, n_obs: int, n_clients: int, n_therapists: int,
                  seed: int = 5) -> dict[str, Any]:
    """A fit file's content with diagnostics built with numpy (no model is fitted)."""
    rng = np.random.default_rng(seed)
    fitted = rng.normal(12, 4, n_obs)
    residuals = rng.standard_t(8, n_obs) * 2.2
    therapists = np.sort(rng.normal(0, 1.0, n_therapists))
    diagnostics = {
        "n_obs": n_obs,
        "residuals": residual_summary(fitted, residuals, 2.2),
        "random_effects": random_effect_summaries({
            "client_id": {"(Intercept)": rng.normal(0, 1.2, n_clients)},
            "therapist_id": {"(Intercept)": therapists}}),
        "therapists": [{"group": "therapist_id", "term": "(Intercept)", "n": n_therapists,
                        "estimate": therapists.tolist(),
                        "se": rng.uniform(0.1, 0.6, n_therapists).tolist()}],
    }
    return {"model": model, "analysis": "primary", "diagnostics": diagnostics,
            "fit": {"formula": "symptom_next ~ symptom_score + alliance_within + "
                               "alliance_between_c + session + (1 | client_id) + "
                               "(1 | therapist_id)"},
            "icc": [{"icc_therapist": 0.052}] if model == "R3" else []}


def fitted_fits(study, derived: pd.DataFrame, models=("M2", "R3")) -> dict:
    """Fit files of the figures' models, fitted for real (the fit job's own function)."""
    from analysis.models.mixed.fitting import fit_planned_model

    return {(fit.outcome, fit.model): fit_planned_model(derived, fit) for fit in study.fits
            if fit.model in models and fit.analysis == "primary"}


def engagement_tables(derived: pd.DataFrame, fit_models: bool) -> dict[str, pd.DataFrame]:
    """The engagement figures' inputs: through the stages' own functions for small studies;
    for large ones (``fit_models`` False) without fitting a mixed model (the therapist-patient
    slope and the sudden gains' course made with numpy)."""
    from analysis.engagement.dropout_stage import dropout_stage
    from analysis.engagement.sudden_gains_stage import combine_sudden_gains, sudden_gains_outcome
    from analysis.engagement.therapist_patient import client_outcome_table, therapist_patient_rows
    from analysis.engagement.therapist_patient_stage import (combine_therapist_patient,
                                                             fit_therapist_patient_outcome)
    from analysis.settings import DropoutSettings, SuddenGainSettings

    sessions = derived.loc[derived["outcome"] == OUTCOMES[0],
                           ["client_id", "therapist_id", "session", "day"]]
    km = dropout_stage(sessions, sessions.assign(status="attended"), derived,
                       DropoutSettings())["dropout_km"]
    parameters = pd.DataFrame({"outcome": list(OUTCOMES), "sd_first": [4.5, 3.6],
                               "r_xx": [0.84, 0.84]})
    if fit_models:
        therapist = combine_therapist_patient(
            [fit_therapist_patient_outcome(derived, outcome) for outcome in OUTCOMES], 10)
        gains = SuddenGainSettings(directions={outcome: "lower_is_better"
                                               for outcome in OUTCOMES})
        course = combine_sudden_gains([sudden_gains_outcome(derived, parameters, outcome, gains)
                                       for outcome in OUTCOMES], 10)["sudden_gains_course"]
    else:
        points, tables = [], []
        for outcome in OUTCOMES:
            rows, _, _ = therapist_patient_rows(client_outcome_table(
                derived[derived["outcome"] == outcome]))
            rows = rows.assign(change=rows["end_score"] - rows["start_score"])
            grouped = rows.groupby("therapist_id")
            points.append(pd.DataFrame({
                "outcome": outcome, "n_clients": grouped.size(),
                "alliance_mean": grouped["alliance_mean"].mean(),
                "mean_change": grouped["change"].mean()}).reset_index())
            tables.append(pd.DataFrame({"outcome": outcome, "term": ["alliance_therapist"],
                                        "estimate": [-1.5], "status": ["estimated"],
                                        "reason": [""]}))
        therapist = {"therapist_patient_points": pd.concat(points, ignore_index=True),
                     "therapist_patient_alliance": pd.concat(tables, ignore_index=True)}
        offsets = np.arange(-2, 4)
        course = pd.DataFrame([
            {"outcome": outcome, "measure": measure, "offset": offset,
             "mean": (14.0 - 6 * (offset > 0)) if measure == "symptoms" else 3.9 + 0.05 * offset,
             "se": 0.3, "n_gains": len(derived) // 40}
            for outcome in OUTCOMES for measure in ("symptoms", "alliance")
            for offset in offsets])
    return {"dropout_km": km, **therapist, "sudden_gains_course": course}


def riclpm_tables(derived: pd.DataFrame, fit_models: bool) -> dict[str, pd.DataFrame]:
    """The RI-CLPM figure's inputs (``riclpm``, ``riclpm_fit``): fitted by the stage's own
    functions for small studies (the model may not be identified there: the figure says so);
    for large ones (``fit_models`` False) the four lagged paths written out with numpy."""
    from analysis.models.panel.riclpm_stage import (FIT_COLUMNS, LAGGED_PATHS, combine_riclpm,
                                              fit_riclpm_outcome)
    from analysis.privacy import StudyTotals
    from analysis.settings import RiclpmSettings

    if fit_models:
        return combine_riclpm([fit_riclpm_outcome(derived, outcome, RiclpmSettings(sessions=4))
                               for outcome in OUTCOMES], totals=StudyTotals())
    rng = np.random.default_rng(2)
    paths, fits = [], []
    for outcome in OUTCOMES:
        for version, waves in (("constrained", [None]), ("free", [2, 3, 4])):
            for label in LAGGED_PATHS:
                for wave in waves:
                    estimate = float(rng.normal(0.1, 0.1))
                    for step in ([2, 3, 4] if wave is None else [wave]):
                        paths.append({"outcome": outcome, "version": version, "label": label,
                                      "wave": step, "estimate": estimate, "se": 0.05,
                                      "ci_lower": estimate - 0.1, "ci_upper": estimate + 0.1,
                                      "p": 0.04, "std_estimate": estimate / 2 + 0.01 * step})
            fits.append({**dict.fromkeys(FIT_COLUMNS), "outcome": outcome, "version": version,
                         "status": "fitted", "reason": "", "converged": True,
                         "admissible": True, "wave_sessions": "each client's sessions 1 to 4"})
    return {"riclpm": pd.DataFrame(paths), "riclpm_fit": pd.DataFrame(fits)}


def multiverse_table() -> pd.DataFrame:
    """The specification curves' input (``multiverse``): every specification of the default
    choices, combined by the stage's own function from results made up with numpy (a tenth of
    them duplicates of the one before, a few not estimable)."""
    from analysis.models.multiverse.specifications import (enumerate_specifications, primary_choices,
                                            resolve_choices)
    from analysis.models.multiverse.summary import combine_multiverse
    from analysis.settings import MultiverseSummarySettings

    specifications = enumerate_specifications(resolve_choices(None, OUTCOMES), primary_choices(1))
    rng = np.random.default_rng(4)
    results = []
    for number, spec in enumerate(specifications):
        estimate = float(rng.normal(-0.8, 0.6))
        fitted = number % 17 != 5
        results.append({
            "specification": spec.as_dict(),
            "status": "fitted" if fitted else "not_estimable",
            "reason": "" if fitted else "too few clients",
            "estimate": estimate if fitted else None, "se": 0.3, "p": 0.01 if fitted else None,
            "ci_low": estimate - 0.6, "ci_high": estimate + 0.6,
            "std_estimate": estimate / 8 if fitted else None,
            # one final model on the same data as the specification before: a duplicate
            "fingerprint": f"model-{number - (number % 10 == 9)}" if fitted else ""})
    settings = MultiverseSummarySettings(alpha=0.05, min_cell_count=10,
                                         expected_signs=dict.fromkeys(OUTCOMES, -1))
    return combine_multiverse(results, settings)


def power_table() -> pd.DataFrame:
    """A ``power.csv``-like table: three designs, two true effects, both estimators."""
    from analysis.power.summary import POWER_COLUMNS, wilson_interval

    rows = []
    for outcome in OUTCOMES:
        for therapists in (20, 30, 40):
            for kind, effect in (("estimate", -1.5), ("smallest_effect", -0.5)):
                for estimator, base in (("DPM", 0.4), ("M2", 0.6)):
                    rejected = min(100, int(100 * base * therapists / 40 * abs(effect)))
                    low, high = wilson_interval(rejected, 100)
                    rows.append({
                        "outcome": outcome, "design": f"t{therapists}_c10_s12_dobs",
                        "design_therapists": therapists, "design_clients_per_therapist": 10,
                        "design_clients": 10 * therapists, "design_sessions": 12,
                        "dropout_hazard": 0.14, "dropout_observed": True, "effect_kind": kind,
                        "effect": effect, "estimator": estimator, "term": "alliance_lagged",
                        "n_sims": 100, "n_converged": 100, "n_rejected": rejected,
                        "power": rejected / 100, "ci_low": low, "ci_high": high,
                        "ci_method": "Wilson score 95%", "mean_estimate": effect,
                        "mean_se": 0.5, "alpha": 0.05})
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def figure_inputs(n_clients: int = 160, n_therapists: int = 16, seed: int = 3,
                  fit_models: bool = True, max_sessions: int = 12) -> tuple[Any, dict, dict]:
    """The study, the stage files by catalogue name, and the fit files by (outcome, model)."""
    study = make_study(run=["M2", "R3"])
    derived, _ = simulate_derived(n_clients, n_therapists, seed=seed, outcomes=OUTCOMES,
                                  max_sessions=max_sessions)
    sessions, scores = sessions_and_scores(derived)
    tables = {
        "derived": derived, "sessions": sessions, "scores": scores,
        "episodes": episodes_from_derived(derived),
        "jacobson_truax_parameters": jacobson_truax_parameters(n_clients < 100),
        "models": make_models(), "data_flow": make_flow(n_clients),
        **engagement_tables(derived, fit_models),
        **riclpm_tables(derived, fit_models),
        "multiverse": multiverse_table(),
        "power": power_table(),
    }
    if fit_models:
        fits = fitted_fits(study, derived)
    else:
        n_obs = int(derived["symptom_next"].notna().sum() // len(OUTCOMES))
        fits = {(outcome, model): synthetic_fit(model, n_obs, n_clients, n_therapists)
                for outcome in OUTCOMES for model in ("M2", "R3")}
    return study, tables, fits


def family_inputs(family: FigureFamily, tables: dict, fits: dict,
                  outcome: str | None) -> dict[str, Any]:
    """One family's inputs by input name, as the figure job reads them."""
    inputs = {name: tables[entry] for name, entry in family.inputs}
    if family.model is not None:
        inputs[FIT_INPUT] = fits[(outcome, family.model)]
    return inputs
