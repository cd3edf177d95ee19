# Checks the config before anything runs, and holds the small input functions.
import sys

from pathlib import Path

from analysis.config import check_config, load_schema
from analysis.errors import UserError
from analysis.instruments import build_registry, get_instrument
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
