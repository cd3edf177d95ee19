# Models: one job per planned (outcome, model, analysis) fit, an engine cross-check per
# primary-analysis mixed model, and the combined tables (see src/analysis/models/).
from analysis.models.specs import SENSITIVITY, SUBSCALE_PREFIX, planned_cross_checks, planned_fits

MODEL_CODE = [
    f"{PKG}models/{name}.py" for name in ("specs", "engines", "fitting")
] + package_modules("instruments", "scoring")

FIT_FILE = "results/fits/{outcome}/{model}/{analysis}.json"
CROSS_CHECK_FILE = "results/fits/{outcome}/{model}/cross_check.json"

MODEL_TABLES = {
    "models": ("models", "models.rst", "fixed effects"),
    "sensitivity": ("sensitivity", "models_sensitivity.rst", "sensitivity analyses"),
    "random_effects": ("models", "models_random_effects.rst", "random effects"),
    "model_fit": ("models", "models_fit.rst", "model fit"),
    "engine_agreement": ("models", "models_engine_agreement.rst", "engine agreement"),
    "rm_corr": ("models", "models_rm_corr.rst", "repeated-measures correlation"),
    "reliability": ("models", "models_reliability.rst", "reliability"),
    "therapist_icc": ("models", "models_therapist_icc.rst", "therapist ICC"),
    "early_alliance": ("sensitivity", "models_early_alliance.rst", "early alliance"),
}
# Per rule, not global: other stages may use wildcards of the same names.
FIT_WILDCARDS = {
    "outcome": "[a-z][a-z0-9_]*",
    "model": "[A-Za-z][A-Za-z0-9_]*",
    "analysis": "|".join(SENSITIVITY) + f"|{SUBSCALE_PREFIX}[a-z][a-z0-9_]*",
}


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
        settings=fit_settings,
    script:
        "../scripts/fit_model.py"


rule engine_cross_check:
    input:
        fit="results/fits/{outcome}/{model}/primary.json",
        derived="data/processed/derived.parquet",
        code=MODEL_CODE,
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
        max_clients=config["models"]["cross_check_max_clients"],
        tolerance=config["models"]["agreement_tolerance"],
    script:
        "../scripts/cross_check_model.py"


rule combine_models:
    input:
        fits=[
            FIT_FILE.format(outcome=outcome, model=model, analysis=analysis)
            for outcome, model, analysis in planned_fits(config)
        ],
        checks=[
            CROSS_CHECK_FILE.format(outcome=outcome, model=model)
            for outcome, model in planned_cross_checks(config)
        ],
        code=[f"{PKG}models/tables.py", *package_modules("privacy")],
    output:
        **{
            name: report(
                f"results/tables/{name}.csv",
                caption=f"../report/{caption}",
                category=category,
                labels={"table": label},
            )
            for name, (category, caption, label) in MODEL_TABLES.items()
        },
    log:
        "logs/combine_models.log",
    params:
        min_cell=config["privacy"]["min_cell_count"],
    script:
        "../scripts/combine_models.py"
