"""Snakemake script: the batches as one table, and the summary (see analysis.simulate.recovery)."""
from analysis.io import atomic_path, write_table
from analysis.simulate.recovery import combine_batches, format_summary, summarise_recovery
from analysis.runner import run_job


def main() -> None:
    replicates = combine_batches(snakemake.input.batches)
    summary = summarise_recovery(replicates)
    write_table(replicates, snakemake.output.replicates)
    write_table(summary, snakemake.output.summary)
    with atomic_path(snakemake.output.text) as tmp:
        tmp.write_text(format_summary(summary) + "\n", encoding="utf-8")


run_job(main, snakemake)
