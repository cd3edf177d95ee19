"""One figure job: read a family's inputs, draw the figure, save it.

``workflow/scripts/figure.py`` calls :func:`run_figure_job` with the family's name (from the
figure table, :mod:`analysis.figures.table`), the rule's inputs and params. Inputs are read by
their kind: a fit file (``.json``) as a dict, any other stage file with
:func:`analysis.io.read_table` (checked against its contract). Only the family's drawing module
is imported, so a job loads what its own figure needs and nothing else (no model engine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from analysis.figures.style import save_figure
from analysis.figures.table import FAMILY, FigureFamily
from analysis.io import read_json, read_table
from analysis.settings import FigureSettings


def read_inputs(family: FigureFamily, paths: Mapping[str, Any]) -> dict[str, Any]:
    """The family's inputs, read, by input name (other entries of ``paths`` are ignored)."""
    read = {}
    for name in family.input_paths():
        path = Path(str(_get(paths, name)))
        read[name] = read_json(path) if path.suffix == ".json" else read_table(path)
    return read


def make_figure(family_name: str, inputs: Mapping[str, Any], settings: FigureSettings,
                outcome: str | None = None) -> Any:
    """The figure of one family from its inputs already read (by input name)."""
    family = FAMILY[family_name]
    return family.drawing_function()(inputs, settings, outcome if family.per_outcome else None)


def run_figure_job(family_name: str, paths: Mapping[str, Any], params: Mapping[str, Any],
                   outcome: str | None, svg: str | os.PathLike[str],
                   png: str | os.PathLike[str]) -> None:
    """Read, draw and save one figure (the body of ``workflow/scripts/figure.py``)."""
    settings = FigureSettings.from_params(params)
    figure = make_figure(family_name, read_inputs(FAMILY[family_name], paths), settings, outcome)
    save_figure(figure, svg, png, dpi=settings.png_dpi)


def _get(container: Any, name: str) -> Any:
    # Snakemake's input is a named list; tests pass dicts.
    if isinstance(container, Mapping):
        return container[name]
    return getattr(container, name)


__all__ = ["make_figure", "read_inputs", "run_figure_job"]
