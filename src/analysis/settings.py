"""Typed settings of each stage: what a stage reads, and nothing else.

:mod:`analysis.study` resolves the configuration once into these frozen dataclasses. Each stage
function takes the settings it needs (never the configuration), and each Snakemake rule passes
them as ``params`` in their plain form (:meth:`Settings.params`), so that Snakemake's params
trigger reruns a stage exactly when one of its settings changes. A script turns the params back
into settings with :meth:`Settings.from_params`.

Instruments travel the same way: a stage holds ``instruments``, a mapping from instrument key to
the declaration keys the stage reads (:data:`analysis.instruments.STAGE_READS`), and builds its
:class:`~analysis.instruments.Instrument` objects with :meth:`Settings.registry`.

This module imports nothing heavy: the Snakefile and every job import it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from analysis.instruments import Instrument, registry_from_params


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
    missing_values: tuple[str | float, ...] = ()
    value_labels: bool = True
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

    by: str = "session"
    window_days: int = 3
    orphan_outcomes: str = "reject"
    unmatched_sessions: str = "keep"


@dataclass(frozen=True)
class IngestSettings(Settings):
    inputs: tuple[InputTable, ...]
    linking: LinkingSettings
    key_env: str
    instruments: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class QualitySettings(Settings):
    """The data-quality gate after ingest (``quality`` in config)."""

    max_reject_share: float = 0.2
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
    caseness_rule: str = "any_outcome"
    recovery_rule: str = "all_outcomes"
    reliable_change_rule: str = "any_without_opposite"
    rci_criterion: float = 1.96
    reliability: dict[str, float] = field(default_factory=dict)
    functional_norms: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeriveSettings(Settings):
    """The derived session variables (``analysis`` in config)."""

    alliance: str
    outcomes: tuple[str, ...]
    max_lag_gap: int = 1
    max_lag_days: int | None = None
    early_sessions: int = 3
    early_min_observed: int = 2


# ---------------------------------------------------------------------------------------------
# models


@dataclass(frozen=True)
class CrossCheckSettings(Settings):
    agreement_tolerance: float
    max_clients: int


@dataclass(frozen=True)
class PrivacySettings(Settings):
    """Publication settings every published table and figure follows (``privacy``)."""

    min_cell_count: int = 10
    show_individual_trajectories: bool = False


@dataclass(frozen=True)
class FigureSettings(Settings):
    alliance: str
    outcomes: tuple[str, ...]
    instruments: dict[str, dict[str, Any]]
    privacy: PrivacySettings
    png_dpi: int = 300


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

    min_share: float = 0.5
    max_waves: int | None = 10
    origin: str = "client"


@dataclass(frozen=True)
class RiclpmSettings(Settings):
    """The RI-CLPM check (``models.riclpm`` in config): waves, innovations, free-paths version.

    ``sessions``: an explicit number of waves (the first K sessions from the origin) or None,
    the waves chosen from the data by ``waves`` (``models.panel``). ``equal_innovations``: the
    innovation variances and covariance held equal over waves.
    """

    sessions: int | None = None
    free_paths_sensitivity: bool = True
    equal_innovations: bool = True
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
    specifications_per_job: int = 64
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
    proxy_min_sessions: int = 4
    proxy_active_weeks: float | None = 4.0


@dataclass(frozen=True)
class DropoutHazardSettings(Settings):
    """What one outcome's hazard model of dropout reads: session as a line (None) or a cubic
    B-spline with this many df (``engagement.dropout.session_spline_df``)."""

    session_spline_df: int | None = None


@dataclass(frozen=True)
class SuddenGainSettings(Settings):
    """The criteria of sudden gains (``engagement.sudden_gains``) and each outcome's direction
    (``lower_is_better`` or ``higher_is_better``, from the instrument registry)."""

    directions: dict[str, str]
    cutoff: float | None = None
    crit2_pct: float | None = 0.25
    crit3: bool = True
    identify_1to2: bool = False
    window: int = 3
    min_gains: int = 10


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
    "PrivacySettings",
    "QualitySettings",
    "ScoreSettings",
    "Settings",
    "SuddenGainSettings",
]
