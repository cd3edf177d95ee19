"""The resolved study: the one reader of the configuration.

:func:`resolve_study` turns the checked configuration (``config/config.yaml`` after the JSON
schema has filled its defaults) into one frozen :class:`Study`: the instrument registry, the
alliance and outcome instruments, each stage's typed settings (:mod:`analysis.settings`), the
planned model fits, and the privacy, figure and report options. Nothing else in the package reads
the configuration: stages take the settings they need, and the Snakemake rules pass exactly those
settings as ``params`` (:meth:`Study.rule_params`), so an edit reruns the stages that read it and
nothing else.

Every default lives in one place, the schema (``workflow/schemas/config.schema.yaml``); the
checks that a schema cannot express (an instrument name that must exist, a custom model's formula)
happen here, with messages that name the config key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from analysis.config import check_config, load_config, suggest
from analysis.errors import ConfigError
from analysis.ingest.tables import status_text
from analysis.instrument_declarations import build_registry
from analysis.instruments import Instrument, get_instrument
from analysis.models.mixed.specs import (
    BUILTIN_MODELS,
    ModelSpec,
    ResolvedFit,
    Sensitivity,
    custom_model_fields,
    enabled_analyses,
    find_fit,
    model_specs,
    plan_fits,
    planned_cross_checks,
    resolved_model_specs,
)
from analysis.settings import (
    CrossCheckSettings,
    DeriveSettings,
    DropoutHazardSettings,
    DropoutSettings,
    EngagementSettings,
    EpisodeSettings,
    FigureSettings,
    IngestSettings,
    InputTable,
    LinkingSettings,
    ModelSettings,
    PrivacySettings,
    QualitySettings,
    ReportSettings,
    ScoreSettings,
    SuddenGainSettings,
)
from analysis.settings import (  # the RI-CLPM check and the multiverse
    MultiverseDataSettings,
    MultiverseFitSettings,
    MultiverseSettings,
    MultiverseSummarySettings,
    PanelWaveSettings,
    RiclpmSettings,
)
from analysis.models.multiverse.specifications import (
    MIN_RESAMPLES,
    Specification,
    chunk_specifications,
    enumerate_specifications,
    primary_choices,
    resolve_choices,
)
from analysis.settings import PowerSettings, power_settings


#: Where the Snakefile puts the resolved study's plain values (:meth:`Settings.params` of
#: :attr:`Study.report`) in ``config`` for the Snakemake report's description
#: (``workflow/report/workflow.rst``), whose template sees nothing else.
RESOLVED_STUDY_KEY = "resolved_study"


@dataclass(frozen=True)
class Study:
    """Everything a run needs to know, resolved once from the configuration.

    Attributes
    ----------
    registry : dict of str to Instrument
        Built-in and declared instruments.
    alliance : Instrument
        ``analysis.alliance``.
    outcomes : tuple of Instrument
        ``analysis.outcomes``, in config order.
    inputs : tuple of InputTable
        ``inputs``, in config order.
    fits : tuple of ResolvedFit
        Every planned model fit (:func:`analysis.models.mixed.specs.plan_fits`).
    """

    registry: dict[str, Instrument]
    alliance: Instrument
    outcomes: tuple[Instrument, ...]
    inputs: tuple[InputTable, ...]
    linking: LinkingSettings
    key_env: str
    privacy: PrivacySettings
    quality: QualitySettings
    derive: DeriveSettings
    episodes: EpisodeSettings
    models: ModelSettings
    fits: tuple[ResolvedFit, ...]
    figures: FigureSettings
    report: ReportSettings
    config_sha256: str = ""
    riclpm: RiclpmSettings | None = None  # None: models.riclpm.run is false
    multiverse: MultiverseSettings | None = None  # None: multiverse.run is false
    multiverse_specifications: tuple[Specification, ...] = ()
    seed: int = 0
    alpha: float = 0.05
    panel_waves: PanelWaveSettings = PanelWaveSettings()  # models.panel: the panel models' waves
    engagement: EngagementSettings = EngagementSettings()  # engagement: dropout, therapists, gains
    power: PowerSettings | None = None  # power: planning the next study (power.run: in rule all)
    manuscript: bool = True  # manuscript.run: the outputs of results/manuscript

    # -- lookups ------------------------------------------------------------------------------

    @property
    def has_therapist_ids(self) -> bool:
        """Whether a sessions table maps the therapist role (the data may still have too few)."""
        return any(table.kind == "sessions" and "therapist" in table.columns
                   for table in self.inputs)

    def design_notes(self) -> list[str]:
        """What this design will not estimate, said before anything runs."""
        if self.has_therapist_ids:
            return []
        split = (" The therapist and patient parts of the alliance (engagement.therapist_patient) "
                 "are not estimated, and the dropout model's standard errors are clustered by "
                 "client." if self.engagement.switched_on else "")
        return ["No therapist column is mapped (inputs.<sessions table>.columns.therapist): "
                "every model is specified without a therapist term, the therapist ICC (R3) and "
                "the therapist figures are not estimated, M4's standard errors are clustered by "
                "client, and the dynamic panel model's standard errors are robust by client."
                + split]

    @property
    def switched_on(self) -> tuple[str, ...]:
        """The optional analyses this study runs, by name: ``riclpm`` (``models.riclpm.run``),
        ``multiverse`` (``multiverse.run``), the engagement analyses switched on and ``power``
        (``power.run``) (the figure table's switches, :data:`analysis.figures.table.SWITCHES`)."""
        return (*(("riclpm",) if self.riclpm is not None else ()),
                *(("multiverse",) if self.multiverse is not None else ()),
                *self.engagement.switched_on,
                *(("power",) if self.power.run else ()))

    @property
    def outcome_keys(self) -> tuple[str, ...]:
        return tuple(instrument.key for instrument in self.outcomes)

    @property
    def input_paths(self) -> dict[str, str]:
        """The declared input files, by table name (relative to the project folder)."""
        return {table.name: table.path for table in self.inputs}

    @property
    def ingested_instruments(self) -> list[str]:
        """Instruments some input table declares, in registry order."""
        declared = {key for table in self.inputs for key in table.instruments}
        return [key for key in self.registry if key in declared]

    def fit(self, outcome: str, model: str, analysis: str) -> ResolvedFit:
        """The planned fit ``(outcome, model, analysis)`` (a ConfigError if not planned)."""
        return find_fit(self.fits, outcome, model, analysis)

    @property
    def cross_checks(self) -> list[tuple[str, str]]:
        return planned_cross_checks(self.fits)

    @property
    def model_specs(self) -> dict[str, ModelSpec]:
        """Built-in and custom model specifications, by id (the custom ones as resolved once
        from ``models.custom``)."""
        return resolved_model_specs(self.models)

    @property
    def models_run(self) -> list[str]:
        """Models with at least one planned fit, in the order of the specification table."""
        planned = {fit.model for fit in self.fits}
        return [model for model in self.model_specs if model in planned]

    @property
    def analyses(self) -> list[Sensitivity]:
        """The primary analysis and every sensitivity analysis switched on."""
        return enabled_analyses(self.models.sensitivity, self.alliance)

    def instrument_params(self, stage: str, keys: list[str] | tuple[str, ...]) -> dict[str, dict]:
        """What ``stage`` reads of the instruments ``keys`` (:meth:`Instrument.params`)."""
        return {key: self.registry[key].params(stage) for key in keys}

    # -- what each rule passes to its stage ---------------------------------------------------

    def fit_settings(self, outcome: str, model: str, analysis: str) -> dict[str, Any]:
        """A fit job's params: its resolved specification, and the instrument R2 reads."""
        fit = self.fit(outcome, model, analysis)
        instruments = [fit.outcome] if fit.kind == "alpha" else []
        return {"fit": fit.as_dict(), "instruments": self.instrument_params("models", instruments)}

    def fit_jobs(self) -> dict[str, list[ResolvedFit]]:
        """The planned fits grouped into jobs, by a job name made of their keys: every fit of
        one (outcome, model) together (``models.fit_jobs: per_model``), or one fit per job
        (``per_fit``)."""
        jobs: dict[str, list[ResolvedFit]] = {}
        for fit in self.fits:
            key = (fit.outcome, fit.model) if self.models.fit_jobs == "per_model" else (
                fit.outcome, fit.model, fit.analysis)
            # rule names must be identifiers: "DPM-reverse" -> "DPM_reverse"
            jobs.setdefault(re.sub(r"\W", "_", "_".join(key)), []).append(fit)
        return jobs

    def cross_check_jobs(self) -> dict[str, list[str]]:
        """The models cross-checked by the second engine, by outcome (one job per outcome)."""
        jobs: dict[str, list[str]] = {}
        for outcome, model in self.cross_checks:
            jobs.setdefault(outcome, []).append(model)
        return jobs

    def cross_check_settings(self) -> CrossCheckSettings:
        return CrossCheckSettings(agreement_tolerance=self.models.agreement_tolerance,
                                  max_clients=self.models.cross_check_max_clients)

    # -- the multiverse (analysis.models.multiverse): what each of its rules passes -----------

    @property
    def multiverse_chunks(self) -> list[tuple[Specification, ...]]:
        """The multiverse's jobs: consecutive specifications, ``specifications_per_job`` each."""
        if self.multiverse is None:
            return []
        return chunk_specifications(self.multiverse_specifications,
                                    self.multiverse.specifications_per_job)

    def multiverse_data_settings(self, prorating: str) -> MultiverseDataSettings:
        """A data-variant job's params: the scoring rules of alliance and outcomes, the lags."""
        if self.multiverse is None or prorating not in self.multiverse.choices["prorating"]:
            raise ConfigError(f"multiverse.choices.prorating has no option {prorating!r}.")
        keys = [self.alliance.key, *self.outcome_keys]
        return MultiverseDataSettings(
            prorating=prorating,
            lag_gaps=tuple(int(gap) for gap in self.multiverse.choices["lag_gap"]),
            instruments=self.instrument_params("score", keys), derive=self.derive)

    def multiverse_fit_settings(self, chunk: int) -> MultiverseFitSettings:
        """A multiverse job's params (``chunk`` counts from 0 in :attr:`multiverse_chunks`)."""
        specifications = self.multiverse_chunks[chunk]
        outcomes = sorted({spec.outcome for spec in specifications})
        # the pipeline's M2 (the conventional model) and DPM (its wave settings) per outcome
        planned = plan_fits(ModelSettings(run=("M2", "DPM"), sensitivity={},
                                          completers_min_sessions=self.models.completers_min_sessions,
                                          panel=self.models.panel),
                            self.alliance, [self.registry[key] for key in outcomes])
        fits = {(fit.outcome if fit.model == "M2" else f"{fit.outcome}/{fit.model}"): fit.as_dict()
                for fit in planned if fit.analysis == "primary"}
        return MultiverseFitSettings(
            specifications=tuple(spec.as_dict() for spec in specifications),
            fits=fits,
            completers_min_sessions=self.models.completers_min_sessions,
            resamples=self.multiverse.resamples,
            # the seed matters only to the joint test: without it a new seed reruns nothing
            seed=self.seed if self.multiverse.resamples else 0)

    def multiverse_summary_settings(self) -> MultiverseSummarySettings:
        """What combining the multiverse reads: the level, the privacy threshold, the signs."""
        signs = {}
        for key in self.outcome_keys:
            # as plan_fits: -1 when alliance and outcome point in opposite directions
            same = self.registry[key].direction == self.alliance.direction
            signs[key] = 1 if same else -1
        return MultiverseSummarySettings(
            alpha=self.alpha, min_cell_count=self.privacy.min_cell_count, expected_signs=signs,
            resamples=self.multiverse.resamples if self.multiverse else 0)



def resolve_study(config: Mapping[str, Any]) -> Study:
    """The :class:`Study` of a checked configuration (defaults already filled by the schema).

    Raises
    ------
    ConfigError
        Naming the key: an unknown instrument, a custom model that cannot be fitted, an episode
        setting for an instrument that does not exist, ...
    """
    registry = build_registry(config.get("instruments"))
    analysis = config["analysis"]
    alliance = get_instrument(registry, analysis["alliance"], "analysis.alliance")
    outcomes = tuple(get_instrument(registry, key, "analysis.outcomes")
                     for key in analysis["outcomes"])
    if alliance.key in analysis["outcomes"]:
        raise ConfigError(
            f"analysis.outcomes lists {alliance.key!r}, the alliance instrument "
            "(analysis.alliance); the outcomes are the symptom measures."
        )
    inputs = tuple(input_table(name, table, registry) for name, table in config["inputs"].items())
    if not any(table.kind == "sessions" for table in inputs):
        raise ConfigError(
            "inputs: declare one table with kind: sessions (the session records with therapist "
            "ids)."
        )
    declared = {key for table in inputs for key in table.instruments}
    for key, where in [(alliance.key, "analysis.alliance"),
                       *[(outcome.key, "analysis.outcomes") for outcome in outcomes]]:
        if key not in declared:
            raise ConfigError(
                f"{where}: no input table declares instrument {key!r}; add it under "
                f"inputs.<table>.instruments (declared: {', '.join(sorted(declared)) or 'none'})."
            )
    privacy = config["privacy"]
    publication = PrivacySettings(min_cell_count=int(privacy["min_cell_count"]),
                                  show_individual_trajectories=bool(
                                      privacy["show_individual_trajectories"]))
    derive = DeriveSettings(
        alliance=alliance.key,
        outcomes=tuple(outcome.key for outcome in outcomes),
        max_lag_gap=int(analysis["max_lag_gap"]),
        max_lag_days=analysis.get("max_lag_days"),
        early_sessions=int(analysis["early_sessions"]),
        early_min_observed=int(analysis["early_min_observed"]),
    )
    models_config = config["models"]
    panel_waves = panel_wave_settings(models_config["panel"])
    outcome_keys = [outcome.key for outcome in outcomes]
    models = ModelSettings(
        run=tuple(models_config["run"]),
        sensitivity=dict(models_config["sensitivity"]),
        # models.custom, read here once: the stages and the report take the resolved models
        custom=custom_model_fields(model_specs(models_config["custom"], outcome_keys)),
        completers_min_sessions=int(analysis["completers_min_sessions"]),
        cross_check_max_clients=int(models_config["cross_check_max_clients"]),
        agreement_tolerance=float(models_config["agreement_tolerance"]),
        fit_jobs=str(models_config["fit_jobs"]),
        # the wave choice of the dynamic panel models: models.panel, resolved once
        panel=panel_waves.params(),
    )
    linking = LinkingSettings(**config["linking"])
    fits = plan_fits(models, alliance, outcomes)
    engagement = engagement_settings(config["engagement"], inputs, outcomes)
    riclpm, multiverse, specifications = _riclpm_and_multiverse(config, outcome_keys, derive)
    quality = QualitySettings(max_reject_share=float(config["quality"]["max_reject_share"]),
                              inputs={table.name: table.path for table in inputs})
    return Study(
        registry=registry,
        alliance=alliance,
        outcomes=outcomes,
        inputs=inputs,
        linking=linking,
        key_env=str(privacy["key_env"]),
        privacy=publication,
        quality=quality,
        derive=derive,
        episodes=_episode_settings(config["episodes"], registry, outcome_keys),
        models=models,
        fits=fits,
        figures=FigureSettings(
            alliance=alliance.key, outcomes=tuple(outcome_keys),
            instruments={key: registry[key].params("figures")
                         for key in [alliance.key, *outcome_keys]},
            privacy=publication, png_dpi=int(config["figures"]["png_dpi"]),
        ),
        report=ReportSettings(
            title=str(config["study"]["name"]),
            seed=int(config["study"]["seed"]),
            ceiling_share=float(config["report"]["ceiling_share"]),
            alpha=float(config["report"]["alpha"]),
            alliance=alliance.key,
            outcomes=tuple(outcome_keys),
            instruments={key: registry[key].params("report")
                         for key in [alliance.key, *outcome_keys]},
            inputs=tuple({"name": table.name, "path": table.path, "layout": table.layout,
                          "format": table.format or Path(table.path).suffix.lstrip(".")}
                         for table in inputs),
            linking=linking,
            key_env=str(privacy["key_env"]),
            privacy=publication,
            max_reject_share=quality.max_reject_share,
            derive=derive,
            episode_rules={name: config["episodes"][name] for name in
                           ("caseness_rule", "recovery_rule", "reliable_change_rule",
                            "rci_criterion")},
            models=models,
            fits=tuple(fit.as_dict() for fit in fits),
            riclpm=riclpm,
            multiverse=multiverse,
            engagement=engagement,
        ),
        config_sha256=_fingerprint(config),
        riclpm=riclpm,
        multiverse=multiverse,
        multiverse_specifications=specifications,
        seed=int(config["study"]["seed"]),
        alpha=float(config["report"]["alpha"]),
        panel_waves=panel_waves,
        engagement=engagement,
        power=power_settings(config["power"], outcome_keys, models.run,
                             int(config["study"]["seed"])),
        manuscript=bool(config["manuscript"]["run"]),
    )


def ingest_settings(study: Study) -> IngestSettings:
    """What ingest reads: the tables, linking, the key's variable and the instruments' items."""
    return IngestSettings(inputs=study.inputs, linking=study.linking, key_env=study.key_env,
                          instruments=study.instrument_params("ingest",
                                                              study.ingested_instruments))


def score_settings(study: Study) -> ScoreSettings:
    """What scoring reads: the scoring rules of every ingested instrument."""
    return ScoreSettings(instruments=study.instrument_params("score",
                                                             study.ingested_instruments))


def load_study(path: str | Path, schema_path: str | Path | None = None) -> Study:
    """The study of a config file (checked against the schema first)."""
    config = load_config(path) if schema_path is None else load_config(path, schema_path)
    return resolve_study(config)


def study_from_dict(config: Mapping[str, Any]) -> Study:
    """The study of a config given as a dict (checked and completed by the schema first)."""
    return resolve_study(check_config(dict(config)))


# ---------------------------------------------------------------------------------------------
# pieces


def _fingerprint(config: Mapping[str, Any]) -> str:
    # SHA-256 of the checked configuration (defaults filled) as canonical JSON: the report's
    # provenance names the exact configuration a run used.
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _riclpm_and_multiverse(config: Mapping[str, Any], outcomes: list[str], derive: DeriveSettings
                           ) -> tuple[RiclpmSettings | None, MultiverseSettings | None,
                                      tuple[Specification, ...]]:
    # models.riclpm and multiverse (see config/README.md); None where switched off.
    section = config["models"]["riclpm"]
    riclpm = (RiclpmSettings(
        sessions=None if section["sessions"] is None else int(section["sessions"]),
        free_paths_sensitivity=bool(section["free_paths_sensitivity"]),
        equal_innovations=bool(section["equal_innovations"]),
        waves=panel_wave_settings(config["models"]["panel"]))
        if section["run"] else None)
    declared = config["multiverse"]
    if not declared["run"]:
        return riclpm, None, ()
    joint = declared["joint_test"]
    resamples = int(joint["resamples"]) if joint["run"] else 0
    if joint["run"] and resamples < MIN_RESAMPLES:
        raise ConfigError(
            f"multiverse.joint_test.resamples is {resamples}: use at least {MIN_RESAMPLES}, so "
            f"that the smallest p-value the test can give (1 / (resamples + 1)) is well below the "
            f"usual levels."
        )
    choices = resolve_choices(declared["choices"], outcomes)
    primary = primary_choices(derive.max_lag_gap)
    multiverse = MultiverseSettings(
        choices=choices, primary=primary,
        specifications_per_job=int(declared["specifications_per_job"]),
        resamples=resamples)
    return riclpm, multiverse, tuple(enumerate_specifications(choices, primary))


def engagement_settings(section: Mapping[str, Any], inputs: tuple[InputTable, ...],
                        outcomes: tuple[Instrument, ...]) -> EngagementSettings:
    """``engagement``: the analyses switched on, with what each of their stages reads."""
    dropout, gains = section["dropout"], section["sudden_gains"]
    weeks = dropout["proxy_active_weeks"]
    spline = dropout["session_spline_df"]
    return EngagementSettings(
        dropout=DropoutSettings(
            status_recorded=any(table.kind == "sessions" and "status" in table.columns
                                for table in inputs),
            ending_recorded=any(table.kind == "sessions" and "ending" in table.columns
                                for table in inputs),
            proxy_min_sessions=int(dropout["proxy_min_sessions"]),
            proxy_active_weeks=None if weeks is None else float(weeks),
        ) if dropout["run"] else None,
        dropout_hazard=DropoutHazardSettings(
            session_spline_df=None if spline is None else int(spline)) if dropout["run"] else None,
        therapist_patient=bool(section["therapist_patient"]["run"]),
        sudden_gains=SuddenGainSettings(
            directions={outcome.key: ("higher_is_better" if outcome.direction == "higher_better"
                                      else "lower_is_better") for outcome in outcomes},
            cutoff=None if gains["cutoff"] is None else float(gains["cutoff"]),
            crit2_pct=None if gains["crit2_pct"] is None else float(gains["crit2_pct"]),
            crit3=bool(gains["crit3"]),
            identify_1to2=bool(gains["identify_1to2"]),
            window=int(gains["window"]),
            min_gains=int(gains["min_gains"]),
        ) if gains["run"] else None,
    )


def panel_wave_settings(section: Mapping[str, Any]) -> PanelWaveSettings:
    """``models.panel``: which sessions are the waves of the panel models."""
    max_waves = section["max_waves"]
    return PanelWaveSettings(min_share=float(section["min_share"]),
                             max_waves=None if max_waves is None else int(max_waves),
                             origin=str(section["origin"]))



def input_table(name: str, table: Mapping[str, Any], registry: Mapping[str, Instrument]
                 ) -> InputTable:
    instruments = {}
    for key, declaration in (table.get("instruments") or {}).items():
        get_instrument(registry, key, f"inputs.{name}.instruments.{key}")
        instruments[key] = {part: declaration[part] for part in ("items", "total")
                            if part in declaration}
    return InputTable(
        name=str(name),
        path=str(table["path"]),
        kind=str(table["kind"]),
        format=table.get("format"),
        delimiter=str(table["delimiter"]),
        encoding=str(table["encoding"]),
        sheet=table["sheet"],
        layout=str(table["layout"]),
        date_format=table.get("date_format"),
        columns={role: str(column) for role, column in table["columns"].items() if column},
        instruments=instruments,
        missing_values=tuple(table["missing_values"]),
        value_labels=bool(table["value_labels"]),
        status_values=status_values(name, table),
        ending_values=ending_values(name, table),
    )


def status_values(name: str, table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``inputs.<name>.status_values`` as text codes, checked against the status column.

    Numbers are written as text the way the export shows them (1 and 1.0 both as "1"), since
    the status column is read as text.
    """
    return coded_values(name, table, "status", "attended",
                        "the values of the status column that mean the session was attended",
                        "the column that holds the session status")


def ending_values(name: str, table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``inputs.<name>.ending_values`` as text codes, checked against the ending column."""
    return coded_values(name, table, "ending", "dropped_out",
                        "the values of the ending column that mean the client dropped out",
                        "the column that records how the episode ended")


def coded_values(name: str, table: Mapping[str, Any], role: str, required: str, listing: str,
                 column: str) -> dict[str, tuple[str, ...]]:
    """The ``<role>_values`` of a sessions table's coded column (status, ending) as text codes:
    set only with the column, the ``required`` category listed, no code under two categories."""
    key = f"{role}_values"
    values = table.get(key) or {}
    has_column = role in (table.get("columns") or {})
    if values and not has_column:
        raise ConfigError(f"inputs.{name}.{key} is set but inputs.{name}.columns.{role} is not: "
                          f"name {column}.")
    if has_column:
        if str(table.get("kind")) != "sessions":
            raise ConfigError(f"inputs.{name}.columns.{role}: a {role} column belongs to a "
                              "table with kind: sessions.")
        if not values.get(required):
            raise ConfigError(f"inputs.{name}.{key}.{required}: list {listing}.")
    seen: dict[str, str] = {}
    out = {}
    for category, codes in values.items():
        texts = []
        for code in codes:
            text = status_text(code)
            if text in seen:
                raise ConfigError(f"inputs.{name}.{key}: {code!r} is listed under both "
                                  f"{seen[text]} and {category}.")
            seen[text] = category
            texts.append(text)
        out[str(category)] = tuple(texts)
    return out





def _episode_settings(section: Mapping[str, Any], registry: Mapping[str, Instrument],
                      outcomes: list[str]) -> EpisodeSettings:
    for part in ("reliability", "functional_norms"):
        for key in section.get(part) or {}:
            get_instrument(registry, key, f"episodes.{part}.{key}")
    return EpisodeSettings(
        outcomes=tuple(outcomes),
        instruments={key: registry[key].params("episodes") for key in outcomes},
        caseness_rule=str(section["caseness_rule"]),
        recovery_rule=str(section["recovery_rule"]),
        reliable_change_rule=str(section["reliable_change_rule"]),
        rci_criterion=float(section["rci_criterion"]),
        reliability={key: float(value) for key, value in (section.get("reliability") or {}).items()},
        functional_norms={key: {"mean": float(value["mean"]), "sd": float(value["sd"])}
                          for key, value in (section.get("functional_norms") or {}).items()},
    )


__all__ = [
    "BUILTIN_MODELS",
    "RESOLVED_STUDY_KEY",
    "Study",
    "ingest_settings",
    "load_study",
    "resolve_study",
    "score_settings",
    "study_from_dict",
    "suggest",
]
