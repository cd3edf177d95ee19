"""Mixed models: specifications, engines, the convergence protocol and model tables.

- :mod:`analysis.models.mixed.specs`: the one model-specification table (M0-M4, R1-R3, DPM,
  custom models), the sensitivity analyses, and :func:`~analysis.models.mixed.specs.plan_fits`,
  the list of jobs.
- :mod:`analysis.models.mixed.engines`: ``mixedlm`` (primary, lme4/lmerTest results) and
  ``statsmodels`` (cross-check) behind one interface.
- :mod:`analysis.models.mixed.protocol`: the convergence protocol (simplifying the random part).
- :mod:`analysis.models.mixed.fitting`: one job: data selection and the fit by the model's kind
  (mixed models here; M4, R1 and R2 in :mod:`analysis.models.descriptive`; the DPM in
  :mod:`analysis.models.panel.dpm_stage`).
- :mod:`analysis.models.mixed.design`: whether a therapist term can be estimated.
- :mod:`analysis.models.mixed.crosscheck`: the second engine's refit of a primary mixed model.
- :mod:`analysis.models.mixed.diagnostics`: residual and random-effect summaries of a fit.
- :mod:`analysis.models.mixed.standardise`, :mod:`analysis.models.mixed.records`: standardised
  estimates and JSON-ready records, shared by the other families.
- :mod:`analysis.models.mixed.tables`: all job results combined into the published tables.

Nothing is imported here: a job imports only the modules it uses.
"""
