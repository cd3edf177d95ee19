"""The convergence protocol of docs/methods.md section 4: each step, chosen from the fit, and the
end points checked against lme4/lmerTest.

Three seeded fixtures, one per diagnosis: (a) a therapist SD of 0 beside a real random slope (SD
0.65): the therapist term goes and ``(1 + session | client_id)`` stays; (b) a slope perfectly
correlated with the intercept: the correlation sits at +1 and the slope is refitted uncorrelated;
(c) no slope variance at all: the slope goes and the model ends at random intercepts. lmerTest
fits the requested formula (it must be singular there too) and the end formula, whose
estimates, SEs, Satterthwaite df and variances must match ours. A scripted engine checks the
steps that no seeded data set triggers reliably (non-convergence, errors, the step limit).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import DataError
from analysis.models.mixed import protocol
from analysis.models.mixed.engines import EngineFit, MixedlmEngine, parse_random_part
from analysis.models.mixed.protocol import (
    Boundary,
    acceptable,
    boundary_components,
    describe_attempts,
    expand_uncorrelated,
    fallback_steps_taken,
    fit_with_fallback,
    next_simplification,
)
from model_fixtures import replicate_caseload, simulate_derived
from conftest import r_package_missing

R_SCRIPT = Path(__file__).parent / "r" / "fit_lmer.R"
FIXED = "symptom_score ~ session + alliance_within + alliance_between_c"
M1 = f"{FIXED} + (1 + session | client_id) + (1 | therapist_id)"
UNCORRELATED = f"{FIXED} + (1 | client_id) + (0 + session | client_id) + (1 | therapist_id)"


def simulate_growth(
    n_clients: int = 80,
    n_therapists: int = 8,
    seed: int = 1,
    sd_intercept: float = 2.0,
    sd_slope: float = 0.65,
    corr: float = 0.0,
    sd_therapist: float = 0.0,
    sd_residual: float = 2.0,
) -> pd.DataFrame:
    """Session rows with a known growth model (M1 of methods section 4).

    ``Y = 15 - 0.5 session - 1.5 A_w - 2 A_b_c + u0 + u1 session + v + e`` with client intercepts
    ``u0`` (SD ``sd_intercept``) and slopes ``u1`` (SD ``sd_slope``, correlation ``corr`` with
    ``u0``; +/-1 makes ``u1`` a multiple of ``u0``), therapist intercepts ``v`` and 4-12
    sessions per client; clients are spread evenly over therapists.
    """
    rng = np.random.default_rng(seed)
    therapist = np.arange(n_clients) % n_therapists
    n_sessions = rng.integers(4, 13, n_clients)
    client = np.repeat(np.arange(n_clients), n_sessions)
    session = np.concatenate([np.arange(1, k + 1) for k in n_sessions]).astype(float)
    alliance = rng.normal(3.9, 0.45, n_clients)[client] + rng.normal(0, 0.35, len(client))
    client_mean = pd.Series(alliance).groupby(client).transform("mean").to_numpy()
    within = alliance - client_mean
    between = client_mean - pd.Series(alliance).groupby(client).mean().mean()
    u0 = rng.normal(0, 1, n_clients)
    u1 = corr * u0 + np.sqrt(max(1 - corr**2, 0.0)) * rng.normal(0, 1, n_clients)
    v = rng.normal(0, 1, n_therapists)
    symptom = (15 - 0.5 * session - 1.5 * within - 2.0 * between
               + sd_intercept * u0[client] + sd_slope * u1[client] * session
               + sd_therapist * v[therapist[client]] + rng.normal(0, sd_residual, len(client)))
    return pd.DataFrame({
        "client_id": [f"c{index:04d}" for index in client],
        "therapist_id": [f"t{index:03d}" for index in therapist[client]],
        "session": session,
        "alliance_within": within,
        "alliance_between_c": between,
        "symptom_score": symptom,
    })


#: name -> (simulation settings, steps taken, end formula)
CASES = {
    "boundary_therapist": (
        {"seed": 2, "sd_slope": 0.65, "sd_therapist": 0.0},
        ["drop_zero_variance"],
        f"{FIXED} + (1 + session | client_id)",
    ),
    "correlation_at_one": (
        {"seed": 1, "n_clients": 60, "n_therapists": 12, "sd_intercept": 1.0, "sd_slope": 0.4,
         "corr": 1.0, "sd_therapist": 1.5},
        ["uncorrelated_slope"],
        UNCORRELATED,
    ),
    "no_slope": (
        {"seed": 6, "n_therapists": 12, "sd_slope": 0.0, "sd_therapist": 1.5},
        ["uncorrelated_slope", "drop_zero_variance"],
        f"{FIXED} + (1 | client_id) + (1 | therapist_id)",
    ),
}


@pytest.fixture(scope="module")
def protocol_runs():
    runs = {}
    for name, (settings, _, _) in CASES.items():
        data = simulate_growth(**settings)
        final, attempts = fit_with_fallback(data, M1, label=name)
        runs[name] = (data, final, attempts)
    return runs


# ---------------------------------------------------------------------------------------------
# The three diagnoses, with the primary engine


@pytest.mark.parametrize("name", list(CASES))
def test_each_diagnosis_takes_its_step_and_stops_at_the_first_acceptable_fit(protocol_runs,
                                                                              name):
    _, final, attempts = protocol_runs[name]
    _, steps, end = CASES[name]
    assert final.formula == end
    assert fallback_steps_taken(attempts, final.formula) == steps
    assert [attempt["step"] for attempt in attempts] == ["requested", *steps]
    assert acceptable(final)
    assert all(attempt["error"] is None for attempt in attempts)
    for attempt in attempts[:-1]:
        assert attempt["singular"] is True and attempt["boundary"]
    assert attempts[-1]["boundary"] == "" and attempts[-1]["converged"] is True


def test_the_boundary_that_chose_each_step_is_recorded(protocol_runs):
    assert protocol_runs["boundary_therapist"][2][0]["boundary"] == (
        "therapist_id (Intercept): variance 0")
    assert protocol_runs["correlation_at_one"][2][0]["boundary"] == (
        "client_id (Intercept)~session: correlation +1.00")
    no_slope = protocol_runs["no_slope"][2]
    assert "correlation" in no_slope[0]["boundary"]
    assert no_slope[1]["boundary"] == "client_id session: variance 0"
    lines = describe_attempts(no_slope)
    assert lines[-1] == "drop_zero_variance: accepted"
    assert lines[1].startswith("uncorrelated_slope: singular (client_id session: variance 0")


def test_a_real_slope_survives_a_zero_therapist_variance(protocol_runs):
    # The review's case: dropping the slope as well would make the session SE far too small.
    data, final, _ = protocol_runs["boundary_therapist"]
    intercepts = MixedlmEngine().fit(f"{FIXED} + (1 | client_id)", data)
    kept = final.fixed.set_index("term").loc["session"]
    dropped = intercepts.fixed.set_index("term").loc["session"]
    assert dropped["se"] < 0.6 * kept["se"]
    assert dropped["df"] > 4 * kept["df"]
    slope_sd = final.random.query("group == 'client_id' and term == 'session'")["sd"].iloc[0]
    assert 0.4 < slope_sd < 0.9  # true SD 0.65


def test_expected_simplifications_are_logged_at_info(caplog):
    data = simulate_growth(**CASES["boundary_therapist"][0])
    with caplog.at_level(logging.INFO, logger="analysis.models.mixed.protocol"):
        fit_with_fallback(data, M1, label="M1 for phq9 (primary)")
    records = [r for r in caplog.records if r.name == "analysis.models.mixed.protocol"]
    assert records and all(record.levelno == logging.INFO for record in records)
    messages = " ".join(record.getMessage() for record in records)
    assert "requested fit is singular" in messages
    assert "therapist_id (Intercept): variance 0" in messages
    assert "drop_zero_variance fit accepted" in messages


def test_the_icc_model_keeps_its_zero_therapist_variance(caplog):
    one_caseload, _ = simulate_derived(20, 1, seed=3)
    data = replicate_caseload(one_caseload, 5)
    formula = "symptom_score ~ session + (1 | client_id) + (1 | therapist_id)"
    with caplog.at_level(logging.INFO, logger="analysis.models.mixed.protocol"):
        final, attempts = fit_with_fallback(data, formula, keep_groups=("therapist_id",),
                                            label="R3")
    assert final.formula == formula and len(attempts) == 1
    assert final.info["singular"] and final.info["converged"]
    therapist = final.random.query("group == 'therapist_id'")["variance"].iloc[0]
    assert therapist == pytest.approx(0.0, abs=1e-8)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # without the protection the same fit loses its therapist term
    final, _ = fit_with_fallback(data, formula)
    assert final.formula == "symptom_score ~ session + (1 | client_id)"


# ---------------------------------------------------------------------------------------------
# Formulas and mixedlm's uncorrelated terms


def test_uncorrelated_terms_are_written_out():
    assert expand_uncorrelated("y ~ s + (1 + s || client_id)") == (
        "y ~ s + (1 | client_id) + (0 + s | client_id)")
    assert expand_uncorrelated("y ~ s + (s || g) + (1 | h)") == (
        "y ~ s + (1 | g) + (0 + s | g) + (1 | h)")
    assert expand_uncorrelated(M1) == M1  # untouched, character for character
    _, _, terms = parse_random_part("y ~ x + (0 + x | g) + (x - 1 | h) + (x | k)")
    assert [(t.group, t.intercept, t.slopes) for t in terms] == [
        ("g", False, ("x",)), ("h", False, ("x",)), ("k", True, ("x",))]


def test_mixedlm_fits_double_bar_and_its_expansion_alike():
    data = simulate_growth(**CASES["correlation_at_one"][0])
    native = MixedlmEngine().fit(
        f"{FIXED} + (1 + session || client_id) + (1 | therapist_id)", data)
    expanded = MixedlmEngine().fit(UNCORRELATED, data)
    assert native.info["reml_criterion"] == pytest.approx(expanded.info["reml_criterion"],
                                                          rel=1e-9)
    np.testing.assert_allclose(native.fixed["estimate"], expanded.fixed["estimate"], rtol=1e-6)
    np.testing.assert_allclose(native.fixed["se"], expanded.fixed["se"], rtol=1e-6)
    # rows name the grouping factor (mixedlm calls the second piece "client_id.1"), and an
    # uncorrelated term has no covariance row
    for fit in (native, expanded):
        assert set(fit.random["group"]) == {"client_id", "therapist_id", "Residual"}
        assert (fit.random["term2"] == "").all()
        assert list(fit.random["term"]) == ["(Intercept)", "session", "(Intercept)", ""]
    assert boundary_components(UNCORRELATED, expanded) == []


# ---------------------------------------------------------------------------------------------
# next_simplification, from hand-made fits


def _fit(random_rows, converged=True, singular=True, formula="") -> EngineFit:
    rows = [*random_rows, ("Residual", "", "", 4.0, np.nan)]
    random = pd.DataFrame(rows, columns=["group", "term", "term2", "variance", "corr"])
    random["sd"] = np.sqrt(random["variance"].where(random["term2"] == ""))
    return EngineFit("stand-in", formula, True, pd.DataFrame(), random,
                     {"converged": converged, "singular": singular, "gradient_norm": 0.0})


def _slope_rows(var0=2.0, var1=0.25, corr=0.3):
    return [("client_id", "(Intercept)", "", var0, np.nan),
            ("client_id", "session", "", var1, np.nan),
            ("client_id", "(Intercept)", "session", corr * np.sqrt(var0 * var1), corr)]


def test_zero_therapist_variance_is_dropped_first():
    fit = _fit([*_slope_rows(), ("therapist_id", "(Intercept)", "", 0.0, np.nan)])
    assert boundary_components(M1, fit) == [
        Boundary("therapist_id", "(Intercept)", "zero_variance", 0.0, term_index=1)]
    assert next_simplification(M1, fit) == (
        "drop_zero_variance", f"{FIXED} + (1 + session | client_id)")


def test_correlation_at_one_gives_the_uncorrelated_slope():
    fit = _fit([*_slope_rows(corr=-1.0), ("therapist_id", "(Intercept)", "", 1.0, np.nan)])
    [boundary] = boundary_components(M1, fit)
    assert (boundary.kind, boundary.term, boundary.partner) == ("correlation", "session",
                                                                "(Intercept)")
    assert boundary.corr == pytest.approx(-1.0)
    assert next_simplification(M1, fit) == ("uncorrelated_slope", UNCORRELATED)


def test_zero_slope_variance_drops_the_slope():
    fit = _fit([*_slope_rows(var1=0.0, corr=0.0), ("therapist_id", "(Intercept)", "", 1.0,
                                                     np.nan)])
    assert next_simplification(M1, fit) == (
        "drop_zero_variance", f"{FIXED} + (1 | client_id) + (1 | therapist_id)")
    uncorrelated = _fit([("client_id", "(Intercept)", "", 2.0, np.nan),
                         ("client_id", "session", "", 0.0, np.nan),
                         ("therapist_id", "(Intercept)", "", 1.0, np.nan)])
    assert next_simplification(UNCORRELATED, uncorrelated) == (
        "drop_zero_variance", f"{FIXED} + (1 | client_id) + (1 | therapist_id)")


def test_no_boundary_means_slope_then_therapist():
    healthy = [*_slope_rows(), ("therapist_id", "(Intercept)", "", 1.0, np.nan)]
    not_converged = _fit(healthy, converged=False, singular=False)
    assert next_simplification(M1, not_converged) == (
        "drop_random_slope", f"{FIXED} + (1 | client_id) + (1 | therapist_id)")
    intercepts = f"{FIXED} + (1 | client_id) + (1 | therapist_id)"
    assert next_simplification(intercepts, not_converged) == (
        "drop_therapist", f"{FIXED} + (1 | client_id)")
    assert next_simplification(f"{FIXED} + (1 | client_id)", not_converged) is None
    # a failed fit (None) follows the same order
    assert next_simplification(UNCORRELATED, None)[0] == "drop_random_slope"
    assert next_simplification(intercepts, None, keep_groups=("therapist_id",)) is None


def test_a_singular_flag_is_traced_to_the_component_nearest_the_boundary():
    # the engine's theta said singular; the variances put the therapist SD at 3e-4 x sigma
    rows = [*_slope_rows(), ("therapist_id", "(Intercept)", "", (3e-4 * 2.0) ** 2, np.nan)]
    assert boundary_components(M1, _fit(rows)) == []
    assert next_simplification(M1, _fit(rows))[0] == "drop_zero_variance"
    assert next_simplification(M1, _fit(rows, singular=False, converged=True)) is None


def test_kept_groups_lose_no_term_but_may_lose_a_correlation():
    fit = _fit([*_slope_rows(corr=1.0), ("therapist_id", "(Intercept)", "", 1.0, np.nan)])
    assert next_simplification(M1, fit, keep_groups=("client_id",))[0] == "uncorrelated_slope"


def test_acceptable_fits_and_kept_groups_stop_the_protocol():
    healthy = _fit([*_slope_rows(), ("therapist_id", "(Intercept)", "", 1.0, np.nan)],
                   singular=False)
    assert next_simplification(M1, healthy) is None
    icc = "y ~ session + (1 | client_id) + (1 | therapist_id)"
    zero_therapist = _fit([("client_id", "(Intercept)", "", 2.0, np.nan),
                           ("therapist_id", "(Intercept)", "", 0.0, np.nan)])
    assert next_simplification(icc, zero_therapist, keep_groups=("therapist_id",)) is None
    # the last random term is never dropped
    only = _fit([("client_id", "(Intercept)", "", 0.0, np.nan)])
    assert next_simplification("y ~ x + (1 | client_id)", only) is None


# ---------------------------------------------------------------------------------------------
# fit_with_fallback with a scripted engine


class ScriptedEngine:
    """Fits that fail by rule: anything with a slope does not converge; ``broken`` formulas
    raise; every fit reports healthy variances (no boundary to diagnose)."""

    name = "scripted"

    def __init__(self, converges=lambda formula: "session |" not in formula,
                 broken=lambda formula: False):
        self.calls: list[str] = []
        self.converges, self.broken = converges, broken

    def can_express(self, formula, data):
        return True, ""

    def fit(self, formula, data, reml=True):
        self.calls.append(formula)
        if self.broken(formula):
            raise ValueError("grouping factor must have more than one level")
        converged = self.converges(formula)
        _, _, terms = parse_random_part(formula)
        rows = [(term.group, name, "", 1.0, np.nan) for term in terms
                for name in term.components]
        fit = _fit(rows, converged=converged, singular=False, formula=formula)
        fit.info["gradient_norm"] = 0.0 if converged else 0.5
        return fit


def test_non_convergence_drops_the_slope_then_the_therapist(monkeypatch):
    engine = ScriptedEngine(converges=lambda formula: "therapist_id" not in formula
                            and "session |" not in formula)
    monkeypatch.setattr(protocol, "get_engine", lambda name: engine)
    final, attempts = fit_with_fallback(pd.DataFrame(), M1)
    assert engine.calls == [M1, f"{FIXED} + (1 | client_id) + (1 | therapist_id)",
                            f"{FIXED} + (1 | client_id)"]
    assert [a["step"] for a in attempts] == ["requested", "drop_random_slope", "drop_therapist"]
    assert final.formula == f"{FIXED} + (1 | client_id)"
    assert set(attempts[0]) == {"step", "formula", "converged", "singular", "gradient_norm",
                                "boundary", "error"}


def test_errors_are_recorded_and_every_attempt_failing_is_one_data_error(monkeypatch):
    engine = ScriptedEngine(broken=lambda formula: "session |" in formula)
    monkeypatch.setattr(protocol, "get_engine", lambda name: engine)
    final, attempts = fit_with_fallback(pd.DataFrame(), M1)
    assert attempts[0]["error"] and attempts[0]["singular"] is None
    assert final.formula == f"{FIXED} + (1 | client_id) + (1 | therapist_id)"
    assert fallback_steps_taken(attempts, final.formula) == ["drop_random_slope"]

    monkeypatch.setattr(protocol, "get_engine",
                        lambda name: ScriptedEngine(broken=lambda formula: True))
    with pytest.raises(DataError, match="could not be fitted.*more than one level"):
        fit_with_fallback(pd.DataFrame(), M1, label="M1")


def test_the_number_of_steps_is_bounded(monkeypatch, caplog):
    engine = ScriptedEngine(converges=lambda formula: False)
    monkeypatch.setattr(protocol, "get_engine", lambda name: engine)
    with caplog.at_level(logging.INFO, logger="analysis.models.mixed.protocol"):
        final, attempts = fit_with_fallback(pd.DataFrame(), M1, max_simplifications=1)
    assert len(attempts) == 2 and not acceptable(final)
    assert any(r.levelno == logging.WARNING and "reporting" in r.getMessage()
               for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# lme4/lmerTest on the requested and the end formulas


def _lmertest_missing() -> str | None:
    return r_package_missing("lmerTest", "r-cran-lmertest")


LMERTEST_MISSING = _lmertest_missing()
requires_lmertest = pytest.mark.skipif(LMERTEST_MISSING is not None,
                                       reason=str(LMERTEST_MISSING))


@pytest.fixture(scope="module")
def lme4(protocol_runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("protocol_lme4")
    jobs = []
    for name, (data, final, _) in protocol_runs.items():
        path = folder / f"{name}.csv"
        data.to_csv(path, index=False, float_format="%.17g")
        jobs.append({"id": f"{name}_requested", "data": str(path), "formula": M1,
                     "reml": "TRUE"})
        jobs.append({"id": f"{name}_end", "data": str(path), "formula": final.formula,
                     "reml": "TRUE"})
    pd.DataFrame(jobs).to_csv(folder / "jobs.csv", index=False)
    run = subprocess.run(["Rscript", str(R_SCRIPT), str(folder / "jobs.csv"), str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr

    def read(job: str) -> dict[str, pd.DataFrame]:
        return {
            "fixed": pd.read_csv(folder / f"{job}_fixed.csv"),
            "random": pd.read_csv(folder / f"{job}_random.csv",
                                  dtype={"var1": "string", "var2": "string"}),
            "fit": pd.read_csv(folder / f"{job}_fit.csv", dtype={"lme4_messages": "string"}),
        }

    return {job["id"]: read(job["id"]) for job in jobs}


@pytest.mark.r
@requires_lmertest
@pytest.mark.parametrize("name", list(CASES))
def test_lme4_also_finds_the_requested_fit_singular(protocol_runs, lme4, name):
    # Seeds are chosen where lme4's optimizer, too, ends exactly on the boundary: elsewhere it
    # can stop next to it (a therapist SD of 7e-4, a correlation of 0.99999) with a REML
    # criterion above mixedlm's, and its isSingular (tolerance 1e-4) then stays silent.
    requested = lme4[f"{name}_requested"]["fit"].iloc[0]
    assert bool(requested["singular"])
    assert "singular" in str(requested["lme4_messages"])
    ours = MixedlmEngine().fit(M1, protocol_runs[name][0])
    assert ours.info["reml_criterion"] == pytest.approx(requested["reml_criterion"], rel=1e-8)
    end = lme4[f"{name}_end"]["fit"].iloc[0]
    assert not bool(end["singular"])
    assert pd.isna(end["lme4_messages"])  # no convergence or boundary message


@pytest.mark.r
@requires_lmertest
@pytest.mark.parametrize("name", list(CASES))
def test_end_fit_matches_lmertest_on_the_end_formula(protocol_runs, lme4, name):
    _, final, _ = protocol_runs[name]
    reference = lme4[f"{name}_end"]["fixed"].set_index("term")
    mine = final.fixed.set_index("term")
    assert list(mine.index) == list(reference.index)
    np.testing.assert_allclose(mine["estimate"], reference["estimate"], rtol=1e-4,
                               atol=1e-4 * reference["se"].min())
    np.testing.assert_allclose(mine["se"], reference["se"], rtol=1e-4)
    np.testing.assert_allclose(mine["df"], reference["df"], rtol=1e-3)
    random = lme4[f"{name}_end"]["random"]
    # lme4 names the pieces of an uncorrelated term "client_id", "client_id.1"
    random = random.assign(group=random["grp"].str.replace(r"\.\d+$", "", regex=True),
                           term=random["var1"].fillna(""), term2=random["var2"].fillna(""))
    reference_variance = random.set_index(["group", "term", "term2"])["vcov"]
    mine_variance = final.random.set_index(["group", "term", "term2"])["variance"]
    assert set(mine_variance.index) == set(reference_variance.index)
    np.testing.assert_allclose(mine_variance[reference_variance.index], reference_variance,
                               rtol=1e-3)
    fit = lme4[f"{name}_end"]["fit"].iloc[0]
    assert final.info["reml_criterion"] == pytest.approx(fit["reml_criterion"], rel=1e-6)

