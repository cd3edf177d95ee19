"""Snakemake script: the RI-CLPM of one outcome (see analysis.models.panel.riclpm_stage)."""
from analysis.io import read_table, write_json
from analysis.models.panel.riclpm_stage import fit_riclpm_outcome
from analysis.runner import note_size, run_job
from analysis.settings import RiclpmSettings


def main() -> None:
    settings = RiclpmSettings.from_params(snakemake.params.settings)
    derived = read_table(snakemake.input.derived)
    note_size(rows=len(derived), clients=int(derived["client_id"].nunique()))
    result = fit_riclpm_outcome(derived, snakemake.wildcards.outcome, settings)
    write_json(result, snakemake.output.fit)


run_job(main, snakemake)
