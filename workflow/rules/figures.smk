# Figures: one rule per row of the figure table (analysis.figures.table), generated here; a row
# of an optional analysis (the RI-CLPM check, the multiverse, an engagement analysis) only when
# that analysis is switched on. Each rule reads the stage files its row names (and, for a figure
# of a model, that model's primary fit file, where the fit job stored the diagnostics), runs
# workflow/scripts/figure.py and writes an SVG (shown in the Snakemake report) and a 300-dpi PNG
# (embedded in the reviewer report).
for _family in FIGURE_FAMILIES:

    rule:
        name:
            _family.rule
        input:
            **_family.input_paths(),
            code=figure_code(_family),
        output:
            **figure_output(_family),
        wildcard_constraints:
            **figure_wildcards(_family),
        log:
            _family.log,
        params:
            family=_family.name,
            settings=STUDY.figures.params(),
        script:
            "../scripts/figure.py"
