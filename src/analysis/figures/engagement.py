"""Figures of engagement beyond the alliance score: dropout, therapists' alliances, sudden gains.

- :func:`dropout_km_figure`: Kaplan-Meier curves of time to dropout by early-alliance tertile
  (``dropout_km``); each curve stops where fewer than ``min_cell`` clients are still at risk,
  so that no step describes a handful of people, and group sizes go through
  :func:`analysis.privacy.format_count`;
- :func:`therapist_patient_figure`: each therapist's mean alliance over their clients against
  their clients' mean pre-post change (``therapist_patient_points``), point size by caseload,
  with the fitted therapist-part slope from ``therapist_patient_alliance``; therapists are not
  named; "not estimated" and the reason when the design cannot carry the decomposition;
- :func:`sudden_gains_figure`: the mean symptom score and mean alliance by session around the
  sudden gains (``sudden_gains_course``), with 95% CIs; sessions with fewer than ``min_cell``
  gains are not drawn.

A figure whose data are absent is still drawn, with the reason in the panel.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures.common import (
    instrument_axis_label,
    instrument_title,
    message_panel,
    number,
    process_name,
    require_columns,
    wrap_text,
    wrap_title,
)
from analysis.figures.style import NEUTRAL_GREY, SERIES_COLOURS, styled
from analysis.privacy import format_count

TERTILE_NAMES = {"low": "Low", "middle": "Middle", "high": "High"}


# --------------------------------------------------------------------------------------------
# time to dropout by early alliance


@styled
def dropout_km_figure(km: pd.DataFrame, alliance_instrument: Any, *, min_cell: int) -> Figure:
    """Kaplan-Meier estimates of staying in treatment by early-alliance tertile (95% CI bands).

    Parameters
    ----------
    km : DataFrame
        ``dropout_km``: ``tertile, session, at_risk, survival, ci_low, ci_high, n_clients,
        alliance_min, alliance_max`` and ``dropout_source`` (a proxy rule or the recorded
        ending, said under the figure).
    alliance_instrument
        The alliance's registry entry (labels).
    min_cell : int
        A curve stops at the last session with at least this many clients at risk.
    """
    require_columns(km, ["tertile", "session", "at_risk", "survival", "ci_low", "ci_high",
                         "n_clients", "alliance_min", "alliance_max"], "dropout_km")
    fig = Figure(figsize=(6.5, 4.4), layout="constrained")
    ax = fig.subplots()
    if km.empty:
        message_panel(ax, "No client has an early-alliance score: no curves to draw.")
        return fig
    drawn = 0
    for index, (name, label) in enumerate(TERTILE_NAMES.items()):
        curve = km.loc[km["tertile"].astype(str) == name].sort_values("session")
        if curve.empty:
            continue
        shown = curve.loc[curve["at_risk"] >= min_cell]
        if shown.empty:
            continue
        drawn += 1
        # the step function starts at 1 before the first session with an event or censoring
        x = np.concatenate([[0.0], shown["session"].to_numpy(dtype=float)])
        y = np.concatenate([[1.0], shown["survival"].to_numpy(dtype=float)])
        low = np.concatenate([[1.0], shown["ci_low"].to_numpy(dtype=float)])
        high = np.concatenate([[1.0], shown["ci_high"].to_numpy(dtype=float)])
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        first = curve.iloc[0]
        n = format_count(int(first["n_clients"]), min_cell)
        ax.step(x, y, where="post", color=colour, linewidth=1.5,
                label=f"{label} early {alliance_instrument.label} "
                      f"({number(first['alliance_min']):.2f}-"
                      f"{number(first['alliance_max']):.2f}; n = {n})")
        ax.fill_between(x, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
    if not drawn:
        message_panel(ax, f"Every tertile has fewer than {min_cell} clients at risk: the "
                          "curves are not drawn.")
        return fig
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("Session (last attended)")
    ax.set_ylabel("Share not dropped out")
    ax.set_title(wrap_title(f"Time to dropout by early {process_name(alliance_instrument)}",
                            5.3))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="lower left")
    proxy = "dropout_source" not in km or km["dropout_source"].astype(str).str.startswith(
        "proxy").any()
    source = ("dropout by the proxy rule (no recorded ending)" if proxy
              else "dropout as recorded (ending column)")
    fig.supxlabel(wrap_text(f"Kaplan-Meier estimates with 95% CI; {source}; each curve stops "
                            f"where fewer than {min_cell} clients are at risk.", 100),
                  fontsize=7, color=NEUTRAL_GREY)
    return fig


def draw_dropout_km(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    return dropout_km_figure(inputs["km"], registry[settings.alliance],
                             min_cell=settings.privacy.min_cell_count)


# --------------------------------------------------------------------------------------------
# therapists' mean alliance against their clients' outcomes


@styled
def therapist_patient_figure(points: pd.DataFrame, table: pd.DataFrame, outcome_instrument: Any,
                             alliance_instrument: Any, *, min_cell: int) -> Figure:
    """Therapist mean alliance against their clients' mean pre-post change, with the slope.

    Parameters
    ----------
    points : DataFrame
        ``therapist_patient_points`` (all outcomes; the outcome's rows are drawn).
    table : DataFrame
        ``therapist_patient_alliance``: the status and reason, and the ``alliance_therapist``
        estimate drawn as the slope through the mean.
    outcome_instrument, alliance_instrument
        Registry entries (the outcome's ``key`` selects the rows).
    min_cell : int
        For the number of therapists and clients in the note.
    """
    key = outcome_instrument.key
    require_columns(points, ["outcome", "n_clients", "alliance_mean", "mean_change"],
                    "therapist_patient_points")
    fig = Figure(figsize=(6.0, 4.4), layout="constrained")
    ax = fig.subplots()
    rows = table.loc[table["outcome"].astype(str) == key] if "outcome" in table else table
    status = rows["status"].astype(str).iloc[0] if len(rows) else "not_estimated"
    if status != "estimated":
        reason = rows["reason"].astype(str).iloc[0] if len(rows) else "no result in this run"
        message_panel(ax, f"Therapist and patient parts of the alliance not estimated for "
                          f"{outcome_instrument.label}: {reason}.")
        return fig
    mine = points.loc[points["outcome"].astype(str) == key]
    if mine.empty:
        message_panel(ax, "No therapist in the decomposition.")
        return fig
    sizes = 12 + 6 * np.sqrt(mine["n_clients"].to_numpy(dtype=float))
    ax.scatter(mine["alliance_mean"], mine["mean_change"], s=sizes, color=SERIES_COLOURS[0],
               alpha=0.7, edgecolors="white", linewidths=0.5, zorder=3)
    slope = rows.loc[rows["term"].astype(str) == "alliance_therapist", "estimate"]
    if len(slope) and np.isfinite(number(slope.iloc[0])):
        weights = mine["n_clients"].to_numpy(dtype=float)
        x_mean = float(np.average(mine["alliance_mean"], weights=weights))
        y_mean = float(np.average(mine["mean_change"], weights=weights))
        span = np.array([mine["alliance_mean"].min(), mine["alliance_mean"].max()])
        ax.plot(span, y_mean + number(slope.iloc[0]) * (span - x_mean), color=NEUTRAL_GREY,
                linewidth=1.2, linestyle="--", zorder=2,
                label=f"therapist part: {number(slope.iloc[0]):+.2f} points per "
                      f"{alliance_instrument.label} point")
        ax.legend(loc="best")
    ax.axhline(0, color=NEUTRAL_GREY, linewidth=0.6, zorder=1)
    ax.set_xlabel(f"Therapist's mean {alliance_instrument.label} over their clients")
    ax.set_ylabel(f"Clients' mean change, {instrument_axis_label(outcome_instrument)}")
    ax.set_title(wrap_title(f"{instrument_title(outcome_instrument)}: therapists' "
                            f"{process_name(alliance_instrument)} and their clients' change",
                            4.8))
    # the counts as the table publishes them (small cells and their complements hidden)
    n_therapists = _published(rows, "n_therapists", len(mine), min_cell)
    n_clients = _published(rows, "n_clients", int(mine["n_clients"].sum()), min_cell)
    fig.supxlabel(wrap_text(f"One point per therapist ({n_therapists} therapists, {n_clients} "
                            "clients; size by caseload); the line is the model's therapist-part "
                            "slope, adjusted for the start score.", 95),
                  fontsize=7, color=NEUTRAL_GREY)
    return fig


def _published(rows: pd.DataFrame, column: str, count: int, min_cell: int) -> str:
    if column in rows and len(rows) and pd.notna(rows[column].iloc[0]):
        return str(rows[column].iloc[0])
    return format_count(count, min_cell)


def draw_therapist_patient(inputs: Mapping[str, Any], settings: Any,
                           outcome: str | None) -> Figure:
    registry = settings.registry()
    return therapist_patient_figure(inputs["points"], inputs["table"], registry[outcome],
                                    registry[settings.alliance],
                                    min_cell=settings.privacy.min_cell_count)


# --------------------------------------------------------------------------------------------
# the average course around a sudden gain


@styled
def sudden_gains_figure(course: pd.DataFrame, outcome_instrument: Any, alliance_instrument: Any,
                        *, min_cell: int) -> Figure:
    """Mean symptoms (left) and alliance (right) by session around the sudden gains (95% CI).

    Parameters
    ----------
    course : DataFrame
        ``sudden_gains_course`` (all outcomes): ``outcome, measure, offset, mean, se,
        n_gains``; offset 0 is the pregain session, 1 the postgain session.
    outcome_instrument, alliance_instrument
        Registry entries (the outcome's ``key`` selects the rows).
    min_cell : int
        Sessions with fewer gains than this are not drawn.
    """
    require_columns(course, ["outcome", "measure", "offset", "mean", "se", "n_gains"],
                    "sudden_gains_course")
    mine = course.loc[course["outcome"].astype(str) == outcome_instrument.key]
    fig = Figure(figsize=(7.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    if mine.empty:
        for ax in axes:
            message_panel(ax, f"No sudden gain in {outcome_instrument.label}.")
        return fig
    panels = (("symptoms", instrument_axis_label(outcome_instrument), SERIES_COLOURS[0]),
              ("alliance", alliance_instrument.label, SERIES_COLOURS[1]))
    n_gains = int(mine["n_gains"].max())
    for ax, (measure, label, colour) in zip(axes, panels):
        rows = mine.loc[(mine["measure"].astype(str) == measure)
                        & (mine["n_gains"] >= min_cell)].sort_values("offset")
        if rows.empty:
            message_panel(ax, f"Fewer than {min_cell} gains at every session.")
            continue
        half = 1.96 * rows["se"].to_numpy(dtype=float)
        ax.errorbar(rows["offset"], rows["mean"], yerr=half, color=colour, marker="o",
                    markersize=3.5, linewidth=1.4, capsize=2)
        ax.axvline(0.5, color=NEUTRAL_GREY, linewidth=0.8, linestyle=":")
        ax.set_xlabel("Session relative to the pregain session")
        ax.set_ylabel(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_title(wrap_title(instrument_title(outcome_instrument), 3.0))
    axes[1].set_title(wrap_title(f"{process_name(alliance_instrument).capitalize()} around the "
                                 "gain", 3.0))
    fig.suptitle(f"Around the sudden gains in {outcome_instrument.label} "
                 f"(n = {format_count(n_gains, min_cell)} gains)", fontsize=10)
    fig.supxlabel(wrap_text("Means with 95% CI; the dotted line marks the gain (pregain session "
                            f"0, postgain session 1); sessions with fewer than {min_cell} gains "
                            "are not shown.", 110), fontsize=7, color=NEUTRAL_GREY)
    return fig


def draw_sudden_gains(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    return sudden_gains_figure(inputs["course"], registry[outcome], registry[settings.alliance],
                               min_cell=settings.privacy.min_cell_count)


__all__ = ["draw_dropout_km", "draw_sudden_gains", "draw_therapist_patient",
           "dropout_km_figure", "sudden_gains_figure", "therapist_patient_figure"]
