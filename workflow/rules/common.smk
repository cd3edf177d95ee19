# Checks the config before anything runs, resolves the study once, and holds the small input
# functions. Every setting a stage reads reaches its rule as params, from the resolved study
# (analysis.study), so that editing it reruns that stage and what depends on it, and nothing else.
import sys

from pathlib import Path

from analysis.catalogue import CROSS_CHECK_FILE, FILES, FIT_FILE, path, written_by
from analysis.codedeps import module_files
from analysis.config import check_config, load_schema
from analysis.errors import UserError
from analysis.study import ingest_settings, resolve_study, score_settings

try:
    # Our own check first: its messages name the key and suggest the closest valid name.
    STUDY = resolve_study(
        check_config(
            config,
            load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"),
            source="config/config.yaml (or --config)",
        )
    )
except UserError as _error:
    sys.stderr.write(f"\nERROR: {_error}\n\n")
    sys.exit(1)

OUTCOMES = list(STUDY.outcome_keys)
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


def code(script):
    """The package modules a script runs, read off the import graph: a code change reruns
    exactly the jobs whose code changed (installed with `pip install -e .`)."""
    return module_files(SCRIPTS / f"{script}.py")


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
        *figure_targets(),
        *report_targets(),
    ]


# The report's templates are package data beside the code.
import analysis

PKG_TEMPLATES = str(Path(analysis.__file__).parent / "templates")
