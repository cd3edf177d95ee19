# Planning the next study (analysis.power; METHODS 10): the generating parameters of each outcome
# read from this run's fits and derived data, one job per batch of simulated studies of a design
# and true effect (power.simulations_per_job; a cluster spreads them), and the power table with
# its Monte-Carlo CIs. `snakemake power` (`make power`) builds it; power.run adds it to `rule all`
# and the reviewer report. The rules exist only when models.run plans the fits it reads.
# (Its input functions are in common.smk.)
from analysis.figures.table import FAMILY
from analysis.simulate.recovery import recovery_settings
from analysis.settings import POWER_REQUIRED_MODELS, batch_settings

if not POWER.missing_models:
    # The planned DPM and M2 of each power outcome, fitted to every simulated study.
    POWER_FITS = {outcome: recovery_settings(STUDY, outcome) for outcome in POWER.outcomes}

    rule power_parameters:
        input:
            fits=power_fit_files(),
            derived=path("derived"),
            code=code("power_parameters"),
        output:
            **outputs_of("power_parameters"),
        log:
            "logs/power_parameters.log",
        params:
            outcomes=list(POWER.outcomes),
            models=list(POWER_REQUIRED_MODELS),
            course_lengths=sorted({design.sessions for design in POWER.designs}),
        script:
            "../scripts/power_parameters.py"

    rule power_batch:
        input:
            parameters=path("power_parameters"),
            code=code("power_batch"),
        output:
            POWER_BATCH_FILE,
        wildcard_constraints:
            outcome="|".join(POWER.outcomes),
            design="|".join(design.id for design in POWER.designs),
            effect="estimate|smallest_effect",
            batch=r"\d+",
        log:
            "logs/power_batch/{outcome}/{design}/{effect}/{batch}.log",
        benchmark:
            "benchmarks/rules/power_batch/{outcome}/{design}/{effect}/{batch}.tsv"
        params:
            settings=lambda wildcards: batch_settings(
                POWER, POWER_FITS[wildcards.outcome].fits,
                POWER_FITS[wildcards.outcome].max_lag_gap, wildcards.outcome, wildcards.design,
                wildcards.effect, wildcards.batch).params(),
        script:
            "../scripts/power_batch.py"

    rule combine_power:
        input:
            batches=power_batch_files(),
            code=code("combine_power"),
        output:
            **outputs_of("combine_power"),
        log:
            "logs/combine_power.log",
        params:
            settings=POWER.params(),
        script:
            "../scripts/combine_power.py"

    rule power:
        input:
            path("power_parameters"),
            path("power"),
            [FAMILY["power_curve"].file(extension) for extension in ("svg", "png")],

else:

    rule power:
        # `snakemake power` says which models it needs (common.smk: power_unavailable)
        input:
            power_unavailable,
