"""The multiverse (the modules of analysis.models.multiverse) and its stage.

- The enumeration is exactly the applicable product of the declared options (count and
  content), in a fixed order: the estimator is a choice, the choices that do not apply to an
  estimator are left out; config mistakes name their key.
- The conventional-model specification with the pipeline's options reproduces the pipeline's M2
  to 1e-8 and the dynamic-panel one the pipeline's DPM, in process and end to end; the detrended
  and completers specifications reproduce M2's sensitivity analyses.
- Specifications that end in the same final model on the same data are counted once; each
  outcome and lag is its own block of the summary.
- The bootstrap joint test is reproducible with the seed, imposes the null (resampled estimates
  average about 0) and gives p-values in (0, 1].
- Reruns give byte-identical multiverse.csv.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.errors import ConfigError
from analysis.models.multiverse.specifications import (
    CHOICE_NAMES,
    Specification,
    chunk_specifications,
    data_variants,
    primary_choices,
    resolve_choices,
)
from analysis.models.multiverse.bootstrap import (
    bootstrap_null,
    client_counts,
    impose_null_dpm,
    null_state,
    resample_rows,
)
from analysis.models.multiverse.design import Block, group_detrend
from analysis.models.multiverse.fit import fit_specification, fit_specifications
from analysis.models.multiverse.permutation import FixedVarianceGls
from analysis.models.multiverse.summary import (
    combine_multiverse,
    joint_test,
    mark_duplicates,
    publish_multiverse,
    summarise_multiverse,
)
from analysis.models.mixed.specs import ResolvedFit
from analysis.privacy import StudyTotals
from analysis.study import study_from_dict
from conftest import run_snakemake
from model_fixtures import make_config, simulate_derived

DEFAULT_OPTIONS = {
    "prorating": ["lenient", "strict"], "lag_gap": [1, 2], "outcome": ["phq9", "gad7"],
    "estimator": ["dpm", "mlm", "riclpm"],
    "centring": ["all_sessions", "model_rows"], "detrended": [False, True],
    "random": ["full", "minimal"], "sample": ["all", "completers"],
}
#: Specifications per estimator and estimand (prorating x applicable choices).
PER_ESTIMAND = {"mlm": 2 * 2 * 2 * 2 * 2, "dpm": 2 * 2 * 2, "riclpm": 2 * 2}


def _study(**multiverse):
    config = make_config()
    config["multiverse"] = multiverse
    return study_from_dict(config)


# ---------------------------------------------------------------------------------------------
# Enumeration


def test_default_multiverse_is_the_applicable_product_of_the_declared_options():
    study = _study()
    assert study.multiverse.choices == DEFAULT_OPTIONS
    specs = study.multiverse_specifications
    assert len(specs) == 2 * 2 * sum(PER_ESTIMAND.values()) == 176
    assert [spec.index for spec in specs] == list(range(1, 177))
    assert len({spec.id for spec in specs}) == 176
    for estimator, count in PER_ESTIMAND.items():
        members = [spec for spec in specs if spec.estimator == estimator]
        assert len(members) == 4 * count
    # choices that do not apply to an estimator hold no option
    assert all(spec.centring is None and spec.detrended is None for spec in specs
               if spec.estimator != "mlm")
    assert all(spec.random is None for spec in specs if spec.estimator == "riclpm")
    assert all(spec.random is not None for spec in specs if spec.estimator == "dpm")
    mlm = [tuple(spec.choices.values()) for spec in specs if spec.estimator == "mlm"]
    expected = [values for values in itertools.product(
        *(DEFAULT_OPTIONS[name] for name in CHOICE_NAMES)) if values[3] == "mlm"]
    assert mlm == expected
    primary = [spec for spec in specs if spec.primary]
    assert [(spec.outcome, spec.estimator, spec.lag_gap) for spec in primary] == [
        ("phq9", "dpm", 1), ("gad7", "dpm", 1)]
    reproduces_m2 = [spec for spec in specs if spec.reproduces == "M2"]
    assert [spec.outcome for spec in reproduces_m2] == ["phq9", "gad7"]
    assert all(spec.choices | {"outcome": None, "estimator": None}
               == primary_choices(1) | {"outcome": None, "estimator": None}
               for spec in reproduces_m2)


def test_declared_options_are_exactly_what_is_enumerated():
    study = _study(choices={"lag_gap": [2, 1, 3], "outcome": ["gad7"], "random": ["minimal"],
                            "detrended": [True], "estimator": ["mlm"]})
    specs = study.multiverse_specifications
    assert len(specs) == 2 * 3 * 1 * 2 * 1 * 1 * 2
    assert [spec.lag_gap for spec in specs[::4]] == [2, 1, 3, 2, 1, 3]  # declared order
    assert {spec.outcome for spec in specs} == {"gad7"}
    assert {(spec.random, spec.detrended) for spec in specs} == {("minimal", True)}
    assert not any(spec.primary or spec.reproduces for spec in specs)


def test_a_specification_round_trips_through_plain_params():
    for spec in _study().multiverse_specifications[::7]:
        assert Specification.from_dict(spec.as_dict()) == spec


def test_chunks_keep_order_and_read_few_data_variants():
    specs = _study().multiverse_specifications
    chunks = chunk_specifications(list(specs), 88)
    assert [len(chunk) for chunk in chunks] == [88, 88]
    assert [data_variants(chunk) for chunk in chunks] == [["lenient"], ["strict"]]
    assert [spec for chunk in chunk_specifications(list(specs), 5) for spec in chunk] == list(specs)
    with pytest.raises(ConfigError, match="specifications_per_job"):
        chunk_specifications(list(specs), 0)


@pytest.mark.parametrize("choices, message", [
    ({"centring": ["everywhere"]}, r"multiverse\.choices\.centring.*everywhere"),
    ({"outcome": ["ors"]}, r"multiverse\.choices\.outcome\[0\].*analysis\.outcomes"),
    ({"lag_gap": [0]}, r"multiverse\.choices\.lag_gap"),
    ({"prorating": []}, r"multiverse\.choices\.prorating"),
])
def test_config_mistakes_name_the_key(choices, message):
    with pytest.raises(ConfigError, match=message):
        _study(choices=choices)


def test_resolve_choices_names_an_unknown_choice():
    with pytest.raises(ConfigError, match=r"multiverse\.choices\.centering.*Did you mean "
                                          r"'centring'"):
        resolve_choices({"centering": ["model_rows"]}, ["phq9"])


def test_joint_test_is_off_by_default_and_needs_199_resamples():
    assert _study().multiverse.resamples == 0
    assert _study(joint_test={"run": True, "resamples": 399}).multiverse.resamples == 399
    assert _study(joint_test={"run": False, "resamples": 399}).multiverse.resamples == 0
    with pytest.raises(ConfigError, match=r"joint_test\.resamples.*50"):
        _study(joint_test={"run": True, "resamples": 50})


def test_multiverse_and_riclpm_can_be_switched_off():
    config = make_config()
    config["multiverse"] = {"run": False}
    config["models"]["riclpm"] = {"run": False}
    study = study_from_dict(config)
    assert study.multiverse is None and study.riclpm is None
    assert study.multiverse_chunks == [] and study.report.multiverse is None


# ---------------------------------------------------------------------------------------------
# Fitting on simulated derived data


def _variant(derived: pd.DataFrame) -> pd.DataFrame:
    # a data variant of one lag gap: simulated sessions are consecutive, so gap 1 is next
    return derived.rename(columns={"symptom_next": "symptom_next_gap1"})


def _m2(study, outcome: str = "phq9") -> ResolvedFit:
    return ResolvedFit.from_dict(study.multiverse_fit_settings(0).fits[outcome])


@pytest.fixture(scope="module")
def simulated():
    derived, _ = simulate_derived(n_clients=150, n_therapists=15, seed=5)
    return derived


@pytest.fixture(scope="module")
def study():
    return _study(choices={"lag_gap": [1], "prorating": ["lenient"], "outcome": ["phq9"],
                           "estimator": ["mlm"]})


@pytest.fixture(scope="module")
def panel_study():
    return _study(choices={"lag_gap": [1, 2], "prorating": ["lenient"], "outcome": ["phq9"],
                           "estimator": ["dpm", "riclpm"]})


def _dpm(study, outcome: str = "phq9") -> ResolvedFit:
    return ResolvedFit.from_dict(study.multiverse_fit_settings(0).fits[f"{outcome}/DPM"])


def test_primary_specification_equals_the_pipelines_m2(simulated, study):
    from analysis.models.mixed.fitting import fit_planned_model

    m2 = study.fit("phq9", "M2", "primary")
    expected = {row["term"]: row for row in fit_planned_model(simulated, m2)["fixed"]}
    block = Block.of(_variant(simulated), "phq9")
    primary = next(spec for spec in study.multiverse_specifications if spec.reproduces == "M2")
    record, _ = fit_specification(block, primary, _m2(study), 8)
    for name in ("estimate", "se", "df", "p", "ci_low", "ci_high", "std_estimate"):
        assert record[name] == pytest.approx(expected["alliance_within"][name], rel=1e-8,
                                             abs=1e-12), name


def test_primary_specification_equals_the_pipelines_dpm(simulated, panel_study):
    from analysis.models.panel.dpm_stage import fit_dynamic_panel

    dpm = panel_study.fit("phq9", "DPM", "primary")
    expected = fit_dynamic_panel(simulated, dpm)["fixed"][0]
    primary = next(spec for spec in panel_study.multiverse_specifications if spec.primary)
    assert (primary.estimator, primary.lag_gap, primary.random) == ("dpm", 1, "full")
    record, state = fit_specification(Block.of(_variant(simulated), "phq9"), primary,
                                      _m2(panel_study), 8, _dpm(panel_study))
    assert record["status"] == "fitted" and state is not None
    for name in ("estimate", "se", "p", "ci_low", "ci_high", "std_estimate"):
        assert record[name] == pytest.approx(expected[name], rel=1e-10), name


def test_panel_specifications_of_lag_2_use_every_second_wave(simulated, panel_study):
    block = Block.of(_variant(simulated), "phq9")
    records = {spec.id: fit_specification(block, spec, _m2(panel_study), 8,
                                          _dpm(panel_study))[0]
               for spec in panel_study.multiverse_specifications if spec.sample == "all"}
    lag1 = records["phq9-lag1-dpm-lenient-full-all"]
    lag2 = records["phq9-lag2-dpm-lenient-full-all"]
    assert lag2["n_waves"] == (lag1["n_waves"] + 1) // 2
    assert lag1["estimate"] != lag2["estimate"]
    riclpm = records["phq9-lag1-riclpm-lenient-all"]
    assert riclpm["status"] in ("fitted", "inadmissible", "not_estimable")
    assert riclpm["term"] == "alliance_lagged"


@pytest.mark.parametrize("analysis, options", [
    ("detrended", {"detrended": True}),
    ("completers", {"sample": "completers"}),
])
def test_sensitivity_specifications_equal_the_pipelines_sensitivity_fits(simulated, study,
                                                                         analysis, options):
    from analysis.models.mixed.fitting import fit_planned_model

    fit = study.fit("phq9", "M2", analysis)
    term = "alliance_within_detrended" if analysis == "detrended" else "alliance_within"
    expected = {row["term"]: row for row in fit_planned_model(simulated, fit)["fixed"]}[term]
    primary = next(spec for spec in study.multiverse_specifications if spec.reproduces == "M2")
    spec = dataclasses.replace(primary, **options)
    record, _ = fit_specification(Block.of(_variant(simulated), "phq9"), spec, _m2(study), 8)
    assert record["term"] == term
    assert record["estimate"] == pytest.approx(expected["estimate"], rel=1e-8)


def test_model_rows_centring_recomputes_the_split_on_the_rows_used(simulated, study):
    primary = next(spec for spec in study.multiverse_specifications if spec.reproduces == "M2")
    spec = dataclasses.replace(primary, centring="model_rows")
    block = Block.of(_variant(simulated), "phq9")
    _, (_, design, _, data) = fit_specification(block, spec, _m2(study), 8)
    within = data.groupby("client_id")["alliance_within"].mean()
    assert np.abs(within).max() < 1e-12  # centred on the model's rows
    between = data.groupby("client_id")["alliance_between_c"].first()
    assert abs(between.mean()) < 1e-12
    # the client mean over the model rows, recovered from the observed scores
    rows = block.frame.iloc[design.rows]
    mean_on_rows = rows.groupby("client_id")["alliance_score"].mean()
    recovered = (mean_on_rows - mean_on_rows.mean()).reindex(between.index)
    assert np.allclose(between.to_numpy(), recovered.to_numpy(), atol=1e-12)


def test_group_detrend_equals_derive(simulated):
    from analysis.derive import _detrended

    block = Block.of(_variant(simulated), "phq9")
    ours = group_detrend(block.codes, block.session, block.alliance, block.n_clients)
    theirs = _detrended(block.frame[["client_id", "session"]],
                        block.frame["alliance_score"].astype(float)).to_numpy()
    assert np.allclose(ours, theirs, equal_nan=True, atol=1e-12)


def test_fixed_variance_gls_reproduces_the_fit(simulated, study):
    block = Block.of(_variant(simulated), "phq9")
    for spec in study.multiverse_specifications[:4]:
        record, (_, design, final, data) = fit_specification(block, spec, _m2(study), 8)
        solver = FixedVarianceGls(design, final, data)
        columns = design.alliance_columns(block.observed())
        estimate, se = solver.estimate(np.column_stack([columns[n] for n in solver.dynamic]))
        assert estimate == pytest.approx(record["estimate"], rel=1e-8)
        assert se == pytest.approx(record["se"], rel=1e-6)


def test_client_resampling_is_seeded_and_keeps_clients_whole():
    clients = [f"c{i}" for i in range(30)]
    first = client_counts(clients, 7, 0, "phq9")
    assert first.sum() == 30 and first.equals(client_counts(list(reversed(clients)), 7, 0, "phq9"))
    assert not first.equals(client_counts(clients, 7, 1, "phq9"))
    frame = pd.DataFrame({"client_id": ["a", "a", "b", "c", "c", "c"], "x": range(6)})
    out = resample_rows(frame, pd.Series([2, 0, 1], index=["a", "b", "c"]))
    assert list(out["client_id"]) == ["a#0", "a#0", "a#1", "a#1", "c#0", "c#0", "c#0"]
    assert list(out["x"]) == [0, 1, 0, 1, 3, 4, 5]


def test_dpm_null_is_imposed_through_the_dynamics():
    panel = pd.DataFrame({"a1": [1.0, 2.0], "a2": [3.0, np.nan], "a3": [0.0, 1.0],
                          "y1": [5.0, 6.0], "y2": [5.0, 6.0], "y3": [5.0, 6.0]})
    out = impose_null_dpm(panel, 3, estimate=0.5, rho=0.4)
    assert list(out["y1"]) == [5.0, 6.0]
    assert out["y2"].tolist() == pytest.approx([5.0 - 0.5 * 1.0, 6.0 - 0.5 * 2.0])
    # wave 3: d3 = rho d2 + b a2 (a missing a2 enters as the client's mean alliance, 1.5)
    assert out["y3"].tolist() == pytest.approx([5.0 - (0.4 * 0.5 + 0.5 * 3.0),
                                                6.0 - (0.4 * 1.0 + 0.5 * 1.5)])


def _run(derived, study, resamples, seed):
    settings = dataclasses.replace(study.multiverse_fit_settings(0), resamples=resamples,
                                   seed=seed)
    return fit_specifications({"lenient": _variant(derived)}, settings)


def _summary_settings(study, resamples):
    return dataclasses.replace(study.multiverse_summary_settings(), resamples=resamples)


def test_bootstrap_joint_test_mechanics(simulated, study):
    first = _run(simulated, study, 12, seed=11)
    second = _run(simulated, study, 12, seed=11)
    other = _run(simulated, study, 12, seed=12)
    assert [r.get("null") for r in first] == [r.get("null") for r in second]
    with_null = [r for r in first if r.get("null")]
    assert with_null and [r["null"]["estimate"] for r in with_null] != [
        r["null"]["estimate"] for r in other if r.get("null")]
    # only the estimators whose size was checked carry a bootstrap null (SIZE_CHECKED_ESTIMATORS)
    estimators = {r["specification"]["estimator"] for r in with_null}
    assert estimators == {"mlm"}, estimators
    settings = _summary_settings(study, 12)
    test = joint_test(first, settings)
    assert test.equals(joint_test(second, settings))
    assert set(test["statistic"]) == {"share_significant_expected",
                                      "median_signed_std_estimate", "mean_signed_z"}
    assert test["p_bootstrap"].between(0, 1).all() and (test["resamples"] == 12).all()
    # the null is imposed: the full-sample estimate of the null data is 0 and the resampled
    # estimates average about 0 (the observed estimate is about -1.5)
    block = Block.of(_variant(simulated), "phq9")
    spec = next(spec for spec in study.multiverse_specifications if spec.reproduces == "M2")
    record, state = fit_specification(block, spec, _m2(study), 8)
    null = null_state(state)
    ones = pd.Series(1, index=sorted(block.frame["client_id"].astype(str).unique()))
    assert abs(null.estimate(ones)[0]) < 1e-8
    estimates = np.array(bootstrap_null(block, [null], 40, 3, "phq9")[0]["estimate"])
    assert abs(estimates.mean()) < 3 * estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean()) < 0.1 * abs(record["estimate"])


def test_duplicates_are_counted_once():
    table = pd.DataFrame({
        "index": [1, 2, 3, 4, 5], "id": list("abcde"), "outcome": "phq9",
        "lag_gap": [1, 1, 1, 2, 1],
        "status": ["fitted", "fitted", "fitted", "fitted", "not_estimable"],
        "fingerprint": ["x", "x", "y", "x", ""]})
    marked = mark_duplicates(table)
    assert marked["distinct"].tolist() == [True, False, True, True, False]
    assert marked["duplicate_of"].tolist() == ["", "a", "", "", ""]


def test_published_multiverse_hides_small_counts_and_their_complements():
    table = pd.DataFrame({"id": ["a", "b", "c"], "outcome": ["phq9", "phq9", "gad7"],
                          "n_clients": pd.array([35, 20, 3], dtype="Int64"),
                          "n_therapists": pd.array([6, 12, None], dtype="Int64")})
    totals = StudyTotals(clients=36, therapists=13, episodes={"phq9": 36, "gad7": 30})
    published = publish_multiverse(table, 10, totals)
    # 35 of 36 clients and 12 of 13 therapists would give the one left out back
    assert published["n_clients"].tolist() == [">26", "20", "<10"]
    assert published["n_therapists"].tolist()[:2] == ["<10", ">3"]
    assert pd.isna(published["n_therapists"].iloc[2])
    assert table["n_clients"].tolist() == [35, 20, 3]  # the unpublished table is untouched


def test_fallback_duplicates_are_detected_and_summarised_per_estimand(study):
    # no therapist variance: every "client + therapist" specification falls back to client-only
    data, _ = simulate_derived(n_clients=120, n_therapists=12, seed=4, sd_therapist=0.0)
    results = _run(data, study, 0, seed=1)
    settings = study.multiverse_summary_settings()
    table = combine_multiverse(results, settings)
    full = table.loc[table["random"] == "full"]
    assert full["simplified"].all()
    # the first of each pair in enumeration order (client + therapist) is kept
    assert full["distinct"].all()
    minimal = table.loc[table["random"] == "minimal"]
    assert minimal["duplicate_of"].tolist() == full["id"].tolist()
    summary = summarise_multiverse(table, joint_test(results, settings), settings)
    values = summary.set_index(["outcome", "lag_gap", "estimator", "statistic"])["value"]
    assert values[("phq9", 1, "all", "n_planned")] == 16
    assert values[("phq9", 1, "all", "n_distinct")] == 8
    assert values[("phq9", 1, "mlm", "n_duplicates")] == 8


def test_combined_table_and_summary(simulated, study):
    results = _run(simulated, study, 0, seed=1)
    table = combine_multiverse(results, study.multiverse_summary_settings())
    assert len(table) == len(study.multiverse_specifications) == 16
    assert list(table["index"]) == list(range(1, 17))
    assert set(table["status"]) == {"fitted"}
    assert table["significant_expected"].all()  # the simulated within effect is -1.5
    summary = summarise_multiverse(table, joint_test(results, study.multiverse_summary_settings()),
                                   study.multiverse_summary_settings())
    assert set(summary["outcome"]) == {"phq9"} and "all" not in set(summary["outcome"])
    values = summary.set_index(["outcome", "lag_gap", "estimator", "statistic"])["value"]
    assert values[("phq9", 1, "all", "n_planned")] == 16
    assert values[("phq9", 1, "all", "share_significant_expected")] == 1.0
    assert values[("phq9", 1, "mlm", "primary_estimate")] == pytest.approx(
        table.loc[table["reproduces"] == "M2", "estimate"].iloc[0])
    assert not summary["statistic"].str.startswith("joint_").any()  # joint test off


def test_an_unestimable_specification_is_recorded_not_fatal(simulated, study):
    # completers with a threshold no client reaches: no rows, so the spec says why
    settings = dataclasses.replace(study.multiverse_fit_settings(0), completers_min_sessions=99)
    results = fit_specifications({"lenient": _variant(simulated)}, settings)
    statuses = {r["specification"]["sample"]: r["status"] for r in results}
    assert statuses == {"all": "fitted", "completers": "not_estimable"}
    failed = next(r for r in results if r["status"] == "not_estimable")
    assert "no rows" in failed["reason"]


# ---------------------------------------------------------------------------------------------
# End to end (the session's pipeline run)


def test_pipeline_primary_specification_equals_models_csv(pipeline_run):
    root = pipeline_run.root
    multiverse = pd.read_csv(root / "results/tables/multiverse.csv")
    models = pd.read_csv(root / "results/tables/models.csv")
    assert len(multiverse) == 176
    for outcome in ("phq9", "gad7"):
        for model, term in (("M2", "alliance_within"), ("DPM", "alliance_lagged")):
            spec = multiverse.loc[(multiverse["reproduces"] == model)
                                  & (multiverse["outcome"] == outcome)].iloc[0]
            row = models.loc[(models["outcome"] == outcome) & (models["model"] == model)
                             & (models["analysis"] == "primary")
                             & (models["term"] == term)].iloc[0]
            for name in ("estimate", "se", "ci_low", "ci_high"):
                assert spec[name] == pytest.approx(row[name], rel=1e-8), (outcome, model, name)


def test_pipeline_multiverse_reruns_byte_identically(pipeline_run, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(pipeline_run.root, root, symlinks=True)
    table = root / "results/tables/multiverse.csv"
    before = table.read_bytes()
    shutil.rmtree(root / "results/fits/multiverse")
    shutil.rmtree(root / "data/processed/multiverse")
    table.unlink()
    run_snakemake(root, "results/tables/multiverse.csv")
    assert table.read_bytes() == before


def test_pipeline_report_has_the_multiverse_section(pipeline_run):
    html = (pipeline_run.root / "results/report/index.html").read_text(encoding="utf-8")
    assert 'id="multiverse"' in html and "Multiverse of specifications" in html
    assert "specifications" in html and "figure-specification_curve" in html
    assert "The joint test of this curve was not run" in html
    assert "distinct" in html
