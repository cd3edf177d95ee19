"""Figures of the data themselves: where every row went, dropout and missing data, the alliance
ceiling.

Inputs are the data-flow table (``results/tables/data_flow.csv``, counts of people already
suppressed), ``sessions.parquet`` and ``scores.parquet``; each function returns a matplotlib
figure. Counts of people printed here go through :func:`analysis.privacy.format_count`, and
curves stop where fewer than ``min_cell`` people remain.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.figures.common import (
    instrument_axis_label,
    message_panel,
    registry_entries,
    require_columns,
    wrap_title,
)
from analysis.figures.style import OKABE_ITO, SERIES_COLOURS, styled
from analysis.privacy import format_count

# --------------------------------------------------------------------------------------------
# data flow


def data_flow_rows(flow: pd.DataFrame) -> pd.DataFrame:
    """The rows of the data-flow table worth a bar: everything but the per-fit detail.

    The analysis stage lists observations, clients and therapists for every fit; the figure
    keeps the clients of the primary analysis of each model (``source`` ending in "primary").
    Columns dropped at ingest (stage ``dropped_column``) are left out.
    """
    require_columns(flow, ["stage", "source", "unit", "count"], "data_flow")
    stage = flow["stage"].astype(str)
    primary_clients = (flow["unit"].astype(str) == "clients") & flow["source"].astype(
        str).str.endswith(" primary")
    # Identifying columns dropped at ingest are a privacy record, not a flow of rows: the
    # report lists them in its exclusions table.
    keep = ~stage.str.startswith("dropped") & ((stage != "analysis") | primary_clients)
    return flow.loc[keep].reset_index(drop=True)


@styled
def data_flow_figure(flow: pd.DataFrame, *, min_cell: int,
                     instrument_names: Mapping[str, str] | None = None) -> Figure:
    """Horizontal bars: rows read, rejected (by reason) and kept, then people per analysis.

    Parameters
    ----------
    flow : DataFrame
        ``results/tables/data_flow.csv``: columns ``stage``, ``source``, ``unit``, ``reason``
        (may be empty) and ``count``, in the order the pipeline wrote them (rows selected by
        :func:`data_flow_rows`). Counts are printed as the table gives them: the published table
        has already suppressed small counts of people (e.g. "<10"), and such a count is drawn as
        a hatched bar reaching the bound it states.
    min_cell : int
        ``privacy.min_cell_count``.
    instrument_names : mapping, optional
        Instrument key -> label (e.g. ``{"phq9": "PHQ-9"}``): a bar of an instrument's
        administrations names it (by its key when it has no label here).
    """
    rows = data_flow_rows(flow)
    counts = pd.to_numeric(rows["count"], errors="coerce")
    labels = [_flow_label(row, instrument_names or {}) for row in rows.itertuples(index=False)]
    fig = Figure(figsize=(8.5, max(2.5, 0.24 * len(rows) + 1.3)), layout="constrained")
    ax = fig.subplots()
    if rows.empty:
        message_panel(ax, "The data-flow table is empty.")
        return fig
    stage_colour = {stage: SERIES_COLOURS[i % len(SERIES_COLOURS)]
                    for i, stage in enumerate(dict.fromkeys(rows["stage"].astype(str)))}
    positions = np.arange(len(rows))[::-1]
    largest = float(np.nanmax(counts.to_numpy(dtype=float))) if counts.notna().any() else 1.0
    largest = max(largest, float(min_cell))
    for position, count, shown, stage in zip(positions, counts, rows["count"],
                                             rows["stage"].astype(str)):
        suppressed = pd.isna(count)
        # a suppressed count ("<10", or ">50" where a complement would reveal a small one) is
        # drawn hatched up to the bound it states
        width = _stated_bound(shown, min_cell) if suppressed else float(count)
        ax.barh(position, width, color="white" if suppressed else stage_colour[stage],
                edgecolor=stage_colour[stage], hatch="///" if suppressed else None)
        text = str(shown) if suppressed else f"{int(count)}"
        ax.text(width + largest * 0.01, position, text, va="center", fontsize=7)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.set_xlim(0, largest * 1.15)
    ax.set_xlabel("Count (rows, administrations, sessions or people); hatched: suppressed, "
                  "drawn to the bound shown")
    handles = [Patch(color=colour, label=stage) for stage, colour in stage_colour.items()]
    ax.legend(handles=handles, loc="lower right", title="stage")
    fig.suptitle("Data flow: rows read, rejected and kept; people in each analysis", fontsize=10)
    return fig


def _stated_bound(text: Any, min_cell: int) -> float:
    match = re.search(r"\d+(\.\d+)?", str(text))
    return float(match.group(0)) if match else float(min_cell)


def _flow_label(row: Any, instrument_names: Mapping[str, str] | None = None) -> str:
    """A bar's label: where (the input table, and the instrument of administrations), what
    (stage and unit) and why (the reason), e.g. "weekly, PHQ-9: read administrations"."""
    names = instrument_names or {}
    stage, unit = str(row.stage), str(row.unit)
    # "gad7: episodes with outcome", not "gad7: episodes episodes with outcome"
    what = unit if unit.startswith(stage) or stage == "analysis" else f"{stage} {unit}"
    instrument = getattr(row, "instrument", None)
    instrument = str(instrument) if isinstance(instrument, str) and instrument else ""
    source = str(row.source)
    # sources that are an instrument's key (derived, episodes, analyses) are named by its label
    key, _, rest = source.partition(" ")
    if key in names:
        source = " ".join(part for part in (names[key], rest) if part)
    if instrument and instrument != key:
        source += f", {names.get(instrument, instrument)}"
    label = f"{source}: {what.replace('_', ' ')}"
    reason = getattr(row, "reason", None)
    if isinstance(reason, str) and reason:
        label += f" ({reason.replace('_', ' ')})"
    return label if len(label) <= 75 else label[:72] + "..."


# --------------------------------------------------------------------------------------------
# missingness and dropout


def clients_still_in(last_session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sessions 1..max and, for each, the clients whose last session is that one or later."""
    last = np.asarray(last_session, dtype=int)
    if last.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    ending = np.bincount(last, minlength=int(last.max()) + 1)
    still_in = np.cumsum(ending[::-1])[::-1]
    sessions = np.arange(1, int(last.max()) + 1)
    return sessions, still_in[1:]


@styled
def missingness_figure(sessions: pd.DataFrame, scores: pd.DataFrame,
                       instruments: Sequence[Any], *, min_cell: int) -> Figure:
    """Dropout and missing data: retention over sessions, missing questionnaires, missing items.

    Parameters
    ----------
    sessions : DataFrame
        ``sessions.parquet``: ``client_id``, ``session``.
    scores : DataFrame
        ``scores.parquet``: ``client_id``, ``session``, ``instrument``, ``n_items_missing``.
    instruments : sequence
        Registry entries to show (``key``, ``label``, ``n_items``).
    min_cell : int
        Curves stop where fewer than this many clients are still in therapy (retention) or
        attended the session (missing data), so no point describes a handful of people.

    Notes
    -----
    Retention at session t is the share of clients whose last recorded session is t or later:
    a curve rather than a histogram of sessions attended, whose bars would often count fewer
    people than the privacy threshold.
    """
    require_columns(sessions, ["client_id", "session"], "sessions")
    require_columns(scores, ["client_id", "session", "instrument", "n_items_missing"], "scores")
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    retention_ax, missing_ax, items_ax = fig.subplots(1, 3)
    attended = sessions[["client_id", "session"]].drop_duplicates()
    last_session = attended.groupby("client_id")["session"].max()
    n_clients = len(last_session)
    if n_clients:
        session_numbers, still_in = clients_still_in(last_session.to_numpy())
        shown = still_in >= min_cell
        retention_ax.step(session_numbers[shown], 100 * still_in[shown] / n_clients,
                          where="post", color=SERIES_COLOURS[0], linewidth=1.5)
        sessions_per_client = attended.groupby("client_id").size()
        retention_ax.set_title(
            f"Retention ({format_count(n_clients, min_cell)} clients;\nmedian "
            f"{sessions_per_client.median():g} sessions attended)")
    else:
        message_panel(retention_ax, "No sessions.")
    retention_ax.set_xlabel("Session")
    retention_ax.set_ylabel("Clients still in therapy (%)")
    retention_ax.set_ylim(0, 105)
    retention_ax.xaxis.get_major_locator().set_params(integer=True)

    per_session = attended.groupby("session").size()
    # every session number from the first to the last: a session with fewer attenders than
    # min_cell (or none) is NaN, so the lines break there instead of joining across it
    if len(per_session):
        per_session = per_session.reindex(np.arange(int(per_session.index.min()),
                                                    int(per_session.index.max()) + 1),
                                          fill_value=0)
    shown_sessions = per_session.index
    hidden = per_session < min_cell
    for i, instrument in enumerate(instruments):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        administered = scores.loc[scores["instrument"] == instrument.key]
        n_given = (administered[["client_id", "session"]].drop_duplicates()
                   .groupby("session").size().reindex(per_session.index, fill_value=0))
        share_absent = (1 - n_given / per_session.replace(0, np.nan)).mask(hidden)
        missing_ax.plot(share_absent.index, 100 * share_absent, marker="o", markersize=3,
                        color=colour, label=instrument.label)
        n_items = float(getattr(instrument, "n_items", np.nan))
        item_share = (administered.groupby("session")["n_items_missing"].sum()
                      / (n_given.replace(0, np.nan) * n_items)).reindex(shown_sessions
                                                                         ).mask(hidden)
        items_ax.plot(item_share.index, 100 * item_share, marker="o", markersize=3,
                      color=colour, label=instrument.label)
    missing_ax.set_xlabel("Session")
    missing_ax.set_ylabel("Attended sessions without\nthe questionnaire (%)")
    missing_ax.set_title("Missing questionnaires")
    items_ax.set_xlabel("Session")
    items_ax.set_ylabel("Items missing in completed\nquestionnaires (%)")
    items_ax.set_title("Missing items")
    for ax in (missing_ax, items_ax):
        ax.set_ylim(bottom=0)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if instruments:
            ax.legend(loc="best")
    fig.suptitle("Dropout and missing data (the models assume missing at random)", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# alliance distribution (ceiling)


@styled
def alliance_distribution_figure(scores: pd.DataFrame, alliance_instrument: Any,
                                 *, min_cell: int) -> Figure:
    """Distribution of alliance scores and the share at the scale's maximum (ceiling check).

    Parameters
    ----------
    scores : DataFrame
        ``scores.parquet``: ``instrument``, ``session``, ``score``.
    alliance_instrument
        Registry entry (``key``, ``label``, ``units``, ``score_min``, ``score_max``).
    min_cell : int
        The share at the maximum is drawn only for sessions with at least this many scores.
    """
    require_columns(scores, ["instrument", "session", "score"], "scores")
    rows = scores.loc[(scores["instrument"] == alliance_instrument.key) & scores["score"].notna(),
                      ["session", "score"]]
    fig = Figure(figsize=(8.5, 3.8), layout="constrained")
    hist_ax, ceiling_ax = fig.subplots(1, 2)
    if rows.empty:
        for ax in (hist_ax, ceiling_ax):
            message_panel(ax, f"No {alliance_instrument.label} scores.")
        return fig
    low = float(getattr(alliance_instrument, "score_min", rows["score"].min()))
    high = float(getattr(alliance_instrument, "score_max", rows["score"].max()))
    bins = np.linspace(low, high, 25)
    hist_ax.hist(rows["score"], bins=bins, color=SERIES_COLOURS[0], edgecolor="white",
                 linewidth=0.4)
    hist_ax.axvline(high, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=1)
    at_ceiling = rows["score"] >= high - 1e-9
    near_ceiling = rows["score"] >= high - 0.1 * (high - low)
    hist_ax.set_xlabel(instrument_axis_label(alliance_instrument))
    hist_ax.set_ylabel("Administrations")
    hist_ax.set_title(f"{len(rows)} administrations: {100 * at_ceiling.mean():.1f}% at the "
                      f"maximum,\n{100 * near_ceiling.mean():.1f}% in the top tenth of the range")
    by_session = rows.assign(at_ceiling=at_ceiling.astype(float)).groupby("session")[
        "at_ceiling"].agg(["mean", "count"])
    if len(by_session):
        by_session = by_session.reindex(np.arange(int(by_session.index.min()),
                                                  int(by_session.index.max()) + 1))
    # sessions with fewer scores than min_cell (or none) are gaps in the line
    by_session["mean"] = by_session["mean"].where(by_session["count"] >= min_cell)
    ceiling_ax.plot(by_session.index, 100 * by_session["mean"], marker="o", markersize=3,
                    color=SERIES_COLOURS[1])
    ceiling_ax.set_xlabel("Session")
    ceiling_ax.set_ylabel(f"Scores at the maximum ({high:g}) (%)")
    ceiling_ax.set_title(f"Ceiling over sessions\n(sessions with {min_cell} or more scores)")
    ceiling_ax.set_ylim(bottom=0)
    ceiling_ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(wrap_title(f"{alliance_instrument.label}: distribution and ceiling", 8.0),
                 fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# figure jobs (analysis.figures.table)


def draw_data_flow(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    names = {key: str(instrument.label) for key, instrument in settings.registry().items()}
    return data_flow_figure(inputs["flow"], min_cell=settings.privacy.min_cell_count,
                            instrument_names=names)


def draw_missingness(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    shown = registry_entries(settings, [*settings.outcomes, settings.alliance])
    return missingness_figure(inputs["sessions"], inputs["scores"], list(shown.values()),
                              min_cell=settings.privacy.min_cell_count)


def draw_alliance_distribution(inputs: Mapping[str, Any], settings: Any,
                               outcome: str | None) -> Figure:
    alliance = settings.registry()[settings.alliance]
    return alliance_distribution_figure(inputs["scores"], alliance,
                                        min_cell=settings.privacy.min_cell_count)


__all__ = [
    "alliance_distribution_figure",
    "clients_still_in",
    "data_flow_figure",
    "data_flow_rows",
    "draw_alliance_distribution",
    "draw_data_flow",
    "draw_missingness",
    "missingness_figure",
]
