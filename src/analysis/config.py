"""Loading and checking the study configuration.

The configuration (``config/config.yaml``) is checked against the JSON schema
``workflow/schemas/config.schema.yaml`` before anything runs. Defaults are filled in from the
schema. A mistake stops the run with one message that names the key, what is allowed and, for a
misspelt key or instrument, the closest valid name.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

from analysis.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read a YAML config file and return it checked, with defaults filled in."""
    config_path = Path(path)
    if not config_path.exists():
        raise ConfigError(f"config file {config_path} does not exist.")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"config file {config_path} is not valid YAML{where}: {getattr(error, 'problem', error)}. "
            "Check the indentation and quoting there."
        ) from None
    return check_config(raw or {}, load_schema(schema_path), source=str(config_path))


def check_config(config: dict, schema: dict | None = None, source: str = "config") -> dict:
    """Validate ``config`` against the schema; return a copy with the defaults filled in.

    Raises
    ------
    ConfigError
        naming the first offending key (as a dotted path), what the schema allows there, and the
        closest valid key for an unknown one.
    """
    schema = schema if schema is not None else load_schema()
    checked = copy.deepcopy(config)
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(checked), key=_error_order)
    if errors:
        raise ConfigError(f"{source}: {_describe(errors[0], schema)}")
    return checked


def suggest(name: str, valid: list[str] | tuple[str, ...] | set[str]) -> str:
    """" Did you mean 'x'?" for the closest valid name, or an empty string.

    The one place that suggests names: config keys, instruments, models and settings alike.
    """
    close = difflib.get_close_matches(str(name), sorted(valid), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _error_order(error) -> tuple:
    # Report the outermost problem first: it is the one the user should fix first.
    return (len(error.absolute_path), str(list(error.absolute_path)))


def _dotted(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _describe(error, schema: dict) -> str:
    key = _dotted(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        name = unknown[0] if unknown else "?"
        place = f"{key}.{name}" if error.absolute_path else name
        return (
            f'unknown key "{place}".{suggest(name, allowed)} '
            f"Allowed keys here: {', '.join(allowed)}."
        )
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        place = f"{key}.{missing}" if error.absolute_path else missing
        return f'the required key "{place}" is missing. See config/README.md for what it holds.'
    if error.validator == "enum":
        options = [str(option) for option in error.validator_value]
        return (
            f'key "{key}" is {error.instance!r}; allowed: {", ".join(options)}.'
            f"{suggest(error.instance, options)}"
        )
    if error.validator == "type":
        return f'key "{key}" must be of type {error.validator_value}, not {error.instance!r}.'
    if error.validator == "oneOf" and key.endswith(".items"):
        return (
            f'key "{key}" must be a list of column names or a template containing "{{i}}" '
            f'for the item number, e.g. "phq9_{{i}}"; got {error.instance!r}.'
        )
    description = error.schema.get("description")
    hint = f" ({description})" if description else ""
    return f'key "{key}": {error.message}{hint}.'


def _validator_with_defaults(schema: dict):
    """A Draft-7 validator that fills ``default`` values of missing properties while validating."""
    # Imported here: jsonschema takes seconds to import (its format checkers), and only the
    # config check needs it, not every pipeline job that imports this module.
    import jsonschema

    base = jsonschema.Draft7Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, property_schema in properties.items():
                if "default" in property_schema and name not in instance:
                    instance[name] = copy.deepcopy(property_schema["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    extended = jsonschema.validators.extend(base, {"properties": properties_with_defaults})
    return extended(schema)


def config_value(config: dict, dotted_key: str, default: Any = None) -> Any:
    """``config_value(config, "analysis.max_lag_gap")``: a nested value by its dotted key."""
    node: Any = config
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
