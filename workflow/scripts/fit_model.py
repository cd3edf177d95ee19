"""Snakemake script: fit one planned (outcome, model, analysis) (see analysis.models.fitting)."""
from analysis.io import read_table, write_json
from analysis.models.fitting import fit_planned_model
from analysis.runner import run_step, snakemake_log


def main() -> None:
    # Only M4 reads episodes and only R2 administrations (see fit_inputs in common.smk).
    tables = {
        name: read_table(path) if (path := getattr(snakemake.input, name, None)) else None
        for name in ("episodes", "administrations")
    }
    wildcards = snakemake.wildcards
    fit = fit_planned_model(
        read_table(snakemake.input.derived), tables["episodes"], wildcards.outcome,
        wildcards.model, wildcards.analysis, snakemake.config,
        administrations=tables["administrations"],
    )
    write_json(fit, snakemake.output.fit)


run_step(main, snakemake_log(snakemake))
