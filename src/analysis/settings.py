"""Typed settings of each stage: what a stage reads, and nothing else.

:mod:`analysis.study` resolves the configuration once into these frozen dataclasses. Each stage
function takes the settings it needs (never the configuration), and each Snakemake rule passes
them as ``params`` in their plain form (:meth:`Settings.params`), so that Snakemake's params
trigger reruns a stage exactly when one of its settings changes. A script turns the params back
into settings with :meth:`Settings.from_params`.

Instruments travel the same way: a stage holds ``instruments``, a mapping from instrument key to
the declaration keys the stage reads (:data:`analysis.instruments.STAGE_READS`), and builds its
:class:`~analysis.instruments.Instrument` objects with :meth:`Settings.registry`.

Defaults are written once, in the JSON schema (``workflow/schemas/config.schema.yaml``): a
field whose setting has a schema default takes it from there (:func:`schema_default`), so a
settings object built without the configuration (a test, the recovery study) gets what a run
without that key would get.

The settings of the model stage (:class:`ModelSettings`) and of the reviewer report
(:class:`ReportSettings`) live here with the others; custom models reach them resolved once
(:func:`analysis.study.resolve_study`), as plain values.

This module imports nothing heavy: the Snakefile and every job import it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import types
import typing
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from analysis.config import load_schema
from analysis.errors import ConfigError
from analysis.instruments import Instrument, registry_from_params


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema()


def schema_default(key: str, kind: Callable[[Any], Any] | None = None) -> Any:
    """The default of the dotted config ``key`` written in the JSON schema (a copy), as
    ``kind`` (e.g. ``tuple`` for a list) unless it is None; ``*`` stands for any name (the
    tables of ``inputs``).

    >>> schema_default("linking.window_days")
    3
    >>> schema_default("models.run", tuple)[:3]
    ('M0', 'M1', 'M2')
    >>> schema_default("inputs.*.value_labels")
    True
    """
    node = _schema()
    for part in key.split("."):
        node = node["additionalProperties"] if part == "*" else node["properties"][part]
    value = copy.deepcopy(node["default"])
    return value if kind is None or value is None else kind(value)


class Settings:
    """Plain-value round trip for the settings dataclasses below."""

    def params(self) -> dict[str, Any]:
        """The settings as plain, JSON-able values in a fixed order (a rule's ``params``)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_params(cls, values: Mapping[str, Any]):
        """The settings back from :meth:`params` (Snakemake gives params back as they were)."""
        hints = typing.get_type_hints(cls)
        return cls(**{item.name: _typed(hints[item.name], values[item.name])
                      for item in dataclasses.fields(cls)})

    def registry(self) -> dict[str, Instrument]:
        """The instruments this stage reads, from its ``instruments`` field."""
        return registry_from_params(getattr(self, "instruments"))


def _typed(hint: Any, value: Any) -> Any:
    # Rebuild tuples and nested settings from the lists and dicts that params hold.
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return None if value is None else _typed(options[0], value)
    if isinstance(hint, type) and issubclass(hint, Settings):
        return hint.from_params(value)
    if origin is tuple:
        (item,) = [arg for arg in typing.get_args(hint) if arg is not Ellipsis][:1] or [Any]
        return tuple(_typed(item, element) for element in value)
    return value


# ---------------------------------------------------------------------------------------------
# ingest


@dataclass(frozen=True)
class InputTable(Settings):
    """One declared export (``inputs.<name>`` in config; see config/README.md)."""

    name: str
    path: str
    kind: str
    format: str | None
    delimiter: str
    encoding: str
    sheet: str | int
    layout: str
    date_format: str | None
    columns: dict[str, str]
    instruments: dict[str, dict[str, Any]]
    # Codes that mean "missing" in this export (e.g. "#NULL!", -99, 999), and whether SPSS or
    # Stata value labels replace the codes of the client and therapist columns.
    missing_values: tuple[str | float, ...] = schema_default("inputs.*.missing_values", tuple)
    value_labels: bool = schema_default("inputs.*.value_labels")
    # The values of the session-status column (role ``status``) for each kind of session record:
    # attended, did_not_attend, cancelled_by_client, cancelled_by_service.
    status_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The values of the episode-ending column (role ``ending``) for each kind of ending:
    # completed, dropped_out, other.
    ending_values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def config_key(self, *parts: str) -> str:
        """The dotted config key of this table, or of a key inside it, for messages."""
        return ".".join(["inputs", self.name, *parts])


@dataclass(frozen=True)
class LinkingSettings(Settings):
    """How questionnaires find their session (``linking`` in config)."""

    by: str = schema_default("linking.by")
    window_days: int = schema_default("linking.window_days")
    orphan_outcomes: str = schema_default("linking.orphan_outcomes")
    unmatched_sessions: str = schema_default("linking.unmatched_sessions")


@dataclass(frozen=True)
class IngestSettings(Settings):
    inputs: tuple[InputTable, ...]
    linking: LinkingSettings
    key_env: str
    instruments: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class QualitySettings(Settings):
    """The data-quality gate after ingest (``quality`` in config)."""

    max_reject_share: float = schema_default("quality.max_reject_share")
    inputs: dict[str, str] = field(default_factory=dict)  # table name -> path, for messages


# ---------------------------------------------------------------------------------------------
# scoring, episodes, derive


@dataclass(frozen=True)
class ScoreSettings(Settings):
    instruments: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class EpisodeSettings(Settings):
    """Episode outcomes (``episodes`` in config; see config/README.md)."""

    outcomes: tuple[str, ...]
    instruments: dict[str, dict[str, Any]]
    caseness_rule: str = schema_default("episodes.caseness_rule")
    recovery_rule: str = schema_default("episodes.recovery_rule")
    reliable_change_rule: str = schema_default("episodes.reliable_change_rule")
    rci_criterion: float = schema_default("episodes.rci_criterion")
    reliability: dict[str, float] = field(default_factory=dict)
    functional_norms: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeriveSettings(Settings):
    """The derived session variables (``analysis`` in config)."""

    alliance: str
    outcomes: tuple[str, ...]
    max_lag_gap: int = schema_default("analysis.max_lag_gap")
    max_lag_days: int | None = schema_default("analysis.max_lag_days")
    early_sessions: int = schema_default("analysis.early_sessions")
    early_min_observed: int = schema_default("analysis.early_min_observed")


# ---------------------------------------------------------------------------------------------
# models


@dataclass(frozen=True)
class ModelSettings(Settings):
    """The ``models`` section of the config, checked (and ``analysis.completers_min_sessions``).

    ``custom``: the models ``models.custom`` declares, resolved once by
    :func:`analysis.study.resolve_study` (:func:`analysis.models.mixed.specs.model_specs`), each as the
    plain fields of its :class:`~analysis.models.mixed.specs.ModelSpec`
    (:func:`~analysis.models.mixed.specs.resolved_model_specs` gives the specs back).
    """

    run: tuple[str, ...] = schema_default("models.run", tuple)
    sensitivity: dict[str, bool] = field(default_factory=dict)
    custom: tuple[dict[str, Any], ...] = ()
    completers_min_sessions: int = schema_default("analysis.completers_min_sessions")
    cross_check_max_clients: int = schema_default("models.cross_check_max_clients")
    agreement_tolerance: float = schema_default("models.agreement_tolerance")
    fit_jobs: str = schema_default("models.fit_jobs")
    #: How the dynamic panel models choose their waves (``models.panel``: min_share, max_waves,
    #: origin), passed to each DPM fit.
    panel: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossCheckSettings(Settings):
    agreement_tolerance: float
    max_clients: int


@dataclass(frozen=True)
class PrivacySettings(Settings):
    """Publication settings every published table and figure follows (``privacy``)."""

    min_cell_count: int = schema_default("privacy.min_cell_count")
    show_individual_trajectories: bool = schema_default("privacy.show_individual_trajectories")


@dataclass(frozen=True)
class FigureSettings(Settings):
    alliance: str
    outcomes: tuple[str, ...]
    instruments: dict[str, dict[str, Any]]
    privacy: PrivacySettings
    png_dpi: int = schema_default("figures.png_dpi")


# ---------------------------------------------------------------------------------------------
# RI-CLPM check and multiverse (analysis.models.panel.riclpm_stage, analysis.models.multiverse)


@dataclass(frozen=True)
class PanelWaveSettings(Settings):
    """Which sessions are the waves of the panel models (``models.panel`` in config).

    Read by :func:`analysis.models.panel.waves.choose_waves` for the dynamic panel model and the
    RI-CLPM alike: the consecutive sessions from ``origin`` (``"client"``: each client's first
    observed session; ``"study"``: the study's first session number) that at least ``min_share``
    of clients reach, at most ``max_waves`` (None: no cap). The defaults and why they were chosen:
    the docstring of :mod:`analysis.models.panel.waves`.
    """

    min_share: float = schema_default("models.panel.min_share")
    max_waves: int | None = schema_default("models.panel.max_waves")
    origin: str = schema_default("models.panel.origin")


@dataclass(frozen=True)
class RiclpmSettings(Settings):
    """The RI-CLPM check (``models.riclpm`` in config): waves, innovations, free-paths version.

    ``sessions``: an explicit number of waves (the first K sessions from the origin) or None,
    the waves chosen from the data by ``waves`` (``models.panel``). ``equal_innovations``: the
    innovation variances and covariance held equal over waves.
    """

    sessions: int | None = schema_default("models.riclpm.sessions")
    free_paths_sensitivity: bool = schema_default("models.riclpm.free_paths_sensitivity")
    equal_innovations: bool = schema_default("models.riclpm.equal_innovations")
    waves: PanelWaveSettings = field(default_factory=PanelWaveSettings)


@dataclass(frozen=True)
class MultiverseSettings(Settings):
    """The multiverse as declared (``multiverse`` in config), options resolved.

    ``choices`` maps each analytic choice to its options in the order of
    :data:`analysis.models.multiverse.specifications.CHOICES`; ``primary`` holds the options of the primary
    analysis (the specification that must reproduce M2).
    """

    choices: dict[str, list[Any]]
    primary: dict[str, Any]
    specifications_per_job: int = schema_default("multiverse.specifications_per_job")
    #: Resamples of the joint test (null-imposed cluster bootstrap); 0 = off.
    resamples: int = 0


@dataclass(frozen=True)
class MultiverseDataSettings(Settings):
    """One scoring variant of the multiverse's data: prorating rule and the lag gaps derived."""

    prorating: str
    lag_gaps: tuple[int, ...]
    instruments: dict[str, dict[str, Any]]
    derive: DeriveSettings


@dataclass(frozen=True)
class MultiverseFitSettings(Settings):
    """One multiverse job: its specifications, the M2 and DPM fits per outcome, the resamples.

    ``fits`` maps an outcome to its M2 and ``"<outcome>/DPM"`` to its DPM (the wave settings).
    """

    specifications: tuple[dict[str, Any], ...]
    fits: dict[str, dict[str, Any]]
    completers_min_sessions: int
    resamples: int = 0
    seed: int = 0


@dataclass(frozen=True)
class MultiverseSummarySettings(Settings):
    """What the combined multiverse table and its summary read."""

    alpha: float
    min_cell_count: int
    expected_signs: dict[str, int]
    resamples: int = 0


# ---------------------------------------------------------------------------------------------
# engagement: attendance and dropout, therapist and patient contributions, sudden gains
# (analysis.engagement.*_stage; ``engagement`` in config)


@dataclass(frozen=True)
class DropoutSettings(Settings):
    """What the dropout episodes read (``engagement.dropout``): whether a session-status column
    is mapped (attendance rates need one), whether an episode-ending column is (dropout is then
    the recorded ending), and the proxy rule of a dropout without one
    (:func:`analysis.engagement.dropout.dropout_episodes`)."""

    status_recorded: bool = False
    ending_recorded: bool = False
    proxy_min_sessions: int = schema_default("engagement.dropout.proxy_min_sessions")
    proxy_active_weeks: float | None = schema_default("engagement.dropout.proxy_active_weeks",
                                                      float)


@dataclass(frozen=True)
class DropoutHazardSettings(Settings):
    """What one outcome's hazard model of dropout reads: session as a line (None) or a cubic
    B-spline with this many df (``engagement.dropout.session_spline_df``)."""

    session_spline_df: int | None = schema_default("engagement.dropout.session_spline_df")


@dataclass(frozen=True)
class SuddenGainSettings(Settings):
    """The criteria of sudden gains (``engagement.sudden_gains``) and each outcome's direction
    (``lower_is_better`` or ``higher_is_better``, from the instrument registry)."""

    directions: dict[str, str]
    cutoff: float | None = schema_default("engagement.sudden_gains.cutoff")
    crit2_pct: float | None = schema_default("engagement.sudden_gains.crit2_pct")
    crit3: bool = schema_default("engagement.sudden_gains.crit3")
    identify_1to2: bool = schema_default("engagement.sudden_gains.identify_1to2")
    window: int = schema_default("engagement.sudden_gains.window")
    min_gains: int = schema_default("engagement.sudden_gains.min_gains")


@dataclass(frozen=True)
class EngagementSettings(Settings):
    """The engagement analyses switched on (None / False: switched off in config)."""

    dropout: DropoutSettings | None = None
    dropout_hazard: DropoutHazardSettings | None = None
    therapist_patient: bool = False
    sudden_gains: SuddenGainSettings | None = None

    @property
    def switched_on(self) -> tuple[str, ...]:
        """The analyses to run, by config name: ``dropout``, ``therapist_patient``,
        ``sudden_gains``."""
        return tuple(name for name, on in (("dropout", self.dropout is not None),
                                           ("therapist_patient", self.therapist_patient),
                                           ("sudden_gains", self.sudden_gains is not None))
                     if on)


# ---------------------------------------------------------------------------------------------
# the reviewer report


@dataclass(frozen=True)
class ReportSettings(Settings):
    """What the reviewer report states about the study: its methods text is made from these."""

    title: str
    seed: int
    ceiling_share: float
    alpha: float
    alliance: str
    outcomes: tuple[str, ...]
    instruments: dict[str, dict[str, Any]]
    inputs: tuple[dict[str, str], ...]
    linking: LinkingSettings
    key_env: str
    privacy: PrivacySettings
    max_reject_share: float
    derive: DeriveSettings
    episode_rules: dict[str, Any]
    models: ModelSettings
    fits: tuple[dict[str, Any], ...]
    riclpm: RiclpmSettings | None = None  # None: models.riclpm.run is false
    multiverse: MultiverseSettings | None = None  # None: multiverse.run is false
    engagement: EngagementSettings = field(default_factory=EngagementSettings)


__all__ = [
    "MultiverseDataSettings",
    "MultiverseFitSettings",
    "MultiverseSettings",
    "MultiverseSummarySettings",
    "PanelWaveSettings",
    "RiclpmSettings",
    "CrossCheckSettings",
    "DeriveSettings",
    "DropoutHazardSettings",
    "DropoutSettings",
    "EngagementSettings",
    "EpisodeSettings",
    "FigureSettings",
    "IngestSettings",
    "InputTable",
    "LinkingSettings",
    "ModelSettings",
    "PrivacySettings",
    "QualitySettings",
    "ReportSettings",
    "ScoreSettings",
    "Settings",
    "SuddenGainSettings",
    "schema_default",
]

# --- power for the next study (analysis.power; METHODS 10) ---------------------------------
#
# The power stage's settings: the design grid, the effects, the simulated studies and their seeds.
#
# :func:`power_settings` resolves the ``power`` section of the checked configuration (defaults from
# ``workflow/schemas/config.schema.yaml``; see config/README.md) into :class:`PowerSettings`:
#
# - the designs: every combination of ``power.grid.therapists``, ``clients_per_therapist``,
#   ``sessions`` and ``dropout`` (a per-session hazard of ending treatment; ``null`` = the hazard
#   observed in this study);
# - the true effects: this study's estimate of the lagged alliance path (DPM) and, for the outcomes
#   listed in ``power.smallest_effect``, that smallest effect of interest;
# - ``power.simulations`` simulated studies per design and effect (a *cell*), run in jobs of
#   ``power.simulations_per_job`` (one Snakemake job per batch, so a cluster spreads them);
# - the seeds: simulated study ``k`` of a design has a seed made from ``study.seed``, the outcome,
#   the design and ``k`` (:func:`study_seed`), the same for both effects (common random numbers:
#   the estimate and the smallest effect are compared on the same simulated clients), whatever the
#   batch size.
#
# This module imports nothing heavy: the Snakefile reads it.

#: The planned fits the generating parameters are read from (:mod:`analysis.power.parameters`).
POWER_REQUIRED_MODELS = ("DPM", "DPM-reverse", "M2", "M3", "R3")
#: The estimators whose power is simulated: the primary dynamic panel model and the conventional M2.
POWER_ESTIMATORS = ("DPM", "M2")
#: The true effects: this study's DPM estimate, and the configured smallest effect of interest.
EFFECT_ESTIMATE = "estimate"
EFFECT_SMALLEST = "smallest_effect"
EFFECT_KINDS = (EFFECT_ESTIMATE, EFFECT_SMALLEST)
#: The significance level of the simulated tests (METHODS 10: p < .05).
POWER_ALPHA = 0.05
#: Digits of a batch number in its file name.
POWER_BATCH_WIDTH = 4


@dataclass(frozen=True)
class PowerDesign(Settings):
    """One design of the next study. ``dropout`` None: the hazard observed in this study."""

    therapists: int
    clients_per_therapist: int
    sessions: int
    dropout: float | None = None

    @property
    def clients(self) -> int:
        return self.therapists * self.clients_per_therapist

    @property
    def id(self) -> str:
        """A short, file-name-safe key, e.g. ``t30_c10_s12_dobs`` (a Snakemake wildcard)."""
        dropout = "obs" if self.dropout is None else f"{self.dropout:g}"
        return (f"t{self.therapists}_c{self.clients_per_therapist}_s{self.sessions}"
                f"_d{dropout}")

    def describe(self, observed_dropout: float | None = None) -> str:
        """The design in words, e.g. "30 therapists with 10 clients each, 12 sessions, dropout
        as observed (8% per session)"."""
        if self.dropout is None:
            hazard = ("" if observed_dropout is None
                      else f" ({100 * observed_dropout:.0f}% per session)")
            dropout = f"dropout as observed{hazard}"
        else:
            dropout = f"dropout {100 * self.dropout:.0f}% per session"
        return (f"{self.therapists} therapists with {self.clients_per_therapist} clients each, "
                f"{self.sessions} sessions, {dropout}")


@dataclass(frozen=True)
class PowerSettings(Settings):
    """The ``power`` section, resolved (see the module docstring)."""

    run: bool
    outcomes: tuple[str, ...]
    designs: tuple[PowerDesign, ...]
    smallest_effects: dict[str, float]
    simulations: int
    simulations_per_job: int
    seed: int
    alpha: float = POWER_ALPHA
    #: The models of POWER_REQUIRED_MODELS that ``models.run`` leaves out (power cannot run then).
    missing_models: tuple[str, ...] = ()

    def effects(self, outcome: str) -> list[str]:
        """The true effects simulated for ``outcome``: the estimate, and the smallest effect of
        interest where one is configured."""
        return [EFFECT_ESTIMATE] + ([EFFECT_SMALLEST] if outcome in self.smallest_effects
                                    else [])

    def design(self, design_id: str) -> PowerDesign:
        for design in self.designs:
            if design.id == design_id:
                return design
        raise ConfigError(f"power.grid has no design {design_id!r}.")

    def batches(self) -> list[tuple[int, int]]:
        """``(first, count)`` of each job of a cell: consecutive simulated studies."""
        size = self.simulations_per_job
        return [(first, min(size, self.simulations - first))
                for first in range(0, self.simulations, size)]

    def cells(self) -> list[tuple[str, PowerDesign, str]]:
        """Every ``(outcome, design, effect)``, in table order."""
        return [(outcome, design, effect) for outcome in self.outcomes
                for design in self.designs for effect in self.effects(outcome)]

    def batch_keys(self) -> list[dict[str, str]]:
        """The wildcards of every batch file: ``outcome, design, effect, batch``."""
        return [{"outcome": outcome, "design": design.id, "effect": effect,
                 "batch": f"{number:0{POWER_BATCH_WIDTH}d}"}
                for outcome, design, effect in self.cells()
                for number in range(len(self.batches()))]


@dataclass(frozen=True)
class PowerBatchSettings(Settings):
    """One job: simulated studies ``first .. first + count - 1`` of one cell.

    ``fits`` holds the planned DPM and M2 of the outcome (``ResolvedFit.as_dict()``), fitted to
    every simulated study as the pipeline fits them; ``max_lag_gap`` is the study's lag rule.
    """

    outcome: str
    design: PowerDesign
    effect: str
    smallest_effect: float | None
    first: int
    count: int
    seed: int
    alpha: float
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_lag_gap: int = schema_default("analysis.max_lag_gap")


def study_seed(seed: int, outcome: str, design: PowerDesign, index: int) -> int:
    """The seed of simulated study ``index`` of a design: from ``study.seed``, the outcome, the
    design and the index only (not the effect, nor the batch), so the same config gives the same
    studies and the two effects of a design share them."""
    import numpy as np

    words = [int(seed) % 2**32, zlib.crc32(outcome.encode()), zlib.crc32(design.id.encode()),
             int(index)]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def power_settings(section: Mapping[str, Any], outcomes: Sequence[str],
                   models_run: Sequence[str], seed: int) -> PowerSettings:
    """``power`` of the checked configuration (the schema filled its defaults).

    Raises
    ------
    ConfigError
        Naming the key: an outcome that is not analysed, a smallest effect for such an outcome,
        a dropout that is not a probability, or ``power.run`` while ``models.run`` leaves out a
        model the generating parameters come from.
    """
    chosen = list(section["outcomes"] or outcomes)
    unknown = [key for key in chosen if key not in outcomes]
    if unknown:
        raise ConfigError(f"power.outcomes: {', '.join(unknown)} not in analysis.outcomes "
                          f"({', '.join(outcomes)}); list analysed outcomes or use null (all).")
    smallest = {str(key): float(value) for key, value in (section["smallest_effect"] or {}).items()}
    stray = [key for key in smallest if key not in chosen]
    if stray:
        raise ConfigError(f"power.smallest_effect: {', '.join(stray)} not among the outcomes "
                          f"whose power is simulated ({', '.join(chosen)}).")
    grid = section["grid"]
    designs = []
    for therapists, per, sessions, dropout in itertools.product(
            grid["therapists"], grid["clients_per_therapist"], grid["sessions"], grid["dropout"]):
        if dropout is not None and not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"power.grid.dropout: {dropout} is not a per-session probability; "
                              "use 0 to below 1, or null for the dropout observed in this study.")
        designs.append(PowerDesign(int(therapists), int(per), int(sessions),
                              None if dropout is None else float(dropout)))
    if len({design.id for design in designs}) != len(designs):
        raise ConfigError("power.grid: a design is listed twice; list each value once.")
    missing = tuple(model for model in POWER_REQUIRED_MODELS if model not in models_run)
    run = bool(section["run"])
    if run and missing:
        raise ConfigError(
            f"power.run is true but models.run leaves out {', '.join(missing)}: the simulated "
            f"studies are drawn from the fits of {', '.join(POWER_REQUIRED_MODELS)}; add them to "
            "models.run or set power.run: false.")
    return PowerSettings(
        run=run, outcomes=tuple(chosen), designs=tuple(designs), smallest_effects=smallest,
        simulations=int(section["simulations"]),
        simulations_per_job=int(section["simulations_per_job"] or section["simulations"]),
        seed=int(seed), missing_models=missing)


def batch_settings(power: PowerSettings, fits: Mapping[str, Mapping[str, Any]],
                   max_lag_gap: int, outcome: str, design_id: str, effect: str,
                   batch: str) -> PowerBatchSettings:
    """A batch job's settings from its wildcards (``fits``: the outcome's planned DPM and M2)."""
    if effect not in power.effects(outcome):
        raise ConfigError(f"power: no effect {effect!r} for outcome {outcome!r}.")
    first, count = power.batches()[int(batch)]
    return PowerBatchSettings(
        outcome=outcome, design=power.design(design_id), effect=effect,
        smallest_effect=power.smallest_effects.get(outcome), first=first, count=count,
        seed=power.seed, alpha=power.alpha,
        fits={name: dict(fits[name]) for name in POWER_ESTIMATORS}, max_lag_gap=int(max_lag_gap))
