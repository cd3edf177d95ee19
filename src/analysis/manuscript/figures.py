"""Figures for a journal: the pipeline's figures at column widths, in a font journals accept.

Journals print figures at one column (about 85 mm) or the full page width (about 175 mm), with
lettering of 6-9 pt in a sans-serif (Arial or Helvetica, or a font with their metrics), fonts
embedded. :func:`journal_figure` redraws a figure of the figure table
(:mod:`analysis.figures.table`) from the same inputs, sets it to the column width that fits it
(:func:`column_width`: a figure drawn narrower than :data:`SINGLE_COLUMN_FROM` inches goes in one
column, a wider one across the page; the height scales with it, so the proportions stay), scales
its lettering (kept within :data:`MIN_FONT_PT`-:data:`MAX_FONT_PT`) and its lines by the same
factor, wraps the notes under it to the new width and sets it in :func:`journal_font`.
:func:`save_journal_figure` writes PDF with TrueType fonts embedded (``pdf.fonttype`` 42, which
journals' checkers accept, unlike Type 3) and SVG with text kept as text, both without dates.

The font is the first of :data:`JOURNAL_FONTS` installed: Liberation Sans (Arial's metrics,
Debian's ``fonts-liberation``) where it is, else DejaVu Sans, which ships with matplotlib. The
same machine always gives the same bytes; another machine with other fonts gives other bytes.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from analysis.figures.style import FIGURE_STYLE
from analysis.io import atomic_path

MM_PER_INCH = 25.4
#: Column widths of a two-column journal page (APA journals, Elsevier, Springer: 85-90 and
#: 170-180 mm).
SINGLE_COLUMN_MM = 85.0
DOUBLE_COLUMN_MM = 175.0
#: A figure drawn at most this wide (inches) fits one column; wider ones span the page.
SINGLE_COLUMN_FROM = 6.6
#: The smallest and largest lettering printed (journals ask for 6-9 pt at final size).
MIN_FONT_PT = 6.0
MAX_FONT_PT = 8.0
#: The thinnest line drawn (journals ask for at least 0.25-0.5 pt at final size).
MIN_LINE_PT = 0.5
#: Sans-serif fonts in order of preference; the last ships with matplotlib.
JOURNAL_FONTS = ("Liberation Sans", "Arial", "Helvetica", "Nimbus Sans", "DejaVu Sans")
SVG_SALT = "alliance-outcome-manuscript"


def journal_font() -> str:
    """The first of :data:`JOURNAL_FONTS` that matplotlib finds on this machine."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in JOURNAL_FONTS if name in installed), JOURNAL_FONTS[-1])


def journal_style() -> dict[str, Any]:
    """The matplotlib settings of every manuscript figure (house style, journal lettering)."""
    return {**FIGURE_STYLE, "font.family": journal_font(), "font.size": 7,
            "axes.titlesize": 8, "axes.labelsize": 7, "legend.fontsize": 6.5,
            "xtick.labelsize": 6.5, "ytick.labelsize": 6.5, "pdf.fonttype": 42,
            "ps.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": SVG_SALT}


def column_width(width_inches: float) -> float:
    """The journal width (mm) a figure drawn ``width_inches`` wide goes to."""
    return SINGLE_COLUMN_MM if width_inches <= SINGLE_COLUMN_FROM else DOUBLE_COLUMN_MM


def to_journal_width(figure: Any) -> float:
    """Set ``figure`` to its column width, scaling height and lettering with it; the width in
    mm."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    width, height = figure.get_size_inches()
    target_mm = column_width(width)
    scale = target_mm / MM_PER_INCH / width
    figure.set_size_inches(width * scale, height * scale)
    font = journal_font()
    for text in figure.findobj(Text):
        text.set_fontfamily(font)
        text.set_fontsize(min(MAX_FONT_PT, max(MIN_FONT_PT, float(text.get_fontsize()) * scale)))
    for text in figure.texts:
        # notes under a figure were set for its drawn width: wrap them to the column
        text.set_wrap(True)
    if scale < 1:
        # lines and markers thin with the figure (never below a hairline journals print)
        for line in figure.findobj(Line2D):
            line.set_linewidth(max(MIN_LINE_PT, line.get_linewidth() * scale))
            line.set_markersize(line.get_markersize() * max(scale, 0.6))
        for collection in figure.findobj(Collection):
            widths = collection.get_linewidths()
            if len(widths):
                collection.set_linewidths([max(MIN_LINE_PT, width * scale) for width in widths])
    return target_mm


def journal_figure(family_name: str, inputs: Mapping[str, Any], settings: Any,
                   outcome: str | None = None) -> tuple[Any, float]:
    """A figure of the figure table redrawn for a journal, and its width in mm."""
    import matplotlib

    from analysis.figures.jobs import make_figure

    with matplotlib.rc_context(journal_style()):
        figure = make_figure(family_name, inputs, settings, outcome)
        width = to_journal_width(figure)
    return figure, width


def save_journal_figure(figure: Any, pdf_path: str | os.PathLike[str],
                        svg_path: str | os.PathLike[str] | None = None) -> None:
    """Write ``figure`` as PDF (TrueType embedded) and, if asked, SVG, without dates."""
    import logging

    import matplotlib

    # the font subsetter logs each table it prunes: not what a rule's log is for
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    with matplotlib.rc_context(journal_style()):
        with atomic_path(pdf_path) as tmp:
            figure.savefig(tmp, format="pdf",
                           metadata={"CreationDate": None, "ModDate": None, "Producer": None,
                                     "Creator": None})
        if svg_path is not None:
            with atomic_path(svg_path) as tmp:
                figure.savefig(tmp, format="svg", metadata={"Date": None, "Creator": None})


def write_journal_figure(family_name: str, paths: Any, params: Mapping[str, Any],
                         outcome: str | None, pdf: str | os.PathLike[str]) -> None:
    """Read, redraw at its journal column width and save one figure of the figure table (the
    body of ``workflow/scripts/manuscript_figure.py``)."""
    import logging

    from analysis.figures.jobs import read_inputs
    from analysis.figures.table import FAMILY
    from analysis.settings import FigureSettings

    settings = FigureSettings.from_params(params)
    figure, width = journal_figure(family_name, read_inputs(FAMILY[family_name], paths),
                                   settings, outcome)
    save_journal_figure(figure, pdf)
    logging.getLogger(__name__).info("drew %s at %g mm in %s", family_name, width,
                                     journal_font())


__all__ = ["DOUBLE_COLUMN_MM", "SINGLE_COLUMN_MM", "column_width", "journal_figure",
           "journal_font", "journal_style", "save_journal_figure", "to_journal_width",
           "write_journal_figure"]
