"""Snakemake script: one batch of parameter-recovery datasets (see analysis.simulate.recovery)."""
import logging

from analysis.io import write_table
from analysis.simulate.recovery import BatchSettings, run_batch
from analysis.runner import note_size, run_job


def main() -> None:
    # Fallback steps and failed fits are counted in the summary; per-fit warnings would drown it.
    logging.getLogger("analysis.models").setLevel(logging.ERROR)
    batch = BatchSettings.from_params(snakemake.params.settings)
    note_size(datasets=batch.count, clients=batch.clients)
    write_table(run_batch(batch), snakemake.output.replicates)


run_job(main, snakemake)
