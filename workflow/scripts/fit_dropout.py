"""Snakemake script: one outcome's hazard model of dropout (analysis.engagement.dropout_stage)."""
from analysis.engagement.dropout_stage import fit_dropout_outcome
from analysis.io import read_table, write_json
from analysis.runner import note_size, run_job
from analysis.settings import DropoutHazardSettings


def main() -> None:
    settings = DropoutHazardSettings.from_params(snakemake.params.settings)
    derived = read_table(snakemake.input.derived)
    note_size(rows=len(derived), clients=int(derived["client_id"].nunique()))
    result = fit_dropout_outcome(derived, read_table(snakemake.input.episodes),
                                 snakemake.wildcards.outcome, settings)
    write_json(result, snakemake.output.fit)


run_job(main, snakemake)
