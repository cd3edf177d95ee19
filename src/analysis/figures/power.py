"""The power curve of the next study (``power.csv``, :mod:`analysis.power`).

One panel per outcome whose power was simulated: power (share of simulated studies with p below
alpha) against the design's number of clients, one line per estimator (DPM primary: solid; M2:
dashed) and true effect (this study's estimate; the smallest effect of interest), with the
Wilson 95% Monte-Carlo CIs as error bars and the conventional target of .80 as a grey line. Where
the grid varies sessions or dropout too, each of their combinations is its own line. The table
holds no count of this study's people: nothing here is suppressed.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.figures.common import (
    instrument_title,
    message_panel,
    require_columns,
    wrap_text,
    wrap_title,
)
from analysis.figures.style import NEUTRAL_GREY, SERIES_COLOURS, styled
from analysis.settings import POWER_ESTIMATORS

#: The power a study is usually planned for.
TARGET_POWER = 0.8
PRIMARY, CONVENTIONAL = POWER_ESTIMATORS
ESTIMATOR_STYLES = {PRIMARY: ("-", "o", f"{PRIMARY} (primary)"),
                    CONVENTIONAL: ("--", "s", f"{CONVENTIONAL} (conventional)")}
EFFECT_NAMES = {"estimate": "this study's estimate", "smallest_effect": "smallest effect"}
EFFECT_COLOURS = {"estimate": SERIES_COLOURS[0], "smallest_effect": SERIES_COLOURS[1]}


def _line_label(rows: pd.DataFrame, estimator: str, effect_kind: str, vary: list[str]) -> str:
    first = rows.iloc[0]
    label = (f"{ESTIMATOR_STYLES.get(estimator, ('-', 'o', estimator))[2]}, "
             f"b = {float(first['effect']):.2f} ({EFFECT_NAMES.get(effect_kind, effect_kind)})")
    if "design_sessions" in vary:
        label += f", {int(first['design_sessions'])} sessions"
    if "dropout_hazard" in vary:
        label += f", dropout {100 * float(first['dropout_hazard']):.0f}%"
    return label


@styled
def power_curve_figure(power: pd.DataFrame, titles: Mapping[str, str]) -> Figure:
    """Power against clients per design (see the module docstring).

    Parameters
    ----------
    power : DataFrame
        ``power.csv``.
    titles : mapping
        Outcome key -> panel title (e.g. "PHQ-9 (depression)").
    """
    outcomes = list(dict.fromkeys(power["outcome"].astype(str))) if not power.empty else []
    panels = max(len(outcomes), 1)
    fig = Figure(figsize=(4.6 * panels, 4.8), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    if not outcomes:
        message_panel(axes[0], "No power was simulated (power.outcomes).")
        return fig
    require_columns(power, ["outcome", "design_clients", "design_sessions", "dropout_hazard",
                            "effect_kind", "effect", "estimator", "power", "ci_low", "ci_high"],
                    "power.csv")
    for ax, outcome in zip(axes, outcomes):
        rows = power.loc[power["outcome"].astype(str) == outcome]
        vary = [column for column in ("design_sessions", "dropout_hazard")
                if rows[column].nunique() > 1]
        keys = ["effect_kind", "estimator", *vary]
        lines = list(rows.groupby(keys, sort=True))
        clients = rows["design_clients"].astype(float)
        # lines at the same design are set a little apart, so their CIs do not hide each other
        step = 0.012 * max(float(clients.max() - clients.min()), float(clients.max()) * 0.5)
        for number, (key, line) in enumerate(lines):
            effect_kind, estimator = str(key[0]), str(key[1])
            line = line.sort_values("design_clients")
            style, marker, _ = ESTIMATOR_STYLES.get(estimator, ("-", "o", estimator))
            # colour says the effect; with sessions or dropout varied too, each line its own
            colour = (SERIES_COLOURS[number % len(SERIES_COLOURS)] if vary
                      else EFFECT_COLOURS.get(effect_kind, NEUTRAL_GREY))
            x = (line["design_clients"].astype(float).to_numpy()
                 + (number - (len(lines) - 1) / 2) * step)
            y = line["power"].astype(float).to_numpy()
            errors = np.vstack([y - line["ci_low"].astype(float).to_numpy(),
                                line["ci_high"].astype(float).to_numpy() - y])
            ax.errorbar(x, y, yerr=np.clip(errors, 0, None), linestyle=style, marker=marker,
                        color=colour, capsize=2, markersize=4, linewidth=1.2,
                        label=_line_label(line, estimator, effect_kind, vary))
        ax.axhline(TARGET_POWER, color=NEUTRAL_GREY, linewidth=0.8, linestyle=":")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Clients in the next study (therapists x clients each)")
        ax.set_ylabel("Power (p < .05)")
        ax.set_title(wrap_title(titles.get(outcome, outcome), 4.0))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7)
    low, high = int(power["n_sims"].min()), int(power["n_sims"].max())
    sims = f"{low}" if low == high else f"{low}-{high}"
    fig.supxlabel(wrap_text(f"{sims} simulated studies per point; bars: Wilson 95% Monte-Carlo "
                            "CI; dotted line: power .80.", int(12 * 4.6 * panels)),
                  fontsize=7, color=NEUTRAL_GREY)
    return fig


def draw_power_curve(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    power = inputs["power"]
    titles = {key: instrument_title(registry[key]) for key in power["outcome"].astype(str).unique()
              if key in registry} if not power.empty else {}
    return power_curve_figure(power, titles)
