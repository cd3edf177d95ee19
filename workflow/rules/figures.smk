# Figures: one rule per figure family, each writing an SVG (shown in the Snakemake report) and a
# 300-dpi PNG (embedded in the reviewer report) under results/figures/.

FIGURES = "results/figures"
FIGURE_MODULES = package_modules("figures", "instruments", "privacy", "io")
MODELS_RUN = list(config["models"]["run"])


def figure_names():
    """Every figure the config asks for, without extension (one name per SVG/PNG pair)."""
    names = ["forest_alliance", "data_flow", "missingness", "alliance_distribution"]
    for outcome in OUTCOMES:
        names += [f"trajectories_{outcome}", f"alliance_within_next_{outcome}",
                  f"jacobson_truax_{outcome}"]
        if "R3" in MODELS_RUN:
            names.append(f"therapist_caterpillar_{outcome}")
        if "M2" in MODELS_RUN:
            names.append(f"residuals_{outcome}")
    return names


def figure_targets():
    return [f"{FIGURES}/{name}.{ext}" for name in figure_names() for ext in ("svg", "png")]


def figure_params():
    """What every figure script needs from the config: plain values only."""
    return {
        "instruments": config["instruments"],
        "alliance": config["analysis"]["alliance"],
        "outcomes": OUTCOMES,
        "min_cell": config["privacy"]["min_cell_count"],
        "show_individual": config["privacy"]["show_individual_trajectories"],
    }


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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
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
        **figure_params(),
    script:
        "../scripts/figure_residuals.py"
