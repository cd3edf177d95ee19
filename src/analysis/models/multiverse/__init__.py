"""The multiverse (specification curve) of the lagged alliance effect.

- :mod:`analysis.models.multiverse.specifications`: the choices, estimands and their
  combinations;
- :mod:`analysis.models.multiverse.data`: one data variant per prorating option;
- :mod:`analysis.models.multiverse.fit`: the fits of one job's specifications;
- :mod:`analysis.models.multiverse.bootstrap`: the joint test under the null;
- :mod:`analysis.models.multiverse.summary`: ``multiverse.csv`` and its summary;
- :mod:`analysis.models.multiverse.permutation`: the earlier within-client shuffle, kept for
  comparison, and the fixed-variance GLS refit the bootstrap shares.

Nothing is imported here: a job imports only the modules it uses.
"""
