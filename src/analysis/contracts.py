"""Data contracts: what every stage file holds, checked where it is written and where it is read.

One contract per table of the catalogue (:mod:`analysis.catalogue`), keyed by the same names: the
columns the file must have, the kind of values each holds (:data:`KINDS`), the key columns that
are never missing, and, for processed files, that no other column may appear (published tables
allow extra columns). :func:`analysis.io.write_table` checks a frame fully before writing it
(:func:`check_written`); :func:`analysis.io.read_table` checks that the columns are there with a
compatible dtype (:func:`check_read`). A violation raises :class:`~analysis.errors.DataError`
naming the file, the column, what was expected and found, and the rule that writes the file.
Files outside the catalogue (scratch files, fit JSON) are not checked.

Both checks are plain comparisons of column names and dtypes; the write side adds a null test of
the key columns and a look at the values of object columns. Neither imports pandera (its import
alone costs ~0.7 s in every job, and fit jobs must stay light), and both cost about a millisecond
on a million rows.

Each fact lives once:

- a table's columns come from the module that writes it where that module lists them
  (:class:`Listed`: ``scoring.SCORE_COLUMNS``, ``models.tables.TABLE_COLUMNS`` ...); otherwise
  they are listed in :data:`SPECS` below. A listed module that a job has not imported is read from
  its source, not imported, so that checking ``models.csv`` does not load statsmodels and checking
  ``rejects.csv`` does not load pandera;
- a column's kind comes from its name (:data:`COLUMN_KINDS`): a name means the same thing in every
  table (STYLE: a column name says its meaning and scale). Published counts of people (``"<10"``
  below the privacy threshold) are the one exception, declared per table (``suppressed``).

Adding a column is one line: add it to the writer's list (or to its table's ``columns`` here) and,
when the name is new, to :data:`COLUMN_KINDS`. ``tests/test_contracts.py`` fails while a catalogue
table has no contract or a column has no kind.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from analysis.catalogue import FILES, StageFile
from analysis.errors import DataError

#: What a column may hold, as said in messages.
KINDS = {
    "string": "text",
    "integer": "whole numbers",
    "float": "numbers",
    "boolean": "true/false values",
    "published_count": "a count of people, or text where it is hidden (\"<10\") or not defined",
    "any": "anything",
}

#: The kind of every column name used in a stage file. One line per name; a name means the same
#: thing in every table (counts of people are integers here; see ``suppressed`` for tables that
#: publish them with small cells hidden).
COLUMN_KINDS: dict[str, str] = {
    # identifiers and keys (pseudonymised ids are text)
    "client_id": "string",
    "therapist_id": "string",
    "session": "integer",
    "day": "integer",
    "outcome": "string",
    "instrument": "string",
    "model": "string",
    "analysis": "string",
    "term": "string",
    "term2": "string",
    "group": "string",
    "role": "string",
    "family": "string",
    "method": "string",
    "compares": "string",
    "measure": "string",
    "label": "string",
    # where a row came from, what happened to it and why
    "file": "string",
    "row": "integer",
    "column": "string",
    "rule": "string",
    "reason": "string",
    "source": "string",
    "source_file": "string",
    "source_row": "integer",
    "stage": "string",
    "unit": "string",
    "scope": "string",
    "path": "string",
    "count": "integer",
    "read": "integer",
    "kept": "integer",
    "rejected": "integer",
    "rejected_share": "float",
    "top_rule": "string",
    "top_rule_count": "integer",
    "example": "string",
    "fix": "string",
    # administrations and scores
    "given_total": "float",
    "score": "float",
    "total": "float",
    "n_items_missing": "integer",
    "prorated": "boolean",
    "band": "string",
    "case": "boolean",
    "risk_flag": "boolean",
    # the derived frame
    "n_sessions": "integer",
    "symptom_score": "float",
    "symptom_next": "float",
    "symptom_within": "float",
    "symptom_between_c": "float",
    "alliance_score": "float",
    "alliance_next": "float",
    "alliance_within": "float",
    "alliance_between_c": "float",
    "alliance_within_detrended": "float",
    "alliance_early": "float",
    # episodes
    "n_scored": "integer",
    "first_session": "integer",
    "last_session": "integer",
    "first_score": "float",
    "last_score": "float",
    "change": "float",
    "improvement": "float",
    "has_outcome": "boolean",
    "caseness_cutoff": "float",
    "reliable_change_threshold": "float",
    "case_start": "boolean",
    "case_end": "boolean",
    "reliable_improvement": "boolean",
    "reliable_deterioration": "boolean",
    "rci": "float",
    "jt_reliable_improvement": "boolean",
    "jt_reliable_deterioration": "boolean",
    "jt_clinically_significant": "boolean",
    "jt_recovered": "boolean",
    "n_outcomes_with_outcome": "integer",
    "recovery": "boolean",
    "reliable_recovery": "boolean",
    "n_with_outcome": "integer",
    "n_episodes": "integer",
    "n_denominator": "integer",
    "rate": "float",
    # Jacobson-Truax parameters
    "direction": "string",
    "mean_first": "float",
    "sd_first": "float",
    "r_xx": "float",
    "r_xx_source": "string",
    "se_measurement": "float",
    "s_diff": "float",
    "rci_criterion": "float",
    "reliable_change_points": "float",
    "functional_mean": "float",
    "functional_sd": "float",
    "norms_source": "string",
    "cutoff": "float",
    "cutoff_formula": "string",
    # model results
    "estimate": "float",
    "se": "float",
    "df": "float",
    "t": "float",
    "p": "float",
    "p_holm": "float",
    "p_bh": "float",
    "ci_low": "float",
    "ci_high": "float",
    "std_estimate": "float",
    "n_obs": "integer",
    "n_clients": "integer",
    "n_therapists": "integer",
    "n": "integer",
    "converged": "boolean",
    "singular": "boolean",
    "of_interest": "boolean",
    "primary_test": "boolean",
    "variance": "float",
    "sd": "float",
    "corr": "float",
    "kind": "string",
    "engine": "string",
    "reml": "boolean",
    "formula": "string",
    "requested_formula": "string",
    "fallback_steps": "string",
    "waves": "string",
    "se_type": "string",
    "random_part": "string",
    "design": "string",
    "reml_criterion": "float",
    "deviance": "float",
    "loglik": "float",
    "aic": "float",
    "bic": "float",
    "optimizer_converged": "boolean",
    "gradient_norm": "float",
    "hessian_positive_definite": "boolean",
    "optimizer": "string",
    "n_rows_missing": "integer",
    "n_rows_not_completers": "integer",
    "expressible": "boolean",
    "n_terms": "integer",
    "max_abs_diff": "float",
    "max_rel_diff": "float",
    "max_abs_se_diff": "float",
    "max_rel_se_diff": "float",
    "flag": "boolean",
    "flag_term": "string",
    "se_flag": "boolean",
    "se_flag_term": "string",
    "se_comparison": "string",
    "tolerance": "float",
    "r": "float",
    "dof": "float",
    "expected_sign": "integer",
    "meta_r": "float",
    "meta_ci_low": "float",
    "meta_ci_high": "float",
    "sign_as_expected": "boolean",
    "n_items": "integer",
    "alpha": "float",
    "icc_therapist": "float",
    "icc_client": "float",
    "var_therapist": "float",
    "var_client": "float",
    "var_residual": "float",
    "r_squared": "float",
    "n_episodes_fewer_than_2_scores": "integer",
    # RI-CLPM (lavaan's parameter table) and its fit
    "version": "string",
    "status": "string",
    "lhs": "string",
    "op": "string",
    "rhs": "string",
    "wave": "integer",
    "parameter": "string",
    "free": "boolean",
    "z": "float",
    "ci_lower": "float",
    "ci_upper": "float",
    "n_waves": "integer",
    "n_parameters": "integer",
    "chisq": "float",
    "pvalue": "float",
    "cfi": "float",
    "tli": "float",
    "rmsea": "float",
    "srmr": "float",
    "admissible": "boolean",
    "max_abs_gradient": "float",
    "problems": "string",
    "origin": "string",
    "wave_sessions": "string",
    "waves_description": "string",
    "innovations": "string",
    "lr_chisq": "float",
    "lr_df": "integer",
    "lr_pvalue": "float",
    "lr_note": "string",
    # the multiverse: a specification's choices and results, and the summary
    "index": "integer",
    "id": "string",
    "prorating": "string",
    "lag_gap": "integer",
    "centring": "string",
    "detrended": "boolean",
    "random": "string",
    "sample": "string",
    "primary": "boolean",
    "significant_expected": "boolean",
    "significant_opposite": "boolean",
    "simplified": "boolean",
    "statistic": "string",
    "value": "float",
    "estimator": "string",
    "reproduces": "string",
    "fingerprint": "string",
    "duplicate_of": "string",
    "distinct": "boolean",
    "p_bootstrap": "float",
    "resamples": "integer",
    # engagement: attendance and dropout
    "sessions_attended": "integer",
    "ending": "string",
    "dropout": "integer",
    "dropout_source": "string",
    # planning the next study (power/): designs and simulated tests, no count of people
    "design_therapists": "integer",
    "design_clients_per_therapist": "integer",
    "design_clients": "integer",
    "design_sessions": "integer",
    "dropout_hazard": "float",
    "dropout_observed": "boolean",
    "effect_kind": "string",
    "effect": "float",
    "n_sims": "integer",
    "n_converged": "integer",
    "n_rejected": "integer",
    "power": "float",
    "ci_method": "string",
    "mean_estimate": "float",
    "mean_se": "float",
    "offered": "integer",
    "attended": "integer",
    "did_not_attend": "integer",
    "cancelled_by_client": "integer",
    "cancelled_by_service": "integer",
    "status_unknown": "integer",
    "tertile": "string",
    "at_risk": "integer",
    "events": "integer",
    "censored": "integer",
    "survival": "float",
    "alliance_min": "float",
    "alliance_max": "float",
    "odds_ratio": "float",
    "odds_ratio_ci_low": "float",
    "odds_ratio_ci_high": "float",
    "d": "float",
    "d_ci_low": "float",
    "d_ci_high": "float",
    "d_logistic": "float",
    "benchmark_d": "float",
    "n_events": "integer",
    "n_rows": "integer",
    "n_events_lost": "integer",
    "cluster": "string",
    "n_clusters": "integer",
    "attendance_rate": "float",
    "mean_client_rate": "float",
    "mean_sessions_attended": "float",
    "n_dropout": "integer",
    "dropout_rate": "float",
    "status_recorded": "boolean",
    "note": "string",
    # engagement: therapist and patient contributions
    "n_clients_excluded": "integer",
    "therapist_sd": "float",
    "residual_sd": "float",
    "alliance_therapist": "float",
    "alliance_mean": "float",
    "mean_change": "float",
    "mean_end_score": "float",
    # engagement: sudden gains
    "gain_id": "string",
    "pregain_session": "integer",
    "postgain_session": "integer",
    "score_pregain_minus2": "float",
    "score_pregain_minus1": "float",
    "pregain_score": "float",
    "postgain_score": "float",
    "score_postgain_plus1": "float",
    "score_postgain_plus2": "float",
    "magnitude": "float",
    "percent_change": "float",
    "share_of_total_change": "float",
    "mean_pre": "float",
    "mean_post": "float",
    "n_pre": "integer",
    "n_post": "integer",
    "critical_value": "float",
    "reversal_value": "float",
    "reversal": "boolean",
    "n_per_client": "integer",
    "largest_of_client": "boolean",
    "alliance_pre": "float",
    "alliance_post": "float",
    "cutoff_source": "string",
    "crit2_pct": "float",
    "crit3": "boolean",
    "identify_1to2": "boolean",
    "n_clients_with_gain": "integer",
    "share_with_gain": "float",
    "n_gains": "integer",
    "n_reversals": "integer",
    "n_clients_with_loss": "integer",
    "n_losses": "integer",
    "mean_magnitude": "float",
    "alliance_status": "string",
    "alliance_reason": "string",
    "mean": "float",
    "offset": "integer",
}


@dataclass(frozen=True)
class Listed:
    """A column list kept by the module that writes the table: ``module.attribute[key]``."""

    module: str
    attribute: str
    key: str | None = None

    def names(self) -> tuple[str, ...]:
        value = module_constant(self.module, self.attribute)
        return tuple(value[self.key] if self.key is not None else value)


#: Column names: listed here, kept by a module (:class:`Listed`), or both in a row.
Names = Listed | Iterable["str | Listed"]


@dataclass(frozen=True)
class Spec:
    """How one contract is declared (see :data:`SPECS`).

    ``columns``: the columns, in order; ``patterns``: regular expressions for families of
    columns that depend on the config (``item_<n>``, ``subscale_<name>``) and their kind;
    ``keys``: columns that are never missing; ``suppressed``: counts of people published with
    small cells hidden (:data:`KINDS` ``published_count``); ``strict``: no other column may be
    written (processed files: the ingest allowlist stays an allowlist).
    """

    columns: Names
    patterns: dict[str, str] = field(default_factory=dict)
    keys: Iterable[str] = ()
    suppressed: Names = ()
    strict: bool = False


_REJECT_COLUMNS = Listed("analysis.ingest.tables", "REJECT_COLUMNS")
# episodes.jacobson_truax_parameters builds these inline
_JACOBSON_TRUAX = (
    "outcome", "direction", "n_with_outcome", "mean_first", "sd_first", "r_xx", "r_xx_source",
    "se_measurement", "s_diff", "rci_criterion", "reliable_change_points", "functional_mean",
    "functional_sd", "norms_source", "cutoff", "cutoff_formula",
)
_MODEL_COUNTS = Listed("analysis.models.mixed.tables", "PEOPLE_COUNT_COLUMNS")


def _model_table(name: str, keys: list[str]) -> Spec:
    return Spec(Listed("analysis.models.mixed.tables", "TABLE_COLUMNS", name), keys=keys,
                suppressed=_MODEL_COUNTS)


#: Every contract, by catalogue name: the one place that says what each stage file holds.
SPECS: dict[str, Spec] = {
    # ingest (built inline in ingest.py)
    "administrations": Spec(
        ["client_id", "session", "instrument", "given_total", "source_file", "source_row"],
        patterns={r"item_\d+": "float"}, keys=["client_id", "session", "instrument"],
        strict=True),
    "sessions": Spec(["client_id", "therapist_id", "session", "day"],
                     keys=["client_id", "session"], strict=True),
    "offered_sessions": Spec(["client_id", "therapist_id", "session", "day", "status", "ending"],
                             keys=["client_id", "session"], strict=True),
    "rejects": Spec(_REJECT_COLUMNS, keys=["file", "row", "rule"], strict=True),
    "ingest_flags": Spec(_REJECT_COLUMNS, keys=["file", "row", "rule"], strict=True),
    "ingest_flow": Spec(Listed("analysis.ingest.tables", "FLOW_COLUMNS"),
                        keys=["source", "stage", "unit", "count"], strict=True),
    "data_quality": Spec(Listed("analysis.quality", "SUMMARY_COLUMNS"),
                         keys=["scope", "source", "unit"]),
    # scoring
    "scores": Spec(Listed("analysis.scoring", "SCORE_COLUMNS"),
                   patterns={r"subscale_\w+": "float"},
                   keys=["client_id", "session", "instrument", "n_items_missing", "prorated"],
                   strict=True),
    "flags": Spec(_REJECT_COLUMNS, keys=["file", "row", "rule"],
                  strict=True),
    # episodes
    "episodes": Spec(Listed("analysis.episodes", "EPISODE_COLUMNS"),
                     keys=["client_id", "outcome", "n_scored", "has_outcome"], strict=True),
    "episodes_combined": Spec(
        # built inline in episodes.combine_episodes
        ["client_id", "therapist_id", "n_outcomes_with_outcome", "has_outcome", "case_start",
         "recovery", "reliable_improvement", "reliable_deterioration", "reliable_recovery"],
        keys=["client_id", "n_outcomes_with_outcome", "has_outcome"], strict=True),
    "jacobson_truax_parameters": Spec(_JACOBSON_TRUAX, keys=["outcome", "n_with_outcome"],
                                      strict=True),
    # the same table published, with small counts hidden
    "jacobson_truax": Spec(_JACOBSON_TRUAX, keys=["outcome"], suppressed=["n_with_outcome"]),
    "episodes_summary": Spec(
        Listed("analysis.episodes", "SUMMARY_COLUMNS"), keys=["outcome", "measure"],
        suppressed=["n_episodes", "n_with_outcome", "n_denominator", "count"]),
    # derive (derive.py's module docstring describes them)
    "derived": Spec(
        ["outcome", "client_id", "therapist_id", "session", "day", "n_sessions",
         "symptom_score", "symptom_next", "symptom_within", "symptom_between_c",
         "alliance_score", "alliance_next", "alliance_within", "alliance_between_c",
         "alliance_within_detrended", "alliance_early"],
        # one block per alliance subscale: alliance_<sub>_score, _within, _between_c
        patterns={r"alliance_[a-z0-9_]+_(?:score|within|between_c)": "float"},
        keys=["outcome", "client_id", "session", "n_sessions"], strict=True),
    # models
    "models": _model_table("models", ["outcome", "model", "analysis", "term"]),
    "sensitivity": _model_table("sensitivity", ["outcome", "model", "analysis", "term"]),
    "random_effects": _model_table("random_effects", ["outcome", "model", "analysis", "group"]),
    "model_fit": _model_table("model_fit", ["outcome", "model", "analysis"]),
    "engine_agreement": _model_table("engine_agreement", ["outcome", "model", "analysis"]),
    "rm_corr": _model_table("rm_corr", ["outcome"]),
    "reliability": _model_table("reliability", ["instrument"]),
    "therapist_icc": _model_table("therapist_icc", ["outcome"]),
    "early_alliance": _model_table("early_alliance", ["outcome", "analysis"]),
    "fit_counts": Spec(Listed("analysis.models.mixed.tables", "FIT_COUNT_COLUMNS"),
                       keys=["outcome", "model", "analysis"], strict=True),
    # the RI-CLPM check (models/panel/riclpm_stage.py)
    "riclpm": Spec(["outcome", "version", Listed("analysis.models.panel.riclpm", "PATH_COLUMNS")],
                   keys=["outcome", "version"]),
    "riclpm_fit": Spec(Listed("analysis.models.panel.riclpm_stage", "FIT_COLUMNS"),
                       keys=["outcome", "version", "status"], suppressed=["n_clients"]),
    # the multiverse (models/multiverse/fit.py)
    "multiverse": Spec(
        ["index", "id", Listed("analysis.models.multiverse.specifications", "CHOICE_NAMES"), "primary",
         "reproduces", Listed("analysis.models.multiverse.fit", "RESULT_COLUMNS")],
        keys=["index", "id"], suppressed=["n_clients", "n_therapists"]),
    "multiverse_summary": Spec(Listed("analysis.models.multiverse.summary", "SUMMARY_COLUMNS"),
                               keys=["outcome", "lag_gap", "estimator", "statistic"]),
    # engagement (engagement/*_stage.py)
    "dropout_episodes": Spec(Listed("analysis.engagement.dropout_stage", "EPISODE_COLUMNS"),
                             keys=["client_id", "sessions_attended", "last_session", "dropout"],
                             strict=True),
    "dropout_km": Spec(Listed("analysis.engagement.dropout_stage", "KM_TABLE_COLUMNS"),
                       keys=["tertile", "session"], strict=True),
    "dropout": Spec(Listed("analysis.engagement.dropout_stage", "DROPOUT_COLUMNS"),
                    keys=["outcome", "term", "status"],
                    suppressed=["n_clients", "n_events", "n_events_lost", "n_clusters"]),
    "attendance": Spec(Listed("analysis.engagement.dropout_stage", "ATTENDANCE_COLUMNS"),
                       keys=["group"], suppressed=["n_clients", "n_dropout"]),
    "therapist_patient_alliance": Spec(
        Listed("analysis.engagement.therapist_patient", "RESULT_COLUMNS"),
        keys=["outcome", "term", "status"],
        suppressed=["n_clients", "n_clients_excluded", "n_therapists"]),
    "therapist_patient_points": Spec(
        Listed("analysis.engagement.therapist_patient_stage", "POINT_COLUMNS"),
        keys=["outcome", "therapist_id", "n_clients"], strict=True),
    "sudden_gains": Spec(Listed("analysis.engagement.sudden_gains_stage", "GAIN_TABLE_COLUMNS"),
                         keys=["outcome", "client_id", "gain_id", "kind", "pregain_session"]),
    "sudden_gains_summary": Spec(
        Listed("analysis.engagement.sudden_gains_stage", "SUMMARY_COLUMNS"),
        keys=["outcome", "status"],
        suppressed=["n_clients", "n_clients_with_gain", "n_gains", "n_reversals",
                    "n_clients_with_loss", "n_losses"]),
    "sudden_gains_course": Spec(
        Listed("analysis.engagement.sudden_gains_stage", "COURSE_COLUMNS"),
        keys=["outcome", "measure", "offset", "n_gains"], strict=True),
    # planning the next study (power/)
    "power_parameters": Spec(Listed("analysis.power.parameters", "PARAMETER_COLUMNS"),
                             keys=["outcome", "parameter", "value", "source"]),
    "power": Spec(Listed("analysis.power.summary", "POWER_COLUMNS"),
                  keys=["outcome", "design", "effect_kind", "estimator", "n_sims"]),
    # data flow
    "data_flow_full": Spec(Listed("analysis.dataflow", "FLOW_COLUMNS"),
                           keys=["stage", "source", "unit", "count"], strict=True),
    "data_flow": Spec(Listed("analysis.dataflow", "FLOW_COLUMNS"),
                      keys=["stage", "source", "unit"], suppressed=["count"]),
}

#: Catalogue files that are not tables (no columns to check).
NOT_TABLES = (".html", ".json", ".svg", ".png", ".zip", ".docx", ".tex", ".pdf")


# ---------------------------------------------------------------------------------------------
# Contracts


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    nullable: bool = True


@dataclass(frozen=True)
class Contract:
    """The resolved contract of one catalogue file (from its :class:`Spec`)."""

    entry: StageFile
    columns: tuple[Column, ...]
    patterns: tuple[tuple[re.Pattern[str], Column], ...] = ()
    strict: bool = False

    @property
    def name(self) -> str:
        return self.entry.name

    def declared(self, column: str) -> Column | None:
        """The column's declaration: by name, else by a pattern; None when undeclared."""
        for declared in self.columns:
            if declared.name == column:
                return declared
        for pattern, declared in self.patterns:
            if pattern.fullmatch(column):
                return Column(column, declared.kind, declared.nullable)
        return None


@cache
def contract(name: str) -> Contract | None:
    """The contract of the catalogue file ``name`` (None for files that are not tables)."""
    entry = FILES[name]
    if entry.path.endswith(NOT_TABLES):
        return None
    if name not in SPECS:
        # A new catalogue table without a contract is not checked at run time (it would stop the
        # pipeline for a missing declaration); tests/test_contracts.py fails instead.
        return None
    spec = SPECS[name]
    names = _names(spec.columns)
    suppressed = set(_names(spec.suppressed))
    keys = set(spec.keys)
    columns = tuple(
        Column(column, "published_count" if column in suppressed else
               COLUMN_KINDS.get(column, "any"), column not in keys)
        for column in names
    )
    patterns = tuple((re.compile(regex), Column(regex, kind)) for regex, kind in spec.patterns.items())
    return Contract(entry, columns, patterns, spec.strict)


def _names(names: Names) -> tuple[str, ...]:
    if isinstance(names, Listed):
        return names.names()
    return tuple(name for item in names
                 for name in (item.names() if isinstance(item, Listed) else (item,)))


def entry_for(path: str | os.PathLike[str]) -> StageFile | None:
    """The catalogue entry whose path ``path`` is (relative to a project folder), if any.

    ``data/processed/derived.parquet`` and ``/any/project/data/processed/derived.parquet`` both
    match ``derived``; ``/tmp/derived.parquet`` matches nothing.
    """
    parts = Path(os.path.normpath(os.fspath(path))).parts
    for entry in FILES.values():
        tail = _entry_parts(entry.path)
        if len(parts) >= len(tail) and all(
            _part_matches(part, pattern) for part, pattern in zip(parts[-len(tail):], tail)
        ):
            return entry
    return None


@cache
def _entry_parts(path: str) -> tuple[str | re.Pattern[str], ...]:
    # Wildcards ({name}) match one path component.
    return tuple(
        re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(part))) if "{" in part else part
        for part in Path(path).parts
    )


def _part_matches(part: str, pattern: str | re.Pattern[str]) -> bool:
    return part == pattern if isinstance(pattern, str) else bool(pattern.fullmatch(part))


def contract_for(path: str | os.PathLike[str]) -> Contract | None:
    """The contract of the catalogue file at ``path``; None outside the catalogue."""
    entry = entry_for(path)
    return contract(entry.name) if entry is not None else None


# ---------------------------------------------------------------------------------------------
# Checks


def check_read(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Raise a DataError when a file just read lacks a column of its contract or holds one with
    an incompatible dtype (no values are looked at, except in object columns)."""
    found = contract_for(path)
    if found is None:
        return
    csv = Path(path).suffix == ".csv"
    problems = []
    for column in found.columns:
        if column.name not in frame.columns:
            problems.append(f"column {column.name!r}: missing (expected {KINDS[column.kind]})")
        else:
            problems += _type_problems(frame[column.name], column, csv)
    for name in frame.columns:
        if found.patterns and not any(c.name == name for c in found.columns):
            declared = found.declared(str(name))
            if declared is not None:
                problems += _type_problems(frame[name], declared, csv)
    if problems:
        raise DataError(_message(path, found, problems, reading=True))


def check_written(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Raise a DataError when a frame about to be written breaks its file's contract: a column
    missing or of the wrong kind, a key column with missing values, or (processed files) a
    column the contract does not declare."""
    found = contract_for(path)
    if found is None:
        return
    csv = Path(path).suffix == ".csv"
    problems = []
    for column in found.columns:
        if column.name not in frame.columns:
            problems.append(f"column {column.name!r}: missing (expected {KINDS[column.kind]})")
            continue
        values = frame[column.name]
        problems += _type_problems(values, column, csv, writing=True)
        if not column.nullable and values.isna().any():
            problems.append(f"column {column.name!r}: {int(values.isna().sum())} missing "
                            "value(s) in a key column (expected none)")
    for name in frame.columns:
        if any(c.name == name for c in found.columns):
            continue
        declared = found.declared(str(name))
        if declared is not None:
            problems += _type_problems(frame[name], declared, csv, writing=True)
        elif found.strict:
            problems.append(f"column {name!r}: not in the contract (expected only the "
                            "declared columns)")
    if problems:
        raise DataError(_message(path, found, problems, reading=False))


def _message(path, found: Contract, problems: list[str], reading: bool) -> str:
    listing = "\n".join(f"  - {problem}" for problem in problems)
    rule = found.entry.rule
    if reading:
        todo = (f"The file is out of date or was not written by this version of the pipeline: "
                f"rerun the step that writes it (rule {rule}, e.g. "
                f"`snakemake --forcerun {rule}`).")
        return (f"{os.fspath(path)} does not match its contract ({found.name!r} in "
                f"src/analysis/contracts.py):\n{listing}\n{todo}")
    todo = (f"The step that writes it (rule {rule}) produced a table other than its contract "
            f"says: fix that step, or, if the change is intended, update the contract "
            f"{found.name!r} in src/analysis/contracts.py (one line per column).")
    return (f"{os.fspath(path)}: not written, the table breaks its contract ({found.name!r}):\n"
            f"{listing}\n{todo}")


def _type_problems(values: pd.Series, column: Column, csv: bool,
                   writing: bool = False) -> list[str]:
    if column.kind == "any":
        return []
    found = value_class(values)
    if found in ACCEPTS[column.kind]:
        return []
    if csv and found in CSV_ALSO.get(column.kind, ()):
        # What pandas guesses from a CSV; a writer's frame may hold only gappy whole numbers.
        if not writing or (column.kind == "integer" and _whole(values)):
            return []
    if not values.notna().any():
        # No values: nothing a reader could misread (and a CSV cannot keep an empty column's
        # dtype).
        return []
    return [f"column {column.name!r}: expected {KINDS[column.kind]} ({column.kind}), "
            f"found dtype {_describe(values, found)}"]


#: The value classes (:func:`value_class`) each kind accepts.
ACCEPTS = {
    "string": {"string"},
    "integer": {"integer"},
    "float": {"float", "integer"},
    "boolean": {"boolean"},
    "published_count": {"integer", "float", "string", "mixed"},
}


#: What else a CSV may give back: it keeps no dtypes, so pandas guesses them when reading.
CSV_ALSO = {
    "integer": {"float"},  # a missing value turns a column of integers into floats
    "string": {"integer", "float", "boolean", "mixed"},  # text that looks like numbers
}


def value_class(values: pd.Series) -> str:
    """``string``, ``integer``, ``float``, ``boolean``, ``datetime``, ``mixed`` or another dtype
    name: from the dtype, and for object columns from the values (missing values skipped)."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return "string"
    kind = getattr(dtype, "kind", "")
    if kind == "b":
        return "boolean"
    if kind and kind in "iu":
        return "integer"
    if kind == "f":
        return "float"
    if kind == "M":
        return "datetime"
    if kind == "O" and not isinstance(dtype, pd.CategoricalDtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        return _INFERRED.get(inferred, "mixed")
    return str(dtype)


_INFERRED = {
    "string": "string", "empty": "empty", "integer": "integer", "floating": "float",
    "mixed-integer-float": "float", "decimal": "float", "boolean": "boolean",
    "datetime": "datetime", "datetime64": "datetime", "date": "datetime",
}


def _describe(values: pd.Series, found: str) -> str:
    if values.dtype == object:
        return f"object holding {found} values"
    return str(values.dtype)


def _whole(values: pd.Series) -> bool:
    present = values.dropna()
    return bool((present == present.round()).all())


# ---------------------------------------------------------------------------------------------
# Column lists kept by other modules


@cache
def module_constant(module: str, attribute: str) -> Any:
    """``module.attribute``, without importing ``module`` when a job has not imported it yet.

    A job that only reads ``models.csv`` should not import statsmodels (``analysis.models
    .tables``), nor one that reads ``rejects.csv`` pandera (``analysis.ingest``): the value is
    read off the module's source when it is a literal (every column list is), following
    ``from x import NAME`` re-exports; otherwise the module is imported.
    """
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, attribute):
        return getattr(loaded, attribute)
    value = _literal_in_source(module, attribute)
    if value is not _NOT_FOUND:
        return value
    return getattr(importlib.import_module(module), attribute)


_NOT_FOUND = object()


def _literal_in_source(module: str, attribute: str, depth: int = 0) -> Any:
    found_file = _source_file(module)
    if found_file is None or depth > 3:
        return _NOT_FOUND
    source, is_package = found_file
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: Any = _NOT_FOUND
    for node in tree.body:  # the last top-level binding wins, as when the module runs
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == attribute for target in node.targets):
            found = _literal(node.value)
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
              and node.target.id == attribute and node.value is not None):
            found = _literal(node.value)
        elif isinstance(node, ast.ImportFrom) and any(
                alias.name == attribute and alias.asname in (None, attribute)
                for alias in node.names):
            origin = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found = _literal_in_source(origin, attribute, depth + 1)
    return found


def _source_file(module: str) -> tuple[Path, bool] | None:
    """A module's source file and whether it is a package, found on disk: unlike
    ``importlib.util.find_spec``, nothing is imported (not even the parent packages)."""
    top, *rest = module.split(".")
    loaded = sys.modules.get(top)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is None or Path(origin).name != "__init__.py":
        return None
    folder = Path(origin).parent
    if not rest:
        return Path(origin), True
    for part in rest[:-1]:
        folder = folder / part
    if (folder / f"{rest[-1]}.py").is_file():
        return folder / f"{rest[-1]}.py", False
    if (folder / rest[-1] / "__init__.py").is_file():
        return folder / rest[-1] / "__init__.py", True
    return None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_FOUND


# ---------------------------------------------------------------------------------------------
# Example frames (for tests and fixtures)

def example_frame(name: str) -> pd.DataFrame:
    """A one-row frame that meets the contract of ``name`` (for tests and fixtures)."""
    found = contract(name)
    if found is None:
        raise ValueError(f"{name!r} has no contract (not a table, or not declared)")
    values = {
        "string": lambda: pd.array(["x"], dtype="string"),
        "integer": lambda: pd.array([1], dtype="int64"),
        "float": lambda: pd.array([1.5], dtype="float64"),
        "boolean": lambda: pd.array([True], dtype="bool"),
        "published_count": lambda: pd.array(["<10"], dtype="string"),
        "any": lambda: pd.array(["x"], dtype="string"),
    }
    return pd.DataFrame({column.name: values[column.kind]() for column in found.columns})
