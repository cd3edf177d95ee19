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

from analysis.config import PROJECT_ROOT
from analysis.privacy import DEMO_KEY


def demo_study(root: str | Path = PROJECT_ROOT):
    """The shipped study (config/config.yaml), resolved."""
    from analysis.study import load_study

    return load_study(Path(root) / "config" / "config.yaml")


def derived_from_simulation(
    seed: int, n_clients: int, n_therapists: int, max_sessions: int = 16, study=None, **effects
) -> tuple[pd.DataFrame, dict]:
    """Simulate raw exports and run ingest, scoring and derivation on them.

    ``effects`` go to :func:`analysis.simulate.simulate_study` (effect overrides, and
    ``alliance_driver``). Returns the ``derived`` frame and the generator's truth.
    """
    from analysis.simulate import simulate_study
    from analysis.study import ingest_settings, score_settings

    simulated = simulate_study(n_clients, n_therapists, seed, max_sessions=max_sessions, **effects)
    study = study or demo_study()
    derived = derived_from_exports(simulated, ingest_settings(study), score_settings(study),
                                   study.derive)
    return derived, simulated.truth


def derived_from_exports(simulated, ingest, score, derive) -> pd.DataFrame:
    """The ``derived`` frame of a simulated study's exports, made as the pipeline makes it.

    Parameters
    ----------
    simulated : analysis.simulate.SimulatedStudy
        The raw exports.
    ingest, score, derive : IngestSettings, ScoreSettings, DeriveSettings
        The stages' settings (:mod:`analysis.study`); the input tables must describe the
        generator's exports (the shipped study's do). Their paths are redirected to a temporary
        folder holding the exports.
    """
    from analysis.derive import derive_analysis_frame
    from analysis.ingest import run_ingest
    from analysis.scoring import score_administrations
    from analysis.simulate import write_study

    with tempfile.TemporaryDirectory() as folder:
        write_study(simulated, folder)
        settings = dataclasses.replace(ingest, inputs=tuple(
            dataclasses.replace(table, path=str(Path(folder) / Path(table.path).name))
            for table in ingest.inputs))
        # A simulation has no real people: the public demo key keeps runs reproducible.
        ingested = run_ingest(settings, key=DEMO_KEY)
    scores = score_administrations(ingested["administrations"], score.registry())
    return derive_analysis_frame(scores, ingested["sessions"], derive)
