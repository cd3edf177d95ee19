"""Snakemake script: score every questionnaire administration (see analysis.scoring)."""
from analysis.io import read_table, write_table
from analysis.pipeline import run_scoring
from analysis.runner import run_step, snakemake_log


def main() -> None:
    administrations = read_table(snakemake.input.administrations)
    write_table(run_scoring(administrations, snakemake.config), snakemake.output.scores)


run_step(main, snakemake_log(snakemake))
