"""The models, one subpackage per family.

- :mod:`analysis.models.mixed`: the mixed-model engine and its protocol: the specification table
  and fit plan (``specs``), the engines, the convergence protocol, one job's fit (``fitting``),
  the engine cross-check, diagnostics and the published model tables.
- :mod:`analysis.models.panel`: the panel models on one FIML engine (``fiml``, ``ram``): the
  RI-CLPM (``riclpm``, ``riclpm_stage``) and the dynamic panel model (``dpm``, ``dpm_stage``),
  over the waves of ``waves``.
- :mod:`analysis.models.multiverse`: the specification curve (``specifications``, ``data``,
  ``fit``, ``bootstrap``, ``summary``; ``permutation`` for comparison).
- :mod:`analysis.models.descriptive`: repeated-measures correlation (R1), reliability (R2) and
  the early-alliance model (M4).

The recovery study that checks the models on simulated data is :mod:`analysis.simulate.recovery`:
nothing here imports the simulators, the study or anything above the models
(``[tool.importlinter]`` in ``pyproject.toml``). Nothing is imported here: a job imports only the
modules it uses (imports cost seconds).
"""
