"""Panel models on one full-information maximum-likelihood (FIML) engine.

- :mod:`analysis.models.panel.fiml`: the FIML objective by missing-data pattern and its
  minimiser; :mod:`analysis.models.panel.ram`: models in RAM form on that objective.
- :mod:`analysis.models.panel.waves`: which sessions are the panel's waves, the wide panel.
- :mod:`analysis.models.panel.riclpm`, :mod:`analysis.models.panel.riclpm_stage`: the
  random-intercept cross-lagged panel model and its pipeline step.
- :mod:`analysis.models.panel.dpm`, :mod:`analysis.models.panel.dpm_stage`: the dynamic panel
  model with fixed effects (DPM, DPM-reverse) and its step in the model jobs.

Nothing is imported here: a job imports only the modules it uses.
"""
