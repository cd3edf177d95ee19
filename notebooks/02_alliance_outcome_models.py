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
# # 2. Alliance and outcome: the models
#
# The answer to the study question. The primary test is the lagged alliance term of the dynamic
# panel model DPM: does a session with a better alliance predict lower symptoms at the next
# session, for the same current score and the client's stable level, when symptoms may also move
# the alliance? Its p-values are Holm-adjusted across outcomes; the other alliance terms
# (the conventional lagged multilevel model M2 among them) are Benjamini-Hochberg-adjusted. The
# tables come from `results/tables/` through `analysis.results`.

# %%
# %matplotlib inline
import pandas as pd

from analysis import figures, results

study = results.load_study()
registry = study.registry
outcomes = list(study.outcome_keys)
alliance = study.alliance
models = results.load_models()
model_fit = results.load_model_fit()
random_effects = results.load_random_effects()

# %% [markdown]
# ## The primary test
#
# One row per outcome. For a symptom scale a negative estimate means that a better alliance is
# followed by lower (better) scores. `p` is the raw p-value, `p_holm` the adjusted one that
# decides; `n_waves` the sessions used as waves (`model_fit.csv` says which).

# %%
primary = models.query("model == 'DPM' and analysis == 'primary' and term == 'alliance_lagged'")
primary[["outcome", "estimate", "se", "ci_low", "ci_high", "p", "p_holm",
         "std_estimate", "n_clients", "n_waves"]].round(4)

# %% [markdown]
# Beside it, the conventional multilevel model M2 (alliance centred on each client's mean over
# all sessions). It is biased when symptoms also move the alliance; where the two disagree, the
# dynamic panel model is the one to rely on.

# %%
conventional = models.query("model == 'M2' and analysis == 'primary' "
                            "and term == 'alliance_within'")
conventional[["outcome", "estimate", "se", "df", "ci_low", "ci_high", "p", "p_bh"]].round(4)

# %% [markdown]
# ## Every alliance term, every analysis
#
# The forest plot shows the within- and between-client alliance terms of M1 (same session) and
# M2 (next session), the early-alliance term of M4 and every sensitivity analysis. Filled
# markers have an adjusted p below .05.

# %%
figures.forest_alliance_figure(models, {key: registry[key] for key in outcomes}, alliance)

# %% [markdown]
# ## Full tables of the primary analysis
#
# Fixed effects with Satterthwaite df for each model, and the variance components beside them.
# `converged` and `singular` come from the convergence protocol (gradient norm and variances
# checked, not just the optimizer's word).

# %%
columns = ["term", "estimate", "se", "df", "t", "p", "p_holm", "p_bh", "ci_low", "ci_high",
           "std_estimate"]
for (outcome, model), table in models.query("analysis == 'primary'").groupby(
        ["outcome", "model"], sort=True):
    print(f"\n{registry[outcome].label if outcome in registry else outcome}: {figures.model_title(model)}")
    display(table[[c for c in columns if c in table.columns]].round(4))

# %%
random_effects.query("analysis == 'primary'")

# %% [markdown]
# ## The reverse path
#
# M3 asks whether symptoms above a client's own average predict the next session's alliance.
# A clear reverse effect would mean that part of the alliance-outcome association reflects
# improvement raising the alliance, not the other way round.

# %%
models.query("model == 'M3' and analysis == 'primary' and term in "
             "['symptom_within', 'symptom_between_c']")[
    ["outcome", "term", "estimate", "ci_low", "ci_high", "p", "p_bh"]].round(4)

# %% [markdown]
# ## How each fit went
#
# Fits that needed a simpler random part (dropping the random slope, then the therapist term)
# list the steps; the final formula is the one reported.

# %%
model_fit[[c for c in ["outcome", "model", "analysis", "converged", "singular",
                       "gradient_norm", "fallback_steps", "formula"] if c in model_fit.columns]]

# %% [markdown]
# ## Residual diagnostics of the primary model
#
# The M2 fit job stored summaries of its residuals and random effects in its fit file
# (`results/fits/<outcome>/M2/primary.json`, key `diagnostics`): residuals against fitted values
# in equal-count bins, Q-Q plots of the standardised residuals and of the clients' intercepts.

# %%
from analysis.privacy import StudyTotals

# counts of clients in titles are published against the study's totals, as in the pipeline
totals = StudyTotals.from_tables(results.load_sessions(), results.load_episodes())
for key in outcomes:
    fit = results.load_fit(key, "M2")
    display(figures.residual_diagnostics_figure(
        fit.get("diagnostics") or {}, registry[key], min_cell=study.privacy.min_cell_count,
        totals=totals.of("clients", key), model_title=figures.model_title("M2"),
        formula=fit["fit"]["formula"]))

# %% [markdown]
# ## Within-client alliance and next-session symptoms, descriptively
#
# Binned means of the next-session score (and of the change to it) against the within-client
# alliance. The confidence intervals ignore that sessions are nested in clients: M2 is the test.

# %%
derived = results.load_derived()
for key in outcomes:
    display(figures.alliance_within_next_figure(derived, registry[key], alliance,
                                                min_cell=study.privacy.min_cell_count,
                                                totals=totals.of("clients", key)))
