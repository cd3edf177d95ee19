"""A simulated study run through ingest, scoring and derivation in memory (recovery studies).

:func:`derived_from_simulation` writes the simulator's raw exports to a temporary folder, ingests
them with a study's input declaration (by default the demo study's, which describes the
generator's exports), scores them and derives the analysis variables, exactly as the pipeline
does, and returns the ``derived`` frame with the generator's truth.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pandas as pd

from analysis.privacy import DEMO_KEY, PROJECT_ROOT


def demo_study(root: str | Path = PROJECT_ROOT):
    """The shipped study (config/config.yaml), resolved."""
    from analysis.study import load_study

    return load_study(Path(root) / "config" / "config.yaml")


def derived_from_simulation(
    seed: int, n_clients: int, n_therapists: int, max_sessions: int = 16, study=None, **effects
) -> tuple[pd.DataFrame, dict]:
    """Simulate raw exports and run ingest, scoring and derivation on them.

    Returns the ``derived`` frame and the generator's truth.
    """
    from analysis.derive import derive_analysis_frame
    from analysis.ingest import run_ingest
    from analysis.scoring import score_administrations
    from analysis.simulate import simulate_study, write_study
    from analysis.study import ingest_settings, score_settings

    simulated = simulate_study(n_clients, n_therapists, seed, max_sessions=max_sessions, **effects)
    study = study or demo_study()
    with tempfile.TemporaryDirectory() as folder:
        write_study(simulated, folder)
        settings = ingest_settings(study)
        settings = dataclasses.replace(settings, inputs=tuple(
            dataclasses.replace(table, path=str(Path(folder) / Path(table.path).name))
            for table in settings.inputs))
        # A simulation has no real people: the public demo key keeps runs reproducible.
        ingested = run_ingest(settings, key=DEMO_KEY)
    scores = score_administrations(ingested["administrations"], score_settings(study).registry())
    return derive_analysis_frame(scores, ingested["sessions"], study.derive), simulated.truth
