"""Snakemake script: one scoring variant of the multiverse's data (analysis.models.multiverse.data)."""
from analysis.io import read_table, write_table
from analysis.models.multiverse.data import prepare_data_variant
from analysis.runner import note_size, run_job
from analysis.settings import MultiverseDataSettings


def main() -> None:
    settings = MultiverseDataSettings.from_params(snakemake.params.settings)
    administrations = read_table(snakemake.input.administrations)
    note_size(rows=len(administrations))
    variant = prepare_data_variant(administrations, read_table(snakemake.input.sessions),
                                   settings)
    write_table(variant, snakemake.output.data)


run_job(main, snakemake)
