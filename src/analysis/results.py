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

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from analysis.catalogue import FILES
from analysis.errors import UserError
from analysis.io import read_table

CONFIG_FILE = Path("config") / "config.yaml"

# Where each output lives, relative to the project folder: the stage-file catalogue.
OUTPUT_FILES = {name: Path(entry.path) for name, entry in FILES.items()
                if entry.path.endswith((".csv", ".parquet"))}


@contextlib.contextmanager
def example_project(*outputs: str, **frames: pd.DataFrame) -> Iterator[Path]:
    """A throwaway project folder for trying the loaders, removed on leaving the block.

    It holds an empty ``config/config.yaml`` (what marks a project folder) and each named output
    where the pipeline writes it: its contract's one-row example frame
    (:func:`analysis.contracts.example_frame`), or the frame given by keyword.

    Parameters
    ----------
    *outputs : str
        Output names (keys of ``OUTPUT_FILES``, e.g. ``"models"``) written as example frames.
    **frames : DataFrame
        Output names written with the given frame.

    Returns
    -------
    context manager yielding Path
        The project folder.

    Examples
    --------
    >>> with example_project("models") as root:
    ...     sorted(path.name for path in (root / "results" / "tables").iterdir())
    ['models.csv']
    """
    from analysis.contracts import example_frame
    from analysis.io import write_table

    unknown = sorted((set(outputs) | set(frames)) - set(OUTPUT_FILES))
    if unknown:
        raise UserError(f"example_project: unknown outputs {unknown}; the outputs are "
                        f"{', '.join(sorted(OUTPUT_FILES))}.")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / CONFIG_FILE).parent.mkdir()
        (root / CONFIG_FILE).write_text("{}", encoding="utf-8")
        for name in outputs:
            write_table(example_frame(name), root / OUTPUT_FILES[name])
        for name, frame in frames.items():
            write_table(frame, root / OUTPUT_FILES[name])
        yield root


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current folder) holding
    ``config/config.yaml``.

    Parameters
    ----------
    start : str or path-like, optional
        The folder to start from (default: the current folder).

    Returns
    -------
    Path
        The project folder, resolved.

    Raises
    ------
    UserError
        When no such folder exists.

    Examples
    --------
    >>> with example_project() as root:
    ...     (root / "notebooks").mkdir()
    ...     find_project_root(root / "notebooks") == root.resolve()
    True
    >>> find_project_root(root.parent)
    Traceback (most recent call last):
    ...
    analysis.errors.UserError: no project folder found: ...
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

    Parameters
    ----------
    name : str
        The output's short name in the stage-file catalogue (``"models"``, ``"derived"``, ...).
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    Path
        The output's absolute path.

    Raises
    ------
    UserError
        When the name is unknown, or the file has not been made yet ("run `make report`
        first").

    Examples
    --------
    >>> with example_project() as root:
    ...     output_path("models", root)
    Traceback (most recent call last):
    ...
    analysis.errors.UserError: results/tables/models.csv does not exist in ...: run `make report` first ...
    >>> with example_project("models") as root:
    ...     output_path("models", root).relative_to(root.resolve()).as_posix()
    'results/tables/models.csv'
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
    """Any output of :data:`OUTPUT_FILES` as a DataFrame, checked against its data contract.

    Parameters
    ----------
    name : str
        The output's short name in the stage-file catalogue (a key of :data:`OUTPUT_FILES`).
    root : str or path-like, optional
        The project folder (default: found from the current folder).

    Returns
    -------
    DataFrame
        The table as written by the pipeline.

    Raises
    ------
    UserError
        When the name is unknown or the file has not been made yet.

    Examples
    --------
    >>> flow = pd.DataFrame({"stage": ["ingest"], "source": ["sessions.csv"],
    ...                      "instrument": [""], "unit": ["rows"], "reason": ["read"],
    ...                      "count": ["120"]})
    >>> with example_project(data_flow=flow) as root:
    ...     load_output("data_flow", root)
        stage        source  instrument  unit reason  count
    0  ingest  sessions.csv         NaN  rows   read    120
    """
    return read_table(output_path(name, root))


def load_study(root: str | os.PathLike[str] | None = None):
    """The study (:class:`analysis.study.Study`) of the project's config, checked against the
    schema with defaults filled in: instruments, outcomes, settings and planned fits.

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder). Its own
        ``workflow/schemas/config.schema.yaml`` is used when it has one.

    Returns
    -------
    Study
        The resolved study.

    Raises
    ------
    ConfigError
        When the config breaks the schema (the message names the key).

    Examples
    --------
    >>> import analysis
    >>> study = load_study(find_project_root(Path(analysis.__file__).parent))
    >>> study.outcome_keys
    ('phq9', 'gad7')
    >>> [fit.model for fit in study.fits if fit.outcome == "phq9" and fit.analysis == "primary"][:3]
    ['DPM', 'DPM-reverse', 'M0']
    """
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

    Parameters
    ----------
    outcome : str
        The outcome instrument's key (``"phq9"``).
    model : str
        The model's name (``"M2"``).
    analysis : str
        The analysis (``"primary"`` or a sensitivity analysis's name).
    root : str or path-like, optional
        The project folder (default: found from the current folder).

    Returns
    -------
    dict
        The fit record as written by the fit job.

    Raises
    ------
    UserError
        When the fit is not there (not planned by config, or the pipeline has not run).

    Examples
    --------
    >>> from analysis.io import write_json
    >>> with example_project() as root:
    ...     write_json({"model": "M2", "converged": True},
    ...                root / "results" / "fits" / "phq9" / "M2" / "primary.json")
    ...     load_fit("phq9", "M2", root=root)
    {'converged': True, 'model': 'M2'}
    >>> with example_project() as root:
    ...     load_fit("phq9", "M3", root=root)
    Traceback (most recent call last):
    ...
    analysis.errors.UserError: results/fits/phq9/M3/primary.json does not exist in ...
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
    n_obs, n_clients, n_therapists, converged, singular).

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per fixed-effect term of every fit.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("models") as root:
    ...     load_models(root)[["outcome", "model", "term", "estimate", "n_obs"]]
      outcome model term  estimate  n_obs
    0       x     x    x       1.5      1
    """
    return load_output("models", root)


def load_random_effects(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/random_effects.csv``: variance components of every fit (outcome,
    model, analysis, group, term, term2, variance, sd, corr).

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per variance component of every mixed model.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("random_effects") as root:
    ...     load_random_effects(root)[["group", "term", "variance", "sd"]]
      group term  variance   sd
    0     x    x       1.5  1.5
    """
    return load_output("random_effects", root)


def load_model_fit(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/model_fit.csv``: one row per fit with its convergence checks,
    fallback steps and final formula.

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per fit.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("model_fit") as root:
    ...     load_model_fit(root)[["outcome", "model", "analysis", "formula"]]
      outcome model analysis formula
    0       x     x        x       x
    """
    return load_output("model_fit", root)


def load_sessions(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/sessions.parquet``: the session registry (client_id, therapist_id,
    session, day).

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per session of a client.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> sessions = pd.DataFrame({"client_id": ["c1", "c1", "c2"], "therapist_id": ["t1"] * 3,
    ...                          "session": [1, 2, 1], "day": [0, 7, 0]})
    >>> with example_project(sessions=sessions) as root:
    ...     load_sessions(root)
      client_id therapist_id  session  day
    0        c1           t1        1    0
    1        c1           t1        2    7
    2        c2           t1        1    0
    """
    return load_output("sessions", root)


def load_derived(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/derived.parquet``: one row per (outcome, client, session) with the
    within/between alliance and symptom variables, lags and early alliance.

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        The analysis frame, one row per (outcome, client, session).

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("derived") as root:
    ...     load_derived(root)[["outcome", "client_id", "session", "symptom_score"]]
      outcome client_id  session  symptom_score
    0       x         x        1            1.5
    """
    return load_output("derived", root)


def load_scores(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/scores.parquet``: one row per scored administration.

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per scored administration.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("scores") as root:
    ...     load_scores(root)[["client_id", "session", "instrument", "score"]]
      client_id  session instrument  score
    0         x        1          x    1.5
    """
    return load_output("scores", root)


def load_episodes(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``data/processed/episodes.parquet``: one row per (client, outcome) episode.

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        One row per (client, outcome) episode.

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> with example_project("episodes") as root:
    ...     load_episodes(root)[["client_id", "outcome", "n_scored", "first_score", "last_score"]]
      client_id outcome  n_scored  first_score  last_score
    0         x       x         1          1.5         1.5
    """
    return load_output("episodes", root)


def load_data_flow(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """``results/tables/data_flow.csv``: rows read, rejected and kept, and people per analysis
    (counts of people below the threshold already shown as "<10").

    Parameters
    ----------
    root : str or path-like, optional
        The project folder (default: found from the current folder by
        :func:`find_project_root`).

    Returns
    -------
    DataFrame
        The accounting of rows and people (stage, source, instrument, unit,
        reason, count).

    Raises
    ------
    UserError
        When the file has not been made yet (run ``make report`` first).

    Examples
    --------
    >>> flow = pd.DataFrame({"stage": ["ingest", "ingest"], "source": ["sessions.csv"] * 2,
    ...                      "instrument": ["", ""], "unit": ["rows", "rows"],
    ...                      "reason": ["read", "rejected"], "count": ["120", "<10"]})
    >>> with example_project(data_flow=flow) as root:
    ...     load_data_flow(root)[["reason", "count"]]
         reason count
    0      read   120
    1  rejected   <10
    """
    return load_output("data_flow", root)
