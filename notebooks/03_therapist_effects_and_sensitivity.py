# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Therapist effects and sensitivity analyses
#
# How much of the symptom variance lies between therapists (R3), how the therapists spread
# around the average, and whether the alliance findings hold up when the analysis changes:
# detrended within-client alliance (shared time trends removed), completers only, ML instead of
# REML, and the alliance subscales. Last, the agreement of the two model engines. Therapists
# appear by rank only, never by pseudonym.

# %%
# %matplotlib inline
import pandas as pd

from analysis import figures, results
from analysis.instruments import build_registry

config = results.load_config()
registry = build_registry(config["instruments"])
outcomes = list(config["analysis"]["outcomes"])
models = results.load_models()
model_fit = results.load_model_fit()

# %% [markdown]
# ## Therapist ICC
#
# The share of symptom variance between therapists, from
# `symptom_score ~ session + (1 | client_id) + (1 | therapist_id)`. Therapist effects usually
# explain about 5% of outcome variance.

# %%
icc = results.load_output("therapist_icc")
icc

# %% [markdown]
# ## Therapists' random intercepts
#
# The R3 model is refitted with its final formula to get each therapist's conditional mode and
# its conditional variance. Intervals crossing zero are therapists whose clients do not differ
# clearly from the average.

# %%
derived = results.load_derived()
for key in outcomes:
    if not ((model_fit["outcome"] == key) & (model_fit["model"] == "R3")).any():
        print(f"R3 was not fitted for {key}.")
        continue
    refit = figures.refit_mixed_model(derived, key, figures.fitted_formula(model_fit, key, "R3"))
    share = figures.outcome_row(icc, key, "therapist_icc.csv").get("icc_therapist")
    display(figures.therapist_caterpillar_figure(refit.random_effects, registry[key],
                                                 variance_share=share))

# %% [markdown]
# ## Sensitivity analyses side by side
#
# Each alliance term (rows) under each analysis (columns), per outcome. Estimates that keep
# their sign and size across columns are robust to that choice; a within-client term that
# shrinks after detrending was partly a shared time trend.

# %%
terms = figures.select_alliance_terms(models)
terms["analysis"] = terms["analysis"].map(figures.analysis_label)
terms.pivot_table(index=["outcome", "model", "term"], columns="analysis", values="estimate",
                  sort=True).round(3)

# %% [markdown]
# The same with 95% confidence intervals, for the primary lagged model M2 only.

# %%
m2 = terms.query("model == 'M2'").assign(
    ci=lambda frame: frame["ci_low"].round(2).astype(str) + " to "
    + frame["ci_high"].round(2).astype(str))
m2[["outcome", "term", "analysis", "estimate", "ci", "p"]].round(3)

# %% [markdown]
# ## Engine agreement
#
# Every primary-analysis mixed model small enough was refitted with statsmodels MixedLM. Large
# relative differences (flagged) deserve a look before the estimates are trusted; models
# statsmodels cannot express exactly are listed with the reason.

# %%
results.load_output("engine_agreement")
