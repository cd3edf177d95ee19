"""Snakemake script: the multiverse table, its summary and joint test (multiverse.summary)."""
from analysis.io import read_json, read_table, write_table
from analysis.models.multiverse.summary import (
    combine_multiverse,
    joint_test,
    publish_multiverse,
    summarise_multiverse,
)
from analysis.privacy import StudyTotals
from analysis.runner import run_job
from analysis.settings import MultiverseSummarySettings


def main() -> None:
    settings = MultiverseSummarySettings.from_params(snakemake.params.settings)
    results = [read_json(path) for path in snakemake.input.specifications]
    table = combine_multiverse(results, settings)
    distinct = set(table.loc[table["distinct"], "id"]) if not table.empty else set()
    summary = summarise_multiverse(table, joint_test(results, settings, distinct), settings)
    totals = StudyTotals.from_tables(read_table(snakemake.input.sessions),
                                     read_table(snakemake.input.episodes))
    write_table(publish_multiverse(table, settings.min_cell_count, totals),
                snakemake.output.multiverse)
    write_table(summary, snakemake.output.multiverse_summary)


run_job(main, snakemake)
