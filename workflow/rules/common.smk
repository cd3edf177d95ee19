# Checks the config before anything runs, resolves the study once, and holds the small input
# functions. Every setting a stage reads reaches its rule as params, from the resolved study
# (analysis.study), so that editing it reruns that stage and what depends on it, and nothing else.
import sys

from pathlib import Path

from analysis.catalogue import CROSS_CHECK_FILE, FILES, FIT_FILE, path, written_by
from analysis.codedeps import module_files
from analysis.config import check_config, load_schema
from analysis.errors import UserError
from analysis.study import RESOLVED_STUDY_KEY, ingest_settings, resolve_study, score_settings

try:
    # Our own check first: its messages name the key and suggest the closest valid name.
    _CHECKED = check_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"),
        source="config/config.yaml (or --config)",
    )
    STUDY = resolve_study(_CHECKED)
except UserError as _error:
    sys.stderr.write(f"\nERROR: {_error}\n\n")
    sys.exit(1)

# The Snakemake report's description (workflow/report/workflow.rst) reads the resolved study, not
# the configuration: its templates see only snakemake.config, so the study's plain values (the
# reviewer report's settings) go there under one key of their own.
config[RESOLVED_STUDY_KEY] = STUDY.report.params()

for _note in STUDY.design_notes():
    sys.stderr.write(f"Note: {_note}\n")

OUTCOMES = list(STUDY.outcome_keys)
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def code(script):
    """The package modules a script runs, read off the import graph: a code change reruns
    exactly the jobs whose code changed (installed with `pip install -e .`). Marked local: an
    executor with remote storage (Kubernetes) reads them from the installed package, not from
    the storage bucket."""
    return [local(module) for module in module_files(SCRIPTS / f"{script}.py")]


def raw_inputs():
    return [table.path for table in STUDY.inputs]


def published(name):
    """A published table of the catalogue, shown in the Snakemake report."""
    entry = FILES[name]
    return report(entry.path, caption=f"../report/{entry.caption}", category=entry.category,
                  labels={"table": entry.label})


def outputs_of(rule_name):
    """A rule's outputs from the catalogue, by name; published tables go to the report."""
    return {name: published(name) if entry.caption else entry.path
            for name, entry in written_by(rule_name).items()}


def all_targets():
    return [
        path("episodes_summary"),
        path("data_flow"),
        *model_targets(),
        *[path(name) for name in engagement_report_tables()],
        *[path(name) for name in power_report_tables()],
        *figure_targets(),
        *report_targets(),
    ]


# The report's templates are package data beside the code.
import analysis

PKG_TEMPLATES = str(Path(analysis.__file__).parent / "templates")


# Input functions of the models stage (models.smk).
MODEL_TABLES = list(written_by("combine_models"))


def model_targets():
    """The combined model tables (for `rule all`)."""
    return [path(name) for name in MODEL_TABLES]


def fit_job_inputs(fits):
    """What the fits of one job read: each kind only what it needs, so unrelated changes do not
    refit it."""
    inputs = {
        "derived": path("derived"),
        # for messages about too few clients: what happened upstream (only read on error)
        "quality": ancient(path("data_quality")),
        "scores": path("scores"),
        "code": code("fit_model"),
    }
    kinds = {fit.data for fit in fits}
    if "episodes" in kinds:
        inputs["episodes"] = path("episodes")
    if "administrations" in kinds:
        inputs["administrations"] = path("administrations")
    return inputs


# Input functions of the figures (figures.smk): the rules are made from the figure table, one
# per row drawn (a row of an optional analysis only when it is switched on).
from analysis.figures.table import figure_paths, planned as planned_fits, switched_on_families

PLANNED_FITS = planned_fits(STUDY.fits)
# The power curve's rule also exists when power.run is off, so that `snakemake power` (make
# power) can draw it on demand; `rule all` takes it only with power.run (figure_targets).
FIGURE_FAMILIES = switched_on_families(
    {*STUDY.switched_on, *(() if STUDY.power.missing_models else ("power",))})


def figure_targets():
    """Every figure the study asks for (SVG and PNG), for `rule all` and the reviewer report."""
    return figure_paths(OUTCOMES, PLANNED_FITS, STUDY.switched_on)


def figure_output(family):
    svg = report(family.file("svg"), caption=f"../report/{family.caption}",
                 category=family.category, labels=family.report_labels())
    return {"svg": svg, "png": family.file("png")}


def figure_code(family):
    """The generic script's modules and the family's drawing module with what it imports: the
    script imports its drawing module by name, which the import graph cannot see."""
    drawing = family.module_path
    modules = {*module_files(SCRIPTS / "figure.py"), str(drawing), *module_files(drawing)}
    return [local(module) for module in sorted(modules)]


def figure_wildcards(family):
    """A figure per outcome matches the outcomes it is drawn for, and nothing else."""
    if not family.per_outcome:
        return {}
    return {"outcome": "|".join(family.outcomes(OUTCOMES, PLANNED_FITS)) or "(?!)"}


# Input functions of the reviewer report (report.smk).
BASE_REPORT_TABLES = [
    "models",
    "random_effects",
    "model_fit",
    "engine_agreement",
    "rm_corr",
    "reliability",
    "therapist_icc",
    "episodes_summary",
    "jacobson_truax",
    "data_flow",
    "data_quality",
]


def report_tables():
    """The tables the report reads, with the RI-CLPM check and the multiverse when switched on
    (riclpm.smk, multiverse.smk) and the engagement analyses switched on (engagement.smk)."""
    return (BASE_REPORT_TABLES + riclpm_report_tables() + multiverse_report_tables()
            + engagement_report_tables() + power_report_tables())


# The figures' one-sentence captions, shared with the Snakemake report.
CAPTIONS = "workflow/report"

# The committed recovery tables the report's limitations quote (docs/validation/): a new
# measured run rewrites the report's sentences, so it reruns the report.
from analysis.simulate.recovery import DOCS_TABLE, LARGE_STUDY_TABLE

VALIDATION_TABLES = [local(str(table)) for table in (DOCS_TABLE, LARGE_STUDY_TABLE)
                     if table.is_file()]


def report_targets():
    """The reviewer report, for `rule all`."""
    return [path("report")]


# Input functions of the RI-CLPM check (riclpm.smk) and the multiverse (multiverse.smk); their
# figures are rows of the figure table (figures.smk).
from analysis.catalogue import MULTIVERSE_DATA_FILE, MULTIVERSE_SPEC_FILE, RICLPM_FILE
from analysis.models.multiverse.specifications import data_variants


def riclpm_report_tables():
    """The RI-CLPM tables the reviewer report reads; none when switched off."""
    return [] if STUDY.riclpm is None else list(written_by("combine_riclpm"))


def multiverse_report_tables():
    """The multiverse tables the reviewer report reads; none when switched off."""
    return [] if STUDY.multiverse is None else list(written_by("combine_multiverse"))


def specification_file(spec):
    return MULTIVERSE_SPEC_FILE.format(specification=spec.id)


# Input functions of the engagement analyses (engagement.smk).
from analysis.catalogue import DROPOUT_FIT_FILE, SUDDEN_GAINS_FILE, THERAPIST_PATIENT_FILE

ENGAGEMENT_COMBINE_RULES = {
    "dropout": "combine_dropout",
    "therapist_patient": "combine_therapist_patient",
    "sudden_gains": "combine_sudden_gains",
}


def engagement_report_tables():
    """The published tables of the engagement analyses switched on (the report reads them)."""
    return [name for analysis in STUDY.engagement.switched_on
            for name, entry in written_by(ENGAGEMENT_COMBINE_RULES[analysis]).items()
            if entry.published]


# Input functions of the power analysis (power.smk).
from analysis.catalogue import POWER_BATCH_FILE
from analysis.settings import POWER_REQUIRED_MODELS as POWER_MODELS

POWER = STUDY.power


def power_report_tables():
    """The power tables (power.smk) when power.run puts them in the default run and the report."""
    return ["power_parameters", "power"] if POWER.run else []


def power_fit_files():
    """The primary fit files the generating parameters are read from, outcome by outcome."""
    return [FIT_FILE.format(outcome=outcome, model=model, analysis="primary")
            for outcome in POWER.outcomes for model in POWER_MODELS]


def power_unavailable(wildcards):
    """The power target's input when models.run leaves out a fit it reads: the reason, raised."""
    from analysis.errors import ConfigError

    raise ConfigError(
        f"snakemake power: models.run leaves out {', '.join(POWER.missing_models)}; the "
        f"simulated studies are drawn from the fits of {', '.join(POWER_MODELS)}: add them to "
        "models.run (config/config.yaml).")


def power_batch_files():
    """One file per job: a batch of simulated studies of one design and true effect."""
    return [POWER_BATCH_FILE.format(**keys) for keys in POWER.batch_keys()]
