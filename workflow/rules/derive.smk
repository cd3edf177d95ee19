# Derive: within/between-client alliance and symptoms, lags, detrended and early alliance;
# then the data-flow accounting of every row and person from input to analysis.


rule derive:
    input:
        scores="data/processed/scores.parquet",
        sessions="data/processed/sessions.parquet",
        code=package_modules("derive", "pipeline"),
    output:
        derived="data/processed/derived.parquet",
    log:
        "logs/derive.log",
    benchmark:
        "benchmarks/rules/derive.tsv"
    script:
        "../scripts/derive.py"


rule data_flow:
    input:
        flow="data/processed/ingest_flow.csv",
        sessions="data/processed/sessions.parquet",
        derived="data/processed/derived.parquet",
        episodes="data/processed/episodes.parquet",
        models="results/tables/models.csv",
        code=package_modules("dataflow"),
    output:
        full="data/processed/data_flow.csv",
        published=report(
            "results/tables/data_flow.csv",
            caption="../report/data_flow.rst",
            category="data",
            labels={"table": "data flow"},
        ),
    log:
        "logs/data_flow.log",
    params:
        min_cell=config["privacy"]["min_cell_count"],
    script:
        "../scripts/data_flow.py"
