"""The model-specification table: which models run, on what, for which outcomes and analyses.

This module holds the one table of the analysis plan (docs/methods.md section 4). Each built-in model
(M0-M4, R1-R3) has an id, a title, the question it answers, its kind (``lmm``, ``ols``,
``rm_corr``, ``alpha``, ``icc``), its formula in lme4 syntax over the generic columns of
``derived.parquet`` (so one formula serves every outcome), the terms that answer its question and
whether one of them is a primary test. A second small table lists the sensitivity analyses, the
config switch that turns each on, the formula substitutions or data restrictions it makes and
the models it applies to. Custom models declared in config (``models.custom``) join the first
table. :func:`plan_fits` expands the study's :class:`ModelSettings` into every fitting job, each a
:class:`ResolvedFit` (everything one job needs); :func:`find_fit` looks one up. The convergence
protocol that simplifies a random part lives in :mod:`analysis.models.mixed.protocol`. Inputs are
typed settings and instruments; outputs are frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from analysis.config import suggest
from analysis.errors import ConfigError
from analysis.instruments import Instrument
from analysis.settings import ModelSettings

#: Grouping factors of the generic derived columns.
CLIENT = "client_id"
THERAPIST = "therapist_id"

KINDS = ("lmm", "ols", "rm_corr", "alpha", "icc", "dpm")

#: Terms of the dynamic panel models (``kind="dpm"``): the scores at the previous session (wave).
#: In DPM the first is the cross-lagged (primary) path and the second the autoregression; in
#: DPM-reverse the roles swap.
ALLIANCE_LAGGED = "alliance_lagged"
SYMPTOM_LAGGED = "symptom_lagged"


@dataclass(frozen=True)
class ModelSpec:
    """One row of the model-specification table.

    Attributes
    ----------
    id : str
        Short id used in file names and tables (``M2``).
    title : str
        A few words for tables and figures.
    question : str
        The research question the model answers, in plain words.
    kind : str
        One of :data:`KINDS`.
    formula : str or None
        lme4-syntax formula over the generic columns (``derived.parquet``, or for M4 the
        ``episodes.parquet`` columns); None where the method takes no formula (R1, R2).
    terms_of_interest : tuple of str
        Fixed-effect terms that answer the question (shown across the sensitivity analyses).
    primary_term : str or None
        The term that is the model's primary test (docs/methods.md section 4a: the lagged alliance
        coefficient of the dynamic panel model DPM).
    tested : bool
        Whether the terms of interest are hypothesis tests in a multiple-testing family (the
        primary term in Holm's, the others in Benjamini-Hochberg's). False for descriptive
        models (the M0 growth slope) and for custom models, whose terms get raw p-values only.
    data : str
        The input the model reads: ``derived``, ``episodes`` or ``administrations``.
    custom : bool
        True for models declared in config under ``models.custom``.
    outcomes : tuple of str or None
        For custom models, the outcomes it is fitted for (None = every configured outcome).
    """

    id: str
    title: str
    question: str
    kind: str
    formula: str | None
    terms_of_interest: tuple[str, ...] = ()
    primary_term: str | None = None
    data: str = "derived"
    custom: bool = False
    outcomes: tuple[str, ...] | None = None
    tested: bool = True

    @property
    def is_primary(self) -> bool:
        return self.primary_term is not None


MODEL_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="M0",
        title="Growth",
        question="How do symptoms change over sessions?",
        kind="lmm",
        formula="symptom_score ~ session + (1 + session | client_id) + (1 | therapist_id)",
        terms_of_interest=("session",),
        tested=False,
    ),
    ModelSpec(
        id="M1",
        title="Concurrent alliance",
        question=(
            "Do sessions with a better-than-usual alliance have lower symptoms, and do clients "
            "with a better alliance have lower symptoms?"
        ),
        kind="lmm",
        formula=(
            "symptom_score ~ session + alliance_within + alliance_between_c"
            " + (1 + session | client_id) + (1 | therapist_id)"
        ),
        terms_of_interest=("alliance_within", "alliance_between_c"),
    ),
    ModelSpec(
        id="M2",
        title="Lagged alliance, conventional multilevel",
        question=(
            "Does the alliance at a session predict symptoms at the next session, over and above "
            "symptoms at that session? (The usual multilevel model, kept beside the dynamic "
            "panel model: its person-mean centring over all sessions is biased when symptoms "
            "also move the alliance.)"
        ),
        kind="lmm",
        formula=(
            "symptom_next ~ symptom_score + alliance_within + alliance_between_c + session"
            " + (1 | client_id) + (1 | therapist_id)"
        ),
        terms_of_interest=("alliance_within", "alliance_between_c"),
    ),
    ModelSpec(
        id="DPM",
        title="Dynamic panel (primary)",
        question=(
            "Does the alliance at a session predict symptoms at the next session, over and above "
            "symptoms at that session and each client's stable level, when symptoms may also "
            "move the alliance?"
        ),
        kind="dpm",
        formula=None,
        terms_of_interest=(ALLIANCE_LAGGED,),
        primary_term=ALLIANCE_LAGGED,
    ),
    ModelSpec(
        id="M3",
        title="Reverse lagged",
        question=(
            "Do symptoms at a session predict the alliance at the next session (reverse "
            "causation)?"
        ),
        kind="lmm",
        formula=(
            "alliance_next ~ alliance_score + symptom_within + symptom_between_c + session"
            " + (1 | client_id) + (1 | therapist_id)"
        ),
        terms_of_interest=("symptom_within", "symptom_between_c"),
    ),
    ModelSpec(
        id="DPM-reverse",
        title="Dynamic panel, reverse",
        question=(
            "Do symptoms at a session predict the alliance at the next session, over and above "
            "the alliance at that session and each client's stable level (reverse path)?"
        ),
        kind="dpm",
        formula=None,
        terms_of_interest=(SYMPTOM_LAGGED,),
    ),
    ModelSpec(
        id="M4",
        title="Early alliance",
        question="Does the early alliance predict pre-post symptom change?",
        kind="ols",
        formula="change ~ first_score + alliance_early",
        terms_of_interest=("alliance_early",),
        data="episodes",
    ),
    ModelSpec(
        id="R1",
        title="Repeated-measures correlation",
        question=(
            "How strongly do alliance and symptoms go together within clients, compared with the "
            "meta-analytic r = .278?"
        ),
        kind="rm_corr",
        formula=None,
    ),
    ModelSpec(
        id="R2",
        title="Internal consistency",
        question="How reliable is each instrument at its first administration (Cronbach's alpha)?",
        kind="alpha",
        formula=None,
        data="administrations",
    ),
    ModelSpec(
        id="R3",
        title="Therapist ICC",
        question="What share of symptom variance lies between therapists?",
        kind="icc",
        formula="symptom_score ~ session + (1 | client_id) + (1 | therapist_id)",
    ),
)

BUILTIN_MODELS: dict[str, ModelSpec] = {spec.id: spec for spec in MODEL_SPECS}


@dataclass(frozen=True)
class Sensitivity:
    """One row of the sensitivity-analysis table.

    Attributes
    ----------
    id : str
        Analysis id used in file names and tables (``primary``, ``detrended``, ...).
    switch : str or None
        Key under ``models.sensitivity`` that turns it on (None: always run).
    description : str
        What changes, in plain words.
    applies_to : tuple of str
        Built-in models it is run for.
    substitutions : tuple of (str, str)
        Whole-word replacements made in the formula and the terms of interest.
    reml : bool
        REML (True) or ML (False) estimation.
    completers_only : bool
        Keep only clients with ``n_sessions >= analysis.completers_min_sessions``.
    equal_paths : bool
        Dynamic panel models: lagged paths equal over waves (True) or free per wave (False).
    """

    id: str
    switch: str | None
    description: str
    applies_to: tuple[str, ...]
    substitutions: tuple[tuple[str, str], ...] = ()
    reml: bool = True
    completers_only: bool = False
    equal_paths: bool = True


SENSITIVITY_ANALYSES: tuple[Sensitivity, ...] = (
    Sensitivity(
        id="primary",
        switch=None,
        description="As specified: REML, all clients, total alliance score.",
        applies_to=tuple(BUILTIN_MODELS),
    ),
    Sensitivity(
        id="detrended",
        switch="detrended",
        description=(
            "The within-client alliance is the residual of a per-client OLS of alliance on "
            "session (shared time trends removed); clients with fewer than 3 alliance scores "
            "drop out."
        ),
        applies_to=("M1", "M2"),
        substitutions=(("alliance_within", "alliance_within_detrended"),),
    ),
    Sensitivity(
        id="completers",
        switch="completers",
        description=(
            "Only clients who attended at least analysis.completers_min_sessions sessions."
        ),
        applies_to=("M0", "M1", "M2", "DPM", "M3", "DPM-reverse", "M4"),
        completers_only=True,
    ),
    Sensitivity(
        id="ml",
        switch="ml",
        description="Maximum likelihood instead of REML.",
        applies_to=("M0", "M1", "M2", "M3"),
        reml=False,
    ),
    Sensitivity(
        id="free_paths",
        switch="free_paths",
        description=(
            "Dynamic panel models with the lagged paths free per wave instead of equal over "
            "waves (one coefficient per pair of consecutive sessions)."
        ),
        applies_to=("DPM", "DPM-reverse"),
        equal_paths=False,
    ),
)

SENSITIVITY: dict[str, Sensitivity] = {row.id: row for row in SENSITIVITY_ANALYSES}
SUBSCALE_PREFIX = "subscale_"
SWITCHES = tuple(dict.fromkeys([row.switch for row in SENSITIVITY_ANALYSES if row.switch] + ["subscales"]))


def subscale_sensitivity(name: str, alliance_label: str = "alliance") -> Sensitivity:
    """The analysis with one alliance subscale in place of the total score.

    One model per subscale, because subscales (e.g. the WAI-SR's Task, Goal and Bond) are highly
    correlated. The subscales come from the alliance instrument in the registry, so a custom
    alliance measure with subscales gets these analyses too, and one without gets none.

    Parameters
    ----------
    name : str
        The subscale's name (``bond``).
    alliance_label : str
        How the alliance is named in the description.

    Returns
    -------
    Sensitivity
        The analysis ``subscale_<name>``.

    Examples
    --------
    >>> row = subscale_sensitivity("bond", "WAI-SR")
    >>> row.id, row.switch
    ('subscale_bond', 'subscales')
    >>> row.description
    'The WAI-SR Bond subscale instead of the total score (within and between parts; one model
     per subscale because the subscales are highly correlated).'
    """
    return Sensitivity(
        id=f"{SUBSCALE_PREFIX}{name}",
        switch="subscales",
        description=(
            f"The {alliance_label} {name.replace('_', ' ').capitalize()} subscale instead of the "
            "total score (within and between parts; one model per subscale because the "
            "subscales are highly correlated)."
        ),
        applies_to=("M1", "M2"),
        substitutions=(
            ("alliance_within", f"alliance_{name}_within"),
            ("alliance_between_c", f"alliance_{name}_between_c"),
        ),
    )


def find_sensitivity(analysis: str) -> Sensitivity | None:
    """The sensitivity analysis with this id (``subscale_<name>`` for any subscale), or None.

    Parameters
    ----------
    analysis : str
        The analysis id (``primary``, ``ml``, ``subscale_bond``, ...).

    Returns
    -------
    Sensitivity or None
        The analysis, or None for an unknown id.

    Examples
    --------
    >>> find_sensitivity("ml").reml
    False
    >>> find_sensitivity("subscale_bond").substitutions[:2]
    (('alliance_within', 'alliance_bond_within'), ('alliance_between_c', 'alliance_bond_between_c'))
    >>> find_sensitivity("no_such_analysis") is None
    True
    """
    if analysis in SENSITIVITY:
        return SENSITIVITY[analysis]
    if analysis.startswith(SUBSCALE_PREFIX) and len(analysis) > len(SUBSCALE_PREFIX):
        return subscale_sensitivity(analysis.removeprefix(SUBSCALE_PREFIX))
    return None


@dataclass(frozen=True)
class ResolvedFit:
    """Everything one fitting job needs: the spec after its sensitivity analysis is applied."""

    outcome: str
    model: str
    analysis: str
    kind: str
    title: str
    question: str
    formula: str | None
    reml: bool
    completers_min_sessions: int | None
    terms_of_interest: tuple[str, ...]
    primary_term: str | None
    data: str
    custom: bool = False
    alliance: str = "wai_sr"
    expected_sign: int = -1
    tested_terms: tuple[str, ...] = ()
    equal_paths: bool = True
    #: Wave settings of a dynamic panel model (``models.panel``), as sorted (key, value) pairs so
    #: the fit stays hashable; empty for other kinds.
    panel: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """Names the fit in messages: ``M2 for phq9 (primary)``."""
        return f"{self.model} for {self.outcome} ({self.analysis})"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ResolvedFit":
        """The inverse of :meth:`as_dict` (a fit job's params)."""
        return cls(**{**values, "terms_of_interest": tuple(values["terms_of_interest"]),
                      "tested_terms": tuple(values.get("tested_terms", ())),
                      "panel": tuple(sorted(dict(values.get("panel") or {}).items()))})

    def as_dict(self) -> dict:
        """A JSON-able description for the fit file."""
        return {
            "outcome": self.outcome,
            "model": self.model,
            "analysis": self.analysis,
            "kind": self.kind,
            "title": self.title,
            "question": self.question,
            "formula": self.formula,
            "reml": self.reml,
            "completers_min_sessions": self.completers_min_sessions,
            "terms_of_interest": list(self.terms_of_interest),
            "primary_term": self.primary_term,
            "data": self.data,
            "custom": self.custom,
            "alliance": self.alliance,
            "expected_sign": self.expected_sign,
            "tested_terms": list(self.tested_terms),
            "equal_paths": self.equal_paths,
            "panel": dict(self.panel),
        }


# ---------------------------------------------------------------------------------------------
# Formulas


def split_formula(formula: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    """Split an lme4 formula into response, fixed terms and random terms ``(expr, group)``.

    Parameters
    ----------
    formula : str
        An lme4-syntax formula.

    Returns
    -------
    tuple
        The response (str), the fixed terms (list of str; ``"1"`` alone is dropped) and the
        random terms (list of ``(expr, group)``).

    Raises
    ------
    ValueError
        When the formula has no ``~`` or more than one.

    Examples
    --------
    >>> split_formula("y ~ x + (1 + x | g) + (1 | h)")
    ('y', ['x'], [('1 + x', 'g'), ('1', 'h')])
    """
    if formula.count("~") != 1:
        raise ValueError(f"a formula needs exactly one '~': {formula!r}")
    response, right = (part.strip() for part in formula.split("~"))
    fixed: list[str] = []
    random: list[tuple[str, str]] = []
    for term in _split_top_level(right):
        inner = term[1:-1] if term.startswith("(") and term.endswith(")") else None
        if inner is not None and "|" in inner and _balanced(inner):
            expr, group = (part.strip() for part in inner.split("|", 1))
            random.append((" ".join(expr.split()), group.strip()))
        else:
            fixed.append(" ".join(term.split()))
    return response, fixed, random


def join_formula(response: str, fixed: list[str], random: list[tuple[str, str]]) -> str:
    """The inverse of :func:`split_formula`.

    Parameters
    ----------
    response : str
        The response variable.
    fixed : list of str
        The fixed terms (none: an intercept only).
    random : list of (str, str)
        The random terms as ``(expr, group)``.

    Returns
    -------
    str
        The formula.

    Examples
    --------
    >>> join_formula("y", ["x"], [("1 + x", "g")])
    'y ~ x + (1 + x | g)'
    >>> join_formula(*split_formula("y ~ x + (1 | g)"))
    'y ~ x + (1 | g)'
    """
    terms = list(fixed) or ["1"]
    terms += [f"({expr} | {group})" for expr, group in random]
    return f"{response} ~ " + " + ".join(terms)


def _split_top_level(text: str) -> list[str]:
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "+" and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return [term for term in terms if term]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if depth < 0:
            return False
    return depth == 0


def substitute_terms(formula: str, substitutions: tuple[tuple[str, str], ...]) -> str:
    """Replace whole variable names in ``formula`` (``alliance_within`` but not its suffixes).

    Parameters
    ----------
    formula : str
        The formula.
    substitutions : tuple of (str, str)
        ``(old, new)`` variable names.

    Returns
    -------
    str
        The formula with the names replaced.

    Examples
    --------
    >>> substitute_terms("symptom_next ~ alliance_within + alliance_within_detrended",
    ...                  (("alliance_within", "alliance_bond_within"),))
    'symptom_next ~ alliance_bond_within + alliance_within_detrended'
    """
    for old, new in substitutions:
        formula = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.])", new, formula)
    return formula


def _substitute_name(name: str, substitutions: tuple[tuple[str, str], ...]) -> str:
    return dict(substitutions).get(name, name)


def formula_variables(formula: str) -> list[str]:
    """Names of the variables a formula uses (identifiers not called as functions), in order.

    Parameters
    ----------
    formula : str
        An lme4-syntax formula.

    Returns
    -------
    list of str
        The variable names, each once.

    Examples
    --------
    >>> formula_variables("y ~ x + I(x^2) + log(z) + (1 + x | g)")
    ['y', 'x', 'z', 'g']
    """
    names: list[str] = []
    for match in re.finditer(r"(?<![\w.])[A-Za-z_.][A-Za-z0-9_.]*", formula):
        rest = formula[match.end():].lstrip()
        if rest.startswith("("):
            continue  # a function such as I(), log() or C()
        name = match.group(0)
        if name not in names:
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# The plan: which fits the study's settings ask for


def custom_model_fields(specs: Mapping[str, ModelSpec]) -> tuple[dict[str, Any], ...]:
    """The custom models among ``specs`` as plain values (:attr:`ModelSettings.custom`): how the
    models ``models.custom`` declares travel once :func:`model_specs` has resolved them.

    Parameters
    ----------
    specs : mapping of str to ModelSpec
        The resolved models (:func:`model_specs`).

    Returns
    -------
    tuple of dict
        One plain dict per custom model (JSON values), in the order of ``specs``.

    Examples
    --------
    >>> specs = model_specs([{"id": "M2q", "formula": "symptom_next ~ alliance_within"
    ...                       " + (1 | client_id)"}])
    >>> [(fields["id"], fields["custom"]) for fields in custom_model_fields(specs)]
    [('M2q', True)]
    """
    return tuple(json.loads(json.dumps(dataclasses.asdict(spec)))
                 for spec in specs.values() if spec.custom)


def resolved_model_specs(settings: ModelSettings) -> dict[str, ModelSpec]:
    """Built-in specs plus the custom models already resolved in ``settings.custom``, by id
    (no second reading of the declarations: :func:`model_specs` checked them once).

    Parameters
    ----------
    settings : ModelSettings
        The model settings of the resolved study (``custom`` from :func:`custom_model_fields`).

    Returns
    -------
    dict of str to ModelSpec
        The built-in models then the custom ones, by id (equal to :func:`model_specs`' result).

    Examples
    --------
    >>> from analysis.settings import ModelSettings
    >>> specs = model_specs([{"id": "M2q", "formula": "symptom_next ~ alliance_within"
    ...                       " + (1 | client_id)"}])
    >>> settings = ModelSettings(custom=custom_model_fields(specs))
    >>> resolved_model_specs(settings) == specs
    True
    """
    specs = dict(BUILTIN_MODELS)
    for values in settings.custom:
        outcomes = values.get("outcomes")
        specs[str(values["id"])] = ModelSpec(**{
            **values, "terms_of_interest": tuple(values.get("terms_of_interest") or ()),
            "outcomes": None if outcomes is None else tuple(outcomes)})
    return specs


def model_specs(custom: Sequence[Mapping[str, Any]] = (), outcomes: Sequence[str] = ()
                ) -> dict[str, ModelSpec]:
    """Built-in specs plus the custom models of ``models.custom``, by id.

    Raises
    ------
    ConfigError
        For a custom model without id or formula, a duplicate id, an id of a built-in model, a
        formula without a random term, or an outcome that is not in ``analysis.outcomes``.

    Parameters
    ----------
    custom : sequence of mapping
        The custom models of ``models.custom`` (``id``, ``formula``, optional ``title``,
        ``question``, ``terms_of_interest``, ``outcomes``, ...).
    outcomes : sequence of str
        ``analysis.outcomes`` (a custom model's outcomes must be among them).

    Returns
    -------
    dict of str to ModelSpec
        The built-in models then the custom ones, by id.

    Examples
    --------
    >>> specs = model_specs([{"id": "M2q", "formula": "symptom_next ~ alliance_within"
    ...                       " + I(alliance_within**2) + (1 | client_id)"}])
    >>> list(specs)
    ['M0', 'M1', 'M2', 'DPM', 'M3', 'DPM-reverse', 'M4', 'R1', 'R2', 'R3', 'M2q']
    >>> specs["M2q"].kind, specs["M2q"].custom
    ('lmm', True)
    >>> model_specs([{"id": "M2", "formula": "symptom_next ~ 1 + (1 | client_id)"}])
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: models.custom[0].id 'M2' is already used by a built-in model; ...
    """
    specs = dict(BUILTIN_MODELS)
    outcomes = list(outcomes)
    for position, declaration in enumerate(custom or ()):
        key = f"models.custom[{position}]"
        if not isinstance(declaration, Mapping):
            raise ConfigError(
                f"{key} must be a mapping with keys id, formula and (optional) title and outcomes."
            )
        model_id = str(declaration.get("id", "")).strip()
        formula = str(declaration.get("formula", "")).strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", model_id):
            raise ConfigError(
                f"{key}.id must be a short name of letters, digits and underscores starting "
                f"with a letter (it names files); got {model_id!r}."
            )
        if model_id in specs:
            raise ConfigError(
                f"{key}.id {model_id!r} is already used by "
                f"{'a built-in model' if model_id in BUILTIN_MODELS else 'another custom model'}; "
                "choose another id."
            )
        try:
            response, fixed, random = split_formula(formula)
        except ValueError:
            raise ConfigError(
                f"{key}.formula must be an lme4 formula such as "
                f"'symptom_next ~ symptom_score + alliance_within + (1 | client_id)'; "
                f"got {formula!r}."
            ) from None
        if not random:
            raise ConfigError(
                f"{key}.formula has no random term: add one such as '+ (1 | client_id)' "
                f"(sessions are nested in clients)."
            )
        declared_outcomes = declaration.get("outcomes")
        if declared_outcomes is not None:
            declared_outcomes = tuple(str(name) for name in declared_outcomes)
            for name in declared_outcomes:
                if name not in outcomes:
                    raise ConfigError(
                        f"{key}.outcomes names {name!r}, which is not one of analysis.outcomes "
                        f"({', '.join(outcomes)}).{suggest(name, outcomes)}"
                    )
        interest = tuple(
            term for term in fixed if term.startswith("alliance_") and term != response
        )
        specs[model_id] = ModelSpec(
            id=model_id,
            title=str(declaration.get("title") or f"Custom model {model_id}"),
            question=f"Custom model declared in config ({key}).",
            kind="lmm",
            formula=formula,
            terms_of_interest=interest,
            custom=True,
            outcomes=declared_outcomes,
            tested=False,
        )
    return specs


def sensitivity_applies(spec: ModelSpec, sensitivity: Sensitivity) -> bool:
    """Whether a sensitivity analysis is run for a model.

    Built-in models follow the ``applies_to`` column. A custom model gets ``primary``, ``ml``
    and ``completers``, and ``detrended``/subscale analyses when its formula uses the terms they
    replace.

    Parameters
    ----------
    spec : ModelSpec
        The model.
    sensitivity : Sensitivity
        The analysis.

    Returns
    -------
    bool
        Whether the analysis is run for the model.

    Examples
    --------
    >>> specs = model_specs([{"id": "M2b", "formula": "symptom_next ~ alliance_between_c"
    ...                       " + (1 | client_id)"}])
    >>> sensitivity_applies(specs["M2"], SENSITIVITY["detrended"])
    True
    >>> sensitivity_applies(specs["M2b"], SENSITIVITY["detrended"])
    False
    >>> sensitivity_applies(specs["M2b"], SENSITIVITY["ml"])
    True
    """
    if not spec.custom:
        return spec.id in sensitivity.applies_to
    if not sensitivity.substitutions:
        return True
    formula = spec.formula or ""
    return substitute_terms(formula, sensitivity.substitutions) != formula


def enabled_analyses(switches: Mapping[str, bool], alliance: Instrument | None = None
                     ) -> list[Sensitivity]:
    """The primary analysis and every sensitivity analysis switched on.

    Subscale analyses come from the alliance instrument's subscales (none without one).

    Parameters
    ----------
    switches : mapping of str to bool
        ``models.sensitivity`` (keys :data:`SWITCHES`).
    alliance : Instrument, optional
        The alliance instrument, for the subscale analyses.

    Returns
    -------
    list of Sensitivity
        ``primary`` first, then the analyses switched on.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> [row.id for row in enabled_analyses({"ml": True, "detrended": False})]
    ['primary', 'ml']
    >>> [row.id for row in enabled_analyses({"subscales": True}, BUILT_IN["wai_sr"])]
    ['primary', 'subscale_task', 'subscale_goal', 'subscale_bond']
    """
    unknown = sorted(set(switches) - set(SWITCHES))
    if unknown:
        valid = sorted(SWITCHES)
        raise ConfigError(
            f'unknown key "models.sensitivity.{unknown[0]}".{suggest(unknown[0], valid)} '
            f"Allowed keys here: {', '.join(valid)}."
        )
    analyses = [row for row in SENSITIVITY_ANALYSES if row.switch is None or switches.get(row.switch)]
    if switches.get("subscales") and alliance is not None:
        analyses += [subscale_sensitivity(name, alliance.label) for name in alliance.subscales]
    return analyses


def _suggest_model(name: str, valid: list[str]) -> str:
    # Model ids are upper case (M2); a user typing m2 should be pointed to it.
    for candidate in valid:
        if candidate.lower() == str(name).lower():
            return f" Did you mean '{candidate}'?"
    return suggest(name, valid)


def _run_models(run: Sequence[str], specs: dict[str, ModelSpec]) -> list[str]:
    for position, model_id in enumerate(run):
        if model_id not in specs:
            raise ConfigError(
                f"models.run[{position}] is {model_id!r}, which is not a known model."
                f"{_suggest_model(model_id, list(specs))} Known models: {', '.join(specs)}."
            )
    custom = [model_id for model_id, spec in specs.items() if spec.custom]
    return [model_id for model_id in specs if model_id in run or model_id in custom]


def _outcomes_for(spec: ModelSpec, outcomes: Sequence[str], alliance: str) -> list[str]:
    if spec.kind == "alpha":
        # Reliability is a property of every instrument analysed, the alliance measure included.
        return list(outcomes) + ([alliance] if alliance not in outcomes else [])
    if spec.outcomes is not None:
        return [name for name in outcomes if name in spec.outcomes]
    return list(outcomes)


def plan_fits(settings: ModelSettings, alliance: Instrument,
              outcomes: Sequence[Instrument]) -> tuple[ResolvedFit, ...]:
    """Every fitting job the settings ask for, resolved, sorted by (outcome, model, analysis).

    For R2 (reliability) the "outcome" is the instrument whose items are analysed, so the
    alliance instrument gets a job too.

    Parameters
    ----------
    settings : ModelSettings
        The models to run (``models.run``), the sensitivity switches and the custom models.
    alliance : Instrument
        The alliance instrument (its subscales give the subscale analyses).
    outcomes : sequence of Instrument
        The outcome instruments.

    Returns
    -------
    tuple of ResolvedFit
        One per job.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> plan = plan_fits(ModelSettings(run=("M2",), sensitivity={"ml": True}),
    ...                  BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> [(fit.outcome, fit.model, fit.analysis) for fit in plan]
    [('phq9', 'M2', 'ml'), ('phq9', 'M2', 'primary')]
    """
    keys = [instrument.key for instrument in outcomes]
    directions = {instrument.key: instrument.direction for instrument in outcomes}
    specs = resolved_model_specs(settings)
    analyses = enabled_analyses(settings.sensitivity, alliance)
    fits = []
    for model_id in _run_models(settings.run, specs):
        spec = specs[model_id]
        for sensitivity in analyses:
            if not sensitivity_applies(spec, sensitivity):
                continue
            for outcome in _outcomes_for(spec, keys, alliance.key):
                # -1 when alliance and outcome point in opposite directions (alliance up,
                # symptoms down): the sign R1 and the benchmark are read with.
                sign = 1 if directions.get(outcome, alliance.direction) == alliance.direction else -1
                fits.append(_resolve(spec, sensitivity, outcome, alliance.key, sign,
                                     settings.completers_min_sessions,
                                     settings.panel if spec.kind == "dpm" else {}))
    return tuple(sorted(fits, key=lambda fit: (fit.outcome, fit.model, fit.analysis)))


def _resolve(spec: ModelSpec, sensitivity: Sensitivity, outcome: str, alliance: str,
             expected_sign: int, completers_min_sessions: int,
             panel: Mapping[str, Any] | None = None) -> ResolvedFit:
    formula = spec.formula
    if formula is not None:
        formula = substitute_terms(formula, sensitivity.substitutions)
    primary_term = spec.primary_term
    if primary_term is not None:
        primary_term = _substitute_name(primary_term, sensitivity.substitutions)
    interest = tuple(_substitute_name(term, sensitivity.substitutions)
                     for term in spec.terms_of_interest)
    return ResolvedFit(
        outcome=outcome,
        model=spec.id,
        analysis=sensitivity.id,
        kind=spec.kind,
        title=spec.title,
        question=spec.question,
        formula=formula,
        reml=sensitivity.reml,
        completers_min_sessions=completers_min_sessions if sensitivity.completers_only else None,
        terms_of_interest=interest,
        primary_term=primary_term,
        data=spec.data,
        custom=spec.custom,
        alliance=alliance,
        expected_sign=expected_sign,
        tested_terms=interest if spec.tested else (),
        equal_paths=sensitivity.equal_paths,
        panel=tuple(sorted(dict(panel or {}).items())),
    )


def find_fit(fits: Sequence[ResolvedFit], outcome: str, model: str, analysis: str) -> ResolvedFit:
    """The planned fit ``(outcome, model, analysis)``.

    Raises
    ------
    ConfigError
        If the job is not planned (e.g. a wildcard typed by hand, or a sensitivity analysis that
        is switched off).

    Parameters
    ----------
    fits : sequence of ResolvedFit
        The planned fits (:func:`plan_fits`).
    outcome, model, analysis : str
        The job's wildcards.

    Returns
    -------
    ResolvedFit
        The planned fit.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> plan = plan_fits(ModelSettings(run=("M2",)), BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> find_fit(plan, "phq9", "M2", "primary").formula
    'symptom_next ~ symptom_score + alliance_within + alliance_between_c + session + (1 |
     client_id) + (1 | therapist_id)'
    >>> find_fit(plan, "phq9", "M2", "ml")
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: the fit (phq9, M2, ml) is not planned by config: check ...
    """
    for fit in fits:
        if (fit.outcome, fit.model, fit.analysis) == (outcome, model, analysis):
            return fit
    models = sorted({fit.model for fit in fits})
    if model not in models:
        raise ConfigError(
            f"model {model!r} is not planned.{_suggest_model(model, models)} Planned models: "
            f"{', '.join(models)} (models.run)."
        )
    sensitivity = find_sensitivity(analysis)
    switch = f"models.sensitivity.{sensitivity.switch}" if sensitivity and sensitivity.switch \
        else "models.sensitivity"
    raise ConfigError(
        f"the fit ({outcome}, {model}, {analysis}) is not planned by config: check "
        f"analysis.outcomes, models.run and {switch}."
    )


def planned_cross_checks(fits: Sequence[ResolvedFit]) -> list[tuple[str, str]]:
    """The ``(outcome, model)`` pairs whose primary-analysis mixed model is refitted by the
    second engine (R3 included: it is a mixed model too), sorted.

    Parameters
    ----------
    fits : sequence of ResolvedFit
        The planned fits (:func:`plan_fits`).

    Returns
    -------
    list of (str, str)
        The ``(outcome, model)`` pairs.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> plan = plan_fits(ModelSettings(run=("M1", "M2", "R1"), sensitivity={"ml": True}),
    ...                  BUILT_IN["wai_sr"], [BUILT_IN["phq9"], BUILT_IN["gad7"]])
    >>> planned_cross_checks(plan)
    [('gad7', 'M1'), ('gad7', 'M2'), ('phq9', 'M1'), ('phq9', 'M2')]
    """
    return sorted((fit.outcome, fit.model) for fit in fits
                  if fit.analysis == "primary" and fit.kind in ("lmm", "icc"))
