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


