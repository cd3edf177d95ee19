# Cluster execution (workflow/profiles/slurm, workflow/profiles/kubernetes; see docs/cluster.md).
# Nothing here changes a local run: these settings matter only with a cluster executor.
# Included after every other rule file: it reads the rules they define.
import os

# Jobs that run in the Snakemake process on the submit host instead of being sent to the
# scheduler: every figure (matplotlib, seconds each, 150-310 MB measured; their journal copies
# too), every step that combines fits into tables, and the small steps that check or publish
# results (the manuscript step among them). Queueing each of them would cost more than running
# it. The rules are picked by name here, rather than listed in a `localrules:` directive, because
# the figure and model rules are generated from tables.
LOCAL_RULES = ("quality_gate", "publish_episodes", "data_flow", "reviewer_report", "manuscript")
LOCAL_RULE_PREFIXES = ("figure_", "combine_", "manuscript_figure_")
# (What a `localrules:` directive compiles to.)
workflow.localrules(
    *(
        name
        for name in (defined.name for defined in workflow.rules)
        if name in LOCAL_RULES or name.startswith(LOCAL_RULE_PREFIXES)
    )
)


# The pseudonymisation key reaches every job. SLURM jobs inherit the submitting shell's variables;
# executors without a shared environment (Kubernetes) pass only declared variables (as a
# Kubernetes secret). Declared only when set, so demo runs without a key keep working.
KEY_ENV = STUDY.key_env
if os.environ.get(KEY_ENV):

    envvars:
        KEY_ENV,
