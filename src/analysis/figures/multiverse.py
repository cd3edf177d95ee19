"""The specification curves of the multiverse (Simonsohn, Simmons & Nelson 2020), one per estimand.

:func:`specification_curve_figure` takes ``multiverse.csv`` (:mod:`analysis.models.
multiverse_summary`) and draws, for each estimand (outcome x lag, never pooled), the two panels of
the specification-curve analysis: on top, every distinct specification's estimate of the alliance
-> symptoms effect, sorted, with its 95% CI, the marker saying the estimator (diamond: dynamic
panel, the primary estimator; circle: conventional multilevel; triangle: RI-CLPM); below, one row
per option of each choice that varies, with a mark under every specification that takes that
option (none where the choice does not apply to the estimator). Duplicates (the same final model on
the same data) are drawn once; the title gives the planned and the distinct numbers. Estimates are
standardised (completely standardised paths for the panel models; beta x SD(alliance) / SD(next
symptoms) for the multilevel model) so that the estimators share the axis; the CI is the CI of the
raw estimate rescaled by the same factor. Colour says significance at the table's level (blue: in
the expected direction, vermillion: opposite, grey: neither); the primary specification is ringed.
The house style comes from :mod:`analysis.figures.style`; nothing is read or written here.
:func:`draw_specification_curve` is the figure table's drawing function (row
``specification_curve``, drawn when ``multiverse.run`` is on).
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures.style import FIGURE_STYLE, OKABE_ITO
from analysis.models.multiverse.specifications import CHOICES, ESTIMAND_NAMES

EXPECTED = OKABE_ITO["blue"]
OPPOSITE = OKABE_ITO["vermillion"]
NEITHER = "#9a9a9a"
#: Marker of each estimator.
MARKERS = {"dpm": "D", "mlm": "o", "riclpm": "^"}
ESTIMATOR_NAMES = {"dpm": "dynamic panel (primary)", "mlm": "conventional multilevel",
                   "riclpm": "RI-CLPM"}


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
    """The specification curves, one pair of panels per estimand (see the module docstring).

    Parameters
    ----------
    multiverse : DataFrame
        ``multiverse.csv``: ``index``, the choice columns, ``primary``, ``status``,
        ``distinct``, ``estimate``, ``std_estimate``, ``ci_low``, ``ci_high``,
        ``significant_expected``, ``significant_opposite``.
    registry : mapping, optional
        Instruments by key, for the outcomes' labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    registry = registry or {}
    table = multiverse.copy()
    if "estimator" not in table:
        table["estimator"] = "mlm"
    estimands = list(dict.fromkeys(zip(table["outcome"].astype(str),
                                       pd.to_numeric(table["lag_gap"]).astype(int))))
    varying = [choice for choice in CHOICES if choice.name not in ESTIMAND_NAMES
               and choice.name in table and table[choice.name].dropna().astype(str).nunique() > 1]
    rows = []  # (choice, option) pairs, top to bottom
    for choice in varying:
        for option in dict.fromkeys(table[choice.name].dropna().tolist()):
            rows.append((choice, option))
    height_top, height_rows = 2.6, 0.17 * max(len(rows), 1) + 0.6
    with matplotlib.rc_context(FIGURE_STYLE):
        figure = Figure(figsize=(9.0, (height_top + height_rows) * max(len(estimands), 1) + 0.4))
        ratios = [value for _ in estimands for value in (height_top, height_rows)]
        grid = figure.add_gridspec(max(2 * len(estimands), 1), 1, height_ratios=ratios or [1],
                                   hspace=0.35, left=0.27, right=0.98, top=0.96, bottom=0.05)
        if not estimands:
            axis = figure.add_subplot(grid[0])
            axis.text(0.5, 0.5, "no specification in this run", ha="center",
                      transform=axis.transAxes)
            return figure
        for number, (outcome, lag) in enumerate(estimands):
            block = table.loc[(table["outcome"].astype(str) == outcome)
                              & (pd.to_numeric(table["lag_gap"]).astype(int) == lag)]
            top = figure.add_subplot(grid[2 * number])
            bottom = figure.add_subplot(grid[2 * number + 1], sharex=top)
            _draw_estimand(top, bottom, block, rows, varying, outcome, lag, registry)
    return figure


def _draw_estimand(top, bottom, block: pd.DataFrame, rows, varying, outcome: str, lag: int,
                   registry: Mapping[str, Any]) -> None:
    distinct = (_truthy(block["distinct"]) if "distinct" in block
                else np.ones(len(block), dtype=bool))
    table = curve_order(block.loc[distinct])
    n = len(table)
    name = registry[outcome].label if outcome in registry else outcome
    lag_text = "next session" if lag == 1 else f"{lag} sessions later"
    title = (f"{name}, symptoms {lag_text}: {n} distinct specifications "
             f"({len(block)} planned)")
    top.set_title(title, fontsize=9.5, loc="left")
    if n == 0:
        top.text(0.5, 0.5, "no specification could be estimated", ha="center",
                 transform=top.transAxes)
        bottom.set_axis_off()
        return
    x = table["rank"].to_numpy()
    top.axhline(0.0, color="#606060", linewidth=0.7)
    top.vlines(x, table["std_ci_low"], table["std_ci_high"], colors=table["colour"],
               linewidth=0.8, alpha=0.6)
    for estimator, marker in MARKERS.items():
        chosen = (table["estimator"].astype(str) == estimator).to_numpy()
        if chosen.any():
            top.scatter(x[chosen], table.loc[chosen, "std_estimate"],
                        c=table.loc[chosen, "colour"], s=14, marker=marker, zorder=3,
                        linewidths=0, label=ESTIMATOR_NAMES[estimator])
    primary = _truthy(table["primary"])
    if primary.any():
        top.scatter(x[primary], table.loc[primary, "std_estimate"], s=60,
                    facecolors="none", edgecolors="black", linewidths=1.0, zorder=4,
                    label="primary analysis")
    top.legend(loc="upper left", fontsize=6.5, ncol=2)
    median = float(np.median(table["std_estimate"]))
    top.axhline(median, color="#606060", linewidth=0.7, linestyle=":")
    top.text(1, median, f" median {median:.3f}", va="bottom", fontsize=7, color="#404040")
    top.set_ylabel("standardised estimate\n(95% CI)", fontsize=8)
    top.tick_params(labelbottom=False)
    for position, (choice, option) in enumerate(rows):
        takes = (table[choice.name].astype(str) == str(option)).to_numpy()
        y = len(rows) - 1 - position
        bottom.scatter(x[takes], np.full(takes.sum(), y), c=table.loc[takes, "colour"],
                       s=7, marker="s", linewidths=0)
    labels = [f"{choice.label}: {choice.option_label(_as_option(choice, option))}"
              for choice, option in rows]
    bottom.set_yticks(range(len(rows)))
    bottom.set_yticklabels(list(reversed(labels)), fontsize=6.5)
    boundaries = np.cumsum([sum(1 for c, _ in rows if c is choice) for choice in varying])
    for boundary in boundaries[:-1]:
        bottom.axhline(len(rows) - boundary - 0.5, color="#d0d0d0", linewidth=0.6)
    bottom.set_ylim(-0.7, len(rows) - 0.3)
    bottom.set_xlim(0, n + 1)
    bottom.set_xlabel("specifications, sorted by estimate", fontsize=8)
    bottom.spines["left"].set_visible(False)
    bottom.tick_params(axis="y", length=0)


def _as_option(choice: Any, value: Any) -> Any:
    # CSV gives options back as text: map them to the declared values for their labels.
    for option in choice.options:
        if str(option) == str(value) or str(option).lower() == str(value).lower():
            return option
    return value


def draw_specification_curve(inputs: Mapping[str, Any], settings: Any,
                             outcome: str | None) -> Figure:
    return specification_curve_figure(inputs["multiverse"], settings.registry())


__all__ = ["curve_order", "draw_specification_curve", "specification_curve_figure"]
