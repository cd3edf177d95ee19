"""The reviewer report: one self-contained HTML file that answers the question and shows how.

Inputs are the pipeline's result tables (``results/tables/*.csv``: models, random effects, model
fit, engine agreement, repeated-measures correlation, reliability, therapist ICC, episode
summary, Jacobson-Truax parameters, data flow), two processed files (``sessions.parquet`` for
the interval between sessions, ``scores.parquet`` for the alliance ceiling), the figures' PNG
files with their one-sentence captions, the checked config and the provenance (commit, file
hashes, package versions, seeds). The output, ``results/report/index.html``, holds a
plain-language answer with the primary estimates, methods generated from the config and the
fitted models, APA-style tables, the sensitivity analyses, episode outcomes, engine agreement,
limitations and provenance. Everything is inline (images as base64 PNG, CSS in the page), so
the file opens offline and makes no requests. Numbers are formatted by one set of functions
(:func:`format_number`, :func:`format_p`), so the summary and the tables show the same digits;
counts of people go through :func:`analysis.privacy.format_count`; identifiers never appear;
nothing depends on the clock, so the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2
import pandas as pd

from analysis.errors import DataError
from analysis.figures import (
    PNG_DPI,
    analysis_label,
    analysis_order,
    model_title,
    select_alliance_terms,
    term_family,
    term_label,
)
from analysis.io import atomic_path, read_table, sha256_file
from analysis.models.specs import enabled_analyses, model_specs
from analysis.privacy import format_count

# Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4), 316-340.
META_ANALYTIC_R = 0.278
META_ANALYTIC_CI = (0.256, 0.299)
META_ANALYTIC_SOURCE = (
    "Flückiger, Del Re, Wampold & Horvath (2018), Psychotherapy 55(4): 295 studies, "
    "more than 30,000 patients"
)
# Conventional two-sided level for the verdicts in the summary; the tables give exact p-values.
ALPHA = 0.05
# Package versions listed under provenance.
PROVENANCE_PACKAGES = (
    "alliance-outcome", "snakemake", "pandas", "numpy", "scipy", "statsmodels", "pingouin",
    "mixedlm", "pandera", "matplotlib", "seaborn", "jinja2", "pyarrow",
)
MISSING = "–"


# --------------------------------------------------------------------------------------------
# inputs


@dataclass
class ReportTables:
    """The tables the report reads; a table the pipeline did not produce stays empty.

    Attributes are named after the files: ``models`` is ``results/tables/models.csv`` and so
    on; ``sessions`` and ``scores`` are the processed Parquet files (only their ``client_id``,
    ``session``, ``day`` and ``instrument``, ``session``, ``score`` columns are used).
    """

    models: pd.DataFrame = field(default_factory=pd.DataFrame)
    random_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_fit: pd.DataFrame = field(default_factory=pd.DataFrame)
    engine_agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    rm_corr: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    therapist_icc: pd.DataFrame = field(default_factory=pd.DataFrame)
    episodes_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    jacobson_truax: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_flow: pd.DataFrame = field(default_factory=pd.DataFrame)
    sessions: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_report_tables(paths: Mapping[str, Any]) -> ReportTables:
    """Read the tables named in ``paths`` (attribute name of :class:`ReportTables` -> file).

    Names that are not attributes (figures, code, config) are ignored, so a Snakemake rule's
    ``input`` can be passed as it is.
    """
    names = {item.name for item in fields(ReportTables)}
    tables = {}
    for name in names:
        path = _get(paths, name)
        if path:
            tables[name] = read_table(str(path))
    return ReportTables(**tables)


def _get(container: Any, name: str) -> Any:
    if isinstance(container, Mapping):
        return container.get(name)
    return getattr(container, name, None)


# CSS pixels per inch: a figure is shown at the size it was drawn (capped by the page width).
CSS_PIXELS_PER_INCH = 96


@dataclass(frozen=True)
class FigureEntry:
    """A figure for the report: name, caption, PNG bytes as a data URI, display width (px)."""

    name: str
    caption: str
    data_uri: str
    width: int


def figure_entries(png_paths: Sequence[str | Path],
                   caption_dir: str | Path) -> dict[str, FigureEntry]:
    """Load figures for embedding, each with the caption of its family.

    A figure ``<family>`` or ``<family>_<outcome>`` takes its caption from
    ``<caption_dir>/figure_<family>.rst`` (the same caption the Snakemake report shows); the
    longest matching family wins.
    """
    captions = {path.stem.removeprefix("figure_"): path.read_text(encoding="utf-8").strip()
                for path in sorted(Path(caption_dir).glob("figure_*.rst"))}
    entries = {}
    for png in sorted(Path(p) for p in png_paths):
        families = [family for family in captions
                    if png.stem == family or png.stem.startswith(family + "_")]
        caption = captions[max(families, key=len)] if families else png.stem.replace("_", " ")
        content = png.read_bytes()
        encoded = base64.b64encode(content).decode("ascii")
        entries[png.stem] = FigureEntry(png.stem, caption, f"data:image/png;base64,{encoded}",
                                        _display_width(content))
    return entries


def _display_width(png: bytes) -> int:
    # The PNG header holds the width in pixels (bytes 16-19); figures are saved at PNG_DPI.
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError("a figure file is not a PNG image; rerun the figure rules.")
    width_pixels = int.from_bytes(png[16:20], "big")
    return round(width_pixels / PNG_DPI * CSS_PIXELS_PER_INCH)


# --------------------------------------------------------------------------------------------
# number formatting (one place, so the summary and the tables agree)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_number(value: Any, digits: int = 2) -> str:
    """A statistic as printed: ``digits`` decimals, or three significant digits below 0.1.

    >>> format_number(-1.23456), format_number(0.012345), format_number(None)
    ('-1.23', '0.0123', '–')
    """
    number = _finite(value)
    if number is None:
        return MISSING
    if number == 0 or abs(number) >= 0.1:
        return f"{number:.{digits}f}"
    decimals = min(6, 2 - math.floor(math.log10(abs(number))))
    return f"{number:.{decimals}f}"


def format_p(value: Any) -> str:
    """A p-value in APA style: no leading zero, three decimals, "< .001" below .001.

    >>> format_p(0.0312), format_p(0.00002), format_p(float("nan"))
    ('.031', '< .001', '–')
    """
    number = _finite(value)
    if number is None:
        return MISSING
    if number < 0.001:
        return "< .001"
    return f"{number:.3f}".removeprefix("0")


def format_ci(low: Any, high: Any, digits: int = 2) -> str:
    """A confidence interval as "[low, high]"."""
    return f"[{format_number(low, digits)}, {format_number(high, digits)}]"


def format_df(value: Any) -> str:
    """Degrees of freedom: one decimal (Satterthwaite df are not whole numbers)."""
    number = _finite(value)
    return MISSING if number is None else f"{number:.1f}"


def format_r(value: Any) -> str:
    """A correlation with three decimals and no leading zero (APA), e.g. "-.207"."""
    number = _finite(value)
    if number is None:
        return MISSING
    return f"{number:.3f}".replace("0.", ".", 1)


def format_p_clause(value: Any) -> str:
    """"p = .031" or "p < .001", for running text."""
    text = format_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _format_flag(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, str):
        return {"true": "yes", "false": "no"}.get(value.strip().lower(), value)
    return "yes" if bool(value) else "no"


# --------------------------------------------------------------------------------------------
# tables as plain data for the template


@dataclass
class Table:
    """A table for the template: caption, header, rows of strings and rows to highlight."""

    caption: str
    columns: list[str]
    rows: list[list[str]]
    flagged: list[bool] = field(default_factory=list)
    note: str = ""
    numeric: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.flagged:
            self.flagged = [False] * len(self.rows)
        if not self.numeric:
            self.numeric = [i > 0 for i in range(len(self.columns))]


def _rows_of(frame: pd.DataFrame, **conditions: Any) -> pd.DataFrame:
    if frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for column, value in conditions.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        mask &= frame[column].astype(str) == str(value)
    return frame.loc[mask]


def _one(frame: pd.DataFrame, **conditions: Any) -> dict[str, Any] | None:
    rows = _rows_of(frame, **conditions)
    return None if rows.empty else rows.iloc[0].to_dict()


def _adjusted_p(row: Mapping[str, Any]) -> tuple[Any, str]:
    # A primary test is Holm-adjusted; every other term of interest BH-adjusted.
    if _finite(row.get("p_holm")) is not None:
        return row.get("p_holm"), "Holm"
    if _finite(row.get("p_bh")) is not None:
        return row.get("p_bh"), "BH"
    return None, ""


def fixed_effects_table(models: pd.DataFrame, outcome: str, model: str,
                        analysis: str = "primary", caption: str = "") -> Table:
    """APA-style fixed effects of one fit: b, SE, df, t, p, adjusted p, 95% CI, beta.

    Parameters
    ----------
    models : DataFrame
        ``models.csv`` (columns ``outcome, model, analysis, term, estimate, se, df, t, p,
        p_holm, p_bh, ci_low, ci_high, std_estimate``).
    outcome, model, analysis : str
        Which fit.
    caption : str
        The table caption.
    """
    rows = _rows_of(models, outcome=outcome, model=model, analysis=analysis)
    body = []
    for row in rows.to_dict("records"):
        p_adjusted, method = _adjusted_p(row)
        body.append([
            str(row["term"]), format_number(row.get("estimate")), format_number(row.get("se")),
            format_df(row.get("df")), format_number(row.get("t")), format_p(row.get("p")),
            f"{format_p(p_adjusted)} ({method})" if method else MISSING,
            format_ci(row.get("ci_low"), row.get("ci_high")),
            format_number(row.get("std_estimate")),
        ])
    return Table(caption, ["Term", "b", "SE", "df", "t", "p", "p adj.", "95% CI", "β"], body)


def random_effects_table(random_effects: pd.DataFrame, outcome: str, model: str,
                         analysis: str = "primary") -> Table:
    """Variance components of one fit: group, term(s), variance, SD and correlation."""
    rows = _rows_of(random_effects, outcome=outcome, model=model, analysis=analysis)
    body = []
    for row in rows.to_dict("records"):
        term = row.get("term")
        term = term if isinstance(term, str) else ""
        term2 = row.get("term2")
        if isinstance(term2, str) and term2 and term2 != term:
            # a covariance row: the variance column holds the covariance
            term = f"{term} × {term2} (covariance)"
        body.append([str(row.get("group", "")), term, format_number(row.get("variance"), 3),
                     format_number(row.get("sd"), 3), format_number(row.get("corr"), 3)])
    return Table("Random effects", ["Group", "Term", "Variance", "SD", "Corr."], body,
                 numeric=[False, False, True, True, True])


def fit_summary(models: pd.DataFrame, model_fit: pd.DataFrame, outcome: str, model: str,
                min_cell: int, analysis: str = "primary") -> dict[str, str]:
    """One line of facts about a fit: observations, people, convergence, fallbacks, formula."""
    term_row = _one(models, outcome=outcome, model=model, analysis=analysis) or {}
    fit_row = _one(model_fit, outcome=outcome, model=model, analysis=analysis) or {}
    n_obs = _finite(term_row.get("n_obs"))
    fallback = fit_row.get("fallback_steps")
    return {
        "n_obs": MISSING if n_obs is None else str(int(n_obs)),
        # the models table may hold counts of clients already suppressed ("<10")
        "n_clients": _count(term_row.get("n_clients"), min_cell),
        "n_therapists": _count(term_row.get("n_therapists"), min_cell),
        "converged": _format_flag(fit_row.get("converged", term_row.get("converged"))),
        "singular": _format_flag(fit_row.get("singular", term_row.get("singular"))),
        "gradient_norm": _format_small(fit_row.get("gradient_norm")),
        "fallback_steps": _fallback_text(fallback),
        "formula": str(fit_row.get("formula") or MISSING),
    }


def _fallback_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return "none"
    text = str(value).strip()
    if text.startswith("["):
        try:
            steps = json.loads(text)
        except json.JSONDecodeError:
            return text
        return ", then ".join(str(step if not isinstance(step, list) else step[0])
                              for step in steps) or "none"
    return text.replace(";", ", then ").replace("_", " ") or "none"


def sensitivity_table(models: pd.DataFrame, outcomes: Sequence[str],
                      outcome_labels: Mapping[str, str]) -> Table:
    """Every alliance term across analyses, outcomes side by side: b [95% CI], adjusted p."""
    terms = select_alliance_terms(models) if not models.empty else models
    columns = ["Model", "Term", "Analysis"]
    for outcome in outcomes:
        columns += [f"{outcome_labels.get(outcome, outcome)} b [95% CI]", "p adj."]
    keys = []
    if not terms.empty:
        keys = list(dict.fromkeys(zip(terms["model"].astype(str), terms["term"].astype(str),
                                      terms["analysis"].astype(str))))
    keys.sort(key=lambda key: (key[0], term_family(key[1]), analysis_order(key[2]), key[1]))
    body, flagged = [], []
    for model, term, analysis in keys:
        cells = [model_title(model), term_label(term), analysis_label(analysis)]
        for outcome in outcomes:
            row = _one(terms, outcome=outcome, model=model, term=term, analysis=analysis)
            if row is None:
                cells += [MISSING, MISSING]
                continue
            p_adjusted, _ = _adjusted_p(row)
            cells += [f"{format_number(row['estimate'])} "
                      f"{format_ci(row.get('ci_low'), row.get('ci_high'))}",
                      format_p(p_adjusted)]
        body.append(cells)
        flagged.append(analysis == "primary")
    return Table("Alliance terms in every analysis (primary rows highlighted)", columns, body,
                 flagged=flagged, numeric=[False, False, False] + [True] * (len(columns) - 3))


def engine_agreement_table(agreement: pd.DataFrame, tolerance: float) -> Table:
    """Largest differences between the two engines per fit; rows above ``tolerance`` flagged.

    Parameters
    ----------
    agreement : DataFrame
        ``engine_agreement.csv``: ``outcome, model, analysis, max_abs_diff, max_rel_diff``
        (fixed-effect estimates), optionally ``max_rel_se_diff`` (their standard errors) and
        ``reason`` (why a model was not compared).
    tolerance : float
        ``models.agreement_tolerance``: a relative difference of the estimates above it flags
        the row.
    """
    body, flagged = [], []
    for row in agreement.to_dict("records"):
        relative = _finite(row.get("max_rel_diff"))
        relative_se = _finite(row.get("max_rel_se_diff"))
        reason = row.get("reason")
        flag = relative is not None and relative > tolerance
        if flag:
            status = "CHECK: estimates differ above tolerance"
        elif relative is not None:
            status = "estimates agree"
            if relative_se is not None and relative_se > tolerance:
                status += f"; standard errors differ by up to {100 * relative_se:.1f}%"
        else:
            status = str(reason) if isinstance(reason, str) and reason else "not compared"
        body.append([str(row.get("outcome", "")), str(row.get("model", "")),
                     str(row.get("analysis", "primary")),
                     _format_small(row.get("max_abs_diff")), _format_small(relative),
                     _format_small(relative_se), status])
        flagged.append(flag)
    return Table(
        "Agreement of the primary engine (mixedlm) with statsmodels MixedLM",
        ["Outcome", "Model", "Analysis", "Max abs. diff. (b)", "Max rel. diff. (b)",
         "Max rel. diff. (SE)", "Status"],
        body, flagged=flagged, numeric=[False, False, False, True, True, True, False],
        note=f"Relative differences of the estimates above {tolerance:g} "
             "(models.agreement_tolerance) are flagged; models statsmodels cannot express "
             "exactly are listed with the reason.",
    )


def _format_small(value: Any) -> str:
    number = _finite(value)
    return MISSING if number is None else f"{number:.2e}"


def generic_table(frame: pd.DataFrame, caption: str, columns: Mapping[str, str],
                  formats: Mapping[str, Any] | None = None, note: str = "") -> Table:
    """Any tidy frame as a :class:`Table`: ``columns`` maps column -> header (absent ones
    skipped); ``formats`` maps column -> function from cell to text (default: as text)."""
    formats = dict(formats or {})
    present = [column for column in columns if column in frame.columns]
    body = [[formats.get(column, _plain)(row[column]) for column in present]
            for row in frame.to_dict("records")]
    numeric = [pd.api.types.is_numeric_dtype(frame[column]) for column in present]
    return Table(caption, [columns[column] for column in present], body, note=note,
                 numeric=numeric)


def _plain(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


# --------------------------------------------------------------------------------------------
# the plain-language answer


def improvement_sign(instrument: Any) -> float:
    """-1 when a lower score is better (symptom scales), +1 when a higher score is better."""
    return 1.0 if getattr(instrument, "direction", "higher_worse") == "higher_better" else -1.0


def verdict(row: Mapping[str, Any] | None, instrument: Any, p_value: Any) -> str:
    """"yes", "opposite" or "unclear" for one alliance term.

    "yes": the adjusted p is below .05 and the estimate has the sign of a stronger alliance
    going with better scores; "opposite": significant with the other sign; "unclear" otherwise
    (including a term that was not estimated).
    """
    if row is None:
        return "not estimated"
    estimate, p_number = _finite(row.get("estimate")), _finite(p_value)
    if estimate is None or p_number is None or p_number >= ALPHA:
        return "unclear"
    return "yes" if estimate * improvement_sign(instrument) > 0 else "opposite"


def _statistics(row: Mapping[str, Any], p_value: Any, method: str) -> str:
    # "(b = -1.23, 95% CI [-2.01, -0.45], Holm-adjusted p = .004)": the numbers of models.csv
    return (f"(b = {format_number(row['estimate'])}, 95% CI "
            f"{format_ci(row.get('ci_low'), row.get('ci_high'))}, {method}-adjusted "
            f"{format_p_clause(p_value)})")


def _difference(row: Mapping[str, Any], unit: str = "points") -> str:
    # "1.23 points lower": the size and direction of a coefficient in words
    estimate = _finite(row.get("estimate"))
    if estimate is None:
        return "not estimable"
    size = format_number(abs(estimate))
    return f"{size} {unit} {'lower' if estimate < 0 else 'higher'}"


def outcome_answer(tables: ReportTables, outcome: str, outcome_instrument: Any,
                   alliance_instrument: Any, min_cell: int) -> dict[str, Any]:
    """The plain-language answer for one outcome, with the numbers it rests on.

    Parameters
    ----------
    tables : ReportTables
        ``models`` (M1, M2, M3 rows of the primary analysis) and ``rm_corr`` are used.
    outcome : str
        Outcome instrument key.
    outcome_instrument, alliance_instrument
        Registry entries (labels, units, direction).
    min_cell : int
        Threshold for counts of people.

    Returns
    -------
    dict
        ``outcome``, ``title``, ``precedes``, ``goes_with_within`` and ``goes_with_between``
        (verdicts from :func:`verdict`),
        ``sentences`` (plain language with the estimates, CIs and adjusted p of ``models.csv``,
        formatted as in the tables) and ``rm_corr`` (formatted r, CI, p, df, n, or None).
    """
    models = tables.models
    lagged = _one(models, outcome=outcome, model="M2", analysis="primary", term="alliance_within")
    within = _one(models, outcome=outcome, model="M1", analysis="primary", term="alliance_within")
    between = _one(models, outcome=outcome, model="M1", analysis="primary",
                   term="alliance_between_c")
    reverse = _one(models, outcome=outcome, model="M3", analysis="primary", term="symptom_within")
    score = f"{getattr(outcome_instrument, 'label', outcome)} score"
    better = "lower" if improvement_sign(outcome_instrument) < 0 else "higher"
    alliance_units = getattr(alliance_instrument, "units", "alliance")
    sentences = []
    lagged_p, lagged_method = _adjusted_p(lagged or {})
    precedes = verdict(lagged, outcome_instrument, lagged_p)
    if lagged is not None:
        sentences.append(
            f"Precedes (M2, the primary test): after a session in which a client's alliance was "
            f"1 point above their own average ({alliance_units}), their {score} at the next "
            f"session was {_difference(lagged)}, for the same current score "
            f"{_statistics(lagged, lagged_p, lagged_method or 'Holm')}. On this scale "
            f"{better} is better.")
    else:
        sentences.append("Precedes: the lagged model M2 was not estimated in this run.")
    within_p, within_method = _adjusted_p(within or {})
    between_p, between_method = _adjusted_p(between or {})
    # Within and between clients answer different questions and may disagree: each its own verdict.
    goes_with_within = verdict(within, outcome_instrument, within_p)
    goes_with_between = verdict(between, outcome_instrument, between_p)
    parts = []
    if within is not None:
        parts.append(f"in sessions with an alliance 1 point above the client's average the "
                     f"{score} was {_difference(within)} "
                     f"{_statistics(within, within_p, within_method or 'BH')}")
    if between is not None:
        parts.append(f"clients whose average alliance was 1 point higher had a "
                     f"{score} {_difference(between)} "
                     f"{_statistics(between, between_p, between_method or 'BH')}")
    if parts:
        sentences.append("Goes with (M1, same session): " + "; ".join(parts) + ".")
    else:
        sentences.append("Goes with: the concurrent model M1 was not estimated in this run.")
    if reverse is not None:
        reverse_p, reverse_method = _adjusted_p(reverse)
        sentences.append(
            f"Reverse path (M3): after a session with a {score} 1 point above the client's "
            f"average, the next session's alliance was "
            f"{_difference(reverse, unit='points')} "
            f"{_statistics(reverse, reverse_p, reverse_method or 'BH')}.")
    correlation = _one(tables.rm_corr, outcome=outcome)
    rm_corr = None
    if correlation is not None:
        n = _finite(correlation.get("n"))
        rm_corr = {
            "r": format_r(correlation.get("r")),
            "ci": (f"[{format_r(correlation.get('ci_low'))}, "
                   f"{format_r(correlation.get('ci_high'))}]"),
            "p": format_p_clause(correlation.get("p")),
            "dof": format_df(correlation.get("dof")) if _finite(correlation.get("dof")) is None
            else str(int(float(correlation["dof"]))),
            "n": MISSING if n is None else format_count(int(n), min_cell),
        }
    return {
        "outcome": outcome,
        "title": f"{getattr(outcome_instrument, 'construct', outcome).capitalize()} "
                 f"({getattr(outcome_instrument, 'label', outcome)})",
        "precedes": precedes,
        "goes_with_within": goes_with_within,
        "goes_with_between": goes_with_between,
        "sentences": sentences,
        "rm_corr": rm_corr,
    }


# --------------------------------------------------------------------------------------------
# methods, limitations and provenance


def instrument_table(instruments: Sequence[Any]) -> Table:
    """The scoring rules of the instruments analysed, from the registry."""
    body = []
    for instrument in instruments:
        plural = "s" if instrument.max_missing != 1 else ""
        missing = (f"prorated with up to {instrument.max_missing} missing item{plural}"
                   if instrument.missing_rule == "prorate" and instrument.max_missing
                   else "no score with any missing item")
        if instrument.subscales:
            missing += (f"; subscales prorated with up to {instrument.subscale_max_missing} "
                        "missing")
        subscales = "; ".join(f"{name.capitalize()} {', '.join(map(str, items))}"
                              for name, items in instrument.subscales.items()) or MISSING
        bands = "; ".join(f"{label} {low:g}-{high:g}" for label, low, high in
                          instrument.bands) or MISSING
        caseness = MISSING
        if instrument.caseness is not None:
            caseness = f"{instrument.case_when.replace('_', ' ')} {instrument.caseness:g}"
        body.append([
            instrument.label, instrument.construct,
            f"{instrument.n_items} ({instrument.item_min:g}-{instrument.item_max:g})",
            f"{instrument.scoring} ({instrument.score_min:g}-{instrument.score_max:g})",
            instrument.direction.replace("_", " "),
            ", ".join(map(str, instrument.reverse_items)) or "none",
            missing, subscales, bands, caseness,
            MISSING if instrument.reliable_change is None else f"{instrument.reliable_change:g}",
        ])
    return Table("Instruments and scoring rules",
                 ["Instrument", "Construct", "Items (range)", "Score (range)", "Direction",
                  "Reverse-keyed", "Missing items", "Subscales (items)", "Bands", "Caseness",
                  "Reliable change"], body, numeric=[False] * 11)


def exclusions_table(data_flow: pd.DataFrame) -> Table:
    """Rows and administrations rejected at ingest, by file and reason, with counts."""
    if data_flow.empty or "stage" not in data_flow.columns:
        return Table("Exclusions", ["File", "Unit", "Reason", "Count"], [])
    stage = data_flow["stage"].astype(str)
    rejected = data_flow.loc[(stage == "rejected") | stage.str.startswith("dropped")]
    return generic_table(rejected, "Exclusions at ingest (rows and administrations rejected; "
                         "columns dropped by the allowlist)",
                         {"source": "File", "stage": "Stage", "unit": "Unit",
                          "reason": "Reason", "count": "Count"})


def jacobson_truax_text(parameters: pd.DataFrame, labels: Mapping[str, str]) -> list[str]:
    """One sentence per outcome saying which reliability and cut-off formula were used."""
    sentences = []
    for row in parameters.to_dict("records"):
        outcome = str(row.get("outcome"))
        formula = str(row.get("cutoff_formula") or "")
        if formula == "c":
            cutoff_text = (f"cut-off c = (SD0 × M1 + SD1 × M0) / (SD0 + SD1) = "
                           f"{format_number(row.get('cutoff'))}, with functional norms "
                           f"M0 = {format_number(row.get('functional_mean'))}, "
                           f"SD0 = {format_number(row.get('functional_sd'))} "
                           f"({row.get('norms_source')})")
        elif formula == "a":
            sign = "+" if row.get("direction") == "higher_better" else "-"
            cutoff_text = (f"cut-off a = M1 {sign} 2 × SD1 (two SDs from the mean first score "
                           f"toward health) = {format_number(row.get('cutoff'))}, as no "
                           "functional norms are configured")
        else:
            cutoff_text = "no cut-off (fewer than two first scores)"
        sentences.append(
            f"{labels.get(outcome, outcome)}: r_xx = {format_number(row.get('r_xx'), 3)} "
            f"({str(row.get('r_xx_source', '')).replace('_', ' ')}), SD of first scores "
            f"{format_number(row.get('sd_first'))}, S_diff = {format_number(row.get('s_diff'))}, "
            f"reliable change when |RC| > {format_number(row.get('rci_criterion'))} "
            f"({format_number(row.get('reliable_change_points'))} points); {cutoff_text}.")
    return sentences


def model_fit_table(model_fit: pd.DataFrame) -> Table:
    """Every fit's final formula, fallback steps taken and convergence checks."""
    body, flagged = [], []
    for row in model_fit.to_dict("records"):
        fallback = _fallback_text(row.get("fallback_steps"))
        body.append([str(row.get("outcome", "")), str(row.get("model", "")),
                     str(row.get("analysis", "")), str(row.get("formula") or MISSING),
                     fallback, _format_flag(row.get("converged")),
                     _format_flag(row.get("singular")), _format_small(row.get("gradient_norm"))])
        flagged.append(fallback != "none" or _format_flag(row.get("converged")) == "no")
    return Table("Fitted models: final formula, fallbacks and convergence (rows with a "
                 "fallback or without convergence highlighted)",
                 ["Outcome", "Model", "Analysis", "Final formula", "Fallback steps",
                  "Converged", "Singular", "Gradient norm"], body, flagged=flagged,
                 numeric=[False] * 7 + [True])


def session_interval_days(sessions: pd.DataFrame) -> float | None:
    """Median days between a client's consecutive sessions, or None without dates."""
    if sessions.empty or "day" not in sessions.columns:
        return None
    days = sessions[["client_id", "session", "day"]].dropna()
    if days.empty:
        return None
    days = days.sort_values(["client_id", "session"], kind="stable")
    gaps = days.groupby("client_id")["day"].diff().dropna().astype(float)
    return float(gaps.median()) if not gaps.empty else None


def ceiling_share(scores: pd.DataFrame, alliance_instrument: Any) -> float | None:
    """Share of alliance scores at the scale maximum."""
    if scores.empty or "instrument" not in scores.columns:
        return None
    values = scores.loc[scores["instrument"] == alliance_instrument.key, "score"].dropna()
    if values.empty:
        return None
    return float((values >= alliance_instrument.score_max - 1e-9).mean())


def limitations(tables: ReportTables, config: Mapping[str, Any], registry: Mapping[str, Any],
                min_cell: int) -> list[dict[str, str]]:
    """The limitations of docs/methods.md section 5, each with the numbers of these data."""
    outcomes = list(config["analysis"]["outcomes"])
    alliance = registry[config["analysis"]["alliance"]]
    items = []
    reverse = []
    for outcome in outcomes:
        row = _one(tables.models, outcome=outcome, model="M3", analysis="primary",
                   term="symptom_within")
        if row is not None:
            p_value, method = _adjusted_p(row)
            reverse.append(f"{registry[outcome].label}: b = {format_number(row['estimate'])} "
                           f"{format_ci(row.get('ci_low'), row.get('ci_high'))}, "
                           f"{method or 'BH'}-adjusted {format_p_clause(p_value)}")
    items.append({"title": "Reverse causation", "text": (
        "Early symptom change can raise later alliance, so an association does not show that "
        "the alliance causes improvement. M2 controls the current symptom score and M3 tests "
        "the reverse path (symptoms above a client's average predicting the next alliance)"
        + (": " + "; ".join(reverse) + "." if reverse else "; M3 was not run."))})
    items.append({"title": "Dynamic-panel (Nickell) bias", "text": (
        "The lagged outcome is never person-centred, which avoids the worst of the bias, but "
        "multilevel models with a lagged dependent variable can still be biased when symptoms "
        "are strongly autoregressive and series are short; the estimates of M2 should be read "
        "with that in mind.")})
    detrended = []
    for outcome in outcomes:
        primary = _one(tables.models, outcome=outcome, model="M2", analysis="primary",
                       term="alliance_within")
        trend_free = _one(tables.models, outcome=outcome, model="M2", analysis="detrended",
                          term="alliance_within_detrended")
        if primary is not None and trend_free is not None:
            detrended.append(f"{registry[outcome].label}: {format_number(primary['estimate'])} "
                             f"as specified, {format_number(trend_free['estimate'])} detrended")
    items.append({"title": "Shared time trends", "text": (
        "Alliance tends to rise and symptoms to fall over therapy, which inflates within-client "
        "associations. The detrended sensitivity analysis removes each client's linear trend in "
        "alliance" + (": " + "; ".join(detrended) + "." if detrended
                      else " (not run in this configuration).")
    )})
    labels = {key: instrument.label for key, instrument in registry.items()}
    items.append({"title": "Missing data and dropout",
                  "text": _dropout_text(tables, min_cell, labels)})
    share = ceiling_share(tables.scores, alliance)
    items.append({"title": "Ceiling of the alliance scale", "text": (
        f"Alliance ratings sit near the top of the {alliance.label}"
        + (f": {100 * share:.1f}% of scores are at the maximum ({alliance.score_max:g})"
           if share is not None else "")
        + ". Little room above the ceiling shrinks the variance of the within-client alliance "
          "and can attenuate its estimated effect (see the alliance distribution figure).")})
    interval = session_interval_days(tables.sessions)
    # An interval between sessions shorter than an instrument's recall window ("over the last
    # 2 weeks") means consecutive scores share part of their recall period.
    windows = {registry[o].label: registry[o].recall_days for o in outcomes
               if registry[o].recall_days}
    if interval is None:
        recall = ("The exports carry no session dates, so whether consecutive scores share "
                  "their recall windows cannot be checked.")
    elif windows and interval < max(windows.values()):
        recall = (f"Sessions were a median of {interval:g} days apart, shorter than the "
                  "recall windows of "
                  + ", ".join(f"{label} ({days} days)" for label, days in windows.items())
                  + ": consecutive scores partly describe the same days, which adds "
                    "dependence between lagged scores that the models do not separate.")
    else:
        recall = (f"Sessions were a median of {interval:g} days apart, no shorter than the "
                  "instruments' recall windows.")
    items.append({"title": "Overlapping recall windows", "text": recall})
    return items


def _dropout_text(tables: ReportTables, min_cell: int, labels: Mapping[str, str]) -> str:
    text = ("Mixed models assume data are missing at random given what is observed; clients who "
            "leave early may differ in ways the models cannot see.")
    sessions = tables.sessions
    if not sessions.empty and "client_id" in sessions.columns:
        attended = sessions.drop_duplicates(["client_id", "session"]).groupby("client_id").size()
        few = int((attended < 3).sum())
        text += (f" Clients attended a median of {attended.median():g} sessions "
                 f"(interquartile range {attended.quantile(0.25):g}-{attended.quantile(0.75):g}); "
                 f"{format_count(few, min_cell)} of {format_count(len(attended), min_cell)} "
                 "attended fewer than three.")
    summary = tables.episodes_summary
    if not summary.empty and {"outcome", "measure", "n_episodes", "n_with_outcome"} <= set(
            summary.columns):
        rows = summary.loc[summary["measure"] == "has_outcome"]
        parts = [f"{labels.get(row['outcome'], row['outcome'])}: {row['n_with_outcome']} of "
                 f"{row['n_episodes']}"
                 for row in rows.to_dict("records") if row["outcome"] != "combined"]
        if parts:
            text += (" Episodes with at least two scores (an outcome): " + "; ".join(parts)
                     + ".")
    text += " The completers-only sensitivity analysis compares those who stayed with everyone."
    return text


def git_commit(root: str | Path) -> str:
    """The checked-out commit, with a note when tracked files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=root, capture_output=True, text=True, check=True,
                                 timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not available (not a git checkout)"
    return commit + (" (with uncommitted changes to tracked files)" if changed else "")


def package_versions(packages: Sequence[str] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages the results depend on, plus Python."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def collect_provenance(root: str | Path, config: Mapping[str, Any],
                       config_files: Sequence[str | Path], input_files: Sequence[str | Path],
                       result_files: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Everything needed to say exactly what produced the report.

    Returns a dict with ``commit``, ``config_sha256`` (of the checked config with defaults, as
    canonical JSON), ``config_files``, ``inputs`` and ``results`` (lists of (path, sha256)),
    ``packages`` (name -> version) and ``seeds``. File paths are shown relative to ``root``.
    """
    root = Path(root)

    def hashed(paths: Sequence[str | Path]) -> list[tuple[str, str]]:
        return [(_relative(Path(path), root), sha256_file(path))
                for path in sorted(map(str, paths))]

    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return {
        "commit": git_commit(root),
        "config_sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        "config_files": hashed(config_files),
        "inputs": hashed(input_files),
        "results": hashed(result_files),
        "packages": package_versions(),
        "seeds": {"study.seed": config.get("study", {}).get("seed")},
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def methods_context(tables: ReportTables, config: Mapping[str, Any],
                    registry: Mapping[str, Any]) -> dict[str, Any]:
    """The methods section generated from the config, the registry and the fitted models."""
    analysis = config["analysis"]
    outcomes = list(analysis["outcomes"])
    alliance = registry[analysis["alliance"]]
    specs = model_specs(dict(config))
    run = [model for model in config["models"]["run"] if model in specs]
    run += [model for model, spec in specs.items() if spec.custom and model not in run]
    models = [{"id": model, "title": specs[model].title, "question": specs[model].question,
               "formula": specs[model].formula or "(no formula: see text)"} for model in run]
    labels = {key: registry[key].label for key in outcomes if key in registry}
    inputs = [{"name": name, "path": str(table.get("path", "")),
               "layout": str(table.get("layout", "")), "format": str(table.get("format", ""))}
              for name, table in config.get("inputs", {}).items()]
    linking = config.get("linking", {})
    primary_terms = len(outcomes) if "M2" in run else 0
    return {
        "inputs": inputs,
        "linking": linking,
        "key_env": config.get("privacy", {}).get("key_env", ""),
        "instruments": instrument_table([alliance] + [registry[key] for key in outcomes]),
        "exclusions": exclusions_table(tables.data_flow),
        "jacobson_truax": jacobson_truax_text(tables.jacobson_truax, labels),
        "alliance_label": alliance.label,
        "max_lag_gap": analysis.get("max_lag_gap"),
        "early_sessions": analysis.get("early_sessions"),
        "early_min_observed": analysis.get("early_min_observed"),
        "completers_min_sessions": analysis.get("completers_min_sessions"),
        "subscales": ", ".join(name.capitalize() for name in alliance.subscales) or "none",
        "models": models,
        "analyses": [{"id": row.id, "label": analysis_label(row.id),
                      "description": row.description} for row in enabled_analyses(dict(config))],
        "model_fit": model_fit_table(tables.model_fit),
        "n_primary_tests": primary_terms,
        "tolerance": config["models"].get("agreement_tolerance", 1e-3),
        "cross_check_max_clients": config["models"].get("cross_check_max_clients"),
    }


# --------------------------------------------------------------------------------------------
# rendering


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_report(tables: ReportTables, config: Mapping[str, Any], registry: Mapping[str, Any],
                  figures: Mapping[str, FigureEntry], provenance: Mapping[str, Any]) -> str:
    """The reviewer report as one HTML document.

    Parameters
    ----------
    tables : ReportTables
        From :func:`read_report_tables`.
    config : mapping
        The checked config.
    registry : mapping
        The instrument registry (:func:`analysis.instruments.build_registry`).
    figures : mapping
        From :func:`figure_entries`; a figure that is absent is simply not shown.
    provenance : mapping
        From :func:`collect_provenance`.
    """
    min_cell = int(config["privacy"]["min_cell_count"])
    outcomes = list(config["analysis"]["outcomes"])
    alliance = registry[config["analysis"]["alliance"]]
    labels = {key: registry[key].label for key in outcomes}
    answers = [outcome_answer(tables, outcome, registry[outcome], alliance, min_cell)
               for outcome in outcomes]
    specs = model_specs(dict(config))
    result_models = []
    for outcome in outcomes:
        fitted = list(dict.fromkeys(_rows_of(tables.models, outcome=outcome,
                                             analysis="primary")["model"].astype(str))
                      ) if not tables.models.empty else []
        fitted.sort(key=lambda model: (list(specs).index(model) if model in specs
                                       else len(specs), model))
        for model in fitted:
            spec = specs.get(model)
            result_models.append({
                "outcome": outcome,
                "outcome_label": labels[outcome],
                "model": model,
                "title": model_title(model),
                "question": spec.question if spec is not None else "",
                "fixed": fixed_effects_table(tables.models, outcome, model,
                                             caption=f"{labels[outcome]}: {model_title(model)}"),
                "random": random_effects_table(tables.random_effects, outcome, model),
                "fit": fit_summary(tables.models, tables.model_fit, outcome, model, min_cell),
            })
    tolerance = float(config["models"].get("agreement_tolerance", 1e-3))
    names = {key: instrument.label for key, instrument in registry.items()}

    def name_of(key: Any) -> str:
        return names.get(str(key), str(key))

    context = {
        "study": config["study"]["name"],
        "min_cell": min_cell,
        "outcomes": outcomes,
        "labels": labels,
        "alliance": alliance,
        "answers": answers,
        "meta": {"r": format_r(META_ANALYTIC_R),
                 "ci": f"[{format_r(META_ANALYTIC_CI[0])}, {format_r(META_ANALYTIC_CI[1])}]",
                 "source": META_ANALYTIC_SOURCE},
        "methods": methods_context(tables, config, registry),
        "result_models": result_models,
        "sensitivity": sensitivity_table(tables.models, outcomes, labels),
        "rm_corr": generic_table(
            in_outcome_order(tables.rm_corr, outcomes),
            "Repeated-measures correlation of alliance and symptoms (within clients)",
            {"outcome": "Outcome", "r": "r", "ci_low": "CI low", "ci_high": "CI high",
             "p": "p", "dof": "df", "n": "Clients"},
            {"outcome": name_of, "r": format_r, "ci_low": format_r, "ci_high": format_r,
             "p": format_p,
             "dof": _plain_int, "n": lambda n: _count(n, min_cell)},
            note=f"Meta-analytic benchmark: r = {format_r(META_ANALYTIC_R)}, 95% CI "
                 f"{format_r(META_ANALYTIC_CI[0])}-{format_r(META_ANALYTIC_CI[1])} "
                 f"({META_ANALYTIC_SOURCE}); with symptom scales the expected sign here is "
                 "negative."),
        "reliability": generic_table(
            tables.reliability, "Internal consistency at first administration (Cronbach's "
            "alpha)", {"instrument": "Instrument", "alpha": "α", "ci_low": "CI low",
                       "ci_high": "CI high", "n": "Clients"},
            {"instrument": name_of, "alpha": lambda v: format_number(v, 3),
             "ci_low": lambda v: format_number(v, 3), "ci_high": lambda v: format_number(v, 3),
             "n": lambda n: _count(n, min_cell)}),
        "therapist_icc": _icc_table(in_outcome_order(tables.therapist_icc, outcomes), min_cell,
                                    name_of),
        "episodes": generic_table(
            in_outcome_order(tables.episodes_summary, outcomes),
            f"Episode outcomes (counts of people below the threshold shown as \"<{min_cell}\")",
            {"outcome": "Outcome", "measure": "Measure", "n_episodes": "Episodes",
             "n_with_outcome": "With outcome", "count": "Count", "rate": "Rate"},
            {"outcome": name_of,
             "measure": lambda m: str(m).replace("jt_", "Jacobson-Truax ").replace("_", " "),
             "rate": _percent}),
        "engine_agreement": engine_agreement_table(tables.engine_agreement, tolerance),
        "data_flow": generic_table(
            tables.data_flow, "Data flow: every input row and every person, stage by stage",
            {"stage": "Stage", "source": "Source", "unit": "Unit", "reason": "Reason",
             "count": "Count"}),
        "limitations": limitations(tables, config, registry, min_cell),
        "figures": figures,
        "provenance": provenance,
    }
    return _environment().get_template("report.html.j2").render(**context)


def _plain_int(value: Any) -> str:
    number = _finite(value)
    return MISSING if number is None else f"{number:.0f}" if float(number).is_integer() else (
        f"{number:.1f}")


def _count(value: Any, min_cell: int) -> str:
    # a count of people; one the table already suppressed ("<10") is shown as it is
    number = _finite(value)
    if number is None:
        return _plain(value)
    return format_count(int(number), min_cell)


def _percent(value: Any) -> str:
    number = _finite(value)
    return MISSING if number is None else f"{100 * number:.1f}%"


def in_outcome_order(frame: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by the config's order of outcomes (others, e.g. "combined", last), stably."""
    if frame.empty or "outcome" not in frame.columns:
        return frame
    rank = frame["outcome"].astype(str).map({key: i for i, key in enumerate(outcomes)})
    return frame.assign(_rank=rank.fillna(len(outcomes))).sort_values(
        "_rank", kind="stable").drop(columns="_rank")


def _icc_table(icc: pd.DataFrame, min_cell: int, name_of: Any = str) -> Table:
    columns = {"outcome": "Outcome", "var_therapist": "Therapist variance",
               "var_client": "Client variance", "var_residual": "Residual variance",
               "icc_therapist": "ICC (therapist)", "icc_client": "ICC (client)",
               "n_obs": "Observations", "n_therapists": "Therapists", "n_clients": "Clients",
               "converged": "Converged", "singular": "Singular"}
    formats = {name: (lambda v: format_number(v, 3)) for name in
               ("var_therapist", "var_client", "var_residual", "icc_therapist", "icc_client")}
    formats.update({"n_therapists": lambda n: _count(n, min_cell),
                    "n_clients": lambda n: _count(n, min_cell),
                    "converged": _format_flag, "singular": _format_flag, "outcome": name_of})
    return generic_table(icc, "Share of symptom variance between therapists (R3)", columns,
                         formats, note="Therapist effects usually explain about 5% of outcome "
                                       "variance.")


def write_report(html: str, path: str | Path) -> None:
    """Write the report atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
