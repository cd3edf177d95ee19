"""A seeded generator of realistic raw exports with known alliance effects.

The demo data and the recovery study need service data whose answer is known. This package
draws a study in which clients are nested in therapists with unequal caseloads, attend weekly
sessions (with jitter and dropout) and fill in the WAI-SR at every session and the PHQ-9 and
GAD-7 at most sessions. A latent (true) alliance is drawn for every session and measured by the
WAI-SR items; symptoms then follow the lagged model M2 of docs/methods.md, driven either by the
OBSERVED alliance score split as the analysis splits it (the default, and the demo data) or by
the LATENT alliance, which the WAI-SR measures with the reliability in the instrument registry
(so that attenuation and centring artefacts can appear). Missing items, whole missing
questionnaires and (optionally) invalid rows for the cleaning stage are added at stated rates.
Every instrument fact comes from the registry, and observed scores are computed by
:mod:`analysis.scoring`, as the scoring stage computes them.

One module per job:

- :mod:`~analysis.simulate.parameters`: instruments (from the registry), effects, rates, checks;
- :mod:`~analysis.simulate.layout`: caseloads, sessions attended, dates, raw ids;
- :mod:`~analysis.simulate.people`: fake identifying details;
- :mod:`~analysis.simulate.alliance`: latent alliance, WAI-SR items, observed score, drivers;
- :mod:`~analysis.simulate.missing`: missing items and questionnaires;
- :mod:`~analysis.simulate.symptoms`: PHQ-9 and GAD-7 totals, items and scores;
- :mod:`~analysis.simulate.invalid`: invalid rows for the cleaning stage;
- :mod:`~analysis.simulate.exports`: the two exports, the generated frame, writing the files;
- :mod:`~analysis.simulate.truth`: ``truth.yaml`` and the reproducing command;
- :mod:`~analysis.simulate.generator`: :func:`simulate_study`, which puts them together;
- :mod:`~analysis.simulate.cli`: the command line;
- :mod:`~analysis.simulate.dynamic`: a separate generator for the recovery study
  (:mod:`analysis.simulate.recovery`): alliance and symptoms as a joint dynamic process with
  reverse paths, in score units, no raw exports.

Inputs are plain values (sizes, a seed, the alliance driver and effect overrides);
:func:`simulate_study` returns a :class:`SimulatedStudy` holding the two raw exports in the layout
of the shared contract (``sessions.csv``: ``client_id, therapist_id, session, session_date,
wai_1..wai_12`` and the identifying columns; ``outcomes.csv``: ``client_id, session, date,
phq9_1..phq9_9, gad7_1..gad7_7, record_number``), the per-session generated quantities
(``generated``) and the ``truth`` dict (layout: :mod:`analysis.simulate.truth`);
:func:`write_study` writes ``sessions.csv``, ``outcomes.csv`` and ``truth.yaml``. Everything is
vectorised over clients (the only Python loop runs over the session index), and the same
arguments give byte-identical files. Command line::

    python -m analysis.simulate --clients 400 --therapists 40 --seed 20261125 --out data/raw
"""

from analysis.simulate.cli import main
from analysis.simulate.exports import write_study
from analysis.simulate.generator import SimulatedStudy, simulate_study
from analysis.simulate.parameters import (
    ALLIANCE_DRIVERS,
    DEFAULT_EFFECTS,
    INVALID_RATES,
    MISSING_RATES,
)

__all__ = [
    "ALLIANCE_DRIVERS",
    "DEFAULT_EFFECTS",
    "INVALID_RATES",
    "MISSING_RATES",
    "SimulatedStudy",
    "main",
    "simulate_study",
    "write_study",
]
