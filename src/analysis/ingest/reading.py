"""Reading one declared export with every cell as text (nothing guessed or converted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ConfigError, DataError
from analysis.settings import InputTable


def read_export(path: str | Path, table: InputTable) -> pd.DataFrame:
    """Read a declared table with every cell as text (missing cells as <NA>).

    Raises ``DataError`` naming the config key and what to do when the file is missing, empty,
    in another encoding, or (apparently) uses another delimiter.
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
            frame = _as_text(pd.read_parquet(file_path))
        else:
            frame = _as_text(pd.read_excel(file_path, sheet_name=table.sheet, dtype=object))
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


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return "excel"
    return "csv"


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as text, whole numbers without a trailing '.0' (Excel and Parquet store ids as floats)."""

    def to_text(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
            return pd.NA
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%d")
        text = str(value).strip()
        return text if text else pd.NA

    return frame.apply(lambda column: column.map(to_text)).astype("string")
