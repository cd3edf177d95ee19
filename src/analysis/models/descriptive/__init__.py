"""Descriptive analyses fitted as model jobs.

- :mod:`analysis.models.descriptive.correlation`: repeated-measures correlation (R1);
- :mod:`analysis.models.descriptive.reliability`: internal consistency of the alliance (R2);
- :mod:`analysis.models.descriptive.early`: the early-alliance regression (M4).

Nothing is imported here: a job imports only the modules it uses.
"""
