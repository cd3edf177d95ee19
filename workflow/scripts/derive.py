"""Snakemake script: derive the analysis variables (see analysis.derive)."""
from analysis.io import read_table, write_table
from analysis.pipeline import run_derive
from analysis.runner import run_step, snakemake_log


def main() -> None:
    scores = read_table(snakemake.input.scores)
    sessions = read_table(snakemake.input.sessions)
    write_table(run_derive(scores, sessions, snakemake.config), snakemake.output.derived)


run_step(main, snakemake_log(snakemake))
