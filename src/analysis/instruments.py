"""The instrument registry: every fact about every questionnaire, in one place.

An :class:`Instrument` holds what scoring, episodes, models and figures need to know about a
questionnaire: item count and range, sum or mean scoring, reverse-keyed items, subscales,
direction, the missing-item rule, severity bands, the caseness cut-off, the reliable-change
threshold and (optionally) reliability and functional norms for Jacobson-Truax. Five instruments
are built in (PHQ-9, GAD-7, WAI-SR, SRS, ORS; see docs/methods.md section 1). :func:`build_registry`
adds the instruments declared under ``instruments:`` in config and returns a dict from key to
:class:`Instrument`; nothing else in the package hard-codes a fact about a questionnaire.

Declaring an instrument in config (which columns hold its items is said under ``inputs:``)::

    instruments:
      bai:                          # the key: lower case letters, digits and _
        label: BAI                  # shown in tables and axis labels (default: the key in capitals)
        construct: anxiety          # what it measures (default: the label)
        n_items: 21                 # required
        item_min: 0                 # required
        item_max: 3                 # required
        integer_items: true         # items must be whole numbers (false for visual-analogue scales)
        scoring: sum                # required: sum | mean
        direction: higher_worse     # required: higher_worse | higher_better
        reverse_items: []           # 1-based item numbers scored as item_min + item_max - x
        subscales: {}               # name: [item numbers], e.g. {somatic: [1, 2, 3]}
        missing_rule: prorate       # prorate | none (default none: any missing item, no score)
        max_missing: 2              # items that may be missing and still prorated (required
                                    # when missing_rule is prorate; 0 when it is none)
        subscale_max_missing: 0     # the same for each subscale
        score_needs_subscales: false  # true: no overall score unless every subscale is scorable
        bands:                      # optional severity bands on the score scale
          - {label: minimal, min: 0, max: 7}
          - {label: mild, min: 8, max: 15}
          - {label: moderate, min: 16, max: 25}
          - {label: severe, min: 26, max: 63}
        caseness: 16                # optional cut-off
        case_when: at_or_above      # at_or_above | above | at_or_below | below (default:
                                    # at_or_above when higher is worse, below when higher is better)
        reliable_change: 9          # optional reliable-change threshold in score points
        reliability: 0.92           # optional r_xx for Jacobson-Truax (else Cronbach's alpha)
        functional_mean: 6.0        # optional functional-population norms for the Jacobson-Truax
        functional_sd: 5.0          # cut-off c (give both or neither)
        risk_item: null             # optional item whose value above item_min sets a risk flag
        recall_days: 14             # optional: days the questions look back over ("last 2 weeks")

A key equal to a built-in (``phq9``, ``gad7``, ``wai_sr``, ``srs``, ``ors``) overrides that
instrument: the keys it declares replace the built-in's values and the rest are kept, so
``gad7: {max_missing: 0}`` turns off prorating for the GAD-7 and nothing else. Setting
``missing_rule: none`` on a built-in also sets its ``max_missing`` and ``subscale_max_missing`` to 0
unless they are declared too.

Missing items and prorating: with ``missing_rule: prorate`` an administration with at most
``max_missing`` missing items is scored from the answered items (the mean of the answered items
times the item count for a sum score; the mean of the answered items for a mean score) and flagged
as prorated. A subscale is scored the same way from its own items under ``subscale_max_missing``.
Bands: a score falls in the band with the largest ``min`` at or below it (so a prorated PHQ-9 of
9.6 is "mild": bands are lower bounds, and ``max`` only bounds the last band); scores are never
rounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.config import suggest
from analysis.errors import ConfigError

SCORING_RULES = ("sum", "mean")
DIRECTIONS = ("higher_worse", "higher_better")
MISSING_RULES = ("prorate", "none")
CASE_RULES = ("at_or_above", "above", "at_or_below", "below")

# The keys a custom instrument declaration may use, in the order the module docstring lists them.
INSTRUMENT_CONFIG_KEYS = (
    "label",
    "construct",
    "n_items",
    "item_min",
    "item_max",
    "integer_items",
    "scoring",
    "direction",
    "reverse_items",
    "subscales",
    "missing_rule",
    "max_missing",
    "subscale_max_missing",
    "score_needs_subscales",
    "bands",
    "caseness",
    "case_when",
    "reliable_change",
    "reliability",
    "functional_mean",
    "functional_sd",
    "risk_item",
    "recall_days",
)

# A new (not built-in) instrument must declare these; an override of a built-in need not.
REQUIRED_CONFIG_KEYS = ("n_items", "item_min", "item_max", "scoring", "direction")

BAND_KEYS = ("label", "min", "max")

# What each stage reads of an instrument. A stage's Snakemake params carry only these keys, so an
# edit of an instrument reruns exactly the stages that read the edited key (see analysis.study).
# Every reader needs the identity of the scale: what its items are and how its score is formed.
IDENTITY_KEYS = (
    "label", "construct", "n_items", "item_min", "item_max", "integer_items", "scoring",
    "direction",
)
STAGE_READS: dict[str, tuple[str, ...]] = {
    "ingest": IDENTITY_KEYS,
    "score": IDENTITY_KEYS + (
        "reverse_items", "subscales", "missing_rule", "max_missing", "subscale_max_missing",
        "score_needs_subscales", "bands", "caseness", "case_when", "risk_item",
    ),
    "episodes": IDENTITY_KEYS + (
        "reverse_items", "caseness", "case_when", "reliable_change", "reliability",
        "functional_mean", "functional_sd",
    ),
    # R2's item matrix (reverse-keyed items reversed) and the subscale sensitivity analyses
    "models": IDENTITY_KEYS + ("reverse_items", "subscales"),
    "figures": IDENTITY_KEYS + ("caseness", "case_when"),
    "report": INSTRUMENT_CONFIG_KEYS,
}

# Instrument and subscale names become parts of column names and file names.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Instrument:
    """One questionnaire: items, scoring rule, missing-item rule and interpretation.

    Attributes
    ----------
    key : str
        Registry key, e.g. ``"phq9"``; the value of ``instrument`` in processed files.
    label : str
        Display name, e.g. ``"PHQ-9"``.
    construct : str
        What the score measures, e.g. ``"depression"``.
    n_items : int
        Number of items; they are ``item_1`` .. ``item_<n_items>`` in processed files.
    item_min, item_max : float
        Allowed item range (inclusive).
    scoring : {"sum", "mean"}
        The score is the item sum or the item mean.
    reverse_items : tuple of int
        1-based numbers of items scored as ``item_min + item_max - x``.
    subscales : dict of str to tuple of int
        Subscale name to its 1-based item numbers; scored with the instrument's rule.
    direction : {"higher_worse", "higher_better"}
        Whether a higher score means more problems or fewer.
    missing_rule : {"prorate", "none"}
        ``prorate``: up to ``max_missing`` missing items are filled by the mean of the answered
        ones; ``none``: any missing item leaves the administration without a score.
    max_missing : int
        Items that may be missing with the score still prorated (0 under ``none``).
    subscale_max_missing : int
        The same for each subscale.
    score_needs_subscales : bool
        If true, the overall score also needs every subscale to be scorable under
        ``subscale_max_missing`` (the WAI-SR rule).
    bands : tuple of (str, float, float)
        Severity bands ``(label, min, max)`` on the score scale, in increasing order.
    caseness : float or None
        Caseness cut-off on the score scale.
    case_when : {"at_or_above", "above", "at_or_below", "below"}
        Which side of ``caseness`` is a case.
    reliable_change : float or None
        Reliable-change threshold in score points.
    reliability : float or None
        Test-retest or internal-consistency reliability ``r_xx`` for Jacobson-Truax.
    functional_mean, functional_sd : float or None
        Functional-population norms for the Jacobson-Truax cut-off ``c``.
    risk_item : int or None
        1-based item whose raw value above ``item_min`` sets ``risk_flag`` (PHQ-9 item 9).
    integer_items : bool
        Items must be whole numbers (false for visual-analogue scales such as the SRS and ORS).
    recall_days : int or None
        Days the questions look back over; consecutive sessions closer than this share part of
        their recall window (the report says so).
    """

    key: str
    label: str
    construct: str
    n_items: int
    item_min: float
    item_max: float
    scoring: str
    direction: str
    reverse_items: tuple[int, ...] = ()
    # A dict cannot be hashed; excluding it from the hash keeps Instrument usable as a dict key
    # while equality still compares it.
    subscales: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False)
    missing_rule: str = "none"
    max_missing: int = 0
    subscale_max_missing: int = 0
    score_needs_subscales: bool = False
    bands: tuple[tuple[str, float, float], ...] = ()
    caseness: float | None = None
    case_when: str = "at_or_above"
    reliable_change: float | None = None
    reliability: float | None = None
    functional_mean: float | None = None
    functional_sd: float | None = None
    risk_item: int | None = None
    integer_items: bool = True
    recall_days: int | None = None

    @property
    def score_min(self) -> float:
        """The lowest possible score."""
        return self.item_min * (self.n_items if self.scoring == "sum" else 1)

    @property
    def score_max(self) -> float:
        """The highest possible score."""
        return self.item_max * (self.n_items if self.scoring == "sum" else 1)

    @property
    def total_min(self) -> float:
        """The lowest possible item sum."""
        return self.item_min * self.n_items

    @property
    def total_max(self) -> float:
        """The highest possible item sum."""
        return self.item_max * self.n_items

    @property
    def units(self) -> str:
        """Axis-label text, e.g. ``"PHQ-9 total (0-27)"`` or ``"WAI-SR mean (1-5)"``."""
        kind = "total" if self.scoring == "sum" else "mean"
        return f"{self.label} {kind} ({self.score_min:g}-{self.score_max:g})"

    @property
    def item_columns(self) -> list[str]:
        """Column names of this instrument's items in processed files."""
        return [f"item_{number}" for number in range(1, self.n_items + 1)]

    def is_case(self, scores: Any) -> pd.arrays.BooleanArray:
        """Caseness of each score: True/False, <NA> for a missing score or without a cut-off.

        Parameters
        ----------
        scores : array-like of float
            Scores on this instrument's score scale (NaN = missing).
        """
        values = np.asarray(scores, dtype="float64")
        missing = np.isnan(values)
        if self.caseness is None:
            return pd.array([pd.NA] * len(values), dtype="boolean")
        cut = float(self.caseness)
        with np.errstate(invalid="ignore"):
            if self.case_when == "at_or_above":
                case = values >= cut
            elif self.case_when == "above":
                case = values > cut
            elif self.case_when == "at_or_below":
                case = values <= cut
            else:
                case = values < cut
        return pd.arrays.BooleanArray(case, missing)

    def band_of(self, scores: Any) -> pd.api.extensions.ExtensionArray:
        """The severity band label of each score (<NA> when missing, outside bands or no bands).

        A score falls in the band with the largest ``min`` at or below it, up to the last band's
        ``max``.
        """
        values = np.asarray(scores, dtype="float64")
        labels = np.full(len(values), None, dtype=object)
        if self.bands:
            lower = np.array([band[1] for band in self.bands], dtype="float64")
            upper_last = float(self.bands[-1][2])
            position = np.searchsorted(lower, values, side="right") - 1
            with np.errstate(invalid="ignore"):
                inside = (~np.isnan(values)) & (position >= 0) & (values <= upper_last)
            names = np.array([band[0] for band in self.bands], dtype=object)
            labels[inside] = names[position[inside]]
        return pd.array(labels, dtype="string")

    def improvement(self, change: Any) -> np.ndarray:
        """Change (last - first) turned so that a positive value always means improvement."""
        values = np.asarray(change, dtype="float64")
        return -values if self.direction == "higher_worse" else values

    def params(self, stage: str = "report") -> dict[str, Any]:
        """The declaration keys ``stage`` reads (:data:`STAGE_READS`), as plain values.

        The inverse is :func:`instrument_from_params`; a rule's params hold this, so Snakemake
        reruns the stage when one of these keys changes, and only then.
        """
        declaration = self.to_config()
        return {name: declaration[name] for name in STAGE_READS[stage]}

    def to_config(self) -> dict[str, Any]:
        """This instrument as a config declaration (the inverse of :func:`build_registry`)."""
        return {
            "label": self.label,
            "construct": self.construct,
            "n_items": self.n_items,
            "item_min": self.item_min,
            "item_max": self.item_max,
            "integer_items": self.integer_items,
            "scoring": self.scoring,
            "direction": self.direction,
            "reverse_items": list(self.reverse_items),
            "subscales": {name: list(items) for name, items in self.subscales.items()},
            "missing_rule": self.missing_rule,
            "max_missing": self.max_missing,
            "subscale_max_missing": self.subscale_max_missing,
            "score_needs_subscales": self.score_needs_subscales,
            "bands": [{"label": b[0], "min": b[1], "max": b[2]} for b in self.bands],
            "caseness": self.caseness,
            "case_when": self.case_when,
            "reliable_change": self.reliable_change,
            "reliability": self.reliability,
            "functional_mean": self.functional_mean,
            "functional_sd": self.functional_sd,
            "risk_item": self.risk_item,
            "recall_days": self.recall_days,
        }


PHQ9 = Instrument(
    key="phq9",
    label="PHQ-9",
    construct="depression",
    n_items=9,
    item_min=0,
    item_max=3,
    scoring="sum",
    direction="higher_worse",
    missing_rule="prorate",
    max_missing=2,
    bands=(
        ("minimal", 0, 4),
        ("mild", 5, 9),
        ("moderate", 10, 14),
        ("moderately severe", 15, 19),
        ("severe", 20, 27),
    ),
    caseness=10,
    case_when="at_or_above",
    reliable_change=6,
    risk_item=9,
    recall_days=14,
)

# No official missing-item rule exists for the GAD-7; the PHQ-9 rule is the common practice.
GAD7 = Instrument(
    key="gad7",
    label="GAD-7",
    construct="anxiety",
    n_items=7,
    item_min=0,
    item_max=3,
    scoring="sum",
    direction="higher_worse",
    missing_rule="prorate",
    max_missing=2,
    bands=(("minimal", 0, 4), ("mild", 5, 9), ("moderate", 10, 14), ("severe", 15, 21)),
    caseness=8,
    case_when="at_or_above",
    reliable_change=4,
    recall_days=14,
)

# WAI-SR: the score is the mean of the answered items, given only when every subscale has at
# most one of its four items missing (so at most three items in all); the total (12-60) is that
# mean times 12. Subscale scores are means of their answered items under the same rule.
WAI_SR = Instrument(
    key="wai_sr",
    label="WAI-SR",
    construct="working alliance",
    n_items=12,
    item_min=1,
    item_max=5,
    scoring="mean",
    direction="higher_better",
    subscales={"task": (1, 2, 10, 12), "goal": (4, 6, 8, 11), "bond": (3, 5, 7, 9)},
    missing_rule="prorate",
    max_missing=3,
    subscale_max_missing=1,
    score_needs_subscales=True,
)

# SRS and ORS items are marks on 10 cm lines read to the millimetre: not whole numbers.
SRS = Instrument(
    key="srs",
    label="SRS",
    construct="session alliance",
    n_items=4,
    item_min=0,
    item_max=10,
    scoring="sum",
    direction="higher_better",
    caseness=36,
    case_when="at_or_below",
    integer_items=False,
)

ORS = Instrument(
    key="ors",
    label="ORS",
    construct="general functioning",
    n_items=4,
    item_min=0,
    item_max=10,
    scoring="sum",
    direction="higher_better",
    caseness=25,
    case_when="below",
    reliable_change=5,
    integer_items=False,
    recall_days=7,  # "during the last week"
)

BUILT_IN: dict[str, Instrument] = {inst.key: inst for inst in (PHQ9, GAD7, WAI_SR, SRS, ORS)}


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
        registry[str(key)] = _instrument_from_config(key, declaration)
    return registry


def instrument_from_params(key: str, params: Mapping[str, Any]) -> Instrument:
    """The instrument a stage was given (:meth:`Instrument.params`), already validated.

    Keys the stage does not read keep the dataclass defaults: the stage never looks at them
    (tests check that each stage's output is the same with the full declaration).
    """
    values = dict(params)
    if "reverse_items" in values:
        values["reverse_items"] = tuple(values["reverse_items"])
    if "subscales" in values:
        values["subscales"] = {name: tuple(items) for name, items in values["subscales"].items()}
    if "bands" in values:
        values["bands"] = tuple((band["label"], band["min"], band["max"])
                                for band in values["bands"])
    return Instrument(key=key, **values)


def registry_from_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, Instrument]:
    """A registry from a rule's ``instruments`` param: key -> :meth:`Instrument.params`."""
    return {key: instrument_from_params(key, values) for key, values in params.items()}


def get_instrument(registry: Mapping[str, Instrument], key: str, config_key: str) -> Instrument:
    """The instrument ``key`` from ``registry``; a ConfigError naming ``config_key`` if unknown.

    Parameters
    ----------
    registry : mapping of str to Instrument
        From :func:`build_registry`.
    key : str
        The instrument name as written in config.
    config_key : str
        Where the name was written, e.g. ``"analysis.outcomes"``, for the message.
    """
    if key in registry:
        return registry[key]
    known = list(registry)
    hint = suggest(key, known)
    raise ConfigError(
        f"config key {config_key}: unknown instrument '{key}'.{hint} Known instruments: "
        f"{', '.join(known)}. Declare a new one under instruments: (see config/README.md)."
    )


def instrument_schema() -> dict[str, Any]:
    """JSON-schema fragment for one instrument declaration under ``instruments:``.

    It states types, allowed values and bounds for every key in :data:`INSTRUMENT_CONFIG_KEYS`
    and rejects unknown keys. It has no ``required`` list and no defaults, because a declaration
    with a built-in's name may override only some keys (and schema defaults would overwrite the
    built-in's values); :func:`build_registry` checks the required keys of new instruments and the
    relations between keys (``item_max > item_min``, items within ``n_items``, ...).
    """
    number = {"type": "number"}
    nullable_number = {"type": ["number", "null"]}
    item_list = {"type": "array", "items": {"type": "integer", "minimum": 1}, "uniqueItems": True}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "label": {"type": "string", "minLength": 1},
            "construct": {"type": "string", "minLength": 1},
            "n_items": {"type": "integer", "minimum": 1},
            "item_min": number,
            "item_max": number,
            "integer_items": {"type": "boolean"},
            "scoring": {"enum": list(SCORING_RULES)},
            "direction": {"enum": list(DIRECTIONS)},
            "reverse_items": item_list,
            "subscales": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN.pattern},
                "additionalProperties": {**item_list, "minItems": 1},
            },
            "missing_rule": {"enum": list(MISSING_RULES)},
            "max_missing": {"type": "integer", "minimum": 0},
            "subscale_max_missing": {"type": "integer", "minimum": 0},
            "score_needs_subscales": {"type": "boolean"},
            "bands": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(BAND_KEYS),
                    "properties": {
                        "label": {"type": "string", "minLength": 1},
                        "min": number,
                        "max": number,
                    },
                },
            },
            "caseness": nullable_number,
            "case_when": {"enum": list(CASE_RULES)},
            "reliable_change": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "reliability": {
                "type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1
            },
            "functional_mean": nullable_number,
            "functional_sd": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "risk_item": {"type": ["integer", "null"], "minimum": 1},
            "recall_days": {"type": ["integer", "null"], "minimum": 1},
        },
    }


# --------------------------------------------------------------------------------------------
# Validation of one declaration


def _instrument_from_config(key: Any, declaration: Any) -> Instrument:
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
