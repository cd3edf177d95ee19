"""The RI-CLPM check as a pipeline stage (analysis.models.riclpm_stage, figures_riclpm, report).

- One outcome's job fits the constrained and the free version; its tables hold every parameter
  and the fit indices.
- Data that cannot identify the model give a result that says why (counts of people below the
  privacy threshold hidden), not a failed run; a malformed frame and a genuine bug still fail.
- The report's sentences follow the numbers (direction, CI, p), and the figure is drawn in both
  cases.
- End to end: the pipeline writes the tables, figures and report section, and a configuration
  whose waves the data cannot fill still completes, saying why.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.models import riclpm_stage
from analysis.models.riclpm import PATH_COLUMNS
from analysis.models.riclpm_stage import (
    FIT_COLUMNS,
    combine_riclpm,
    fit_riclpm_outcome,
    lagged_paths,
    suppress_counts_in_text,
)
from analysis.report.robustness import path_sentence
from analysis.settings import RiclpmSettings
from analysis.simulate_panel import simulate_riclpm
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
    tables = combine_riclpm([result], min_cell=10)
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
    assert "models.riclpm.sessions" in result["versions"][0]["reason"]
    fit = combine_riclpm([result], min_cell=20)["riclpm_fit"]
    assert (fit["status"] == "not_identified").all()
    assert (fit["n_clients"] == "<20").all()
    assert "15 clients" not in fit["reason"].iloc[0] and "<20 clients" in fit["reason"].iloc[0]


def test_too_many_waves_for_the_data_is_a_result(derived):
    result = fit_riclpm_outcome(derived[0], "phq9", RiclpmSettings(sessions=6))
    assert result["versions"][0]["status"] == "not_identified"
    assert "session 5" in result["versions"][0]["reason"]


def test_a_malformed_frame_still_fails(derived):
    with pytest.raises(DataError, match="symptom_score"):
        fit_riclpm_outcome(derived[0].drop(columns="symptom_score"), "phq9",
                           RiclpmSettings(sessions=4))


def test_a_genuine_bug_still_fails(derived, monkeypatch):
    import analysis.models.riclpm as core

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
    from analysis.figures_riclpm import riclpm_figure
    from analysis.instruments import build_registry

    registry = build_registry()
    tables = combine_riclpm([result])
    figure = riclpm_figure(tables["riclpm"], tables["riclpm_fit"], registry["phq9"],
                           registry["wai_sr"])
    assert len(figure.axes) == 3
    few = fit_riclpm_outcome(derived[0].loc[derived[0]["client_id"] < "c000015"], "phq9",
                             RiclpmSettings(sessions=4))
    tables = combine_riclpm([few])
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
