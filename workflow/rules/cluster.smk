# Cluster execution (workflow/profiles/slurm, workflow/profiles/kubernetes; see docs/cluster.md).
# Nothing here changes a local run: these settings matter only with a cluster executor.
import os

# Jobs that run in the Snakemake process on the submit host instead of being sent to the
# scheduler: the figures (matplotlib, seconds each, 240-270 MB measured) and the small tables and
# reports that only read results. Queueing each of them would cost more than running it.
# (A name here that no rule has any more only draws a warning.)


localrules:
    data_flow,
    combine_models,
    reviewer_report,
    figure_forest,
    figure_data_flow,
    figure_missingness,
    figure_alliance_distribution,
    figure_trajectories,
    figure_alliance_within_next,
    figure_jacobson_truax,
    figure_therapist_caterpillar,
    figure_residuals,


# The pseudonymisation key reaches every job. SLURM jobs inherit the submitting shell's variables;
# executors without a shared environment (Kubernetes) pass only declared variables (as a
# Kubernetes secret). Declared only when set, so demo runs without a key keep working.
if os.environ.get(config["privacy"]["key_env"]):

    envvars:
        config["privacy"]["key_env"],
