# Report: the standalone reviewer report, one self-contained HTML file.
from pathlib import Path

REPORT_TABLES = [
    "models",
    "random_effects",
    "model_fit",
    "engine_agreement",
    "rm_corr",
    "reliability",
    "therapist_icc",
    "episodes_summary",
    "jacobson_truax",
    "data_flow",
    "data_quality",
]
# The figures' one-sentence captions, shared with the Snakemake report.
CAPTIONS = "workflow/report"


def report_targets():
    """The reviewer report, for `rule all`."""
    return [path("report")]


rule reviewer_report:
    input:
        **{name: path(name) for name in REPORT_TABLES},
        sessions=path("sessions"),
        scores=path("scores"),
        figures=[target for target in figure_targets() if target.endswith(".png")],
        captions=sorted(str(caption) for caption in Path(CAPTIONS).glob("figure_*.rst")),
        raw=raw_inputs(),
        template=sorted(str(template) for template in Path(PKG_TEMPLATES).glob("report/*.j2")),
        code=code("build_report"),
    output:
        **outputs_of("reviewer_report"),
    log:
        "logs/reviewer_report.log",
    params:
        settings=STUDY.report.params(),
        config_sha256=STUDY.config_sha256,
        tables=REPORT_TABLES,
        caption_dir=CAPTIONS,
        png_dpi=STUDY.figures.png_dpi,
    script:
        "../scripts/build_report.py"
