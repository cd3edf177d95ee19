# Ingest: read every declared export, keep allowlisted columns, validate, link, pseudonymise;
# then the data-quality summary and its gate.


rule ingest:
    input:
        raw=raw_inputs(),
        code=code("ingest"),
    output:
        **outputs_of("ingest"),
    log:
        "logs/ingest.log",
    benchmark:
        "benchmarks/rules/ingest.tsv"
    params:
        settings=ingest_settings(STUDY).params(),
    script:
        "../scripts/ingest.py"


# Prints what ingest kept and rejected, and stops the run when too much was rejected. Later
# stages read its table as ancient: changing only the threshold reruns this check, not them.
rule quality_gate:
    input:
        flow=path("ingest_flow"),
        rejects=path("rejects"),
        code=code("quality_gate"),
    output:
        **outputs_of("quality_gate"),
    log:
        "logs/quality_gate.log",
    params:
        settings=STUDY.quality.params(),
    script:
        "../scripts/quality_gate.py"
