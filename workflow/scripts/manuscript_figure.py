"""Snakemake script: one figure of the figure table at a journal column width."""
from analysis.manuscript.figures import write_journal_figure
from analysis.runner import run_job


def main() -> None:
    write_journal_figure(snakemake.params.family, snakemake.input, snakemake.params.settings,
                         getattr(snakemake.wildcards, "outcome", None), snakemake.output.pdf)


run_job(main, snakemake)
