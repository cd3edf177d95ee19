# Report: the standalone reviewer report, one self-contained HTML file.
from pathlib import Path

REPORT_TABLES = {
    "models": "results/tables/models.csv",
    "random_effects": "results/tables/random_effects.csv",
    "model_fit": "results/tables/model_fit.csv",
    "engine_agreement": "results/tables/engine_agreement.csv",
    "rm_corr": "results/tables/rm_corr.csv",
    "reliability": "results/tables/reliability.csv",
    "therapist_icc": "results/tables/therapist_icc.csv",
    "episodes_summary": "results/tables/episodes_summary.csv",
    "jacobson_truax": "results/tables/jacobson_truax.csv",
    "data_flow": "results/tables/data_flow.csv",
}
REPORT_HTML = "results/report/index.html"
# The figures' one-sentence captions, shared with the Snakemake report.
CAPTIONS = "workflow/report"
# The config files this run read (config/config.yaml and any --configfile), once each.
CONFIG_FILES = list(dict.fromkeys(str(path) for path in workflow.configfiles))
# The reviewer report, for `rule all`.
report_targets = lambda: [REPORT_HTML]


rule reviewer_report:
    input:
        **REPORT_TABLES,
        sessions="data/processed/sessions.parquet",
        scores="data/processed/scores.parquet",
        figures=[path for path in figure_targets() if path.endswith(".png")],
        captions=sorted(str(path) for path in Path(CAPTIONS).glob("figure_*.rst")),
        config_files=CONFIG_FILES,
        raw=raw_inputs(),
        template=f"{PKG}templates/report.html.j2",
        code=package_modules("report", "figures", "instruments", "privacy", "io")
        + [f"{PKG}models/specs.py"],
    output:
        report(
            REPORT_HTML,
            caption="../report/report_index.rst",
            category="report",
            labels={"report": "reviewer report (standalone HTML)"},
        ),
    log:
        "logs/reviewer_report.log",
    params:
        config=config,
        tables=list(REPORT_TABLES),
        caption_dir=CAPTIONS,
    script:
        "../scripts/build_report.py"
