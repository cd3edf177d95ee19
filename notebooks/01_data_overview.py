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
# # 1. Data overview
#
# What went into the analysis: how many rows each export had, which were rejected and why, how
# many sessions clients attended, how much is missing, how close the alliance sits to its
# ceiling, and how symptoms move over sessions for clients with a weaker or stronger early
# alliance. Everything is read through `analysis.results` from the outputs of the last pipeline
# run (`make report`); nothing here changes a file. Identifiers are pseudonyms and are never
# printed; counts of people below the privacy threshold are shown as "<10".

# %%
# %matplotlib inline
import pandas as pd

from analysis import figures, results
from analysis.privacy import format_count

study = results.load_study()
registry = study.registry
outcomes = list(study.outcome_keys)
alliance = study.alliance
min_cell = study.privacy.min_cell_count
print(f"Study: {study.report.title}")
print(f"Outcomes: {', '.join(registry[key].label for key in outcomes)}; alliance: {alliance.label}")

# %% [markdown]
# ## Where every row went
#
# One line per input file and stage: rows read, rejected (with the rule that rejected them) and
# kept; then the session registry, the episodes per outcome and the people in each fit. Read
# equals kept plus rejected for every file.

# %%
flow = results.load_data_flow()
flow[flow["stage"].isin(["read", "rejected", "kept", "registry", "episodes"])]

# %%
figures.data_flow_figure(flow, min_cell=min_cell)

# %% [markdown]
# ## Attendance and dropout
#
# Sessions attended per client. Mixed models assume the missing sessions are missing at random;
# a long tail of clients with one or two sessions is the usual pattern in routine care.

# %%
sessions = results.load_sessions()
attended = sessions.groupby("client_id").size()
pd.Series({
    "clients": format_count(len(attended), min_cell),
    "mean sessions": round(attended.mean(), 2),
    "median sessions": attended.median(),
    "interquartile range": f"{attended.quantile(0.25):g}-{attended.quantile(0.75):g}",
    "clients with fewer than 3 sessions": format_count(int((attended < 3).sum()), min_cell),
}, name="attendance").to_frame()

# %% [markdown]
# Missing questionnaires and missing items per session: a rise late in therapy would suggest
# that those who stay differ from those who leave.

# %%
scores = results.load_scores()
figures.missingness_figure(sessions, scores, [registry[key] for key in [*outcomes, alliance.key]],
                           min_cell=min_cell)

# %% [markdown]
# ## Scores and the alliance ceiling
#
# Score distributions per instrument (administrations, not people), then the alliance
# distribution: a large share at the maximum limits how much a better-than-usual session can
# show up in the within-client alliance.

# %%
scores.groupby("instrument")["score"].describe().round(2)

# %%
figures.alliance_distribution_figure(scores, alliance, min_cell=min_cell)

# %% [markdown]
# ## Symptom trajectories by early alliance
#
# Mean scores per session for the lower, middle and upper third of early alliance. Session means
# over fewer clients than the threshold are not drawn. The gap between the lines is
# descriptive: clients with a strong early alliance may differ in other ways.

# %%
derived = results.load_derived()
for key in outcomes:
    display(figures.trajectories_figure(
        derived, registry[key], alliance, min_cell=min_cell,
        show_individual=study.privacy.show_individual_trajectories))

# %% [markdown]
# ## Episodes
#
# Episode outcomes per outcome measure: how many episodes have the two scores an outcome needs,
# and the reliable-change and recovery rates (counts already suppressed).

# %%
episodes = results.load_episodes()
episodes.groupby("outcome").agg(episodes=("n_scored", "size"),
                                median_scores=("n_scored", "median"),
                                mean_change=("change", "mean")).round(2).assign(
    episodes=lambda frame: frame["episodes"].map(lambda n: format_count(n, min_cell)))

# %%
results.load_output("episodes_summary")
