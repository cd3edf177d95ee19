# Ingest: read every declared export, keep allowlisted columns, validate, link, pseudonymise.


rule ingest:
    input:
        raw=raw_inputs(),
        code=package_modules("ingest", "privacy", "pipeline", "instruments"),
    output:
        administrations="data/processed/administrations.parquet",
        sessions="data/processed/sessions.parquet",
        rejects="data/processed/rejects.csv",
        flags="data/processed/flags.csv",
        flow="data/processed/ingest_flow.csv",
    log:
        "logs/ingest.log",
    benchmark:
        "benchmarks/rules/ingest.tsv"
    script:
        "../scripts/ingest.py"
