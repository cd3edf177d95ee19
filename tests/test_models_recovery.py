"""Parameter recovery of the primary model on studies simulated through the whole pipeline.

The quick version of ``make validate`` (workflow/validation/, 500 datasets per scenario, coverage
band [0.925, 0.975]): fewer datasets, so a wider coverage band, set by the Monte Carlo error. The
binomial SE of a coverage of 0.95 over n datasets is sqrt(0.95 * 0.05 / n): 0.034 for n = 40, so
the band here is 0.95 +- 3 SE = [0.85, 1.0] (an exactly calibrated interval falls outside it with
probability 0.003). The bias criterion stays at 10% of the true effect, about 2.5 Monte Carlo SEs
of the mean estimate at n = 40. The study must also be able to fail: deliberately biased
estimators (a 20% shrinkage, halved SEs) run on the same datasets and are flagged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.models import recovery

N_DATASETS = 40
N_LATENT = 20
NOMINAL = 0.95
CI_SE = math.sqrt(NOMINAL * (1 - NOMINAL) / N_DATASETS)
CI_BAND = (round(NOMINAL - 3 * CI_SE, 2), 1.0)  # (0.85, 1.0)


@pytest.fixture(scope="module")
def settings():
    return recovery.recovery_settings(recovery._shipped_study(), ("phq9", "gad7"))


@pytest.fixture(scope="module")
def observed_datasets(settings):
    """Simulated studies of the observed scenario (80 clients, 10 therapists), made once."""
    cache: dict[int, tuple[pd.DataFrame, dict]] = {}

    def make(seed: int, n_clients: int, n_therapists: int):
        if seed not in cache:
            cache[seed] = recovery.simulate_derived(settings, recovery.SCENARIOS["observed"],
                                                    seed, n_clients, n_therapists)
        return cache[seed]

    return make


# M2 fits by (dataset, outcome): the biased estimators below distort these instead of refitting.
_FITS: dict[tuple[int, str], dict] = {}


def _fitted(derived, fit):
    key = (id(derived), fit.outcome)
    if key not in _FITS:
        _FITS[key] = recovery.estimate_within(derived, fit)
    return dict(_FITS[key])


@pytest.fixture(scope="module")
def replicates(settings, observed_datasets):
    # raw exports -> ingest -> score -> derive -> M2, as the pipeline does it
    return recovery.recovery_replicates(N_DATASETS, first_seed=1, settings=settings,
                                        make_dataset=observed_datasets, estimator=_fitted)


def test_band_follows_from_the_monte_carlo_error():
    assert CI_BAND == (0.85, 1.0)
    assert recovery.false_failure_probability(N_DATASETS, CI_BAND) < 0.01
    # make validate's band and size (workflow/validation/config.yaml)
    assert recovery.COVERAGE_RANGE == (0.925, 0.975)
    assert recovery.false_failure_probability(200) == pytest.approx(0.071, abs=0.001)
    assert recovery.false_failure_probability(500) == pytest.approx(0.010, abs=0.001)


def test_m2_within_alliance_ci_covers_the_truth_and_is_unbiased(replicates):
    summary = recovery.summarise_recovery(replicates, coverage_range=CI_BAND).set_index("outcome")
    assert set(summary.index) == {"phq9", "gad7"}
    assert (summary["n_datasets"] == N_DATASETS).all()
    for outcome, row in summary.iterrows():
        assert CI_BAND[0] <= row["coverage"] <= CI_BAND[1], (outcome, row["coverage"])
        assert abs(row["relative_bias"]) < recovery.MAX_RELATIVE_BIAS, (outcome, row["bias"])
        # the SEs match the spread of the estimates (the SD's own MC error is about 11% here)
        assert 0.75 < row["se_ratio"] < 1.35, (outcome, row["se_ratio"])
        assert row["passed"] and row["gates"]
        assert row["expected_attenuation"] == 1.0
    assert recovery.recovery_verdict(summary.reset_index())
    assert replicates["converged"].all()
    assert not replicates["singular"].any()


def _shrunk(derived, fit):
    # 20% towards zero, interval moved with the estimate
    result = _fitted(derived, fit)
    shift = -0.2 * result["estimate"]
    return {**result, "estimate": result["estimate"] + shift,
            "ci_low": result["ci_low"] + shift, "ci_high": result["ci_high"] + shift}


def _overconfident(derived, fit):
    # the right estimate with half its SE (and a correspondingly narrow interval)
    result = _fitted(derived, fit)
    half_width = (result["ci_high"] - result["ci_low"]) / 4
    return {**result, "se": result["se"] / 2, "ci_low": result["estimate"] - half_width,
            "ci_high": result["estimate"] + half_width}


@pytest.mark.parametrize("estimator, failing", [(_shrunk, "bias"), (_overconfident, "coverage")])
def test_the_study_fails_a_biased_estimator(settings, observed_datasets, replicates, estimator,
                                            failing):
    # the same datasets as the passing run above: only the estimator differs (with 20 of them,
    # halved SEs still covered at least 17 times for one outcome: too few to tell 0.68 from 0.95)
    biased = recovery.recovery_replicates(N_DATASETS, first_seed=1, settings=settings,
                                          make_dataset=observed_datasets, estimator=estimator)
    summary = recovery.summarise_recovery(biased, coverage_range=CI_BAND)
    assert not summary["passed"].any(), summary
    assert not recovery.recovery_verdict(summary)
    text = recovery.format_summary(summary, CI_BAND)
    assert text.endswith("Recovery study: FAILED")
    honest = recovery.summarise_recovery(replicates, coverage_range=CI_BAND).set_index("outcome")
    for row in summary.itertuples():
        if failing == "bias":
            # towards zero: a positive bias for a negative effect, beyond the 10% allowed
            assert abs(row.relative_bias) > recovery.MAX_RELATIVE_BIAS
            assert row.estimate_ratio < 0.9
            honest_mean = honest.loc[row.outcome, "mean_estimate"]
            assert row.relative_bias == pytest.approx(
                (0.8 * honest_mean - row.truth) / abs(row.truth), abs=1e-9)
        else:
            assert row.coverage < CI_BAND[0]
            assert row.se_ratio < 0.7


@pytest.fixture(scope="module")
def latent_replicates(settings):
    return recovery.recovery_replicates(N_LATENT, first_seed=1, settings=settings,
                                        scenario="latent")


def test_latent_alliance_shows_the_attenuation_the_reliability_predicts(latent_replicates):
    summary = recovery.summarise_recovery(latent_replicates).set_index("outcome")
    for outcome, row in summary.iterrows():
        assert not row["gates"]
        # clearly attenuated: well over 3 Monte Carlo SEs towards zero
        assert row["bias"] * np.sign(-row["truth"]) > 3 * row["bias_mcse"], (outcome, row)
        assert not row["passed"]
        # by about the within-client reliability of the WAI-SR score (predicted from the
        # registry's .91 and the data, and realised in the generator)
        assert 0.6 < row["expected_attenuation"] < 0.85
        assert abs(row["expected_attenuation"] - row["realised_attenuation"]) < 0.05
        assert abs(row["mean_estimate"] - row["expected_estimate"]) < 3 * row["bias_mcse"] + 0.05
    text = recovery.format_summary(recovery.summarise_recovery(latent_replicates))
    assert "expected attenuation from the alliance reliability" in text
    assert "does not gate the verdict" in text


def test_expected_attenuation_is_the_within_client_reliability():
    # A = T + e: the within-client slope of T on A is var(T_w) / var(A_w)
    rng = np.random.default_rng(3)
    clients, sessions = 3000, 6
    level = np.repeat(rng.normal(4, 0.45, clients), sessions)
    true = level + rng.normal(0, 0.25, clients * sessions)
    total_var = 0.45**2 + 0.25**2
    reliability = 0.91
    error = rng.normal(0, math.sqrt(total_var * (1 - reliability) / reliability), true.size)
    frame = pd.DataFrame({"client_id": np.repeat(np.arange(clients), sessions),
                          "session": np.tile(np.arange(1, sessions + 1), clients),
                          "alliance_score": true + error})
    frame["alliance_within"] = frame["alliance_score"] - frame.groupby("client_id")[
        "alliance_score"].transform("mean")
    true_within = true - pd.Series(true).groupby(frame["client_id"]).transform("mean").to_numpy()
    realised = float(np.sum(frame["alliance_within"] * true_within)
                     / np.sum(frame["alliance_within"] ** 2))
    expected = recovery.expected_within_attenuation(frame, reliability)
    assert expected == pytest.approx(realised, abs=0.02)
    assert 0.6 < expected < 0.8  # far below the reliability of .91
    assert math.isnan(recovery.expected_within_attenuation(frame, None))


def test_summary_applies_the_criteria():
    rows = pd.DataFrame(
        {
            "outcome": ["phq9"] * 4,
            "truth": [-1.0] * 4,
            "estimate": [-1.0, -1.2, -0.8, -1.4],
            "se": [0.2] * 4,
            "covered": [True, True, True, False],
            "fallback_steps": ["", "", "drop_therapist", ""],
        }
    )
    summary = recovery.summarise_recovery(rows).iloc[0]
    assert summary["scenario"] == "observed" and summary["gates"]
    assert summary["coverage"] == 0.75
    assert summary["coverage_mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert summary["bias"] == pytest.approx(-0.1)
    assert summary["relative_bias"] == pytest.approx(-0.1)
    assert summary["bias_mcse"] == pytest.approx(np.std([-1.0, -1.2, -0.8, -1.4], ddof=1) / 2)
    assert summary["share_fallback"] == 0.25
    assert not summary["passed"]
    # a 91% interval no longer passes (the band was 0.90-0.99)
    rows = pd.DataFrame({"outcome": "phq9", "truth": -1.0, "estimate": -1.0, "se": 0.2,
                         "covered": [True] * 91 + [False] * 9, "fallback_steps": ""})
    assert not recovery.summarise_recovery(rows).iloc[0]["passed"]
    rows["covered"] = [True] * 95 + [False] * 5
    assert recovery.summarise_recovery(rows).iloc[0]["passed"]


def test_only_gating_scenarios_decide_the_verdict():
    base = {"truth": -1.0, "se": 0.2, "fallback_steps": "", "outcome": "phq9"}
    rows = pd.concat([
        pd.DataFrame({**base, "scenario": "observed", "estimate": -1.0,
                      "covered": [True] * 95 + [False] * 5}),
        pd.DataFrame({**base, "scenario": "latent", "estimate": -0.7,
                      "covered": [True] * 60 + [False] * 40}),
    ])
    summary = recovery.summarise_recovery(rows).set_index("scenario")
    assert summary.loc["observed", "passed"] and not summary.loc["latent", "passed"]
    assert recovery.recovery_verdict(summary.reset_index())
    rows.loc[rows["scenario"] == "observed", "estimate"] = -0.8
    assert not recovery.recovery_verdict(recovery.summarise_recovery(rows))


def test_batches_and_their_settings(settings):
    assert recovery.plan_batches(7, 3) == [(0, 3), (3, 3), (6, 1)]
    assert recovery.plan_batches(6, 3) == [(0, 3), (3, 3)]
    batch = recovery.BatchSettings(scenario="latent", first=3, count=3, seed=10, clients=80,
                                   therapists=10, max_sessions=16, recovery=settings)
    assert recovery.BatchSettings.from_params(batch.params()) == batch
    assert set(settings.fits) == {"phq9", "gad7"}
    assert settings.alliance_reliability == 0.91
    assert all(fit["model"] == "M2" and fit["analysis"] == "primary"
               for fit in settings.fits.values())


def test_command_line_prints_the_summary_and_verdict(capsys, tmp_path):
    status = recovery.main(["--datasets", "1", "--clients", "40", "--therapists", "5",
                            "--scenarios", "observed"])
    out = capsys.readouterr().out
    assert "coverage" in out and "relative_bias" in out
    # one study cannot give a coverage inside [0.925, 0.975]: the verdict is a failure
    assert "Recovery study: FAILED" in out and status == 1
    # --check summarises a workflow's combined table
    rows = pd.DataFrame({"scenario": "observed", "seed": range(100), "outcome": "phq9",
                         "truth": -1.0, "estimate": -1.0, "se": 0.2, "ci_low": -1.4,
                         "ci_high": -0.6, "covered": [True] * 95 + [False] * 5,
                         "converged": True, "singular": False, "fallback_steps": "",
                         "expected_attenuation": 1.0, "realised_attenuation": np.nan})
    rows.to_csv(tmp_path / "recovery.csv", index=False)
    assert recovery.main(["--check", str(tmp_path / "recovery.csv")]) == 0
    assert capsys.readouterr().out.rstrip().endswith("Recovery study: PASSED")
