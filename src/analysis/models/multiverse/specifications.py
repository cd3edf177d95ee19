"""The multiverse of defensible specifications of the primary question: the choices and their plan.

A multiverse analysis (Steegen, Tuerlinckx, Gelman & Vanpaemel 2016) fits the question under every
combination of the analytic choices a careful analyst could defend, and a specification curve
(Simonsohn, Simmons & Nelson 2020) shows all of the estimates at once. The quantity is the effect
of a session's alliance on the symptom score a given number of sessions later, over and above the
symptoms at that session.

Estimands and choices. Two dimensions are *estimands*, not choices: each is summarised on its own
and never pooled with the others.

- ``outcome``: each outcome instrument is its own hypothesis (Holm treats them as separate primary
  tests), so each outcome gets its own summary and joint test;
- ``lag_gap``: the lag in sessions between the alliance and the symptom score it predicts. Lag 1
  (the next session) and lag 2 (two sessions later) are different effects, so lag 2 is reported
  as its own estimand. The conventional model pairs a session with the score exactly ``lag``
  sessions later (lag 1 is the pipeline's ``symptom_next``); the panel models take every
  ``lag``-th wave of the chosen waves, so that one wave step is ``lag`` sessions.

The choices (:data:`CHOICES`, config ``multiverse.choices``), each applying to the estimators in
:data:`APPLIES_TO`; where a choice does not apply, the specification holds no option for it (an
empty cell in ``multiverse.csv``, "not applicable"), so nothing is fitted twice under two names:

- ``estimator``: ``dpm``, the maximum-likelihood dynamic panel model with client fixed effects
  (the primary estimator, :mod:`analysis.models.panel.dpm`); ``mlm``, the conventional multilevel
  model (M2's formula, person-mean centred alliance, random intercepts); ``riclpm``, the
  random-intercept cross-lagged panel model (:mod:`analysis.models.panel.riclpm`, equal innovation
  variances over waves);
- ``prorating`` (all estimators): ``lenient`` scores questionnaires with missing items by each
  instrument's rule in the registry; ``strict`` prorates nothing;
- ``centring`` (``mlm`` only): the person-mean split of alliance over ``all_sessions`` with a score
  or over the ``model_rows`` the fit uses. The panel models have no person-mean split: the client
  fixed effect (DPM) or random intercept (RI-CLPM) takes its place;
- ``detrended`` (``mlm`` only): the within-client alliance net of each client's linear trend. The
  panel models model the alliance's own dynamics instead;
- ``random`` (``mlm``, ``dpm``): ``full`` accounts for therapists (MLM: client and therapist
  random intercepts; DPM: standard errors cluster-robust by therapist, used when there are at
  least :data:`analysis.models.panel.dpm.MIN_CLUSTERS_FOR_ROBUST` therapists) or ``minimal`` does
  not. The RI-CLPM has no therapist level;
- ``sample`` (all estimators): ``all`` clients or ``completers`` (``analysis.completers_min_sessions``).

This module is the plan only, pure and light (the Snakefile imports it): :func:`enumerate_
specifications` gives every applicable combination as a :class:`Specification`, in a fixed order
with the data-variant choice outermost so that a job holding consecutive specifications reads few
data variants, and :func:`chunk_specifications` groups them into jobs. The fitting is in
:mod:`analysis.models.multiverse.fit`; specifications that end in the same final model on the same
data are counted once afterwards (:mod:`analysis.models.multiverse.summary`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from analysis.config import suggest
from analysis.errors import ConfigError

#: The estimators, the primary first.
ESTIMATORS = ("dpm", "mlm", "riclpm")
#: Fewest resamples of the joint test when it is switched on ((resamples + 1) x 0.05 whole).
MIN_RESAMPLES = 199
#: The pipeline model a specification with every primary option reproduces, per estimator.
PIPELINE_MODEL = {"dpm": "DPM", "mlm": "M2"}


@dataclass(frozen=True)
class Choice:
    """One analytic choice (or estimand) of the multiverse.

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
    estimand : bool
        An estimand (outcome, lag): summarised separately, never pooled.
    """

    name: str
    options: tuple[Any, ...]
    label: str
    option_labels: dict
    estimand: bool = False

    def option_label(self, value: Any) -> str:
        """How ``value`` is shown (its label, else the value as text; None: not applicable)."""
        if value is None:
            return "not applicable"
        return str(self.option_labels.get(value, value))


#: The choices and estimands in enumeration order (outermost first).
CHOICES: tuple[Choice, ...] = (
    Choice("prorating", ("lenient", "strict"), "Missing items",
           {"lenient": "prorated (registry rule)", "strict": "not prorated"}),
    Choice("lag_gap", (1, 2), "Lag", {1: "next session", 2: "two sessions later"},
           estimand=True),
    Choice("outcome", (), "Outcome", {}, estimand=True),
    Choice("estimator", ESTIMATORS, "Estimator",
           {"dpm": "dynamic panel (ML, fixed effects)", "mlm": "conventional multilevel",
            "riclpm": "RI-CLPM"}),
    Choice("centring", ("all_sessions", "model_rows"), "Centring over",
           {"all_sessions": "all sessions", "model_rows": "model rows"}),
    Choice("detrended", (False, True), "Within-client alliance",
           {False: "as observed", True: "detrended"}),
    Choice("random", ("full", "minimal"), "Therapists",
           {"full": "accounted for", "minimal": "ignored"}),
    Choice("sample", ("all", "completers"), "Clients", {"all": "all", "completers": "completers"}),
)
CHOICE_BY_NAME: dict[str, Choice] = {choice.name: choice for choice in CHOICES}
CHOICE_NAMES: tuple[str, ...] = tuple(CHOICE_BY_NAME)
#: The estimands: one summary, curve and joint test per combination.
ESTIMAND_NAMES: tuple[str, ...] = ("outcome", "lag_gap")
#: Which estimators each choice applies to (the others hold no option: not applicable).
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "prorating": ESTIMATORS, "lag_gap": ESTIMATORS, "outcome": ESTIMATORS,
    "estimator": ESTIMATORS, "centring": ("mlm",), "detrended": ("mlm",),
    "random": ("mlm", "dpm"), "sample": ESTIMATORS,
}
#: Choices that change the data a specification reads (one data file per prorating option).
DATA_CHOICES = ("prorating", "lag_gap")


def applies(choice: str, estimator: str) -> bool:
    """Whether ``choice`` is a choice of ``estimator``'s specifications.

    Parameters
    ----------
    choice : str
        A choice of :data:`CHOICES` (``centring``).
    estimator : str
        An estimator of :data:`ESTIMATORS`.

    Returns
    -------
    bool
        Whether the estimator's specifications vary that choice.

    Examples
    --------
    >>> applies("centring", "mlm"), applies("centring", "dpm"), applies("random", "dpm")
    (True, False, True)
    """
    return estimator in APPLIES_TO[choice]


@dataclass(frozen=True)
class Specification:
    """One applicable combination of the options: one fit of the alliance -> symptoms effect.

    Attributes
    ----------
    id : str
        Unique, readable, usable in file names, e.g.
        ``phq9-lag1-mlm-lenient-all_sessions-raw-full-all``.
    index : int
        Position in the enumeration (1-based).
    prorating, lag_gap, outcome, estimator, centring, detrended, random, sample
        The option of each choice (see the module docstring); None where the choice does not
        apply to the estimator.
    primary : bool
        The primary analysis: the dynamic panel model with every option the pipeline's (its
        estimate is the pipeline's DPM).
    reproduces : str
        The pipeline model this specification reproduces exactly (``"DPM"``, ``"M2"``) or "".
    """

    id: str
    index: int
    prorating: str
    lag_gap: int
    outcome: str
    estimator: str
    centring: str | None
    detrended: bool | None
    random: str | None
    sample: str
    primary: bool = False
    reproduces: str = ""

    @property
    def choices(self) -> dict[str, Any]:
        """The options, by choice name, in :data:`CHOICES` order."""
        return {name: getattr(self, name) for name in CHOICE_NAMES}

    @property
    def estimand(self) -> tuple[str, int]:
        """(outcome, lag): the specifications summarised together."""
        return self.outcome, self.lag_gap

    def as_dict(self) -> dict[str, Any]:
        """Plain values (a job's params, a result file's header)."""
        return {"id": self.id, "index": self.index, **self.choices, "primary": self.primary,
                "reproduces": self.reproduces}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Specification":
        """The inverse of :meth:`as_dict`."""
        def maybe(value: Any, kind: Any) -> Any:
            return None if value is None else kind(value)

        return cls(id=str(values["id"]), index=int(values["index"]),
                   prorating=str(values["prorating"]), lag_gap=int(values["lag_gap"]),
                   outcome=str(values["outcome"]),
                   estimator=str(values.get("estimator") or "mlm"),
                   centring=maybe(values.get("centring"), str),
                   detrended=maybe(values.get("detrended"), bool),
                   random=maybe(values.get("random"), str), sample=str(values["sample"]),
                   primary=bool(values.get("primary", False)),
                   reproduces=str(values.get("reproduces") or ""))


def specification_id(choices: Mapping[str, Any]) -> str:
    """The readable id of a combination of options (see :class:`Specification`).

    Parameters
    ----------
    choices : mapping of str to option
        One option per choice of :data:`CHOICES` (None where the choice does not apply).

    Returns
    -------
    str
        The id.

    Examples
    --------
    >>> specification_id({"prorating": "lenient", "lag_gap": 1, "outcome": "phq9",
    ...     "estimator": "mlm", "centring": "all_sessions", "detrended": False, "random": "full",
    ...     "sample": "all"})
    'phq9-lag1-mlm-lenient-all_sessions-raw-full-all'
    >>> specification_id({"prorating": "strict", "lag_gap": 2, "outcome": "gad7",
    ...     "estimator": "riclpm", "centring": None, "detrended": None, "random": None,
    ...     "sample": "all"})
    'gad7-lag2-riclpm-strict-all'
    """
    estimator = str(choices.get("estimator") or "mlm")
    parts = [str(choices["outcome"]), f"lag{int(choices['lag_gap'])}", estimator,
             str(choices["prorating"])]
    if applies("centring", estimator):
        parts.append(str(choices["centring"]))
    if applies("detrended", estimator):
        parts.append("detrended" if choices["detrended"] else "raw")
    if applies("random", estimator):
        parts.append(str(choices["random"]))
    parts.append(str(choices["sample"]))
    return "-".join(parts)


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

    Examples
    --------
    >>> choices = resolve_choices({"estimator": ["dpm", "mlm"], "lag_gap": [1]}, ["phq9", "gad7"])
    >>> choices["estimator"], choices["lag_gap"], choices["outcome"]
    (['dpm', 'mlm'], [1], ['phq9', 'gad7'])
    >>> choices["random"]
    ['full', 'minimal']
    >>> resolve_choices({"estimator": ["ols"]}, ["phq9"])
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: multiverse.choices.estimator[0] is 'ols', which is not an option. ...
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
                    raise ConfigError(f"{key}.lag_gap[{position}] is {option!r}; a lag is a "
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
    """The options of the pipeline's analyses (every option but the outcome and the estimator).

    The pipeline scores by the registry, pairs a session with the next one (``analysis.
    max_lag_gap`` 1: the lag-1 estimand), and uses every client; its M2 centres over all sessions, keeps the raw
    within part and both random intercepts; its DPM clusters by therapist where it can.

    Parameters
    ----------
    max_lag_gap : int
        ``analysis.max_lag_gap`` (the pipeline's lag).

    Returns
    -------
    dict
        One option per choice but ``outcome`` and ``estimator``.

    Examples
    --------
    >>> primary_choices(1)
    {'prorating': 'lenient', 'lag_gap': 1, 'centring': 'all_sessions', 'detrended': False,
     'random': 'full', 'sample': 'all'}
    """
    # Lag 1 is the pipeline's pairing only when it pairs consecutive sessions; with a larger
    # analysis.max_lag_gap M2 pools several lags under one coefficient, which no lag estimand
    # reproduces (-1 matches no specification).
    return {"prorating": "lenient", "lag_gap": 1 if int(max_lag_gap) == 1 else -1,
            "centring": "all_sessions", "detrended": False, "random": "full", "sample": "all"}


def enumerate_specifications(choices: Mapping[str, Sequence[Any]],
                             primary: Mapping[str, Any] | None = None) -> list[Specification]:
    """Every applicable combination of the options, as specifications, in a fixed order.

    Parameters
    ----------
    choices : mapping of str to sequence
        Options per choice (:func:`resolve_choices`); every choice of :data:`CHOICES` needed
        (``estimator`` may be absent: the conventional model only, as before estimators were a
        choice).
    primary : mapping, optional
        The pipeline's options (:func:`primary_choices`): marks the specifications that
        reproduce a pipeline model (``reproduces``; ``primary`` for the dynamic panel model).

    Returns
    -------
    list of Specification
        The product in :data:`CHOICES` order (outermost first), options in the order given,
        with the choices that do not apply to an estimator left out (None): its length is, per
        estimator, the product of the numbers of options of the choices that apply to it.

    Examples
    --------
    >>> specs = enumerate_specifications({"prorating": ["lenient", "strict"], "lag_gap": [1, 2],
    ...     "outcome": ["phq9", "gad7"], "estimator": ["dpm", "mlm", "riclpm"],
    ...     "centring": ["all_sessions", "model_rows"], "detrended": [False, True],
    ...     "random": ["full", "minimal"], "sample": ["all", "completers"]}, primary_choices(1))
    >>> len(specs), sum(spec.primary for spec in specs), specs[0].id
    (176, 2, 'phq9-lag1-dpm-lenient-full-all')
    """
    choices = dict(choices)
    choices.setdefault("estimator", ["mlm"])
    missing = [name for name in CHOICE_NAMES if name not in choices]
    if missing:
        raise ConfigError(f"multiverse.choices: no options for {', '.join(missing)}.")
    primary = dict(primary or {})
    specifications: list[Specification] = []
    seen: set[str] = set()
    for values in itertools.product(*(list(choices[name]) for name in CHOICE_NAMES)):
        options = dict(zip(CHOICE_NAMES, values))
        estimator = str(options["estimator"])
        for name in CHOICE_NAMES:
            if not applies(name, estimator):
                options[name] = None
        spec_id = specification_id(options)
        if spec_id in seen:  # the same applicable options: enumerated once
            continue
        seen.add(spec_id)
        matches = bool(primary) and all(options[name] == value for name, value in
                                        primary.items() if applies(name, estimator))
        reproduces = PIPELINE_MODEL.get(estimator, "") if matches else ""
        specifications.append(Specification(
            id=spec_id, index=len(specifications) + 1, prorating=str(options["prorating"]),
            lag_gap=int(options["lag_gap"]), outcome=str(options["outcome"]),
            estimator=estimator, centring=options["centring"],
            detrended=None if options["detrended"] is None else bool(options["detrended"]),
            random=options["random"], sample=str(options["sample"]),
            primary=bool(matches and estimator == "dpm"), reproduces=reproduces,
        ))
    return specifications


def chunk_specifications(specifications: Sequence[Specification], per_job: int
                         ) -> list[tuple[Specification, ...]]:
    """Consecutive specifications grouped into jobs of at most ``per_job`` each.

    Parameters
    ----------
    specifications : sequence of Specification
        The specifications, in order.
    per_job : int
        The most specifications in one job.

    Returns
    -------
    list of tuple
        The jobs' specifications, in order.

    Raises
    ------
    ConfigError
        ``per_job`` below 1 (``multiverse.specifications_per_job``).

    Examples
    --------
    >>> [len(chunk) for chunk in chunk_specifications(list(range(10)), 4)]
    [4, 4, 2]
    """
    if isinstance(per_job, bool) or not isinstance(per_job, int) or per_job < 1:
        raise ConfigError("multiverse.specifications_per_job must be a whole number, 1 or more; "
                          f"got {per_job!r}.")
    return [tuple(specifications[start:start + per_job])
            for start in range(0, len(specifications), per_job)]


def data_variants(specifications: Sequence[Specification]) -> list[str]:
    """The prorating options the specifications read, in first-use order.

    Parameters
    ----------
    specifications : sequence of Specification
        The specifications.

    Returns
    -------
    list of str
        The prorating options, each once.

    Examples
    --------
    >>> specs = enumerate_specifications({"prorating": ["strict", "lenient"], "lag_gap": [1],
    ...     "outcome": ["phq9"], "estimator": ["riclpm"], "centring": ["all_sessions"],
    ...     "detrended": [False], "random": ["full"], "sample": ["all"]})
    >>> data_variants(specs)
    ['strict', 'lenient']
    """
    return list(dict.fromkeys(spec.prorating for spec in specifications))


__all__ = [
    "APPLIES_TO",
    "CHOICES",
    "CHOICE_BY_NAME",
    "CHOICE_NAMES",
    "Choice",
    "DATA_CHOICES",
    "ESTIMAND_NAMES",
    "ESTIMATORS",
    "MIN_RESAMPLES",
    "PIPELINE_MODEL",
    "Specification",
    "applies",
    "chunk_specifications",
    "data_variants",
    "enumerate_specifications",
    "primary_choices",
    "resolve_choices",
    "specification_id",
]
