"""Numbers and tables as the report prints them: one set of functions, so the summary and the
tables show the same digits.

Statistics in APA style (:func:`format_number`, :func:`format_p`, :func:`format_ci`, ...), counts
of people through :func:`analysis.privacy.format_count` (small cells hidden), and :class:`Table`,
a caption, header and rows of text for the template.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

# The missing mark and format_number are shared with the figures, so they live in presentation.
from analysis.presentation import MISSING, finite, format_number  # noqa: F401 - re-exported
from analysis.privacy import format_count



def format_p(value: Any) -> str:
    """A p-value in APA style: no leading zero, three decimals, "< .001" below .001.

    >>> format_p(0.0312), format_p(0.00002), format_p(float("nan"))
    ('.031', '< .001', '–')
    """
    number = finite(value)
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
    number = finite(value)
    return MISSING if number is None else f"{number:.1f}"


def format_r(value: Any) -> str:
    """A correlation with three decimals and no leading zero (APA), e.g. "-.207"."""
    number = finite(value)
    if number is None:
        return MISSING
    return f"{number:.3f}".replace("0.", ".", 1)


def format_p_clause(value: Any) -> str:
    """"p = .031" or "p < .001", for running text."""
    text = format_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def format_flag(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    if isinstance(value, str):
        return {"true": "yes", "false": "no"}.get(value.strip().lower(), value)
    return "yes" if bool(value) else "no"


def format_small(value: Any) -> str:
    number = finite(value)
    return MISSING if number is None else f"{number:.2e}"


def plain(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def plain_int(value: Any) -> str:
    number = finite(value)
    return MISSING if number is None else f"{number:.0f}" if float(number).is_integer() else (
        f"{number:.1f}")


def format_people(value: Any, min_cell: int, total: int | None = None) -> str:
    """A count of people through :func:`analysis.privacy.format_count`, with ``total`` (what it
    is part of, e.g. the study's clients) for complementary suppression; a count the table
    already suppressed ("<10", ">54") is shown as it is."""
    number = finite(value)
    if number is None:
        return plain(value)
    return format_count(int(number), min_cell, total)


# Letters whose names start with a vowel sound: "an ECBI", "an SDQ", "a PHQ-9".
_VOWEL_SOUND_LETTERS = set("AEFHILMNORSX")


def article(word: str) -> str:
    """"a" or "an" for ``word`` as read aloud: acronyms by the sound of their first letter
    ("an ECBI", "an ORS", "a PHQ-9"), other words by their first letter ("an alliance", "a
    session"), with the usual exceptions ("a unique", "an hour").

    >>> article("ECBI score"), article("PHQ-9 score"), article("alliance"), article("hour")
    ('an', 'a', 'an', 'an')
    """
    text = str(word).strip()
    if not text:
        return "a"
    first = text.split()[0]
    letters = "".join(ch for ch in first if ch.isalpha())
    if len(letters) >= 2 and letters.isupper():
        return "an" if letters[0] in _VOWEL_SOUND_LETTERS else "a"
    lower = first.lower()
    if lower.startswith(("uni", "use", "usu", "eu", "one", "once")):
        return "a"
    if lower.startswith(("hour", "honest", "honour", "heir")):
        return "an"
    return "an" if lower[:1] in "aeiou" else "a"


def with_article(word: str) -> str:
    """``word`` with its article: "an ECBI score"."""
    return f"{article(word)} {word}"


def format_percent(value: Any) -> str:
    number = finite(value)
    return MISSING if number is None else f"{100 * number:.1f}%"


@dataclass
class Table:
    """A table for the template: caption, header, rows of strings and rows to highlight."""

    caption: str
    columns: list[str]
    rows: list[list[str]]
    flagged: list[bool] = field(default_factory=list)
    note: str = ""
    numeric: list[bool] = field(default_factory=list)
    empty: str = "not available in this run"  # said instead of the table when it has no rows

    def __post_init__(self) -> None:
        if not self.flagged:
            self.flagged = [False] * len(self.rows)
        if not self.numeric:
            self.numeric = [i > 0 for i in range(len(self.columns))]


def generic_table(frame: pd.DataFrame, caption: str, columns: Mapping[str, str],
                  formats: Mapping[str, Any] | None = None, note: str = "",
                  empty: str = Table.empty) -> Table:
    """Any tidy frame as a :class:`Table`: ``columns`` maps column -> header (absent ones
    skipped); ``formats`` maps column -> function from cell to text (default: as text)."""
    formats = dict(formats or {})
    present = [column for column in columns if column in frame.columns]
    body = [[formats.get(column, plain)(row[column]) for column in present]
            for row in frame.to_dict("records")]
    numeric = [pd.api.types.is_numeric_dtype(frame[column]) for column in present]
    return Table(caption, [columns[column] for column in present], body, note=note,
                 numeric=numeric, empty=empty)


def rows_of(frame: pd.DataFrame, **conditions: Any) -> pd.DataFrame:
    if frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for column, value in conditions.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        mask &= frame[column].astype(str) == str(value)
    return frame.loc[mask]


def one(frame: pd.DataFrame, **conditions: Any) -> dict[str, Any] | None:
    rows = rows_of(frame, **conditions)
    return None if rows.empty else rows.iloc[0].to_dict()


def in_outcome_order(frame: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by the config's order of outcomes (others, e.g. "combined", last), stably."""
    if frame.empty or "outcome" not in frame.columns:
        return frame
    rank = frame["outcome"].astype(str).map({key: i for i, key in enumerate(outcomes)})
    return frame.assign(_rank=rank.fillna(len(outcomes))).sort_values(
        "_rank", kind="stable").drop(columns="_rank")
