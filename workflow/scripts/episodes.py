"""Snakemake script: episode outcomes, reliable change and recovery (see analysis.episodes)."""
from analysis.episodes import run_episodes
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.settings import EpisodeSettings


def main() -> None:
    results = run_episodes(
        read_table(snakemake.input.scores),
        read_table(snakemake.input.sessions),
        read_table(snakemake.input.administrations),
        EpisodeSettings.from_params(snakemake.params.settings),
    )
    for name in ("episodes", "combined", "parameters", "summary"):
        write_table(results[name], snakemake.output[name])


run_job(main, snakemake)
