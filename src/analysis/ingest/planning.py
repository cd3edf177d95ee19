"""Planning a table: which columns hold the roles and each instrument's items or totals.

A declared table is resolved against its header. Anything missing or ambiguous (a column that is
not in the file, two roles on one column, a wide-layout template without ``{session}``) stops
with one message naming the config key, the file and the closest column name.
"""

from __future__ import annotations

import re

from analysis.config import suggest
from analysis.errors import ConfigError, DataError
from analysis.ingest.tables import InstrumentColumns, TablePlan
from analysis.settings import InputTable


def plan_table(table: InputTable, header: list[str], registry: dict) -> TablePlan:
    """Resolve a table's config against its header; raise a clear error for anything missing."""
    name, source = table.name, table.path
    roles = dict(table.columns)
    _check_roles_distinct(name, roles)
    layout, kind = table.layout, table.kind
    if kind == "sessions" and layout == "wide":
        raise ConfigError(
            f"inputs.{name}.layout: a sessions table must be in long layout (one row per session)."
        )
    if layout == "long" and "session" not in roles and "date" not in roles:
        raise ConfigError(
            f"inputs.{name}.columns: map a session column or a date column, so that each row can "
            "be placed in a session."
        )
    for role, column in roles.items():
        if column not in header:
            raise DataError(
                f"{source}: column {column!r} (inputs.{name}.columns.{role}) is not in the file."
                f"{suggest(column, header)} {_header_hint(header)}"
            )
    instruments = []
    for key, declaration in table.instruments.items():
        if key not in registry:
            raise ConfigError(
                f'inputs.{name}.instruments.{key}: unknown instrument "{key}".'
                f"{suggest(key, list(registry))} Known instruments: {', '.join(sorted(registry))}; "
                "declare a new one under instruments: (see config/README.md)."
            )
        instruments.append(_plan_instrument(name, source, key, declaration, registry[key], header, layout))
    if kind == "questionnaires" and not instruments:
        raise ConfigError(f"inputs.{name}.instruments: a questionnaire table must declare at least one instrument.")
    plan = TablePlan(name, source, kind, layout, roles, instruments)
    _check_columns_used_once(plan)
    return plan


def _check_roles_distinct(name: str, roles: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for role, column in roles.items():
        if column in seen:
            raise ConfigError(
                f"inputs.{name}.columns: column {column!r} is mapped to two roles, "
                f"{seen[column]} and {role}. Each role needs its own column."
            )
        seen[column] = role


def _check_columns_used_once(plan: TablePlan) -> None:
    owners: dict[str, str] = {column: f"columns.{role}" for role, column in plan.roles.items()}
    for instrument in plan.instruments:
        columns = [c for by_item in instrument.items.values() for c in by_item.values()]
        columns += list(instrument.totals.values())
        for column in columns:
            if column in owners:
                raise ConfigError(
                    f"inputs.{plan.name}: column {column!r} is used twice, by {owners[column]} and by "
                    f"instruments.{instrument.key}. Each column can have one meaning only."
                )
            owners[column] = f"instruments.{instrument.key}"


def _header_hint(header: list[str]) -> str:
    if len(header) == 1:
        for delimiter, label in ((";", "semicolon"), ("\t", "tab"), ("|", "bar")):
            if delimiter in header[0]:
                return (
                    f"The file seems to use {label}s as delimiter: set its delimiter in config "
                    f"(delimiter: \"{delimiter if delimiter != chr(9) else chr(92) + 't'}\")."
                )
    shown = ", ".join(header[:12]) + (" ..." if len(header) > 12 else "")
    return f"Columns in the file: {shown}."


def _plan_instrument(name, source, key, declaration, instrument, header, layout) -> InstrumentColumns:
    config_key = f"inputs.{name}.instruments.{key}"
    columns = InstrumentColumns(key)
    items = declaration.get("items")
    total = declaration.get("total")
    if items is None and total is None:
        raise ConfigError(f"{config_key}: give its item columns (items:) or a pre-scored total column (total:).")
    sessions: list[int] = [0]
    if layout == "wide":
        template = items if isinstance(items, str) else total
        if not isinstance(template, str) or "{session}" not in template:
            raise ConfigError(
                f"{config_key}: in wide layout, items or total must be a template with {{session}}, "
                'e.g. total: "phq9_s{session}".'
            )
        sessions = _sessions_in_header(template, header)
        if not sessions:
            raise DataError(f"{source}: no column matches {template!r} ({config_key}). {_header_hint(header)}")
    for session in sessions:
        if items is not None:
            if isinstance(items, str):
                names = [_fill(items, i=i, session=session) for i in range(1, instrument.n_items + 1)]
            else:
                names = list(items)
                if len(names) != instrument.n_items:
                    raise ConfigError(
                        f"{config_key}.items: {len(names)} columns listed, but {instrument.label} has "
                        f"{instrument.n_items} items."
                    )
            missing = [column for column in names if column not in header]
            if missing:
                raise DataError(
                    f"{source}: item column {missing[0]!r} of {instrument.label} ({config_key}.items) is not "
                    f"in the file.{suggest(missing[0], header)} {_header_hint(header)}"
                )
            columns.items[session] = {i: column for i, column in enumerate(names, start=1)}
        if total is not None:
            column = _fill(total, session=session)
            if column not in header:
                raise DataError(
                    f"{source}: total column {column!r} ({config_key}.total) is not in the file."
                    f"{suggest(column, header)} {_header_hint(header)}"
                )
            columns.totals[session] = column
    return columns


def _fill(template: str, **values: int) -> str:
    text = template
    for field_name, value in values.items():
        text = text.replace("{" + field_name + "}", str(value))
    return text


def _sessions_in_header(template: str, header: list[str]) -> list[int]:
    pattern = re.escape(template).replace(r"\{session\}", r"(?P<session>\d+)").replace(r"\{i\}", r"\d+")
    found = {int(m.group("session")) for column in header if (m := re.fullmatch(pattern, column))}
    return sorted(found)
