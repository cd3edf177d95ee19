"""Snakemake script: dropout episodes and Kaplan-Meier curves (analysis.engagement.dropout_stage)."""
from analysis.engagement.dropout_stage import dropout_stage
from analysis.io import read_table, write_table
from analysis.runner import note_size, run_job
from analysis.settings import DropoutSettings


def main() -> None:
    settings = DropoutSettings.from_params(snakemake.params.settings)
    sessions = read_table(snakemake.input.sessions)
    note_size(rows=len(sessions), clients=int(sessions["client_id"].nunique()))
    tables = dropout_stage(sessions, read_table(snakemake.input.offered),
                           read_table(snakemake.input.derived), settings)
    for name, table in tables.items():
        write_table(table, getattr(snakemake.output, name))


run_job(main, snakemake)
