"""Therapist and patient contributions to the alliance-outcome association (methods section 8).

Baldwin, Wampold & Imel's (2007) decomposition, fitted by the project's engine, is checked against
lmerTest live through ``tests/r/fit_lmer.R`` on the same model rows (estimates, SEs and
Satterthwaite df to 1e-4 relative; skipped with the reason when R or lmerTest is missing, a
failure when ALLIANCE_REQUIRE_R=1). Designs that cannot carry it give "not_estimated" rows with
the reason, never an error.
"""

from __future__ import annotations

import doctest
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.engagement import therapist_patient
from analysis.engagement.therapist_patient import (
    FORMULA,
    MIN_CLIENTS_PER_THERAPIST,
    MIN_THERAPISTS,
    RESULT_COLUMNS,
    TERMS,
    client_outcome_table,
    fit_therapist_patient,
    split_alliance_by_therapist,
    therapist_patient_rows,
)
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_lmer.R"


def simulate_clients(n_therapists=30, caseload=(3, 10), seed=1, therapist_effect=-1.5,
                     client_effect=0.0, therapist_sd=1.5, small_caseloads=0):
    """One row per client: therapist, start and end score, mean alliance.

    Therapists differ in how well they form alliances (``skill``, SD 0.6) and their clients'
    outcomes carry ``therapist_effect`` per point of it; clients' own alliance (SD 0.8 around
    their therapist) carries ``client_effect``. ``small_caseloads`` therapists with 1-2 clients
    are added (the decomposition leaves them out).
    """
    rng = np.random.default_rng(seed)
    rows = []
    sizes = list(rng.integers(caseload[0], caseload[1] + 1, size=n_therapists))
    sizes += list(rng.integers(1, 3, size=small_caseloads))
    for therapist, size in enumerate(sizes):
        skill = rng.normal(scale=0.6)
        therapist_part = rng.normal(scale=therapist_sd)
        for _ in range(size):
            own = rng.normal(scale=0.8)
            start = rng.normal(16, 4)
            end = (4 + 0.5 * start + therapist_effect * skill + client_effect * own
                   + therapist_part + rng.normal(scale=4))
            rows.append({"client_id": f"c{len(rows):04d}", "therapist_id": f"t{therapist:02d}",
                         "start_score": start, "end_score": end,
                         "alliance_mean": 5 + skill + own})
    return pd.DataFrame(rows)


def test_the_split_adds_up_and_centres_on_the_grand_mean():
    clients = simulate_clients(12, seed=3)
    split = split_alliance_by_therapist(clients)
    np.testing.assert_allclose(split["alliance_therapist"] + split["alliance_client"],
                               clients["alliance_mean"] - clients["alliance_mean"].mean())
    by_therapist = split.groupby("therapist_id")
    np.testing.assert_allclose(by_therapist["alliance_client"].mean(), 0, atol=1e-12)
    assert (by_therapist["alliance_therapist"].nunique() == 1).all()
    assert abs(split["alliance_therapist"].mean()) < 1e-12


def test_client_table_from_long_rows():
    rows = pd.DataFrame({"client_id": ["a"] * 3 + ["b"] * 2, "therapist_id": ["t1"] * 5,
                         "session": [1, 2, 4, 2, 3], "symptom_score": [20, None, 12, 9, 8],
                         "alliance_score": [4.0, 5.0, 6.0, None, 3.0]})
    table = client_outcome_table(rows).set_index("client_id")
    assert table.loc["a", ["start_score", "end_score", "alliance_mean"]].tolist() == [20, 12, 5]
    assert table.loc["b", ["start_score", "end_score", "alliance_mean"]].tolist() == [9, 8, 3]


def test_therapists_with_small_caseloads_are_left_out():
    clients = simulate_clients(12, seed=4, small_caseloads=4)
    rows, reason, counts = therapist_patient_rows(clients)
    assert reason == ""
    caseloads = rows.groupby("therapist_id").size()
    assert caseloads.min() >= MIN_CLIENTS_PER_THERAPIST and len(caseloads) == 12
    small = clients.groupby("therapist_id").size()
    assert counts["n_clients_excluded"] == int(small[small < 3].sum()) > 0
    table = fit_therapist_patient(clients, "phq9")
    assert (table["n_clients"] == len(rows)).all() and (table["status"] == "estimated").all()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no therapist column", "the data have no therapist ids"),
        ("therapist ids all missing", "the data have no therapist ids"),
        ("3 therapists", f"fewer than {MIN_THERAPISTS} therapists with clients"),
        ("2 clients per therapist", f"fewer than {MIN_THERAPISTS} therapists have at least "
                                    f"{MIN_CLIENTS_PER_THERAPIST} clients"),
    ],
)
def test_designs_without_enough_therapists_are_not_estimated(case, expected):
    clients = simulate_clients(30, seed=5)
    if case == "no therapist column":
        clients = clients.drop(columns="therapist_id")
    elif case == "therapist ids all missing":
        clients["therapist_id"] = None
    elif case == "3 therapists":
        clients["therapist_id"] = "t" + (np.arange(len(clients)) % 3).astype(str)
    else:
        clients = clients.iloc[:40].assign(
            therapist_id=["t" + str(i // 2) for i in range(40)])
    table = fit_therapist_patient(clients, "gad7")
    assert list(table.columns) == RESULT_COLUMNS
    assert table["term"].tolist() == list(TERMS)
    assert (table["status"] == "not_estimated").all()
    assert table["reason"].str.contains(expected, regex=False).all()
    assert table["estimate"].isna().all() and (table["outcome"] == "gad7").all()


def test_a_therapist_level_effect_is_found_and_a_patient_level_one_is_not():
    table = fit_therapist_patient(simulate_clients(60, seed=9), "phq9").set_index("term")
    therapist, client = table.loc["alliance_therapist"], table.loc["alliance_client"]
    assert therapist["ci_low"] < -1.5 < therapist["ci_high"] and therapist["p"] < 0.05
    assert client["ci_low"] < 0 < client["ci_high"]
    assert therapist["df"] < client["df"]  # a between-therapist term has therapist-level df


# ---------------------------------------------------------------------------------------------
# Parity with lmerTest


def _lmertest_missing() -> str | None:
    return r_package_missing("lmerTest", "r-cran-lmertest")


FIXTURES = {
    "unequal_caseloads": dict(n_therapists=30, caseload=(3, 10), seed=2024, small_caseloads=5),
    "small_design": dict(n_therapists=10, caseload=(3, 4), seed=7),
    "patient_effect": dict(n_therapists=25, caseload=(4, 8), seed=11, therapist_effect=0.0,
                           client_effect=-2.0),
    # no therapist variance beyond the alliance: the fit sits on the boundary (singular in lme4 too)
    "no_therapist_variance": dict(n_therapists=20, caseload=(3, 6), seed=1, therapist_sd=0.0),
}


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baldwin")
    jobs, ours = [], {}
    for name, settings in FIXTURES.items():
        clients = simulate_clients(**settings)
        rows, reason, _ = therapist_patient_rows(clients)
        assert reason == ""
        rows.to_csv(folder / f"{name}.csv", index=False, float_format="%.17g")
        jobs.append({"id": name, "data": str(folder / f"{name}.csv"), "formula": FORMULA,
                     "reml": "TRUE"})
        ours[name] = fit_therapist_patient(clients, name)
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(folder / "jobs.csv"), str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    theirs = {name: (pd.read_csv(folder / f"{name}_fixed.csv"),
                     pd.read_csv(folder / f"{name}_random.csv"),
                     pd.read_csv(folder / f"{name}_fit.csv")) for name in FIXTURES}
    return ours, theirs


@pytest.mark.r
@pytest.mark.skipif(_lmertest_missing() is not None, reason=str(_lmertest_missing()))
@pytest.mark.parametrize("name", list(FIXTURES))
def test_decomposition_matches_lmertest(parity, name):
    ours, theirs = parity
    mine = ours[name].set_index("term")
    fixed, random, fit = theirs[name]
    reference = fixed.set_index("term")
    assert list(mine.index) == list(reference.index)
    np.testing.assert_allclose(mine["estimate"], reference["estimate"], rtol=1e-4,
                               atol=1e-4 * reference["se"].min())
    np.testing.assert_allclose(mine["se"], reference["se"], rtol=1e-4)
    np.testing.assert_allclose(mine["df"], reference["df"], rtol=1e-4)
    np.testing.assert_allclose(mine["t"], reference["t"], rtol=1e-4)
    np.testing.assert_allclose(mine["p"], reference["p"], rtol=1e-3, atol=1e-12)
    sd = random.assign(grp=random["grp"].astype(str)).set_index("grp")["sdcor"]
    assert mine["therapist_sd"].iloc[0] == pytest.approx(sd["therapist_id"], rel=1e-3, abs=1e-6)
    assert mine["residual_sd"].iloc[0] == pytest.approx(sd["Residual"], rel=1e-4)
    assert bool(mine["singular"].iloc[0]) == bool(fit["singular"].iloc[0])


def test_examples_are_doctests():
    """The Examples sections run and print what they show."""
    failures, tried = doctest.testmod(therapist_patient, optionflags=doctest.ELLIPSIS)
    assert tried > 5 and failures == 0
