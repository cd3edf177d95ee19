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
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from analysis.config import load_schema
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
    :func:`analysis.study.resolve_study` (:func:`analysis.models.specs.model_specs`), each as the
    plain fields of its :class:`~analysis.models.specs.ModelSpec`
    (:func:`~analysis.models.specs.resolved_model_specs` gives the specs back).
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
# RI-CLPM check and multiverse (analysis.models.riclpm_stage, analysis.models.multiverse*)


@dataclass(frozen=True)
class PanelWaveSettings(Settings):
    """Which sessions are the waves of the panel models (``models.panel`` in config).

    Read by :func:`analysis.models.waves.choose_waves` for the dynamic panel model and the
    RI-CLPM alike: the consecutive sessions from ``origin`` (``"client"``: each client's first
    observed session; ``"study"``: the study's first session number) that at least ``min_share``
    of clients reach, at most ``max_waves`` (None: no cap). The defaults and why they were chosen:
    the docstring of :mod:`analysis.models.waves`.
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
    :data:`analysis.models.multiverse.CHOICES`; ``primary`` holds the options of the primary
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
