"""The modelling suite: specifications, engines, the convergence protocol and model tables.

- :mod:`analysis.models.specs`: the one model-specification table (M0-M4, R1-R3, custom models),
  the sensitivity analyses, and :func:`~analysis.models.specs.plan_fits`, the list of jobs.
- :mod:`analysis.models.engines`: ``mixedlm`` (primary, lme4/lmerTest results) and
  ``statsmodels`` (cross-check) behind one interface.
- :mod:`analysis.models.protocol`: the convergence protocol (simplifying the random part).
- :mod:`analysis.models.fitting`: one job: data selection and the fit by the model's kind
  (:mod:`~analysis.models.early` M4, :mod:`~analysis.models.correlation` R1,
  :mod:`~analysis.models.reliability` R2; R3 is a mixed model).
- :mod:`analysis.models.crosscheck`: the second engine's refit of a primary mixed model.
- :mod:`analysis.models.tables`: all job results combined into the published tables.
- :mod:`analysis.models.recovery`: the parameter-recovery study.

Nothing is imported here: a job imports only the modules it uses (imports cost seconds).
"""
