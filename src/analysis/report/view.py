"""The study as the report sees it: its settings, with instruments and models looked up once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from analysis.instruments import Instrument
from analysis.models.specs import ModelSpec, Sensitivity, enabled_analyses, model_specs
from analysis.study import ReportSettings


@dataclass(frozen=True)
class ReportView:
    """Typed lookups over :class:`~analysis.study.ReportSettings` for the report's sections."""

    settings: ReportSettings

    @cached_property
    def registry(self) -> dict[str, Instrument]:
        return self.settings.registry()

    @property
    def alliance(self) -> Instrument:
        return self.registry[self.settings.alliance]

    @property
    def outcomes(self) -> list[str]:
        return list(self.settings.outcomes)

    @property
    def labels(self) -> dict[str, str]:
        """Outcome key -> label, in config order."""
        return {key: self.registry[key].label for key in self.outcomes}

    @property
    def min_cell(self) -> int:
        return int(self.settings.privacy.min_cell_count)

    @cached_property
    def specs(self) -> dict[str, ModelSpec]:
        return model_specs(self.settings.models.custom, self.outcomes)

    @cached_property
    def analyses(self) -> list[Sensitivity]:
        return enabled_analyses(self.settings.models.sensitivity, self.alliance)

    @cached_property
    def models_run(self) -> list[str]:
        """Models with a planned fit, in the order of the specification table."""
        planned = {fit["model"] for fit in self.settings.fits}
        return [model for model in self.specs if model in planned]

    def name_of(self, key: Any) -> str:
        """An instrument's label for its key (anything else as it is)."""
        instrument = self.registry.get(str(key))
        return instrument.label if instrument is not None else str(key)
