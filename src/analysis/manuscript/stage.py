"""The manuscript step of the workflow: read the run's result tables, write ``results/manuscript``.

``workflow/scripts/manuscript.py`` calls :func:`write_manuscript` with the rule's inputs (the
tables the reviewer report reads, by catalogue name), its params (the report's settings) and its
outputs (by catalogue name: ``manuscript_tables``, ``manuscript_tables_latex``,
``manuscript_tables_standalone``, ``flow_diagram_svg``, ``flow_diagram_pdf``,
``manuscript_methods``). The journal figures have their own jobs
(:func:`analysis.manuscript.figures.write_journal_figure`), which import only what a figure needs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from analysis.io import atomic_path
from analysis.manuscript.apa import manuscript_tables
from analysis.manuscript.figures import journal_font, save_journal_figure
from analysis.manuscript.flow import draw_flow_diagram, flow_diagram
from analysis.manuscript.latex import standalone_latex, tables_latex
from analysis.manuscript.methods import methods_document, methods_html
from analysis.manuscript.word import save_document, tables_document
from analysis.report.inputs import read_report_tables
from analysis.report.view import ReportView
from analysis.study import ReportSettings

log = logging.getLogger(__name__)


def _get(container: Any, name: str) -> Any:
    # Snakemake's input and output are named lists; tests pass dicts.
    if isinstance(container, Mapping):
        return container[name]
    return getattr(container, name)


def _write_text(text: str, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_manuscript(inputs: Any, settings_params: Mapping[str, Any], outputs: Any) -> None:
    """Write the tables (Word, LaTeX), the flow diagram (SVG, PDF) and the methods (Word)."""
    settings = ReportSettings.from_params(settings_params)
    view = ReportView(settings)
    tables = read_report_tables(inputs)
    apa = manuscript_tables(tables.models, tables.random_effects, tables.riclpm,
                            tables.riclpm_fit, tables.multiverse_summary, view)
    title = f"{settings.title}: tables"
    save_document(tables_document(apa, title), _get(outputs, "manuscript_tables"))
    latex_path = Path(str(_get(outputs, "manuscript_tables_latex")))
    _write_text(tables_latex(apa), latex_path)
    _write_text(standalone_latex(latex_path.stem, title),
                _get(outputs, "manuscript_tables_standalone"))
    log.info("wrote %d APA tables (Word and LaTeX)", len(apa))

    diagram = flow_diagram(tables.data_flow, view.outcomes, view.name_of, view.models_run,
                           view.process_label)
    save_journal_figure(draw_flow_diagram(diagram, journal_font()),
                        _get(outputs, "flow_diagram_pdf"), _get(outputs, "flow_diagram_svg"))
    log.info("wrote the flow diagram (%d counts from the published data flow)",
             len(diagram.lines()))

    save_document(methods_document(methods_html(tables, settings), f"{settings.title}: methods"),
                  _get(outputs, "manuscript_methods"))
    log.info("wrote the methods section")


__all__ = ["write_manuscript"]
