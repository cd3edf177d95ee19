# Engagement beyond the alliance score (analysis.engagement): attendance and dropout, therapist
# and patient contributions to the alliance-outcome association, sudden gains. Each analysis is a
# switch (engagement.<analysis>.run) with one job per outcome, so a cluster spreads them, and a
# combine rule that writes the published tables (counts of people suppressed). A switched-off
# analysis has no rules, and the report says it was not run.


if STUDY.engagement.dropout is not None:

    rule dropout_episodes:
        input:
            sessions=path("sessions"),
            offered=path("offered_sessions"),
            derived=path("derived"),
            code=code("dropout_episodes"),
        output:
            **outputs_of("dropout_episodes"),
        log:
            "logs/dropout_episodes.log",
        benchmark:
            "benchmarks/rules/dropout_episodes.tsv"
        params:
            settings=STUDY.engagement.dropout.params(),
        script:
            "../scripts/dropout_episodes.py"

    rule fit_dropout:
        input:
            derived=path("derived"),
            episodes=path("dropout_episodes"),
            code=code("fit_dropout"),
        output:
            fit=DROPOUT_FIT_FILE,
        wildcard_constraints:
            outcome="[a-z][a-z0-9_]*",
        log:
            "logs/fit_dropout/{outcome}.log",
        benchmark:
            "benchmarks/rules/fit_dropout/{outcome}.tsv"
        params:
            settings=STUDY.engagement.dropout_hazard.params(),
        script:
            "../scripts/fit_dropout.py"

    rule combine_dropout:
        input:
            fits=[DROPOUT_FIT_FILE.format(outcome=outcome) for outcome in OUTCOMES],
            episodes=path("dropout_episodes"),
            code=code("combine_dropout"),
        output:
            **outputs_of("combine_dropout"),
        log:
            "logs/combine_dropout.log",
        benchmark:
            "benchmarks/rules/combine_dropout.tsv"
        params:
            min_cell=STUDY.privacy.min_cell_count,
            status_recorded=STUDY.engagement.dropout.status_recorded,
        script:
            "../scripts/combine_dropout.py"


if STUDY.engagement.therapist_patient:

    rule fit_therapist_patient:
        input:
            derived=path("derived"),
            code=code("fit_therapist_patient"),
        output:
            fit=THERAPIST_PATIENT_FILE,
        wildcard_constraints:
            outcome="[a-z][a-z0-9_]*",
        log:
            "logs/fit_therapist_patient/{outcome}.log",
        benchmark:
            "benchmarks/rules/fit_therapist_patient/{outcome}.tsv"
        script:
            "../scripts/fit_therapist_patient.py"

    rule combine_therapist_patient:
        input:
            fits=[THERAPIST_PATIENT_FILE.format(outcome=outcome) for outcome in OUTCOMES],
            code=code("combine_therapist_patient"),
        output:
            **outputs_of("combine_therapist_patient"),
        log:
            "logs/combine_therapist_patient.log",
        benchmark:
            "benchmarks/rules/combine_therapist_patient.tsv"
        params:
            min_cell=STUDY.privacy.min_cell_count,
        script:
            "../scripts/combine_therapist_patient.py"


if STUDY.engagement.sudden_gains is not None:

    rule fit_sudden_gains:
        input:
            derived=path("derived"),
            parameters=path("jacobson_truax_parameters"),
            code=code("fit_sudden_gains"),
        output:
            fit=SUDDEN_GAINS_FILE,
        wildcard_constraints:
            outcome="[a-z][a-z0-9_]*",
        log:
            "logs/fit_sudden_gains/{outcome}.log",
        benchmark:
            "benchmarks/rules/fit_sudden_gains/{outcome}.tsv"
        params:
            settings=STUDY.engagement.sudden_gains.params(),
        script:
            "../scripts/fit_sudden_gains.py"

    rule combine_sudden_gains:
        input:
            fits=[SUDDEN_GAINS_FILE.format(outcome=outcome) for outcome in OUTCOMES],
            code=code("combine_sudden_gains"),
        output:
            **outputs_of("combine_sudden_gains"),
        log:
            "logs/combine_sudden_gains.log",
        benchmark:
            "benchmarks/rules/combine_sudden_gains.tsv"
        params:
            min_cell=STUDY.privacy.min_cell_count,
            individual_rows=STUDY.privacy.show_individual_trajectories,
        script:
            "../scripts/combine_sudden_gains.py"
