"""The diagnostics a fit job stores for the figures (analysis.models.mixed.diagnostics).

Therapists' conditional variances are checked against mixedlm's own ``ranef(condVar=True)`` (lme4's
definition) for nested and crossed designs, with and without random slopes; the summaries are
checked by hand; and the fit job stores them for primary-analysis mixed models only, in a size
that does not grow with the number of observations.
"""

from __future__ import annotations

import json

import mixedlm
import numpy as np
import pandas as pd
import pytest

from analysis.models.mixed import diagnostics
from analysis.models.mixed.fitting import fit_planned_model
from analysis.models.mixed.specs import ResolvedFit
from model_fixtures import make_study, simulate_derived


def design(n_clients=240, n_therapists=12, sessions=6, crossed=False, seed=2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    client = np.repeat(np.arange(n_clients), sessions)
    session = np.tile(np.arange(sessions), n_clients)
    therapist = rng.integers(0, n_therapists, n_clients)[client]
    if crossed:  # clients see a second therapist for their later sessions
        therapist = np.where(session >= sessions // 2, (therapist + 1) % n_therapists, therapist)
    y = (10 + rng.normal(0, 2, n_clients)[client] + rng.normal(0, 1, n_therapists)[therapist]
         + rng.normal(0, 0.3, n_clients)[client] * session + rng.normal(0, 3, client.size))
    return pd.DataFrame({"y": y, "session": session, "client_id": client.astype(str),
                         "therapist_id": therapist.astype(str)})


@pytest.mark.parametrize("formula, crossed", [
    ("y ~ session + (1 | client_id) + (1 | therapist_id)", False),
    ("y ~ session + (1 | client_id) + (1 | therapist_id)", True),
    ("y ~ session + (1 + session | client_id) + (1 | therapist_id)", False),
    ("y ~ session + (1 | client_id) + (0 + session | client_id) + (1 + session | therapist_id)",
     False),
], ids=["nested", "crossed", "client slope", "uncorrelated client, therapist slope"])
def test_conditional_variances_match_mixedlm(formula, crossed):
    model = mixedlm.lmer(formula, design(crossed=crossed))
    reference = model.ranef(condVar=True).condVar
    for group in ("therapist_id", "client_id"):
        mine = diagnostics.conditional_variances(model, group)
        assert set(mine) == set(reference[group])
        for term, values in mine.items():
            np.testing.assert_allclose(values, reference[group][term], rtol=1e-8, atol=1e-12)


def test_therapist_effects_are_sorted_modes_without_pseudonyms():
    model = mixedlm.lmer("y ~ session + (1 | client_id) + (1 | therapist_id)", design())
    (record,) = diagnostics.therapist_effects(model)
    assert record["term"] == "(Intercept)" and record["n"] == 12
    estimate = np.array(record["estimate"])
    assert np.all(np.diff(estimate) >= 0)
    modes = np.sort(np.asarray(model.ranef()["therapist_id"]["(Intercept)"]))
    np.testing.assert_allclose(estimate, modes, rtol=1e-7)
    assert set(record) == {"group", "term", "n", "estimate", "se"}
    assert diagnostics.therapist_effects(
        mixedlm.lmer("y ~ session + (1 | client_id)", design())) == []


def test_quantile_summary_small_is_the_order_statistics_large_is_bounded():
    values = np.array([3.0, 1.0, 2.0, np.nan])
    summary = diagnostics.quantile_summary(values)
    assert summary == {"n": 3, "probabilities": pytest.approx([1 / 6, 0.5, 5 / 6]),
                       "quantiles": [1.0, 2.0, 3.0]}
    large = diagnostics.quantile_summary(np.random.default_rng(1).normal(size=100_000))
    assert len(large["quantiles"]) == diagnostics.N_QUANTILES
    assert large["quantiles"][diagnostics.N_QUANTILES // 2] == pytest.approx(0, abs=0.02)


def test_residual_summary_by_hand():
    rng = np.random.default_rng(3)
    fitted = rng.normal(10, 3, 1000)
    residuals = rng.normal(0, 2, 1000)
    residuals[0] = 30.0  # 15 SDs: beyond the histogram
    summary = diagnostics.residual_summary(fitted, residuals, sigma=2.0)
    histogram = summary["histogram"]
    assert sum(histogram["counts"]) + histogram["below"] + histogram["above"] == 1000
    assert histogram["above"] >= 1
    bins = summary["by_fitted"]
    assert len(bins) == diagnostics.N_FITTED_BINS
    assert [b["n"] for b in bins] == [50] * 20
    assert all(a["fitted_high"] <= b["fitted_low"] for a, b in zip(bins, bins[1:]))
    assert all(b["q05"] <= b["q25"] <= b["q50"] <= b["q75"] <= b["q95"] for b in bins)
    # few observations: fewer bins, each with at least 30
    small = diagnostics.fitted_bins(fitted[:95], residuals[:95] / 2)
    assert [b["n"] for b in small] == [32, 32, 31]


def job(derived, outcome, model, analysis="primary"):
    study = make_study(run=["M2", "R3"])
    settings = study.fit_settings(outcome, model, analysis)
    return fit_planned_model(derived, ResolvedFit.from_dict(settings["fit"]))


def test_the_fit_job_stores_diagnostics_for_primary_mixed_models():
    derived, _ = simulate_derived(120, 10, seed=5, outcomes=("phq9",))
    m2 = job(derived, "phq9", "M2")
    stored = m2["diagnostics"]
    assert set(stored) == {"n_obs", "residuals", "random_effects", "therapists"}
    assert stored["n_obs"] == m2["data"]["n_obs"]
    groups = {(summary["group"], summary["term"]) for summary in stored["random_effects"]}
    assert ("client_id", "(Intercept)") in groups
    assert stored["therapists"][0]["n"] == 10
    assert "diagnostics" in job(derived, "phq9", "R3")
    # sensitivity analyses are not drawn: no diagnostics
    assert "diagnostics" not in job(derived, "phq9", "M2", "ml")
    # plain JSON (the fit file), no pseudonym in it
    text = json.dumps(stored)
    assert not any(client in text for client in derived["client_id"].unique()[:20])


def test_diagnostics_size_does_not_grow_with_observations():
    sizes = []
    for n_clients in (400, 1600):
        model = mixedlm.lmer("y ~ session + (1 | client_id) + (1 | therapist_id)",
                             design(n_clients=n_clients, n_therapists=12))
        stored = diagnostics.model_diagnostics(model)
        sizes.append(len(json.dumps(stored)))
    # four times the clients and rows, the same number of therapists: about the same size
    assert sizes[1] < 1.2 * sizes[0]
