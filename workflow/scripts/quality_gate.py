"""Snakemake script: the data-quality summary after ingest, and its gate (see analysis.quality)."""
import sys

from analysis import quality
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.settings import QualitySettings


def main() -> None:
    settings = QualitySettings.from_params(snakemake.params.settings)
    summary = quality.summarise_quality(read_table(snakemake.input.flow),
                                        read_table(snakemake.input.rejects), settings)
    print(quality.console_summary(summary), file=sys.stderr)
    write_table(summary, snakemake.output.data_quality)
    quality.check_quality(summary, settings)


run_job(main, snakemake)
