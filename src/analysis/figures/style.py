"""The house style of every figure: palette, matplotlib settings and how a figure is saved.

Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color universal design"), which stays
distinguishable under the common colour-vision deficiencies. :data:`FIGURE_STYLE` holds every
setting that decides how a figure looks or how its files are written, so the same figure always
gives the same bytes: a bundled font (DejaVu Sans ships with matplotlib), text drawn as paths (no
dependence on the viewer's fonts) and a fixed salt for SVG element ids. :func:`save_figure`
writes a figure as SVG and PNG, atomically, without dates or software versions.

matplotlib itself is imported only when a figure is saved: the Snakefile reads the figure table
(:mod:`analysis.figures.table`) through this package, and parsing the workflow should not pay for
it.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

from cycler import cycler

from analysis.io import atomic_path

# Okabe & Ito (2008): the eight colours by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
# Order for data series: the strongest contrasts first; yellow last because it is faint on white.
SERIES_COLOURS = [
    OKABE_ITO[name]
    for name in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple", "sky_blue",
                 "black", "yellow")
]
NEUTRAL_GREY = "#808080"

FIGURE_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.prop_cycle": cycler(color=SERIES_COLOURS),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
    "svg.fonttype": "path",
    "svg.hashsalt": "alliance-outcome-figures",
    "image.cmap": "cividis",
    "figure.dpi": 100,
}
PNG_DPI = 300

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def styled(function: _Fn) -> _Fn:
    """Run a figure function under :data:`FIGURE_STYLE` without touching global settings."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(FIGURE_STYLE):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save_figure(fig: Any, svg_path: str | os.PathLike[str],
                png_path: str | os.PathLike[str], dpi: int = PNG_DPI) -> None:
    """Write ``fig`` as SVG and as a PNG (300 dpi unless ``figures.png_dpi`` says otherwise),
    each atomically.

    The files carry no creation date or software version, and SVG element ids come from a fixed
    salt, so saving the same figure twice gives byte-identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. from :func:`analysis.figures.models.forest_alliance_figure`.
    svg_path, png_path : path-like
        Where to write the two files; folders are created as needed.
    dpi : int
        Resolution of the PNG.
    """
    import matplotlib

    with matplotlib.rc_context(FIGURE_STYLE):
        with atomic_path(svg_path) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None})
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


__all__ = ["FIGURE_STYLE", "NEUTRAL_GREY", "OKABE_ITO", "PNG_DPI", "SERIES_COLOURS",
           "save_figure", "styled"]
