"""Snakemake script: fit a job's multiverse specifications, one file each (multiverse.fit)."""
from analysis.io import read_table, write_json
from analysis.models.multiverse.specifications import Specification, data_variants
from analysis.models.multiverse.fit import fit_specifications
from analysis.runner import run_job
from analysis.settings import MultiverseFitSettings


def main() -> None:
    settings = MultiverseFitSettings.from_params(snakemake.params.settings)
    # input.data lists the job's data variants in first-use order (multiverse.smk)
    names = data_variants([Specification.from_dict(spec) for spec in settings.specifications])
    variants = {name: read_table(path) for name, path in zip(names, snakemake.input.data)}
    results = fit_specifications(variants, settings)
    for result, path in zip(results, snakemake.output, strict=True):
        write_json(result, path)


run_job(main, snakemake)
