"""R2: internal consistency of each instrument at its first administration."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from analysis.instruments import Instrument

log = logging.getLogger(__name__)


def reliability(administrations: pd.DataFrame, instrument: Instrument) -> dict[str, Any]:
    """R2: Cronbach's alpha (with 95% CI) at each client's first complete administration.

    The item matrix comes from :func:`analysis.scoring.cronbach_alpha_input` (reverse-keyed
    items already reversed); the alpha and its CI from :func:`pingouin.cronbach_alpha`.

    Parameters
    ----------
    administrations : DataFrame
        ``administrations.parquet``: ``client_id``, ``session``, ``instrument`` and the item
        columns.
    instrument : Instrument
        The instrument whose items are analysed.

    Returns
    -------
    dict
        ``data`` (``n_obs``: clients with a complete administration) and ``reliability`` (one
        record: ``instrument, label, n_items, n, alpha, ci_low, ci_high``; alpha and CI missing
        with fewer than 3 clients).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> items = [[0, 1, 0, 1, 0, 0, 1], [1, 1, 2, 1, 1, 2, 1], [2, 2, 2, 3, 2, 1, 2],
    ...          [3, 3, 2, 3, 3, 3, 2], [1, 0, 1, 1, 0, 1, 1], [2, 3, 3, 2, 2, 3, 3]]
    >>> administrations = pd.DataFrame(items, columns=[f"item_{i}" for i in range(1, 8)]).assign(
    ...     client_id=list("abcdef"), session=1, instrument="gad7", given_total=float("nan"))
    >>> result = reliability(administrations, BUILT_IN["gad7"])
    >>> result["data"]
    {'n_obs': 6}
    >>> {key: round(value, 3) if isinstance(value, float) else value
    ...  for key, value in result["reliability"][0].items()}
    {'instrument': 'gad7', 'label': 'GAD-7', 'n_items': 7, 'n': 6, 'alpha': 0.954, 'ci_low':
     0.862, 'ci_high': 0.993}
    """
    import pingouin

    from analysis.scoring import cronbach_alpha_input

    matrix = cronbach_alpha_input(administrations, instrument)
    items = matrix[instrument.item_columns]
    n_clients = int(len(items))
    row = {
        "instrument": instrument.key,
        "label": instrument.label,
        "n_items": instrument.n_items,
        "n": n_clients,
        "alpha": float("nan"),
        "ci_low": float("nan"),
        "ci_high": float("nan"),
    }
    if n_clients >= 3 and instrument.n_items >= 2:
        alpha, ci = pingouin.cronbach_alpha(data=items, ci=0.95)
        row.update({"alpha": float(alpha), "ci_low": float(ci[0]), "ci_high": float(ci[1])})
    else:
        log.warning("R2 for %s: %d complete administration(s), alpha needs at least 3",
                    instrument.key, n_clients)
    return {"data": {"n_obs": n_clients}, "reliability": [row]}


