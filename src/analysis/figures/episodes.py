"""The Jacobson-Truax plot: each client's first against last score, with the reliable-change band
and the clinical cut-off.

Inputs are ``episodes.parquet`` (first and last scores, the episodes stage's Jacobson-Truax
flags) and the outcome's row of the Jacobson-Truax parameters. Unless single clients may be shown
(``privacy.show_individual_trajectories``), clients are drawn as counts in square cells, and a
cell holding fewer than ``min_cell`` clients is not drawn. The cells are sized to the sample
(:func:`cell_width`): the grid that draws the most cells while showing at least half of the
clients, so a study of 57 clients gets a few large cells rather than a single hexagon. The counts of the
categories (reliably improved, unchanged, deteriorated, recovered) are printed under the plot
through :func:`analysis.privacy.format_count`. A cut-off outside the scale's range is drawn on
an axis extended to reach it, and the figure says that it lies outside the scale.
"""

from __future__ import annotations

import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures.common import (
    client_totals,
    instrument_axis_label,
    instrument_title,
    wrap_title,
    message_panel,
    number,
    outcome_row,
    require_columns,
)
from analysis.figures.style import NEUTRAL_GREY, OKABE_ITO, SERIES_COLOURS, styled
from analysis.privacy import format_count, format_part

#: Most cells per axis (a 0-27 scale: one point a cell).
MAX_CELLS = 30
#: Fewest cells per axis.
MIN_CELLS = 2
#: The cells drawn must hold at least this share of the clients.
DRAWN_SHARE = 0.5
#: Characters per line of the notes under the plot.
NOTE_WIDTH = 100
#: Cell widths tried, in points of the scale (times a power of ten for other ranges).
NICE_WIDTHS = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def cell_edges(low: float, high: float, width: float) -> np.ndarray:
    """Edges of cells of ``width`` from ``low``, the last reaching ``high`` or beyond."""
    count = max(1, int(np.ceil((high - low) / width - 1e-9)))
    return low + width * np.arange(count + 1)


def cell_width(first: np.ndarray, last: np.ndarray, low: float, high: float, min_cell: int,
               max_cells: int = MAX_CELLS, min_cells: int = MIN_CELLS,
               drawn_share: float = DRAWN_SHARE) -> float:
    """Width of the cells for a sample: the grid that draws the most cells.

    Among the "nice" widths (1, 2, 2.5, 3, 4, 5, 6, 8 points, times a power of ten) giving
    between ``min_cells`` and ``max_cells`` cells per axis, the one with the most cells holding
    ``min_cell`` or more clients, as long as those cells hold at least ``drawn_share`` of the
    clients (ties: the larger share, then the finer grid); when no width reaches that share, the
    width that shows the most clients. A coarse grid that puts nearly everyone in one cell shows
    nothing; a fine one hides everyone in cells under the threshold. Linear in the clients for
    each width tried.
    """
    first, last = np.asarray(first, dtype=float), np.asarray(last, dtype=float)
    span = high - low
    if not span > 0:
        return 1.0
    scale = 10.0 ** np.floor(np.log10(span / max_cells))
    widths = sorted({round(w * scale * factor, 10) for w in NICE_WIDTHS for factor in (1, 10, 100)
                     if min_cells <= np.ceil(span / (w * scale * factor) - 1e-9) <= max_cells})
    widths = widths or [span / min_cells]
    if first.size == 0:
        return widths[-1]
    scored = []
    for width in widths:
        edges = cell_edges(low, high, width)
        counts, _, _ = np.histogram2d(first, last, bins=[edges, edges])
        drawn = counts >= max(min_cell, 1)
        scored.append((int(drawn.sum()), float(counts[drawn].sum() / first.size), -width))
    enough = [score for score in scored if score[1] >= drawn_share]
    if enough:
        return -max(enough)[2]
    return -max(scored, key=lambda score: (score[1], score[2]))[2]


def _axis_range(low: float, high: float, cutoff: float) -> tuple[float, float, str]:
    # The scale's range, extended to reach a cut-off outside it (with a margin), and a note.
    if not np.isfinite(cutoff) or low <= cutoff <= high:
        return low, high, ""
    margin = 0.04 * (high - low)
    side = "below the scale's minimum" if cutoff < low else "above the scale's maximum"
    bound = f"{low:g}" if cutoff < low else f"{high:g}"
    note = (f"The cut-off ({cutoff:.1f}) lies {side} ({bound}): the axes are extended to show it; "
            "no score can fall on its other side.")
    return min(low, cutoff - margin), max(high, cutoff + margin), note


@styled
def jacobson_truax_figure(episodes: pd.DataFrame, parameters: Mapping[str, Any],
                          outcome_instrument: Any, *, min_cell: int,
                          totals: Sequence[int] = (), show_individual: bool = False) -> Figure:
    """First against last score per client, with the reliable-change band and cut-off lines.

    Parameters
    ----------
    episodes : DataFrame
        ``episodes.parquet``: columns ``outcome``, ``first_score``, ``last_score``, ``n_scored``
        and, when present, the flags ``jt_reliable_improvement``,
        ``jt_reliable_deterioration`` and ``jt_recovered``. Episodes with fewer than two scores
        have no last score to draw and are counted in the title.
    parameters : mapping
        Jacobson-Truax numbers for this outcome: ``s_diff`` (standard error of the difference),
        ``rci_criterion``, ``reliable_change_points``, ``cutoff`` (clinical-significance cut-off,
        may be missing) and ``cutoff_formula`` (e.g. "a" or "c").
    outcome_instrument
        Registry entry: labels, score range and ``direction`` (which side is improvement).
    min_cell : int
        Category counts use ``format_count``; without individual display a cell is drawn only
        when it holds at least ``min_cell`` clients.
    totals : sequence of int
        The totals the counts of clients in the title are part of (the outcome's episodes, the
        study's clients: :func:`analysis.figures.common.client_totals`), for complementary
        suppression.
    show_individual : bool
        Draw one point per client (sized by how many share the same pair of scores) instead of
        suppressed cells; only when ``privacy.show_individual_trajectories`` is true.
    """
    require_columns(episodes, ["outcome"], "episodes")
    rows = episodes.loc[episodes["outcome"] == outcome_instrument.key]
    require_columns(rows, ["first_score", "last_score", "n_scored"], "episodes")
    pairs = rows.loc[(rows["n_scored"] >= 2) & rows["first_score"].notna()
                     & rows["last_score"].notna(), ["first_score", "last_score"]]
    n_short = int((rows["n_scored"] < 2).sum())
    low = number(getattr(outcome_instrument, "score_min", None))
    high = number(getattr(outcome_instrument, "score_max", None))
    if not (np.isfinite(low) and np.isfinite(high)):
        low = float(np.nanmin(pairs.to_numpy())) if not pairs.empty else 0.0
        high = float(np.nanmax(pairs.to_numpy())) if not pairs.empty else 1.0
    fig = Figure(figsize=(5.8, 6.2), layout="constrained")
    ax = fig.subplots()
    label = instrument_axis_label(outcome_instrument)
    if pairs.empty:
        message_panel(ax, "No episode has two or more scores.")
        return fig
    criterion = number(parameters.get("rci_criterion"), default=1.96)
    band = number(parameters.get("reliable_change_points"),
                  default=criterion * number(parameters.get("s_diff")))
    cutoff = number(parameters.get("cutoff"))
    axis_low, axis_high, outside_note = _axis_range(low, high, cutoff)
    grid = np.array([axis_low, axis_high])
    ax.plot(grid, grid, color="black", linewidth=0.8)
    if np.isfinite(band):
        ax.fill_between(grid, grid - band, grid + band, color=OKABE_ITO["sky_blue"], alpha=0.25,
                        linewidth=0, label=f"no reliable change (|RC| <= {criterion:g}:\n"
                                           f"within {band:.1f} points)")
    if np.isfinite(cutoff):
        formula = parameters.get("cutoff_formula") or ""
        ax.axhline(cutoff, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.9,
                   label=f"clinical cut-off {formula} = {cutoff:.1f}".replace("  ", " "))
        ax.axvline(cutoff, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.9)
    if np.isfinite(cutoff) and outside_note:
        for start, end in ((axis_low, low), (high, axis_high)):
            if end > start:
                ax.axhspan(start, end, color=NEUTRAL_GREY, alpha=0.12, linewidth=0)
                ax.axvspan(start, end, color=NEUTRAL_GREY, alpha=0.12, linewidth=0)
    notes = []
    first = pairs["first_score"].to_numpy(dtype=float)
    last = pairs["last_score"].to_numpy(dtype=float)
    if show_individual:
        counts = pairs.value_counts().rename("n").reset_index()
        ax.scatter(counts["first_score"], counts["last_score"], s=8 + 6 * counts["n"],
                   color=SERIES_COLOURS[0], alpha=0.6, linewidths=0, label="clients")
    else:
        notes.append(_draw_cells(fig, ax, first, last, low, high, min_cell))
    if outside_note:
        notes.append(outside_note)
    notes.append(_category_text(rows.loc[pairs.index], pairs, band, outcome_instrument,
                                min_cell, (len(pairs), *totals)))
    ax.set_xlim(axis_low, axis_high)
    ax.set_ylim(axis_low, axis_high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"First {label}")
    ax.set_ylabel(f"Last {label}")
    ax.set_title(wrap_title(f"{instrument_title(outcome_instrument)}: Jacobson-Truax plot\n"
                            f"{format_count(len(pairs), min_cell, totals)} clients with two "
                            f"or more scores ({format_count(n_short, min_cell, totals)} with "
                            "fewer)", 5.2))
    ax.legend(loc="upper left", fontsize=7)
    # each note wrapped to the figure's width (about 100 characters at this size)
    fig.supxlabel("\n".join(textwrap.fill(line, NOTE_WIDTH) for note in notes if note
                            for line in note.splitlines()), fontsize=7)
    return fig


def _draw_cells(fig: Figure, ax: Any, first: np.ndarray, last: np.ndarray, low: float,
                high: float, min_cell: int) -> str:
    # Counts in square cells sized to the sample; cells under the threshold are left blank.
    width = cell_width(first, last, low, high, min_cell)
    edges = cell_edges(low, high, width)
    counts, _, _ = np.histogram2d(first, last, bins=[edges, edges])
    shown = np.ma.masked_less(counts.T, max(min_cell, 1))
    note = (f"Clients counted in cells of {width:g} x {width:g} points (sized to the sample); "
            f"cells with fewer than {min_cell} clients are not drawn")
    if shown.count():
        mesh = ax.pcolormesh(edges, edges, shown, cmap="cividis_r", edgecolors="white",
                             linewidth=0.3, zorder=0.5)
        fig.colorbar(mesh, ax=ax, shrink=0.7).set_label("Clients per cell")
        return note + "."
    return note + " (here: every cell)."


def _category_text(episodes: pd.DataFrame, pairs: pd.DataFrame, band: float, instrument: Any,
                   min_cell: int, totals: Sequence[int]) -> str:
    improved, deteriorated = _reliable_change_counts(episodes, pairs, band, instrument)
    shown = category_counts({"reliably improved": improved,
                             "no reliable change": len(pairs) - improved - deteriorated,
                             "reliably deteriorated": deteriorated}, min_cell)
    text = "; ".join(f"{name}: {count}" for name, count in shown.items())
    if "jt_recovered" in episodes.columns:
        recovered = int(episodes["jt_recovered"].fillna(False).astype(bool).sum())
        text += ("\nrecovered (reliable and clinically significant): "
                 f"{format_count(recovered, min_cell, totals)}")
    return text


def category_counts(counts: Mapping[str, int], min_cell: int) -> dict[str, str]:
    """Counts of people in categories that add up to a printed total, as published.

    A count below ``min_cell`` is shown as "<min_cell" (:func:`format_count`). When exactly one
    is, the others and the total would give it away by subtraction, so the largest other count
    is shown as a bound too (:func:`analysis.privacy.format_part`: ">n").
    """
    shown = {name: format_count(count, min_cell) for name, count in counts.items()}
    small = [name for name, count in counts.items() if 0 < count < min_cell]
    if len(small) == 1:
        hidden = small[0]
        other = max((name for name in counts if name != hidden), key=lambda name: counts[name])
        shown[other] = format_part(counts[other], counts[other] + counts[hidden], min_cell)
    return shown


def _reliable_change_counts(episodes: pd.DataFrame, pairs: pd.DataFrame, band: float,
                            instrument: Any) -> tuple[int, int]:
    # The episodes stage's own Jacobson-Truax flags when present, so figure and tables agree;
    # else the same rule from the band: |change| > criterion x S_diff, in the improving direction.
    flags = ("jt_reliable_improvement", "jt_reliable_deterioration")
    if all(flag in episodes.columns for flag in flags):
        return tuple(int(episodes[flag].fillna(False).astype(bool).sum()) for flag in flags)
    if not np.isfinite(band):
        return 0, 0
    change = pairs["last_score"] - pairs["first_score"]
    sign = 1.0 if getattr(instrument, "direction", "higher_worse") == "higher_better" else -1.0
    return int((sign * change > band).sum()), int((-sign * change > band).sum())


# --------------------------------------------------------------------------------------------
# figure job (analysis.figures.table)


def draw_jacobson_truax(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    parameters = outcome_row(inputs["parameters"], outcome, "jacobson_truax.parquet")
    return jacobson_truax_figure(inputs["episodes"], parameters, settings.registry()[outcome],
                                 min_cell=settings.privacy.min_cell_count,
                                 totals=client_totals(inputs, outcome),
                                 show_individual=settings.privacy.show_individual_trajectories)


__all__ = ["category_counts", "cell_edges", "cell_width", "draw_jacobson_truax", "jacobson_truax_figure"]
