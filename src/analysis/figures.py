"""Figures for reviewers: what the data look like and what the models found.

Each public ``*_figure`` function takes tidy DataFrames (the pipeline's processed files and result
tables, with the columns documented in each docstring) plus the instruments concerned (objects
from the :mod:`analysis.instruments` registry, whose ``label`` and ``units`` name the axes) and
returns a :class:`matplotlib.figure.Figure`; nothing is read from or written to disk there.
:func:`save_figure` writes a figure as SVG and 300-dpi PNG, atomically and byte-identically for
the same figure. Two helpers refit a mixed model to obtain what the result tables do not hold:
:func:`refit_mixed_model` gives random effects with their conditional variances (therapist
caterpillar plot) and residuals (diagnostics). Colours are the Okabe-Ito palette, which stays
distinguishable under the common colour-vision deficiencies. Counts of people printed on a figure
go through :func:`analysis.privacy.format_count`, and individual clients' data are drawn only when
the caller says the configuration allows it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats

from analysis.errors import DataError
from analysis.io import atomic_path
from analysis.presentation import (
    adjusted_p_column,
    analysis_label,
    analysis_order,
    model_title,
    select_alliance_terms,
    term_family,
    term_label,
)
from analysis.privacy import format_count

# Okabe & Ito (2008), "Color universal design": the eight colours by name.
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

# Everything that decides how a figure looks or how its files are written lives here, so the
# same figure always gives the same bytes: a bundled font (DejaVu Sans ships with matplotlib),
# text drawn as paths (no dependence on the viewer's fonts), and a fixed salt for SVG element ids.
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


log = logging.getLogger(__name__)

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _styled(function: _Fn) -> _Fn:
    """Run a figure function under :data:`FIGURE_STYLE` without touching global settings."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(FIGURE_STYLE):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save_figure(fig: Figure, svg_path: str | os.PathLike[str],
                png_path: str | os.PathLike[str], dpi: int = PNG_DPI) -> None:
    """Write ``fig`` as SVG and as a PNG (300 dpi unless ``figures.png_dpi`` says otherwise),
    each atomically.

    The files carry no creation date or software version, and SVG element ids come from a fixed
    salt, so saving the same figure twice gives byte-identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. from :func:`forest_alliance_figure`.
    svg_path, png_path : path-like
        Where to write the two files; folders are created as needed.
    """
    with matplotlib.rc_context(FIGURE_STYLE):
        with atomic_path(svg_path) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None})
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def figure_names(alliance: str, outcomes: Sequence[str], models_run: Sequence[str]) -> list[str]:
    """Every figure a study asks for, as file names without extension.

    One forest plot, data flow, missingness and alliance distribution; per outcome its
    trajectories, within-client alliance, Jacobson-Truax plot, and, when their models are run,
    the therapist caterpillar plot (R3) and the residual diagnostics (M2).
    """
    names = ["forest_alliance", "data_flow", "missingness", "alliance_distribution"]
    for outcome in outcomes:
        names += [f"trajectories_{outcome}", f"alliance_within_next_{outcome}",
                  f"jacobson_truax_{outcome}"]
        if "R3" in models_run:
            names.append(f"therapist_caterpillar_{outcome}")
        if "M2" in models_run:
            names.append(f"residuals_{outcome}")
    return names


def figure_paths(alliance: str, outcomes: Sequence[str], models_run: Sequence[str],
                 folder: str = "results/figures") -> list[str]:
    """The SVG and PNG path of every figure of :func:`figure_names`."""
    return [f"{folder}/{name}.{extension}" for name in figure_names(alliance, outcomes, models_run)
            for extension in ("svg", "png")]


# --------------------------------------------------------------------------------------------
# small shared pieces


def instrument_axis_label(instrument: Any) -> str:
    """The axis label of an instrument's score: its ``units`` (e.g. "PHQ-9 total (0-27)")."""
    units = getattr(instrument, "units", None)
    return str(units) if units else str(getattr(instrument, "label", instrument))


def mean_confidence_intervals(data: pd.DataFrame, by: str | list[str], value: str,
                              level: float = 0.95) -> pd.DataFrame:
    """Mean of ``value`` per group of ``by`` with a t-based confidence interval.

    Returns one row per group with columns ``by``..., ``mean``, ``sd``, ``n``, ``ci_low``,
    ``ci_high`` (the interval is NaN for groups of one), sorted by ``by``. The interval treats
    observations as independent: a description of the data, not a model.
    """
    keys = [by] if isinstance(by, str) else list(by)
    observed = data.loc[data[value].notna(), keys + [value]]
    summary = (
        observed.groupby(keys, sort=True, observed=True)[value]
        .agg(mean="mean", sd="std", n="count")
        .reset_index()
    )
    n = summary["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = stats.t.ppf(0.5 + level / 2, np.where(n > 1, n - 1, np.nan))
        half_width = critical * summary["sd"].to_numpy(dtype=float) / np.sqrt(n)
    summary["ci_low"] = summary["mean"] - half_width
    summary["ci_high"] = summary["mean"] + half_width
    return summary


def _message_panel(ax: Axes, message: str) -> None:
    # A figure whose data are absent still gets drawn, saying why: a missing file would stop the
    # pipeline, and an empty axis would leave the reader guessing.
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes,
            color=NEUTRAL_GREY)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _outcome_rows(derived: pd.DataFrame, outcome: str) -> pd.DataFrame:
    _require_columns(derived, ["outcome"], "derived")
    return derived.loc[derived["outcome"] == outcome]


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: required column(s) {', '.join(missing)} not found (columns present: "
            f"{', '.join(map(str, frame.columns))}); rerun the stage that writes it."
        )


def outcome_row(table: pd.DataFrame, outcome: str, name: str) -> dict[str, Any]:
    """The row of a per-outcome table (``jacobson_truax.csv``, ``therapist_icc.csv``) as a dict.

    An outcome without a row gives an empty dict (the figure is drawn without those numbers) and
    a warning in the log naming the table.
    """
    _require_columns(table, ["outcome"], name)
    rows = table.loc[table["outcome"].astype(str) == outcome]
    if rows.empty:
        log.warning("%s has no row for outcome %s; the figure is drawn without it", name, outcome)
        return {}
    return {key: (None if pd.isna(value) else value) for key, value in rows.iloc[0].items()}


def _instrument_title(instrument: Any) -> str:
    label = getattr(instrument, "label", str(instrument))
    construct = getattr(instrument, "construct", None)
    return f"{label} ({construct})" if construct else str(label)


# --------------------------------------------------------------------------------------------
# data flow


def data_flow_rows(flow: pd.DataFrame) -> pd.DataFrame:
    """The rows of the data-flow table worth a bar: everything but the per-fit detail.

    The analysis stage lists observations, clients and therapists for every fit; the figure
    keeps the clients of the primary analysis of each model (``source`` ending in "primary").
    Columns dropped at ingest (stage ``dropped_column``) are left out.
    """
    _require_columns(flow, ["stage", "source", "unit", "count"], "data_flow")
    stage = flow["stage"].astype(str)
    primary_clients = (flow["unit"].astype(str) == "clients") & flow["source"].astype(
        str).str.endswith(" primary")
    # Identifying columns dropped at ingest are a privacy record, not a flow of rows: the
    # report lists them in its exclusions table.
    keep = ~stage.str.startswith("dropped") & ((stage != "analysis") | primary_clients)
    return flow.loc[keep].reset_index(drop=True)


@_styled
def data_flow_figure(flow: pd.DataFrame, *, min_cell: int) -> Figure:
    """Horizontal bars: rows read, rejected (by reason) and kept, then people per analysis.

    Parameters
    ----------
    flow : DataFrame
        ``results/tables/data_flow.csv``: columns ``stage``, ``source``, ``unit``, ``reason``
        (may be empty) and ``count``, in the order the pipeline wrote them (rows selected by
        :func:`data_flow_rows`). Counts are printed as the table gives them: the published table
        has already suppressed small counts of people (e.g. "<10"), and such a count is drawn as
        a hatched bar reaching ``min_cell``.
    min_cell : int
        ``privacy.min_cell_count``.
    """
    rows = data_flow_rows(flow)
    counts = pd.to_numeric(rows["count"], errors="coerce")
    labels = [_flow_label(row) for row in rows.itertuples(index=False)]
    fig = Figure(figsize=(8.5, max(2.5, 0.24 * len(rows) + 1.3)), layout="constrained")
    ax = fig.subplots()
    if rows.empty:
        _message_panel(ax, "The data-flow table is empty.")
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


def _flow_label(row: Any) -> str:
    stage, unit = str(row.stage), str(row.unit)
    # "gad7: episodes with outcome", not "gad7: episodes episodes with outcome"
    what = unit if unit.startswith(stage) or stage == "analysis" else f"{stage} {unit}"
    label = f"{row.source}: {what.replace('_', ' ')}"
    reason = getattr(row, "reason", None)
    if isinstance(reason, str) and reason:
        label += f" ({reason.replace('_', ' ')})"
    return label if len(label) <= 75 else label[:72] + "..."


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
    _require_columns(derived, ["client_id", "alliance_early"], "derived")
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


@_styled
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
        ``privacy.show_individual_trajectories`` is true).
    n_groups : int
        Groups of early alliance (3 = tertiles).
    """
    rows = _outcome_rows(derived, outcome_instrument.key)
    _require_columns(rows, ["client_id", "session", "symptom_score", "alliance_early"], "derived")
    groups = early_alliance_groups(rows, n_groups)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    if groups.empty:
        _message_panel(ax, "No client has an early-alliance score.")
        return fig
    data = rows.merge(groups[["client_id", "group", "group_low", "group_high"]], on="client_id")
    if show_individual:
        for _, client_rows in data.sort_values(["client_id", "session"]).groupby("client_id"):
            observed = client_rows.loc[client_rows["symptom_score"].notna()]
            ax.plot(observed["session"], observed["symptom_score"], color=NEUTRAL_GREY,
                    linewidth=0.3, alpha=0.35, zorder=1)
    summary = mean_confidence_intervals(data, ["group", "session"], "symptom_score")
    summary = summary.loc[summary["n"] >= min_cell]
    names = _group_names(groups["group"].nunique())
    offsets = np.linspace(-0.12, 0.12, groups["group"].nunique())
    for group, group_info in groups.groupby("group", sort=True):
        points = summary.loc[summary["group"] == group]
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
    ax.set_title(f"{_instrument_title(outcome_instrument)} over sessions by early alliance")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best")
    fig.supxlabel(f"Means with 95% CI; sessions with fewer than {min_cell} clients in a group "
                  "are not shown.", fontsize=7, color=NEUTRAL_GREY)
    return fig


def _group_names(n_groups: int) -> list[str]:
    if n_groups == 3:
        return ["Low", "Middle", "High"]
    if n_groups == 2:
        return ["Lower", "Upper"]
    return [f"Group {i + 1}" for i in range(n_groups)]


# --------------------------------------------------------------------------------------------
# within-client alliance and next-session symptoms


def binned_means(data: pd.DataFrame, x: str, y: str, n_bins: int = 10) -> pd.DataFrame:
    """Means of ``y`` (95% CI) within equal-count bins of ``x``.

    Returns one row per bin: ``bin``, ``x_mean`` (mean of ``x`` in the bin), ``mean``, ``sd``,
    ``n``, ``ci_low``, ``ci_high``. Rows missing ``x`` or ``y`` are left out; ties in ``x`` are
    split by row order, so bins are equal-sized.
    """
    observed = data.loc[data[x].notna() & data[y].notna(), [x, y]]
    observed = observed.sort_values(x, kind="stable").reset_index(drop=True)
    if observed.empty:
        return pd.DataFrame(columns=["bin", "x_mean", "mean", "sd", "n", "ci_low", "ci_high"])
    bins = min(n_bins, len(observed))
    observed["bin"] = np.arange(len(observed)) * bins // len(observed)
    summary = mean_confidence_intervals(observed, "bin", y)
    x_means = observed.groupby("bin")[x].mean().rename("x_mean")
    return summary.merge(x_means, left_on="bin", right_index=True)[
        ["bin", "x_mean", "mean", "sd", "n", "ci_low", "ci_high"]
    ]


@_styled
def alliance_within_next_figure(derived: pd.DataFrame, outcome_instrument: Any,
                                alliance_instrument: Any, *, min_cell: int,
                                n_bins: int = 10) -> Figure:
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
    n_bins : int
        Number of equal-count bins.
    """
    rows = _outcome_rows(derived, outcome_instrument.key)
    _require_columns(rows, ["client_id", "alliance_within", "symptom_score", "symptom_next"],
                     "derived")
    pairs = rows.loc[rows["alliance_within"].notna() & rows["symptom_next"].notna()].copy()
    pairs["symptom_change_next"] = pairs["symptom_next"] - pairs["symptom_score"]
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    if pairs.empty:
        for ax in axes:
            _message_panel(ax, "No consecutive sessions with alliance and symptom scores.")
        return fig
    score_label = instrument_axis_label(outcome_instrument)
    panels = [
        ("symptom_next", f"Next-session {score_label}", "Next-session score"),
        ("symptom_change_next", f"Change to next session\n{score_label}", "Change to next session"),
    ]
    for ax, (column, y_label, title) in zip(axes, panels):
        summary = binned_means(pairs, "alliance_within", column, n_bins)
        summary = summary.loc[summary["n"] >= min_cell]
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
    n_clients = format_count(pairs["client_id"].nunique(), min_cell)
    fig.suptitle(f"{_instrument_title(outcome_instrument)}: alliance at a session and symptoms "
                 f"at the next ({len(pairs)} session pairs, {n_clients} clients)", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# forest plot of the alliance terms







def _row_labels(row_keys: list[tuple[str, str, str]]) -> list[str]:
    # "model · term"; where two analyses give the same label, the non-primary ones say which
    # analysis they come from
    base = [f"{model_title(model)} · {term_label(term)}" for model, term, _ in row_keys]
    counts = pd.Series(base).value_counts()
    return [
        label if counts[label] == 1 or analysis == "primary"
        else f"{label} ({analysis_label(analysis)})"
        for label, (_, _, analysis) in zip(base, row_keys)
    ]



@_styled
def forest_alliance_figure(models: pd.DataFrame, outcome_instruments: Mapping[str, Any],
                           alliance_instrument: Any) -> Figure:
    """Forest plot: every alliance term with its 95% CI, per outcome, model and analysis.

    Parameters
    ----------
    models : DataFrame
        ``results/tables/models.csv``: columns ``outcome``, ``model``, ``analysis``, ``term``,
        ``estimate``, ``ci_low``, ``ci_high``; optional ``p_holm``/``p_bh`` (an adjusted p below
        .05 draws a filled marker, otherwise hollow).
    outcome_instruments : mapping
        Registry entries by outcome key, in the order the panels should appear (the config's
        ``analysis.outcomes``); an outcome of the table missing from it comes last, titled by
        its key.
    alliance_instrument
        The alliance instrument's registry entry.

    Notes
    -----
    One panel per outcome (their scales differ). Rows are grouped by model, then within-client
    terms before between-client terms, then by analysis (primary first); colour marks the
    analysis.
    """
    terms = select_alliance_terms(models)
    present = list(dict.fromkeys(terms["outcome"].astype(str)))
    outcomes = [key for key in outcome_instruments if key in present]
    outcomes += sorted(key for key in present if key not in outcomes)
    row_keys = sorted(
        {(str(m), str(t), str(a)) for m, t, a in zip(terms["model"], terms["term"],
                                                      terms["analysis"])},
        key=lambda key: (key[0], term_family(key[1]), analysis_order(key[2]), key[1]),
    )
    height = max(2.8, 0.22 * len(row_keys) + 1.6)
    fig = Figure(figsize=(max(6.0, 3.4 * max(len(outcomes), 1) + 3.0), height),
                 layout="constrained")
    if not outcomes:
        _message_panel(fig.subplots(), "No alliance terms in the model table.")
        return fig
    axes = np.atleast_1d(fig.subplots(1, len(outcomes), sharey=True))
    position = {key: len(row_keys) - 1 - i for i, key in enumerate(row_keys)}
    analyses = sorted({key[2] for key in row_keys}, key=analysis_order)
    colour = {analysis: SERIES_COLOURS[i % len(SERIES_COLOURS)]
              for i, analysis in enumerate(analyses)}
    adjusted = adjusted_p_column(terms)
    for ax, outcome in zip(axes, outcomes):
        rows = terms.loc[terms["outcome"].astype(str) == outcome]
        for row, p_adjusted in zip(rows.itertuples(index=False), adjusted.loc[rows.index]):
            key = (str(row.model), str(row.term), str(row.analysis))
            significant = bool(pd.notna(p_adjusted) and p_adjusted < 0.05)
            ax.errorbar(row.estimate, position[key],
                        xerr=[[row.estimate - row.ci_low], [row.ci_high - row.estimate]],
                        color=colour[key[2]], marker="o", markersize=4.5, capsize=2,
                        linewidth=1.2,
                        markerfacecolor=colour[key[2]] if significant else "white")
        ax.axvline(0, color=NEUTRAL_GREY, linewidth=0.8, linestyle="--")
        instrument = outcome_instruments.get(outcome)
        ax.set_title(_instrument_title(instrument) if instrument is not None else outcome)
        units = instrument_axis_label(instrument) if instrument is not None else outcome
        ax.set_xlabel(f"Difference in {units}\nper 1 point of {alliance_instrument.label} "
                      "(95% CI)")
    axes[0].set_yticks(list(position.values()), _row_labels(list(position)))
    axes[0].set_ylim(-0.7, len(row_keys) - 0.3)
    handles = [Line2D([], [], color=colour[a], marker="o", linestyle="-",
                      label=analysis_label(a)) for a in analyses]
    handles.append(Line2D([], [], color=NEUTRAL_GREY, marker="o", markerfacecolor="white",
                          linestyle="none", label="hollow: adjusted p >= .05"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    fig.suptitle("Alliance terms across outcomes, models and sensitivity analyses", fontsize=10)
    return fig



# --------------------------------------------------------------------------------------------
# refitting a mixed model for random effects and residuals


@dataclass(frozen=True)
class ModelRefit:
    """What a refit gives the figures.

    Attributes
    ----------
    random_effects : DataFrame
        ``group`` (grouping column), ``level`` (pseudonym), ``term``, ``estimate`` (conditional
        mode), ``se`` (square root of the conditional variance), ``ci_low``, ``ci_high``
        (estimate +/- 1.96 se), sorted by group, term and level.
    residuals : DataFrame
        ``client_id``, ``session``, ``fitted``, ``residual`` for every row used in the fit.
    formula : str
        The formula fitted.
    n_obs : int
        Rows used.
    """

    random_effects: pd.DataFrame
    residuals: pd.DataFrame
    formula: str
    n_obs: int


def formula_variables(formula: str, columns: Sequence[str]) -> list[str]:
    """The names in an lme4-style formula that are columns of the data, in order of appearance."""
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula)
    return list(dict.fromkeys(name for name in names if name in set(columns)))


def refit_mixed_model(derived: pd.DataFrame, outcome: str, formula: str,
                      reml: bool = True) -> ModelRefit:
    """Refit an lme4-syntax model with mixedlm on one outcome's rows of ``derived``.

    Rows missing any variable of the formula are dropped first (as the models stage does).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``.
    outcome : str
        Outcome instrument key selecting the rows.
    formula : str
        The final formula of the fit (``model_fit.csv``), after any fallback.
    reml : bool
        REML (True) or ML.
    """
    import mixedlm  # imported here: only the two figures that refit need the compiled engine

    rows = _outcome_rows(derived, outcome)
    variables = formula_variables(formula, list(rows.columns))
    data = rows.dropna(subset=variables).sort_values(["client_id", "session"], kind="stable")
    data = data.reset_index(drop=True)
    if data.empty:
        raise DataError(f"derived.parquet: no complete rows for outcome {outcome} and formula "
                        f"{formula}; check the derive stage's output.")
    for column in ("client_id", "therapist_id"):
        if column in variables:
            # the engine wants plain strings for grouping factors
            data[column] = data[column].astype(str)
    fit = mixedlm.lmer(formula, data[variables], REML=reml)
    effects = fit.ranef(condVar=True)
    level_names = {structure.grouping_factor: list(structure.level_map)
                   for structure in fit.matrices.random_structures}
    frames = []
    for group, terms in effects.values.items():
        for term, estimates in terms.items():
            variances = np.asarray(effects.condVar[group][term], dtype=float)
            frames.append(pd.DataFrame({
                "group": group, "level": level_names[group], "term": term,
                "estimate": np.asarray(estimates, dtype=float),
                "se": np.sqrt(np.clip(variances, 0.0, None)),
            }))
    random_effects = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["group", "level", "term", "estimate", "se"])
    random_effects["ci_low"] = random_effects["estimate"] - 1.959964 * random_effects["se"]
    random_effects["ci_high"] = random_effects["estimate"] + 1.959964 * random_effects["se"]
    random_effects = random_effects.sort_values(["group", "term", "level"], kind="stable")
    residuals = pd.DataFrame({
        "client_id": data["client_id"].to_numpy(),
        "session": data["session"].to_numpy(),
        "fitted": np.asarray(fit.fitted(), dtype=float),
        "residual": np.asarray(fit.residuals(), dtype=float),
    })
    return ModelRefit(random_effects=random_effects.reset_index(drop=True), residuals=residuals,
                      formula=formula, n_obs=len(data))


def fitted_formula(model_fit: pd.DataFrame, outcome: str, model: str,
                   analysis: str = "primary") -> str:
    """The final formula of one fit from ``model_fit.csv`` (after any random-effects fallback)."""
    _require_columns(model_fit, ["outcome", "model", "analysis", "formula"], "model_fit")
    match = model_fit.loc[(model_fit["outcome"] == outcome) & (model_fit["model"] == model)
                          & (model_fit["analysis"] == analysis), "formula"].dropna()
    if match.empty:
        raise DataError(f"model_fit.csv: no formula for outcome {outcome}, model {model}, "
                        f"analysis {analysis}; is {model} listed under models.run in "
                        "config/config.yaml?")
    return str(match.iloc[0])


# --------------------------------------------------------------------------------------------
# therapist caterpillar plot


@_styled
def therapist_caterpillar_figure(random_effects: pd.DataFrame, outcome_instrument: Any,
                                 *, group: str = "therapist_id",
                                 variance_share: float | None = None) -> Figure:
    """Therapists' random intercepts, sorted, with 95% intervals (a caterpillar plot).

    Parameters
    ----------
    random_effects : DataFrame
        ``ModelRefit.random_effects`` of the therapist-ICC model (R3): ``group``, ``term``,
        ``estimate``, ``ci_low``, ``ci_high``. Therapists are shown by rank, never by pseudonym.
    outcome_instrument
        Registry entry for the axis label.
    group : str
        The grouping column of therapists.
    variance_share : float, optional
        The ICC (share of variance between therapists) to print in the title.
    """
    _require_columns(random_effects, ["group", "term", "estimate", "se", "ci_low", "ci_high"],
                     "random_effects")
    intercepts = random_effects.loc[(random_effects["group"] == group)
                                    & (random_effects["term"] == "(Intercept)")]
    intercepts = intercepts.sort_values(["estimate", "ci_low"], kind="stable")
    intercepts = intercepts.reset_index(drop=True)
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    if intercepts.empty:
        _message_panel(ax, "The fitted model has no therapist term (it was dropped in the\n"
                           "random-effects fallback or the data have one therapist).")
        return fig
    rank = np.arange(1, len(intercepts) + 1)
    ax.errorbar(rank, intercepts["estimate"],
                yerr=[intercepts["estimate"] - intercepts["ci_low"],
                      intercepts["ci_high"] - intercepts["estimate"]],
                color=SERIES_COLOURS[0], marker="o", markersize=3, linestyle="none",
                linewidth=0.9, capsize=0)
    ax.axhline(0, color=NEUTRAL_GREY, linewidth=0.8, linestyle="--")
    ax.set_xlabel("Therapist (ranked by random intercept)")
    ax.set_ylabel(f"Therapist deviation in {instrument_axis_label(outcome_instrument)}")
    title = f"{_instrument_title(outcome_instrument)}: therapist random intercepts (95% intervals)"
    if variance_share is not None and np.isfinite(variance_share):
        title += f"\nShare of variance between therapists (ICC) = {variance_share:.3f}"
    if np.allclose(intercepts["estimate"], 0) and np.allclose(intercepts["se"], 0):
        title += "\n(therapist variance estimated at zero: every intercept is 0)"
    ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# Jacobson-Truax plot


@_styled
def jacobson_truax_figure(episodes: pd.DataFrame, parameters: Mapping[str, Any],
                          outcome_instrument: Any, *, min_cell: int,
                          show_individual: bool = False) -> Figure:
    """First against last score per client, with the reliable-change band and cut-off lines.

    Parameters
    ----------
    episodes : DataFrame
        ``episodes.parquet``: columns ``outcome``, ``first_score``, ``last_score``, ``n_scored``.
        Episodes with fewer than two scores have no last score to draw and are counted in the
        title.
    parameters : mapping
        Jacobson-Truax numbers for this outcome: ``s_diff`` (standard error of the difference),
        ``cutoff`` (clinical-significance cut-off, may be NaN) and ``cutoff_formula`` (e.g. "a"
        or "c").
    outcome_instrument
        Registry entry: labels, score range and ``direction`` (which side is improvement).
    min_cell : int
        Region counts use ``format_count``; without individual display, a hexagon is drawn only
        when it holds at least ``min_cell`` clients.
    show_individual : bool
        Draw one point per client (sized by how many share the same pair of scores) instead of
        suppressed hexagons; only when ``privacy.show_individual_trajectories`` is true.
    """
    rows = episodes.loc[episodes["outcome"] == outcome_instrument.key]
    _require_columns(rows, ["first_score", "last_score", "n_scored"], "episodes")
    pairs = rows.loc[(rows["n_scored"] >= 2) & rows["first_score"].notna()
                     & rows["last_score"].notna(), ["first_score", "last_score"]]
    n_short = int((rows["n_scored"] < 2).sum())
    low = float(getattr(outcome_instrument, "score_min", np.nan))
    high = float(getattr(outcome_instrument, "score_max", np.nan))
    if not (np.isfinite(low) and np.isfinite(high)):
        low = float(np.nanmin(pairs.to_numpy())) if not pairs.empty else 0.0
        high = float(np.nanmax(pairs.to_numpy())) if not pairs.empty else 1.0
    fig = Figure(figsize=(5.6, 5.4), layout="constrained")
    ax = fig.subplots()
    label = instrument_axis_label(outcome_instrument)
    if pairs.empty:
        _message_panel(ax, "No episode has two or more scores.")
        return fig
    criterion = _number(parameters.get("rci_criterion"), default=1.96)
    band = _number(parameters.get("reliable_change_points"),
                   default=criterion * _number(parameters.get("s_diff")))
    grid = np.array([low, high])
    ax.plot(grid, grid, color="black", linewidth=0.8)
    if np.isfinite(band):
        ax.fill_between(grid, grid - band, grid + band, color=OKABE_ITO["sky_blue"], alpha=0.25,
                        linewidth=0, label=f"no reliable change (|RC| <= {criterion:g}: "
                                           f"within {band:.1f} points)")
    cutoff = _number(parameters.get("cutoff"))
    if np.isfinite(cutoff):
        formula = parameters.get("cutoff_formula") or ""
        ax.axhline(cutoff, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.9,
                   label=f"clinical cut-off {formula} = {cutoff:.1f}".replace("  ", " "))
        ax.axvline(cutoff, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.9)
    counts_note = ""
    if show_individual:
        counts = pairs.value_counts().rename("n").reset_index()
        ax.scatter(counts["first_score"], counts["last_score"], s=8 + 6 * counts["n"],
                   color=SERIES_COLOURS[0], alpha=0.6, linewidths=0, label="clients")
    else:
        cells = ax.hexbin(pairs["first_score"], pairs["last_score"], gridsize=9,
                          extent=(low, high, low, high), mincnt=max(min_cell, 1),
                          cmap="cividis_r", linewidths=0.2)
        counts_note = f"Hexagons with fewer than {min_cell} clients are not drawn"
        if len(cells.get_array()):
            fig.colorbar(cells, ax=ax, shrink=0.7).set_label("Clients per hexagon")
            counts_note += ".\n"
        else:
            cells.remove()
            counts_note += " (here: all of them).\n"
    improved, deteriorated = _reliable_change_counts(rows.loc[pairs.index], pairs, band,
                                                     outcome_instrument)
    counts_text = (
        f"reliably improved: {format_count(improved, min_cell)}; no reliable change: "
        f"{format_count(len(pairs) - improved - deteriorated, min_cell)}; "
        f"reliably deteriorated: {format_count(deteriorated, min_cell)}"
    )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel(f"First {label}")
    ax.set_ylabel(f"Last {label}")
    ax.set_title(f"{_instrument_title(outcome_instrument)}: Jacobson-Truax plot\n"
                 f"{format_count(len(pairs), min_cell)} clients with two or more scores "
                 f"({format_count(n_short, min_cell)} with fewer)")
    ax.legend(loc="upper left", fontsize=7)
    fig.supxlabel(counts_note + counts_text, fontsize=7)
    return fig


def _number(value: Any, default: float = np.nan) -> float:
    # table cells arrive as numbers, None or NaN
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float(default)
    return number if np.isfinite(number) else float(default)


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
# missingness and dropout


@_styled
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
    _require_columns(sessions, ["client_id", "session"], "sessions")
    _require_columns(scores, ["client_id", "session", "instrument", "n_items_missing"], "scores")
    fig = Figure(figsize=(10.0, 3.6), layout="constrained")
    retention_ax, missing_ax, items_ax = fig.subplots(1, 3)
    attended = sessions.drop_duplicates(["client_id", "session"])
    last_session = attended.groupby("client_id")["session"].max()
    n_clients = len(last_session)
    if n_clients:
        session_numbers = np.arange(1, int(last_session.max()) + 1)
        still_in = np.array([(last_session >= t).sum() for t in session_numbers])
        shown = still_in >= min_cell
        retention_ax.step(session_numbers[shown], 100 * still_in[shown] / n_clients,
                          where="post", color=SERIES_COLOURS[0], linewidth=1.5)
        sessions_per_client = attended.groupby("client_id").size()
        retention_ax.set_title(
            f"Retention ({format_count(n_clients, min_cell)} clients;\nmedian "
            f"{sessions_per_client.median():g} sessions attended)")
    else:
        _message_panel(retention_ax, "No sessions.")
    retention_ax.set_xlabel("Session")
    retention_ax.set_ylabel("Clients still in therapy (%)")
    retention_ax.set_ylim(0, 105)
    retention_ax.xaxis.get_major_locator().set_params(integer=True)

    per_session = sessions.drop_duplicates(["client_id", "session"]).groupby("session").size()
    shown_sessions = per_session.index[per_session >= min_cell]
    for i, instrument in enumerate(instruments):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        administered = scores.loc[scores["instrument"] == instrument.key]
        n_given = (administered.drop_duplicates(["client_id", "session"])
                   .groupby("session").size().reindex(per_session.index, fill_value=0))
        share_absent = (1 - n_given / per_session).loc[shown_sessions]
        missing_ax.plot(share_absent.index, 100 * share_absent, marker="o", markersize=3,
                        color=colour, label=instrument.label)
        n_items = float(getattr(instrument, "n_items", np.nan))
        item_share = (administered.groupby("session")["n_items_missing"].sum()
                      / (n_given.replace(0, np.nan) * n_items)).reindex(shown_sessions)
        items_ax.plot(item_share.index, 100 * item_share, marker="o", markersize=3,
                      color=colour, label=instrument.label)
    missing_ax.set_xlabel("Session")
    missing_ax.set_ylabel("Attended sessions without the questionnaire (%)")
    missing_ax.set_title("Missing questionnaires")
    items_ax.set_xlabel("Session")
    items_ax.set_ylabel("Items missing in completed questionnaires (%)")
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


@_styled
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
    _require_columns(scores, ["instrument", "session", "score"], "scores")
    rows = scores.loc[(scores["instrument"] == alliance_instrument.key) & scores["score"].notna()]
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    hist_ax, ceiling_ax = fig.subplots(1, 2)
    if rows.empty:
        for ax in (hist_ax, ceiling_ax):
            _message_panel(ax, f"No {alliance_instrument.label} scores.")
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
    by_session = by_session.loc[by_session["count"] >= min_cell]
    ceiling_ax.plot(by_session.index, 100 * by_session["mean"], marker="o", markersize=3,
                    color=SERIES_COLOURS[1])
    ceiling_ax.set_xlabel("Session")
    ceiling_ax.set_ylabel(f"Scores at the maximum ({high:g}) (%)")
    ceiling_ax.set_title(f"Ceiling over sessions (sessions with {min_cell} or more scores)")
    ceiling_ax.set_ylim(bottom=0)
    ceiling_ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(f"{alliance_instrument.label}: distribution and ceiling", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# residual diagnostics


@_styled
def residual_diagnostics_figure(refit: ModelRefit, outcome_instrument: Any,
                                *, model_title: str = "primary model") -> Figure:
    """Residual diagnostics of a fitted mixed model.

    Four panels: residuals against fitted values (binned density, so no single observation is
    legible), a normal Q-Q plot of the residuals, their histogram, and a normal Q-Q plot of the
    clients' random intercepts.

    Parameters
    ----------
    refit : ModelRefit
        From :func:`refit_mixed_model`.
    outcome_instrument
        Registry entry for labels.
    model_title : str
        Named in the title (e.g. "M2 lagged (primary)").
    """
    residuals = refit.residuals
    fig = Figure(figsize=(8.5, 6.6), layout="constrained")
    (scatter_ax, qq_ax), (hist_ax, client_ax) = fig.subplots(2, 2)
    units = instrument_axis_label(outcome_instrument)
    cells = scatter_ax.hexbin(residuals["fitted"], residuals["residual"], gridsize=30,
                              mincnt=1, cmap="cividis_r", linewidths=0.2)
    fig.colorbar(cells, ax=scatter_ax, shrink=0.8).set_label("Observations")
    scatter_ax.axhline(0, color=OKABE_ITO["vermillion"], linewidth=0.8, linestyle="--")
    scatter_ax.set_xlabel(f"Fitted {units}")
    scatter_ax.set_ylabel("Residual")
    scatter_ax.set_title("Residuals against fitted values")
    _qq_panel(qq_ax, residuals["residual"].to_numpy(dtype=float), "Residual")
    qq_ax.set_title("Normal Q-Q plot of residuals")
    hist_ax.hist(residuals["residual"], bins=40, color=SERIES_COLOURS[0], edgecolor="white",
                 linewidth=0.3)
    hist_ax.set_xlabel(f"Residual ({units})")
    hist_ax.set_ylabel("Observations")
    hist_ax.set_title("Distribution of residuals")
    clients = refit.random_effects.loc[(refit.random_effects["group"] == "client_id")
                                       & (refit.random_effects["term"] == "(Intercept)")]
    if clients.empty:
        _message_panel(client_ax, "The model has no client random intercept.")
    else:
        _qq_panel(client_ax, clients["estimate"].to_numpy(dtype=float), "Client intercept")
        client_ax.set_title("Normal Q-Q plot of client random intercepts")
    fig.suptitle(f"{_instrument_title(outcome_instrument)}: diagnostics of {model_title}\n"
                 f"{refit.formula}", fontsize=9)
    return fig


def _qq_panel(ax: Axes, values: np.ndarray, label: str) -> None:
    values = np.sort(values[np.isfinite(values)])
    if values.size < 2:
        _message_panel(ax, "Too few values for a Q-Q plot.")
        return
    probabilities = (np.arange(1, values.size + 1) - 0.5) / values.size
    theoretical = stats.norm.ppf(probabilities)
    ax.plot(theoretical, values, linestyle="none", marker=".", markersize=2,
            color=SERIES_COLOURS[0])
    centre, spread = np.median(values), stats.iqr(values) / 1.349
    ax.plot(theoretical[[0, -1]], centre + spread * theoretical[[0, -1]],
            color=OKABE_ITO["vermillion"], linewidth=0.9)
    ax.set_xlabel("Normal quantile")
    ax.set_ylabel(label)
