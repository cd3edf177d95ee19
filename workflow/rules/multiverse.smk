# The multiverse (analysis.models.multiverse: specifications, fit): one data variant per prorating
# option (scored and derived by the pipeline's own functions), then every specification of the
# alliance -> symptoms effect (estimator a choice: dynamic panel, conventional multilevel,
# RI-CLPM; outcome and lag separate estimands), multiverse.specifications_per_job to a job (one
# rule per job, each specification its own file, so a cluster spreads them), the combined table
# with duplicates marked, its per-estimand summary and bootstrap joint test (off by default:
# multiverse.joint_test.run); the specification curves are a row of the figure table
# (figures.smk). Off: multiverse.run.


if STUDY.multiverse is not None:

    rule multiverse_data:
        input:
            administrations=path("administrations"),
            sessions=path("sessions"),
            code=code("multiverse_data"),
        output:
            data=MULTIVERSE_DATA_FILE,
        wildcard_constraints:
            prorating="lenient|strict",
        log:
            "logs/multiverse_data/{prorating}.log",
        benchmark:
            "benchmarks/rules/multiverse_data/{prorating}.tsv"
        params:
            settings=lambda wildcards: STUDY.multiverse_data_settings(wildcards.prorating).params(),
        script:
            "../scripts/multiverse_data.py"

    # One rule per job: its outputs are its specifications' files, known when the config is read.
    for _index, _chunk in enumerate(STUDY.multiverse_chunks):

        rule:
            name:
                f"fit_multiverse_{_index + 1:03d}"
            input:
                data=[MULTIVERSE_DATA_FILE.format(prorating=name) for name in data_variants(_chunk)],
                code=code("fit_multiverse"),
            output:
                [specification_file(spec) for spec in _chunk],
            log:
                f"logs/fit_multiverse/{_index + 1:03d}.log",
            benchmark:
                f"benchmarks/rules/fit_multiverse/{_index + 1:03d}.tsv"
            params:
                settings=STUDY.multiverse_fit_settings(_index).params(),
            script:
                "../scripts/fit_multiverse.py"

    rule combine_multiverse:
        input:
            specifications=[specification_file(spec) for spec in STUDY.multiverse_specifications],
            # the totals counts of people are part of (complementary suppression)
            sessions=path("sessions"),
            episodes=path("episodes"),
            code=code("combine_multiverse"),
        output:
            **outputs_of("combine_multiverse"),
        log:
            "logs/combine_multiverse.log",
        params:
            settings=STUDY.multiverse_summary_settings().params(),
        script:
            "../scripts/combine_multiverse.py"

