# Report: the standalone reviewer report, one self-contained HTML file.

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


def report_targets():
    return ["results/report/index.html"]


def config_files():
    """The config files this run read (config/config.yaml and any --configfile), once each."""
    return list(dict.fromkeys(str(path) for path in workflow.configfiles))


rule reviewer_report:
    input:
        **REPORT_TABLES,
        sessions="data/processed/sessions.parquet",
        scores="data/processed/scores.parquet",
        figures=[path for path in figure_targets() if path.endswith(".png")],
        captions=[f"workflow/report/figure_{name}.rst" for name in (
            "forest_alliance", "data_flow", "missingness", "alliance_distribution",
            "trajectories", "alliance_within_next", "jacobson_truax",
            "therapist_caterpillar", "residuals")],
        config_files=config_files(),
        raw=raw_inputs(),
        template="src/analysis/templates/report.html.j2",
        code=package_modules("report", "figures", "instruments", "privacy", "io"),
    output:
        report(
            "results/report/index.html",
            caption="../report/report_index.rst",
            category="report",
            labels={"report": "reviewer report (standalone HTML)"},
        ),
    log:
        "logs/reviewer_report.log",
    params:
        config=config,
        tables=list(REPORT_TABLES),
        caption_dir="workflow/report",
    script:
        "../scripts/build_report.py"
