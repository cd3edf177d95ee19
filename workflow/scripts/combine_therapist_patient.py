"""Snakemake script: the therapist-patient table and figure points (engagement.therapist_patient_stage)."""
from analysis.engagement.therapist_patient_stage import combine_therapist_patient
from analysis.io import read_json, write_table
from analysis.runner import run_job


def main() -> None:
    tables = combine_therapist_patient([read_json(path) for path in snakemake.input.fits],
                                       min_cell=snakemake.params.min_cell)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
