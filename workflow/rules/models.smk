# Models: one job per planned (outcome, model, analysis) fit, an engine cross-check per
# primary-analysis mixed model, and the combined tables (see src/analysis/models/).
from analysis.models.specs import SENSITIVITY, SUBSCALE_PREFIX

MODEL_TABLES = list(written_by("combine_models"))
# Per rule, not global: other stages may use wildcards of the same names.
FIT_WILDCARDS = {
    "outcome": "[a-z][a-z0-9_]*",
    "model": "[A-Za-z][A-Za-z0-9_]*",
    "analysis": "|".join(SENSITIVITY) + f"|{SUBSCALE_PREFIX}[a-z][a-z0-9_]*",
}


def model_targets():
    """The combined model tables (for `rule all`)."""
    return [path(name) for name in MODEL_TABLES]


def fit_inputs(wildcards):
    """Each fit reads only what its kind needs, so unrelated changes do not refit it."""
    fit = STUDY.fit(wildcards.outcome, wildcards.model, wildcards.analysis)
    inputs = {
        "derived": path("derived"),
        # for messages about too few clients: what happened upstream (only read on error)
        "quality": ancient(path("data_quality")),
        "scores": path("scores"),
        "code": code("fit_model"),
    }
    if fit.data == "episodes":
        inputs["episodes"] = path("episodes")
    if fit.data == "administrations":
        inputs["administrations"] = path("administrations")
    return inputs


rule fit_model:
    input:
        unpack(fit_inputs),
    output:
        fit=FIT_FILE,
    wildcard_constraints:
        **FIT_WILDCARDS,
    log:
        "logs/fit_model/{outcome}_{model}_{analysis}.log",
    benchmark:
        "benchmarks/rules/fit_model/{outcome}_{model}_{analysis}.tsv"
    params:
        settings=lambda wildcards: STUDY.fit_settings(
            wildcards.outcome, wildcards.model, wildcards.analysis
        ),
    script:
        "../scripts/fit_model.py"


rule engine_cross_check:
    input:
        fit=FIT_FILE.replace("{analysis}", "primary"),
        derived=path("derived"),
        code=code("cross_check_model"),
    output:
        check=CROSS_CHECK_FILE,
    wildcard_constraints:
        outcome=FIT_WILDCARDS["outcome"],
        model=FIT_WILDCARDS["model"],
    log:
        "logs/engine_cross_check/{outcome}_{model}.log",
    benchmark:
        "benchmarks/rules/engine_cross_check/{outcome}_{model}.tsv"
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
        code=code("combine_models"),
    output:
        **outputs_of("combine_models"),
    log:
        "logs/combine_models.log",
    params:
        min_cell=STUDY.privacy.min_cell_count,
    script:
        "../scripts/combine_models.py"
