"""Planning the next study: Monte-Carlo power from this study's fitted components (METHODS 10).

The stage answers "how many therapists, clients and sessions would the next study need to detect
the lagged alliance effect?" by simulating future studies from what this study estimated and
fitting to each the primary dynamic panel model (DPM) and the conventional M2, exactly as the
pipeline fits them. Anchors: powerlmm (Magnusson; longitudinal trials with therapist effects) and
simr (Green & MacLeod 2016; Monte-Carlo power for mixed models).

- :mod:`analysis.settings`: the ``power`` config section resolved (the design grid, the
  effects, the number of simulated studies and their seeds) and each job's params;
- :mod:`analysis.power.parameters`: the generating parameters of one outcome, read from the run's
  fit files (DPM, DPM-reverse, M2, M3, R3) and the derived data (alliance components, observed
  dropout and missing questionnaires): ``power_parameters.csv``;
- :mod:`analysis.power.simulation`: one job's simulated studies and their fits;
- :mod:`analysis.power.summary`: power per design cell with its Wilson 95% CI: ``power.csv``;
- :mod:`analysis.power.analytic`: the closed-form power of a two-level random-intercept model
  with a within-person predictor, the check the simulation machinery is tested against.
"""
