"""Snakemake script: fit the planned fits of one job, each to its own file (analysis.models.mixed.fitting)."""
from analysis.instruments import registry_from_params
from analysis.io import read_table, write_json
from analysis.models.mixed.fitting import fit_planned_model
from analysis.models.mixed.specs import ResolvedFit
from analysis.quality import upstream_text
from analysis.runner import note_size, run_job


def main() -> None:
    derived = read_table(snakemake.input.derived)
    note_size(rows=len(derived), clients=int(derived["client_id"].nunique()))
    # Only M4 reads episodes and only R2 administrations (see fit_job_inputs in models.smk).
    tables = {name: read_table(path) if (path := getattr(snakemake.input, name, None)) else None
              for name in ("episodes", "administrations")}
    for settings, output in zip(snakemake.params.settings, snakemake.output.fits):
        fit = ResolvedFit.from_dict(settings["fit"])
        result = fit_planned_model(
            derived, fit, registry_from_params(settings["instruments"]),
            episodes=tables["episodes"], administrations=tables["administrations"],
            upstream=lambda fit=fit: upstream_text(
                read_table(snakemake.input.quality), read_table(snakemake.input.scores),
                list(dict.fromkeys([fit.outcome, fit.alliance]))),
        )
        write_json(result, output)


run_job(main, snakemake)
