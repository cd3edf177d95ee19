# Score: questionnaire totals, subscales, bands, caseness; then episode outcomes.


rule score:
    input:
        administrations=path("administrations"),
        quality=ancient(path("data_quality")),
        code=code("score"),
    output:
        **outputs_of("score"),
    log:
        "logs/score.log",
    benchmark:
        "benchmarks/rules/score.tsv"
    params:
        settings=score_settings(STUDY).params(),
    script:
        "../scripts/score.py"


rule episodes:
    input:
        scores=path("scores"),
        sessions=path("sessions"),
        administrations=path("administrations"),
        code=code("episodes"),
    output:
        episodes=path("episodes"),
        combined=path("episodes_combined"),
        parameters=path("jacobson_truax"),
        summary=published("episodes_summary"),
    log:
        "logs/episodes.log",
    benchmark:
        "benchmarks/rules/episodes.tsv"
    params:
        settings=STUDY.episodes.params(),
    script:
        "../scripts/episodes.py"
