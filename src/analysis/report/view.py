"""The study as the report sees it: its settings, with instruments and models looked up once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from analysis.instruments import Instrument
from analysis.models.mixed.specs import (ModelSpec, Sensitivity, enabled_analyses,
                                         resolved_model_specs)
from analysis.settings import ReportSettings


@dataclass(frozen=True)
class ReportView:
    """Typed lookups over :class:`~analysis.settings.ReportSettings` for the report's sections."""

    settings: ReportSettings

    @cached_property
    def registry(self) -> dict[str, Instrument]:
        return self.settings.registry()

    @property
    def alliance(self) -> Instrument:
        return self.registry[self.settings.alliance]

    @property
    def process_label(self) -> str:
        """How the text names the process measure: "alliance" for an alliance instrument (the
        default), else the measure's own label (a study may use another process measure)."""
        construct = str(getattr(self.alliance, "construct", "") or "").lower()
        return "alliance" if "alliance" in construct else self.alliance.label

    @property
    def is_alliance(self) -> bool:
        """Whether the process measure is an alliance measure (the default)."""
        return self.process_label == "alliance"

    @property
    def process_construct(self) -> str:
        """The process measure's construct for titles: "working alliance" for the WAI-SR, else
        its construct as configured (or its label)."""
        construct = str(getattr(self.alliance, "construct", "") or "").strip()
        return construct or self.alliance.label

    @property
    def stronger_process(self) -> str:
        """"a stronger working alliance", or "a higher <label>" for another process measure."""
        if self.is_alliance:
            return f"a stronger {self.process_construct.lower()}"
        from analysis.report.formatting import with_article

        return with_article(f"higher {self.alliance.label}")

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
        return resolved_model_specs(self.settings.models)

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
