"""Every study design runs end to end and its report is true for it (tests/design_corpus.py).

Twelve designs run in-process through the pipeline's own stage functions (each a few seconds);
the hardest one (no therapist column, an SPSS export with user-missing codes, sessions numbered
from 3) also runs once as the real Snakemake pipeline with a reduced config.
"""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
import yaml

import design_corpus as corpus
from conftest import ROOT, check_balance, run_snakemake

DESIGNS = {design.name: design for design in corpus.designs()}
MIXED = ("M0", "M1", "M2", "M3")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """Each design's run, made on first use."""
    cache: dict[str, corpus.DesignRun] = {}

    def get(name: str) -> corpus.DesignRun:
        if name not in cache:
            cache[name] = corpus.run_design(DESIGNS[name], tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def test_the_corpus_has_every_design_of_the_issue():
    assert len(DESIGNS) >= 11
    for needed in ("no_therapist_column", "one_therapist", "three_therapists", "sessions_from_3",
                   "per_client_offsets", "spss_user_missing", "stata", "csv_missing_codes",
                   "blank_lines_and_placeholders", "custom_process_measure", "minimal_config"):
        assert needed in DESIGNS
    assert set(DESIGNS["minimal_config"].config) == {"inputs", "analysis"}


def _params(names):
    # Early alliance counts from each client's first session, so designs numbering sessions
    # from 3 fit M4 like any other.
    return list(names)


@pytest.mark.parametrize("name", _params(DESIGNS))
def test_every_planned_fit_runs(runs, name):
    run = runs(name)
    assert run.errors == {}, run.errors


@pytest.mark.parametrize("name", list(DESIGNS))
def test_the_data_flow_balances(runs, name):
    run = runs(name)
    assert check_balance(run.tables["data_flow_full"]) == []
    assert run.tables["sessions"]["client_id"].nunique() > 0


@pytest.mark.parametrize("name", list(DESIGNS))
def test_therapist_terms_follow_the_design(runs, name):
    run = runs(name)
    design = run.design
    fit_table = run.tables["model_fit"]
    primary = fit_table[fit_table["analysis"] == "primary"].set_index("model")
    mixed = [model for model in primary.index if model in MIXED]
    assert mixed, "no mixed model was fitted"
    r3 = primary.loc["R3"]
    therapists = run.section("therapists")
    caterpillar = " ".join(corpus.figure_text(
        run.figures[f"therapist_caterpillar_{design.outcome}"]).split())
    if design.therapists == "none":
        reason = design.design_reason
        for model in mixed:
            assert "therapist_id" not in primary.loc[model, "formula"], model
            assert primary.loc[model, "design"] == f"no therapist term: {reason}", model
            assert "drop_therapist" not in str(primary.loc[model, "fallback_steps"])
        assert r3["status"] == "not_estimated" and r3["reason"] == reason
        assert run.tables["therapist_icc"].empty
        if "M4" in primary.index:  # (not when the early-alliance window has no sessions)
            assert primary.loc["M4", "design"] == (f"standard errors clustered by client: "
                                                   f"{reason}")
            assert "clustered by client" in therapists
        assert f"not estimated: {reason}" in therapists
        assert (f"Because {reason}, the mixed models ({', '.join(mixed)}) were specified "
                "without a therapist term, by design") in therapists
        assert "not available in this run" not in therapists
        assert f"Not estimated: {reason}." in caterpillar
        assert "rerun the fit job" not in caterpillar
        # the results say the therapists were not modelled, not a count of them
        assert f"therapists not modelled (no therapist term: {reason})" in run.section("results")
    else:
        assert any("therapist_id" in primary.loc[model, "requested_formula"] for model in mixed)
        assert all(pd.isna(primary.loc[model, "design"]) or not primary.loc[model, "design"]
                   for model in mixed)
        assert r3["status"] != "not_estimated" and len(run.tables["therapist_icc"]) == 1
        assert "without a therapist term" not in therapists
        assert "Not estimated" not in caterpillar


@pytest.mark.parametrize("name", list(DESIGNS))
def test_dynamic_panel_waves_start_at_the_first_session(runs, name):
    run = runs(name)
    fit = run.fit("DPM")["fit"]
    assert fit["status"] == "fitted", fit.get("reason")
    if run.study.panel_waves.origin == "study":
        assert fit["waves"].startswith(f"sessions {run.design.first_wave} to "), fit["waves"]
    else:
        assert fit["waves"].startswith("each client's sessions 1 to "), fit["waves"]
        assert "counted from each client's first session" in fit["waves"]
    assert f"the waves were {fit['waves']}" in run.text


@pytest.mark.parametrize("name", list(DESIGNS))
def test_report_sentences_are_true_for_the_design(runs, name):
    run = runs(name)
    design, text = run.design, run.text
    assert "internal error" not in text
    if design.dates:
        assert "dates became day offsets" in text
    else:
        assert "day offset" not in text and "the exports carried no session dates" in text
    if not design.phq9:
        assert not re.search(r"item[- ]9", text, re.I), "a PHQ-9 item-9 sentence without PHQ-9"
        assert "PHQ-9" not in text


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_engagement_analyses_run_or_say_why_not(runs, name):
    """Dropout, therapist-patient and sudden gains run on every design; a design that cannot
    carry one says "not estimated" and why (never an error), in its table and in the report."""
    run = runs(name)
    for table in ("dropout", "attendance", "therapist_patient_alliance", "sudden_gains",
                  "sudden_gains_summary"):
        assert table in run.tables, table
    therapist = run.tables["therapist_patient_alliance"]
    if not run.study.has_therapist_ids:
        assert set(therapist["status"]) == {"not_estimated"}
        assert set(therapist["reason"]) == {"the data have no therapist ids"}
        assert "Not estimated: the data have no therapist ids." in run.text
    for frame in (run.tables["dropout"], therapist, run.tables["sudden_gains_summary"]):
        not_estimated = frame[frame["status"] == "not_estimated"]
        assert not_estimated["reason"].astype(str).str.len().gt(0).all()
    assert set(run.tables["dropout"]["outcome"]) == set(run.study.outcome_keys)


def test_sessions_from_3_are_waves_3_onward(runs):
    fit = runs("sessions_from_3").fit("DPM")["fit"]
    assert fit["waves"].startswith("sessions 3 to ")
    derived = runs("sessions_from_3").tables["derived"]
    assert derived["session"].min() == 3


def test_per_client_offsets_align_clients_by_their_first_session(runs):
    run = runs("per_client_offsets")
    firsts = run.tables["derived"].groupby("client_id")["session"].min()
    assert firsts.nunique() == 4  # clients start at sessions 1 to 4
    assert run.fit("DPM")["fit"]["n_clients"] == run.tables["sessions"]["client_id"].nunique()


def test_spss_user_missing_values_arrive_as_missing(runs):
    run = runs("spss_user_missing")
    rejects = run.tables["rejects"]
    assert not rejects["rule"].astype(str).str.contains("out_of_range|not_numeric").any()
    flow = run.tables["data_flow_full"]
    read = flow[(flow["stage"] == "read") & (flow["unit"] == "administrations")]
    kept = flow[(flow["stage"] == "kept") & (flow["unit"] == "administrations")]
    assert read["count"].sum() == kept["count"].sum()
    # -99 and 999 were read as missing items, so some scores were prorated
    assert run.tables["scores"]["prorated"].astype(bool).any()
    assert run.tables["sessions"]["session"].min() == 3
    assert "therapist_id" not in run.tables["sessions"] or \
        run.tables["sessions"]["therapist_id"].isna().all()


def test_stata_export_runs_like_a_csv(runs):
    run = runs("stata")
    assert run.tables["rejects"].empty
    assert run.tables["sessions"]["therapist_id"].nunique() >= 5


def test_csv_missing_codes_are_counted_not_rejected(runs):
    run = runs("csv_missing_codes")
    flow = run.tables["data_flow_full"]
    coded = flow[flow["reason"].astype(str).str.contains("missing_values")]
    assert int(coded["count"].sum()) == corpus.CODED_CELLS
    assert not run.tables["rejects"]["rule"].astype(str).str.contains(
        "not_numeric|out_of_range").any()


def test_blank_lines_and_placeholders_are_not_rejected(runs):
    run = runs("blank_lines_and_placeholders")
    flow = run.tables["data_flow_full"]
    reasons = flow["reason"].astype(str)
    assert int(flow.loc[reasons == "blank rows skipped", "count"].sum()) == corpus.BLANK_LINES
    no_measure = flow[flow["stage"] == "no_measure"]
    assert int(no_measure["count"].sum()) >= corpus.PLACEHOLDERS
    assert run.tables["rejects"].empty, run.tables["rejects"]["rule"].value_counts()
    assert "session records with no measure" in run.text


def test_custom_process_measure_is_named_as_configured(runs):
    from analysis.figures.jobs import make_figure
    from analysis.settings import FigureSettings

    run = runs("custom_process_measure")
    assert "PCIT coding" in run.text
    assert set(run.tables["models"]["outcome"]) == {"ecbi"}
    # the forest plot's panel title is wrapped, not clipped, and names the process measure
    settings = FigureSettings.from_params(run.study.figures.params())
    figure = make_figure("forest", {"models": run.tables["models"]}, settings)
    text = corpus.figure_text(figure)
    assert "ECBI Intensity (child disruptive\nbehaviour)" in text
    assert "PCIT coding terms across outcomes" in text
    # and so do its row labels (model titles and terms)
    assert not re.search(r"\balliance\b(?!_)", text, flags=re.IGNORECASE), text
    # every sentence names the process measure as configured: "alliance" is left only where it
    # is the literature's (the meta-analytic benchmark, the method's source, the recovery study
    # of the alliance) or an identifier of a formula (alliance_within, alliance[t-1])
    literature = re.compile(r"meta-analytic|better alliance have better|not an alliance measure|"
                            r"as in Falkenström|recovery study|alliance\[t-1\]|^alliance "
                            r"predetermined")
    said = [f"{name}: {sentence}" for name in ("answer", "methods", "results", "sensitivity",
                                               "limitations")
            for sentence in re.split(r"(?<=[.;])\s+", run.section(name))
            if re.search(r"\balliance\b(?!_)", sentence, flags=re.IGNORECASE)
            and not literature.search(sentence.strip())]
    assert not said, "\n".join(said)
    limitations = run.section("limitations")
    for title in ("Early PCIT coding overlaps the change it predicts", "Shared time trends"):
        assert title in limitations
    assert "Early symptom change can raise later PCIT coding" in limitations


def test_minimal_config_fits_every_default_model(runs):
    run = runs("minimal_config")
    fitted = set(run.tables["model_fit"]["model"]) | set(run.tables["rm_corr"]["outcome"].map(
        lambda _: "R1"))
    for model in ("M0", "M1", "M2", "M3", "M4", "DPM", "DPM-reverse", "R3"):
        assert model in fitted, model
    assert len(run.study.fits) > 20  # every sensitivity analysis of the defaults


# ---------------------------------------------------------------------------------------------
# the hardest design through Snakemake


HARDEST = {
    **DESIGNS["spss_user_missing"].config,
    "study": {"name": "Weekly service export", "seed": 5},
    "analysis": DESIGNS["spss_user_missing"].config["analysis"],
    "models": {"run": ["DPM", "M2", "R3", "M4"], "sensitivity": corpus.NO_SENSITIVITY,
               "riclpm": {"run": False}},
    "multiverse": {"run": False},
}


@pytest.mark.slow
def test_hardest_design_through_snakemake(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(ROOT / "Snakefile", root / "Snakefile")
    shutil.copytree(ROOT / "workflow", root / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "config").mkdir()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(HARDEST, sort_keys=False))
    DESIGNS["spss_user_missing"].write(root / "data" / "raw")
    result = run_snakemake(root, check=False)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-6000:]
    assert "internal error" not in console
    assert "Note: No therapist column is mapped" in console
    fit_table = pd.read_csv(root / "results/tables/model_fit.csv").set_index("model")
    reason = corpus.NO_THERAPIST_IDS
    assert fit_table.loc["M2", "design"] == f"no therapist term: {reason}"
    assert "therapist_id" not in fit_table.loc["M2", "formula"]
    assert fit_table.loc["R3", "status"] == "not_estimated"
    assert fit_table.loc["R3", "reason"] == reason
    assert fit_table.loc["M4", "design"] == f"standard errors clustered by client: {reason}"
    assert fit_table.loc["DPM", "status"] == "fitted"
    assert fit_table.loc["DPM", "waves"].startswith("each client's sessions 1 to ")
    assert check_balance(pd.read_csv(root / "data/processed/data_flow.csv")) == []
    page = (root / "results/report/index.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert f"not estimated: {reason}" in text
    assert "were specified without a therapist term, by design" in text
    assert (root / "results/figures/therapist_caterpillar_phq9.svg").exists()
