"""Figures of what the models found: the forest plot of the alliance terms, the therapists'
random intercepts (caterpillar plot) and the residual diagnostics of a mixed model.

The forest plot reads ``results/tables/models.csv``. The other two read one fit file
(``results/fits/<outcome>/<model>/primary.json``): its ``diagnostics``, which the fit job wrote
from the fitted model (:mod:`analysis.models.mixed.diagnostics`: therapists' conditional modes and SDs,
and summaries of the residuals and random effects), so no figure refits a model and no figure's
cost grows with the number of session rows. Therapists are shown by rank, never by pseudonym.
"""

from __future__ import annotations

import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import ndtri

from analysis.figures.common import (
    client_totals,
    instrument_axis_label,
    instrument_title,
    message_panel,
    process_name,
    require_columns,
    wrap_text,
    wrap_title,
)
from analysis.figures.style import NEUTRAL_GREY, OKABE_ITO, SERIES_COLOURS, styled
from analysis.presentation import (
    adjusted_p_column,
    analysis_label,
    analysis_order,
    model_title,
    name_process,
    select_alliance_terms,
    term_family,
    term_label,
)
from analysis.privacy import format_count

#: Width (characters) an axis label is wrapped to, so a long instrument name stays on the canvas.
LABEL_WIDTH = 38
#: Width of a forest plot's panel and of the caterpillar plot's axes (inches, about): titles
#: are wrapped to it.
FOREST_PANEL_INCHES = 3.2
CATERPILLAR_AXIS_INCHES = 5.6

# --------------------------------------------------------------------------------------------
# forest plot of the alliance terms


def _row_labels(row_keys: list[tuple[str, str, str]], process: str = "alliance") -> list[str]:
    # "model · term" with the process measure named as configured; where two analyses give the
    # same label, the non-primary ones say which analysis they come from
    base = [name_process(f"{model_title(model)} · {term_label(term)}", process)
            for model, term, _ in row_keys]
    counts = pd.Series(base).value_counts()
    return [
        label if counts[label] == 1 or analysis == "primary"
        else f"{label} ({analysis_label(analysis)})"
        for label, (_, _, analysis) in zip(base, row_keys)
    ]


@styled
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
    height = max(3.2, 0.22 * len(row_keys) + 2.2)
    fig = Figure(figsize=(max(6.0, 3.4 * max(len(outcomes), 1) + 3.0), height),
                 layout="constrained")
    if not outcomes:
        message_panel(fig.subplots(), "No alliance terms in the model table.")
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
        ax.set_title(wrap_title(instrument_title(instrument) if instrument is not None
                                else outcome, FOREST_PANEL_INCHES))
        units = instrument_axis_label(instrument) if instrument is not None else outcome
        ax.set_xlabel(textwrap.fill(f"Difference in {units} per 1 point of "
                                    f"{alliance_instrument.label} (95% CI)", LABEL_WIDTH))
    process = process_name(alliance_instrument)
    axes[0].set_yticks(list(position.values()), _row_labels(list(position), process))
    axes[0].set_ylim(-0.7, len(row_keys) - 0.3)
    handles = [Line2D([], [], color=colour[a], marker="o", linestyle="-",
                      label=analysis_label(a)) for a in analyses]
    handles.append(Line2D([], [], color=NEUTRAL_GREY, marker="o", markerfacecolor="white",
                          linestyle="none", label="hollow: adjusted p >= .05"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    fig.suptitle(f"{process[:1].upper()}{process[1:]} terms across outcomes, models and "
                 "sensitivity analyses", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# therapist caterpillar plot


def therapist_effects(fit: Mapping[str, Any], term: str = "(Intercept)") -> pd.DataFrame:
    """The therapists' conditional modes of one term from a fit file, ranked.

    Parameters
    ----------
    fit : mapping
        A fit file's content (``results/fits/<outcome>/<model>/primary.json``); its
        ``diagnostics.therapists`` (:func:`analysis.models.mixed.diagnostics.therapist_effects`).
    term : str
        The random-effect term.

    Returns
    -------
    DataFrame
        ``rank`` (1 = lowest mode), ``estimate`` (conditional mode), ``se`` (conditional SD),
        ``ci_low``, ``ci_high`` (estimate +/- 1.96 se). Empty when the final model has no
        therapist term (or the fit file has no diagnostics).
    """
    columns = ["rank", "estimate", "se", "ci_low", "ci_high"]
    records = ((fit.get("diagnostics") or {}).get("therapists") or [])
    match = [record for record in records if record.get("term") == term]
    if not match:
        return pd.DataFrame(columns=columns)
    estimate = np.asarray(match[0]["estimate"], dtype=float)
    se = np.asarray(match[0]["se"], dtype=float)
    return pd.DataFrame({"rank": np.arange(1, estimate.size + 1), "estimate": estimate,
                         "se": se, "ci_low": estimate - 1.959964 * se,
                         "ci_high": estimate + 1.959964 * se})[columns]


@styled
def therapist_caterpillar_figure(effects: pd.DataFrame, outcome_instrument: Any, *,
                                 variance_share: float | None = None,
                                 why_empty: str = "") -> Figure:
    """Therapists' random intercepts, sorted, with 95% intervals (a caterpillar plot).

    Parameters
    ----------
    effects : DataFrame
        :func:`therapist_effects`: ``estimate``, ``se``, ``ci_low``, ``ci_high``, one row per
        therapist. Therapists are shown by rank, never by pseudonym.
    outcome_instrument
        Registry entry for the axis label.
    variance_share : float, optional
        The ICC (share of variance between therapists) to print in the title.
    why_empty : str
        What to say when ``effects`` is empty (default: the therapist term was dropped).
    """
    require_columns(effects, ["estimate", "se", "ci_low", "ci_high"], "therapist effects")
    effects = effects.sort_values(["estimate", "ci_low"], kind="stable").reset_index(drop=True)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    if effects.empty:
        message_panel(ax, wrap_text(why_empty or "Not estimated: the fitted model has no "
                                                 "therapist term.", 60))
        ax.set_title(wrap_title(f"{instrument_title(outcome_instrument)}: therapist random "
                                "intercepts", CATERPILLAR_AXIS_INCHES))
        return fig
    rank = np.arange(1, len(effects) + 1)
    ax.errorbar(rank, effects["estimate"],
                yerr=[effects["estimate"] - effects["ci_low"],
                      effects["ci_high"] - effects["estimate"]],
                color=SERIES_COLOURS[0], marker="o", markersize=3 if len(effects) <= 200 else 1,
                linestyle="none", linewidth=0.9 if len(effects) <= 200 else 0.4, capsize=0)
    ax.axhline(0, color=NEUTRAL_GREY, linewidth=0.8, linestyle="--")
    ax.set_xlabel("Therapist (ranked by random intercept)")
    ax.set_ylabel(textwrap.fill(f"Therapist deviation in "
                                f"{instrument_axis_label(outcome_instrument)}", 48))
    title = f"{instrument_title(outcome_instrument)}: therapist random intercepts (95% intervals)"
    if variance_share is not None and np.isfinite(variance_share):
        title += f"\nShare of variance between therapists (ICC) = {variance_share:.3f}"
    if np.allclose(effects["estimate"], 0) and np.allclose(effects["se"], 0):
        title += "\n(therapist variance estimated at zero: every intercept is 0)"
    ax.set_title(wrap_title(title, CATERPILLAR_AXIS_INCHES))
    return fig


# --------------------------------------------------------------------------------------------
# residual diagnostics


@styled
def residual_diagnostics_figure(diagnostics: Mapping[str, Any], outcome_instrument: Any, *,
                                min_cell: int, totals: Sequence[int] = (),
                                model_title: str = "primary model",
                                formula: str = "") -> Figure:
    """Residual diagnostics of a fitted mixed model, from the summaries in its fit file.

    Four panels: standardised residuals against fitted values (median, interquartile and 5-95%
    range within equal-count bins of the fitted values; no single observation is legible), a
    normal Q-Q plot of the standardised residuals, their histogram with the standard normal
    density, and a normal Q-Q plot of the clients' random intercepts.

    Parameters
    ----------
    diagnostics : mapping
        A fit file's ``diagnostics`` (:func:`analysis.models.mixed.diagnostics.model_diagnostics`).
    outcome_instrument
        Registry entry for labels.
    min_cell : int
        ``privacy.min_cell_count``: the number of clients is published through
        :func:`analysis.privacy.format_count`.
    totals : sequence of int
        The totals that number is part of (the outcome's episodes, the study's clients:
        :func:`analysis.figures.common.client_totals`), for complementary suppression.
    model_title : str
        Named in the title (e.g. "M2 Lagged alliance (primary)").
    formula : str
        The formula fitted (after any simplification), printed under the title.
    """
    fig = Figure(figsize=(8.5, 7.0), layout="constrained")
    (binned_ax, qq_ax), (hist_ax, client_ax) = fig.subplots(2, 2)
    residuals = (diagnostics or {}).get("residuals") or {}
    units = instrument_axis_label(outcome_instrument)
    title = wrap_text(f"{instrument_title(outcome_instrument)}: diagnostics of {model_title}",
                      110)
    fig.suptitle(title + (f"\n{textwrap.fill(formula, 110)}" if formula else ""), fontsize=9)
    if not residuals.get("n"):
        for ax in (binned_ax, qq_ax, hist_ax, client_ax):
            message_panel(ax, "The fit file holds no diagnostics:\nrerun the fit job.")
        return fig
    _binned_panel(binned_ax, residuals.get("by_fitted") or [], units)
    _qq_panel(qq_ax, residuals, "Standardised residual", reference="identity")
    qq_ax.set_title("Normal Q-Q plot of residuals")
    _histogram_panel(hist_ax, residuals)
    clients = [summary for summary in diagnostics.get("random_effects") or []
               if summary.get("group") == "client_id" and summary.get("term") == "(Intercept)"]
    if clients and clients[0].get("n", 0) >= 2:
        _qq_panel(client_ax, clients[0], "Client intercept (conditional mode)",
                  reference="quartiles")
        client_ax.set_title(f"Normal Q-Q plot of client random intercepts\n"
                            f"({format_count(int(clients[0]['n']), min_cell, totals)} "
                            "clients)")
    else:
        message_panel(client_ax, "The model has no client random intercept.")
    return fig


def _binned_panel(ax: Any, bins: list[Mapping[str, Any]], units: str) -> None:
    if not bins:
        message_panel(ax, "Too few observations to bin.")
        return
    frame = pd.DataFrame(bins)
    x = frame["fitted_mean"].to_numpy(dtype=float)
    ax.fill_between(x, frame["q05"], frame["q95"], color=SERIES_COLOURS[0], alpha=0.15,
                    linewidth=0, label="5-95%")
    ax.fill_between(x, frame["q25"], frame["q75"], color=SERIES_COLOURS[0], alpha=0.35,
                    linewidth=0, label="25-75%")
    ax.plot(x, frame["q50"], color=SERIES_COLOURS[0], linewidth=1.2, label="median")
    ax.plot(x, frame["mean"], linestyle="none", marker="o", markersize=2.5,
            color=OKABE_ITO["orange"], label="mean")
    ax.axhline(0, color=OKABE_ITO["vermillion"], linewidth=0.8, linestyle="--")
    ax.set_xlabel(textwrap.fill(f"Fitted {units}", LABEL_WIDTH))
    ax.set_ylabel("Standardised residual")
    ax.set_title(f"Residuals against fitted values\n({len(frame)} equal-count bins)")
    ax.legend(loc="best", fontsize=7, ncols=2)


def _qq_panel(ax: Any, summary: Mapping[str, Any], label: str, reference: str) -> None:
    probabilities = np.asarray(summary.get("probabilities") or [], dtype=float)
    values = np.asarray(summary.get("quantiles") or [], dtype=float)
    keep = np.isfinite(values) & (probabilities > 0) & (probabilities < 1)
    probabilities, values = probabilities[keep], values[keep]
    if values.size < 2:
        message_panel(ax, "Too few values for a Q-Q plot.")
        return
    theoretical = ndtri(probabilities)
    ax.plot(theoretical, values, linestyle="none", marker=".", markersize=2.5,
            color=SERIES_COLOURS[0])
    ends = theoretical[[0, -1]]
    if reference == "identity":
        line = ends  # standardised residuals should follow the standard normal itself
    else:
        # a line through the quartiles: the shape, whatever the spread (modes are shrunken)
        q1, q3 = np.interp([0.25, 0.75], probabilities, values)
        spread = (q3 - q1) / (2 * ndtri(0.75))
        line = (q1 + q3) / 2 + spread * ends
    ax.plot(ends, line, color=OKABE_ITO["vermillion"], linewidth=0.9)
    ax.set_xlabel("Normal quantile")
    ax.set_ylabel(label)


def _histogram_panel(ax: Any, residuals: Mapping[str, Any]) -> None:
    histogram = residuals.get("histogram") or {}
    edges = np.asarray(histogram.get("edges") or [], dtype=float)
    counts = np.asarray(histogram.get("counts") or [], dtype=float)
    if edges.size < 2 or counts.sum() == 0:
        message_panel(ax, "No residuals to show.")
        return
    width = np.diff(edges)
    ax.bar(edges[:-1], counts, width=width, align="edge", color=SERIES_COLOURS[0],
           edgecolor="white", linewidth=0.3)
    grid = np.linspace(edges[0], edges[-1], 201)
    density = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    ax.plot(grid, density * float(residuals.get("n") or counts.sum()) * float(width.mean()),
            color=OKABE_ITO["vermillion"], linewidth=0.9, label="standard normal")
    beyond = int(histogram.get("below") or 0) + int(histogram.get("above") or 0)
    ax.set_xlabel("Standardised residual (residual / residual SD)")
    ax.set_ylabel("Observations")
    title = "Distribution of residuals"
    if beyond:
        title += f"\n({beyond} observations beyond ±{edges[-1]:g} not shown)"
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)


# --------------------------------------------------------------------------------------------
# figure jobs (analysis.figures.table)


def draw_forest(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    registry = settings.registry()
    return forest_alliance_figure(inputs["models"], {key: registry[key] for key in
                                                     settings.outcomes},
                                  registry[settings.alliance])


def draw_therapist_caterpillar(inputs: Mapping[str, Any], settings: Any,
                               outcome: str | None) -> Figure:
    fit = inputs["fit"]
    icc = (fit.get("icc") or [{}])[0].get("icc_therapist")
    return therapist_caterpillar_figure(
        therapist_effects(fit), settings.registry()[outcome],
        variance_share=None if icc is None else float(icc), why_empty=why_no_therapists(fit))


def why_no_therapists(fit: Mapping[str, Any]) -> str:
    """What a therapist figure says when a fit has no therapists' intercepts to draw ("" when
    it has them): not estimated by design (with the reason the fit recorded), the therapist
    term dropped by the simplification protocol, or a fit file without diagnostics."""
    info = fit.get("fit") or {}
    if info.get("status") in ("not_estimated", "not_identified"):
        reason = str(info.get("reason") or info.get("design") or "no estimate in this run")
        return f"Not estimated: {reason.rstrip('.')}."
    if str(info.get("design") or ""):
        return f"Not estimated: {str(info['design']).rstrip('.')}."
    if "drop_therapist" in (info.get("fallback_steps") or []):
        return ("Not estimated: the therapist term was dropped by the simplification of the "
                "random part (see the fitted models' fallback steps).")
    if "diagnostics" not in fit:
        return "The fit file holds no diagnostics: rerun the fit job."
    return ""


def draw_residuals(inputs: Mapping[str, Any], settings: Any, outcome: str | None) -> Figure:
    fit = inputs["fit"]
    return residual_diagnostics_figure(
        fit.get("diagnostics") or {}, settings.registry()[outcome],
        min_cell=settings.privacy.min_cell_count, totals=client_totals(inputs, outcome),
        model_title=model_title(str(fit.get("model", ""))),
        formula=str((fit.get("fit") or {}).get("formula") or ""))


__all__ = [
    "draw_forest",
    "draw_residuals",
    "draw_therapist_caterpillar",
    "forest_alliance_figure",
    "residual_diagnostics_figure",
    "therapist_caterpillar_figure",
    "therapist_effects",
    "why_no_therapists",
]
