"""Snakemake sees every config change and reruns exactly what it affects.

After a completed run (the session's ``pipeline_run``, copied with its metadata), each edit below
is applied to ``config/config.yaml`` and a dry run lists the rules it would schedule. Two sets
are checked per edit: the rules whose *params* changed (the stages that read the edited setting:
the test fails if any rule stops declaring the settings it reads as params), and every rule
scheduled (those stages and everything downstream of them, and nothing else).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_snakemake

pytestmark = pytest.mark.slow

FIGURES = {
    "figure_forest", "figure_data_flow", "figure_missingness", "figure_alliance_distribution",
    "figure_trajectories", "figure_alliance_within_next", "figure_jacobson_truax",
    "figure_therapist_caterpillar", "figure_residuals", "figure_dropout_km",
    "figure_therapist_patient", "figure_sudden_gains",
}
# The RI-CLPM check reads the derived table; the multiverse re-scores the administrations.
RICLPM = {"fit_riclpm", "combine_riclpm", "figure_riclpm"}
MULTIVERSE = {"multiverse_data", "fit_multiverse", "combine_multiverse", "figure_specification_curve"}
# The engagement analyses read the derived table (dropout also the session registry, sudden gains
# the Jacobson-Truax parameters of the episodes stage).
DROPOUT = {"dropout_episodes", "fit_dropout", "combine_dropout", "figure_dropout_km"}
THERAPIST_PATIENT = {"fit_therapist_patient", "combine_therapist_patient",
                     "figure_therapist_patient"}
SUDDEN_GAINS = {"fit_sudden_gains", "combine_sudden_gains", "figure_sudden_gains"}
ENGAGEMENT = DROPOUT | THERAPIST_PATIENT | SUDDEN_GAINS
EVERYTHING = {
    "ingest", "quality_gate", "score", "episodes", "publish_episodes", "derive", "data_flow",
    "fit_model", "engine_cross_check", "combine_models", *FIGURES, *RICLPM, *MULTIVERSE,
    *ENGAGEMENT, "reviewer_report", "all",
}
# What follows a change of the combined model tables (models.csv, model_fit.csv, ...).
AFTER_MODEL_TABLES = {
    "combine_models", "data_flow", "figure_forest", "figure_data_flow", "reviewer_report", "all",
}
# The figures of a model read its primary fit file (the diagnostics the fit job stored there):
# they follow a refit of M2 (residuals) or R3 (therapist caterpillar), not the combined tables.
AFTER_PRIMARY_FITS = {"figure_residuals", "figure_therapist_caterpillar"}
# What publishes counts of people against each outcome's episodes (complementary suppression,
# analysis.privacy.StudyTotals) reads the episodes too, and what follows it.
AGAINST_EPISODES = {"combine_riclpm", "figure_riclpm", "combine_multiverse",
                    "figure_specification_curve", "figure_residuals", "figure_alliance_within_next"}
AFTER_EPISODES = {"episodes", "publish_episodes", "fit_model", "figure_jacobson_truax",
                  *AFTER_MODEL_TABLES, *AGAINST_EPISODES, *SUDDEN_GAINS}
AFTER_DERIVE = {"derive", "fit_model", "engine_cross_check", "figure_trajectories",
                "figure_alliance_within_next", *AFTER_PRIMARY_FITS, *AFTER_MODEL_TABLES, *RICLPM,
                *ENGAGEMENT}
FIGURE_RULES = {*FIGURES, "figure_riclpm", "figure_specification_curve"}
COMBINE_ENGAGEMENT = {"combine_dropout", "combine_therapist_patient", "combine_sudden_gains"}


def _set(config: dict, dotted: str, value) -> None:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _drop(config: dict, dotted: str) -> None:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    del node[last]


# (family, edit, rules whose params change, rules scheduled)
EDITS = [
    ("input path", lambda c: _set(c, "inputs.outcomes.path", "data/copy/outcomes.csv"),
     {"ingest", "quality_gate", "reviewer_report"}, EVERYTHING),
    ("column mapping", lambda c: _drop(c, "inputs.outcomes.columns.date"),
     {"ingest", "reviewer_report"}, EVERYTHING),
    ("instrument definition", lambda c: _set(c, "instruments.phq9", {"reliable_change": 5}),
     {"episodes", "reviewer_report"}, AFTER_EPISODES),
    ("scoring (prorating) rule", lambda c: _set(c, "instruments.gad7", {"max_missing": 1}),
     {"score", "multiverse_data", "reviewer_report"}, EVERYTHING - {"ingest", "quality_gate"}),
    ("linking", lambda c: _set(c, "linking.window_days", 5),
     {"ingest", "reviewer_report"}, EVERYTHING),
    ("privacy threshold", lambda c: _set(c, "privacy.min_cell_count", 5),
     {"publish_episodes", "combine_models", "combine_riclpm", "combine_multiverse", "data_flow",
      *COMBINE_ENGAGEMENT, *FIGURE_RULES, "reviewer_report"},
     {"publish_episodes", "combine_models", "combine_riclpm", "combine_multiverse", "data_flow",
      *COMBINE_ENGAGEMENT, *FIGURE_RULES, "reviewer_report", "all"}),
    # the multiverse derives its own data variants, with the lag rule among its choices
    ("derive setting", lambda c: _set(c, "analysis.max_lag_gap", 2),
     {"derive", "multiverse_data", "fit_multiverse", "reviewer_report"},
     AFTER_DERIVE | MULTIVERSE),
    ("list of models", lambda c: _set(c, "models.run", ["M0", "M1", "M2", "M3", "M4", "R2", "R3"]),
     {"reviewer_report"}, AFTER_MODEL_TABLES),
    # the fits of one (outcome, model) share a job (models.fit_jobs: per_model): switching an
    # analysis off changes the job of M0-M3, which refits their other analyses and rewrites the
    # primary fit files that the cross-check and the residual figure read
    ("sensitivity switch", lambda c: _set(c, "models.sensitivity.ml", False),
     {"fit_model", "reviewer_report"},
     {"fit_model", "engine_cross_check", "figure_residuals", *AFTER_MODEL_TABLES}),
    # the completers analysis of M0-M4 (the M2 job rewrites its primary fit too; R3 has none)
    # and the completers choice of the multiverse
    ("fit setting", lambda c: _set(c, "analysis.completers_min_sessions", 6),
     {"fit_model", "fit_multiverse", "reviewer_report"},
     {"fit_model", "engine_cross_check", "figure_residuals", *AFTER_MODEL_TABLES,
      "fit_multiverse", "combine_multiverse", "figure_specification_curve"}),
    # the waves of the panel models: the dynamic panel fits, the RI-CLPM and the multiverse's
    # dynamic panel specifications (not the mixed models, their cross-check or their figures)
    ("panel waves", lambda c: _set(c, "models.panel.min_share", 0.6),
     {"fit_model", "fit_riclpm", "fit_multiverse", "reviewer_report"},
     {"fit_model", *AFTER_MODEL_TABLES, *RICLPM, "fit_multiverse", "combine_multiverse",
      "figure_specification_curve"}),
    ("cross-check setting", lambda c: _set(c, "models.agreement_tolerance", 0.01),
     {"engine_cross_check", "reviewer_report"}, {"engine_cross_check", *AFTER_MODEL_TABLES}),
    ("episode rule", lambda c: _set(c, "episodes.rci_criterion", 2.58),
     {"episodes", "reviewer_report"}, AFTER_EPISODES),
    ("figure option", lambda c: _set(c, "figures.png_dpi", 150),
     {*FIGURE_RULES, "reviewer_report"}, {*FIGURE_RULES, "reviewer_report", "all"}),
    ("report text", lambda c: _set(c, "study.name", "Another study title"),
     {"reviewer_report"}, {"reviewer_report", "all"}),
    ("seed", lambda c: _set(c, "study.seed", 7), {"reviewer_report"},
     {"reviewer_report", "all"}),
    ("quality threshold", lambda c: _set(c, "quality.max_reject_share", 0.5),
     {"quality_gate", "reviewer_report"}, {"quality_gate", "reviewer_report", "all"}),
    # each engagement analysis reruns from the stage that reads the edited setting
    ("dropout proxy rule", lambda c: _set(c, "engagement.dropout.proxy_min_sessions", 3),
     {"dropout_episodes", "reviewer_report"}, {*DROPOUT, "reviewer_report", "all"}),
    ("sudden-gain criterion", lambda c: _set(c, "engagement.sudden_gains.crit2_pct", 0.3),
     {"fit_sudden_gains", "reviewer_report"}, {*SUDDEN_GAINS, "reviewer_report", "all"}),
]



def with_manuscript(rules: set[str], report_follows: bool) -> set[str]:
    """``rules`` with the manuscript step (manuscript.smk) where it follows: its rule reads the
    reviewer report's settings and tables (not the report's figures, png_dpi or config hash), so
    it goes with the report when ``report_follows``; each journal figure reads what its figure
    reads, with the same settings, so it goes with its figure."""
    added = {f"manuscript_{rule}" for rule in rules
             if rule in FIGURES or rule in {"figure_riclpm", "figure_specification_curve"}}
    if report_follows and "reviewer_report" in rules:
        added.add("manuscript")
    return set(rules) | added


# Editing the column mapping changes no setting the report states (its params change with the
# config hash only); a figure option changes neither its settings nor its tables.
EDITS = [(family, edit,
          with_manuscript(changed, family not in ("column mapping", "figure option")),
          with_manuscript(expected, family != "figure option"))
         for family, edit, changed, expected in EDITS]


def rule_family(name: str) -> str:
    # jobs made from a list are rules named <family>_<key> (fit_model_phq9_M2): one family each
    for family in ("fit_model", "engine_cross_check", "fit_multiverse"):
        if name.startswith(family + "_"):
            return family
    return name


def summary_of(root: Path) -> tuple[dict[str, set[str]], set[str]]:
    """What ``--detailed-summary`` says: each output's recorded change (``params changed``,
    ``set of input files changed``, ...) -> the rules of those outputs; and the rules it plans to
    run ("update pending", plus the target rule ``all``, which has no output of its own).

    The summary checks every output against its record; the reasons of a dry run do not (a job
    that already reruns because an upstream job does is not checked for changed params). Its plan
    is the dry run's schedule (the same DAG), so one invocation gives both.
    """
    summary = run_snakemake(root, "--detailed-summary").stdout
    changes: dict[str, set[str]] = {}
    scheduled: set[str] = set()
    for line in summary.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) > 7 and fields[2]:
            changes.setdefault(fields[6], set()).add(rule_family(fields[2]))
            if fields[7] == "update pending":
                scheduled.add(rule_family(fields[2]))
    return changes, (scheduled | {"all"}) if scheduled else scheduled


@pytest.fixture(scope="module")
def completed(pipeline_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("propagation") / "project"
    shutil.copytree(pipeline_run.root, root, symlinks=True)  # copy2: mtimes and metadata kept
    copy = root / "data" / "copy"
    copy.mkdir()
    shutil.copy2(root / "data" / "raw" / "outcomes.csv", copy / "outcomes.csv")
    return root


def test_a_completed_run_schedules_nothing(completed):
    result = run_snakemake(completed, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


@pytest.mark.parametrize("family, edit, changed, expected", EDITS,
                         ids=[(e.values if hasattr(e, "values") else e)[0] for e in EDITS])
def test_an_edit_reruns_exactly_what_it_affects(completed, family, edit, changed, expected):
    config_path = completed / "config" / "config.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    edit(config)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        changes, scheduled = summary_of(completed)
    finally:
        config_path.write_text(original)
    params_changed = changes.get("params changed", set())
    input_changed = changes.get("set of input files changed", set())
    # The stages that read the setting declare it as params (input-set changes count for the
    # rules whose list of fits or files changed).
    assert params_changed | (input_changed & changed) == changed, (
        family, sorted(params_changed ^ changed), sorted(input_changed))
    assert scheduled == expected, (family, sorted(scheduled ^ expected))
