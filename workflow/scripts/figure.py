"""Snakemake script: one figure of the figure table, by family (see analysis.figures.jobs)."""
from analysis.figures.jobs import run_figure_job
from analysis.runner import run_job


def main() -> None:
    run_figure_job(snakemake.params.family, snakemake.input, snakemake.params.settings,
                   getattr(snakemake.wildcards, "outcome", None), snakemake.output.svg,
                   snakemake.output.png)


run_job(main, snakemake)
