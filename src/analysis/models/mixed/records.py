"""Fit results as plain, stable JSON: NaN as null, numpy scalars as Python numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {key: plain(value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        # JSON has no NaN or infinity; both are written as null (read back as NaN).
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values only (NaN as null) so the fit files are valid, stable JSON."""
    return plain(result)


