"""What the study's design allows the models to estimate: a therapist term or not.

A therapist random intercept needs enough therapists. Without therapist ids in the exports, with
one therapist, or with fewer than :data:`MIN_THERAPISTS`, every model is specified without a
therapist term by design (it is not a fallback step of the convergence protocol), the therapist
ICC (R3) is not estimated, and M4's standard errors are clustered by client. The reason is
recorded with each fit and printed by the report.
"""

from __future__ import annotations

import pandas as pd

from analysis.models.mixed.specs import THERAPIST, join_formula, split_formula

#: Fewest therapists with which a therapist random intercept is estimated. A variance estimated
#: from fewer levels is unreliable (lme4's GLMM FAQ: at least 5-6 levels), so with fewer the
#: models are specified without a therapist term by design, not as a fallback step.
MIN_THERAPISTS = 5


def therapist_design(rows: pd.DataFrame) -> str:
    """Why the models of these rows have no therapist term ("" when they have one).

    >>> therapist_design(pd.DataFrame({"therapist_id": ["t1", "t1", None]}))
    'the data have fewer than 5 therapists (a therapist variance needs at least 5)'
    >>> therapist_design(pd.DataFrame({"client_id": ["c1"]}))
    'the data have no therapist ids'
    """
    if THERAPIST not in rows or not rows[THERAPIST].notna().any():
        return "the data have no therapist ids"
    # The exact number is a count of people that may be small: it is never printed.
    if rows[THERAPIST].dropna().nunique() < MIN_THERAPISTS:
        return (f"the data have fewer than {MIN_THERAPISTS} therapists (a therapist variance "
                f"needs at least {MIN_THERAPISTS})")
    return ""


def without_group(formula: str, group: str) -> str:
    """``formula`` without its random terms for ``group``.

    >>> without_group("y ~ x + (1 + x | client_id) + (1 | therapist_id)", "therapist_id")
    'y ~ x + (1 + x | client_id)'
    """
    response, fixed, random = split_formula(formula)
    return join_formula(response, fixed, [(expr, g) for expr, g in random if g != group])
