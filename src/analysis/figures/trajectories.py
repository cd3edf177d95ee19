"""Figures of symptoms over sessions: trajectories by early alliance, and within-client alliance
against symptoms at the next session.

Both read one outcome's rows of ``derived.parquet`` and show means with 95% CIs; a mean over
fewer than ``min_cell`` clients (or session pairs) is not drawn, group sizes go through
:func:`analysis.privacy.format_count`, and single clients' courses appear only when the caller
says ``privacy.show_individual_trajectories`` allows it. Costs grow linearly with the rows.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from analysis.figures.common import (
    binned_means,
    client_totals,
    instrument_axis_label,
    instrument_title,
    mean_confidence_intervals,
    message_panel,
    outcome_rows,
    process_name,
    require_columns,
    wrap_title,
)
from analysis.figures.style import NEUTRAL_GREY, SERIES_COLOURS, styled
from analysis.privacy import format_count

# --------------------------------------------------------------------------------------------
# symptom trajectories by early alliance


def early_alliance_groups(derived: pd.DataFrame, n_groups: int = 3) -> pd.DataFrame:
    """Split clients into equal-sized groups (tertiles by default) of early alliance.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (columns ``client_id``, ``alliance_early``).
    n_groups : int
        Number of groups.

    Returns
    -------
    DataFrame
        One row per client with an early-alliance score: ``client_id``, ``alliance_early``,
        ``group`` (0 = lowest), ``group_low``, ``group_high`` (the range of early alliance in
        the group). Ties are split by client order (sorted pseudonyms), so groups are equal-sized
        and the split is the same on every run.
    """
    require_columns(derived, ["client_id", "alliance_early"], "derived")
    clients = (
        derived.loc[derived["alliance_early"].notna(), ["client_id", "alliance_early"]]
        .drop_duplicates("client_id")
        .sort_values(["alliance_early", "client_id"], kind="stable")
        .reset_index(drop=True)
    )
    if clients.empty:
        return clients.assign(group=pd.Series(dtype="int64"), group_low=pd.Series(dtype=float),
                              group_high=pd.Series(dtype=float))
    groups = min(n_groups, len(clients))
    clients["group"] = (np.arange(len(clients)) * groups // len(clients)).astype("int64")
    ranges = clients.groupby("group")["alliance_early"].agg(group_low="min", group_high="max")
    return clients.merge(ranges, left_on="group", right_index=True, how="left")


def client_courses(rows: pd.DataFrame, y: str) -> list[np.ndarray]:
    """Each client's observed (session, ``y``) points, in session order, as one array each."""
    observed = rows.loc[rows[y].notna(), ["client_id", "session", y]].sort_values(
        ["client_id", "session"], kind="stable")
    points = observed[["session", y]].to_numpy(dtype=float)
    starts = np.flatnonzero(~observed["client_id"].duplicated().to_numpy())
    return np.split(points, starts[1:]) if len(points) else []


@styled
def trajectories_figure(derived: pd.DataFrame, outcome_instrument: Any, alliance_instrument: Any,
                        *, min_cell: int, show_individual: bool = False,
                        n_groups: int = 3) -> Figure:
    """Mean symptom score per session (95% CI) for clients grouped by early alliance.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``: columns ``outcome``, ``client_id``, ``session``, ``symptom_score``,
        ``alliance_early``.
    outcome_instrument, alliance_instrument
        Registry entries; the outcome's ``key`` selects the rows of ``derived``.
    min_cell : int
        Session means over fewer clients than this are not drawn (they would describe a handful
        of people); group sizes in the legend are formatted with ``format_count``.
    show_individual : bool
        Draw each client's trajectory as a thin grey line (only when
        ``privacy.show_individual_trajectories`` is true); all of them are one artist, whatever
        the number of clients.
    n_groups : int
        Groups of early alliance (3 = tertiles).
    """
    rows = outcome_rows(derived, outcome_instrument.key)
    require_columns(rows, ["client_id", "session", "symptom_score", "alliance_early"], "derived")
    rows = rows[["client_id", "session", "symptom_score", "alliance_early"]]
    groups = early_alliance_groups(rows, n_groups)
    fig = Figure(figsize=(6.5, 4.4), layout="constrained")
    ax = fig.subplots()
    if groups.empty:
        message_panel(ax, "No client has an early-alliance score.")
        return fig
    data = rows.merge(groups[["client_id", "group"]], on="client_id")
    if show_individual:
        ax.add_collection(LineCollection(client_courses(data, "symptom_score"),
                                         colors=NEUTRAL_GREY, linewidths=0.3, alpha=0.35,
                                         zorder=1, label="_clients"))
        ax.autoscale_view()
    summary = mean_confidence_intervals(data, ["group", "session"], "symptom_score")
    n_shown = groups["group"].nunique()
    names = _group_names(n_shown)
    offsets = np.linspace(-0.12, 0.12, n_shown)
    for group, group_info in groups.groupby("group", sort=True):
        points = with_gaps(summary.loc[summary["group"] == group], "session", min_cell)
        colour = SERIES_COLOURS[int(group) % len(SERIES_COLOURS)]
        n_clients = format_count(len(group_info), min_cell)
        label = (f"{names[int(group)]} early {alliance_instrument.label} "
                 f"({group_info['group_low'].iloc[0]:.2f}-{group_info['group_high'].iloc[0]:.2f}; "
                 f"n = {n_clients})")
        x = points["session"].to_numpy(dtype=float) + offsets[int(group)]
        ax.errorbar(x, points["mean"], yerr=[points["mean"] - points["ci_low"],
                                             points["ci_high"] - points["mean"]],
                    color=colour, marker="o", markersize=3.5, linewidth=1.4, capsize=2,
                    label=label, zorder=3)
    ax.set_xlabel("Session")
    ax.set_ylabel(instrument_axis_label(outcome_instrument))
    ax.set_title(wrap_title(f"{instrument_title(outcome_instrument)} over sessions by early "
                            f"{process_name(alliance_instrument)}", 5.3))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best")
    fig.supxlabel(f"Means with 95% CI; sessions with fewer than {min_cell} clients in a group "
                  "are not shown (the line breaks there).", fontsize=7, color=NEUTRAL_GREY)
    return fig


def with_gaps(points: pd.DataFrame, x: str, min_cell: int) -> pd.DataFrame:
    """``points`` (one row per ``x``, with ``n``, ``mean``, ``ci_low``, ``ci_high``) with the
    means over fewer than ``min_cell`` set to NaN and a NaN row at every whole ``x`` between the
    first and last that has none, so that a line breaks at a suppressed or absent point instead
    of joining its neighbours across it.

    >>> frame = pd.DataFrame({"session": [1, 2, 4], "n": [12, 3, 15], "mean": [1.0, 2.0, 3.0],
    ...                       "ci_low": [0.0, 1.0, 2.0], "ci_high": [2.0, 3.0, 4.0]})
    >>> with_gaps(frame, "session", 10)["mean"].tolist()
    [1.0, nan, nan, 3.0]
    """
    values = ["mean", "ci_low", "ci_high"]
    points = points.sort_values(x, kind="stable")
    if points.empty:
        return points
    shown = points.assign(**{name: points[name].where(points["n"] >= min_cell)
                             for name in values})
    shown = shown.loc[shown["mean"].notna()]
    if shown.empty:
        return shown
    span = np.arange(int(shown[x].min()), int(shown[x].max()) + 1)
    return shown.set_index(x).reindex(span).rename_axis(x).reset_index()


def _group_names(n_groups: int) -> list[str]:
    if n_groups == 3:
        return ["Low", "Middle", "High"]
    if n_groups == 2:
        return ["Lower", "Upper"]
    return [f"Group {i + 1}" for i in range(n_groups)]


# --------------------------------------------------------------------------------------------
# within-client alliance and next-session symptoms


@styled
def alliance_within_next_figure(derived: pd.DataFrame, outcome_instrument: Any,
                                alliance_instrument: Any, *, min_cell: int,
                                totals: Sequence[int] = (), n_bins: int = 10) -> Figure:
    """Within-client alliance at a session against symptoms at the next session (binned means).

    Left: the next-session score; right: the change from this session to the next, both as means
    with 95% CIs in equal-count bins of within-client alliance. This is a description (the CIs
    ignore that sessions are nested in clients); model M2 is the test.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``: columns ``outcome``, ``client_id``, ``alliance_within``,
        ``symptom_score``, ``symptom_next``.
    outcome_instrument, alliance_instrument
        Registry entries for the axis labels.
    min_cell : int
        Bins with fewer session pairs than this are not drawn; the number of clients is
        formatted with ``format_count``.
    totals : sequence of int
        The totals the number of clients is part of (the outcome's episodes, the study's clients:
        :func:`analysis.figures.common.client_totals`), for complementary suppression.
    n_bins : int
        Number of equal-count bins (fewer when there are fewer than ``min_cell`` pairs a bin).
    """
    columns = ["client_id", "alliance_within", "symptom_score", "symptom_next"]
    rows = outcome_rows(derived, outcome_instrument.key)
    require_columns(rows, columns, "derived")
    pairs = rows.loc[rows["alliance_within"].notna() & rows["symptom_next"].notna(), columns]
    pairs = pairs.assign(symptom_change_next=pairs["symptom_next"] - pairs["symptom_score"])
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    axes = fig.subplots(1, 2)
    if pairs.empty:
        for ax in axes:
            message_panel(ax, "No consecutive sessions with\nalliance and symptom scores.")
        return fig
    # as many bins as the data allow, so a small study still shows a line
    bins = max(1, min(n_bins, len(pairs) // max(min_cell, 1)))
    score_label = instrument_axis_label(outcome_instrument)
    panels = [
        ("symptom_next", f"Next-session {score_label}", "Next-session score"),
        ("symptom_change_next", f"Change to next session\n{score_label}", "Change to next session"),
    ]
    for ax, (column, y_label, title) in zip(axes, panels):
        summary = binned_means(pairs, "alliance_within", column, bins)
        # a bin over fewer pairs than min_cell is not drawn, and the line breaks there
        summary = summary.assign(**{name: summary[name].where(summary["n"] >= min_cell)
                                    for name in ("mean", "ci_low", "ci_high")})
        ax.errorbar(summary["x_mean"], summary["mean"],
                    yerr=[summary["mean"] - summary["ci_low"],
                          summary["ci_high"] - summary["mean"]],
                    color=SERIES_COLOURS[0], marker="o", markersize=4, linewidth=1.2, capsize=2)
        ax.axvline(0, color=NEUTRAL_GREY, linewidth=0.8, linestyle=":")
        if column == "symptom_change_next":
            ax.axhline(0, color=NEUTRAL_GREY, linewidth=0.8, linestyle=":")
        ax.set_xlabel(f"Within-client {alliance_instrument.label}\n(session score minus the "
                      "client's mean)")
        ax.set_ylabel(y_label)
        ax.set_title(title)
    n_clients = format_count(pairs["client_id"].nunique(), min_cell, totals)
    fig.suptitle(wrap_title(f"{instrument_title(outcome_instrument)}: "
                            f"{process_name(alliance_instrument)} at a session and symptoms at "
                            f"the next\n({len(pairs)} session pairs of {n_clients} clients; "
                            "means of equal-count bins with 95% CI)", 7.6), fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# figure jobs (analysis.figures.table)


def draw_trajectories(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    return trajectories_figure(inputs["derived"], registry[outcome], registry[settings.alliance],
                               min_cell=settings.privacy.min_cell_count,
                               show_individual=settings.privacy.show_individual_trajectories)


def draw_alliance_within_next(inputs: Mapping[str, Any], settings: Any,
                              outcome: str | None) -> Figure:
    registry = settings.registry()
    return alliance_within_next_figure(inputs["derived"], registry[outcome],
                                       registry[settings.alliance],
                                       min_cell=settings.privacy.min_cell_count,
                                       totals=client_totals(inputs, outcome))


__all__ = [
    "alliance_within_next_figure",
    "client_courses",
    "draw_alliance_within_next",
    "draw_trajectories",
    "early_alliance_groups",
    "trajectories_figure",
    "with_gaps",
]
