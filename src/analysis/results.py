"""Loading the pipeline's outputs for analysts (notebooks, interactive sessions).

Each ``load_*`` function finds the project folder (the nearest folder, from the current one
upward, that holds ``config/config.yaml``; or the ``root`` argument), reads one output file and
returns it as a DataFrame (``load_study`` returns the resolved study). The files and
their columns are those of the pipeline's data contracts: result tables under ``results/tables/``
and processed files under ``data/processed/``. A file that is not there raises
:class:`analysis.errors.UserError` saying which file and to run ``make report`` first. Nothing
is written.

Examples
--------
>>> from analysis import results
>>> models = results.load_models()                       # doctest: +SKIP
>>> models.query("model == 'M2' and term == 'alliance_within'")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from analysis.catalogue import FILES
from analysis.errors import UserError
from analysis.io import read_table

CONFIG_FILE = Path("config") / "config.yaml"

# Where each output lives, relative to the project folder: the stage-file catalogue.
OUTPUT_FILES = {name: Path(entry.path) for name, entry in FILES.items()
                if entry.path.endswith((".csv", ".parquet"))}


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current folder) holding
    ``config/config.yaml``.

    Raises
    ------
    UserError
        When no such folder exists.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise UserError(
        f"no project folder found: neither {here} nor any folder above it holds {CONFIG_FILE}. "
        "Start from inside the project, or pass root= (the folder that holds config/)."
    )


def _root(root: str | os.PathLike[str] | None) -> Path:
    if root is None:
        return find_project_root()
    folder = Path(root).resolve()
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"root={folder} holds no {CONFIG_FILE}; pass the project folder.")
    return folder


def output_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The path of one output (a key of :data:`OUTPUT_FILES`), checked to exist.

    Raises
    ------
    UserError
        When the name is unknown, or the file has not been made yet ("run `make report`
        first").
    """
    if name not in OUTPUT_FILES:
        raise UserError(f"unknown output {name!r}; known outputs: {', '.join(OUTPUT_FILES)}.")
    folder = _root(root)
    path = folder / OUTPUT_FILES[name]
    if not path.is_file():
        raise UserError(
            f"{OUTPUT_FILES[name]} does not exist in {folder}: run `make report` first "
            "(it runs the pipeline and writes every result)."
        )
    return path


def load_output(name: str, root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Any output of :data:`OUTPUT_FILES` as a DataFrame."""
    return read_table(output_path(name, root))


def load_study(root: str | os.PathLike[str] | None = None):
    """The study (:class:`analysis.study.Study`) of the project's config, checked against the
    schema with defaults filled in: instruments, outcomes, settings and planned fits."""
    from analysis.config import SCHEMA_PATH
    from analysis.study import load_study as load_checked_study

    folder = _root(root)
    # the project's own schema when it has one (a copy of the project may differ from the
    # installed package's)
    schema = folder / "workflow" / "schemas" / "config.schema.yaml"
    return load_checked_study(folder / CONFIG_FILE, schema if schema.is_file() else SCHEMA_PATH)


def load_fit(outcome: str, model: str, analysis: str = "primary",
             root: str | os.PathLike[str] | None = None) -> dict:
    """One fit file, ``results/fits/<outcome>/<model>/<analysis>.json``, as a dict: the fit's
    specification, row accounting, fixed and random effects, fit information and, for a
    primary-analysis mixed model, ``diagnostics`` (the therapists' conditional modes and SDs,
    residual and random-effect summaries: :mod:`analysis.models.mixed.diagnostics`).

    Raises
    ------
    UserError
        When the fit is not there (not planned by config, or the pipeline has not run).
    """
    from analysis.catalogue import FIT_FILE
    from analysis.io import read_json

    relative = Path(FIT_FILE.format(outcome=outcome, model=model, analysis=analysis))
    folder = _root(root)
    if not (folder / relative).is_file():
        raise UserError(
            f"{relative} does not exist in {folder}: is {model} listed under models.run (and "
            f"{outcome} under analysis.outcomes) in config/config.yaml? Then run `make report`."
        )
    return read_json(folder / relative)


def load_models(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/models.csv``: one row per fixed-effect term of every fit (outcome,
    model, analysis, term, estimate, se, df, t, p, p_holm, p_bh, ci_low, ci_high, std_estimate,
    n_obs, n_clients, n_therapists, converged, singular)."""
    return load_output("models", root)


def load_random_effects(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/random_effects.csv``: variance components of every fit (outcome,
    model, analysis, group, term, term2, variance, sd, corr)."""
    return load_output("random_effects", root)


def load_model_fit(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/model_fit.csv``: one row per fit with its convergence checks,
    fallback steps and final formula."""
    return load_output("model_fit", root)


def load_sessions(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/sessions.parquet``: the session registry (client_id, therapist_id,
    session, day)."""
    return load_output("sessions", root)


def load_derived(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/derived.parquet``: one row per (outcome, client, session) with the
    within/between alliance and symptom variables, lags and early alliance."""
    return load_output("derived", root)


def load_scores(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/scores.parquet``: one row per scored administration."""
    return load_output("scores", root)


def load_episodes(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/episodes.parquet``: one row per (client, outcome) episode."""
    return load_output("episodes", root)


def load_data_flow(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/data_flow.csv``: rows read, rejected and kept, and people per analysis
    (counts of people below the threshold already shown as "<10")."""
    return load_output("data_flow", root)
