"""The instrument registry from config: every declared key checked, its type, range and relations.

:func:`build_registry` returns the built-in instruments (:mod:`analysis.instruments`) plus those
declared under ``instruments:`` in config; :func:`declared_instrument` turns one
``instruments.<key>`` declaration into an :class:`~analysis.instruments.Instrument` (a key equal
to a built-in overrides only the keys it declares). Every mistake is a
:class:`~analysis.errors.ConfigError` naming the exact key (``instruments.bai.item_max``), what is
allowed and, for a misspelt key, the closest valid one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from analysis.config import suggest
from analysis.errors import ConfigError
from analysis.instruments import (
    BAND_KEYS,
    BUILT_IN,
    CASE_RULES,
    DIRECTIONS,
    INSTRUMENT_CONFIG_KEYS,
    MISSING_RULES,
    NAME_PATTERN,
    REQUIRED_CONFIG_KEYS,
    SCORING_RULES,
    Instrument,
)


def build_registry(custom: Mapping[str, Any] | None = None) -> dict[str, Instrument]:
    """The built-in instruments plus those declared in config under ``instruments:``.

    Parameters
    ----------
    custom : mapping or None
        The ``instruments`` config section: instrument key to declaration (see the module
        docstring). A key equal to a built-in overrides the keys it declares.

    Returns
    -------
    dict of str to Instrument
        Built-ins first (in the order phq9, gad7, wai_sr, srs, ors), then new instruments in
        declaration order.

    Raises
    ------
    ConfigError
        Naming the exact key (e.g. ``instruments.bai.item_max``) and what is allowed.

    Examples
    --------
    >>> registry = build_registry({"bai": {"n_items": 21, "item_min": 0, "item_max": 3,
    ...                                    "scoring": "sum", "direction": "higher_worse"}})
    >>> registry["bai"].units
    'BAI total (0-63)'
    """
    registry = dict(BUILT_IN)
    if custom is None:
        return registry
    if not isinstance(custom, Mapping):
        raise ConfigError(
            "config key instruments: must be a mapping from instrument name to its declaration "
            f"(or {{}} for none); got {type(custom).__name__}."
        )
    for key, declaration in custom.items():
        registry[str(key)] = declared_instrument(key, declaration)
    return registry


def declared_instrument(key: Any, declaration: Any) -> Instrument:
    where = f"instruments.{key}"
    if not isinstance(key, str) or not NAME_PATTERN.match(key):
        raise ConfigError(
            f"config key {where}: instrument names must start with a lower-case letter and use "
            f"only lower-case letters, digits and _ (e.g. bai, core_om); got '{key}'."
        )
    if not isinstance(declaration, Mapping):
        raise ConfigError(
            f"config key {where}: must be a mapping of instrument settings (n_items, item_min, "
            f"item_max, scoring, direction, ...); got {type(declaration).__name__}."
        )
    for name in declaration:
        if name not in INSTRUMENT_CONFIG_KEYS:
            hint = suggest(name, INSTRUMENT_CONFIG_KEYS)
            raise ConfigError(
                f"config key {where}.{name} is not an instrument setting.{hint} Allowed: "
                f"{', '.join(INSTRUMENT_CONFIG_KEYS)}."
            )

    if key in BUILT_IN:
        settings = BUILT_IN[key].to_config()
        if declaration.get("missing_rule") == "none":
            settings["max_missing"] = 0
            settings["subscale_max_missing"] = 0
    else:
        for name in REQUIRED_CONFIG_KEYS:
            if name not in declaration:
                raise ConfigError(
                    f"config key {where}.{name} is missing: a new instrument must declare "
                    f"{', '.join(REQUIRED_CONFIG_KEYS)}."
                )
        settings = {}
    settings.update(declaration)
    return _validated_instrument(key, settings, where)


def _validated_instrument(key: str, settings: dict[str, Any], where: str) -> Instrument:
    label = _text(settings.get("label", key.upper()), f"{where}.label")
    construct = _text(settings.get("construct", label), f"{where}.construct")
    n_items = _integer(settings["n_items"], f"{where}.n_items", minimum=1)
    item_min = _number(settings["item_min"], f"{where}.item_min")
    item_max = _number(settings["item_max"], f"{where}.item_max")
    if not item_max > item_min:
        raise ConfigError(
            f"config key {where}.item_max: must be greater than item_min ({item_min:g}); "
            f"got {item_max:g}."
        )
    integer_items = _boolean(settings.get("integer_items", True), f"{where}.integer_items")
    if integer_items and not (float(item_min).is_integer() and float(item_max).is_integer()):
        raise ConfigError(
            f"config key {where}.item_min/item_max: whole-number items need whole-number bounds; "
            f"got {item_min:g}-{item_max:g}. Set integer_items: false for a continuous scale."
        )
    scoring = _choice(settings["scoring"], f"{where}.scoring", SCORING_RULES)
    direction = _choice(settings["direction"], f"{where}.direction", DIRECTIONS)
    reverse_items = _item_numbers(
        settings.get("reverse_items", []), f"{where}.reverse_items", n_items
    )

    raw_subscales = settings.get("subscales", {}) or {}
    if not isinstance(raw_subscales, Mapping):
        raise ConfigError(
            f"config key {where}.subscales: must be a mapping from subscale name to a list of "
            f"item numbers, e.g. {{somatic: [1, 2, 3]}}; got {type(raw_subscales).__name__}."
        )
    subscales: dict[str, tuple[int, ...]] = {}
    for name, items in raw_subscales.items():
        sub_where = f"{where}.subscales.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ConfigError(
                f"config key {sub_where}: subscale names must start with a lower-case letter and "
                f"use only lower-case letters, digits and _."
            )
        numbers = _item_numbers(items, sub_where, n_items)
        if not numbers:
            raise ConfigError(f"config key {sub_where}: a subscale needs at least one item.")
        subscales[name] = numbers

    missing_rule = _choice(
        settings.get("missing_rule", "none"), f"{where}.missing_rule", MISSING_RULES
    )
    if missing_rule == "prorate" and "max_missing" not in settings:
        raise ConfigError(
            f"config key {where}.max_missing is missing: with missing_rule: prorate, say how "
            f"many items may be missing with the score still prorated (e.g. 2 for the PHQ-9)."
        )
    max_missing = _integer(settings.get("max_missing", 0), f"{where}.max_missing", minimum=0)
    subscale_max_missing = _integer(
        settings.get("subscale_max_missing", 0), f"{where}.subscale_max_missing", minimum=0
    )
    if missing_rule == "none" and (max_missing or subscale_max_missing):
        bad = "max_missing" if max_missing else "subscale_max_missing"
        raise ConfigError(
            f"config key {where}.{bad}: must be 0 when missing_rule is none (no prorating); set "
            f"missing_rule: prorate to allow missing items."
        )
    if max_missing >= n_items:
        raise ConfigError(
            f"config key {where}.max_missing: must be less than n_items ({n_items}): at least one "
            f"item must be answered; got {max_missing}."
        )
    if subscales and subscale_max_missing >= min(len(items) for items in subscales.values()):
        raise ConfigError(
            f"config key {where}.subscale_max_missing: must be less than the number of items of "
            f"the smallest subscale ({min(len(i) for i in subscales.values())}); "
            f"got {subscale_max_missing}."
        )
    score_needs_subscales = _boolean(
        settings.get("score_needs_subscales", False), f"{where}.score_needs_subscales"
    )
    if score_needs_subscales and not subscales:
        raise ConfigError(
            f"config key {where}.score_needs_subscales: true needs subscales to be declared."
        )

    instrument_range = Instrument(
        key=key, label=label, construct=construct, n_items=n_items, item_min=item_min,
        item_max=item_max, scoring=scoring, direction=direction,
    )
    low, high = instrument_range.score_min, instrument_range.score_max
    bands = _bands(settings.get("bands", []) or [], f"{where}.bands", low, high)

    caseness = settings.get("caseness")
    if caseness is not None:
        caseness = _number(caseness, f"{where}.caseness")
        if not low <= caseness <= high:
            raise ConfigError(
                f"config key {where}.caseness: must lie within the score range {low:g}-{high:g}; "
                f"got {caseness:g}."
            )
    default_case_when = "at_or_above" if direction == "higher_worse" else "below"
    case_when = _choice(
        settings.get("case_when", default_case_when), f"{where}.case_when", CASE_RULES
    )

    reliable_change = _optional_positive(
        settings.get("reliable_change"), f"{where}.reliable_change"
    )
    reliability = settings.get("reliability")
    if reliability is not None:
        reliability = _number(reliability, f"{where}.reliability")
        if not 0 < reliability < 1:
            raise ConfigError(
                f"config key {where}.reliability: must lie strictly between 0 and 1; "
                f"got {reliability:g}."
            )
    functional_mean = settings.get("functional_mean")
    if functional_mean is not None:
        functional_mean = _number(functional_mean, f"{where}.functional_mean")
    functional_sd = _optional_positive(settings.get("functional_sd"), f"{where}.functional_sd")
    if (functional_mean is None) != (functional_sd is None):
        missing = "functional_sd" if functional_sd is None else "functional_mean"
        raise ConfigError(
            f"config key {where}.{missing} is missing: functional norms need both "
            f"functional_mean and functional_sd (or neither)."
        )
    recall_days = settings.get("recall_days")
    if recall_days is not None:
        recall_days = _integer(recall_days, f"{where}.recall_days", minimum=1)
    risk_item = settings.get("risk_item")
    if risk_item is not None:
        risk_item = _integer(risk_item, f"{where}.risk_item", minimum=1)
        if risk_item > n_items:
            raise ConfigError(
                f"config key {where}.risk_item: must be an item number from 1 to {n_items}; "
                f"got {risk_item}."
            )

    return Instrument(
        key=key,
        label=label,
        construct=construct,
        n_items=n_items,
        item_min=item_min,
        item_max=item_max,
        scoring=scoring,
        direction=direction,
        reverse_items=reverse_items,
        subscales=subscales,
        missing_rule=missing_rule,
        max_missing=max_missing,
        subscale_max_missing=subscale_max_missing,
        score_needs_subscales=score_needs_subscales,
        bands=bands,
        caseness=caseness,
        case_when=case_when,
        reliable_change=reliable_change,
        reliability=reliability,
        functional_mean=functional_mean,
        functional_sd=functional_sd,
        risk_item=risk_item,
        integer_items=integer_items,
        recall_days=recall_days,
    )


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _number(value: Any, where: str) -> float:
    if not _is_number(value):
        raise ConfigError(f"config key {where}: must be a number; got {value!r}.")
    return value


def _integer(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(
            f"config key {where}: must be a whole number of at least {minimum}; got {value!r}."
        )
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"config key {where}: must be true or false; got {value!r}.")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"config key {where}: must be a non-empty text; got {value!r}.")
    return value


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        hint = suggest(value, allowed)
        raise ConfigError(
            f"config key {where}: must be one of {', '.join(allowed)}; got {value!r}.{hint}"
        )
    return value


def _optional_positive(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or value <= 0:
        raise ConfigError(
            f"config key {where}: must be a positive number (or null); got {value!r}."
        )
    return value


def _item_numbers(values: Any, where: str, n_items: int) -> tuple[int, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(
            f"config key {where}: must be a list of item numbers from 1 to {n_items}; "
            f"got {values!r}."
        )
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= n_items:
            raise ConfigError(
                f"config key {where}: item numbers must be whole numbers from 1 to {n_items}; "
                f"got {value!r}."
            )
        if value in numbers:
            raise ConfigError(f"config key {where}: item {value} is listed twice.")
        numbers.append(value)
    return tuple(numbers)


def _bands(
    values: Any, where: str, low: float, high: float
) -> tuple[tuple[str, float, float], ...]:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(
            f"config key {where}: must be a list of {{label, min, max}} entries in increasing "
            f"order; got {type(values).__name__}."
        )
    bands: list[tuple[str, float, float]] = []
    for position, band in enumerate(values):
        band_where = f"{where}[{position}]"
        if not isinstance(band, Mapping):
            raise ConfigError(
                f"config key {band_where}: must be a mapping with label, min and max."
            )
        for name in band:
            if name not in BAND_KEYS:
                hint = suggest(name, BAND_KEYS)
                raise ConfigError(
                    f"config key {band_where}.{name} is not a band setting.{hint} Allowed: "
                    f"{', '.join(BAND_KEYS)}."
                )
        for name in BAND_KEYS:
            if name not in band:
                raise ConfigError(
                    f"config key {band_where}.{name} is missing: a band needs label, min and max."
                )
        label = _text(band["label"], f"{band_where}.label")
        band_min = _number(band["min"], f"{band_where}.min")
        band_max = _number(band["max"], f"{band_where}.max")
        if band_max < band_min:
            raise ConfigError(
                f"config key {band_where}.max: must be at least min ({band_min:g}); "
                f"got {band_max:g}."
            )
        if band_min < low or band_max > high:
            raise ConfigError(
                f"config key {band_where}: the band {band_min:g}-{band_max:g} must lie within the "
                f"score range {low:g}-{high:g}."
            )
        if bands and band_min <= bands[-1][2]:
            raise ConfigError(
                f"config key {band_where}.min: bands must be in increasing order without overlap; "
                f"{band_min:g} is not above the previous band's max ({bands[-1][2]:g})."
            )
        bands.append((label, band_min, band_max))
    return tuple(bands)
