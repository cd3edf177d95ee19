"""The instrument registry: every fact about every questionnaire, in one place.

An :class:`Instrument` holds what scoring, episodes, models and figures need to know about a
questionnaire: item count and range, sum or mean scoring, reverse-keyed items, subscales,
direction, the missing-item rule, severity bands, the caseness cut-off, the reliable-change
threshold and (optionally) reliability and functional norms for Jacobson-Truax. Five instruments
are built in (PHQ-9, GAD-7, WAI-SR, SRS, ORS; see docs/methods.md section 1).
:func:`analysis.instrument_declarations.build_registry` adds the instruments declared under
``instruments:`` in config and returns a dict from key to :class:`Instrument`; nothing else in the
package hard-codes a fact about a questionnaire.

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
        """This instrument as a config declaration (the inverse of
        :func:`~analysis.instrument_declarations.build_registry`)."""
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
# Reliability: Cronbach's alpha of the total score, .91 (Hatcher & Gillaspy, 2006, Psychotherapy
# Research 16(1), 12-25: the WAI-SR's development and validation in two client samples). The
# simulator's latent-alliance scenario measures the true alliance with this reliability.
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
    reliability=0.91,
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
        From :func:`analysis.instrument_declarations.build_registry`.
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


