# Alliance-outcome pipeline: does the working alliance go with, and precede, lower symptoms?
# This file is the table of contents; each stage lives in workflow/rules/<stage>.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/derive.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/riclpm.smk"
include: "workflow/rules/multiverse.smk"
include: "workflow/rules/engagement.smk"
include: "workflow/rules/power.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/manuscript.smk"
# Last: it reads the rules the files above define (cluster execution only).
include: "workflow/rules/cluster.smk"


rule all:
    input:
        all_targets(),
        manuscript_targets(),
    default_target: True
