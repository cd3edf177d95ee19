"""Snakemake script: one outcome's therapist-patient decomposition (engagement.therapist_patient_stage)."""
from analysis.engagement.therapist_patient_stage import fit_therapist_patient_outcome
from analysis.io import read_table, write_json
from analysis.runner import note_size, run_job


def main() -> None:
    derived = read_table(snakemake.input.derived)
    note_size(rows=len(derived), clients=int(derived["client_id"].nunique()))
    write_json(fit_therapist_patient_outcome(derived, snakemake.wildcards.outcome),
               snakemake.output.fit)


run_job(main, snakemake)
