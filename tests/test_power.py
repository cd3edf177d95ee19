"""Tests of analysis.power: the Monte-Carlo power against the closed form where one exists, the
settings and seeds, the generating parameters read from the fit files, byte-identical tables,
the power curve and the report section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import ConfigError, DataError
from analysis.power.analytic import analytic_power, simulated_power, within_person_se
from analysis.power.parameters import (
    EFFECT_ESTIMATE,
    PARAMETER_COLUMNS,
    dynamic_parameters,
    generating_parameters,
    observed_attendance,
)
from analysis.settings import (
    PowerDesign,
    PowerBatchSettings,
    PowerSettings,
    batch_settings,
    power_settings,
    study_seed,
)
from analysis.power.summary import POWER_COLUMNS, summarise_power, wilson_interval

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["M0", "M1", "M2", "DPM", "M3", "DPM-reverse", "M4", "R1", "R2", "R3"]


def section(**changes):
    base = {"run": False, "outcomes": None,
            "grid": {"therapists": [10, 20], "clients_per_therapist": [5], "sessions": [6],
                     "dropout": [None, 0.2]},
            "smallest_effect": {"phq9": -0.5}, "simulations": 5, "simulations_per_job": 2}
    base.update(changes)
    return base


# ---------------------------------------------------------------------------------------------
# The check against the closed form (METHODS 10)


def test_analytic_power_by_hand():
    se = within_person_se(40, 5, sd_residual=1.0, sd_x=1.0)
    assert se == pytest.approx(1 / math.sqrt(160))
    # at no effect the two-sided test rejects alpha of the time
    assert analytic_power(0.0, se) == pytest.approx(0.05)
    # |b| / SE = 1.96 + 0.8416 gives power .80 (plus the far tail, ~0)
    assert analytic_power((1.959964 + 0.841621) * se, se) == pytest.approx(0.80, abs=1e-4)
    assert analytic_power(-0.2, se) == analytic_power(0.2, se)


# Sizes of the check: 40 clients x 5 sessions, within-person SD 1, residual SD 1 (client SD 1.5
# drops out of the within-person information); b = 0.2 gives an analytic power of .716.
CHECK = {"n_clients": 40, "n_sessions": 5, "sd_client": 1.5, "sd_residual": 1.0, "sd_x": 1.0}
CHECK_SIMS = 200


@pytest.mark.parametrize("effect", [0.2, 0.0])
def test_monte_carlo_power_agrees_with_the_analytic_power(effect):
    """The Monte-Carlo power (simulated studies, the pipeline's mixed-model engine, rejections
    counted as the power table counts them) agrees with Phi(|b|/SE - z) + Phi(-|b|/SE - z)
    within three Monte-Carlo SEs; at b = 0 it is the type I error rate."""
    expected = analytic_power(effect, within_person_se(
        CHECK["n_clients"], CHECK["n_sessions"], CHECK["sd_residual"], CHECK["sd_x"]))
    simulated = simulated_power(CHECK_SIMS, seed=11, effect=effect, **CHECK)
    mcse = math.sqrt(expected * (1 - expected) / CHECK_SIMS)
    assert abs(simulated["power"] - expected) <= 3 * mcse, (simulated, expected)
    assert simulated["ci_low"] <= simulated["power"] <= simulated["ci_high"]


def test_the_check_can_fail():
    """The tolerance is tight enough to tell a wrong closed form apart: the power of a design
    with half the within-person information is outside three Monte-Carlo SEs of the simulation."""
    wrong = analytic_power(0.2, within_person_se(CHECK["n_clients"] // 2, CHECK["n_sessions"],
                                                 CHECK["sd_residual"], CHECK["sd_x"]))
    right = analytic_power(0.2, within_person_se(CHECK["n_clients"], CHECK["n_sessions"],
                                                 CHECK["sd_residual"], CHECK["sd_x"]))
    mcse = math.sqrt(right * (1 - right) / CHECK_SIMS)
    assert abs(wrong - right) > 3 * mcse


def test_wilson_interval_by_hand():
    # Brown, Cai & DasGupta (2001): x = 8 of n = 10 -> (.490, .943)
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert all(math.isnan(value) for value in wilson_interval(0, 0))


# ---------------------------------------------------------------------------------------------
# Settings and seeds


def test_grid_effects_batches_and_ids():
    power = power_settings(section(), ["phq9", "gad7"], MODELS, seed=7)
    assert [design.id for design in power.designs] == [
        "t10_c5_s6_dobs", "t10_c5_s6_d0.2", "t20_c5_s6_dobs", "t20_c5_s6_d0.2"]
    assert power.effects("phq9") == ["estimate", "smallest_effect"]
    assert power.effects("gad7") == ["estimate"]
    assert power.batches() == [(0, 2), (2, 2), (4, 1)]
    assert len(power.batch_keys()) == (4 * 2 + 4 * 1) * 3
    assert PowerSettings.from_params(power.params()) == power
    assert PowerDesign(30, 10, 12).describe(0.14) == (
        "30 therapists with 10 clients each, 12 sessions, dropout as observed (14% per session)")


@pytest.mark.parametrize("changes, words", [
    ({"outcomes": ["bdi"]}, ["power.outcomes", "bdi"]),
    ({"outcomes": ["gad7"]}, ["power.smallest_effect", "phq9"]),
    ({"grid": {"therapists": [10], "clients_per_therapist": [5], "sessions": [6],
               "dropout": [1.5]}}, ["power.grid.dropout", "1.5"]),
])
def test_mistakes_name_the_key(changes, words):
    with pytest.raises(ConfigError) as raised:
        power_settings(section(**changes), ["phq9", "gad7"], MODELS, seed=7)
    for word in words:
        assert word in str(raised.value)


def test_run_needs_the_models_it_reads():
    without = [model for model in MODELS if model != "DPM-reverse"]
    quiet = power_settings(section(), ["phq9"], without, seed=7)
    assert quiet.missing_models == ("DPM-reverse",)
    with pytest.raises(ConfigError, match="models.run leaves out DPM-reverse"):
        power_settings(section(run=True), ["phq9"], without, seed=7)


def test_seeds_depend_on_the_study_not_on_the_batch_or_effect():
    design = PowerDesign(10, 5, 6)
    seeds = [study_seed(7, "phq9", design, index) for index in range(5)]
    assert len(set(seeds)) == 5
    assert seeds == [study_seed(7, "phq9", design, index) for index in range(5)]
    assert study_seed(8, "phq9", design, 0) != seeds[0]
    assert study_seed(7, "gad7", design, 0) != seeds[0]
    assert study_seed(7, "phq9", PowerDesign(20, 5, 6), 0) != seeds[0]


def test_shipped_config_resolves_a_small_demo_grid():
    from analysis.study import load_study

    power = load_study(ROOT / "config" / "config.yaml").power
    assert power.run is False and power.missing_models == ()
    # the demo default stays small: under a minute of CPU (about 1.5 s per simulated study)
    studies = sum(power.simulations for _cell in power.cells())
    assert studies <= 30, studies


# ---------------------------------------------------------------------------------------------
# Generating parameters


def fit_file(fixed=(), random=()):
    return {"fixed": [{"term": term, "estimate": estimate, "se": 0.1}
                      for term, estimate in fixed],
            "random": [{"group": group, "term": "(Intercept)" if group != "Residual" else "",
                        "term2": "", "sd": sd, "variance": sd * sd, "corr": None}
                       for group, sd in random],
            "fit": {}}


FITS = {
    "DPM": fit_file([("alliance_lagged", -1.2), ("symptom_lagged", 0.4)]),
    "DPM-reverse": fit_file([("symptom_lagged", -0.01), ("alliance_lagged", 0.2)]),
    "M2": fit_file([("alliance_within", -1.0)], [("client_id", 1.0), ("Residual", 2.2)]),
    "M3": fit_file([("symptom_within", 0.0)], [("client_id", 0.3), ("Residual", 0.29)]),
    "R3": fit_file([("(Intercept)", 14.0), ("session", -0.5)],
                   [("client_id", 2.8), ("therapist_id", 1.1), ("Residual", 3.0)]),
}


def derived_frame(seed=3, clients=60, therapists=6):
    rng = np.random.default_rng(seed)
    rows = []
    for client in range(clients):
        last = int(rng.integers(3, 9))
        level_a, level_y = rng.normal(3.8, 0.4), rng.normal(14, 3)
        for session in range(1, last + 1):
            if 1 < session < last and rng.random() < 0.1:
                continue
            rows.append({"outcome": "phq9", "client_id": f"c{client:03d}",
                         "therapist_id": f"t{client % therapists}", "session": session,
                         "alliance_score": level_a + 0.02 * session + rng.normal(0, 0.3),
                         "symptom_score": level_y - 0.5 * session + rng.normal(0, 3)})
    return pd.DataFrame(rows)


def test_generating_parameters_come_from_their_sources():
    table = generating_parameters("phq9", FITS, derived_frame(), course_lengths=[10, 5])
    assert list(table.columns) == PARAMETER_COLUMNS
    value = dict(zip(table["parameter"], table["value"]))
    assert value[EFFECT_ESTIMATE] == -1.2 and value["symptom_ar"] == 0.4
    assert value["alliance_ar"] == 0.2 and value["lagged_reverse"] == -0.01
    assert value["symptom_mean"] == pytest.approx(13.5)
    assert value["symptom_trend"] == pytest.approx(0.5)
    assert value["symptom_sd_client"] == 2.8 and value["symptom_sd_therapist"] == 1.1
    assert value["symptom_sd_first"] == 3.0 and value["symptom_sd_innovation"] == 2.2
    assert value["alliance_sd_innovation"] == 0.29
    assert value["alliance_mean"] == pytest.approx(3.82, abs=0.2)
    assert 0.1 < value["alliance_sd_first"] < 0.5
    assert set(table["source"].str.len() > 0) == {True}
    params = dynamic_parameters(table, "phq9", sessions=10, effect=-0.5, dropout=0.3)
    assert (params.effect, params.max_sessions, params.dropout) == (-0.5, 10, 0.3)
    # dropout null: the hazard observed before the design's course length
    assert value["dropout_s5"] > 0 and value["dropout_s10"] > 0
    assert dynamic_parameters(table, "phq9", 5, -0.5).dropout == value["dropout_s5"]
    assert dynamic_parameters(table, "phq9", 10, -0.5).dropout == value["dropout_s10"]
    assert params.symptom_ar == 0.4 and params.alliance_sd_innovation == 0.29


def test_a_missing_term_names_the_fit_file():
    broken = dict(FITS, DPM=fit_file([("symptom_lagged", 0.4)]))
    with pytest.raises(DataError, match="DPM .primary. fit file.*alliance_lagged"):
        generating_parameters("phq9", broken, derived_frame())


def test_observed_attendance_by_hand():
    # spans 4, 6, 6 (longest 6); shortest course 4: ends after session 4 or 5 are events
    frame = pd.DataFrame({
        "client_id": ["a"] * 4 + ["b"] * 5 + ["c"] * 6,
        "session": [1, 2, 3, 4] + [1, 2, 4, 5, 6] + [1, 2, 3, 4, 5, 6]})
    observed = observed_attendance(frame)
    assert observed["min_sessions"] == 4
    # one event (a) over exposures a: 1 (session 4), b: 2 (4, 5), c: 2 (4, 5)
    assert observed["dropout"] == pytest.approx(1 / 5)
    # inside courses: a 2, b 4, c 4 = 10 sessions; b misses session 3
    assert observed["intermittent_missing"] == pytest.approx(1 / 10)
    # a designed course of 5 sessions: b and c completed it (censored at 5)
    assert observed_attendance(frame, 5)["dropout"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------
# A batch of simulated studies: seeded, the same whatever the batch size


@pytest.fixture(scope="module")
def planned_fits():
    from analysis.simulate.recovery import recovery_settings
    from analysis.study import load_study

    return recovery_settings(load_study(ROOT / "config" / "config.yaml"), "phq9")


@pytest.fixture(scope="module")
def parameters():
    return generating_parameters("phq9", FITS, derived_frame())


def tiny_power(**changes):
    grid = {"therapists": [6], "clients_per_therapist": [8], "sessions": [5], "dropout": [None]}
    return power_settings(section(**{"grid": grid, "simulations": 3, "simulations_per_job": 2,
                                     **changes}), ["phq9"], MODELS, seed=11)


def test_batches_are_seeded_and_split_invariant(planned_fits, parameters, tmp_path):
    from analysis.io import write_table
    from analysis.power.simulation import run_power_batch

    power = tiny_power()
    design = power.designs[0].id

    def batch(number, settings=power):
        return batch_settings(settings, planned_fits.fits, planned_fits.max_lag_gap, "phq9",
                              design, "estimate", number)

    first, second = run_power_batch(batch("0000"), parameters), run_power_batch(
        batch("0001"), parameters)
    again = run_power_batch(PowerBatchSettings.from_params(batch("0000").params()), parameters)
    for name, frame in (("a", first), ("b", again)):
        write_table(frame, tmp_path / f"{name}.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    whole = run_power_batch(batch("0000", tiny_power(simulations_per_job=3)), parameters)
    pd.testing.assert_frame_equal(pd.concat([first, second], ignore_index=True), whole)
    assert sorted(whole["index"].unique()) == [0, 1, 2]
    assert set(whole["estimator"]) == {"DPM", "M2"}
    assert (whole["effect"] == -1.2).all()
    assert whole["estimate"].notna().all() and whole["p"].notna().all()
    assert whole.loc[whole["estimator"] == "DPM", "converged"].all()
    assert list(whole["rejected"]) == list(whole["p"] < 0.05)
    # the smallest effect shares the simulated clients (common random numbers)
    smallest = run_power_batch(batch_settings(power, planned_fits.fits, 1, "phq9", design,
                                              "smallest_effect", "0000"), parameters)
    assert list(smallest["seed"]) == list(first["seed"])
    assert (smallest["effect"] == -0.5).all()


# ---------------------------------------------------------------------------------------------
# The power table


def replicates(rejections=(1, 1, 0, 1), estimator="DPM", design="t30_c10_s12_dobs",
               effect_kind="estimate"):
    return pd.DataFrame({
        "outcome": "phq9", "design": design, "design_therapists": 30,
        "design_clients_per_therapist": 10, "design_sessions": 12, "dropout_hazard": 0.14,
        "dropout_observed": True, "effect_kind": effect_kind, "effect": -1.5,
        "index": range(len(rejections)), "seed": range(len(rejections)),
        "estimator": estimator, "term": "alliance_lagged", "estimate": -1.4, "se": 0.5,
        "p": [0.01 if r else 0.2 for r in rejections], "converged": True,
        "rejected": [bool(r) for r in rejections]})


def test_power_table_counts_rejections_with_wilson_ci(tmp_path):
    from analysis.io import write_table

    data = pd.concat([replicates(), replicates((1, 0, 0, 0), "M2"),
                      replicates((1, 1, 1, 1), design="t20_c10_s12_dobs")], ignore_index=True)
    # a fit that gave no estimate: not significant, not converged
    data.loc[1, ["converged", "rejected"]] = False
    data.loc[1, ["estimate", "se", "p"]] = np.nan
    order = [("phq9", "t30_c10_s12_dobs", "estimate"), ("phq9", "t20_c10_s12_dobs", "estimate")]
    table = summarise_power(data, 0.05, order)
    assert list(table.columns) == POWER_COLUMNS
    assert list(table["design"]) == ["t30_c10_s12_dobs", "t30_c10_s12_dobs", "t20_c10_s12_dobs"]
    assert list(table["estimator"]) == ["DPM", "M2", "DPM"]
    dpm = table.iloc[0]
    assert (dpm["n_sims"], dpm["n_converged"], dpm["n_rejected"]) == (4, 3, 2)
    assert dpm["power"] == 0.5
    assert (dpm["ci_low"], dpm["ci_high"]) == pytest.approx(wilson_interval(2, 4))
    assert dpm["design_clients"] == 300
    # privacy: designs and aggregates only, no client or therapist column
    assert not {"client_id", "therapist_id", "n_clients"} & set(table.columns)
    # written through its contract, byte-identical on rerun
    for name in ("a", "b"):
        target = tmp_path / name / "results" / "tables" / "power.csv"
        write_table(summarise_power(data.sample(frac=1, random_state=1), 0.05, order), target)
    assert ((tmp_path / "a/results/tables/power.csv").read_bytes()
            == (tmp_path / "b/results/tables/power.csv").read_bytes())


# ---------------------------------------------------------------------------------------------
# The power curve and the report section


def power_table():
    data = pd.concat([
        replicates((1,) * 9 + (0,)), replicates((1, 0) * 5, "M2"),
        replicates((1, 0, 0, 0, 0) * 2, design="t20_c10_s12_dobs"),
        replicates((1, 1, 0, 0, 0) * 2, "M2", design="t20_c10_s12_dobs"),
        replicates((0,) * 10, effect_kind="smallest_effect")], ignore_index=True)
    data.loc[data["design"] == "t20_c10_s12_dobs", "design_therapists"] = 20
    data.loc[data["effect_kind"] == "smallest_effect", "effect"] = -0.5
    return summarise_power(data, 0.05, [("phq9", "t30_c10_s12_dobs", "estimate"),
                                        ("phq9", "t30_c10_s12_dobs", "smallest_effect"),
                                        ("phq9", "t20_c10_s12_dobs", "estimate")])


def test_power_curve_figure(tmp_path):
    from analysis.figures.power import power_curve_figure
    from analysis.figures.style import save_figure
    from analysis.figures.table import FAMILY

    fig = power_curve_figure(power_table(), {"phq9": "PHQ-9 (depression)"})
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("DPM (primary), b = -1.50") for label in labels)
    assert any("smallest effect" in label for label in labels)
    svg, png = tmp_path / "power_curve.svg", tmp_path / "power_curve.png"
    save_figure(fig, svg, png)
    assert svg.stat().st_size > 0 and png.read_bytes()[:4] == b"\x89PNG"
    family = FAMILY["power_curve"]
    assert family.switch == "power" and family.input_paths() == {
        "power": "results/tables/power.csv"}


def test_report_section_says_the_power_of_a_design():
    from analysis.report.inputs import ReportTables
    from analysis.report.power import power_context
    from analysis.report.view import ReportView
    from analysis.study import load_study

    view = ReportView(load_study(ROOT / "config" / "config.yaml").report)
    off = power_context(ReportTables(), view)
    assert off["power_run"] is False and "make power" in off["power_off"]
    context = power_context(ReportTables(power=power_table(),
                                         power_parameters=generating_parameters(
                                             "phq9", FITS, derived_frame())), view)
    first = context["power_sentences"][0]
    assert first.startswith("PHQ-9: with 30 therapists and 10 clients each (300 clients), "
                            "12 sessions and dropout as observed in this study (14% per "
                            "session), the power of the dynamic panel model (primary) to detect "
                            "b = -1.50 (this study's estimate) is .90 (95% CI ")
    assert "that of the conventional M2 is .50" in first
    adequate = " ".join(context["power_adequate"])
    assert "the smallest design of the grid with power of at least .80" in adequate
    assert "no design of the grid reaches power .80" in adequate  # the smallest effect
    assert context["power_table"].rows and context["power_parameters"].rows
    # the section's template renders the sentences and both tables
    from analysis.report.render import environment

    html = environment().get_template("report/power.html.j2").render(
        figures={}, process="alliance", **context)
    assert "Planning the next study" in html and "Wilson 95% Monte-Carlo" in html
    assert "with 30 therapists and 10 clients each (300 clients)" in html
    assert "smallest effect of interest" in html and "<table" in html


# ---------------------------------------------------------------------------------------------
# The Snakemake target on a tiny grid: one job per batch, byte-identical tables on rerun


def tiny_power_config(root: Path) -> None:
    """The shipped config cut to what `snakemake power` needs, with a tiny grid."""
    import yaml

    path = root / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["analysis"]["outcomes"] = ["phq9"]
    config["models"]["run"] = ["M2", "DPM", "M3", "DPM-reverse", "R3"]
    config["models"]["sensitivity"] = {key: False for key in config["models"]["sensitivity"]}
    config["models"]["riclpm"]["run"] = False
    config["multiverse"]["run"] = False
    for analysis in config["engagement"].values():
        analysis["run"] = False
    config["power"] = {"run": False, "outcomes": ["phq9"],
                       "grid": {"therapists": [8], "clients_per_therapist": [6],
                                "sessions": [5], "dropout": [None]},
                       "smallest_effect": {"phq9": -0.5}, "simulations": 2,
                       "simulations_per_job": 1}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_snakemake_power_target_is_seeded_and_byte_identical(tmp_path):
    from conftest import make_project_copy

    from analysis.catalogue import FILES

    project = make_project_copy(tmp_path / "project", n_clients=120, n_therapists=12)
    tiny_power_config(project.root)
    project.snakemake("power")
    outputs = [FILES["power"].path, FILES["power_parameters"].path,
               "results/figures/power_curve.svg",
               *sorted(str(path.relative_to(project.root)) for path in
                       (project.root / "results" / "fits" / "power").rglob("*.csv"))]
    # one job per batch: 1 design x 2 effects x 2 batches of one simulated study
    assert len(outputs) == 3 + 4
    first = {name: (project.root / name).read_bytes() for name in outputs}
    power = pd.read_csv(project.root / FILES["power"].path)
    assert list(power.columns) == POWER_COLUMNS
    assert sorted(zip(power["effect_kind"], power["estimator"])) == [
        ("estimate", "DPM"), ("estimate", "M2"), ("smallest_effect", "DPM"),
        ("smallest_effect", "M2")]
    assert (power["n_sims"] == 2).all()
    # privacy: no pseudonym of this study's clients or therapists in what power publishes
    derived = pd.read_parquet(project.root / FILES["derived"].path)
    pseudonyms = set(derived["client_id"].astype(str)) | set(derived["therapist_id"].astype(str))
    for name in outputs:
        text = first[name].decode("utf-8", errors="ignore")
        assert not [pseudonym for pseudonym in pseudonyms if pseudonym in text], name
    # everything the power analysis makes again, from its first step: the same bytes
    project.snakemake("power", "--forcerun", "power_parameters")
    assert {name: (project.root / name).read_bytes() for name in outputs} == first
