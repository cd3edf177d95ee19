# Checks the config before anything runs, and holds the small input functions.
import sys

from pathlib import Path

from analysis.config import check_config, load_schema
from analysis.errors import UserError
from analysis.instruments import build_registry, get_instrument
from analysis.models.specs import resolve_fit
from analysis.pipeline import input_paths

try:
    # Our own check first: its messages name the key and suggest the closest valid name.
    _checked = check_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"),
        source="config/config.yaml (or --config)",
    )
    config.update(_checked)
    REGISTRY = build_registry(config["instruments"])
    get_instrument(REGISTRY, config["analysis"]["alliance"], "analysis.alliance")
    for _outcome in config["analysis"]["outcomes"]:
        get_instrument(REGISTRY, _outcome, "analysis.outcomes")
except UserError as _error:
    sys.stderr.write(f"\nERROR: {_error}\n\n")
    sys.exit(1)

OUTCOMES = list(config["analysis"]["outcomes"])

# The package modules each stage uses, where the installed package lives (src/analysis/ in a
# checkout installed with `pip install -e .`): a code change reruns what depends on it.
import analysis

PKG = str(Path(analysis.__file__).parent) + "/"


def package_modules(*names):
    return [f"{PKG}{name}.py" for name in names]


def raw_inputs():
    return [str(path) for path in input_paths(config).values()]


def all_targets():
    return [
        "results/tables/episodes_summary.csv",
        "results/tables/data_flow.csv",
        *model_targets(),
        *figure_targets(),
        *report_targets(),
    ]


# Input functions of the models stage (workflow/rules/models.smk).
def model_targets():
    """The combined model tables (for `rule all`)."""
    return [f"results/tables/{name}.csv" for name in MODEL_TABLES]


def fit_inputs(wildcards):
    """Each fit reads only what its kind needs, so unrelated changes do not refit it."""
    resolved = resolve_fit(config, wildcards.outcome, wildcards.model, wildcards.analysis)
    inputs = {"derived": "data/processed/derived.parquet", "code": MODEL_CODE}
    if resolved.data == "episodes":
        inputs["episodes"] = "data/processed/episodes.parquet"
    if resolved.data == "administrations":
        inputs["administrations"] = "data/processed/administrations.parquet"
    return inputs


def fit_settings(wildcards):
    """The resolved specification and the instrument declarations: a change reruns the fit."""
    resolved = resolve_fit(config, wildcards.outcome, wildcards.model, wildcards.analysis)
    return {"spec": resolved.as_dict(), "instruments": config["instruments"]}
