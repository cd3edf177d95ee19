"""Snakemake script: episode outcomes, reliable change and recovery (see analysis.episodes)."""
from analysis.io import read_table, write_table
from analysis.pipeline import run_episodes
from analysis.runner import run_step, snakemake_log


def main() -> None:
    results = run_episodes(
        read_table(snakemake.input.scores),
        read_table(snakemake.input.sessions),
        read_table(snakemake.input.administrations),
        snakemake.config,
    )
    for name in ("episodes", "combined", "parameters", "summary"):
        write_table(results[name], snakemake.output[name])


run_step(main, snakemake_log(snakemake))
