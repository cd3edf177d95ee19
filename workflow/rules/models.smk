# Models: the planned fits (one job per outcome and model, or per fit), an engine cross-check per
# primary-analysis mixed model, and the combined tables (see src/analysis/models/mixed/).
# One job per (outcome, model) fits all its analyses (models.fit_jobs: per_model), paying the
# start-up of Python and its libraries once instead of once per fit; per_fit gives every fit its
# own job, for a cluster. Either way each fit writes its own file, and a job's params are the
# settings of its fits, so an edit reruns the jobs whose fits it changes.
for _job, _fits in STUDY.fit_jobs().items():

    rule:
        name:
            f"fit_model_{_job}"
        input:
            **fit_job_inputs(_fits),
        output:
            fits=[FIT_FILE.format(outcome=f.outcome, model=f.model, analysis=f.analysis)
                  for f in _fits],
        log:
            f"logs/fit_model/{_job}.log",
        benchmark:
            f"benchmarks/rules/fit_model/{_job}.tsv"
        params:
            settings=[STUDY.fit_settings(f.outcome, f.model, f.analysis) for f in _fits],
        script:
            "../scripts/fit_model.py"


# The cross-checks of one outcome share a job (statsmodels alone takes a second to import).
for _outcome, _models in STUDY.cross_check_jobs().items():

    rule:
        name:
            f"engine_cross_check_{_outcome}"
        input:
            fits=[FIT_FILE.format(outcome=_outcome, model=m, analysis="primary") for m in _models],
            derived=path("derived"),
            code=code("cross_check_model"),
        output:
            checks=[CROSS_CHECK_FILE.format(outcome=_outcome, model=m) for m in _models],
        log:
            f"logs/engine_cross_check/{_outcome}.log",
        benchmark:
            f"benchmarks/rules/engine_cross_check/{_outcome}.tsv"
        params:
            settings=STUDY.cross_check_settings().params(),
        script:
            "../scripts/cross_check_model.py"


rule combine_models:
    input:
        fits=[
            FIT_FILE.format(outcome=fit.outcome, model=fit.model, analysis=fit.analysis)
            for fit in STUDY.fits
        ],
        checks=[
            CROSS_CHECK_FILE.format(outcome=outcome, model=model)
            for outcome, model in STUDY.cross_checks
        ],
        # the totals counts of people are part of (complementary suppression)
        sessions=path("sessions"),
        episodes=path("episodes"),
        code=code("combine_models"),
    output:
        **outputs_of("combine_models"),
    log:
        "logs/combine_models.log",
    params:
        min_cell=STUDY.privacy.min_cell_count,
    script:
        "../scripts/combine_models.py"
