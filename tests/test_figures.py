"""Tests of analysis.figures on small hand-made frames: each figure function returns a Figure,
its files are written, the SVG names the axes after the instruments, saving is byte-identical,
and the privacy rules (small counts, individual data) hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis import figures
from analysis.errors import DataError
from analysis.instruments import build_registry
from model_fixtures import make_study

MIN_CELL = 10


@pytest.fixture(scope="module")
def registry():
    return build_registry(None)


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


def make_models() -> pd.DataFrame:
    rows = []
    for outcome in ("phq9", "gad7"):
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


def svg_text(path) -> str:
    return path.read_text(encoding="utf-8")


def test_select_alliance_terms_keeps_predictors_not_controls():
    terms = figures.select_alliance_terms(make_models())
    assert set(terms["term"]) == {"alliance_within", "alliance_between_c",
                                  "alliance_within_detrended", "alliance_task_within",
                                  "alliance_early"}
    # the alliance score is the lagged control of the reverse model, not an alliance predictor
    assert "alliance_score" not in set(terms["term"])


def test_forest_figure_files_and_labels(tmp_path, registry):
    fig = figures.forest_alliance_figure(make_models(), {"phq9": registry["phq9"],
                                                         "gad7": registry["gad7"]},
                                         registry["wai_sr"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["PHQ-9 (depression)", "GAD-7 (anxiety)"]
    # one row per (model, term, analysis): 7 alliance rows per outcome
    assert len(fig.axes[0].get_yticklabels()) == 7
    figures.save_figure(fig, tmp_path / "forest.svg", tmp_path / "forest.png")
    text = svg_text(tmp_path / "forest.svg")
    assert "PHQ-9 total (0-27)" in text and "GAD-7 total (0-21)" in text
    assert "WAI-SR" in text
    assert (tmp_path / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forest_marks_adjusted_significance(registry):
    fig = figures.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                         registry["wai_sr"])
    ax = fig.axes[0]
    faces = [line.get_markerfacecolor() for line in ax.get_lines() if line.get_marker() == "o"]
    # only the primary M2 within term has adjusted p < .05 (filled); the rest are hollow
    assert sum(face != "white" for face in faces) == 1
    assert sum(face == "white" for face in faces) == 6


def test_save_figure_is_byte_identical(tmp_path, registry):
    paths = []
    for run in ("a", "b"):
        fig = figures.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                             registry["wai_sr"])
        figures.save_figure(fig, tmp_path / f"{run}.svg", tmp_path / f"{run}.png")
        paths.append((tmp_path / f"{run}.svg", tmp_path / f"{run}.png"))
    assert paths[0][0].read_bytes() == paths[1][0].read_bytes()
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    svg = svg_text(paths[0][0])
    assert "<dc:date>" not in svg
    assert b"Software" not in paths[0][1].read_bytes()


def test_save_figure_png_is_300_dpi(tmp_path, registry):
    fig = figures.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                         registry["wai_sr"])
    figures.save_figure(fig, tmp_path / "f.svg", tmp_path / "f.png")
    png = (tmp_path / "f.png").read_bytes()
    width = int.from_bytes(png[16:20], "big")
    assert width == round(fig.get_figwidth() * figures.PNG_DPI)


def test_save_figure_leaves_global_style_alone(tmp_path, registry):
    import matplotlib

    before = matplotlib.rcParams["svg.hashsalt"], matplotlib.rcParams["font.size"]
    fig = figures.forest_alliance_figure(make_models(), {"phq9": registry["phq9"]},
                                         registry["wai_sr"])
    figures.save_figure(fig, tmp_path / "f.svg", tmp_path / "f.png")
    assert (matplotlib.rcParams["svg.hashsalt"], matplotlib.rcParams["font.size"]) == before


def test_trajectories_figure(tmp_path, registry):
    derived = make_derived()
    fig = figures.trajectories_figure(derived, registry["phq9"], registry["wai_sr"],
                                      min_cell=MIN_CELL)
    ax = fig.axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    # three tertiles of 12 clients each, counts printed as numbers (>= threshold)
    assert len(legend) == 3 and all("n = 12" in label for label in legend)
    assert ax.get_ylabel() == "PHQ-9 total (0-27)"
    # no individual trajectories by default: only the three group series are drawn
    assert len([line for line in ax.get_lines() if line.get_color() == figures.NEUTRAL_GREY]) == 0
    figures.save_figure(fig, tmp_path / "t.svg", tmp_path / "t.png")
    assert "PHQ-9 total (0-27)" in svg_text(tmp_path / "t.svg")


def test_trajectories_individual_lines_only_when_allowed(registry):
    derived = make_derived()
    fig = figures.trajectories_figure(derived, registry["phq9"], registry["wai_sr"],
                                      min_cell=MIN_CELL, show_individual=True)
    grey = [line for line in fig.axes[0].get_lines() if line.get_color() == figures.NEUTRAL_GREY]
    assert len(grey) == derived["client_id"].nunique()


def test_trajectories_suppress_small_groups(registry):
    derived = make_derived()
    fig = figures.trajectories_figure(derived, registry["phq9"], registry["wai_sr"],
                                      min_cell=13)
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert all("n = <13" in label for label in legend)


def test_early_alliance_groups_are_equal_sized_and_ordered():
    derived = make_derived()
    groups = figures.early_alliance_groups(derived)
    assert groups["group"].value_counts().tolist() == [12, 12, 12]
    ranges = groups.groupby("group")["alliance_early"].agg(["min", "max"])
    assert (ranges["max"].iloc[:-1].to_numpy() <= ranges["min"].iloc[1:].to_numpy()).all()


def test_mean_confidence_intervals_by_hand():
    data = pd.DataFrame({"g": [1, 1, 1, 2], "y": [1.0, 2.0, 3.0, 5.0]})
    summary = figures.mean_confidence_intervals(data, "g", "y")
    first = summary.iloc[0]
    # mean 2, sd 1, n 3: half-width t(.975, 2) / sqrt(3) = 4.302653 / 1.732051
    assert first["mean"] == 2.0 and first["n"] == 3
    assert first["ci_high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert np.isnan(summary.iloc[1]["ci_low"])


def test_alliance_within_next_figure(tmp_path, registry):
    fig = figures.alliance_within_next_figure(make_derived(), registry["gad7"],
                                              registry["wai_sr"], min_cell=MIN_CELL)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "Next-session GAD-7 total (0-21)"
    figures.save_figure(fig, tmp_path / "w.svg", tmp_path / "w.png")
    assert "GAD-7 total (0-21)" in svg_text(tmp_path / "w.svg")


def test_binned_means_equal_count_bins():
    data = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.arange(20, dtype=float) * 2})
    bins = figures.binned_means(data, "x", "y", n_bins=4)
    assert bins["n"].tolist() == [5, 5, 5, 5]
    assert bins["x_mean"].tolist() == [2.0, 7.0, 12.0, 17.0]
    assert bins["mean"].tolist() == [4.0, 14.0, 24.0, 34.0]


def test_refit_and_caterpillar(tmp_path, registry):
    derived = make_derived()
    refit = figures.refit_mixed_model(
        derived, "phq9", "symptom_score ~ session + (1 | client_id) + (1 | therapist_id)")
    therapists = refit.random_effects.query("group == 'therapist_id'")
    assert len(therapists) == 6
    assert (therapists["se"] >= 0).all()
    assert refit.n_obs == int((derived["outcome"] == "phq9").sum())
    assert len(refit.residuals) == refit.n_obs
    fig = figures.therapist_caterpillar_figure(refit.random_effects, registry["phq9"],
                                               variance_share=0.123)
    figures.save_figure(fig, tmp_path / "c.svg", tmp_path / "c.png")
    text = svg_text(tmp_path / "c.svg")
    assert "PHQ-9 total (0-27)" in text and "0.123" in text
    # therapists are ranked, never named
    assert "TH0" not in text


def test_caterpillar_without_therapist_term(registry):
    empty = pd.DataFrame(columns=["group", "term", "estimate", "se", "ci_low", "ci_high"])
    fig = figures.therapist_caterpillar_figure(empty, registry["phq9"])
    assert any("no therapist term" in text.get_text() for text in fig.axes[0].texts)


def test_residual_diagnostics_figure(tmp_path, registry):
    refit = figures.refit_mixed_model(
        make_derived(), "phq9",
        "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
        " + (1 | client_id) + (1 | therapist_id)")
    fig = figures.residual_diagnostics_figure(refit, registry["phq9"], model_title="M2 lagged")
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 4
    figures.save_figure(fig, tmp_path / "r.svg", tmp_path / "r.png")
    assert "Fitted PHQ-9 total (0-27)" in svg_text(tmp_path / "r.svg")


def test_fitted_formula_reads_final_formula():
    model_fit = pd.DataFrame({"outcome": ["phq9"], "model": ["R3"], "analysis": ["primary"],
                              "formula": ["symptom_score ~ session + (1 | client_id)"]})
    assert figures.fitted_formula(model_fit, "phq9", "R3") == (
        "symptom_score ~ session + (1 | client_id)")
    with pytest.raises(DataError, match="models.run"):
        figures.fitted_formula(model_fit, "gad7", "R3")


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
    fig = figures.jacobson_truax_figure(make_episodes(), parameters, registry["phq9"],
                                        min_cell=MIN_CELL)
    footer = fig.get_supxlabel()
    # |change| > 5.88: improved 10, 8, 12, 9, 7 (x2) = 10; deteriorated 9 (x2) = 2 -> "<10"
    assert "reliably improved: 10" in footer
    assert "reliably deteriorated: <10" in footer
    assert "no reliable change: 12" in footer
    assert "(<10 with fewer)" in fig.axes[0].get_title()
    # without individual display no scatter of clients is drawn
    assert not any(type(child).__name__ == "PathCollection" and child.get_label() == "clients"
                   for child in fig.axes[0].get_children())
    figures.save_figure(fig, tmp_path / "j.svg", tmp_path / "j.png")
    assert "First PHQ-9 total (0-27)" in svg_text(tmp_path / "j.svg")


def test_jacobson_truax_uses_episode_flags_when_present(registry):
    episodes = make_episodes()
    episodes["jt_reliable_improvement"] = pd.array([True] * 11 + [False] * 14, dtype="boolean")
    episodes["jt_reliable_deterioration"] = pd.array([False] * 24 + [pd.NA], dtype="boolean")
    fig = figures.jacobson_truax_figure(episodes, {"s_diff": 3.0, "cutoff": None},
                                        registry["phq9"], min_cell=MIN_CELL)
    assert "reliably improved: 11" in fig.get_supxlabel()


def test_jacobson_truax_individual_points_when_allowed(registry):
    fig = figures.jacobson_truax_figure(make_episodes(), {"s_diff": 3.0}, registry["phq9"],
                                        min_cell=MIN_CELL, show_individual=True)
    assert any(child.get_label() == "clients" for child in fig.axes[0].collections)


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
    fig = figures.missingness_figure(sessions, scores,
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
    fig = figures.alliance_distribution_figure(scores, registry["wai_sr"], min_cell=MIN_CELL)
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
    rows = figures.data_flow_rows(flow)
    assert rows["source"].tolist() == ["sessions"] * 4 + ["phq9 M2 primary", "phq9"]
    assert "client_name" not in set(rows["reason"])
    fig = figures.data_flow_figure(flow, min_cell=MIN_CELL)
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


def test_missing_column_is_a_clear_data_error(registry):
    with pytest.raises(DataError, match="alliance_early"):
        figures.trajectories_figure(make_derived().drop(columns="alliance_early"),
                                    registry["phq9"], registry["wai_sr"], min_cell=MIN_CELL)


def test_figure_paths_follow_the_config():
    study = make_study(run=["M2"])
    names = figures.figure_names(study.alliance.key, study.outcome_keys, study.models_run)
    assert names == ["forest_alliance", "data_flow", "missingness", "alliance_distribution",
                     "trajectories_phq9", "alliance_within_next_phq9", "jacobson_truax_phq9",
                     "residuals_phq9", "trajectories_gad7", "alliance_within_next_gad7",
                     "jacobson_truax_gad7", "residuals_gad7"]
    # the therapist caterpillar plot needs R3
    study = make_study(run=["M2", "R3"])
    figure_set = (study.alliance.key, study.outcome_keys, study.models_run)
    assert "therapist_caterpillar_gad7" in figures.figure_names(*figure_set)
    paths = figures.figure_paths(*figure_set)
    assert paths[:2] == ["results/figures/forest_alliance.svg",
                         "results/figures/forest_alliance.png"]
    assert len(paths) == 2 * len(figures.figure_names(*figure_set))


def test_outcome_row():
    table = pd.DataFrame({"outcome": ["phq9"], "icc": [0.05], "cutoff": [np.nan]})
    assert figures.outcome_row(table, "phq9", "t.csv") == {"outcome": "phq9", "icc": 0.05,
                                                           "cutoff": None}
    assert figures.outcome_row(table, "gad7", "t.csv") == {}
