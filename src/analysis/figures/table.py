"""The figure table: every figure family, what it reads, where it goes and what draws it.

One row (:class:`FigureFamily`) per family of figures. The Snakemake rules are generated from it
(``workflow/rules/figures.smk``: one rule ``figure_<name>`` per row, all running
``workflow/scripts/figure.py``), `rule all` and the reviewer report take the figure files from it
(:func:`figure_paths`), and the figure job looks up its row by name to read its inputs and call
its drawing function (:mod:`analysis.figures.jobs`). A row says:

- ``inputs``: the stage files it reads, as (input name, catalogue name) pairs
  (:mod:`analysis.catalogue`); a figure that prints a count of clients reads ``sessions`` and
  ``episodes`` too (:data:`STUDY_TOTALS`), the totals the count is published against;
- ``model``: the planned model whose primary-analysis fit file it reads as input ``fit`` (the
  fit job stores the diagnostics the figure needs there: :mod:`analysis.models.mixed.diagnostics`);
  a figure with a model is drawn only for the outcomes that model is planned for;
- ``per_outcome``: one figure per outcome (file ``<stem>_<outcome>``) or one in all (``<stem>``);
- ``caption``, ``category``, ``label``: the Snakemake report's caption file under
  ``workflow/report/``, category and label (the reviewer report uses the same caption);
- ``switch``: the optional analysis the figure belongs to (a key of :data:`SWITCHES`, which
  names its configuration switch: the RI-CLPM check, the multiverse, an engagement analysis, power for the next study):
  drawn, and its rule made, only when that analysis is switched on;
- ``draw``: ``module:function`` in this package. The function takes the inputs read (by input
  name), the figure settings (:class:`analysis.settings.FigureSettings`) and the outcome (None
  for a figure of all outcomes) and returns a matplotlib figure.

This module imports nothing heavy: the Snakefile reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from analysis.catalogue import FIGURES, FIT_FILE, path

#: The analysis of the fit file a figure with a model reads.
FIT_ANALYSIS = "primary"
#: The input name of that fit file.
FIT_INPUT = "fit"
EXTENSIONS = ("svg", "png")


@dataclass(frozen=True)
class FigureFamily:
    """One row of the figure table (see the module docstring)."""

    name: str
    stem: str
    inputs: tuple[tuple[str, str], ...]
    caption: str
    category: str
    label: str
    draw: str
    per_outcome: bool = False
    model: str | None = None
    subject: str = "all"
    switch: str | None = None

    @property
    def rule(self) -> str:
        """The Snakemake rule that draws it."""
        return f"figure_{self.name}"

    def file(self, extension: str, outcome: str = "{outcome}", folder: str = FIGURES) -> str:
        """The figure's file (``{outcome}`` stays a wildcard unless an outcome is given)."""
        stem = f"{self.stem}_{outcome}" if self.per_outcome else self.stem
        return f"{folder}/{stem}.{extension}"

    @property
    def log(self) -> str:
        return f"logs/{self.rule}/{{outcome}}.log" if self.per_outcome else f"logs/{self.rule}.log"

    def input_paths(self) -> dict[str, str]:
        """What the rule reads, by input name: catalogue files and the model's fit file."""
        paths = {name: path(entry) for name, entry in self.inputs}
        if self.model is not None:
            paths[FIT_INPUT] = (FIT_FILE.replace("{model}", self.model)
                                .replace("{analysis}", FIT_ANALYSIS))
        return paths

    def report_labels(self) -> dict[str, str]:
        """The Snakemake report's labels of the figure."""
        return {"figure": self.label, "outcome": "{outcome}" if self.per_outcome else self.subject}

    def outcomes(self, outcomes: Sequence[str], fits: Iterable[tuple[str, str, str]]
                 ) -> list[str]:
        """The outcomes this figure is drawn for, given the planned fits
        ``(outcome, model, analysis)``: every outcome, or those its model is planned for."""
        if self.model is None:
            return list(outcomes)
        planned = {(outcome, model) for outcome, model, analysis in fits
                   if analysis == FIT_ANALYSIS}
        return [outcome for outcome in outcomes if (outcome, self.model) in planned]

    @property
    def module_path(self) -> Path:
        """The source file of the drawing module (the rule's code input, with what it imports)."""
        return Path(__file__).resolve().parent / f"{self.draw.split(':')[0]}.py"

    def drawing_function(self) -> Callable[..., Any]:
        """The function that draws it (imported on demand: a job imports only its own module)."""
        module, function = self.draw.split(":")
        return getattr(importlib.import_module(f"analysis.figures.{module}"), function)


#: The optional analyses a figure can belong to (``switch``), with the setting that switches
#: each on; :attr:`analysis.study.Study.switched_on` lists those a study runs.
SWITCHES = {
    "riclpm": "models.riclpm.run",
    "multiverse": "multiverse.run",
    "dropout": "engagement.dropout.run",
    "therapist_patient": "engagement.therapist_patient.run",
    "sudden_gains": "engagement.sudden_gains.run",
    "power": "power.run",
}

#: The inputs that give the totals a count of clients in a figure is part of (complementary
#: suppression: :func:`analysis.figures.common.client_totals`).
STUDY_TOTALS = (("sessions", "sessions"), ("episodes", "episodes"))

#: The figure table, in the order figures are listed.
FAMILIES: tuple[FigureFamily, ...] = (
    FigureFamily("forest", "forest_alliance", (("models", "models"),),
                 "figure_forest_alliance.rst", "models", "alliance terms (forest plot)",
                 "models:draw_forest"),
    FigureFamily("data_flow", "data_flow", (("flow", "data_flow"),),
                 "figure_data_flow.rst", "data", "data flow", "data:draw_data_flow"),
    FigureFamily("missingness", "missingness", (("sessions", "sessions"), ("scores", "scores")),
                 "figure_missingness.rst", "data", "dropout and missing data",
                 "data:draw_missingness"),
    FigureFamily("alliance_distribution", "alliance_distribution", (("scores", "scores"),),
                 "figure_alliance_distribution.rst", "instruments",
                 "alliance distribution (ceiling)", "data:draw_alliance_distribution",
                 subject="alliance"),
    FigureFamily("trajectories", "trajectories", (("derived", "derived"),),
                 "figure_trajectories.rst", "data", "trajectories by early alliance",
                 "trajectories:draw_trajectories", per_outcome=True),
    FigureFamily("alliance_within_next", "alliance_within_next",
                 (("derived", "derived"), *STUDY_TOTALS),
                 "figure_alliance_within_next.rst", "data",
                 "within-client alliance and next session", "trajectories:draw_alliance_within_next",
                 per_outcome=True),
    FigureFamily("jacobson_truax", "jacobson_truax",
                 (("episodes", "episodes"), ("parameters", "jacobson_truax_parameters"),
                  ("sessions", "sessions")),
                 "figure_jacobson_truax.rst", "instruments", "Jacobson-Truax plot",
                 "episodes:draw_jacobson_truax", per_outcome=True),
    FigureFamily("therapist_caterpillar", "therapist_caterpillar", (),
                 "figure_therapist_caterpillar.rst", "models", "therapist random intercepts",
                 "models:draw_therapist_caterpillar", per_outcome=True, model="R3"),
    FigureFamily("residuals", "residuals", STUDY_TOTALS,
                 "figure_residuals.rst", "diagnostics", "residual diagnostics (M2)",
                 "models:draw_residuals", per_outcome=True, model="M2"),
    # the RI-CLPM check and the multiverse (drawn when switched on)
    FigureFamily("riclpm", "riclpm", (("riclpm", "riclpm"), ("riclpm_fit", "riclpm_fit")),
                 "figure_riclpm.rst", "models", "RI-CLPM lagged paths", "riclpm:draw_riclpm",
                 per_outcome=True, switch="riclpm"),
    FigureFamily("specification_curve", "specification_curve", (("multiverse", "multiverse"),),
                 "figure_specification_curve.rst", "sensitivity", "specification curve",
                 "multiverse:draw_specification_curve", switch="multiverse"),
    # engagement (analysis.engagement; drawn when its analysis is switched on)
    FigureFamily("dropout_km", "dropout_km", (("km", "dropout_km"),),
                 "figure_dropout_km.rst", "engagement", "time to dropout by early alliance",
                 "engagement:draw_dropout_km", subject="alliance", switch="dropout"),
    FigureFamily("therapist_patient", "therapist_patient",
                 (("points", "therapist_patient_points"), ("table", "therapist_patient_alliance")),
                 "figure_therapist_patient.rst", "engagement",
                 "therapist mean alliance and clients' change",
                 "engagement:draw_therapist_patient", per_outcome=True,
                 switch="therapist_patient"),
    FigureFamily("sudden_gains", "sudden_gains", (("course", "sudden_gains_course"),),
                 "figure_sudden_gains.rst", "engagement", "course around sudden gains",
                 "engagement:draw_sudden_gains", per_outcome=True, switch="sudden_gains"),
    # planning the next study (analysis.power; drawn when power.run is true, or by `make power`)
    FigureFamily("power_curve", "power_curve", (("power", "power"),),
                 "figure_power_curve.rst", "power", "power curve of the next study",
                 "power:draw_power_curve", switch="power"),
)

#: The table by family name.
FAMILY: dict[str, FigureFamily] = {family.name: family for family in FAMILIES}


def figure_names(outcomes: Sequence[str], fits: Iterable[tuple[str, str, str]],
                 switched_on: Iterable[str] = ()) -> list[str]:
    """Every figure a study asks for, as file names without extension, in table order.

    Parameters
    ----------
    outcomes : sequence of str
        ``analysis.outcomes``.
    fits : iterable of (outcome, model, analysis)
        The planned fits (a figure with a model needs that model's primary fit).
    switched_on : iterable of str
        The optional analyses switched on (:attr:`analysis.study.Study.switched_on`, keys of
        :data:`SWITCHES`); a figure with a ``switch`` is drawn only when its analysis is among
        them.
    """
    fits = list(fits)
    names = []
    for family in switched_on_families(switched_on):
        if not family.per_outcome:
            names.append(family.stem)
            continue
        names += [f"{family.stem}_{outcome}" for outcome in family.outcomes(outcomes, fits)]
    return names


def switched_on_families(switched_on: Iterable[str] = ()) -> list[FigureFamily]:
    """The rows drawn when the optional analyses ``switched_on`` run (keys of
    :data:`SWITCHES`): every row without a switch, and those whose analysis is on."""
    switched_on = set(switched_on)
    unknown = sorted(switched_on - set(SWITCHES))
    if unknown:
        raise ValueError(f"unknown analysis switch {unknown[0]!r}; known: {', '.join(SWITCHES)}")
    return [family for family in FAMILIES if family.switch is None or family.switch in switched_on]


def figure_paths(outcomes: Sequence[str], fits: Iterable[tuple[str, str, str]],
                 switched_on: Iterable[str] = (), folder: str = FIGURES) -> list[str]:
    """The SVG and PNG path of every figure of :func:`figure_names`."""
    return [f"{folder}/{name}.{extension}" for name in figure_names(outcomes, fits, switched_on)
            for extension in EXTENSIONS]


def planned(fits: Iterable[Any]) -> list[tuple[str, str, str]]:
    """``(outcome, model, analysis)`` of planned fits (:class:`analysis.models.mixed.specs.ResolvedFit`)."""
    return [(fit.outcome, fit.model, fit.analysis) for fit in fits]


__all__ = ["FAMILIES", "FAMILY", "FIT_ANALYSIS", "FIT_INPUT", "FigureFamily", "SWITCHES",
           "figure_names", "figure_paths", "planned", "switched_on_families"]
