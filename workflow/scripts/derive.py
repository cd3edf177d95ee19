"""Snakemake script: derive the analysis variables (see analysis.derive)."""
from analysis.derive import derive_analysis_frame
from analysis.io import read_table, write_table
from analysis.runner import run_job
from analysis.settings import DeriveSettings


def main() -> None:
    settings = DeriveSettings.from_params(snakemake.params.settings)
    derived = derive_analysis_frame(read_table(snakemake.input.scores),
                                    read_table(snakemake.input.sessions), settings)
    write_table(derived, snakemake.output.derived)


run_job(main, snakemake)
