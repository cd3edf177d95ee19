"""The manuscript's APA-style tables, as one structure both writers (Word, LaTeX) print.

An :class:`ApaTable` is what APA 7 asks of a table: a number (given when the tables are written,
in order), an italic title in title case, column headings, a body of rows (a row may be a
subheading that spans the table, e.g. the model), and notes under it (a general note that starts
"Note." and explains abbreviations, then specific notes). The builders read the result tables of
the run (``models.csv``, ``random_effects.csv``, ``riclpm.csv``, ``riclpm_fit.csv``,
``multiverse_summary.csv``) and print every value with the reviewer report's own functions
(:mod:`analysis.report.formatting`), so a number in the paper is the number in the report.

Counts of people are printed as the published tables give them (already suppressed there,
:mod:`analysis.privacy`); nothing here recomputes a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from analysis.presentation import (
    adjusted_p,
    analysis_label,
    analysis_order,
    model_title,
    name_process,
    select_alliance_terms,
    term_family,
    term_label,
)
from analysis.report.formatting import (
    MISSING,
    finite,
    format_ci,
    format_df,
    format_number,
    format_p,
    format_percent,
    rows_of,
)
from analysis.report.view import ReportView

#: Column headings that are statistical symbols: APA sets them in italics (Greek letters stay
#: upright).
ITALIC_HEADINGS = frozenset({"b", "SE", "df", "t", "z", "p", "r", "n", "N", "SD", "M"})

#: How the grouping factors of the mixed models are named in a table.
GROUP_NAMES = {"client_id": "Client", "therapist_id": "Therapist", "Residual": "Residual"}

#: The RI-CLPM paths a table lists, in order, with their names (the report's order).
RICLPM_PATHS = {
    "cross-lagged alliance -> symptoms": "Alliance → next symptoms",
    "cross-lagged symptoms -> alliance": "Symptoms → next alliance",
    "autoregressive alliance": "Alliance carry-over",
    "autoregressive symptoms": "Symptoms carry-over",
}

#: The multiverse's estimators in the order a table lists them.
ESTIMATOR_NAMES = {"all": "All estimators", "dpm": "Dynamic panel model",
                   "mlm": "Multilevel model", "riclpm": "RI-CLPM"}


@dataclass(frozen=True)
class ApaRow:
    """One row of a table body: cells, or (``heading`` set) a subheading spanning the table."""

    cells: tuple[str, ...] = ()
    heading: str = ""


@dataclass(frozen=True)
class ApaTable:
    """One APA-style table (see the module docstring).

    Attributes
    ----------
    key : str
        A stable name (``fixed_effects_phq9``), the LaTeX label.
    title : str
        The title in title case (printed in italics under the table number).
    columns : tuple of str
        Column headings.
    rows : tuple of ApaRow
        The body.
    notes : tuple of str
        The general note (starting "Note.") and specific notes, one paragraph each.
    """

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[ApaRow, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if not row.heading and len(row.cells) != len(self.columns):
                raise ValueError(f"table {self.key}: a row has {len(row.cells)} cells for "
                                 f"{len(self.columns)} columns")

    @property
    def data_rows(self) -> list[tuple[str, ...]]:
        return [row.cells for row in self.rows if not row.heading]


#: Names of the covariates and intercepts the model formulas share (other terms are named by
#: :func:`analysis.presentation.term_label`).
TERM_NAMES = {"(Intercept)": "Intercept", "session": "Session",
              "symptom_score": "Symptoms at the session",
              "alliance_score": "Alliance at the session", "first_score": "First score"}


def manuscript_term(term: str, process: str = "alliance") -> str:
    """A model term as a table row names it, in sentence case ("Within-client alliance")."""
    label = name_process(TERM_NAMES.get(term) or term_label(term), process)
    return label[:1].upper() + label[1:]


def _count_text(value: Any) -> str:
    """A count as published: a number with thousands separators, a suppressed cell as it is."""
    number = finite(value)
    if number is None:
        return MISSING if value is None or (isinstance(value, float)) else str(value)
    return f"{int(number):,}"


def model_heading(rows: pd.DataFrame, model: str, process: str) -> str:
    """A model's subheading: its title and the sizes of its fit, as ``models.csv`` gives them."""
    first = rows.iloc[0].to_dict()
    sizes = [f"{_count_text(first.get('n_obs'))} obs.",
             f"{_count_text(first.get('n_clients'))} clients"]
    therapists = first.get("n_therapists")
    if finite(therapists) is not None or (isinstance(therapists, str) and therapists):
        sizes.append(f"{_count_text(therapists)} therapists")
    return f"{name_process(model_title(model), process)} ({', '.join(sizes)})"


def fixed_effect_cells(row: dict[str, Any], process: str = "alliance") -> tuple[str, ...]:
    """One term of ``models.csv`` as the fixed-effects table prints it."""
    p_adjusted, method = adjusted_p(row)
    return (manuscript_term(str(row["term"]), process),
            format_number(row.get("estimate")), format_number(row.get("se")),
            format_ci(row.get("ci_low"), row.get("ci_high")), format_df(row.get("df")),
            format_number(row.get("t")), format_p(row.get("p")),
            f"{format_p(p_adjusted)} ({method})" if method else MISSING,
            format_number(row.get("std_estimate")))


FIXED_COLUMNS = ("Term", "b", "SE", "95% CI", "df", "t", "p", "p adj.", "β")
FIXED_NOTE = (
    "Note. b = unstandardised estimate; SE = standard error; CI = confidence interval (Wald); "
    "df = Satterthwaite degrees of freedom (– where the model has none: OLS with clustered "
    "standard errors, the dynamic panel models, whose t is a z statistic); p adj. = p adjusted "
    "within its family of tests (Holm for the primary tests, Benjamini-Hochberg (BH) for the "
    "secondary tests; – for descriptive terms, which belong to no family); β = standardised "
    "estimate, b × SD(x) / SD(y); obs. = observations (client-sessions) in the fit. Counts of "
    "clients and therapists below the privacy threshold are shown as \"<n\".")


def fixed_effects_tables(models: pd.DataFrame, view: ReportView) -> list[ApaTable]:
    """One table per outcome: the fixed effects of every model's primary analysis."""
    tables = []
    for outcome in view.outcomes:
        body: list[ApaRow] = []
        for model in _models_in_order(models, outcome, view):
            rows = rows_of(models, outcome=outcome, model=model, analysis="primary")
            body.append(ApaRow(heading=model_heading(rows, model, view.process_label)))
            body += [ApaRow(fixed_effect_cells(row, view.process_label))
                     for row in rows.to_dict("records")]
        if body:
            tables.append(ApaTable(f"fixed_effects_{outcome}",
                                   f"Fixed Effects of the Primary Models: {view.name_of(outcome)}",
                                   FIXED_COLUMNS, tuple(body), (FIXED_NOTE,)))
    return tables


def _models_in_order(models: pd.DataFrame, outcome: str, view: ReportView) -> list[str]:
    fitted = rows_of(models, outcome=outcome, analysis="primary")
    present = list(dict.fromkeys(fitted["model"].astype(str))) if not fitted.empty else []
    ordered = [model for model in view.models_run if model in present]
    return ordered + [model for model in present if model not in ordered]


SENSITIVITY_COLUMNS = ("Term", "Analysis", "b", "SE", "95% CI", "p", "p adj.", "n")
SENSITIVITY_NOTE = (
    "Note. Every {process} term of every model under each analysis the run performed "
    "(primary first); n = clients in the fit. Abbreviations as in the fixed-effects tables. The "
    "analyses are described in the methods.")


def sensitivity_tables(models: pd.DataFrame, view: ReportView) -> list[ApaTable]:
    """One table per outcome: each {process} term across the analyses (primary and sensitivity)."""
    terms = select_alliance_terms(models) if not models.empty else models
    tables = []
    for outcome in view.outcomes:
        rows = rows_of(terms, outcome=outcome)
        if rows.empty:
            continue
        order = {model: i for i, model in enumerate(_models_in_order(models, outcome, view))}
        records = sorted(rows.to_dict("records"), key=lambda row: (
            order.get(str(row["model"]), len(order)), str(row["model"]),
            term_family(str(row["term"])), str(row["term"]), analysis_order(str(row["analysis"]))))
        body: list[ApaRow] = []
        model = None
        for row in records:
            if row["model"] != model:
                model = row["model"]
                body.append(ApaRow(heading=name_process(model_title(str(model)),
                                                        view.process_label)))
            p_adjusted, method = adjusted_p(row)
            body.append(ApaRow((
                manuscript_term(str(row["term"]), view.process_label),
                analysis_label(str(row["analysis"])),
                format_number(row.get("estimate")), format_number(row.get("se")),
                format_ci(row.get("ci_low"), row.get("ci_high")), format_p(row.get("p")),
                f"{format_p(p_adjusted)} ({method})" if method else MISSING,
                _count_text(row.get("n_clients")))))
        tables.append(ApaTable(
            f"sensitivity_{outcome}",
            name_process(f"Alliance Terms Across the Primary and Sensitivity Analyses: "
                         f"{view.name_of(outcome)}", view.process_label),
            SENSITIVITY_COLUMNS, tuple(body),
            (SENSITIVITY_NOTE.format(process=view.process_label),)))
    return tables


RANDOM_COLUMNS = ("Group", "Term", "Variance", "SD", "r")
RANDOM_NOTE = ("Note. Variance components of the primary analysis of each mixed model; r = "
               "correlation of two random effects of the same group (its covariance is in the "
               "variance column).")


def random_effects_tables(random_effects: pd.DataFrame, view: ReportView) -> list[ApaTable]:
    """One table per outcome: the variance components of every mixed model (primary analysis)."""
    tables = []
    for outcome in view.outcomes:
        fitted = rows_of(random_effects, outcome=outcome, analysis="primary")
        if fitted.empty:
            continue
        present = list(dict.fromkeys(fitted["model"].astype(str)))
        order = [model for model in view.models_run if model in present]
        order += [model for model in present if model not in order]
        body: list[ApaRow] = []
        for model in order:
            body.append(ApaRow(heading=name_process(model_title(model), view.process_label)))
            for row in rows_of(fitted, model=model).to_dict("records"):
                body.append(ApaRow(random_effect_cells(row, view.process_label)))
        tables.append(ApaTable(f"random_effects_{outcome}",
                               f"Random Effects of the Primary Models: {view.name_of(outcome)}",
                               RANDOM_COLUMNS, tuple(body), (RANDOM_NOTE,)))
    return tables


def random_effect_cells(row: dict[str, Any], process: str = "alliance") -> tuple[str, ...]:
    """One row of ``random_effects.csv`` as printed."""
    term = row.get("term") if isinstance(row.get("term"), str) else ""
    term2 = row.get("term2")
    term_text = manuscript_term(term, process) if term else MISSING
    if isinstance(term2, str) and term2 and term2 != term:
        term_text = f"{term_text} × {manuscript_term(term2, process).lower()}"
    group = str(row.get("group", ""))
    return (GROUP_NAMES.get(group, group), term_text, format_number(row.get("variance"), 3),
            format_number(row.get("sd"), 3), format_number(row.get("corr"), 3))


RICLPM_COLUMNS = ("Path", "b", "SE", "95% CI", "z", "p", "β")


def riclpm_table(riclpm: pd.DataFrame, riclpm_fit: pd.DataFrame,
                 view: ReportView) -> list[ApaTable]:
    """The lagged paths of the RI-CLPM (paths equal over waves), per outcome, with its fit."""
    if riclpm.empty:
        return []
    body: list[ApaRow] = []
    fit_notes = []
    for outcome in view.outcomes:
        paths = rows_of(riclpm, outcome=outcome, version="constrained")
        if paths.empty:
            continue
        body.append(ApaRow(heading=view.name_of(outcome)))
        for label, name in RICLPM_PATHS.items():
            rows = rows_of(paths, label=label)
            if rows.empty:
                continue
            row = rows.iloc[0].to_dict()
            beta = pd.to_numeric(rows["std_estimate"], errors="coerce").mean()
            body.append(ApaRow((name_process(name, view.process_label),
                                format_number(row.get("estimate")), format_number(row.get("se")),
                                format_ci(row.get("ci_lower"), row.get("ci_upper")),
                                format_number(row.get("z")), format_p(row.get("p")),
                                format_number(beta))))
        fit = rows_of(riclpm_fit, outcome=outcome, version="constrained")
        if not fit.empty and str(fit.iloc[0].get("status")) == "fitted":
            fit_notes.append(f"{view.name_of(outcome)}: {riclpm_fit_text(fit.iloc[0].to_dict())}")
    if not body:
        return []
    notes = ["Note. Random-intercept cross-lagged panel model (Hamaker, Kuiper & Grasman, "
             "2015): paths between the within-client components, each held equal over waves; "
             "β = the mean over waves of the completely standardised estimates. Fit of the "
             "constrained model: " + "; ".join(fit_notes) + "." if fit_notes else
             "Note. Random-intercept cross-lagged panel model: paths between the within-client "
             "components, each held equal over waves; β = the mean over waves of the completely "
             "standardised estimates."]
    return [ApaTable("riclpm", "Lagged Paths of the Random-Intercept Cross-Lagged Panel Model",
                     RICLPM_COLUMNS, tuple(body), tuple(notes))]


def _index(value: Any) -> str:
    number = finite(value)
    if number is None:
        return MISSING
    text = f"{number:.3f}"
    return text.replace("0.", ".", 1) if abs(number) < 1 else text


def riclpm_fit_text(fit: dict[str, Any]) -> str:
    """The fit indices of one RI-CLPM, as APA prints them."""
    df = finite(fit.get("df"))
    return (f"χ²({MISSING if df is None else f'{df:.0f}'}) = "
            f"{format_number(fit.get('chisq'), 1)}, p {_p_relation(fit.get('pvalue'))}, "
            f"CFI = {_index(fit.get('cfi'))}, TLI = {_index(fit.get('tli'))}, "
            f"RMSEA = {_index(fit.get('rmsea'))}, SRMR = {_index(fit.get('srmr'))}")


def _p_relation(value: Any) -> str:
    text = format_p(value)
    return text if text.startswith("<") else f"= {text}"


MULTIVERSE_COLUMNS = ("Estimator", "Specifications", "Median b", "Range of b", "Median β",
                      "Significant, expected", "Significant, opposite")


def multiverse_table(summary: pd.DataFrame, view: ReportView) -> list[ApaTable]:
    """The multiverse in numbers per outcome and lag: one row per estimator."""
    if summary.empty:
        return []
    from analysis.models.multiverse.summary import JOINT_STATISTICS

    lags = sorted({int(v) for v in pd.to_numeric(summary["lag_gap"]).dropna()})
    alpha = f"{view.settings.alpha:g}".removeprefix("0")
    body: list[ApaRow] = []
    joint_notes = []
    for outcome in view.outcomes:
        for lag in lags:
            part = summary.loc[(summary["outcome"].astype(str) == outcome)
                               & (pd.to_numeric(summary["lag_gap"]) == lag)]
            if part.empty:
                continue
            body.append(ApaRow(heading=f"{view.name_of(outcome)}, lag {lag}"))
            estimators = list(dict.fromkeys(part["estimator"].astype(str)))
            for estimator in [e for e in ESTIMATOR_NAMES if e in estimators] + [
                    e for e in estimators if e not in ESTIMATOR_NAMES]:
                value = _statistics(part, estimator)
                if "n_fitted" not in value:
                    continue
                fitted = finite(value.get("n_fitted"))
                body.append(ApaRow((
                    ESTIMATOR_NAMES.get(estimator, estimator),
                    MISSING if fitted is None else f"{fitted:.0f}",
                    format_number(value.get("median_estimate")),
                    format_ci(value.get("min_estimate"), value.get("max_estimate")),
                    format_number(value.get("median_std_estimate")),
                    _share(value.get("n_significant_expected"), fitted),
                    _share(value.get("n_significant_opposite"), fitted))))
            for row in part.loc[part["statistic"].astype(str).str.startswith("joint_")
                                ].to_dict("records"):
                name = str(row["statistic"]).removeprefix("joint_")
                resamples = finite(row.get("resamples"))
                joint_notes.append(
                    f"{view.name_of(outcome)}, lag {lag}: {JOINT_STATISTICS.get(name, name)} "
                    f"{format_number(row.get('value'), 3)}, bootstrap p "
                    f"{_p_relation(row.get('p_bootstrap'))}"
                    + (f" ({resamples:.0f} resamples)" if resamples else ""))
    if not body:
        return []
    notes = ["Note. Every applicable specification of the alliance → symptoms question, per "
             "outcome and lag (lag: sessions ahead); Specifications = specifications fitted; "
             "Range of b = [smallest, largest]; Significant = number (percentage) of "
             f"specifications with p < {alpha} in the expected or the opposite direction."]
    if joint_notes:
        notes.append("Joint tests (null-imposed cluster bootstrap of clients): "
                     + "; ".join(joint_notes) + ".")
    return [ApaTable("multiverse", "Summary of the Multiverse of Specifications",
                     MULTIVERSE_COLUMNS, tuple(body),
                     tuple(name_process(note, view.process_label) for note in notes))]


def _statistics(part: pd.DataFrame, estimator: str) -> dict[str, Any]:
    rows = part.loc[part["estimator"].astype(str) == estimator]
    return dict(zip(rows["statistic"].astype(str), rows["value"]))


def _share(count: Any, fitted: float | None) -> str:
    number = finite(count)
    if number is None:
        return MISSING
    if not fitted:
        return f"{number:.0f}"
    return f"{number:.0f} ({format_percent(number / fitted)})"


def manuscript_tables(models: pd.DataFrame, random_effects: pd.DataFrame, riclpm: pd.DataFrame,
                      riclpm_fit: pd.DataFrame, multiverse_summary: pd.DataFrame,
                      view: ReportView) -> list[ApaTable]:
    """Every table of the manuscript, in the order they are numbered."""
    return [*fixed_effects_tables(models, view), *random_effects_tables(random_effects, view),
            *sensitivity_tables(models, view), *riclpm_table(riclpm, riclpm_fit, view),
            *multiverse_table(multiverse_summary, view)]


def numbered(tables: Sequence[ApaTable]) -> list[tuple[int, ApaTable]]:
    """The tables with their numbers (Table 1, 2, ...)."""
    return list(enumerate(tables, start=1))


__all__ = ["ApaRow", "ApaTable", "FIXED_COLUMNS", "fixed_effect_cells", "fixed_effects_tables",
           "manuscript_tables", "manuscript_term", "multiverse_table", "numbered",
           "random_effects_tables", "riclpm_table", "sensitivity_tables"]
