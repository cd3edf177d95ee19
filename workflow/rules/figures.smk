# Figures: one rule per figure family, each writing an SVG (shown in the Snakemake report) and a
# 300-dpi PNG (embedded in the reviewer report) under results/figures/.

from analysis.catalogue import FIGURES
from analysis.figures import figure_paths

# What every figure script reads of the study: plain values only.
FIGURE_PARAMS = {"settings": STUDY.figures.params()}


def figure_targets():
    """Every figure the study asks for (SVG and PNG), for `rule all`."""
    return figure_paths(STUDY.alliance.key, OUTCOMES, STUDY.models_run, FIGURES)



rule figure_forest:
    input:
        models=path("models"),
        code=code("figure_forest"),
    output:
        svg=report(
            f"{FIGURES}/forest_alliance.svg",
            caption="../report/figure_forest_alliance.rst",
            category="models",
            labels={"figure": "alliance terms (forest plot)", "outcome": "all"},
        ),
        png=f"{FIGURES}/forest_alliance.png",
    log:
        "logs/figure_forest.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_forest.py"


rule figure_data_flow:
    input:
        flow=path("data_flow"),
        code=code("figure_data_flow"),
    output:
        svg=report(
            f"{FIGURES}/data_flow.svg",
            caption="../report/figure_data_flow.rst",
            category="data",
            labels={"figure": "data flow", "outcome": "all"},
        ),
        png=f"{FIGURES}/data_flow.png",
    log:
        "logs/figure_data_flow.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_data_flow.py"


rule figure_missingness:
    input:
        sessions=path("sessions"),
        scores=path("scores"),
        code=code("figure_missingness"),
    output:
        svg=report(
            f"{FIGURES}/missingness.svg",
            caption="../report/figure_missingness.rst",
            category="data",
            labels={"figure": "dropout and missing data", "outcome": "all"},
        ),
        png=f"{FIGURES}/missingness.png",
    log:
        "logs/figure_missingness.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_missingness.py"


rule figure_alliance_distribution:
    input:
        scores=path("scores"),
        code=code("figure_alliance_distribution"),
    output:
        svg=report(
            f"{FIGURES}/alliance_distribution.svg",
            caption="../report/figure_alliance_distribution.rst",
            category="instruments",
            labels={"figure": "alliance distribution (ceiling)", "outcome": "alliance"},
        ),
        png=f"{FIGURES}/alliance_distribution.png",
    log:
        "logs/figure_alliance_distribution.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_alliance_distribution.py"


rule figure_trajectories:
    input:
        derived=path("derived"),
        code=code("figure_trajectories"),
    output:
        svg=report(
            f"{FIGURES}/trajectories_{{outcome}}.svg",
            caption="../report/figure_trajectories.rst",
            category="data",
            labels={"figure": "trajectories by early alliance", "outcome": "{outcome}"},
        ),
        png=f"{FIGURES}/trajectories_{{outcome}}.png",
    log:
        "logs/figure_trajectories/{outcome}.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_trajectories.py"


rule figure_alliance_within_next:
    input:
        derived=path("derived"),
        code=code("figure_alliance_within_next"),
    output:
        svg=report(
            f"{FIGURES}/alliance_within_next_{{outcome}}.svg",
            caption="../report/figure_alliance_within_next.rst",
            category="data",
            labels={"figure": "within-client alliance and next session", "outcome": "{outcome}"},
        ),
        png=f"{FIGURES}/alliance_within_next_{{outcome}}.png",
    log:
        "logs/figure_alliance_within_next/{outcome}.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_alliance_within_next.py"


rule figure_jacobson_truax:
    input:
        episodes=path("episodes"),
        parameters=path("jacobson_truax_parameters"),
        code=code("figure_jacobson_truax"),
    output:
        svg=report(
            f"{FIGURES}/jacobson_truax_{{outcome}}.svg",
            caption="../report/figure_jacobson_truax.rst",
            category="instruments",
            labels={"figure": "Jacobson-Truax plot", "outcome": "{outcome}"},
        ),
        png=f"{FIGURES}/jacobson_truax_{{outcome}}.png",
    log:
        "logs/figure_jacobson_truax/{outcome}.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_jacobson_truax.py"


rule figure_therapist_caterpillar:
    input:
        derived=path("derived"),
        model_fit=path("model_fit"),
        icc=path("therapist_icc"),
        code=code("figure_therapist_caterpillar"),
    output:
        svg=report(
            f"{FIGURES}/therapist_caterpillar_{{outcome}}.svg",
            caption="../report/figure_therapist_caterpillar.rst",
            category="models",
            labels={"figure": "therapist random intercepts", "outcome": "{outcome}"},
        ),
        png=f"{FIGURES}/therapist_caterpillar_{{outcome}}.png",
    log:
        "logs/figure_therapist_caterpillar/{outcome}.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_therapist_caterpillar.py"


rule figure_residuals:
    input:
        derived=path("derived"),
        model_fit=path("model_fit"),
        code=code("figure_residuals"),
    output:
        svg=report(
            f"{FIGURES}/residuals_{{outcome}}.svg",
            caption="../report/figure_residuals.rst",
            category="diagnostics",
            labels={"figure": "residual diagnostics (M2)", "outcome": "{outcome}"},
        ),
        png=f"{FIGURES}/residuals_{{outcome}}.png",
    log:
        "logs/figure_residuals/{outcome}.log",
    params:
        **FIGURE_PARAMS,
    script:
        "../scripts/figure_residuals.py"
