# The RI-CLPM check (analysis.models.panel.riclpm, riclpm_stage): one job per outcome fits the
# random-intercept cross-lagged panel model (lagged paths constrained, and free per wave as a
# sensitivity analysis), then the combined tables (its figure, one per outcome, is a row of the
# figure table: figures.smk). When the data cannot identify the model, the job writes why and
# the run goes on. Off: models.riclpm.run.


if STUDY.riclpm is not None:

    rule fit_riclpm:
        input:
            derived=path("derived"),
            code=code("fit_riclpm"),
        output:
            fit=RICLPM_FILE,
        wildcard_constraints:
            outcome="[a-z][a-z0-9_]*",
        log:
            "logs/fit_riclpm/{outcome}.log",
        benchmark:
            "benchmarks/rules/fit_riclpm/{outcome}.tsv"
        params:
            settings=STUDY.riclpm.params(),
        script:
            "../scripts/fit_riclpm.py"

    rule combine_riclpm:
        input:
            fits=[RICLPM_FILE.format(outcome=outcome) for outcome in OUTCOMES],
            # the totals counts of people are part of (complementary suppression)
            sessions=path("sessions"),
            episodes=path("episodes"),
            code=code("combine_riclpm"),
        output:
            **outputs_of("combine_riclpm"),
        log:
            "logs/combine_riclpm.log",
        params:
            min_cell=STUDY.privacy.min_cell_count,
        script:
            "../scripts/combine_riclpm.py"

