"""How results are named and read: labels, titles, test families and the p-value each term shows.

One place for the wording that figures, the reviewer report and the notebooks share: short
labels of analyses and model terms, model titles from the specification table, which terms are
alliance predictors, how they sort, and which adjusted p-value a term is judged by (Holm for the
primary tests, Benjamini-Hochberg for the secondary family; descriptive terms belong to no
family and have none). Nothing here computes a statistic.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analysis.models.mixed.specs import BUILTIN_MODELS, SENSITIVITY_ANALYSES

# How analyses and model terms are named; unknown names are shown as they are. The analyses
# themselves (and their order) come from the models stage's sensitivity table.
ANALYSIS_LABELS = {
    "primary": "primary",
    "detrended": "detrended",
    "completers": "completers",
    "ml": "ML",
    "free_paths": "paths free per wave",
}
TERM_LABELS = {
    "alliance_within": "within-client alliance",
    "alliance_between_c": "between-client alliance",
    "alliance_within_detrended": "within-client alliance, detrended",
    "alliance_early": "early alliance",
    "symptom_within": "within-client symptoms",
    "symptom_between_c": "between-client symptoms",
    "alliance_lagged": "alliance at the previous session",
    "symptom_lagged": "symptoms at the previous session",
}
# Alliance predictors: the within/between parts, their subscale versions and early alliance.
# The alliance score itself is not among them: in the reverse model it is the lagged control.
ALLIANCE_TERM_PATTERN = re.compile(
    r"^alliance_(within|between_c|within_detrended|early|lagged|[a-z0-9]+_within"
    r"|[a-z0-9]+_between_c)$"
)

#: The adjusted p-value of each test family, in the column of ``models.csv`` that holds it.
FAMILY_P_COLUMNS = {"primary": ("p_holm", "Holm"), "secondary": ("p_bh", "BH")}


def analysis_label(analysis: str) -> str:
    """A short name for an analysis id (``subscale_task`` -> "Task subscale")."""
    if analysis in ANALYSIS_LABELS:
        return ANALYSIS_LABELS[analysis]
    if analysis.startswith("subscale_"):
        return f"{analysis.removeprefix('subscale_').capitalize()} subscale"
    return analysis


def analysis_order(analysis: str) -> tuple[int, str]:
    """Sort key of an analysis id: the sensitivity table's order, unknown ids last."""
    order = [row.id for row in SENSITIVITY_ANALYSES]
    return (order.index(analysis) if analysis in order else len(order), analysis)


#: "alliance" as a word of the wording here (not in an identifier such as ``alliance_within``).
_ALLIANCE_WORD = re.compile(r"\b([Aa])lliance\b(?!_)")


def name_process(text: str, process: str = "alliance") -> str:
    """Wording of this module or the specification table (a model's title or question, a term's
    label) with the process measure named as the study configures it: ``process`` is "alliance"
    for an alliance measure (the default; the text is unchanged), else the measure's label, which
    takes the place of the word "alliance" (capitalised where the word was).

    >>> name_process("M2 Lagged alliance: does the alliance predict symptoms?", "PCIT coding")
    'M2 Lagged PCIT coding: does the PCIT coding predict symptoms?'
    >>> name_process("Alliance terms of alliance_within", "PCIT coding")
    'PCIT coding terms of alliance_within'
    """
    if process == "alliance":
        return text
    return _ALLIANCE_WORD.sub(
        lambda match: (process[:1].upper() + process[1:]) if match.group(1) == "A" else process,
        text)


def term_label(term: str) -> str:
    """A short name for a model term (``alliance_task_within`` -> "Task alliance, within-client")."""
    if term in TERM_LABELS:
        return TERM_LABELS[term]
    match = re.match(r"^alliance_([a-z0-9]+)_(within|between_c)$", term)
    if match:
        part = "within-client" if match.group(2) == "within" else "between-client"
        return f"{match.group(1).capitalize()} alliance, {part}"
    return term


def model_title(model: str) -> str:
    """The title of a built-in model from the specification table, else the id."""
    spec = BUILTIN_MODELS.get(model)
    return f"{model} {spec.title}" if spec is not None else model


def term_family(term: str) -> int:
    """Sort key of an alliance term: within-client 0, between-client 1, anything else 2."""
    if term.endswith("_within") or term.endswith("_within_detrended"):
        return 0
    if term.endswith("_between_c"):
        return 1
    return 2


def select_alliance_terms(models: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``models.csv`` whose term is an alliance predictor (:data:`ALLIANCE_TERM_PATTERN`),
    sorted by outcome, model, analysis and term."""
    terms = models["term"].astype(str)
    selected = terms.str.match(ALLIANCE_TERM_PATTERN)
    if "of_interest" in models:
        # In the reverse dynamic panel model the lagged alliance is the autoregression (a
        # control), not a predictor of symptoms.
        selected &= ~((terms == "alliance_lagged") & ~models["of_interest"].astype(bool))
    selected = models.loc[selected]
    return selected.sort_values(["outcome", "model", "analysis", "term"],
                                kind="stable").reset_index(drop=True)


#: How a missing statistic is printed in tables, figures and the report.
MISSING = "–"


def finite(value: Any) -> float | None:
    """A value as a finite float, or None (missing, text, NaN or infinite)."""
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
    number = finite(value)
    if number is None:
        return MISSING
    if number == 0 or abs(number) >= 0.1:
        return f"{number:.{digits}f}"
    decimals = min(6, 2 - math.floor(math.log10(abs(number))))
    return f"{number:.{decimals}f}"


def adjusted_p(row: Mapping[str, Any]) -> tuple[float | None, str]:
    """The adjusted p a term of ``models.csv`` is judged by, and its method ("Holm"/"BH").

    A primary test carries a Holm-adjusted p, a secondary one a BH-adjusted p; a descriptive
    term has neither: ``(None, "")``.
    """
    for column, method in FAMILY_P_COLUMNS.values():
        value = finite(row.get(column))
        if value is not None:
            return value, method
    return None, ""


def adjusted_p_column(terms: pd.DataFrame) -> pd.Series:
    """:func:`adjusted_p` for every row of a frame (NaN where a term is in no family)."""
    adjusted = pd.Series(np.nan, index=terms.index, dtype=float)
    for column, _ in reversed(list(FAMILY_P_COLUMNS.values())):
        if column in terms.columns:
            values = pd.to_numeric(terms[column], errors="coerce")
            adjusted = values.where(values.notna(), adjusted)
    return adjusted
