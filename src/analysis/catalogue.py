"""The catalogue of stage files: every file a stage writes, where it lives and what it holds.

One entry per file (:class:`StageFile`): its name, its path relative to the project folder, the
rule that writes it, a one-line description, and for published tables the Snakemake report's
category, caption file and label. The Snakefile's rules, :mod:`analysis.results`, the report and
the notebooks take their paths from here; nothing else spells a path. Data schemas of the files
(what crosses each stage boundary) live in :mod:`analysis.contracts`, keyed by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

PROCESSED = "data/processed"
TABLES = "results/tables"
FIGURES = "results/figures"
FITS = "results/fits"
MANUSCRIPT = "results/manuscript"


@dataclass(frozen=True)
class StageFile:
    """One file written by a stage.

    Attributes
    ----------
    name : str
        Short name used in code (``derived``) and in ``analysis.results.load_output``.
    path : str
        Relative to the project folder.
    rule : str
        The Snakemake rule that writes it.
    description : str
        What it holds, in a line.
    category, caption, label : str
        For published tables: the Snakemake report's category, the caption file under
        ``workflow/report/`` and the label shown.
    """

    name: str
    path: str
    rule: str
    description: str
    category: str = ""
    caption: str = ""
    label: str = ""

    @property
    def published(self) -> bool:
        return self.path.startswith("results/")


_FILES = (
    StageFile("administrations", f"{PROCESSED}/administrations.parquet", "ingest",
              "one row per questionnaire administration kept at ingest (items, pseudonymised)"),
    StageFile("sessions", f"{PROCESSED}/sessions.parquet", "ingest",
              "the session registry: client, therapist, session, day"),
    StageFile("offered_sessions", f"{PROCESSED}/offered_sessions.parquet", "ingest",
              "every session record with its status: attended, did not attend, cancelled by "
              "client or service (from the status column), or no_measure (a placeholder record "
              "without any measure), and the episode ending a record carries (from the ending "
              "column, else missing); the attendance rates and dropout read it"),
    StageFile("rejects", f"{PROCESSED}/rejects.csv", "ingest",
              "every rejected row or administration: file, row, column, instrument, rule, reason"),
    StageFile("ingest_flags", f"{PROCESSED}/ingest_flags.csv", "ingest",
              "rows kept at ingest with a warning (a session dated before the previous one)"),
    StageFile("ingest_flow", f"{PROCESSED}/ingest_flow.csv", "ingest",
              "per file: rows read, kept, rejected; per instrument: administrations"),
    StageFile("data_quality", f"{TABLES}/data_quality.csv", "quality_gate",
              "per file and instrument: read, kept, rejected, the top reason and its fix",
              "data", "data_quality.rst", "data quality at ingest"),
    StageFile("scores", f"{PROCESSED}/scores.parquet", "score",
              "one row per administration: score, prorating, band, caseness, risk flag"),
    StageFile("flags", f"{PROCESSED}/flags.csv", "score",
              "every kept row with a warning: dates out of order (ingest), prorated scores"),
    StageFile("episodes", f"{PROCESSED}/episodes.parquet", "episodes",
              "one row per client and outcome: pre-post change and its interpretation"),
    StageFile("episodes_combined", f"{PROCESSED}/episodes_combined.parquet", "episodes",
              "one row per client: caseness, recovery and reliable change over all outcomes"),
    StageFile("jacobson_truax_parameters", f"{PROCESSED}/jacobson_truax.parquet", "episodes",
              "the Jacobson-Truax parameters per outcome (unsuppressed)"),
    StageFile("jacobson_truax", f"{TABLES}/jacobson_truax.csv", "publish_episodes",
              "the Jacobson-Truax parameters per outcome, small counts suppressed"),
    StageFile("episodes_summary", f"{TABLES}/episodes_summary.csv", "publish_episodes",
              "episode outcomes per outcome and measure, small counts suppressed",
              "instruments", "episodes_summary.rst", "episode outcomes"),
    StageFile("derived", f"{PROCESSED}/derived.parquet", "derive",
              "one row per outcome, client and session: the analysis variables"),
    StageFile("models", f"{TABLES}/models.csv", "combine_models",
              "fixed effects of every fit", "models", "models.rst", "fixed effects"),
    StageFile("sensitivity", f"{TABLES}/sensitivity.csv", "combine_models",
              "the terms of interest across analyses", "sensitivity", "models_sensitivity.rst",
              "sensitivity analyses"),
    StageFile("random_effects", f"{TABLES}/random_effects.csv", "combine_models",
              "variance components of every mixed model", "models",
              "models_random_effects.rst", "random effects"),
    StageFile("model_fit", f"{TABLES}/model_fit.csv", "combine_models",
              "final formula, simplifications and convergence of every fit", "models",
              "models_fit.rst", "model fit"),
    StageFile("engine_agreement", f"{TABLES}/engine_agreement.csv", "combine_models",
              "the second engine's estimates beside the first's", "models",
              "models_engine_agreement.rst", "engine agreement"),
    StageFile("rm_corr", f"{TABLES}/rm_corr.csv", "combine_models",
              "repeated-measures correlations of alliance and symptoms", "models",
              "models_rm_corr.rst", "repeated-measures correlation"),
    StageFile("reliability", f"{TABLES}/reliability.csv", "combine_models",
              "Cronbach's alpha per instrument", "models", "models_reliability.rst",
              "reliability"),
    StageFile("therapist_icc", f"{TABLES}/therapist_icc.csv", "combine_models",
              "share of symptom variance between therapists", "models",
              "models_therapist_icc.rst", "therapist ICC"),
    StageFile("early_alliance", f"{TABLES}/early_alliance.csv", "combine_models",
              "M4: early alliance and pre-post change", "sensitivity",
              "models_early_alliance.rst", "early alliance"),
    StageFile("fit_counts", f"{PROCESSED}/fit_counts.csv", "combine_models",
              "observations, clients and therapists of every fit (exact, unpublished)"),
    StageFile("data_flow_full", f"{PROCESSED}/data_flow.csv", "data_flow",
              "where every input row went (unsuppressed)"),
    StageFile("data_flow", f"{TABLES}/data_flow.csv", "data_flow",
              "where every input row went, counts of people suppressed", "data",
              "data_flow.rst", "data flow"),
    # the RI-CLPM check and the multiverse (workflow/rules/riclpm.smk, multiverse.smk)
    StageFile("riclpm", f"{TABLES}/riclpm.csv", "combine_riclpm",
              "RI-CLPM: every parameter, lagged paths constrained and free over waves",
              "models", "riclpm.rst", "RI-CLPM parameters"),
    StageFile("riclpm_fit", f"{TABLES}/riclpm_fit.csv", "combine_riclpm",
              "RI-CLPM: fit indices, sizes and convergence (or why it was not identified)",
              "models", "riclpm_fit.rst", "RI-CLPM fit"),
    StageFile("multiverse", f"{TABLES}/multiverse.csv", "combine_multiverse",
              "the multiverse: the alliance -> symptoms effect under every specification "
              "(estimator a choice; duplicates marked)",
              "sensitivity", "multiverse.rst", "multiverse of specifications"),
    StageFile("multiverse_summary", f"{TABLES}/multiverse_summary.csv", "combine_multiverse",
              "the multiverse in numbers per outcome and lag, with its bootstrap joint test",
              "sensitivity", "multiverse_summary.rst", "multiverse summary"),
    # engagement: dropout, therapist and patient contributions, sudden gains
    # (workflow/rules/engagement.smk)
    StageFile("dropout_episodes", f"{PROCESSED}/dropout_episodes.parquet", "dropout_episodes",
              "one row per client: time to dropout (last attended session), the event and its "
              "source (proxy rule or recorded ending), attendance counts, early-alliance tertile"),
    StageFile("dropout_km", f"{PROCESSED}/dropout_km.parquet", "dropout_episodes",
              "Kaplan-Meier estimates of time to dropout by early-alliance tertile (unsuppressed)"),
    StageFile("dropout", f"{TABLES}/dropout.csv", "combine_dropout",
              "discrete-time hazard model of dropout on alliance, per outcome, with the "
              "alliance effect as d beside Sharf et al.'s 0.55", "engagement", "dropout.rst",
              "dropout hazard model"),
    StageFile("attendance", f"{TABLES}/attendance.csv", "combine_dropout",
              "attendance and dropout, overall and by early-alliance tertile, small counts "
              "suppressed", "engagement", "attendance.rst", "attendance and dropout"),
    StageFile("therapist_patient_alliance", f"{TABLES}/therapist_patient_alliance.csv",
              "combine_therapist_patient",
              "therapist and patient parts of the alliance and the end-of-treatment score "
              "(Baldwin et al. 2007), per outcome, or why not estimated", "engagement",
              "therapist_patient_alliance.rst", "therapist and patient alliance"),
    StageFile("therapist_patient_points", f"{PROCESSED}/therapist_patient_points.parquet",
              "combine_therapist_patient",
              "per outcome and therapist in the decomposition: mean alliance and the clients' "
              "mean change (the figure's points)"),
    StageFile("sudden_gains", f"{TABLES}/sudden_gains.csv", "combine_sudden_gains",
              "one row per sudden gain or loss: client pseudonym, outcome, pregain session, "
              "the scores around it, magnitude, reversal, alliance before and after",
              "engagement", "sudden_gains.rst", "sudden gains"),
    StageFile("sudden_gains_summary", f"{TABLES}/sudden_gains_summary.csv",
              "combine_sudden_gains",
              "per outcome: the criteria, clients with gains and losses, reversals, and the "
              "alliance before and after the gains, small counts suppressed", "engagement",
              "sudden_gains_summary.rst", "sudden gains summary"),
    StageFile("sudden_gains_course", f"{PROCESSED}/sudden_gains_course.parquet",
              "combine_sudden_gains",
              "mean symptoms and alliance by session around the sudden gains (the figure)"),
    # planning the next study: power from this study's components (workflow/rules/power.smk)
    StageFile("power_parameters", f"{TABLES}/power_parameters.csv", "power_parameters",
              "the parameters the simulated studies are drawn from, per outcome, each with its "
              "source (fit file and term, or the derived data)", "power",
              "power_parameters.rst", "power: generating parameters"),
    StageFile("power", f"{TABLES}/power.csv", "combine_power",
              "Monte-Carlo power of the primary test (DPM) and of M2 per design and true effect, "
              "with its Wilson 95% CI", "power", "power.rst", "power for the next study"),
    # the manuscript outputs (workflow/rules/manuscript.smk; manuscript.run)
    StageFile("manuscript_tables", f"{MANUSCRIPT}/tables.docx", "manuscript",
              "APA-style tables of the primary and sensitivity models, random effects, RI-CLPM "
              "and multiverse as Word tables"),
    StageFile("manuscript_tables_latex", f"{MANUSCRIPT}/tables.tex", "manuscript",
              "the same tables as booktabs LaTeX, to \\input in a manuscript"),
    StageFile("manuscript_tables_standalone", f"{MANUSCRIPT}/tables_standalone.tex",
              "manuscript", "a complete LaTeX document that inputs tables.tex (compiles as is)"),
    StageFile("flow_diagram_svg", f"{MANUSCRIPT}/flow_diagram.svg", "manuscript",
              "the participant flow diagram (CONSORT style) from the published data flow"),
    StageFile("flow_diagram_pdf", f"{MANUSCRIPT}/flow_diagram.pdf", "manuscript",
              "the participant flow diagram as PDF (fonts embedded)"),
    StageFile("manuscript_methods", f"{MANUSCRIPT}/methods.docx", "manuscript",
              "the reviewer report's methods section as a Word document, with references"),
    StageFile("report", "results/report/index.html", "reviewer_report",
              "the standalone reviewer report", "report", "report_index.rst",
              "reviewer report (standalone HTML)"),
)

#: Every stage file, by name.
FILES: dict[str, StageFile] = {entry.name: entry for entry in _FILES}

#: One fit job's result and one cross-check's, by wildcards.
FIT_FILE = FITS + "/{outcome}/{model}/{analysis}.json"
CROSS_CHECK_FILE = FITS + "/{outcome}/{model}/cross_check.json"
#: The RI-CLPM of one outcome, a multiverse data variant and one multiverse specification.
RICLPM_FILE = FITS + "/riclpm/{outcome}.json"
MULTIVERSE_DATA_FILE = PROCESSED + "/multiverse/{prorating}.parquet"
MULTIVERSE_SPEC_FILE = FITS + "/multiverse/{specification}.json"
#: One outcome's dropout hazard model, therapist-patient decomposition and sudden gains.
DROPOUT_FIT_FILE = FITS + "/dropout/{outcome}.json"
THERAPIST_PATIENT_FILE = FITS + "/therapist_patient/{outcome}.json"
SUDDEN_GAINS_FILE = FITS + "/sudden_gains/{outcome}.json"
#: One job's simulated studies of the power analysis (a batch of one design cell).
POWER_BATCH_FILE = FITS + "/power/{outcome}/{design}/{effect}/batch_{batch}.csv"


#: A figure of the figure table at a journal column width (manuscript.smk).
MANUSCRIPT_FIGURE_FILE = MANUSCRIPT + "/figures/{figure}.pdf"


def path(name: str) -> str:
    """The path of the stage file ``name`` (relative to the project folder)."""
    return FILES[name].path


def written_by(rule: str) -> dict[str, StageFile]:
    """The files a rule writes, by name, in catalogue order."""
    return {name: entry for name, entry in FILES.items() if entry.rule == rule}
