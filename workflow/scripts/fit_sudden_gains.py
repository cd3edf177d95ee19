"""Snakemake script: one outcome's sudden gains and the alliance around them (engagement.sudden_gains_stage)."""
from analysis.engagement.sudden_gains_stage import sudden_gains_outcome
from analysis.io import read_table, write_json
from analysis.runner import note_size, run_job
from analysis.settings import SuddenGainSettings


def main() -> None:
    settings = SuddenGainSettings.from_params(snakemake.params.settings)
    derived = read_table(snakemake.input.derived)
    note_size(rows=len(derived), clients=int(derived["client_id"].nunique()))
    result = sudden_gains_outcome(derived, read_table(snakemake.input.parameters),
                                  snakemake.wildcards.outcome, settings)
    write_json(result, snakemake.output.fit)


run_job(main, snakemake)
