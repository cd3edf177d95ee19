"""The specification curve of the multiverse (Simonsohn, Simmons & Nelson 2020).

:func:`specification_curve_figure` takes ``multiverse.csv`` (:mod:`analysis.models.
multiverse_summary`) and draws the two-panel figure of the specification-curve analysis: on top,
every specification's estimate of M2's within-client alliance term, sorted, with its 95% CI; below,
one row per option of each choice that varies, with a mark under every specification that takes
that option. Estimates are standardised (beta x SD(within alliance) / SD(next symptoms)) so that
outcomes on different scales share the axis; the CI is the CI of the raw estimate rescaled by the
same factor. Colour says significance at the table's level (blue: in the expected direction,
vermillion: opposite, grey: neither); the primary specification is ringed. The house style comes
from :mod:`analysis.figures`; nothing is read or written here.
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures import FIGURE_STYLE, OKABE_ITO
from analysis.models.multiverse import CHOICES

EXPECTED = OKABE_ITO["blue"]
OPPOSITE = OKABE_ITO["vermillion"]
NEITHER = "#9a9a9a"


def _truthy(values: pd.Series) -> np.ndarray:
    return values.astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()


def curve_order(multiverse: pd.DataFrame) -> pd.DataFrame:
    """The estimated specifications sorted by standardised estimate, with the plotted columns.

    Returns
    -------
    DataFrame
        Rows with a finite estimate, sorted by ``std_estimate`` (ties by ``index``), plus
        ``rank`` (1..n), ``std_ci_low``/``std_ci_high`` (the CI rescaled like the estimate) and
        ``colour``.
    """
    table = multiverse.copy()
    for name in ("estimate", "std_estimate", "ci_low", "ci_high"):
        table[name] = pd.to_numeric(table[name], errors="coerce")
    table = table.loc[np.isfinite(table["std_estimate"]) & np.isfinite(table["estimate"])]
    table = table.sort_values(["std_estimate", "index"], kind="stable").reset_index(drop=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(table["estimate"] != 0, table["std_estimate"] / table["estimate"], 0.0)
    table["std_ci_low"] = table["ci_low"] * factor
    table["std_ci_high"] = table["ci_high"] * factor
    expected = _truthy(table["significant_expected"])
    opposite = (_truthy(table["significant_opposite"]) if "significant_opposite" in table
                else np.zeros(len(table), dtype=bool))
    table["colour"] = np.where(expected, EXPECTED, np.where(opposite, OPPOSITE, NEITHER))
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def specification_curve_figure(multiverse: pd.DataFrame,
                               registry: Mapping[str, Any] | None = None) -> Figure:
    """The specification curve (see the module docstring).

    Parameters
    ----------
    multiverse : DataFrame
        ``multiverse.csv``: ``index``, the choice columns, ``primary``, ``status``,
        ``estimate``, ``std_estimate``, ``ci_low``, ``ci_high``, ``significant_expected``,
        ``significant_opposite``.
    registry : mapping, optional
        Instruments by key, for the outcomes' labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    registry = registry or {}
    table = curve_order(multiverse)
    varying = [choice for choice in CHOICES
               if choice.name in multiverse and multiverse[choice.name].nunique() > 1]
    rows = []  # (choice, option) pairs, top to bottom
    for choice in varying:
        for option in dict.fromkeys(multiverse[choice.name].tolist()):
            rows.append((choice, option))
    n = len(table)
    with matplotlib.rc_context(FIGURE_STYLE):
        height_top, height_rows = 3.0, 0.17 * max(len(rows), 1) + 0.5
        figure = Figure(figsize=(9.0, height_top + height_rows))
        # a wide left margin: the option labels of the lower panel
        grid = figure.add_gridspec(2, 1, height_ratios=[height_top, height_rows], hspace=0.06,
                                   left=0.27, right=0.98, top=0.93, bottom=0.08)
        top = figure.add_subplot(grid[0])
        bottom = figure.add_subplot(grid[1], sharex=top)
        missing = len(multiverse) - n
        title = f"Specification curve: {n} specifications of M2's within-client alliance term"
        if missing:
            title += f" ({missing} could not be estimated)"
        top.set_title(title, fontsize=10, loc="left")
        if n == 0:
            top.text(0.5, 0.5, "no specification could be estimated", ha="center",
                     transform=top.transAxes)
            return figure
        x = table["rank"].to_numpy()
        top.axhline(0.0, color="#606060", linewidth=0.7)
        top.vlines(x, table["std_ci_low"], table["std_ci_high"], colors=table["colour"],
                   linewidth=0.8, alpha=0.6)
        top.scatter(x, table["std_estimate"], c=table["colour"], s=9, zorder=3, linewidths=0)
        primary = _truthy(table["primary"])
        if primary.any():
            top.scatter(x[primary], table.loc[primary, "std_estimate"], s=46,
                        facecolors="none", edgecolors="black", linewidths=1.0, zorder=4,
                        label="primary analysis")
            top.legend(loc="upper left", fontsize=7)
        median = float(np.median(table["std_estimate"]))
        top.axhline(median, color="#606060", linewidth=0.7, linestyle=":")
        top.text(1, median, f" median {median:.3f}", va="bottom", fontsize=7, color="#404040")
        top.set_ylabel("standardised estimate\n(95% CI)")
        top.tick_params(labelbottom=False)
        for position, (choice, option) in enumerate(rows):
            takes = (table[choice.name].astype(str) == str(option)).to_numpy()
            y = len(rows) - 1 - position
            bottom.scatter(x[takes], np.full(takes.sum(), y), c=table.loc[takes, "colour"],
                           s=7, marker="s", linewidths=0)
        labels = []
        for choice, option in rows:
            shown = (registry[option].label if choice.name == "outcome" and option in registry
                     else choice.option_label(_as_option(choice, option)))
            labels.append(f"{choice.label}: {shown}")
        bottom.set_yticks(range(len(rows)))
        bottom.set_yticklabels(list(reversed(labels)), fontsize=6.5)
        boundaries = np.cumsum([sum(1 for c, _ in rows if c is choice) for choice in varying])
        for boundary in boundaries[:-1]:
            bottom.axhline(len(rows) - boundary - 0.5, color="#d0d0d0", linewidth=0.6)
        bottom.set_ylim(-0.7, len(rows) - 0.3)
        bottom.set_xlim(0, n + 1)
        bottom.set_xlabel("specifications, sorted by estimate")
        for spine in ("left",):
            bottom.spines[spine].set_visible(False)
        bottom.tick_params(axis="y", length=0)
    return figure


def _as_option(choice: Any, value: Any) -> Any:
    # CSV gives options back as text: map them to the declared values for their labels.
    for option in choice.options:
        if str(option) == str(value) or str(option).lower() == str(value).lower():
            return option
    return value


__all__ = ["curve_order", "specification_curve_figure"]
