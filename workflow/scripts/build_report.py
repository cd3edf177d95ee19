"""Snakemake script: the standalone reviewer report (see analysis.report)."""
from pathlib import Path

from analysis.provenance import collect_provenance
from analysis.report.inputs import figure_entries, read_report_tables
from analysis.report.render import render_report, write_report
from analysis.runner import run_job
from analysis.settings import ReportSettings


def main() -> None:
    inputs, params = snakemake.input, snakemake.params
    settings = ReportSettings.from_params(params.settings)
    provenance = collect_provenance(Path.cwd(), params.config_sha256, settings.seed, inputs.raw,
                                    [getattr(inputs, name) for name in params.tables])
    # the figures' captions sit beside each other (workflow/report/figure_*.rst)
    figures = figure_entries(inputs.figures, Path(inputs.captions[0]).parent, dpi=params.png_dpi)
    html = render_report(read_report_tables(inputs), settings, figures, provenance)
    write_report(html, snakemake.output[0])


run_job(main, snakemake)
