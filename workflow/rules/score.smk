# Score: questionnaire totals, subscales, bands, caseness; then episode outcomes.


rule score:
    input:
        administrations="data/processed/administrations.parquet",
        code=package_modules("scoring", "instruments"),
    output:
        scores="data/processed/scores.parquet",
    log:
        "logs/score.log",
    script:
        "../scripts/score.py"


rule episodes:
    input:
        scores="data/processed/scores.parquet",
        sessions="data/processed/sessions.parquet",
        administrations="data/processed/administrations.parquet",
        code=package_modules("episodes", "instruments", "scoring", "privacy", "pipeline"),
    output:
        episodes="data/processed/episodes.parquet",
        combined="data/processed/episodes_combined.parquet",
        parameters="results/tables/jacobson_truax.csv",
        summary=report(
            "results/tables/episodes_summary.csv",
            caption="../report/episodes_summary.rst",
            category="instruments",
            labels={"table": "episode outcomes"},
        ),
    log:
        "logs/episodes.log",
    script:
        "../scripts/episodes.py"
