"""Snakemake script: score every questionnaire administration (see analysis.scoring)."""
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.scoring import score_administrations
from analysis.settings import ScoreSettings


def main() -> None:
    registry = ScoreSettings.from_params(snakemake.params.settings).registry()
    scores = score_administrations(read_table(snakemake.input.administrations), registry)
    write_table(scores, snakemake.output.scores)


run_job(main, snakemake)
