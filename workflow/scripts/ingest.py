"""Snakemake script: ingest every declared export (see analysis.ingest)."""
from analysis.ingest import run_ingest
from analysis.io import write_table
from analysis.runner import run_job
from analysis.settings import IngestSettings

# The catalogue's names of ingest's files, by the keys run_ingest returns.
OUTPUTS = {"flow": "ingest_flow", "flags": "ingest_flags"}


def main() -> None:
    ingested = run_ingest(IngestSettings.from_params(snakemake.params.settings))
    for name, table in ingested.items():
        write_table(table, snakemake.output[OUTPUTS.get(name, name)])


run_job(main, snakemake)
