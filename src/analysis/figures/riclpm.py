"""The RI-CLPM figure: the within-client lagged paths of one outcome, as a path diagram.

:func:`riclpm_figure` takes the published tables ``riclpm.csv`` and ``riclpm_fit.csv``
(:mod:`analysis.models.panel.riclpm_stage`) and draws, for one outcome,

- left: the path diagram of the model with lagged paths equal over waves (Hamaker, Kuiper &
  Grasman 2015): the within-client components of alliance and symptoms at a session and the
  next, the two carry-over (autoregressive) and the two cross-lagged paths, each labelled with its
  estimate, 95% CI and standardised estimate (a path held equal over waves has one estimate
  but a standardised value per wave: the label gives their mean, marked "mean over waves"); a
  path whose CI excludes 0 is drawn solid, the others dashed;
- right: the cross-lagged paths with paths free per wave (the sensitivity analysis): one point
  and 95% CI per wave beside the constrained estimate (line and band).

When the data could not identify the model, or it did not converge, the figure says so in words.
The house style comes from :mod:`analysis.figures.style` (``FIGURE_STYLE``, the Okabe-Ito
palette); nothing is read or written here. :func:`draw_riclpm` is the figure table's drawing
function (row ``riclpm``, drawn when ``models.riclpm.run`` is on).
"""

from __future__ import annotations

import textwrap
from typing import Any, Mapping

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from analysis.figures.style import FIGURE_STYLE, OKABE_ITO
from analysis.models.panel.riclpm_stage import LAGGED_PATHS, lagged_paths
from analysis.presentation import format_number

ALLIANCE_COLOUR = OKABE_ITO["blue"]
SYMPTOM_COLOUR = OKABE_ITO["vermillion"]
MUTED = "#808080"
#: Colour of each lagged path (the colour of the variable it starts from).
PATH_COLOURS = {"alliance_carry_over": ALLIANCE_COLOUR, "alliance_to_symptoms": ALLIANCE_COLOUR,
                "symptoms_carry_over": SYMPTOM_COLOUR, "symptoms_to_alliance": SYMPTOM_COLOUR}


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(str(text), 90)), ha="center", va="center",
            transform=ax.transAxes, color=MUTED)
    ax.set_axis_off()


def _fit_row(fit: pd.DataFrame, outcome: str, version: str) -> dict[str, Any]:
    rows = fit.loc[(fit["outcome"].astype(str) == outcome) & (fit["version"] == version)]
    return {} if rows.empty else rows.iloc[0].to_dict()


def path_summary(paths: pd.DataFrame, outcome: str, version: str = "constrained"
                 ) -> dict[str, dict[str, float]]:
    """Each lagged path's estimate, 95% CI, p and mean standardised estimate over waves.

    Parameters
    ----------
    paths : DataFrame
        ``riclpm.csv``.
    outcome, version : str
        Which fit.

    Returns
    -------
    dict
        Short path name (:data:`analysis.models.panel.riclpm_stage.LAGGED_PATHS`) -> ``estimate, se,
        ci_lower, ci_upper, p, std_estimate`` (the standardised estimate of a constrained path
        differs by wave, as the SDs do; its mean is given). Empty when the fit has no rows.
    """
    rows = lagged_paths(paths, outcome, version)
    summary = {}
    for name, group in rows.groupby("path", sort=False):
        first = group.iloc[0]
        summary[str(name)] = {key: float(first[key]) for key in
                              ("estimate", "se", "ci_lower", "ci_upper", "p")}
        summary[str(name)]["std_estimate"] = float(pd.to_numeric(group["std_estimate"]).mean())
    return summary


def _label(values: dict[str, float]) -> str:
    return (f"b = {format_number(values['estimate'])} [{format_number(values['ci_lower'])}, "
            f"{format_number(values['ci_upper'])}]\nβ (mean over waves) = "
            f"{format_number(values['std_estimate'])}")


def _excludes_zero(values: dict[str, float]) -> bool:
    return bool(values["ci_lower"] > 0 or values["ci_upper"] < 0)


def _diagram(ax: Axes, summary: dict[str, dict[str, float]], alliance: str, outcome: str) -> None:
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylim(-0.5, 1.3)
    ax.set_axis_off()
    boxes = {("a", 0): (0.0, 1.0), ("a", 1): (1.0, 1.0), ("y", 0): (0.0, 0.0), ("y", 1): (1.0, 0.0)}
    names = {"a": f"{alliance}\nwithin client", "y": f"{outcome}\nwithin client"}
    for (variable, step), (x, y) in boxes.items():
        colour = ALLIANCE_COLOUR if variable == "a" else SYMPTOM_COLOUR
        ax.add_patch(FancyBboxPatch((x - 0.13, y - 0.1), 0.26, 0.2,
                                    boxstyle="round,pad=0.02", facecolor="white",
                                    edgecolor=colour, linewidth=1.2))
        ax.text(x, y, f"{names[variable]}\nsession {'t' if step == 0 else 't+1'}",
                ha="center", va="center", fontsize=7, color=colour)
    arrows = {
        "alliance_carry_over": (("a", 0), ("a", 1), 0.5, (0.0, 0.13)),
        "symptoms_carry_over": (("y", 0), ("y", 1), 0.5, (0.0, -0.17)),
        "alliance_to_symptoms": (("a", 0), ("y", 1), 0.3, (0.17, 0.02)),
        "symptoms_to_alliance": (("y", 0), ("a", 1), 0.3, (0.17, -0.02)),
    }
    for name, (start, end, where, offset) in arrows.items():
        if name not in summary:
            continue
        values = summary[name]
        (x0, y0), (x1, y1) = boxes[start], boxes[end]
        solid = _excludes_zero(values)
        colour = PATH_COLOURS[name]
        ax.add_patch(FancyArrowPatch(
            (x0 + 0.14, y0 - 0.1 * np.sign(y0 - y1)), (x1 - 0.14, y1 + 0.1 * np.sign(y0 - y1)),
            arrowstyle="-|>", mutation_scale=10, linewidth=1.6 if solid else 0.9,
            linestyle="-" if solid else (0, (4, 3)), color=colour))
        x = x0 + where * (x1 - x0) + offset[0]
        y = y0 + where * (y1 - y0) + offset[1]
        ax.text(x, y, _label(values), ha="center", va="center", fontsize=7, color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
    ax.text(0.5, -0.42, "Stable differences between clients (random intercepts)\nare "
            "separated out. Solid: 95% CI excludes 0;\nβ: mean of the wave-specific "
            "standardised estimates",
            ha="center", va="center", fontsize=6.5, color=MUTED)


def _per_wave(ax: Axes, paths: pd.DataFrame, outcome: str, name: str, title: str,
              constrained: dict[str, float] | None, free_ok: bool, note: str = "") -> None:
    colour = PATH_COLOURS[name]
    ax.axhline(0.0, color=MUTED, linewidth=0.6)
    if constrained is not None:
        ax.axhspan(constrained["ci_lower"], constrained["ci_upper"], color=colour, alpha=0.12,
                   linewidth=0)
        ax.axhline(constrained["estimate"], color=colour, linewidth=1.0, linestyle="--",
                   label="constrained")
    rows = lagged_paths(paths, outcome, "free") if free_ok else pd.DataFrame()
    rows = rows.loc[rows["path"] == name] if len(rows) else rows
    if len(rows):
        waves = pd.to_numeric(rows["wave"]).to_numpy(dtype=float)
        estimate = rows["estimate"].to_numpy(dtype=float)
        low, high = rows["ci_lower"].to_numpy(dtype=float), rows["ci_upper"].to_numpy(dtype=float)
        ax.errorbar(waves, estimate, yerr=[estimate - low, high - estimate], fmt="o",
                    color=colour, markersize=3.5, capsize=2, linewidth=0.9, label="free per wave")
        ax.set_xticks(waves)
        ax.set_xticklabels([f"{int(w) - 1}→{int(w)}" for w in waves])
    elif not free_ok:
        ax.text(0.5, 0.85, "free-path version not fitted", transform=ax.transAxes,
                ha="center", fontsize=7, color=MUTED)
    if note:
        ax.text(0.5, 0.04, note, transform=ax.transAxes, ha="center", va="bottom", fontsize=6,
                color=MUTED)
    ax.set_title(title, fontsize=8, loc="left")
    ax.set_ylabel("estimate (score units)")


def riclpm_figure(paths: pd.DataFrame, fit: pd.DataFrame, outcome_instrument: Any,
                  alliance_instrument: Any) -> Figure:
    """The RI-CLPM figure of one outcome (see the module docstring).

    Parameters
    ----------
    paths : DataFrame
        ``riclpm.csv`` (``outcome, version, label, wave, estimate, se, ci_lower, ci_upper, p,
        std_estimate``).
    fit : DataFrame
        ``riclpm_fit.csv`` (``outcome, version, status, reason, converged``).
    outcome_instrument, alliance_instrument : Instrument
        From the registry; their labels name the variables.

    Returns
    -------
    matplotlib.figure.Figure
    """
    outcome = outcome_instrument.key
    alliance_label, outcome_label = alliance_instrument.label, outcome_instrument.label
    with matplotlib.rc_context(FIGURE_STYLE):
        figure = Figure(figsize=(8.0, 3.8))
        grid = figure.add_gridspec(2, 2, width_ratios=[1.25, 1.0], hspace=0.55, wspace=0.3)
        constrained = _fit_row(fit, outcome, "constrained")
        free = _fit_row(fit, outcome, "free")
        figure.suptitle(f"{outcome_label} and {alliance_label}: random-intercept cross-lagged "
                        "panel model", fontsize=10)
        if constrained.get("status") != "fitted":
            reason = constrained.get("reason") or "no RI-CLPM result for this outcome"
            _message(figure.add_subplot(grid[:, :]), f"The RI-CLPM could not be fitted: {reason}")
            return figure
        diagram = figure.add_subplot(grid[:, 0])
        summary = path_summary(paths, outcome)
        _diagram(diagram, summary, alliance_label, outcome_label)
        if str(constrained.get("converged")).lower() not in ("true", "1", "1.0"):
            diagram.text(0.5, 1.25, "did not converge: estimates not trustworthy",
                         ha="center", color=OKABE_ITO["vermillion"], fontsize=8)
        free_ok = free.get("status") == "fitted"
        # the free version's wave-by-wave paths are not interpreted when it is inadmissible
        note = ("free-paths fit inadmissible: not interpreted"
                if free_ok and str(free.get("admissible")).lower() not in ("true", "1", "1.0")
                else "")
        sessions = constrained.get("wave_sessions")
        for row, name, title in ((0, "alliance_to_symptoms",
                                  f"{alliance_label} → next {outcome_label}"),
                                 (1, "symptoms_to_alliance",
                                  f"{outcome_label} → next {alliance_label}")):
            ax = figure.add_subplot(grid[row, 1])
            _per_wave(ax, paths, outcome, name, title, summary.get(name), free_ok, note)
            if row == 0:
                ax.legend(loc="best", fontsize=6.5)
            else:
                ax.set_xlabel(f"waves ({sessions})" if isinstance(sessions, str) and sessions
                              else "waves")
    return figure


def draw_riclpm(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    return riclpm_figure(inputs["riclpm"], inputs["riclpm_fit"], registry[outcome],
                         registry[settings.alliance])


__all__ = ["LAGGED_PATHS", "draw_riclpm", "path_summary", "riclpm_figure"]
