"""Snakemake script: ingest every declared export (see analysis.ingest)."""
from analysis.io import write_table
from analysis.pipeline import run_ingest
from analysis.runner import run_step, snakemake_log


def main() -> None:
    ingested = run_ingest(snakemake.config)
    for name in ("administrations", "sessions", "rejects", "flags", "flow"):
        write_table(ingested[name], snakemake.output[name])


run_step(main, snakemake_log(snakemake))
