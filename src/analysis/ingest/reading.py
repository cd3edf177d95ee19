"""Reading one declared export with every cell as text (nothing guessed or converted).

CSV, Parquet and Excel files, and SPSS (``.sav``) and Stata (``.dta``) files through pyreadstat:
SPSS user-defined missing values (and Stata's ``.a``-``.z``) arrive as missing, numbers stay
numbers (written as text without a trailing ``.0``), and value labels replace the codes of the
columns mapped to the client and therapist roles (``inputs.<name>.value_labels``).

Right after reading, :func:`blank_rows` finds the rows that are empty in every cell (blank lines
of an export are not rows) and :func:`set_missing` sets the cells holding one of the table's
``missing_values`` codes (``"#NULL!"``, ``-99``, ...) missing, before anything is validated.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ConfigError, DataError
from analysis.settings import InputTable

#: Formats read through pyreadstat, with the reader and the file kind named in messages.
STATISTICAL_FORMATS = {"spss": ("read_sav", "an SPSS .sav"), "stata": ("read_dta", "a Stata .dta")}

#: Roles whose codes are replaced by value labels (categories, not measurements).
LABELLED_ROLES = ("client", "therapist")

#: Roles holding identifiers: numeric missing-value codes never apply to them (999 may be an id).
ID_ROLES = ("client", "therapist")


def read_export(path: str | Path, table: InputTable) -> pd.DataFrame:
    """Read a declared table with every cell as text (missing cells as <NA>).

    Raises an error naming the config key and what to do when the file is missing, empty, in
    another encoding, or (apparently) uses another delimiter.

    Parameters
    ----------
    path : str or Path
        The file (CSV, Parquet, Excel, SPSS ``.sav`` or Stata ``.dta``; the format from
        ``table.format`` or the file's suffix).
    table : InputTable
        Its declaration (delimiter, encoding, sheet, missing-value codes, value labels).

    Returns
    -------
    DataFrame
        The table with every cell as text (string dtype).

    Raises
    ------
    ConfigError
        When the file does not exist (the message names ``inputs.<table>.path``).
    DataError
        When the file is empty, in another encoding, cannot be parsed (apparently another
        delimiter) or has a header but no rows: the message names the config key to change.

    Examples
    --------
    >>> import tempfile
    >>> from analysis.settings import InputTable
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "visits.csv"
    >>> _ = path.write_text("Client;Visit;Score\\nA1;1;3,5\\nA2;1;-99\\n")
    >>> table = InputTable(name="visits", path=str(path), kind="sessions", format=None,
    ...                    delimiter=";", encoding="utf-8", sheet=0, layout="long",
    ...                    date_format=None, columns={}, instruments={})
    >>> frame = read_export(path, table)
    >>> frame
      Client Visit Score
    0     A1     1   3,5
    1     A2     1   -99
    >>> frame.dtypes.unique().tolist()
    [<StringDtype(na_value=<NA>)>]
    >>> read_export(Path(folder.name) / "missing.csv", table)
    Traceback (most recent call last):
    ...
    analysis.errors.ConfigError: inputs.visits.path: the file ... does not exist. ...
    >>> folder.cleanup()
    """
    file_path = Path(path)
    name = table.name
    key = f"inputs.{name}.path"
    if not file_path.exists():
        raise ConfigError(
            f"{key}: the file {file_path} does not exist. Check the path (relative to the "
            "project folder) or remove the table from config."
        )
    if file_path.stat().st_size == 0:
        raise DataError(f"{file_path}: the file is empty (0 bytes). Export it again or remove {key}.")
    file_format = table.format or _format_from_suffix(file_path)
    try:
        if file_format == "csv":
            encoding = table.encoding
            # utf-8-sig reads plain UTF-8 too and drops a byte-order mark when there is one.
            if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
                encoding = "utf-8-sig"
            frame = _read_csv_text(file_path, table.delimiter, encoding)
        elif file_format == "parquet":
            frame = _as_text(pd.read_parquet(file_path), table.date_format)
        elif file_format in STATISTICAL_FORMATS:
            frame = _read_statistical(file_path, table, file_format)
        else:
            frame = _as_text(pd.read_excel(file_path, sheet_name=table.sheet, dtype=object),
                             table.date_format)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{file_path}: not readable as {table.encoding} "
            f"(byte {error.start}). Set inputs.{name}.encoding to the file's encoding, "
            "e.g. latin-1 or cp1252."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file_path}: the file has no header and no rows. Export it again.") from None
    except pd.errors.ParserError as error:
        raise DataError(
            f"{file_path}: cannot be parsed as {file_format} ({str(error).splitlines()[0]}). "
            f"Check inputs.{name}.delimiter and the quoting of text fields."
        ) from None
    except (ValueError, OSError) as error:
        raise DataError(
            f"{file_path}: cannot be read as {file_format} ({error}). "
            f"Check inputs.{name}.format."
        ) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        raise DataError(
            f"{file_path}: the file has a header but no data rows. Export it again with its rows, "
            f"or remove {key} from config."
        )
    return frame


def _read_csv_text(path: Path, delimiter: str, encoding: str) -> pd.DataFrame:
    """A CSV file as text cells; empty cells are missing, nothing else is."""
    options = dict(sep=delimiter, encoding=encoding, dtype="string", keep_default_na=False, na_values=[""])
    try:
        # Arrow's multi-threaded reader is three times faster on large exports ...
        return pd.read_csv(path, engine="pyarrow", **options)
    except Exception:  # noqa: BLE001 - any problem is diagnosed by the C reader below
        # ... the C reader gives the precise messages (line numbers, encodings) for broken files.
        return pd.read_csv(path, engine="c", **options)


def _read_statistical(path: Path, table: InputTable, file_format: str) -> pd.DataFrame:
    """An SPSS or Stata file as text cells: user-defined missing values missing, numbers as
    numbers, value labels on the client and therapist columns (``value_labels``)."""
    reader_name, kind = STATISTICAL_FORMATS[file_format]
    try:
        import pyreadstat
    except ImportError:
        raise ConfigError(
            f"inputs.{table.name}.format: reading {kind} file needs the package pyreadstat "
            "(pip install pyreadstat==1.3.7, as pinned in pyproject.toml)."
        ) from None
    try:
        # user_missing=False: values an SPSS file declares missing (e.g. -99) arrive as missing,
        # as do Stata's extended missing values .a-.z; labels are applied below, by role only.
        frame, meta = getattr(pyreadstat, reader_name)(str(path), user_missing=False,
                                                       apply_value_formats=False)
    except Exception as error:  # noqa: BLE001 - pyreadstat raises its own errors for bad files
        raise DataError(
            f"{path}: cannot be read as {kind} file ({error}). Check inputs.{table.name}.format "
            "(spss for .sav, stata for .dta) or export the file again."
        ) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    labels = getattr(meta, "variable_value_labels", None) or {}
    if table.value_labels:
        for role in LABELLED_ROLES:
            column = table.columns.get(role)
            if column in labels and column in frame.columns:
                mapping = labels[column]
                frame[column] = frame[column].map(lambda value, m=mapping: m.get(value, value))
    return _as_text(frame, table.date_format)


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return "excel"
    if suffix in (".sav", ".zsav"):
        return "spss"
    if suffix == ".dta":
        return "stata"
    return "csv"


def _as_text(frame: pd.DataFrame, date_format: str | None = None) -> pd.DataFrame:
    """Cells as text, whole numbers without a trailing '.0' (Excel, Parquet, SPSS and Stata
    store ids as floats); dates written in the table's ``date_format`` (ISO by default), so that
    validation reads them back with it."""
    date_pattern = date_format or "%Y-%m-%d"

    def to_text(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
            return pd.NA
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, (pd.Timestamp, datetime.date)):  # datetime.datetime is a date too
            return value.strftime(date_pattern)
        text = str(value).strip()
        return text if text else pd.NA

    return frame.apply(lambda column: column.map(to_text)).astype("string")


# ---------------------------------------------------------------------------------------------
# blank rows and missing-value codes


_NUMBER_PATTERN = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def numbers(text: pd.Series) -> pd.Series:
    """Text to float64 (NaN where empty or not a number).

    Done in Arrow: five times faster than ``pd.to_numeric`` on text, which matters at a million rows.

    Parameters
    ----------
    text : Series
        Text cells.

    Returns
    -------
    Series
        float64, on the same index.

    Examples
    --------
    >>> numbers(pd.Series(["3", " 4.5 ", "", None, "seven", "-99"], dtype="string")).tolist()
    [3.0, 4.5, nan, nan, nan, -99.0]
    """
    import pyarrow as pa_arrow
    import pyarrow.compute as pa_compute

    array = pa_arrow.array(text.array, type=pa_arrow.string())
    valid = pa_compute.match_substring_regex(array, _NUMBER_PATTERN)
    cleaned = pa_compute.utf8_trim_whitespace(
        pa_compute.if_else(valid, array, pa_arrow.scalar(None, pa_arrow.string())))
    values = pa_compute.cast(cleaned, pa_arrow.float64()).to_numpy(zero_copy_only=False)
    return pd.Series(values, index=text.index, dtype="float64")


def missing_codes(values) -> tuple[frozenset[str], frozenset[float]]:
    """A table's ``missing_values`` split into text codes and numbers ("-99" counts as -99).

    Parameters
    ----------
    values : sequence or None
        The table's ``missing_values`` (text or numbers).

    Returns
    -------
    (frozenset of str, frozenset of float)
        The text codes and the numeric codes.

    Examples
    --------
    >>> texts, numeric = missing_codes(["#NULL!", -99, "999", " n/a "])
    >>> sorted(texts), sorted(numeric)
    (['#NULL!', 'n/a'], [-99.0, 999.0])
    """
    texts, numeric = set(), set()
    for value in values or ():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numeric.add(float(value))
            continue
        text = str(value).strip()
        number = numbers(pd.Series([text], dtype="string")).iloc[0]
        if np.isnan(number):
            texts.add(text)
        else:
            numeric.add(float(number))
    return frozenset(texts), frozenset(numeric)


def _is_code(column: pd.Series, texts: frozenset[str], numeric: frozenset[float]) -> np.ndarray:
    """Where a text column holds one of the codes (text codes match the whole trimmed cell)."""
    hit = np.zeros(len(column), dtype=bool)
    if texts:
        hit |= column.str.strip().isin(list(texts)).fillna(False).to_numpy(dtype=bool)
    if numeric:
        hit |= numbers(column).isin(list(numeric)).to_numpy(dtype=bool)
    return hit


def blank_rows(frame: pd.DataFrame, codes: tuple[frozenset[str], frozenset[float]] = (
        frozenset(), frozenset())) -> np.ndarray:
    """Rows where every cell is empty, only whitespace, or a missing-value code: not rows of data
    (an export's blank trailing lines), skipped and counted, never rejected.

    Parameters
    ----------
    frame : DataFrame
        The table as read (text).
    codes : (frozenset of str, frozenset of float)
        The table's missing-value codes (:func:`missing_codes`).

    Returns
    -------
    ndarray of bool
        One flag per row.

    Examples
    --------
    >>> frame = pd.DataFrame({"client": ["A1", "", None, "-99"], "score": ["3", " ", None, "-99"]},
    ...                      dtype="string")
    >>> blank_rows(frame)
    array([False,  True,  True, False])
    >>> blank_rows(frame, missing_codes([-99]))
    array([False,  True,  True,  True])
    """
    texts, numeric = codes
    blank = np.ones(len(frame), dtype=bool)
    for column in frame.columns:
        cells = frame[column].astype("string")
        empty = (cells.isna() | cells.str.strip().eq("")).fillna(True).to_numpy(dtype=bool)
        blank &= empty | _is_code(cells, texts, numeric)
        if not blank.any():
            break
    return blank


def set_missing(frame: pd.DataFrame, columns: list[str], id_columns: list[str],
                codes: tuple[frozenset[str], frozenset[float]]) -> tuple[pd.DataFrame, int]:
    """``frame`` with missing-value codes in ``columns`` set missing, and how many cells were.

    Numeric codes do not apply to ``id_columns`` (client 999 is a client); text codes do.

    Parameters
    ----------
    frame : DataFrame
        The table as read (text).
    columns : list of str
        The columns whose codes are set missing.
    id_columns : list of str
        Those of ``columns`` that hold identifiers (only text codes apply).
    codes : (frozenset of str, frozenset of float)
        The table's missing-value codes (:func:`missing_codes`).

    Returns
    -------
    (DataFrame, int)
        The table with the codes set missing, and the number of cells set.

    Examples
    --------
    >>> frame = pd.DataFrame({"client": ["999", "A2"], "score": ["999", "#NULL!"]}, dtype="string")
    >>> cleaned, n_cells = set_missing(frame, ["client", "score"], ["client"],
    ...                                missing_codes([999, "#NULL!"]))
    >>> cleaned
      client score
    0    999  <NA>
    1     A2  <NA>
    >>> n_cells
    2
    """
    texts, numeric = codes
    if not texts and not numeric:
        return frame, 0
    frame = frame.copy(deep=False)  # copy on write: the caller's frame stays as it was
    n_cells = 0
    for column in dict.fromkeys(columns):
        cells = frame[column].astype("string")
        hit = _is_code(cells, texts, frozenset() if column in id_columns else numeric)
        if hit.any():
            frame[column] = cells.mask(hit)
            n_cells += int(hit.sum())
    return frame, n_cells
