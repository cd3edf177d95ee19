"""The modelling suite: specifications, engines, the convergence protocol and model tables.

- :mod:`analysis.models.specs`: the one model-specification table (M0-M4, R1-R3, custom models),
  the sensitivity analyses, and :func:`~analysis.models.specs.planned_fits`, the list of jobs.
- :mod:`analysis.models.engines`: ``mixedlm`` (primary, lme4/lmerTest results) and
  ``statsmodels`` (cross-check) behind one interface.
- :mod:`analysis.models.fitting`: one job: data selection, the convergence protocol with its
  fallbacks, M4, R1, R2, R3, and the engine cross-check.
- :mod:`analysis.models.tables`: all job results combined into the published tables.
- :mod:`analysis.models.recovery`: the parameter-recovery study (``python -m
  analysis.models.recovery``).
"""

from analysis.models.fitting import cross_check_fit, fit_planned_model
from analysis.models.specs import planned_cross_checks, planned_fits
from analysis.models.tables import combine_fits

__all__ = [
    "combine_fits",
    "cross_check_fit",
    "fit_planned_model",
    "planned_cross_checks",
    "planned_fits",
]
