"""Snakemake script: episode outcomes, reliable change and recovery (see analysis.episodes)."""
from analysis.episodes import run_episodes
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.settings import EpisodeSettings

# The catalogue's names of the episodes stage's files, by the keys run_episodes returns.
OUTPUTS = {"combined": "episodes_combined", "parameters": "jacobson_truax_parameters"}


def main() -> None:
    results = run_episodes(
        read_table(snakemake.input.scores),
        read_table(snakemake.input.sessions),
        read_table(snakemake.input.administrations),
        EpisodeSettings.from_params(snakemake.params.settings),
    )
    for name, table in results.items():
        write_table(table, snakemake.output[OUTPUTS.get(name, name)])


run_job(main, snakemake)
