"""Standardised coefficients: beta x SD(x) / SD(y) (docs/methods.md section 4).

A within-client term's x is its within part, so its SD is the SD of the within part over the
model rows. A between-client term (``*_between_c``) has one value per client, so its SD is taken
over clients (one value each), not over session rows, where clients with many sessions would
count many times.
"""

from __future__ import annotations

import pandas as pd

from analysis.models.mixed.engines import INTERCEPT
from analysis.models.mixed.specs import CLIENT

BETWEEN_SUFFIX = "_between_c"


def standardised_estimates(
    fixed: pd.DataFrame, data: pd.DataFrame, response: str
) -> pd.Series:
    """beta x SD(x) / SD(y) for each fixed effect (NaN for the intercept and factor terms).

    SDs are sample SDs over the model rows, except for between-client terms (over clients). An
    interaction ``a:b`` uses the SD of the product.
    """
    sd_response = float(data[response].std())
    values = []
    for term, estimate in zip(fixed["term"], fixed["estimate"]):
        predictor = _term_values(term, data)
        if predictor is None or not sd_response:
            values.append(float("nan"))
            continue
        if term.endswith(BETWEEN_SUFFIX) and CLIENT in data.columns:
            predictor = predictor.groupby(data[CLIENT], sort=False).first()
        values.append(float(estimate) * float(predictor.std()) / sd_response)
    return pd.Series(values, index=fixed.index, dtype="float64")


def _term_values(term: str, data: pd.DataFrame) -> pd.Series | None:
    if term == INTERCEPT:
        return None
    parts = term.split(":")
    if not all(part in data.columns and pd.api.types.is_numeric_dtype(data[part])
               for part in parts):
        return None
    values = data[parts[0]].astype(float)
    for part in parts[1:]:
        values = values * data[part].astype(float)
    return values
