"""Small pieces the drawing modules share: input checks, labels, message panels, summaries.

Nothing here draws a whole figure. Summaries (:func:`mean_confidence_intervals`,
:func:`binned_means`) take tidy frames and return tidy frames; their cost grows linearly with the
rows (sorts and group-bys, never a pairwise table).
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from analysis import errors
from analysis.figures.style import NEUTRAL_GREY
from analysis.privacy import StudyTotals

log = logging.getLogger(__name__)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    """A DataError naming the table and the missing columns (:func:`analysis.errors.require_columns`
    for a figure)."""
    errors.require_columns(frame, columns, name, "the figure")


def client_totals(inputs: Mapping[str, Any], outcome: str | None) -> tuple[int, ...]:
    """The totals a count of clients printed in a figure of ``outcome`` is part of (the outcome's
    episodes, the study's clients), from the figure's ``sessions`` and ``episodes`` inputs:
    :meth:`analysis.privacy.StudyTotals.of`, for complementary suppression."""
    return StudyTotals.from_tables(inputs.get("sessions"), inputs.get("episodes")).of(
        "clients", outcome)


def outcome_rows(derived: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """The rows of one outcome of ``derived.parquet``."""
    require_columns(derived, ["outcome"], "derived")
    return derived.loc[derived["outcome"] == outcome]


def outcome_row(table: pd.DataFrame, outcome: str, name: str) -> dict[str, Any]:
    """The row of a per-outcome table (``jacobson_truax.parquet``, ``therapist_icc.csv``) as a
    dict.

    An outcome without a row gives an empty dict (the figure is drawn without those numbers) and
    a warning in the log naming the table.
    """
    require_columns(table, ["outcome"], name)
    rows = table.loc[table["outcome"].astype(str) == outcome]
    if rows.empty:
        log.warning("%s has no row for outcome %s; the figure is drawn without it", name, outcome)
        return {}
    return {key: (None if pd.isna(value) else value) for key, value in rows.iloc[0].items()}


def instrument_axis_label(instrument: Any) -> str:
    """The axis label of an instrument's score: its ``units`` (e.g. "PHQ-9 total (0-27)")."""
    units = getattr(instrument, "units", None)
    return str(units) if units else str(getattr(instrument, "label", instrument))


def instrument_title(instrument: Any) -> str:
    """"PHQ-9 (depression)": the label and, when declared, the construct."""
    label = getattr(instrument, "label", str(instrument))
    construct = getattr(instrument, "construct", None)
    return f"{label} ({construct})" if construct else str(label)


#: Average width of a DejaVu Sans character, in ems: how many characters fit a width.
CHARACTER_WIDTH_EM = 0.6


def wrap_text(text: str, width: int) -> str:
    """``text`` wrapped at ``width`` characters per line, keeping its own line breaks."""
    return "\n".join(textwrap.fill(line, width, break_long_words=False) or line
                     for line in str(text).split("\n"))


def wrap_title(text: str, width_inches: float, fontsize: float = 10.0) -> str:
    """A title wrapped to fit ``width_inches`` at ``fontsize`` points, so that a long label
    (e.g. "ECBI Intensity (child disruptive behaviour)") is wrapped instead of clipped."""
    characters = int(width_inches * 72 / (fontsize * CHARACTER_WIDTH_EM))
    return wrap_text(text, max(characters, 16))


def process_name(instrument: Any) -> str:
    """How a figure names the process measure: "alliance" for an alliance instrument (the
    default), else its label (e.g. "PCIT coding")."""
    construct = str(getattr(instrument, "construct", "") or "").lower()
    return "alliance" if "alliance" in construct else str(getattr(instrument, "label",
                                                                  instrument))


def message_panel(ax: Any, message: str) -> None:
    """Say in the panel why it holds no data.

    A figure whose data are absent is still drawn: a missing file would stop the pipeline, and
    an empty axis would leave the reader guessing.
    """
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes,
            color=NEUTRAL_GREY)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def number(value: Any, default: float = np.nan) -> float:
    """A table cell as a finite float, or ``default`` (cells arrive as numbers, None or NaN)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return float(default)
    return result if np.isfinite(result) else float(default)


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
        critical = stdtrit(np.where(n > 1, n - 1, np.nan), 0.5 + level / 2)
        half_width = critical * summary["sd"].to_numpy(dtype=float) / np.sqrt(n)
    summary["ci_low"] = summary["mean"] - half_width
    summary["ci_high"] = summary["mean"] + half_width
    return summary


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


def registry_entries(settings: Any, keys: Sequence[str]) -> Mapping[str, Any]:
    """The instruments ``keys`` of a figure job's settings, by key, in that order."""
    registry = settings.registry()
    return {key: registry[key] for key in keys}


__all__ = [
    "binned_means",
    "instrument_axis_label",
    "instrument_title",
    "mean_confidence_intervals",
    "message_panel",
    "number",
    "outcome_row",
    "outcome_rows",
    "process_name",
    "registry_entries",
    "require_columns",
    "wrap_text",
    "wrap_title",
]
