"""Figures for reviewers: what the data look like and what the models found.

The package has one small module per job:

- :mod:`~analysis.figures.style`: the Okabe-Ito palette, :data:`FIGURE_STYLE` and
  :func:`save_figure` (SVG and 300-dpi PNG, atomically and byte-identically);
- :mod:`~analysis.figures.table`: the figure table, one row per family (inputs, caption, report
  category and label, per outcome or not, the planned model it needs, the drawing function); the
  Snakemake rules, `rule all` and the report take the figures from it;
- :mod:`~analysis.figures.jobs`: one figure job (read, draw, save), run by
  ``workflow/scripts/figure.py``;
- drawing modules by family: :mod:`~analysis.figures.data` (data flow, missingness, alliance
  ceiling), :mod:`~analysis.figures.trajectories` (symptoms over sessions),
  :mod:`~analysis.figures.episodes` (Jacobson-Truax), :mod:`~analysis.figures.models` (forest
  plot, therapist caterpillar, residual diagnostics), :mod:`~analysis.figures.riclpm` (the
  RI-CLPM's lagged paths), :mod:`~analysis.figures.multiverse` (the specification curves),
  :mod:`~analysis.figures.engagement` (time to dropout, therapists' alliance, the course around
  sudden gains), with the shared pieces in :mod:`~analysis.figures.common`.

Each ``*_figure`` function takes tidy DataFrames (or, for the model figures, the diagnostics the
fit job stored in its fit file) plus the instruments concerned, and returns a matplotlib figure;
nothing is read or written there. Counts of people printed on a figure go through
:func:`analysis.privacy.format_count`, and individual clients' data are drawn only when the
caller says the configuration allows it.

The names of the style and of the table are importable from here (``from analysis.figures import
FIGURE_STYLE, save_figure``); so are the drawing functions (``figures.forest_alliance_figure``),
imported from their module on first use so that reading the table (the Snakefile does) loads no
plotting library.
"""

from __future__ import annotations

import importlib
from typing import Any

from analysis.figures.style import (
    FIGURE_STYLE,
    NEUTRAL_GREY,
    OKABE_ITO,
    PNG_DPI,
    SERIES_COLOURS,
    save_figure,
)
from analysis.figures.table import FAMILIES, FAMILY, FigureFamily, figure_names, figure_paths

# Public names of the drawing and shared modules, by module (imported on first use).
_LAZY = {
    "common": ("binned_means", "instrument_axis_label", "instrument_title",
               "mean_confidence_intervals", "outcome_row"),
    "data": ("alliance_distribution_figure", "data_flow_figure", "data_flow_rows",
             "missingness_figure"),
    "trajectories": ("alliance_within_next_figure", "early_alliance_groups",
                     "trajectories_figure"),
    "episodes": ("jacobson_truax_figure",),
    "models": ("forest_alliance_figure", "residual_diagnostics_figure",
               "therapist_caterpillar_figure", "therapist_effects"),
    "riclpm": ("path_summary", "riclpm_figure"),
    "multiverse": ("curve_order", "specification_curve_figure"),
    "engagement": ("dropout_km_figure", "sudden_gains_figure", "therapist_patient_figure"),
}
# Wording shared with the report and the notebooks (analysis.presentation), as before.
_PRESENTATION = ("adjusted_p_column", "analysis_label", "model_title", "select_alliance_terms",
                 "term_label")
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"analysis.figures.{_WHERE[name]}"), name)
    if name in _PRESENTATION:
        return getattr(importlib.import_module("analysis.presentation"), name)
    raise AttributeError(f"module 'analysis.figures' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE, *_PRESENTATION])


__all__ = [
    "FAMILIES",
    "FAMILY",
    "FIGURE_STYLE",
    "FigureFamily",
    "NEUTRAL_GREY",
    "OKABE_ITO",
    "PNG_DPI",
    "SERIES_COLOURS",
    "figure_names",
    "figure_paths",
    "save_figure",
    *_WHERE,
    *_PRESENTATION,
]
