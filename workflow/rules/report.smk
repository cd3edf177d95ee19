# Report: the standalone reviewer report, one self-contained HTML file.
rule reviewer_report:
    input:
        **{name: path(name) for name in report_tables()},
        sessions=path("sessions"),
        scores=path("scores"),
        figures=[target for target in figure_targets() if target.endswith(".png")],
        captions=[local(str(caption)) for caption in sorted(Path(CAPTIONS).glob("figure_*.rst"))],
        raw=raw_inputs(),
        template=[local(str(template))
                  for template in sorted(Path(PKG_TEMPLATES).glob("report/*.j2"))],
        validation=VALIDATION_TABLES,
        code=code("build_report"),
    output:
        **outputs_of("reviewer_report"),
    log:
        "logs/reviewer_report.log",
    params:
        settings=STUDY.report.params(),
        config_sha256=STUDY.config_sha256,
        tables=report_tables(),
        png_dpi=STUDY.figures.png_dpi,
    script:
        "../scripts/build_report.py"
