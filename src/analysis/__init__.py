"""Alliance-outcome pipeline: does the working alliance go with, and precede, symptom change?

The package does all the work of the Snakemake pipeline. Each stage is a module of pure functions
that take and return DataFrames with a documented schema:

- ``config``: load and validate the study configuration.
- ``instruments``: the instrument registry (built-ins and those declared in config).
- ``simulate``: a seeded generator of realistic raw exports with known effects.
- ``ingest``: read any declared export, keep allowlisted columns, pseudonymise, validate.
- ``scoring``: score questionnaire administrations.
- ``derive``: within/between-client alliance, lags, early alliance.
- ``episodes``: episode outcomes (reliable change, recovery, Jacobson-Truax).
- ``models``: model specifications, engines, the convergence protocol, tidy tables.
- ``figures`` and ``report``: what reviewers read.
- ``results``: an API for analysts to load the pipeline's outputs.
"""

__version__ = "0.1.0"
