"""Snakemake script: score every questionnaire administration (see analysis.scoring)."""
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.scoring import merge_flags, prorating_flags, score_administrations
from analysis.settings import ScoreSettings


def main() -> None:
    registry = ScoreSettings.from_params(snakemake.params.settings).registry()
    administrations = read_table(snakemake.input.administrations)
    scores = score_administrations(administrations, registry)
    write_table(scores, snakemake.output.scores)
    flags = merge_flags(read_table(snakemake.input.ingest_flags),
                        prorating_flags(administrations, scores))
    write_table(flags, snakemake.output.flags)


run_job(main, snakemake)
