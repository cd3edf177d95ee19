# Derive: within/between-client alliance and symptoms, lags, detrended and early alliance;
# then the data-flow accounting of every row and person from input to analysis.


rule derive:
    input:
        scores=path("scores"),
        sessions=path("sessions"),
        code=code("derive"),
    output:
        **outputs_of("derive"),
    log:
        "logs/derive.log",
    benchmark:
        "benchmarks/rules/derive.tsv"
    params:
        settings=STUDY.derive.params(),
    script:
        "../scripts/derive.py"


rule data_flow:
    input:
        flow=path("ingest_flow"),
        sessions=path("sessions"),
        scores=path("scores"),
        derived=path("derived"),
        episodes=path("episodes"),
        fit_counts=path("fit_counts"),
        code=code("data_flow"),
    output:
        full=path("data_flow_full"),
        published=published("data_flow"),
    log:
        "logs/data_flow.log",
    params:
        min_cell=STUDY.privacy.min_cell_count,
    script:
        "../scripts/data_flow.py"
