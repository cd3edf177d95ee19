# Figures: one rule per figure family, each writing an SVG (shown in the Snakemake report) and a
# 300-dpi PNG (embedded in the reviewer report) under results/figures/.

from analysis.figures import figure_paths

FIGURES = "results/figures"
FIGURE_MODULES = package_modules("figures", "instruments", "privacy", "io") + [
    f"{PKG}models/specs.py"
]
# What every figure script needs from the config: plain values only.
FIGURE_PARAMS = {
    "instruments": config["instruments"],
    "alliance": config["analysis"]["alliance"],
    "outcomes": OUTCOMES,
    "min_cell": config["privacy"]["min_cell_count"],
    "show_individual": config["privacy"]["show_individual_trajectories"],
}
# Every figure the config asks for (SVG and PNG), for `rule all`.
figure_targets = lambda: figure_paths(config, FIGURES)


rule figure_forest:
    input:
        models="results/tables/models.csv",
        code=FIGURE_MODULES,
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
        flow="results/tables/data_flow.csv",
        code=FIGURE_MODULES,
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
        sessions="data/processed/sessions.parquet",
        scores="data/processed/scores.parquet",
        code=FIGURE_MODULES,
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
        scores="data/processed/scores.parquet",
        code=FIGURE_MODULES,
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
        derived="data/processed/derived.parquet",
        code=FIGURE_MODULES,
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
        derived="data/processed/derived.parquet",
        code=FIGURE_MODULES,
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
        episodes="data/processed/episodes.parquet",
        parameters="results/tables/jacobson_truax.csv",
        code=FIGURE_MODULES,
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
        derived="data/processed/derived.parquet",
        model_fit="results/tables/model_fit.csv",
        icc="results/tables/therapist_icc.csv",
        code=FIGURE_MODULES,
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
        derived="data/processed/derived.parquet",
        model_fit="results/tables/model_fit.csv",
        code=FIGURE_MODULES,
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
