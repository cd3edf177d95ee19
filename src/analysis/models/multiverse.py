"""The multiverse of defensible specifications of the primary test: the choices and their product.

A multiverse analysis (Steegen, Tuerlinckx, Gelman & Vanpaemel 2016) fits the primary model
under every combination of the analytic choices a careful analyst could defend, and a
specification curve (Simonsohn, Simmons & Nelson 2020) shows all of the estimates at once. Here
the model is M2 (``symptom_next ~ symptom_score + alliance_within + alliance_between_c + session
+ random intercepts``, docs/methods.md section 4) and the estimate is its ``alliance_within`` term.
The choices (:data:`CHOICES`, config ``multiverse.choices``):

- ``prorating``: ``lenient`` scores questionnaires with missing items by each instrument's rule
  in the registry (the pipeline's scoring); ``strict`` prorates nothing (any missing item, no
  score);
- ``lag_gap``: the largest gap in session numbers between a session and the "next" one
  (``analysis.max_lag_gap`` of the primary analysis; 1 = consecutive sessions only);
- ``outcome``: each outcome instrument;
- ``centring``: the person-mean split of alliance over ``all_sessions`` with an alliance score
  (as derived for the primary analysis) or over the ``model_rows`` the fit uses (sessions with
  a next score, completers only, ...);
- ``detrended``: the within-client alliance net of each client's linear trend (the detrended
  sensitivity analysis) or not;
- ``random``: the random part ``full`` (client and therapist intercepts, as M2) or ``minimal``
  (client intercept only);
- ``sample``: ``all`` clients or ``completers`` (``analysis.completers_min_sessions``).

This module is the plan only, pure and light (the Snakefile imports it): :func:`enumerate_
specifications` gives every combination as a :class:`Specification`, in a fixed order with the
data-variant choices outermost so that a job holding consecutive specifications reads few data
variants, and :func:`chunk_specifications` groups them into jobs. The fitting is in
:mod:`analysis.models.multiverse_fit`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from analysis.config import suggest
from analysis.errors import ConfigError


@dataclass(frozen=True)
class Choice:
    """One analytic choice of the multiverse.

    Attributes
    ----------
    name : str
        Key under ``multiverse.choices`` and column of ``multiverse.csv``.
    options : tuple
        The options it can take (``outcome``: empty, the study's outcomes).
    label : str
        A few words for the figure and the report.
    option_labels : dict
        How each option is shown.
    """

    name: str
    options: tuple[Any, ...]
    label: str
    option_labels: dict

    def option_label(self, value: Any) -> str:
        """How ``value`` is shown (its label, else the value as text)."""
        return str(self.option_labels.get(value, value))


#: The choices in enumeration order (outermost first). Data-variant choices come first.
CHOICES: tuple[Choice, ...] = (
    Choice("prorating", ("lenient", "strict"), "Missing items",
           {"lenient": "prorated (registry rule)", "strict": "not prorated"}),
    Choice("lag_gap", (1, 2), "Lag gap", {1: "next session only", 2: "up to 2 sessions"}),
    Choice("outcome", (), "Outcome", {}),
    Choice("centring", ("all_sessions", "model_rows"), "Centring over",
           {"all_sessions": "all sessions", "model_rows": "model rows"}),
    Choice("detrended", (False, True), "Within-client alliance",
           {False: "as observed", True: "detrended"}),
    Choice("random", ("full", "minimal"), "Random part",
           {"full": "client + therapist", "minimal": "client only"}),
    Choice("sample", ("all", "completers"), "Clients", {"all": "all", "completers": "completers"}),
)
CHOICE_BY_NAME: dict[str, Choice] = {choice.name: choice for choice in CHOICES}
CHOICE_NAMES: tuple[str, ...] = tuple(CHOICE_BY_NAME)
#: Choices that change the data a specification reads (one data file per prorating option).
DATA_CHOICES = ("prorating", "lag_gap")


@dataclass(frozen=True)
class Specification:
    """One combination of the choices: one fit of M2's within-client alliance term.

    Attributes
    ----------
    id : str
        Unique, readable, usable in file names, e.g.
        ``phq9-lenient-gap1-all_sessions-raw-full-all``.
    index : int
        Position in the enumeration (1-based).
    prorating, lag_gap, outcome, centring, detrended, random, sample
        The option of each choice (see the module docstring).
    primary : bool
        Whether every option is the primary analysis's: its estimate is M2's.
    """

    id: str
    index: int
    prorating: str
    lag_gap: int
    outcome: str
    centring: str
    detrended: bool
    random: str
    sample: str
    primary: bool = False

    @property
    def choices(self) -> dict[str, Any]:
        """The options, by choice name, in :data:`CHOICES` order."""
        return {name: getattr(self, name) for name in CHOICE_NAMES}

    def as_dict(self) -> dict[str, Any]:
        """Plain values (a job's params, a result file's header)."""
        return {"id": self.id, "index": self.index, **self.choices, "primary": self.primary}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Specification":
        """The inverse of :meth:`as_dict`."""
        return cls(id=str(values["id"]), index=int(values["index"]),
                   prorating=str(values["prorating"]), lag_gap=int(values["lag_gap"]),
                   outcome=str(values["outcome"]), centring=str(values["centring"]),
                   detrended=bool(values["detrended"]), random=str(values["random"]),
                   sample=str(values["sample"]), primary=bool(values.get("primary", False)))


def specification_id(choices: Mapping[str, Any]) -> str:
    """The readable id of a combination of options (see :class:`Specification`).

    >>> specification_id({"prorating": "lenient", "lag_gap": 1, "outcome": "phq9",
    ...     "centring": "all_sessions", "detrended": False, "random": "full", "sample": "all"})
    'phq9-lenient-gap1-all_sessions-raw-full-all'
    """
    return "-".join([str(choices["outcome"]), str(choices["prorating"]),
                     f"gap{int(choices['lag_gap'])}", str(choices["centring"]),
                     "detrended" if choices["detrended"] else "raw", str(choices["random"]),
                     str(choices["sample"])])


def resolve_choices(declared: Mapping[str, Any] | None, outcomes: Sequence[str],
                    key: str = "multiverse.choices") -> dict[str, list[Any]]:
    """The options of every choice, checked, in :data:`CHOICES` order.

    Parameters
    ----------
    declared : mapping or None
        ``multiverse.choices`` from the config (defaults already filled by the schema); a choice
        that is absent, or ``outcome: null``, takes every option (``outcome``: ``outcomes``).
    outcomes : sequence of str
        ``analysis.outcomes``.
    key : str
        The config key, for messages.

    Returns
    -------
    dict of str to list
        Choice name -> its options, in the order declared (duplicates are an error).

    Raises
    ------
    ConfigError
        An unknown choice or option, an empty or repeated option list, or an outcome that is not
        in ``analysis.outcomes``; the message names the key.
    """
    declared = dict(declared or {})
    unknown = [name for name in declared if name not in CHOICE_BY_NAME]
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]} is not a choice of the multiverse."
            f"{suggest(unknown[0], CHOICE_NAMES)} Choices: {', '.join(CHOICE_NAMES)}."
        )
    resolved: dict[str, list[Any]] = {}
    for choice in CHOICES:
        options = declared.get(choice.name)
        allowed = list(outcomes) if choice.name == "outcome" else list(choice.options)
        if options is None:
            options = allowed
        options = list(options)
        if not options:
            raise ConfigError(f"{key}.{choice.name} is empty: give at least one option "
                              f"(allowed: {', '.join(map(str, allowed))}).")
        if len(set(map(str, options))) != len(options):
            raise ConfigError(f"{key}.{choice.name} lists an option twice: {options}.")
        for position, option in enumerate(options):
            if choice.name == "lag_gap":
                if isinstance(option, bool) or not isinstance(option, int) or option < 1:
                    raise ConfigError(f"{key}.lag_gap[{position}] is {option!r}; a lag gap is a "
                                      "whole number of sessions, 1 or more.")
            elif option not in allowed:
                where = (" (the outcomes of the study, analysis.outcomes)"
                         if choice.name == "outcome" else "")
                raise ConfigError(
                    f"{key}.{choice.name}[{position}] is {option!r}, which is not an option"
                    f"{where}.{suggest(str(option), [str(a) for a in allowed])} Allowed: "
                    f"{', '.join(map(str, allowed))}."
                )
        resolved[choice.name] = options
    return resolved


def primary_choices(max_lag_gap: int) -> dict[str, Any]:
    """The options of the primary analysis (every option but the outcome).

    The pipeline's M2 scores by the registry, pairs sessions at most ``analysis.max_lag_gap``
    apart, centres over all sessions, keeps the raw within part, both random intercepts and every
    client.
    """
    return {"prorating": "lenient", "lag_gap": int(max_lag_gap), "centring": "all_sessions",
            "detrended": False, "random": "full", "sample": "all"}


def enumerate_specifications(choices: Mapping[str, Sequence[Any]],
                             primary: Mapping[str, Any] | None = None) -> list[Specification]:
    """Every combination of the options, as specifications, in a fixed order.

    Parameters
    ----------
    choices : mapping of str to sequence
        Options per choice (:func:`resolve_choices`); every choice of :data:`CHOICES` needed.
    primary : mapping, optional
        The primary analysis's options (:func:`primary_choices`): marks the specifications whose
        options all match (one per outcome at most).

    Returns
    -------
    list of Specification
        The Cartesian product in :data:`CHOICES` order (outermost first), options in the order
        given; ``index`` runs from 1. Its length is the product of the numbers of options.

    Examples
    --------
    >>> specs = enumerate_specifications({"prorating": ["lenient", "strict"], "lag_gap": [1, 2],
    ...     "outcome": ["phq9", "gad7"], "centring": ["all_sessions", "model_rows"],
    ...     "detrended": [False, True], "random": ["full", "minimal"],
    ...     "sample": ["all", "completers"]}, primary_choices(1))
    >>> len(specs), sum(spec.primary for spec in specs), specs[0].id
    (128, 2, 'phq9-lenient-gap1-all_sessions-raw-full-all')
    """
    missing = [name for name in CHOICE_NAMES if name not in choices]
    if missing:
        raise ConfigError(f"multiverse.choices: no options for {', '.join(missing)}.")
    primary = dict(primary or {})
    specifications = []
    for index, values in enumerate(
            itertools.product(*(list(choices[name]) for name in CHOICE_NAMES)), start=1):
        options = dict(zip(CHOICE_NAMES, values))
        is_primary = bool(primary) and all(options[name] == value
                                           for name, value in primary.items())
        specifications.append(Specification(
            id=specification_id(options), index=index, prorating=str(options["prorating"]),
            lag_gap=int(options["lag_gap"]), outcome=str(options["outcome"]),
            centring=str(options["centring"]), detrended=bool(options["detrended"]),
            random=str(options["random"]), sample=str(options["sample"]), primary=is_primary,
        ))
    return specifications


def chunk_specifications(specifications: Sequence[Specification], per_job: int
                         ) -> list[tuple[Specification, ...]]:
    """Consecutive specifications grouped into jobs of at most ``per_job`` each.

    Raises
    ------
    ConfigError
        ``per_job`` below 1 (``multiverse.specifications_per_job``).

    >>> [len(chunk) for chunk in chunk_specifications(list(range(10)), 4)]
    [4, 4, 2]
    """
    if isinstance(per_job, bool) or not isinstance(per_job, int) or per_job < 1:
        raise ConfigError("multiverse.specifications_per_job must be a whole number, 1 or more; "
                          f"got {per_job!r}.")
    return [tuple(specifications[start:start + per_job])
            for start in range(0, len(specifications), per_job)]


def data_variants(specifications: Sequence[Specification]) -> list[str]:
    """The prorating options the specifications read, in first-use order."""
    return list(dict.fromkeys(spec.prorating for spec in specifications))


__all__ = [
    "CHOICES",
    "CHOICE_BY_NAME",
    "CHOICE_NAMES",
    "Choice",
    "DATA_CHOICES",
    "Specification",
    "chunk_specifications",
    "data_variants",
    "enumerate_specifications",
    "primary_choices",
    "resolve_choices",
    "specification_id",
]
