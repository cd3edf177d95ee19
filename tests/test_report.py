"""Tests of analysis.report on small hand-made frames: the numbers of the models table appear as
formatted, verdicts follow the estimates, counts of people are suppressed, no identifier leaks,
the file is self-contained, and the same inputs give the same bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import figures
from analysis.instruments import BUILT_IN
from analysis.io import sha256_file
from analysis.provenance import collect_provenance
from analysis.report.answer import outcome_answer, verdict
from analysis.report.formatting import (
    MISSING,
    format_ci,
    format_df,
    format_number,
    format_p,
    format_p_clause,
    format_r,
)
from analysis.report.inputs import ReportTables, figure_entries, read_report_tables
from analysis.report.limitations import limitations
from analysis.report.render import render_report, write_report
from analysis.report.tables import engine_agreement_table
from analysis.report.view import ReportView
from analysis.study import load_study, study_from_dict

ROOT = Path(__file__).resolve().parents[1]
SECRET_CLIENT = "CLIENTSECRET0001"
SECRET_THERAPIST = "THERAPISTSECRET9"


@pytest.fixture(scope="module")
def study():
    return load_study(ROOT / "config" / "config.yaml")


@pytest.fixture(scope="module")
def settings(study):
    """What the reviewer_report rule passes to the report: the study's report settings."""
    return study.report


@pytest.fixture(scope="module")
def view(settings):
    return ReportView(settings)


@pytest.fixture(scope="module")
def registry(view):
    return view.registry


def shipped_config_with(seed=None) -> dict:
    """The shipped config (as a dict, before the schema check), optionally with another seed."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if seed is not None:
        config["study"]["seed"] = seed
    return config


def make_models() -> pd.DataFrame:
    rows = []
    spec = {
        "M1": ["session", "alliance_within", "alliance_between_c"],
        "M2": ["symptom_score", "alliance_within", "alliance_between_c", "session"],
        "M3": ["alliance_score", "symptom_within", "symptom_between_c", "session"],
        "DPM": ["alliance_lagged", "symptom_lagged"],
    }
    # The primary test is DPM's lagged alliance; the conventional M2 agrees for PHQ-9 and
    # disagrees for GAD-7 (significant where the primary is not).
    estimates = {("phq9", "DPM", "alliance_lagged"): (-1.23456, 0.39871, 0.0023),
                 ("gad7", "DPM", "alliance_lagged"): (0.0412, 0.35, 0.81),
                 ("phq9", "M2", "alliance_within"): (-0.9123, 0.3, 0.003),
                 ("gad7", "M2", "alliance_within"): (-0.8123, 0.3, 0.008),
                 ("phq9", "M1", "alliance_within"): (-0.8765, 0.3, 0.01),
                 ("phq9", "M3", "symptom_within"): (-0.0123, 0.004, 0.004)}
    for outcome in ("phq9", "gad7"):
        for model, terms in spec.items():
            for analysis in (("primary", "ml") if model not in ("M3", "DPM") else ("primary",)):
                for term in (["(Intercept)"] if model != "DPM" else []) + terms:
                    estimate, se, p = estimates.get((outcome, model, term), (0.5, 0.25, 0.3))
                    if analysis == "ml":
                        estimate = estimate * 0.98
                    primary = (model == "DPM" and term == "alliance_lagged"
                               and analysis == "primary")
                    interest = term.startswith("alliance_w") or term.startswith(
                        "alliance_b") or term.startswith("symptom_w") or term.startswith(
                        "symptom_b") or term == "alliance_lagged"
                    rows.append({
                        "outcome": outcome, "model": model, "analysis": analysis, "term": term,
                        "estimate": estimate, "se": se, "df": 151.234, "t": estimate / se, "p": p,
                        "p_holm": min(1.0, 2 * p) if primary else np.nan,
                        "p_bh": min(1.0, 1.5 * p) if interest and not primary else np.nan,
                        "ci_low": estimate - 1.976 * se, "ci_high": estimate + 1.976 * se,
                        "std_estimate": estimate / 6.1, "n_obs": 812,
                        # the published table holds small counts of clients already suppressed
                        "n_clients": "140" if outcome == "phq9" else "<10", "n_therapists": 14,
                        "converged": True, "singular": False,
                    })
    return pd.DataFrame(rows)


def make_tables() -> ReportTables:
    sessions = pd.DataFrame({"client_id": [SECRET_CLIENT] * 4 + ["CL2"] * 3,
                             "therapist_id": [SECRET_THERAPIST] * 7,
                             "session": [1, 2, 3, 4, 1, 2, 3],
                             "day": pd.array([0, 7, 14, 22, 0, 6, 13], dtype="Int64")})
    scores = pd.DataFrame({"client_id": [SECRET_CLIENT] * 4, "session": [1, 2, 3, 4],
                           "instrument": ["wai_sr"] * 4, "score": [4.0, 5.0, 5.0, 3.5]})
    models = make_models()
    model_fit = (models[["outcome", "model", "analysis"]].drop_duplicates()
                 .assign(converged=True, singular=False, gradient_norm=1.2e-6,
                         fallback_steps="", formula="symptom_next ~ ... + (1 | client_id)"))
    model_fit.loc[(model_fit["model"] == "M1") & (model_fit["outcome"] == "gad7"),
                  "fallback_steps"] = "drop_random_slope"
    random_effects = pd.DataFrame({
        "outcome": ["phq9", "phq9", "phq9"], "model": ["M2"] * 3, "analysis": ["primary"] * 3,
        "group": ["client_id", "therapist_id", "Residual"], "term": ["(Intercept)"] * 3,
        "term2": [None] * 3, "variance": [1.4412, 0.2213, 4.9871],
        "sd": [1.2005, 0.4704, 2.2332], "corr": [np.nan] * 3})
    rm_corr = pd.DataFrame({"outcome": ["phq9", "gad7"], "method": ["same_session"] * 2,
                            "r": [-0.2346, -0.1987],
                            "ci_low": [-0.29, -0.25], "ci_high": [-0.17, -0.14],
                            "p": [1e-7, 0.0004], "dof": [640, 630], "n": [140, 7]})
    agreement = pd.DataFrame({"outcome": ["phq9", "phq9"], "model": ["M1", "M2"],
                              "analysis": ["primary", "primary"],
                              "max_abs_diff": [1e-6, 0.02], "max_rel_diff": [2e-6, 0.004],
                              "flag": [False, True], "flag_term": ["", "alliance_within"]})
    episodes_summary = pd.DataFrame({"outcome": ["phq9", "phq9"],
                                     "measure": ["has_outcome", "reliable_improvement"],
                                     "n_episodes": ["150", "150"], "n_with_outcome": ["140", "140"],
                                     "count": ["140", "<10"], "rate": [0.9333, np.nan]})
    flow = pd.DataFrame({"stage": ["read", "rejected", "kept"], "source": ["sessions"] * 3,
                         "unit": ["rows"] * 3, "reason": ["", "item out of range", ""],
                         "count": ["1000", "4", "996"]})
    jacobson_truax = pd.DataFrame({
        "outcome": ["phq9"], "r_xx": [0.84], "r_xx_source": ["sample_alpha"], "sd_first": [5.1],
        "s_diff": [2.885], "rci_criterion": [1.96], "reliable_change_points": [5.655],
        "functional_mean": [np.nan], "functional_sd": [np.nan], "norms_source": ["none"],
        "cutoff": [4.8], "cutoff_formula": ["a"]})
    therapist_icc = pd.DataFrame({"outcome": ["phq9"], "icc_therapist": [0.0512],
                                  "var_therapist": [0.4], "n_clients": ["<10"]})
    return ReportTables(
        models=models, random_effects=random_effects, model_fit=model_fit,
        engine_agreement=agreement, rm_corr=rm_corr, episodes_summary=episodes_summary,
        data_flow=flow, jacobson_truax=jacobson_truax, therapist_icc=therapist_icc,
        sessions=sessions, scores=scores)


PROVENANCE = {"commit": "0123abc", "config_sha256": "f" * 64,
              "config_files": [("config/config.yaml", "a" * 64)],
              "inputs": [("data/raw/sessions.csv", "b" * 64)], "results": [],
              "packages": {"python": "3.11"}, "seeds": {"study.seed": 20261125}}


@pytest.fixture(scope="module")
def html(settings):
    return render_report(make_tables(), settings, {}, PROVENANCE)


def visible_text(html: str) -> str:
    class Collector(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts = []

        def handle_data(self, data):
            self.parts.append(data)

    collector = Collector()
    collector.feed(html)
    return re.sub(r"\s+", " ", " ".join(collector.parts))


def test_formatting_functions():
    assert format_number(-1.23456) == "-1.23"
    assert format_number(0.0123456) == "0.0123"
    assert format_number(0.0) == "0.00"
    assert format_number(np.nan) == MISSING
    assert format_p(0.0467) == ".047"
    assert format_p(0.0004) == "< .001"
    assert format_p_clause(0.0004) == "p < .001"
    assert format_ci(-2.5, -0.25) == "[-2.50, -0.25]"
    assert format_r(-0.2346) == "-.235"
    assert format_r(0.278) == ".278"
    assert format_df(151.234) == "151.2"


def test_primary_numbers_equal_the_models_table(html):
    text = visible_text(html)
    row = make_models().query("outcome == 'phq9' and model == 'DPM' and analysis == 'primary' "
                              "and term == 'alliance_lagged'").iloc[0]
    expected = (f"b = {format_number(row.estimate)}, 95% CI "
                f"{format_ci(row.ci_low, row.ci_high)}, Holm-adjusted "
                f"{format_p_clause(row.p_holm)}")
    assert expected == "b = -1.23, 95% CI [-2.02, -0.45], Holm-adjusted p = .005"
    assert expected in text
    # and the same digits in the APA table of the primary model
    assert "-1.23" in text and "[-2.02, -0.45]" in text and ".005 (Holm)" in text


def test_every_primary_estimate_appears(html):
    text = visible_text(html)
    for row in make_models().query("analysis == 'primary'").itertuples():
        assert format_number(row.estimate) in text
        assert format_ci(row.ci_low, row.ci_high) in text


def test_verdicts(html, view):
    tables = make_tables()
    phq9 = outcome_answer(tables, "phq9", view)
    gad7 = outcome_answer(tables, "gad7", view)
    assert phq9["precedes"] == "yes"       # negative, Holm p = .005
    assert gad7["precedes"] == "unclear"   # Holm p = 1.0
    assert phq9["goes_with_within"] == "yes"      # M1 within BH p = .015
    assert phq9["goes_with_between"] == "unclear"  # M1 between BH p = .45
    assert "1.23 points lower" in phq9["sentences"][0]
    assert phq9["sentences"][0].startswith("Precedes (DPM, the dynamic panel model")
    assert "Precedes (primary): yes" in html and "Precedes (primary): unclear" in html


def test_conventional_model_beside_the_primary_and_disagreement_in_words(view):
    tables = make_tables()
    phq9 = outcome_answer(tables, "phq9", view)
    gad7 = outcome_answer(tables, "gad7", view)
    assert phq9["precedes_conventional"] == "yes" and gad7["precedes_conventional"] == "yes"
    text = " ".join(phq9["sentences"])
    assert "The conventional multilevel model (M2" in text
    assert "The conventional model agrees with the primary test" in text
    disagreement = " ".join(gad7["sentences"])
    assert gad7["precedes"] == "unclear"
    assert ("The two disagree: the conventional model says a stronger alliance precedes better "
            "scores, the dynamic panel model that the data do not show it either way.") \
        in disagreement
    assert "bias M2" in disagreement and "the answer to rely on" in disagreement


def test_primary_not_estimated_says_why(view):
    tables = make_tables()
    models = tables.models[~((tables.models["model"] == "DPM")
                             & (tables.models["outcome"] == "gad7"))]
    others = tables.model_fit[~((tables.model_fit["model"] == "DPM")
                                & (tables.model_fit["outcome"] == "gad7"))]
    fit = pd.concat([others, pd.DataFrame([{
        "outcome": "gad7", "model": "DPM", "analysis": "primary", "status": "not_identified",
        "reason": "too few clients with two or more waves."}])], ignore_index=True)
    answer = outcome_answer(dataclasses.replace(tables, models=models, model_fit=fit), "gad7",
                            view)
    assert answer["precedes"] == "not estimated"
    assert ("Precedes: the primary dynamic panel model was not estimated (too few clients with "
            "two or more waves).") in answer["sentences"][0]


def test_verdict_direction_aware(registry):
    row = {"estimate": 1.0}
    ors = BUILT_IN["ors"]  # higher is better
    assert verdict(row, registry["phq9"], 0.01) == "opposite"
    assert verdict(row, ors, 0.01) == "yes"
    assert verdict(row, registry["phq9"], 0.2) == "unclear"
    assert verdict(None, registry["phq9"], 0.01) == "not estimated"
    # the level is report.alpha
    assert verdict(row, registry["phq9"], 0.02, alpha=0.01) == "unclear"


def test_benchmark_beside_rm_corr(html):
    text = visible_text(html)
    assert "r = -.235, 95% CI [-.290, -.170], p < .001" in text
    assert ".278" in text and ".256" in text and ".299" in text


def test_counts_of_people_suppressed(html):
    text = visible_text(html)
    # gad7 fits and its rm_corr have 7 clients: shown as "<10", never the number
    assert "clients <10" in text
    assert "7 clients" not in text
    # the R1 sentence of the answer, and the R1 table (df 630, clients <10)
    assert "including shared time trends (<10 clients)" in text
    assert "GAD-7 same session -.199 -.250 -.140 < .001 630 <10" in text


def test_no_identifiers_in_report(html):
    assert SECRET_CLIENT not in html
    assert SECRET_THERAPIST not in html


def test_engine_agreement_flagged(html):
    table = engine_agreement_table(make_tables().engine_agreement, 1e-3)
    assert table.flagged == [False, True]
    # the flag names the term behind it
    assert [row[-1] for row in table.rows] == ["estimates agree",
                                               "CHECK: the estimate of alliance_within differs"]
    assert "CHECK: the estimate of alliance_within differs" in html
    not_compared = pd.DataFrame({"outcome": ["gad7"], "model": ["M0"], "analysis": ["primary"],
                                 "max_abs_diff": [np.nan], "max_rel_diff": [np.nan],
                                 "reason": ["cannot express a correlated slope"]})
    table = engine_agreement_table(not_compared, 1e-3)
    assert table.rows[0][-1] == "cannot express a correlated slope" and table.flagged == [False]


def test_limitations_from_the_data(html, settings):
    text = visible_text(html)
    for title in ("Reverse causation", "Dynamic-panel bias", "Shared time trends", "Missing data",
                  "Ceiling", "Overlapping recall windows"):
        assert title in text
    # days 0, 7, 14, 22 and 0, 6, 13: gaps 7, 7, 8, 6, 7 -> median 7 < 14-day recall window
    assert "median of 7 days apart" in text
    # 2 of 4 alliance scores at the maximum 5: above report.ceiling_share (15%)
    assert "50.0% of WAI-SR scores are at the scale maximum (5)" in text
    # the ceiling is discussed only when more than report.ceiling_share of scores are at the
    # maximum
    titles = [item["title"] for item in limitations(
        make_tables(), ReportView(dataclasses.replace(settings, ceiling_share=0.6)))]
    assert "Ceiling of the alliance scale" not in titles
    assert "Overlapping recall windows" in titles


def test_methods_generated_from_config(html, settings):
    text = visible_text(html)
    assert "PHQ-9" in text and "prorated with up to 2 missing items" in text
    assert f"first {settings.derive.early_sessions} sessions (counted from their first" in text
    assert "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session" in text
    assert "Holm" in text and "Benjamini-Hochberg" in text
    assert "cut-off a" in text and "sample alpha" in text
    assert "item out of range" in text
    assert "drop random slope" in text


def test_provenance_section(html):
    text = visible_text(html)
    assert "0123abc" in text and "f" * 64 in text and "b" * 64 in text
    assert "study.seed = 20261125" in text


def test_self_contained(html):
    assert "Content-Security-Policy" in html
    # no external resources: every src is a data URI and no stylesheet or script is linked
    assert re.findall(r'src="(?!data:)', html) == []
    assert "<script" not in html and "<link" not in html
    assert "http://" not in html.replace("http-equiv", "")


def test_figures_embedded_with_captions(tmp_path, settings, registry):
    fig = figures.alliance_distribution_figure(
        make_tables().scores, registry["wai_sr"], min_cell=2)
    figures.save_figure(fig, tmp_path / "alliance_distribution.svg",
                        tmp_path / "alliance_distribution.png")
    entries = figure_entries([tmp_path / "alliance_distribution.png"],
                             ROOT / "workflow" / "report")
    entry = entries["alliance_distribution"]
    assert entry.caption == (ROOT / "workflow" / "report" /
                             "figure_alliance_distribution.rst").read_text().strip()
    assert entry.width == round(fig.get_figwidth() * 96)
    html = render_report(make_tables(), settings, entries, PROVENANCE)
    assert entry.data_uri in html
    assert html.count("<img ") == 1


def test_deterministic_and_written_atomically(tmp_path, settings, html):
    again = render_report(make_tables(), settings, {}, PROVENANCE)
    assert again == html
    write_report(html, tmp_path / "report" / "index.html")
    assert (tmp_path / "report" / "index.html").read_text(encoding="utf-8") == html
    assert list((tmp_path / "report").iterdir()) == [tmp_path / "report" / "index.html"]


def test_empty_tables_still_render(settings):
    html = render_report(ReportTables(), settings, {}, PROVENANCE)
    assert "not estimated in this run" in html
    assert "not available in this run" in html


def test_collect_provenance(tmp_path, study):
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n")
    provenance = collect_provenance(tmp_path, study.config_sha256, study.report.seed, [data])
    assert provenance["inputs"] == [("data.csv", sha256_file(data))]
    assert sha256_file(data) == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert provenance["seeds"] == {"study.seed": 20261125}
    assert provenance["commit"].startswith("not available")
    assert provenance["packages"]["pandas"] == pd.__version__
    assert provenance["config_sha256"] == study.config_sha256
    # the same config gives the same hash; a changed config another
    assert study_from_dict(shipped_config_with()).config_sha256 == study.config_sha256
    changed = study_from_dict(shipped_config_with(seed=1))
    assert changed.config_sha256 != study.config_sha256
    assert collect_provenance(tmp_path, changed.config_sha256, changed.report.seed, [])[
        "config_sha256"] != provenance["config_sha256"]


def test_read_report_tables(tmp_path):
    (tmp_path / "models.csv").write_text("outcome,model\nphq9,M2\n")
    tables = read_report_tables({"models": tmp_path / "models.csv",
                                 "figures": ["ignored.png"]})
    assert tables.models.shape == (1, 2)
    assert tables.rm_corr.empty


def test_sentences_follow_the_run(settings):
    """Nothing about a feature the run did not use; values, never key names."""
    from analysis.report.formatting import article

    assert (article("ECBI score"), article("PHQ-9 score"), article("ORS")) == ("an", "a", "an")
    tables = make_tables()
    text = visible_text(render_report(tables, settings, {}, PROVENANCE))
    # the shipped config: dates, prorating and the PHQ-9 risk flag are used
    assert "dates became day offsets" in text and "PHQ-9 item 9 above 0 sets a risk flag" in text
    assert "Prorated scores (" in text
    assert "analysis.completers_min_sessions" not in text
    assert (f"at least {settings.models.completers_min_sessions} sessions" in text
            or "completers" not in settings.models.sensitivity
            or not settings.models.sensitivity.get("completers"))
    # without dates, without a PHQ-9 and with pre-scored totals nothing says otherwise
    no_dates = tables.sessions.assign(day=pd.array([None] * len(tables.sessions), dtype="Int64"))
    pre_scored = pd.DataFrame({"instrument": ["phq9", "gad7", "wai_sr"], "n": [0, 0, 0]})
    changed = dataclasses.replace(tables, sessions=no_dates, reliability=pre_scored)
    text = visible_text(render_report(changed, settings, {}, PROVENANCE))
    assert "day offsets" not in text and "carried no session dates" in text
    assert "risk flag" not in text and "Prorated scores" not in text
    assert "pre-scored totals without item answers" in text


def test_process_measure_named_in_title_and_text(settings):
    custom = dict(settings.instruments)
    view = ReportView(settings)
    assert view.is_alliance and "a stronger working alliance" in render_report(
        make_tables(), settings, {}, PROVENANCE)
    registry = view.registry
    process = dataclasses.replace(registry[settings.alliance], construct="parenting process",
                                  label="DPICS")
    other = ReportView(settings)
    other.__dict__["registry"] = {**registry, settings.alliance: process}
    assert other.process_label == "DPICS" and not other.is_alliance
    assert other.stronger_process == "a higher DPICS"
    answer = outcome_answer(make_tables(), "phq9", other)
    assert "DPICS" in answer["sentences"][0] and "alliance at a session" not in answer["sentences"][0]
    assert custom == dict(settings.instruments)


def test_counts_are_suppressed_against_the_study_total(view):
    """Complementary suppression: 139 of 140 clients would reveal the 1 left out."""
    tables = make_tables()
    sessions = pd.DataFrame({"client_id": [f"c{i}" for i in range(140)],
                             "therapist_id": ["t"] * 140, "session": [1] * 140,
                             "day": pd.array([0] * 140, dtype="Int64")})
    rm_corr = tables.rm_corr.assign(n=[139, 7])
    changed = dataclasses.replace(tables, sessions=sessions, rm_corr=rm_corr)
    sentences = " ".join(outcome_answer(changed, "phq9", view)["benchmark"])
    assert "(>130 clients)" in sentences and "139" not in sentences


def test_a_verdict_on_a_simplified_model_says_so_with_the_fuller_models_verdict(view):
    """Issue: the random part changed silently. The gad7 M1 primary fit dropped its slope; the
    ML analysis kept it, and the answer gives the verdicts under that fuller model."""
    tables = make_tables()
    fit = tables.model_fit.copy()
    fit["random_part"] = "(1 + session | client_id) + (1 | therapist_id)"
    simplified = (fit["model"] == "M1") & (fit["outcome"] == "gad7") & (
        fit["analysis"] == "primary")
    fit.loc[simplified, "random_part"] = "(1 | client_id) + (1 | therapist_id)"
    fit.loc[(fit["model"] == "M1") & (fit["analysis"] == "ml"), "fallback_steps"] = ""
    answer = outcome_answer(dataclasses.replace(tables, model_fit=fit), "gad7", view)
    text = " ".join(answer["sentences"])
    assert ("The primary M1 fit was simplified to the random part (1 | client_id) + "
            "(1 | therapist_id)") in text
    assert ("The ml analysis kept the fuller random part (1 + session | client_id) + "
            "(1 | therapist_id); under it the verdicts are: within clients") in text
    # the PHQ-9 fit was not simplified: nothing is said
    assert "was simplified" not in " ".join(outcome_answer(
        dataclasses.replace(tables, model_fit=fit), "phq9", view)["sentences"])
