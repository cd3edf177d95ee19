"""Snakemake script: the standalone reviewer report (see analysis.report)."""
from pathlib import Path

from analysis import report
from analysis.instruments import build_registry
from analysis.runner import run_step, snakemake_log


def main() -> None:
    inputs, params = snakemake.input, snakemake.params
    tables = [getattr(inputs, name) for name in params.tables]
    provenance = report.collect_provenance(Path.cwd(), params.config, inputs.config_files,
                                           inputs.raw, tables)
    html = report.render_report(
        report.read_report_tables(inputs), params.config,
        build_registry(params.config["instruments"]),
        report.figure_entries(inputs.figures, params.caption_dir), provenance)
    report.write_report(html, snakemake.output[0])


run_step(main, snakemake_log(snakemake))
