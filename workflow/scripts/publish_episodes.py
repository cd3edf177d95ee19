"""Snakemake script: the published episode tables, small counts hidden (see analysis.episodes)."""
from analysis.episodes import publish_episodes
from analysis.io import read_table, write_table
from analysis.runner import run_job

# The catalogue's names of the published files, by the keys publish_episodes returns.
OUTPUTS = {"summary": "episodes_summary"}


def main() -> None:
    published = publish_episodes(read_table(snakemake.input.episodes),
                                 read_table(snakemake.input.combined),
                                 read_table(snakemake.input.parameters),
                                 min_cell=snakemake.params.min_cell)
    for name, table in published.items():
        write_table(table, snakemake.output[OUTPUTS.get(name, name)])


run_job(main, snakemake)
