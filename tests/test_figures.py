"""Tests of analysis.figures: the figure table and the rules generated from it, each drawing
function on small frames (files, labels, privacy rules), byte-identical saving, every text of
every family inside its canvas (a 57-client study included), and memory at 50,000 clients."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.text import Text

from analysis import figures
from analysis.catalogue import FILES
from analysis.errors import DataError
from analysis.figures import common, data, episodes, models, trajectories
from analysis.figures.jobs import make_figure, run_figure_job
from analysis.figures.table import (
    FAMILIES,
    FAMILY,
    FIT_INPUT,
    STUDY_TOTALS,
    SWITCHES,
    figure_names,
    figure_paths,
    planned,
    switched_on_families,
)
from analysis.instrument_declarations import build_registry
from analysis.io import write_table
from analysis.models.mixed.specs import BUILTIN_MODELS
from figure_fixtures import OUTCOMES, family_inputs, figure_inputs, make_models
from model_fixtures import make_study

ROOT = Path(__file__).resolve().parents[1]
MIN_CELL = 10


@pytest.fixture(scope="module")
def registry():
    return build_registry(None)


@pytest.fixture(scope="module")
def small_study():
    """A 57-client trial (6 therapists, at most 8 sessions), its models fitted for real."""
    return figure_inputs(57, 6, seed=11, max_sessions=8)


@pytest.fixture(scope="module")
def study():
    """A 160-client service study, its models fitted for real."""
    return figure_inputs(160, 16, seed=3)


def make_derived(n_clients: int = 36, n_therapists: int = 6, seed: int = 11) -> pd.DataFrame:
    """A small derived-format frame: two outcomes, clients nested in therapists."""
    rng = np.random.default_rng(seed)
    rows = []
    for client in range(n_clients):
        n_sessions = 3 + client % 6
        alliance = np.clip(3.9 + rng.normal(0, 0.4) + rng.normal(0, 0.3, n_sessions), 1, 5)
        therapist_effect = rng.normal(0, 1.0)
        for outcome, start, top in (("phq9", 15, 27), ("gad7", 12, 21)):
            scores = [start + rng.normal(0, 3)]
            for session in range(1, n_sessions):
                within = alliance[session - 1] - alliance.mean()
                scores.append(0.5 * scores[-1] + 6.5 - 1.5 * within + therapist_effect
                              + rng.normal(0, 2))
            scores = np.clip(np.round(scores), 0, top)
            for session in range(n_sessions):
                rows.append({"outcome": outcome, "client_id": f"CL{client:03d}",
                             "therapist_id": f"TH{client % n_therapists:02d}",
                             "session": session + 1, "day": 7 * session,
                             "symptom_score": scores[session],
                             "alliance_score": alliance[session]})
    derived = pd.DataFrame(rows)
    by_client = derived.groupby(["outcome", "client_id"])
    derived["symptom_next"] = by_client["symptom_score"].shift(-1)
    for variable in ("symptom", "alliance"):
        mean = by_client[f"{variable}_score"].transform("mean")
        derived[f"{variable}_within"] = derived[f"{variable}_score"] - mean
        derived[f"{variable}_between_c"] = mean - mean.groupby(derived["outcome"]).transform("mean")
    derived["alliance_early"] = by_client["alliance_score"].transform(lambda s: s.iloc[:3].mean())
    derived["n_sessions"] = by_client["session"].transform("count")
    for column in ("outcome", "client_id", "therapist_id"):
        derived[column] = derived[column].astype("string")
    return derived


def svg_text(path) -> str:
    return path.read_text(encoding="utf-8")


def texts_outside_canvas(fig: Figure, tolerance: float = 1.0) -> list[str]:
    """Every text drawn on ``fig`` whose extent leaves the figure's canvas.

    The texts are those the renderer actually draws (matplotlib keeps tick labels of ticks
    outside the view, undrawn, with stale positions), recorded while the canvas draws.
    """
    drawn: list[Text] = []
    original = Text.draw

    def recording(text, renderer):
        if text.get_visible() and text.get_text().strip():
            drawn.append(text)
        return original(text, renderer)

    canvas = FigureCanvasAgg(fig)
    with mock.patch.object(Text, "draw", recording):
        canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    outside = []
    for text in drawn:
        extent = text.get_window_extent(renderer)
        if (extent.x0 < box.x0 - tolerance or extent.y0 < box.y0 - tolerance
                or extent.x1 > box.x1 + tolerance or extent.y1 > box.y1 + tolerance):
            outside.append(f"{text.get_text()!r} at {extent.bounds} (canvas {box.bounds})")
    assert drawn, "nothing was drawn"
    return outside


def every_figure(study_inputs):
    """(name, figure) of every family and outcome the table draws for the study."""
    study, tables, fits = study_inputs
    fitted = planned(study.fits)
    for family in FAMILIES:
        outcomes = family.outcomes(study.outcome_keys, fitted) if family.per_outcome else [None]
        for outcome in outcomes:
            inputs = family_inputs(family, tables, fits, outcome)
            yield (family.name if outcome is None else f"{family.name}_{outcome}",
                   make_figure(family.name, inputs, study.figures, outcome))


# ---------------------------------------------------------------------------------------------
# The figure table and the rules generated from it


def test_table_rows_are_unique_and_complete():
    assert len({family.name for family in FAMILIES}) == len(FAMILIES)
    assert len({family.stem for family in FAMILIES}) == len(FAMILIES)
    for family in FAMILIES:
        assert family.rule == f"figure_{family.name}"
        assert callable(family.drawing_function()), family.name
        assert (ROOT / "workflow" / "report" / family.caption).is_file(), family.caption
        for _, entry in family.inputs:
            assert entry in FILES, (family.name, entry)
        if family.model is not None:
            assert family.model in BUILTIN_MODELS and family.per_outcome
            assert FIT_INPUT in family.input_paths()
            assert family.input_paths()[FIT_INPUT] == (
                f"results/fits/{{outcome}}/{family.model}/primary.json")


def test_no_figure_reads_a_model_table_to_refit():
    # the model figures read their fit file and at most the tables of the study's totals (for
    # complementary suppression of the counts they print): no derived frame, no model_fit.csv
    for family in FAMILIES:
        if family.model is not None:
            assert set(family.inputs) <= set(STUDY_TOTALS), family.name


def test_model_ids_live_only_in_the_table():
    sources = [ROOT / "workflow" / "rules" / "figures.smk", ROOT / "workflow" / "scripts" /
               "figure.py", *sorted((ROOT / "src" / "analysis" / "figures").glob("*.py"))]
    for source in sources:
        if source.name == "table.py":
            continue
        assert not re.search(r"[\"'](M2|R3)[\"']", source.read_text()), source


def test_figure_names_follow_the_planned_fits():
    study = make_study(run=["M2"])
    names = figure_names(study.outcome_keys, planned(study.fits))
    assert names == ["forest_alliance", "data_flow", "missingness", "alliance_distribution",
                     "trajectories_phq9", "trajectories_gad7", "alliance_within_next_phq9",
                     "alliance_within_next_gad7", "jacobson_truax_phq9", "jacobson_truax_gad7",
                     "residuals_phq9", "residuals_gad7"]
    # the therapist caterpillar plot needs R3
    study = make_study(run=["M2", "R3"])
    fits = planned(study.fits)
    assert "therapist_caterpillar_gad7" in figure_names(study.outcome_keys, fits)
    paths = figure_paths(study.outcome_keys, fits)
    assert paths[:2] == ["results/figures/forest_alliance.svg",
                         "results/figures/forest_alliance.png"]
    assert len(paths) == 2 * len(figure_names(study.outcome_keys, fits))
    # a figure of a model only for the outcomes the model's primary fit is planned for
    only_phq9 = [fit for fit in fits if not (fit[0] == "gad7" and fit[1] == "R3")]
    assert FAMILY["therapist_caterpillar"].outcomes(OUTCOMES, only_phq9) == ["phq9"]


def test_a_figure_of_an_optional_analysis_is_drawn_when_it_is_switched_on():
    study = make_study(run=["M2"])
    fits = planned(study.fits)
    base = figure_names(study.outcome_keys, fits)
    names = figure_names(study.outcome_keys, fits, ("riclpm", "multiverse", "dropout"))
    # in table order: after the model figures, before the other engagement figures
    assert names == [*base, "riclpm_phq9", "riclpm_gad7", "specification_curve", "dropout_km"]
    assert "results/figures/riclpm_gad7.png" in figure_paths(study.outcome_keys, fits, ["riclpm"])
    assert "results/figures/specification_curve.svg" in figure_paths(
        study.outcome_keys, fits, ["multiverse"])
    assert [family.name for family in switched_on_families(["multiverse"])
            if family.switch] == ["specification_curve"]
    with pytest.raises(ValueError, match="'engagement'"):
        switched_on_families(["engagement"])


def test_every_switch_is_a_setting_of_the_schema_and_of_the_study():
    from analysis.config import load_schema

    schema = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    for switch, key in SWITCHES.items():
        node = schema
        for part in key.split("."):
            node = node["properties"][part]
        assert node["type"] == "boolean", key
    assert {family.switch for family in FAMILIES} - {None} == set(SWITCHES)
    # the study names the analyses it runs by the same keys: the demo runs them all but power
    # (power.run is off by default: `make power` builds it on demand)
    from analysis.study import load_study

    study = load_study(ROOT / "config" / "config.yaml")
    assert set(study.switched_on) == set(SWITCHES) - {"power"}
    from analysis.study import study_from_dict
    from model_fixtures import make_config

    config = make_config()
    config["models"]["riclpm"] = {"run": False}
    config["multiverse"] = {"run": False}
    config["engagement"] = {name: {"run": False} for name in
                            ("dropout", "therapist_patient", "sudden_gains")}
    assert study_from_dict(config).switched_on == ()
    config["multiverse"] = {"run": True}
    assert study_from_dict(config).switched_on == ("multiverse",)


def test_no_rule_spells_a_figure_path():
    # the figures' files come from the figure table (figure_paths), nowhere else
    for source in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        text = source.read_text()
        assert "results/figures" not in text and "FIGURES" not in text, source
        assert not re.search(r"\brule figure_", text), source
    assert sorted(path.name for path in (ROOT / "workflow" / "scripts").glob("figure*.py")) == [
        "figure.py"]


def test_the_package_keeps_its_names():
    # other modules and the report's tests import these from analysis.figures
    from analysis.figures import FIGURE_STYLE, OKABE_ITO, save_figure  # noqa: F401

    for name in ("forest_alliance_figure", "alliance_distribution_figure", "NEUTRAL_GREY",
                 "PNG_DPI", "select_alliance_terms", "analysis_label", "model_title",
                 "outcome_row", "mean_confidence_intervals"):
        assert getattr(figures, name) is not None
    with pytest.raises(AttributeError):
        figures.refit_mixed_model  # noqa: B018


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory) -> set[str]:
    """The rules of the workflow, as `snakemake --list-rules` gives them (a copy of the
    workflow: listing rules writes nothing, but a test never touches the checkout)."""
    root = tmp_path_factory.mktemp("rules")
    for name in ("Snakefile", "workflow", "config"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    result = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules"], cwd=root,
                            capture_output=True, text=True, check=True)
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def test_every_figure_and_every_catalogue_file_has_its_rule(workflow_rules):
    assert {family.rule for family in FAMILIES} <= workflow_rules
    missing = {entry.name: entry.rule for entry in FILES.values()
               if entry.rule not in workflow_rules}
    assert missing == {}


# ---------------------------------------------------------------------------------------------
# Drawing functions


def test_forest_figure_files_and_labels(tmp_path, registry):
    fig = models.forest_alliance_figure(make_models(), {"phq9": registry["phq9"],
                                                        "gad7": registry["gad7"]},
                                        registry["wai_sr"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["PHQ-9 (depression)", "GAD-7 (anxiety)"]
    # one row per (model, term, analysis): 7 alliance rows per outcome
    assert len(fig.axes[0].get_yticklabels()) == 7
    # the axis label is whole, wrapped to the panel, never cut after "(95%"
    assert fig.axes[0].get_xlabel().replace("\n", " ").endswith("per 1 point of WAI-SR (95% CI)")
    assert texts_outside_canvas(fig) == []
    figures.save_figure(fig, tmp_path / "forest.svg", tmp_path / "forest.png")
    text = svg_text(tmp_path / "forest.svg")
    assert "PHQ-9 total (0-27)" in text and "GAD-7 total (0-21)" in text
    assert "WAI-SR" in text
    assert (tmp_path / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forest_marks_adjusted_significance(registry):
    fig = models.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                        registry["wai_sr"])
    ax = fig.axes[0]
    faces = [line.get_markerfacecolor() for line in ax.get_lines() if line.get_marker() == "o"]
    # only the primary M2 within term has adjusted p < .05 (filled); the rest are hollow
    assert sum(face != "white" for face in faces) == 1
    assert sum(face == "white" for face in faces) == 6


def test_save_figure_is_byte_identical(tmp_path, registry):
    paths = []
    for run in ("a", "b"):
        fig = models.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                            registry["wai_sr"])
        figures.save_figure(fig, tmp_path / f"{run}.svg", tmp_path / f"{run}.png")
        paths.append((tmp_path / f"{run}.svg", tmp_path / f"{run}.png"))
    assert paths[0][0].read_bytes() == paths[1][0].read_bytes()
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    svg = svg_text(paths[0][0])
    assert "<dc:date>" not in svg
    assert b"Software" not in paths[0][1].read_bytes()


def test_save_figure_png_is_300_dpi(tmp_path, registry):
    fig = models.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                        registry["wai_sr"])
    figures.save_figure(fig, tmp_path / "f.svg", tmp_path / "f.png")
    png = (tmp_path / "f.png").read_bytes()
    width = int.from_bytes(png[16:20], "big")
    assert width == round(fig.get_figwidth() * figures.PNG_DPI)


def test_save_figure_leaves_global_style_alone(tmp_path, registry):
    import matplotlib

    before = matplotlib.rcParams["svg.hashsalt"], matplotlib.rcParams["font.size"]
    fig = models.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                        registry["wai_sr"])
    figures.save_figure(fig, tmp_path / "f.svg", tmp_path / "f.png")
    assert (matplotlib.rcParams["svg.hashsalt"], matplotlib.rcParams["font.size"]) == before


def test_trajectories_figure(tmp_path, registry):
    derived = make_derived()
    fig = trajectories.trajectories_figure(derived, registry["phq9"], registry["wai_sr"],
                                           min_cell=MIN_CELL)
    ax = fig.axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    # three tertiles of 12 clients each, counts printed as numbers (>= threshold)
    assert len(legend) == 3 and all("n = 12" in label for label in legend)
    assert ax.get_ylabel() == "PHQ-9 total (0-27)"
    # no individual trajectories by default
    assert not [c for c in ax.collections if isinstance(c, LineCollection)
                and c.get_label() == "_clients"]
    figures.save_figure(fig, tmp_path / "t.svg", tmp_path / "t.png")
    assert "PHQ-9 total (0-27)" in svg_text(tmp_path / "t.svg")


def test_trajectories_individual_lines_only_when_allowed(registry):
    derived = make_derived()
    fig = trajectories.trajectories_figure(derived, registry["phq9"], registry["wai_sr"],
                                           min_cell=MIN_CELL, show_individual=True)
    (courses,) = [c for c in fig.axes[0].collections if c.get_label() == "_clients"]
    # one line per client, all in one artist
    assert len(courses.get_segments()) == derived["client_id"].nunique()


def test_trajectories_suppress_small_groups(registry):
    fig = trajectories.trajectories_figure(make_derived(), registry["phq9"], registry["wai_sr"],
                                           min_cell=13)
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert all("n = <13" in label for label in legend)


def test_early_alliance_groups_are_equal_sized_and_ordered():
    groups = trajectories.early_alliance_groups(make_derived())
    assert groups["group"].value_counts().tolist() == [12, 12, 12]
    ranges = groups.groupby("group")["alliance_early"].agg(["min", "max"])
    assert (ranges["max"].iloc[:-1].to_numpy() <= ranges["min"].iloc[1:].to_numpy()).all()


def test_mean_confidence_intervals_by_hand():
    frame = pd.DataFrame({"g": [1, 1, 1, 2], "y": [1.0, 2.0, 3.0, 5.0]})
    summary = common.mean_confidence_intervals(frame, "g", "y")
    first = summary.iloc[0]
    # mean 2, sd 1, n 3: half-width t(.975, 2) / sqrt(3) = 4.302653 / 1.732051
    assert first["mean"] == 2.0 and first["n"] == 3
    assert first["ci_high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert np.isnan(summary.iloc[1]["ci_low"])


def test_alliance_within_next_figure(tmp_path, registry):
    fig = trajectories.alliance_within_next_figure(make_derived(), registry["gad7"],
                                                   registry["wai_sr"], min_cell=MIN_CELL)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "Next-session GAD-7 total (0-21)"
    figures.save_figure(fig, tmp_path / "w.svg", tmp_path / "w.png")
    assert "GAD-7 total (0-21)" in svg_text(tmp_path / "w.svg")


def test_binned_means_equal_count_bins():
    frame = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.arange(20, dtype=float) * 2})
    bins = common.binned_means(frame, "x", "y", n_bins=4)
    assert bins["n"].tolist() == [5, 5, 5, 5]
    assert bins["x_mean"].tolist() == [2.0, 7.0, 12.0, 17.0]
    assert bins["mean"].tolist() == [4.0, 14.0, 24.0, 34.0]


def test_caterpillar_from_the_fit_file(tmp_path, registry, study):
    _, tables, fits = study
    fit = fits[("phq9", "R3")]
    effects = models.therapist_effects(fit)
    assert len(effects) == 16 and (effects["se"] > 0).all()
    assert effects["estimate"].is_monotonic_increasing
    fig = models.therapist_caterpillar_figure(effects, registry["phq9"], variance_share=0.123)
    figures.save_figure(fig, tmp_path / "c.svg", tmp_path / "c.png")
    text = svg_text(tmp_path / "c.svg")
    assert "PHQ-9 total (0-27)" in text and "0.123" in text
    # therapists are ranked, never named
    assert "t00" not in text and "therapist_id" not in json.dumps(effects.columns.tolist())


def test_caterpillar_without_therapist_term(registry):
    effects = models.therapist_effects({"diagnostics": {"therapists": []}})
    fig = models.therapist_caterpillar_figure(effects, registry["phq9"])
    assert any("no therapist term" in text.get_text() for text in fig.axes[0].texts)


def test_residual_diagnostics_from_the_fit_file(tmp_path, registry, study):
    _, _, fits = study
    fit = fits[("phq9", "M2")]
    fig = models.residual_diagnostics_figure(fit["diagnostics"], registry["phq9"], min_cell=MIN_CELL,
                                             model_title="M2 lagged",
                                             formula=fit["fit"]["formula"])
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 4
    binned, qq, hist, clients = fig.axes[:4]
    bins = fit["diagnostics"]["residuals"]["by_fitted"]
    assert len(bins) >= 2 and sum(b["n"] for b in bins) == fit["data"]["n_obs"]
    assert "160 clients" in clients.get_title()
    figures.save_figure(fig, tmp_path / "r.svg", tmp_path / "r.png")
    assert "Fitted PHQ-9 total (0-27)" in svg_text(tmp_path / "r.svg")


def test_residual_figure_without_diagnostics_says_so(registry):
    fig = models.residual_diagnostics_figure({}, registry["phq9"], min_cell=MIN_CELL)
    assert any("rerun the fit job" in text.get_text() for ax in fig.axes for text in ax.texts)


def test_figure_job_reads_the_fit_file(tmp_path, study):
    # the job as the generic script runs it: inputs by name, params, outcome, two files
    study_, tables, fits = study
    fit_path = tmp_path / "primary.json"
    fit_path.write_text(json.dumps(fits[("gad7", "M2")]))
    paths = {FIT_INPUT: str(fit_path), "code": ["ignored.py"]}
    for name, entry in STUDY_TOTALS:
        paths[name] = str(tmp_path / f"{entry}.parquet")
        write_table(tables[entry], paths[name])
    run_figure_job("residuals", paths, study_.figures.params(), "gad7", tmp_path / "r.svg",
                   tmp_path / "r.png")
    assert "GAD-7" in svg_text(tmp_path / "r.svg")


def make_episodes() -> pd.DataFrame:
    first = np.array([20, 18, 16, 15, 14, 22, 12, 19, 17, 21, 13, 16] * 2, dtype=float)
    change = np.array([-10, -8, -1, 0, 2, -12, 1, -9, -3, 9, -2, -7] * 2, dtype=float)
    n = len(first)
    return pd.DataFrame({"outcome": ["phq9"] * (n + 1),
                         "first_score": [*first, 11.0], "last_score": [*(first + change), np.nan],
                         "n_scored": [5] * n + [1]})


def test_jacobson_truax_figure_counts_and_privacy(tmp_path, registry):
    parameters = {"s_diff": 3.0, "rci_criterion": 1.96, "reliable_change_points": 5.88,
                  "cutoff": 10.0, "cutoff_formula": "a"}
    fig = episodes.jacobson_truax_figure(make_episodes(), parameters, registry["phq9"],
                                         min_cell=MIN_CELL)
    footer = fig.get_supxlabel()
    # |change| > 5.88: improved 10, 8, 12, 9, 7 (x2) = 10; deteriorated 9 (x2) = 2 -> "<10";
    # no change 12 would give the 2 away (24 - 10 - 12), so it is shown as a bound: 12 + 2 - 10
    assert "reliably improved: 10" in footer
    assert "reliably deteriorated: <10" in footer
    assert "no reliable change: >4" in footer
    assert "(<10 with fewer)" in fig.axes[0].get_title()
    # without individual display no scatter of clients is drawn
    assert not any(child.get_label() == "clients" for child in fig.axes[0].collections)
    figures.save_figure(fig, tmp_path / "j.svg", tmp_path / "j.png")
    assert "First PHQ-9 total (0-27)" in svg_text(tmp_path / "j.svg")


def test_category_counts_hide_a_small_count_from_subtraction():
    shown = episodes.category_counts({"a": 50, "b": 30, "c": 3}, MIN_CELL)
    assert shown == {"a": ">43", "b": "30", "c": "<10"}
    # two small counts: each hidden, their sum alone follows from the total
    assert episodes.category_counts({"a": 50, "b": 4, "c": 3}, MIN_CELL) == {
        "a": "50", "b": "<10", "c": "<10"}
    assert episodes.category_counts({"a": 50, "b": 30, "c": 0}, MIN_CELL) == {
        "a": "50", "b": "30", "c": "0"}


def test_jacobson_truax_uses_episode_flags_when_present(registry):
    frame = make_episodes()
    frame["jt_reliable_improvement"] = pd.array([True] * 11 + [False] * 14, dtype="boolean")
    frame["jt_reliable_deterioration"] = pd.array([False] * 24 + [pd.NA], dtype="boolean")
    frame["jt_recovered"] = pd.array([True] * 10 + [False] * 15, dtype="boolean")
    fig = episodes.jacobson_truax_figure(frame, {"s_diff": 3.0, "cutoff": None},
                                         registry["phq9"], min_cell=MIN_CELL)
    assert "reliably improved: 11" in fig.get_supxlabel()
    assert "recovered (reliable and clinically significant): 10" in fig.get_supxlabel()


def test_jacobson_truax_individual_points_when_allowed(registry):
    fig = episodes.jacobson_truax_figure(make_episodes(), {"s_diff": 3.0}, registry["phq9"],
                                         min_cell=MIN_CELL, show_individual=True)
    assert any(child.get_label() == "clients" for child in fig.axes[0].collections)


def test_jacobson_truax_cells_are_sized_to_the_sample(registry, small_study):
    # 57 clients: a grid fine enough for a 1,000-client service would hide nearly everyone
    _, tables, _ = small_study
    rows = tables["episodes"].query("outcome == 'phq9' and n_scored >= 2")
    first, last = rows["first_score"].to_numpy(), rows["last_score"].to_numpy()
    width = episodes.cell_width(first, last, 0, 27, MIN_CELL)
    edges = episodes.cell_edges(0, 27, width)
    assert edges[0] == 0 and edges[-1] >= 27 and np.allclose(np.diff(edges), width)
    counts, _, _ = np.histogram2d(first, last, bins=[edges, edges])
    assert counts[counts >= MIN_CELL].sum() >= 0.5 * len(rows)
    fig = make_figure("jacobson_truax", family_inputs(FAMILY["jacobson_truax"], tables, {},
                                                      "phq9"),
                      small_study[0].figures, "phq9")
    (mesh,) = [c for c in fig.axes[0].collections if isinstance(c, QuadMesh)]
    assert np.ma.count(mesh.get_array()) >= 2  # more than a single cell is drawn
    assert f"cells of {width:g} x {width:g} points" in fig.get_supxlabel()
    # a large sample gets finer cells, of whole points on a 0-27 scale
    rng = np.random.default_rng(1)
    many = rng.normal(15, 4, 20000)
    fine = episodes.cell_width(many, many - rng.normal(4, 4, 20000), 0, 27, MIN_CELL)
    assert fine < width and fine == int(fine)
    # a 1-5 scale gets cells of a fraction of a point
    assert episodes.cell_width(rng.uniform(1, 5, 5000), rng.uniform(1, 5, 5000), 1, 5,
                               MIN_CELL) < 1


def test_jacobson_truax_cutoff_below_the_scale_is_shown(registry, small_study):
    study_, tables, _ = small_study
    fig = make_figure("jacobson_truax", family_inputs(FAMILY["jacobson_truax"], tables, {},
                                                      "gad7"), study_.figures, "gad7")
    ax = fig.axes[0]
    # the cut-off (-1.8) is on the axes, and the figure says it lies below the scale
    assert ax.get_ylim()[0] < -1.8 and ax.get_xlim()[0] < -1.8
    assert "lies below the scale's minimum (0)" in fig.get_supxlabel()


def make_sessions_and_scores() -> tuple[pd.DataFrame, pd.DataFrame]:
    derived = make_derived()
    sessions = derived.loc[derived["outcome"] == "phq9",
                           ["client_id", "therapist_id", "session", "day"]].reset_index(drop=True)
    scores = derived[["outcome", "client_id", "session", "symptom_score"]].rename(
        columns={"outcome": "instrument", "symptom_score": "score"})
    alliance = derived.loc[derived["outcome"] == "phq9",
                           ["client_id", "session", "alliance_score"]].rename(
        columns={"alliance_score": "score"}).assign(instrument="wai_sr")
    scores = pd.concat([scores, alliance], ignore_index=True)
    scores["n_items_missing"] = np.where(np.arange(len(scores)) % 10 == 0, 1, 0)
    # drop every 7th administration: the questionnaire was not given that session
    scores = scores.loc[np.arange(len(scores)) % 7 != 3].reset_index(drop=True)
    return sessions, scores


def test_missingness_figure(tmp_path, registry):
    sessions, scores = make_sessions_and_scores()
    fig = data.missingness_figure(sessions, scores,
                                  [registry["phq9"], registry["gad7"], registry["wai_sr"]],
                                  min_cell=MIN_CELL)
    retention = fig.axes[0].get_lines()[0]
    # 36 clients, 6 each ending at sessions 3..8: still in therapy 36, 36, 36, 30, 24, 18, 12
    # at sessions 1-7; at session 8 only 6 remain, fewer than 10, so the curve stops at 7
    assert retention.get_xdata().tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert np.allclose(retention.get_ydata(), 100 * np.array([36, 36, 36, 30, 24, 18, 12]) / 36)
    # every 7th administration was dropped, so each instrument misses some questionnaires
    absent = fig.axes[1].get_lines()
    assert len(absent) == 3 and all(max(line.get_ydata()) > 0 for line in absent)
    figures.save_figure(fig, tmp_path / "m.svg", tmp_path / "m.png")
    text = svg_text(tmp_path / "m.svg")
    assert "Clients still in therapy (%)" in text and "WAI-SR" in text


def test_alliance_distribution_figure(tmp_path, registry):
    _, scores = make_sessions_and_scores()
    fig = data.alliance_distribution_figure(scores, registry["wai_sr"], min_cell=MIN_CELL)
    assert fig.axes[0].get_xlabel() == "WAI-SR mean (1-5)"
    figures.save_figure(fig, tmp_path / "a.svg", tmp_path / "a.png")
    assert "WAI-SR mean (1-5)" in svg_text(tmp_path / "a.svg")


def test_data_flow_figure_keeps_suppressed_counts(tmp_path):
    flow = pd.DataFrame({
        "stage": ["read", "rejected", "kept", "registry", "analysis", "analysis"],
        "source": ["sessions", "sessions", "sessions", "sessions", "phq9 M2 primary",
                   "phq9 M2 ml"],
        "unit": ["rows", "rows", "rows", "clients", "clients", "clients"],
        "reason": ["", "duplicate row", "", "", "", ""],
        "count": ["500", "7", "493", "<10", "60", "60"],
    })
    flow.loc[len(flow)] = ["episodes", "phq9", "episodes_with_outcome", "", ">50"]
    flow = pd.concat([flow, pd.DataFrame({"stage": ["dropped_column"], "source": ["sessions"],
                                          "unit": ["cells"], "reason": ["client_name"],
                                          "count": ["500"]})], ignore_index=True)
    rows = data.data_flow_rows(flow)
    assert rows["source"].tolist() == ["sessions"] * 4 + ["phq9 M2 primary", "phq9"]
    assert "client_name" not in set(rows["reason"])
    fig = data.data_flow_figure(flow, min_cell=MIN_CELL)
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert texts == ["500", "7", "493", "<10", "60", ">50"]
    hatched = [patch for patch in fig.axes[0].patches if patch.get_hatch() == "///"]
    # suppressed counts are drawn to the bound they state
    assert [patch.get_width() for patch in hatched] == [MIN_CELL, 50]
    figures.save_figure(fig, tmp_path / "d.svg", tmp_path / "d.png")
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == ["sessions: read rows", "sessions: rejected rows (duplicate row)",
                      "sessions: kept rows", "sessions: registry clients",
                      "phq9 M2 primary: clients", "phq9: episodes with outcome"]
    assert "duplicate row" in svg_text(tmp_path / "d.svg")


def test_clients_still_in_by_hand():
    sessions, still_in = data.clients_still_in(np.array([1, 3, 3, 2]))
    assert sessions.tolist() == [1, 2, 3] and still_in.tolist() == [4, 3, 2]


def test_missing_column_is_a_clear_data_error(registry):
    with pytest.raises(DataError, match="alliance_early"):
        trajectories.trajectories_figure(make_derived().drop(columns="alliance_early"),
                                         registry["phq9"], registry["wai_sr"], min_cell=MIN_CELL)


def test_outcome_row():
    table = pd.DataFrame({"outcome": ["phq9"], "icc": [0.05], "cutoff": [np.nan]})
    assert common.outcome_row(table, "phq9", "t.csv") == {"outcome": "phq9", "icc": 0.05,
                                                          "cutoff": None}
    assert common.outcome_row(table, "gad7", "t.csv") == {}


# ---------------------------------------------------------------------------------------------
# Every family, every text on the canvas


@pytest.mark.parametrize("size", ["small_study", "study"])
def test_every_text_of_every_figure_is_on_its_canvas(size, request):
    study_inputs = request.getfixturevalue(size)
    drawn = []
    for name, fig in every_figure(study_inputs):
        assert texts_outside_canvas(fig) == [], name
        drawn.append(name.split("_phq9")[0].split("_gad7")[0])
    assert set(drawn) == {family.name for family in FAMILIES}


# ---------------------------------------------------------------------------------------------
# Memory at scale

MEMORY_SCRIPT = """
import resource, sys, tempfile, tracemalloc
from pathlib import Path
sys.path.insert(0, {tests!r})
from figure_fixtures import family_inputs, figure_inputs
from analysis.figures.jobs import make_figure
from analysis.figures.style import save_figure
from analysis.figures.table import FAMILIES, planned
study, tables, fits = figure_inputs({n_clients}, {n_therapists}, fit_models=False)
rows = len(tables["derived"])
tracemalloc.start()
folder = Path(tempfile.mkdtemp())
for family in FAMILIES:
    outcomes = family.outcomes(study.outcome_keys, planned(study.fits)) if family.per_outcome \\
        else [None]
    for outcome in outcomes:
        figure = make_figure(family.name, family_inputs(family, tables, fits, outcome),
                             study.figures, outcome)
        save_figure(figure, folder / "f.svg", folder / "f.png", dpi=study.figures.png_dpi)
        del figure
peak = tracemalloc.get_traced_memory()[1]
print(rows, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_figures_of_50000_clients_stay_under_1_gb():
    script = MEMORY_SCRIPT.format(tests=str(ROOT / "tests"), n_clients=50_000,
                                  n_therapists=1_000)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows, traced_peak, max_rss = map(int, result.stdout.split()[-3:])
    assert rows > 500_000  # two outcomes of 50,000 clients' sessions
    # drawing every figure (Python and numpy allocations) and the whole process (inputs,
    # libraries, pyarrow strings) both stay under 1 GB
    assert traced_peak < 1 << 30, traced_peak
    assert max_rss < 1 << 30, max_rss


# ---------------------------------------------------------------------------------------------
# Light jobs

HEAVY = ("statsmodels", "mixedlm", "pingouin", "pandera", "semopy")


def test_figure_jobs_import_no_model_engine():
    # what workflow/scripts/figure.py imports, plus every family's drawing module
    modules = sorted({family.draw.split(":")[0] for family in FAMILIES})
    script = ("import sys, analysis.runner, analysis.figures.jobs, "
              + ", ".join(f"analysis.figures.{module}" for module in modules)
              + "; print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    loaded = set(result.stdout.split())
    assert "matplotlib" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
