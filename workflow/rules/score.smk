# Score: questionnaire totals, subscales, bands, caseness; then episode outcomes.


rule score:
    input:
        administrations=path("administrations"),
        ingest_flags=path("ingest_flags"),
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
        **outputs_of("episodes"),
    log:
        "logs/episodes.log",
    benchmark:
        "benchmarks/rules/episodes.tsv"
    params:
        settings=STUDY.episodes.params(),
    script:
        "../scripts/episodes.py"


# Publishing is its own step: changing the small-cell threshold reruns only this.
rule publish_episodes:
    input:
        episodes=path("episodes"),
        combined=path("episodes_combined"),
        parameters=path("jacobson_truax_parameters"),
        code=code("publish_episodes"),
    output:
        **outputs_of("publish_episodes"),
    log:
        "logs/publish_episodes.log",
    params:
        min_cell=STUDY.privacy.min_cell_count,
    script:
        "../scripts/publish_episodes.py"
