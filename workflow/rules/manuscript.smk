# Manuscript: APA tables (Word, LaTeX), the participant flow diagram, the methods section as a
# Word document (rule manuscript) and every figure of the figure table at its journal column
# width (one rule per figure family), all from the result tables of the run (analysis.manuscript).
# Written when manuscript.run is true (the default: a few seconds).
from analysis.catalogue import MANUSCRIPT_FIGURE_FILE
from analysis.figures.table import figure_names

MANUSCRIPT_FIGURE_FOLDER = str(Path(MANUSCRIPT_FIGURE_FILE).parent)


def manuscript_targets():
    """The manuscript outputs (for `rule all`); none when switched off."""
    if not STUDY.manuscript:
        return []
    figures = figure_names(OUTCOMES, PLANNED_FITS, STUDY.switched_on)
    return [*[entry.path for entry in written_by("manuscript").values()],
            *[MANUSCRIPT_FIGURE_FILE.format(figure=name) for name in figures]]


rule manuscript:
    input:
        **{name: path(name) for name in report_tables()},
        sessions=path("sessions"),
        scores=path("scores"),
        template=[local(str(template))
                  for template in sorted(Path(PKG_TEMPLATES).glob("report/*.j2"))],
        validation=VALIDATION_TABLES,
        code=code("manuscript"),
    output:
        **outputs_of("manuscript"),
    log:
        "logs/manuscript.log",
    params:
        settings=STUDY.report.params(),
    script:
        "../scripts/manuscript.py"


for _family in FIGURE_FAMILIES:

    rule:
        name:
            f"manuscript_{_family.rule}"
        input:
            **_family.input_paths(),
            code=sorted({*figure_code(_family), *code("manuscript_figure")}),
        output:
            pdf=_family.file("pdf", folder=MANUSCRIPT_FIGURE_FOLDER),
        wildcard_constraints:
            **figure_wildcards(_family),
        log:
            _family.log.replace("logs/", "logs/manuscript_", 1),
        params:
            family=_family.name,
            settings=STUDY.figures.params(),
        script:
            "../scripts/manuscript_figure.py"
