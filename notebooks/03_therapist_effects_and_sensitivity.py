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

study = results.load_study()
registry = study.registry
outcomes = list(study.outcome_keys)
planned = {(fit.outcome, fit.model, fit.analysis) for fit in study.fits}
models = results.load_models()

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
# Each therapist's conditional mode and its conditional SD, as the R3 fit job stored them in its
# fit file (`results/fits/<outcome>/R3/primary.json`, key `diagnostics`): nothing is refitted.
# Therapists are ranked, never named. Intervals crossing zero are therapists whose clients do
# not differ clearly from the average.

# %%
for key in outcomes:
    if (key, "R3", "primary") not in planned:
        print(f"R3 is not planned for {key} (models.run in config/config.yaml).")
        continue
    fit = results.load_fit(key, "R3")
    effects = figures.therapist_effects(fit)
    share = fit["icc"][0]["icc_therapist"] if fit.get("icc") else None
    print(f"{registry[key].label}: {len(effects)} therapists; final formula {fit['fit']['formula']}")
    display(figures.therapist_caterpillar_figure(effects, registry[key], variance_share=share))

# %% [markdown]
# The spread of the therapists' modes beside their typical uncertainty: when the conditional SDs
# are as large as the spread, the ranking says little about any single therapist.

# %%
pd.DataFrame({
    registry[key].label: figures.therapist_effects(results.load_fit(key, "R3"))[
        ["estimate", "se"]].describe().loc[["mean", "std", "min", "max"]].stack()
    for key in outcomes if (key, "R3", "primary") in planned
}).round(3)

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
# The same with 95% confidence intervals, for the lagged models: the primary dynamic panel model
# DPM and the conventional M2.

# %%
lagged = terms.query("model in ['DPM', 'M2']").assign(
    ci=lambda frame: frame["ci_low"].round(2).astype(str) + " to "
    + frame["ci_high"].round(2).astype(str))
lagged[["outcome", "model", "term", "analysis", "estimate", "ci", "p"]].round(3)

# %% [markdown]
# ## Engine agreement
#
# Every primary-analysis mixed model small enough was refitted with statsmodels MixedLM. Large
# relative differences (flagged) deserve a look before the estimates are trusted; models
# statsmodels cannot express exactly are listed with the reason.

# %%
results.load_output("engine_agreement")
