"""The RI-CLPM check as a pipeline stage (analysis.models.panel.riclpm_stage, figures.riclpm, report).

- One outcome's job fits the constrained and the free version; its tables hold every parameter
  and the fit indices, the waves used and why, and the likelihood-ratio test of free against
  constrained paths only when both fits are admissible (otherwise why not).
- The waves come from the data by default (sessions numbered from 3 need no config edit), and a
  model the data cannot identify comes with advice that would help, worked out from the data.
- Data that cannot identify the model give a result that says why (counts of people below the
  privacy threshold hidden), not a failed run; a malformed frame and a genuine bug still fail.
- The report's sentences follow the numbers (direction, CI, p), and the figure is drawn in both
  cases.
- End to end: the pipeline writes the tables, figures and report section, and a configuration
  whose waves the data cannot fill still completes, saying why.
"""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.models.panel import riclpm_stage
from analysis.models.panel.riclpm import PATH_COLUMNS
from analysis.models.panel.riclpm_stage import (
    FIT_COLUMNS,
    combine_riclpm,
    fit_riclpm_outcome,
    lagged_paths,
    suppress_counts_in_text,
)
from analysis.privacy import StudyTotals
from analysis.report.robustness import path_sentence
from analysis.settings import PanelWaveSettings, RiclpmSettings
from analysis.simulate.panel import simulate_riclpm
from conftest import run_snakemake

SCALES = {"alliance_scale": (3.9, 0.5), "symptom_scale": (14.0, 4.0)}


@pytest.fixture(scope="module")
def derived():
    frame, truth = simulate_riclpm(400, 4, seed=2, output="derived", missing_rate=0.1, **SCALES)
    return frame, truth


@pytest.fixture(scope="module")
def result(derived):
    return fit_riclpm_outcome(derived[0], "phq9", RiclpmSettings(sessions=4))


def test_both_versions_are_fitted_and_combined(result, derived):
    assert [(v["version"], v["status"]) for v in result["versions"]] == [
        ("constrained", "fitted"), ("free", "fitted")]
    tables = combine_riclpm([result], min_cell=10, totals=StudyTotals())
    paths, fit = tables["riclpm"], tables["riclpm_fit"]
    assert list(paths.columns) == ["outcome", "version", *PATH_COLUMNS]
    assert list(fit.columns) == FIT_COLUMNS
    assert set(paths["version"]) == {"constrained", "free"}
    assert fit["converged"].all() and (fit["n_waves"] == 4).all()
    cross = lagged_paths(paths, "phq9")
    forward = cross.loc[cross["path"] == "alliance_to_symptoms"]
    assert len(forward) == 3 and forward["estimate"].nunique() == 1  # constrained over waves
    truth = derived[1]["paths_in_score_units"]["cl_alliance_to_symptoms"]
    assert forward["ci_lower"].iloc[0] < truth < forward["ci_upper"].iloc[0]
    free = lagged_paths(paths, "phq9", "free")
    assert free.loc[free["path"] == "alliance_to_symptoms", "estimate"].nunique() == 3


def test_free_version_can_be_switched_off(derived):
    result = fit_riclpm_outcome(derived[0], "phq9",
                                RiclpmSettings(sessions=4, free_paths_sensitivity=False))
    assert [v["version"] for v in result["versions"]] == ["constrained"]


def test_reruns_give_identical_results(derived, result):
    again = fit_riclpm_outcome(derived[0], "phq9", RiclpmSettings(sessions=4))
    assert again == result  # no wall times in the result


def test_too_few_clients_is_a_result_not_a_failure(derived):
    frame = derived[0]
    few = frame.loc[frame["client_id"] < "c000015"]
    result = fit_riclpm_outcome(few, "phq9", RiclpmSettings(sessions=4))
    assert {v["status"] for v in result["versions"]} == {"not_identified"}
    # 15 clients: even 3 waves with equal innovations have 19 parameters; nothing can help
    assert "no setting can identify the RI-CLPM" in result["versions"][0]["reason"]
    fit = combine_riclpm([result], min_cell=20, totals=StudyTotals())["riclpm_fit"]
    assert (fit["status"] == "not_identified").all()
    assert (fit["n_clients"] == "<20").all()
    assert "15 clients" not in fit["reason"].iloc[0] and "<20 clients" in fit["reason"].iloc[0]


def test_too_many_waves_for_the_data_is_a_result(derived):
    result = fit_riclpm_outcome(derived[0], "phq9", RiclpmSettings(sessions=6))
    assert result["versions"][0]["status"] == "not_identified"
    reason = result["versions"][0]["reason"]
    assert "wave 5 (each client's session 5)" in reason
    assert "set models.riclpm.sessions to 4" in reason


def test_a_malformed_frame_still_fails(derived):
    with pytest.raises(DataError, match="symptom_score"):
        fit_riclpm_outcome(derived[0].drop(columns="symptom_score"), "phq9",
                           RiclpmSettings(sessions=4))


def test_a_genuine_bug_still_fails(derived, monkeypatch):
    import analysis.models.panel.riclpm as core

    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(core, "fit_riclpm", broken)
    with pytest.raises(TypeError, match="a bug"):
        fit_riclpm_outcome(derived[0], "phq9", RiclpmSettings(sessions=4))


def test_counts_of_people_in_reasons_are_suppressed():
    text = ("RI-CLPM panel: 16 clients have data in sessions 1-6 (3 waves: 2, 1 wave: 12); the "
            "model with 6 waves has 37 free parameters and needs at least 37 clients with two "
            "or more waves, but 9 have them; all 4 values are equal; 1 client(s) have a value")
    shown = suppress_counts_in_text(text, 10)
    assert "3 waves: <10" in shown and "1 wave: 12" in shown and "but <10 have them" in shown
    assert "all <10 values" in shown and "<10 client(s)" in shown
    assert "37 free parameters" in shown and "sessions 1-6" in shown
    # beside the study's 17 clients, "16 clients" gives the one left out back
    beside = suppress_counts_in_text(text, 10, (17,))
    assert ">7 clients have data" in beside and "1 wave: >7" in beside


@pytest.mark.parametrize("row, forward, expected", [
    ({"estimate": -1.2, "ci_lower": -2.0, "ci_upper": -0.4, "p": 0.003, "std_estimate": -0.1},
     True, "was followed by lower PHQ-9 scores (fewer symptoms)"),
    ({"estimate": 1.2, "ci_lower": 0.4, "ci_upper": 2.0, "p": 0.003, "std_estimate": 0.1},
     True, "was followed by higher PHQ-9 scores (more symptoms)"),
    ({"estimate": -0.2, "ci_lower": -1.0, "ci_upper": 0.6, "p": 0.6, "std_estimate": -0.02},
     True, "was not clearly followed"),
    ({"estimate": -0.02, "ci_lower": -0.03, "ci_upper": -0.01, "p": 0.001, "std_estimate": -0.1},
     False, "followed by a weaker alliance"),
    ({"estimate": 0.01, "ci_lower": -0.01, "ci_upper": 0.03, "p": 0.3, "std_estimate": 0.02},
     False, "not clearly followed by a different alliance"),
])
def test_sentences_follow_direction_ci_and_p(row, forward, expected):
    sentence = path_sentence(row, forward=forward, outcome_label="PHQ-9", alliance_label="WAI-SR",
                             outcome_higher_worse=True, alpha=0.05)
    assert expected in sentence
    assert "95% CI" in sentence


def test_figure_is_drawn_fitted_and_not(result, derived):
    from analysis.figures.riclpm import riclpm_figure
    from analysis.instrument_declarations import build_registry

    registry = build_registry()
    tables = combine_riclpm([result], totals=StudyTotals())
    figure = riclpm_figure(tables["riclpm"], tables["riclpm_fit"], registry["phq9"],
                           registry["wai_sr"])
    assert len(figure.axes) == 3
    few = fit_riclpm_outcome(derived[0].loc[derived[0]["client_id"] < "c000015"], "phq9",
                             RiclpmSettings(sessions=4))
    tables = combine_riclpm([few], totals=StudyTotals())
    figure = riclpm_figure(tables["riclpm"], tables["riclpm_fit"], registry["phq9"],
                           registry["wai_sr"])
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert any("could not be fitted" in text for text in texts)


# ---------------------------------------------------------------------------------------------
# End to end (the session's pipeline run)


def test_pipeline_writes_riclpm_tables_figures_and_section(pipeline_run):
    root = pipeline_run.root
    fit = pd.read_csv(root / "results/tables/riclpm_fit.csv")
    assert set(fit["outcome"]) == {"phq9", "gad7"}
    assert set(fit["version"]) == {"constrained", "free"}
    for outcome in ("phq9", "gad7"):
        for extension in ("svg", "png"):
            assert (root / f"results/figures/riclpm_{outcome}.{extension}").stat().st_size > 0
    html = (root / "results/report/index.html").read_text(encoding="utf-8")
    assert 'id="riclpm"' in html and "approximate M2" in html
    assert "a session with better alliance than usual" in html


def test_pipeline_goes_on_when_the_data_cannot_identify_the_model(pipeline_run, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(pipeline_run.root, root, symlinks=True)
    override = root / "config" / "riclpm_too_many_waves.yaml"
    override.write_text("models:\n  riclpm:\n    sessions: 30\n")  # beyond every client
    run_snakemake(root, "results/tables/riclpm_fit.csv", "results/report/index.html",
                  "--configfile", "config/config.yaml", str(override.relative_to(root)))
    fit = pd.read_csv(root / "results/tables/riclpm_fit.csv")
    assert (fit["status"] == "not_identified").all()
    assert fit["reason"].str.contains("models.riclpm.sessions").all()
    html = (root / "results/report/index.html").read_text(encoding="utf-8")
    assert "The RI-CLPM could not be fitted" in html


def test_module_lists_its_public_names():
    assert set(riclpm_stage.__all__) >= {"fit_riclpm_outcome", "combine_riclpm"}


# ---------------------------------------------------------------------------------------------
# Waves from the data, advice that helps, and the likelihood-ratio guard


def test_default_waves_come_from_the_data_and_sessions_from_3_work(derived):
    frame = derived[0].assign(session=derived[0]["session"] + 2)  # numbered 3..6
    result = fit_riclpm_outcome(frame, "phq9", RiclpmSettings())
    assert [v["status"] for v in result["versions"]] == ["fitted", "fitted"]
    assert result["waves"]["n_waves"] == result["sessions"] == 4
    fit = combine_riclpm([result], totals=StudyTotals())["riclpm_fit"]
    assert (fit["wave_sessions"] == "each client's sessions 1 to 4").all()
    assert (fit["innovations"] == "equal").all() and (fit["origin"] == "client").all()
    study = fit_riclpm_outcome(frame, "phq9", RiclpmSettings(
        waves=PanelWaveSettings(origin="study")))
    assert study["waves"]["sessions"] == [3, 4, 5, 6]
    assert study["waves"]["description"].startswith("sessions 3 to 6, the sessions that at "
                                                    "least 50% of clients reached")
    # the same panel either way: every client's first scored session is session 3
    assert study["versions"][0]["fit"] == result["versions"][0]["fit"]


def test_too_few_waves_advises_a_share_that_gives_three(derived):
    frame = derived[0]
    # keep 4 waves for 30% of clients, 2 for the rest: at min_share 0.5 only 2 waves qualify
    long = frame["client_id"] < "c000120"
    short = frame.loc[~long & (frame["session"] <= 2)]
    result = fit_riclpm_outcome(pd.concat([frame.loc[long], short]), "phq9", RiclpmSettings())
    reason = result["versions"][0]["reason"]
    assert result["versions"][0]["status"] == "not_identified"
    assert "at least 3 waves" in reason
    advice = re.search(r"lower models\.panel\.min_share to (0\.\d+) \(then (\d+) sessions "
                       r"qualify\)", reason)
    assert advice and int(advice.group(2)) >= 3
    assert "models.riclpm.sessions" not in reason.split("To fit it")[1]
    # the advice works: with that share the model is fitted
    lowered = fit_riclpm_outcome(pd.concat([frame.loc[long], short]), "phq9", RiclpmSettings(
        waves=PanelWaveSettings(min_share=float(advice.group(1)))))
    assert lowered["versions"][0]["status"] == "fitted"
    assert lowered["sessions"] == int(advice.group(2))


def test_per_client_offsets_with_origin_study_advise_origin_client(derived):
    frame = derived[0]
    offsets = frame["client_id"].str[-3:].astype(int) % 5 * 20  # starts at 1, 21, 41, 61, 81
    shifted = frame.assign(session=frame["session"] + offsets)
    settings = RiclpmSettings(waves=PanelWaveSettings(origin="study"))
    reason = fit_riclpm_outcome(shifted, "phq9", settings)["versions"][0]["reason"]
    assert "set models.panel.origin to client (which gives each client's sessions 1 to 4)" \
        in reason
    aligned = fit_riclpm_outcome(shifted, "phq9", RiclpmSettings())
    assert aligned["versions"][0]["status"] == "fitted"


def test_too_few_clients_advises_equal_innovations_or_fewer_waves():
    derived, _ = simulate_riclpm(40, 6, seed=4, output="derived", missing_rate=0.05, **SCALES)
    result = fit_riclpm_outcome(derived, "phq9", RiclpmSettings(
        equal_innovations=False, free_paths_sensitivity=False))
    # 6 waves with free innovations: 37 parameters, 40 clients with two or more waves
    assert result["versions"][0]["status"] == "fitted" and result["sessions"] == 6
    few = derived.loc[derived["client_id"] < "c000030"]
    reason = fit_riclpm_outcome(few, "phq9", RiclpmSettings(
        equal_innovations=False, free_paths_sensitivity=False))["versions"][0]["reason"]
    assert "37 free parameters" in reason
    assert "set models.riclpm.equal_innovations to true (25 parameters)" in reason
    assert "set models.panel.max_waves to" in reason


@pytest.fixture(scope="module")
def inadmissible():
    """80 clients whose true within-client alliance variance is near 0: the free-paths fit
    (innovations free per wave) converges to a negative innovation variance (seed 7, measured),
    while the constrained one is admissible."""
    frame, _ = simulate_riclpm(80, 4, seed=7, output="derived", innovation_var_alliance=0.01,
                               w1_var_alliance=0.02, innovation_cov=0.0, w1_cov=0.0)
    return fit_riclpm_outcome(frame, "phq9", RiclpmSettings(sessions=4, equal_innovations=False))


def test_no_likelihood_ratio_test_when_a_fit_is_inadmissible(inadmissible):
    constrained, free = inadmissible["versions"]
    assert constrained["convergence"]["admissible"] and not free["convergence"]["admissible"]
    test = inadmissible["likelihood_ratio"]
    assert test["chisq"] is None and test["df"] is None and test["pvalue"] is None
    assert test["note"].startswith("not given: the free-paths fit is inadmissible")
    assert "innovation variance alliance at wave" in test["note"]
    fit = combine_riclpm([inadmissible], totals=StudyTotals())["riclpm_fit"].set_index("version")
    assert pd.isna(fit.loc["free", "lr_chisq"]) and pd.isna(fit.loc["free", "lr_pvalue"])
    assert fit.loc["free", "lr_note"] == test["note"]
    assert "not above zero" in fit.loc["free", "problems"]
    assert pd.isna(fit.loc["constrained", "lr_note"])


def test_likelihood_ratio_test_when_both_fits_are_admissible(result):
    constrained, free = result["versions"]
    test = result["likelihood_ratio"]
    assert test["note"] == ""
    assert test["df"] == free["fit"]["n_parameters"] - constrained["fit"]["n_parameters"] == 8
    assert test["chisq"] == pytest.approx(2 * (free["fit"]["loglik"]
                                               - constrained["fit"]["loglik"]))
    assert 0 < test["pvalue"] < 1
    fit = combine_riclpm([result], totals=StudyTotals())["riclpm_fit"].set_index("version")
    assert fit.loc["free", "lr_df"] == 8


def test_likelihood_ratio_guard_reasons():
    good = {"status": "fitted", "fit": {"loglik": -10.0, "n_parameters": 5},
            "convergence": {"converged": True, "admissible": True, "problems": [],
                            "information_min_eigenvalue": 1.0}}
    cases = {
        "not fitted": ({**good, "status": "not_identified"}, "could not be fitted"),
        "not converged": ({**good, "convergence": {**good["convergence"], "converged": False,
                                                   "problems": ["largest gradient 3"]}},
                          "did not converge (largest gradient 3)"),
        "singular": ({**good, "convergence": {**good["convergence"], "converged": False,
                                              "information_min_eigenvalue": -1e-3}},
                     "information matrix is not positive definite"),
    }
    for name, (bad, expected) in cases.items():
        test = riclpm_stage.likelihood_ratio_test(good, {**bad, "fit": {"loglik": -9.0,
                                                                         "n_parameters": 9}})
        assert test["chisq"] is None and expected in test["note"], name
        test = riclpm_stage.likelihood_ratio_test(bad, {**good, "fit": {"loglik": -9.0,
                                                                         "n_parameters": 9}})
        assert "the constrained-paths" in test["note"], name


def test_report_says_why_and_labels_the_mean_beta(inadmissible, result):
    from analysis.report.inputs import ReportTables
    from analysis.report.robustness import riclpm_context
    from analysis.report.view import ReportView
    from analysis.study import study_from_dict
    from test_waves import _config

    tables = combine_riclpm([inadmissible], totals=StudyTotals())
    view = ReportView(study_from_dict(_config()).report)
    context = riclpm_context(ReportTables(riclpm=tables["riclpm"],
                                          riclpm_fit=tables["riclpm_fit"]), view)
    text = " ".join(context["riclpm_outcomes"][0]["sentences"])
    assert "no likelihood-ratio test compares it with the constrained model" in text
    assert "the free-paths fit is inadmissible" in text and "Δχ²" not in text
    assert "standardised β (mean over waves)" in text
    assert text.startswith("Waves: each client's sessions 1 to 4, the first 4 sessions as "
                           "configured")
    assert "β (mean over waves)" in context["riclpm_paths"].columns
    assert context["riclpm_waves"] == "each client's sessions 1 to 4"
    lr_column = context["riclpm_fit"].columns.index("Free vs constrained paths (LR test)")
    assert context["riclpm_fit"].rows[1][lr_column].startswith("not given")
    tables = combine_riclpm([result], totals=StudyTotals())
    context = riclpm_context(ReportTables(riclpm=tables["riclpm"],
                                          riclpm_fit=tables["riclpm_fit"]), view)
    text = " ".join(context["riclpm_outcomes"][0]["sentences"])
    assert "Δχ²(8) = " in text and "Innovation variances and covariance held equal" in text


def test_figure_labels_the_mean_beta(result, inadmissible):
    from analysis.figures.riclpm import riclpm_figure
    from analysis.instrument_declarations import build_registry

    registry = build_registry()
    tables = combine_riclpm([result], totals=StudyTotals())
    figure = riclpm_figure(tables["riclpm"], tables["riclpm_fit"], registry["phq9"],
                           registry["wai_sr"])
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert sum("β (mean over waves) = " in text for text in texts) == 4
    assert any("mean of the wave-specific standardised estimates" in text for text in texts)
    assert figure.axes[2].get_xlabel() == "waves (each client's sessions 1 to 4)"
    tables = combine_riclpm([inadmissible], totals=StudyTotals())
    figure = riclpm_figure(tables["riclpm"], tables["riclpm_fit"], registry["phq9"],
                           registry["wai_sr"])
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert "free-paths fit inadmissible: not interpreted" in texts


def test_a_wave_without_alliance_scores_advises_fewer_waves(derived):
    frame = derived[0].copy()
    frame.loc[frame["session"] == 4, "alliance_score"] = float("nan")  # not given at session 4
    reason = fit_riclpm_outcome(frame, "phq9", RiclpmSettings())["versions"][0]["reason"]
    assert "alliance_score at wave 4 (each client's session 4)): 0 client(s) have a value" \
        in reason
    assert "set models.panel.max_waves to 3" in reason
    assert re.search(r"raise models\.panel\.min_share above 0\.\d\d", reason)
    capped = fit_riclpm_outcome(frame, "phq9", RiclpmSettings(
        waves=PanelWaveSettings(max_waves=3)))
    assert capped["versions"][0]["status"] == "fitted"
