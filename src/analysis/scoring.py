"""Scoring questionnaire administrations with the instrument registry.

Input is ``administrations.parquet`` (one row per administration that passed validation:
``client_id, session, instrument, item_1..item_K, given_total``); output is ``scores.parquet``
(one row per administration: ``client_id, session, instrument, score, total, n_items_missing,
prorated, band, case, risk_flag, subscale_<name>...``). Each instrument is scored by the rules in
its :class:`~analysis.instruments.Instrument`: reverse-keying, the missing-item rule (prorating),
sum or mean scoring, subscales under their own missing-item rule, severity band, caseness and the
risk flag. Everything is vectorised over rows with numpy (a million administrations score in
seconds). The same module finds item values that break an instrument's range
(:func:`item_range_violations`: ingest rejects such administrations first, so scoring uses it
only as a guard at its boundary and stops on any it finds) and builds the item matrix for
Cronbach's alpha (:func:`cronbach_alpha_input`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.ingest.tables import REJECT_COLUMNS
from analysis.instruments import Instrument

SCORE_COLUMNS = [
    "client_id",
    "session",
    "instrument",
    "score",
    "total",
    "n_items_missing",
    "prorated",
    "band",
    "case",
    "risk_flag",
]

VIOLATION_COLUMNS = ["row_index", "instrument", "item", "rule", "reason"]


def subscale_columns(registry: Mapping[str, Instrument]) -> list[str]:
    """The ``subscale_<name>`` columns of ``scores.parquet``: every subscale in the registry.

    Taken from the whole registry (not the data) so that the columns depend on config only.
    Instruments sharing a subscale name share its column.

    Parameters
    ----------
    registry : mapping of str to Instrument
        The instrument registry.

    Returns
    -------
    list of str
        The subscale columns, in the registry's order.

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> subscale_columns(build_registry())
    ['subscale_task', 'subscale_goal', 'subscale_bond']
    """
    names: list[str] = []
    for instrument in registry.values():
        for name in instrument.subscales:
            if name not in names:
                names.append(name)
    return [f"subscale_{name}" for name in names]


def score_administrations(
    administrations: pd.DataFrame, registry: Mapping[str, Instrument]
) -> pd.DataFrame:
    """Score every administration by its instrument's rules.

    Parameters
    ----------
    administrations : DataFrame
        ``client_id`` (str), ``session`` (int), ``instrument`` (registry key),
        ``item_1``..``item_K`` (float, NaN = missing; an instrument with n items uses
        ``item_1..item_n``), ``given_total`` (float: a pre-scored total on the instrument's score
        scale, e.g. 0-27 for the PHQ-9 and 1-5 for the WAI-SR mean, when the export has no
        items, else NaN).
    registry : mapping of str to Instrument
        From :func:`analysis.instrument_declarations.build_registry`.

    Returns
    -------
    DataFrame
        One row per administration, sorted by ``instrument, client_id, session``:

        - ``score`` (float): item sum or item mean; NaN when more items are missing than the
          instrument allows.
        - ``total`` (float): the item sum, prorated (equals ``score`` for sum instruments; for
          mean instruments ``score x n_items``).
        - ``n_items_missing`` (int): missing items (0 for a pre-scored total: no items expected).
        - ``prorated`` (bool): the score was computed from fewer than all items.
        - ``band`` (str or <NA>): severity band of the score.
        - ``case`` (boolean or <NA>): caseness; <NA> without a score or cut-off.
        - ``risk_flag`` (boolean): the instrument's risk item (PHQ-9 item 9) above its
          minimum; <NA> (unknown, never False) when the item is missing; False for instruments
          without a risk item.
        - ``subscale_<name>`` (float): for each subscale in the registry; NaN for instruments
          without it and for subscales with too many missing items.

    Notes
    -----
    Reverse-keyed items become ``item_min + item_max - x`` before anything else. A prorated sum
    is the mean of the answered items times the item count (Kroenke, Spitzer & Williams, 2001,
    for the PHQ-9); a mean score is the mean of the answered items. Scores are not rounded.
    A pre-scored ``given_total`` is used only when all items are missing. It is read on the
    score scale (as ingest validates it): the score is ``given_total`` and the total is the score
    (sum instruments) or the score times the item count (mean instruments); bands and caseness
    follow from it, subscales are NaN and ``prorated`` is False.

    Raises
    ------
    DataError
        When columns are missing, an instrument is not in the registry, or an item value breaks
        its range (ingest rejects such rows before scoring).

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> frame = pd.DataFrame({"client_id": ["c1"], "session": [1], "instrument": ["phq9"],
    ...     **{f"item_{i}": [1.0] for i in range(1, 8)}, "item_8": [np.nan], "item_9": [2.0],
    ...     "given_total": [np.nan]})
    >>> score_administrations(frame, build_registry())[["score", "prorated", "band", "risk_flag"]]
        score  prorated      band  risk_flag
    0  10.125      True  moderate       True
    """
    _check_columns(administrations, registry)
    violations = item_range_violations(administrations, registry)
    if not violations.empty:
        raise DataError(
            f"administrations: {len(violations)} item value(s) break their instrument's range, "
            f"e.g. {violations['reason'].iloc[0]} (row {violations['row_index'].iloc[0]}). Such "
            f"rows belong in the rejects file; rerun ingest."
        )

    n_rows = len(administrations)
    instrument_codes, instrument_names = pd.factorize(
        administrations["instrument"].astype("string")
    )
    code_of = {str(name): code for code, name in enumerate(instrument_names)}
    present = [key for key in registry if key in code_of]
    max_items = max((registry[key].n_items for key in present), default=0)
    item_matrix = administrations[[f"item_{i}" for i in range(1, max_items + 1)]].to_numpy(
        dtype="float64", na_value=np.nan
    )
    given_total = pd.to_numeric(administrations["given_total"]).to_numpy(
        dtype="float64", na_value=np.nan
    )

    score = np.full(n_rows, np.nan)
    total = np.full(n_rows, np.nan)
    n_missing = np.zeros(n_rows, dtype="int64")
    prorated = np.zeros(n_rows, dtype=bool)
    risk_flag = np.zeros(n_rows, dtype=bool)
    risk_unknown = np.zeros(n_rows, dtype=bool)
    band = np.full(n_rows, None, dtype=object)
    case_values = np.zeros(n_rows, dtype=bool)
    case_missing = np.ones(n_rows, dtype=bool)
    sub_columns = subscale_columns(registry)
    subscales = {column: np.full(n_rows, np.nan) for column in sub_columns}

    for key in present:
        instrument = registry[key]
        rows = np.flatnonzero(instrument_codes == code_of[key])
        scored = _score_items(
            item_matrix[rows, : instrument.n_items], given_total[rows], instrument
        )
        score[rows] = scored["score"]
        total[rows] = scored["total"]
        n_missing[rows] = scored["n_missing"]
        prorated[rows] = scored["prorated"]
        risk_flag[rows] = scored["risk_flag"]
        risk_unknown[rows] = scored["risk_unknown"]
        band[rows] = np.asarray(instrument.band_of(scored["score"]).astype(object), dtype=object)
        case = instrument.is_case(scored["score"])
        case_values[rows] = case.to_numpy(dtype=bool, na_value=False)
        case_missing[rows] = case.isna()
        for name, values in scored["subscales"].items():
            subscales[f"subscale_{name}"][rows] = values

    scores = pd.DataFrame(
        {
            "client_id": administrations["client_id"].astype("string").to_numpy(),
            "session": administrations["session"].to_numpy(dtype="int64"),
            "instrument": administrations["instrument"].astype("string").to_numpy(),
            "score": score,
            "total": total,
            "n_items_missing": n_missing,
            "prorated": prorated,
            "band": pd.array(band, dtype="string"),
            "case": pd.arrays.BooleanArray(case_values, case_missing),
            "risk_flag": pd.arrays.BooleanArray(risk_flag & ~risk_unknown, risk_unknown),
            **subscales,
        },
        columns=[*SCORE_COLUMNS, *sub_columns],
    )
    scores["client_id"] = scores["client_id"].astype("string")
    scores["instrument"] = scores["instrument"].astype("string")
    return scores.sort_values(["instrument", "client_id", "session"], kind="stable").reset_index(
        drop=True
    )


def score_item_matrix(items: np.ndarray, instrument: Instrument) -> np.ndarray:
    """The scores of an item matrix by ``instrument``'s rules, as :func:`score_administrations`.

    ``items`` is rows x ``instrument.n_items`` (float, NaN = missing, values in range). Returns
    the score of each row (NaN where the missing-item rule leaves it unscored). The simulator
    (:mod:`analysis.simulate`) scores its exports with this, so that it and the scoring stage
    share one rule.

    Parameters
    ----------
    items : ndarray
        Rows x ``instrument.n_items``: float, NaN for a missing item, values in range.
    instrument : Instrument
        The instrument whose scoring rule, reverse items and missing-item rule apply.

    Returns
    -------
    ndarray
        The score of each row (NaN where the missing-item rule leaves it unscored).

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> gad7 = build_registry()["gad7"]
    >>> items = np.array([[1, 1, 2, 2, 0, 3, 1], [1, 1, 2, np.nan, 0, 3, 1],
    ...                   [1, np.nan, np.nan, np.nan, 0, 3, 1]])
    >>> score_item_matrix(items, gad7).round(2)
    array([10.  ,  9.33,   nan])
    """
    items = np.asarray(items, dtype="float64")
    return _score_items(items, np.full(len(items), np.nan), instrument)["score"]


def _score_items(items: np.ndarray, given_total: np.ndarray, instrument: Instrument) -> dict:
    """Score one instrument's item matrix (rows x n_items, NaN = missing)."""
    n_items = instrument.n_items
    keyed = items.copy()
    if instrument.reverse_items:
        reverse = [number - 1 for number in instrument.reverse_items]
        keyed[:, reverse] = instrument.item_min + instrument.item_max - keyed[:, reverse]
    missing = np.isnan(keyed)
    n_missing = missing.sum(axis=1)
    n_answered = n_items - n_missing
    answered_sum = np.where(missing, 0.0, keyed).sum(axis=1)
    allowed_missing = instrument.max_missing if instrument.missing_rule == "prorate" else 0
    sub_allowed = instrument.subscale_max_missing if instrument.missing_rule == "prorate" else 0

    sub_scores: dict[str, np.ndarray] = {}
    all_subscales_scorable = np.ones(len(items), dtype=bool)
    for name, numbers in instrument.subscales.items():
        columns = [number - 1 for number in numbers]
        sub_missing = missing[:, columns].sum(axis=1)
        sub_answered = len(columns) - sub_missing
        sub_sum = np.where(missing[:, columns], 0.0, keyed[:, columns]).sum(axis=1)
        scorable = (sub_missing <= sub_allowed) & (sub_answered > 0)
        all_subscales_scorable &= scorable
        safe_answered = np.where(scorable, sub_answered, 1)
        if instrument.scoring == "sum":
            # answered_sum * k / answered keeps a complete sum exact (no mean-times-k rounding)
            value = sub_sum * len(columns) / safe_answered
        else:
            value = sub_sum / safe_answered
        sub_scores[name] = np.where(scorable, value, np.nan)

    scorable = (n_missing <= allowed_missing) & (n_answered > 0)
    if instrument.score_needs_subscales:
        scorable &= all_subscales_scorable
    safe_answered = np.where(scorable, n_answered, 1)
    total = np.where(scorable, answered_sum * n_items / safe_answered, np.nan)
    if instrument.scoring == "sum":
        score = total.copy()
    else:
        score = np.where(scorable, answered_sum / safe_answered, np.nan)
    prorated = scorable & (n_missing > 0)

    # A pre-scored export: no item answered, a total given.
    pre_scored = (n_answered == 0) & ~np.isnan(given_total)
    score = np.where(pre_scored, given_total, score)
    total = np.where(
        pre_scored, given_total if instrument.scoring == "sum" else given_total * n_items, total
    )
    n_missing = np.where(pre_scored, 0, n_missing)

    if instrument.risk_item is not None:
        risk_values = items[:, instrument.risk_item - 1]
        # An unanswered risk item is unknown, not "no risk".
        risk_unknown = np.isnan(risk_values)
        with np.errstate(invalid="ignore"):
            risk_flag = risk_values > instrument.item_min
    else:
        risk_flag = np.zeros(len(items), dtype=bool)
        risk_unknown = np.zeros(len(items), dtype=bool)

    return {
        "score": score,
        "total": total,
        "n_missing": n_missing.astype("int64"),
        "prorated": prorated,
        "risk_flag": risk_flag,
        "risk_unknown": risk_unknown,
        "subscales": sub_scores,
    }


def item_range_violations(
    administrations: pd.DataFrame, registry: Mapping[str, Instrument]
) -> pd.DataFrame:
    """Every item value an instrument does not allow, with the reason.

    Parameters
    ----------
    administrations : DataFrame
        As for :func:`score_administrations`; item columns may still be text (straight from an
        export), in which case values that are not numbers are reported too.
    registry : mapping of str to Instrument

    Returns
    -------
    DataFrame
        ``row_index`` (the index label of the offending row in ``administrations``),
        ``instrument`` (str), ``item`` (Int64 item number; <NA> for ``given_total`` and unknown
        instruments), ``rule`` (one of ``out_of_range``, ``not_integer``, ``not_a_number``,
        ``extra_item``, ``total_out_of_range``, ``unknown_instrument``) and ``reason`` (a
        sentence without identifiers, e.g. "PHQ-9 item 4 is 5; allowed 0-3"). One row per bad
        value, sorted by row position then item; empty when all values are valid.

    Notes
    -----
    A value is invalid when it lies outside ``[item_min, item_max]``, is not a whole number for an
    instrument with whole-number items, is text that is not a number, or is given for an item
    number beyond the instrument's item count. A pre-scored ``given_total`` must lie within the
    instrument's score range (``score_min``-``score_max``). Nothing is clipped or guessed. Text
    values are never echoed in a reason (free text may hold identifying details).

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> frame = pd.DataFrame({"instrument": ["gad7", "gad7"],
    ...                       **{f"item_{i}": [1, 2] for i in range(1, 7)},
    ...                       "item_7": [5, 1.5], "given_total": [np.nan, np.nan]})
    >>> item_range_violations(frame, build_registry())[["item", "rule", "reason"]]
       item          rule                                          reason
    0     7  out_of_range                  GAD-7 item 7 is 5; allowed 0-3
    1     7   not_integer  GAD-7 item 7 is 1.5; allowed whole numbers 0-3
    """
    if "instrument" not in administrations.columns:
        raise DataError("administrations: the column 'instrument' is missing.")
    instrument_keys = (
        administrations["instrument"].astype("string").fillna("").to_numpy(dtype=object)
    )
    item_numbers = sorted(
        int(column.removeprefix("item_"))
        for column in administrations.columns
        if column.startswith("item_") and column.removeprefix("item_").isdigit()
    )
    found: list[tuple[np.ndarray, int | None, str, list[str]]] = []

    for key in pd.unique(instrument_keys):
        rows = np.flatnonzero(instrument_keys == key)
        if key not in registry:
            reason = (
                f"instrument '{key}' is not declared; declare it under instruments: in config"
                if key
                else "no instrument given"
            )
            reasons = [reason] * len(rows)
            found.append((rows, None, "unknown_instrument", reasons))
            continue
        instrument = registry[key]
        low, high = instrument.item_min, instrument.item_max
        for number in item_numbers:
            values, not_a_number = _numeric_values(administrations[f"item_{number}"].iloc[rows])
            if number > instrument.n_items:
                given = ~np.isnan(values) | not_a_number
                if given.any():
                    found.append((
                        rows[given], number, "extra_item",
                        [f"{instrument.label} item {number} is given but {instrument.label} has "
                         f"{instrument.n_items} items"] * int(given.sum()),
                    ))
                continue
            if not_a_number.any():
                found.append((
                    rows[not_a_number], number, "not_a_number",
                    [f"{instrument.label} item {number} is not a number; allowed "
                     f"{low:g}-{high:g}"] * int(not_a_number.sum()),
                ))
            with np.errstate(invalid="ignore"):
                out_of_range = (values < low) | (values > high) | np.isinf(values)
                not_integer = (
                    ~out_of_range & ~np.isnan(values) & (np.floor(values) != values)
                    if instrument.integer_items
                    else np.zeros(len(values), dtype=bool)
                )
            if out_of_range.any():
                found.append((
                    rows[out_of_range], number, "out_of_range",
                    [f"{instrument.label} item {number} is {value:g}; allowed {low:g}-{high:g}"
                     for value in values[out_of_range]],
                ))
            if not_integer.any():
                found.append((
                    rows[not_integer], number, "not_integer",
                    [f"{instrument.label} item {number} is {value:g}; allowed whole numbers "
                     f"{low:g}-{high:g}" for value in values[not_integer]],
                ))
        if "given_total" in administrations.columns:
            totals, not_a_number = _numeric_values(administrations["given_total"].iloc[rows])
            with np.errstate(invalid="ignore"):
                bad_total = (
                    (totals < instrument.score_min) | (totals > instrument.score_max)
                    | np.isinf(totals)
                )
            if not_a_number.any():
                found.append((
                    rows[not_a_number], None, "not_a_number",
                    [f"{instrument.label} given total is not a number"] * int(not_a_number.sum()),
                ))
            if bad_total.any():
                found.append((
                    rows[bad_total], None, "total_out_of_range",
                    [f"{instrument.label} given total is {value:g}; allowed "
                     f"{instrument.score_min:g}-{instrument.score_max:g}"
                     for value in totals[bad_total]],
                ))

    positions = np.concatenate([rows for rows, _, _, _ in found] or [np.array([], dtype=int)])
    items = np.concatenate(
        [np.full(len(rows), np.nan if item is None else item) for rows, item, _, _ in found]
        or [np.array([])]
    )
    violations = pd.DataFrame(
        {
            "row_index": administrations.index.to_numpy()[positions],
            "instrument": pd.array(instrument_keys[positions], dtype="string"),
            "item": pd.array(items, dtype="Int64"),
            "rule": pd.array([rule for rows, _, rule, _ in found for _ in rows], dtype="string"),
            "reason": pd.array(
                [text for _, _, _, reasons in found for text in reasons], dtype="string"
            ),
        },
        columns=VIOLATION_COLUMNS,
    )
    # by row, then item; given_total and unknown instruments after the items of their row
    order = np.lexsort((np.where(np.isnan(items), np.inf, items), positions))
    return violations.iloc[order].reset_index(drop=True)


def _numeric_values(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values of a column (NaN = missing) and a mask of non-empty text that is no number."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(column), dtype=bool)
    text = column.astype("string").str.strip()
    blank = text.isna() | (text == "")
    numbers = pd.to_numeric(text.where(~blank), errors="coerce")
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    not_a_number = (~blank & numbers.isna()).to_numpy(dtype=bool)
    return values, not_a_number


def cronbach_alpha_input(administrations: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """The item matrix for Cronbach's alpha: each client's first administration with all items.

    Parameters
    ----------
    administrations : DataFrame
        As for :func:`score_administrations`.
    instrument : Instrument
        The instrument whose reliability is wanted.

    Returns
    -------
    DataFrame
        One row per client: ``client_id``, ``session`` (of the earliest administration of this
        instrument with no item missing) and ``item_1``..``item_n`` (float), reverse-keyed items
        already reversed (alpha is meaningless otherwise). Sorted by ``client_id``. Pass
        ``frame[instrument.item_columns]`` to :func:`pingouin.cronbach_alpha`. Pre-scored rows
        (no items) never qualify.

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> gad7 = build_registry()["gad7"]
    >>> frame = pd.DataFrame({"client_id": ["a", "a", "b"], "session": [1, 2, 1],
    ...                       "instrument": ["gad7"] * 3,
    ...                       **{f"item_{i}": [1.0, 2.0, 3.0] for i in range(1, 7)},
    ...                       "item_7": [np.nan, 2.0, 0.0], "given_total": [np.nan] * 3})
    >>> cronbach_alpha_input(frame, gad7)[["client_id", "session", "item_1", "item_7"]]
      client_id  session  item_1  item_7
    0         a        2     2.0     2.0
    1         b        1     3.0     0.0
    """
    item_columns = instrument.item_columns
    missing_columns = [c for c in ["client_id", "session", "instrument", *item_columns]
                       if c not in administrations.columns]
    if missing_columns:
        raise DataError(
            f"administrations: column(s) {', '.join(missing_columns)} missing; "
            f"{instrument.label} needs {item_columns[0]}..{item_columns[-1]}."
        )
    rows = administrations.loc[
        administrations["instrument"] == instrument.key, ["client_id", "session", *item_columns]
    ]
    items = rows[item_columns].to_numpy(dtype="float64", na_value=np.nan)
    complete = ~np.isnan(items).any(axis=1)
    matrix = pd.DataFrame(
        {
            "client_id": rows["client_id"].astype("string").to_numpy()[complete],
            "session": rows["session"].to_numpy(dtype="int64")[complete],
        }
    )
    keyed = items[complete]
    if instrument.reverse_items:
        reverse = [number - 1 for number in instrument.reverse_items]
        keyed[:, reverse] = instrument.item_min + instrument.item_max - keyed[:, reverse]
    for position, column in enumerate(item_columns):
        matrix[column] = keyed[:, position]
    matrix["client_id"] = matrix["client_id"].astype("string")
    matrix = matrix.sort_values(["client_id", "session"], kind="stable")
    return matrix.drop_duplicates("client_id", keep="first").reset_index(drop=True)


def _check_columns(administrations: pd.DataFrame, registry: Mapping[str, Instrument]) -> None:
    needed = ["client_id", "session", "instrument", "given_total"]
    missing = [column for column in needed if column not in administrations.columns]
    if missing:
        raise DataError(
            f"administrations: column(s) {', '.join(missing)} missing; expected client_id, "
            f"session, instrument, item_1..item_K and given_total."
        )
    keys = set(administrations["instrument"].dropna().astype(str).unique())
    if administrations["instrument"].isna().any():
        row = int(np.flatnonzero(administrations["instrument"].isna().to_numpy())[0])
        raise DataError(f"administrations: row {row} has no instrument.")
    for key in sorted(keys):
        if key not in registry:
            raise DataError(
                f"administrations: instrument '{key}' is not in the instrument registry; declare "
                f"it under instruments: in config."
            )
        columns = registry[key].item_columns
        absent = [column for column in columns if column not in administrations.columns]
        if absent:
            raise DataError(
                f"administrations: {registry[key].label} needs columns {columns[0]}.."
                f"{columns[-1]}; missing {', '.join(absent)}."
            )


# A flag has the columns of a reject: file, row, column, instrument, rule, reason.
FLAG_COLUMNS = REJECT_COLUMNS


def prorating_flags(administrations: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One flag per prorated score, pointing at its source row (``flags.csv``).

    ``administrations`` carries ``source_file`` and ``source_row`` (set at ingest); ``scores``
    is :func:`score_administrations` of it. Pre-scored totals are never prorated.

    Parameters
    ----------
    administrations : DataFrame
        The administrations (``client_id``, ``session``, ``instrument``, ``source_file``,
        ``source_row``).
    scores : DataFrame
        Their scores (:func:`score_administrations`).

    Returns
    -------
    DataFrame
        One row per prorated score, in the columns :data:`FLAG_COLUMNS` (rule ``prorated``).

    Examples
    --------
    >>> from analysis.instrument_declarations import build_registry
    >>> frame = pd.DataFrame({"client_id": ["a", "b"], "session": [1, 1],
    ...                       "instrument": ["gad7", "gad7"],
    ...                       **{f"item_{i}": [1.0, 2.0] for i in range(1, 7)},
    ...                       "item_7": [np.nan, 2.0], "given_total": [np.nan, np.nan],
    ...                       "source_file": ["outcomes.csv"] * 2, "source_row": [2, 3]})
    >>> scores = score_administrations(frame, build_registry())
    >>> flags = prorating_flags(frame, scores)
    >>> flags[["file", "row", "instrument", "rule"]]
               file  row instrument      rule
    0  outcomes.csv    2       gad7  prorated
    >>> flags.loc[0, "reason"]
    '1 item(s) missing: score prorated from the answered items'
    """
    keys = ["client_id", "session", "instrument"]
    prorated = scores.loc[scores["prorated"].astype(bool), [*keys, "n_items_missing"]]
    if prorated.empty or "source_file" not in administrations:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    located = prorated.merge(administrations[[*keys, "source_file", "source_row"]], on=keys,
                             how="left")
    return pd.DataFrame({
        "file": located["source_file"].astype(str).to_numpy(),
        "row": located["source_row"].astype("int64").to_numpy(),
        "column": "",
        "instrument": located["instrument"].astype(str).to_numpy(),
        "rule": "prorated",
        "reason": [f"{int(n)} item(s) missing: score prorated from the answered items"
                   for n in located["n_items_missing"]],
    }, columns=FLAG_COLUMNS)


def merge_flags(ingest_flags: pd.DataFrame, score_flags: pd.DataFrame) -> pd.DataFrame:
    """Every kept row with a warning, from ingest and scoring, sorted by file and row.

    Parameters
    ----------
    ingest_flags : DataFrame
        Kept rows with a warning from ingest, in the columns :data:`FLAG_COLUMNS`.
    score_flags : DataFrame
        The flags of scoring (:func:`prorating_flags`).

    Returns
    -------
    DataFrame
        Both, in the columns :data:`FLAG_COLUMNS`, sorted by file, row and rule.

    Examples
    --------
    >>> ingest = pd.DataFrame({"file": ["sessions.csv"], "row": [9], "column": ["date"],
    ...                        "instrument": [None], "rule": ["dates_out_of_order"],
    ...                        "reason": ["session 3 is dated before session 2"]})
    >>> scoring = pd.DataFrame({"file": ["sessions.csv"], "row": [4], "column": [""],
    ...                         "instrument": ["phq9"], "rule": ["prorated"],
    ...                         "reason": ["1 item(s) missing: score prorated from the answered items"]})
    >>> merge_flags(ingest, scoring)[["file", "row", "instrument", "rule"]]
               file  row instrument                rule
    0  sessions.csv    4       phq9            prorated
    1  sessions.csv    9             dates_out_of_order
    """
    parts = [frame for frame in (ingest_flags, score_flags) if len(frame)]
    if not parts:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    flags = pd.concat([frame.reindex(columns=FLAG_COLUMNS) for frame in parts], ignore_index=True)
    flags["column"] = flags["column"].fillna("").astype(str)
    flags["instrument"] = flags["instrument"].fillna("").astype(str)
    return flags.sort_values(["file", "row", "rule"], kind="stable").reset_index(drop=True)
