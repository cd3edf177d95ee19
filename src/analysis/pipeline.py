"""The stages of the pipeline as functions of the config, shared by the Snakemake scripts and tests.

Each function takes the checked config (a dict) and frames, and returns frames; file reading and
writing stay in the scripts. :func:`derived_from_simulation` chains the generator, ingest,
scoring and derivation in memory, for parameter-recovery studies.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from analysis import derive, ingest, privacy
from analysis.config import check_config, load_config
from analysis.io import sha256_file
from analysis.instruments import build_registry

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_CHECKSUMS = PROJECT_ROOT / "data" / "raw" / "SHA256SUMS"


def input_paths(config: dict, root: str | Path = ".") -> dict[str, Path]:
    """The declared input files, by table name, resolved against the project folder."""
    return {name: Path(root) / table["path"] for name, table in config["inputs"].items()}


def is_demo_data(paths: list[Path], checksums_file: Path = DEMO_CHECKSUMS) -> bool:
    """True when every input file is one of the shipped demo files (by SHA-256)."""
    if not checksums_file.exists():
        return False
    known = {line.split()[0] for line in checksums_file.read_text().splitlines() if line.strip()}
    return all(path.exists() and sha256_file(path) in known for path in paths)


def run_ingest(config: dict, root: str | Path = ".") -> dict[str, pd.DataFrame]:
    """Read, validate, link and pseudonymise every declared input table."""
    paths = input_paths(config, root)
    registry = build_registry(config.get("instruments"))
    tables = {name: ingest.read_export(path, config["inputs"][name], name) for name, path in paths.items()}
    key = privacy.resolve_key(config["privacy"], is_demo_data(list(paths.values())))
    return ingest.ingest_all(tables, config["inputs"], config["linking"], registry, key)


def run_scoring(administrations: pd.DataFrame, config: dict) -> pd.DataFrame:
    from analysis.scoring import score_administrations

    return score_administrations(administrations, build_registry(config.get("instruments")))


def run_derive(scores: pd.DataFrame, sessions: pd.DataFrame, config: dict) -> pd.DataFrame:
    analysis = config["analysis"]
    return derive.derive_analysis_frame(
        scores,
        sessions,
        alliance=analysis["alliance"],
        outcomes=list(analysis["outcomes"]),
        max_lag_gap=analysis["max_lag_gap"],
        early_sessions=analysis["early_sessions"],
        early_min_observed=analysis["early_min_observed"],
    )


def demo_config(root: str | Path = PROJECT_ROOT) -> dict:
    """The shipped configuration (config/config.yaml), checked."""
    return load_config(Path(root) / "config" / "config.yaml")


def derived_from_simulation(
    seed: int, n_clients: int, n_therapists: int, max_sessions: int = 16, **effects
) -> tuple[pd.DataFrame, dict]:
    """Simulate raw exports and run ingest, scoring and derivation on them, in a temporary folder.

    Returns the ``derived`` frame and the generator's truth. The demo config's input declaration
    describes the generator's exports, so it is reused with the files swapped in.
    """
    from analysis.simulate import simulate_study, write_study

    study = simulate_study(n_clients, n_therapists, seed, max_sessions=max_sessions, **effects)
    config = check_config(demo_config())
    with tempfile.TemporaryDirectory() as folder:
        write_study(study, folder)
        for table in config["inputs"].values():
            table["path"] = str(Path(folder) / Path(table["path"]).name)
        # A simulation has no real people: a fixed key keeps runs reproducible.
        config["privacy"] = {**config["privacy"], "key_env": "ALLIANCE_SIMULATION_KEY_UNUSED"}
        paths = input_paths(config)
        registry = build_registry(config.get("instruments"))
        tables = {n: ingest.read_export(p, config["inputs"][n], n) for n, p in paths.items()}
        ingested = ingest.ingest_all(tables, config["inputs"], config["linking"], registry, privacy.DEMO_KEY)
    scores = run_scoring(ingested["administrations"], config)
    return run_derive(scores, ingested["sessions"], config), study.truth


def run_episodes(
    scores: pd.DataFrame, sessions: pd.DataFrame, administrations: pd.DataFrame, config: dict
) -> dict[str, pd.DataFrame]:
    """Episode outcomes per client and outcome, the combined flags, J-T parameters and summary."""
    from analysis import episodes as episode_outcomes

    registry = build_registry(config.get("instruments"))
    outcomes = list(config["analysis"]["outcomes"])
    episode_config = config.get("episodes") or {}
    reliability = episode_outcomes.estimate_sample_reliability(administrations, registry, outcomes)
    episodes = episode_outcomes.compute_episodes(scores, sessions, registry, outcomes, episode_config, reliability)
    combined = episode_outcomes.combine_episodes(episodes, outcomes, episode_config)
    return {
        "episodes": episodes,
        "combined": combined,
        "parameters": episode_outcomes.jacobson_truax_parameters(
            episodes, registry, episode_config, reliability, min_cell=config["privacy"]["min_cell_count"]
        ),
        "summary": episode_outcomes.summarise_episodes(episodes, combined, config["privacy"]["min_cell_count"]),
    }
