"""Snakemake script: the manuscript outputs (see analysis.manuscript)."""
from analysis.manuscript.stage import write_manuscript
from analysis.runner import run_job


def main() -> None:
    write_manuscript(snakemake.input, snakemake.params.settings, snakemake.output)


run_job(main, snakemake)
