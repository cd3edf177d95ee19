"""The power stage's settings: the design grid, the effects, the simulated studies and their seeds.

:func:`power_settings` resolves the ``power`` section of the checked configuration (defaults from
``workflow/schemas/config.schema.yaml``; see config/README.md) into :class:`PowerSettings`:

- the designs: every combination of ``power.grid.therapists``, ``clients_per_therapist``,
  ``sessions`` and ``dropout`` (a per-session hazard of ending treatment; ``null`` = the hazard
  observed in this study);
- the true effects: this study's estimate of the lagged alliance path (DPM) and, for the outcomes
  listed in ``power.smallest_effect``, that smallest effect of interest;
- ``power.simulations`` simulated studies per design and effect (a *cell*), run in jobs of
  ``power.simulations_per_job`` (one Snakemake job per batch, so a cluster spreads them);
- the seeds: simulated study ``k`` of a design has a seed made from ``study.seed``, the outcome,
  the design and ``k`` (:func:`study_seed`), the same for both effects (common random numbers:
  the estimate and the smallest effect are compared on the same simulated clients), whatever the
  batch size.

This module imports nothing heavy: the Snakefile reads it.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from analysis.errors import ConfigError
from analysis.settings import Settings

#: The planned fits the generating parameters are read from (:mod:`analysis.power.parameters`).
REQUIRED_MODELS = ("DPM", "DPM-reverse", "M2", "M3", "R3")
#: The estimators whose power is simulated: the primary dynamic panel model and the conventional M2.
ESTIMATORS = ("DPM", "M2")
#: The true effects: this study's DPM estimate, and the configured smallest effect of interest.
EFFECT_ESTIMATE = "estimate"
EFFECT_SMALLEST = "smallest_effect"
EFFECT_KINDS = (EFFECT_ESTIMATE, EFFECT_SMALLEST)
#: The significance level of the simulated tests (METHODS 10: p < .05).
ALPHA = 0.05
#: Digits of a batch number in its file name.
BATCH_WIDTH = 4


@dataclass(frozen=True)
class Design(Settings):
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
    designs: tuple[Design, ...]
    smallest_effects: dict[str, float]
    simulations: int
    simulations_per_job: int
    seed: int
    alpha: float = ALPHA
    #: The models of REQUIRED_MODELS that ``models.run`` leaves out (power cannot run then).
    missing_models: tuple[str, ...] = ()

    def effects(self, outcome: str) -> list[str]:
        """The true effects simulated for ``outcome``: the estimate, and the smallest effect of
        interest where one is configured."""
        return [EFFECT_ESTIMATE] + ([EFFECT_SMALLEST] if outcome in self.smallest_effects
                                    else [])

    def design(self, design_id: str) -> Design:
        for design in self.designs:
            if design.id == design_id:
                return design
        raise ConfigError(f"power.grid has no design {design_id!r}.")

    def batches(self) -> list[tuple[int, int]]:
        """``(first, count)`` of each job of a cell: consecutive simulated studies."""
        size = self.simulations_per_job
        return [(first, min(size, self.simulations - first))
                for first in range(0, self.simulations, size)]

    def cells(self) -> list[tuple[str, Design, str]]:
        """Every ``(outcome, design, effect)``, in table order."""
        return [(outcome, design, effect) for outcome in self.outcomes
                for design in self.designs for effect in self.effects(outcome)]

    def batch_keys(self) -> list[dict[str, str]]:
        """The wildcards of every batch file: ``outcome, design, effect, batch``."""
        return [{"outcome": outcome, "design": design.id, "effect": effect,
                 "batch": f"{number:0{BATCH_WIDTH}d}"}
                for outcome, design, effect in self.cells()
                for number in range(len(self.batches()))]


@dataclass(frozen=True)
class PowerBatchSettings(Settings):
    """One job: simulated studies ``first .. first + count - 1`` of one cell.

    ``fits`` holds the planned DPM and M2 of the outcome (``ResolvedFit.as_dict()``), fitted to
    every simulated study as the pipeline fits them; ``max_lag_gap`` is the study's lag rule.
    """

    outcome: str
    design: Design
    effect: str
    smallest_effect: float | None
    first: int
    count: int
    seed: int
    alpha: float
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_lag_gap: int = 1


def study_seed(seed: int, outcome: str, design: Design, index: int) -> int:
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
        designs.append(Design(int(therapists), int(per), int(sessions),
                              None if dropout is None else float(dropout)))
    if len({design.id for design in designs}) != len(designs):
        raise ConfigError("power.grid: a design is listed twice; list each value once.")
    missing = tuple(model for model in REQUIRED_MODELS if model not in models_run)
    run = bool(section["run"])
    if run and missing:
        raise ConfigError(
            f"power.run is true but models.run leaves out {', '.join(missing)}: the simulated "
            f"studies are drawn from the fits of {', '.join(REQUIRED_MODELS)}; add them to "
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
        fits={name: dict(fits[name]) for name in ESTIMATORS}, max_lag_gap=int(max_lag_gap))
