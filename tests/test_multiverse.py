"""The multiverse (analysis.models.multiverse and its multiverse_* modules) and its stage.

- The enumeration is exactly the product of the declared options (count and content), in a fixed
  order, with the primary specification marked; config mistakes name their key.
- The primary specification reproduces the pipeline's M2 (alliance_within, primary analysis) to
  1e-8, in process and end to end (multiverse.csv against models.csv); the detrended and
  completers specifications reproduce M2's sensitivity analyses.
- The numpy helpers agree with analysis.derive; the fixed-variance GLS reproduces the fitted
  estimate at the observed data and stays close to REML refits under permutation.
- The permutation test is reproducible with the seed, changes with it, and is sensible: no
  signal on null data, the smallest possible p-value on strong data.
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
from analysis.models.multiverse import (
    CHOICE_NAMES,
    Specification,
    chunk_specifications,
    data_variants,
    primary_choices,
    resolve_choices,
)
from analysis.models.multiverse_fit import _Block, fit_specification, fit_specifications
from analysis.models.multiverse_permutation import (
    _FixedVarianceGls,
    group_detrend,
    permutation_keys,
    permutation_null,
    permute_within_groups,
    row_hashes,
)
from analysis.models.multiverse_summary import (
    combine_multiverse,
    permutation_test,
    summarise_multiverse,
)
from analysis.models.specs import ResolvedFit
from analysis.study import study_from_dict
from conftest import run_snakemake
from model_fixtures import make_config, simulate_derived

DEFAULT_OPTIONS = {
    "prorating": ["lenient", "strict"], "lag_gap": [1, 2], "outcome": ["phq9", "gad7"],
    "centring": ["all_sessions", "model_rows"], "detrended": [False, True],
    "random": ["full", "minimal"], "sample": ["all", "completers"],
}


def _study(**multiverse):
    config = make_config()
    config["multiverse"] = multiverse
    return study_from_dict(config)


# ---------------------------------------------------------------------------------------------
# Enumeration


def test_default_multiverse_is_the_full_product_of_the_declared_options():
    study = _study()
    assert study.multiverse.choices == DEFAULT_OPTIONS
    specs = study.multiverse_specifications
    assert len(specs) == 128
    expected = list(itertools.product(*(DEFAULT_OPTIONS[name] for name in CHOICE_NAMES)))
    assert [tuple(spec.choices.values()) for spec in specs] == expected
    assert [spec.index for spec in specs] == list(range(1, 129))
    assert len({spec.id for spec in specs}) == 128
    primary = [spec for spec in specs if spec.primary]
    assert [spec.outcome for spec in primary] == ["phq9", "gad7"]
    assert all(spec.choices | {"outcome": None} == primary_choices(1) | {"outcome": None}
               for spec in primary)


def test_declared_options_are_exactly_what_is_enumerated():
    study = _study(choices={"lag_gap": [2, 1, 3], "outcome": ["gad7"], "random": ["minimal"],
                            "detrended": [True]})
    specs = study.multiverse_specifications
    assert len(specs) == 2 * 3 * 1 * 2 * 1 * 1 * 2
    assert [spec.lag_gap for spec in specs[::4]] == [2, 1, 3, 2, 1, 3]  # declared order
    assert {spec.outcome for spec in specs} == {"gad7"}
    assert {(spec.random, spec.detrended) for spec in specs} == {("minimal", True)}
    assert not any(spec.primary for spec in specs)  # no specification has every primary option


def test_a_specification_round_trips_through_plain_params():
    spec = _study().multiverse_specifications[77]
    assert Specification.from_dict(spec.as_dict()) == spec


def test_chunks_keep_order_and_read_few_data_variants():
    specs = _study().multiverse_specifications
    chunks = chunk_specifications(list(specs), 64)
    assert [len(chunk) for chunk in chunks] == [64, 64]
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


def test_permutations_are_off_or_at_least_200():
    assert _study(permutations=0).multiverse.permutations == 0
    assert _study(permutations=250).multiverse.permutations == 250
    with pytest.raises(ConfigError, match=r"multiverse\.permutations is 50"):
        _study(permutations=50)


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
    return _study(choices={"lag_gap": [1], "prorating": ["lenient"], "outcome": ["phq9"]})


def test_primary_specification_equals_the_pipelines_m2(simulated, study):
    from analysis.models.fitting import fit_planned_model

    m2 = study.fit("phq9", "M2", "primary")
    expected = {row["term"]: row for row in fit_planned_model(simulated, m2)["fixed"]}
    block = _Block.of(_variant(simulated), "phq9")
    primary = next(spec for spec in study.multiverse_specifications if spec.primary)
    record, _ = fit_specification(block, primary, m2, 8)
    for name in ("estimate", "se", "df", "p", "ci_low", "ci_high", "std_estimate"):
        assert record[name] == pytest.approx(expected["alliance_within"][name], rel=1e-8,
                                             abs=1e-12), name


@pytest.mark.parametrize("analysis, options", [
    ("detrended", {"detrended": True}),
    ("completers", {"sample": "completers"}),
])
def test_sensitivity_specifications_equal_the_pipelines_sensitivity_fits(simulated, study,
                                                                         analysis, options):
    from analysis.models.fitting import fit_planned_model

    fit = study.fit("phq9", "M2", analysis)
    term = fit.primary_term
    expected = {row["term"]: row for row in fit_planned_model(simulated, fit)["fixed"]}[term]
    primary = next(spec for spec in study.multiverse_specifications if spec.primary)
    spec = dataclasses.replace(primary, **options)
    record, _ = fit_specification(_Block.of(_variant(simulated), "phq9"), spec, _m2(study), 8)
    assert record["term"] == term
    assert record["estimate"] == pytest.approx(expected["estimate"], rel=1e-8)


def test_model_rows_centring_recomputes_the_split_on_the_rows_used(simulated, study):
    primary = next(spec for spec in study.multiverse_specifications if spec.primary)
    spec = dataclasses.replace(primary, centring="model_rows")
    block = _Block.of(_variant(simulated), "phq9")
    _, (design, _, data) = fit_specification(block, spec, _m2(study), 8)
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

    block = _Block.of(_variant(simulated), "phq9")
    ours = group_detrend(block.codes, block.session, block.alliance, block.n_clients)
    theirs = _detrended(block.frame[["client_id", "session"]],
                        block.frame["alliance_score"].astype(float)).to_numpy()
    assert np.allclose(ours, theirs, equal_nan=True, atol=1e-12)


def test_within_group_permutation_keeps_each_clients_values():
    values = np.array([1.0, 2.0, np.nan, 3.0, 10.0, 20.0, 30.0, 40.0])
    codes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    hashes = row_hashes(np.array(["a"] * 4 + ["b"] * 4, dtype=object), np.array([1, 2, 3, 4] * 2))
    shuffled = permute_within_groups(values, codes, permutation_keys(hashes, 1, 0))
    assert np.isnan(shuffled[2])
    assert sorted(shuffled[[0, 1, 3]]) == [1.0, 2.0, 3.0]
    assert sorted(shuffled[4:]) == [10.0, 20.0, 30.0, 40.0]
    again = permute_within_groups(values, codes, permutation_keys(hashes, 1, 0))
    assert np.array_equal(shuffled, again, equal_nan=True)


def test_fixed_variance_gls_reproduces_the_fit_and_approximates_refits(simulated, study):
    block = _Block.of(_variant(simulated), "phq9")
    states = []
    for spec in study.multiverse_specifications[:4]:
        record, state = fit_specification(block, spec, _m2(study), 8)
        design, final, data = state
        solver = _FixedVarianceGls(design, final, data)
        columns = design.alliance_columns(block.observed())
        estimate, se = solver.estimate(np.column_stack([columns[n] for n in solver.dynamic]))
        assert estimate == pytest.approx(record["estimate"], rel=1e-8)
        assert se == pytest.approx(record["se"], rel=1e-6)
        states.append(state)
    fast = permutation_null(block, states[:2], 8, seed=3, method="fixed_variance")
    exact = permutation_null(block, states[:2], 8, seed=3, method="refit")
    for approximate, refitted in zip(fast, exact):
        a, b = np.array(approximate["estimate"]), np.array(refitted["estimate"])
        # measured: within 2-3% of the null's spread on the demo data
        assert np.abs(a - b).max() < 0.1 * b.std()


def _run(derived, study, permutations, seed):
    settings = dataclasses.replace(study.multiverse_fit_settings(0), permutations=permutations,
                                   seed=seed)
    return fit_specifications({"lenient": _variant(derived)}, settings)


def _summary_settings(study, permutations):
    return dataclasses.replace(study.multiverse_summary_settings(), permutations=permutations)


def test_permutation_test_is_reproducible_with_the_seed(simulated, study):
    first = _run(simulated, study, 20, seed=11)
    second = _run(simulated, study, 20, seed=11)
    other = _run(simulated, study, 20, seed=12)
    assert [r["null"] for r in first] == [r["null"] for r in second]
    assert [r["null"]["estimate"] for r in first] != [r["null"]["estimate"] for r in other]
    settings = _summary_settings(study, 20)
    assert permutation_test(first, settings).equals(permutation_test(second, settings))


def test_permutation_test_is_sensible_on_null_and_on_strong_data(study):
    settings = _summary_settings(study, 40)
    p_values, null_medians = [], []
    for seed in (21, 22, 23, 24):  # four null datasets: no within-client effect
        data, _ = simulate_derived(n_clients=150, n_therapists=15, seed=seed, within=0.0)
        test = permutation_test(_run(data, study, 40, seed=1), settings).set_index("statistic")
        p_values.append(test["p_permutation"])
        null_medians.append(test.loc["median_signed_std_estimate", "null_median"])
    p_values = pd.DataFrame(p_values)
    # under the null a p below .05 is rare (expected 0.2 of 4 per statistic)
    assert ((p_values < 0.05).sum() <= 1).all(), p_values
    assert p_values.max().max() > 0.3, p_values
    # the permutation distribution of the median estimate is centred on 0
    assert np.abs(null_medians).max() < 0.02, null_medians
    strong, _ = simulate_derived(n_clients=150, n_therapists=15, seed=8, within=-2.5)
    strong_test = permutation_test(_run(strong, study, 40, seed=1), settings)
    by_name = strong_test.set_index("statistic")["p_permutation"]
    # the share is bounded by 1, which a permutation can tie (a client with two sessions keeps
    # its order half the time), so it gets the small p it can; the others the smallest there is
    assert by_name["share_significant_expected"] <= 0.05, strong_test
    assert by_name[["median_signed_std_estimate", "mean_signed_z"]].tolist() == pytest.approx(
        [1 / 41, 1 / 41]), strong_test
    assert (strong_test["permutations"] == 40).all()


def test_combined_table_and_summary(simulated, study):
    results = _run(simulated, study, 0, seed=1)
    table = combine_multiverse(results, study.multiverse_summary_settings())
    assert len(table) == len(study.multiverse_specifications) == 16
    assert list(table["index"]) == list(range(1, 17))
    assert set(table["status"]) == {"fitted"}
    assert table["significant_expected"].all()  # the simulated within effect is -1.5
    summary = summarise_multiverse(table, permutation_test(results, study
                                                           .multiverse_summary_settings()),
                                   study.multiverse_summary_settings())
    values = summary.set_index(["scope", "statistic"])["value"]
    assert values[("all", "n_specifications")] == 16
    assert values[("all", "share_significant_expected")] == 1.0
    assert values[("phq9", "primary_estimate")] == pytest.approx(
        table.loc[table["primary"], "estimate"].iloc[0])
    assert not summary["statistic"].str.startswith("joint_").any()  # no permutations asked


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
    assert len(multiverse) == 128
    for outcome in ("phq9", "gad7"):
        spec = multiverse.loc[multiverse["primary"] & (multiverse["outcome"] == outcome)].iloc[0]
        m2 = models.loc[(models["outcome"] == outcome) & (models["model"] == "M2")
                        & (models["analysis"] == "primary")
                        & (models["term"] == "alliance_within")].iloc[0]
        for name in ("estimate", "se", "ci_low", "ci_high"):
            assert spec[name] == pytest.approx(m2[name], rel=1e-8), (outcome, name)


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
    assert "The permutation-based joint test was not run" in html
