"""A corpus of study designs, each run from its raw exports to the reviewer report.

Every design is a config and the exports it reads, written into a temporary project folder:
simulated service data (:func:`analysis.simulate.simulate_study`) reshaped as a real export
would be (no therapist column, sessions numbered from 3, SPSS or Stata files, missing-value
codes, blank lines, placeholder weeks, a process measure that is not an alliance scale). Files
stay small (at most a few hundred rows) and are written by the tests; none is committed.

:func:`run_design` runs a design in-process through the same package functions, in the same
order, as the workflow's scripts: ingest -> quality gate -> score -> episodes (and their
publication) -> derive -> every planned fit
(:func:`analysis.models.mixed.fitting.fit_planned_model`) -> the engine cross-checks -> the combined
model tables -> the data flow -> the figures of the therapists -> the reviewer report
(:func:`analysis.report.render.render_report`). Each stage file is written with
:func:`analysis.io.write_table`, so the stage contracts are checked at every boundary, and the
report reads them back as the report rule does. The Snakemake pipeline itself runs once, on the
hardest design, in ``tests/test_designs.py``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.catalogue import path as catalogue_path
from analysis.dataflow import build_data_flow, publish_data_flow
from analysis.derive import derive_analysis_frame
from analysis.episodes import publish_episodes, run_episodes
from analysis.errors import DataError
from analysis.figures.jobs import make_figure
from analysis.figures.table import FAMILY
from analysis.ingest import run_ingest
from analysis.instruments import registry_from_params
from analysis.io import read_table, write_json, write_table
from analysis.models.mixed.fitting import fit_planned_model
from analysis.models.mixed.specs import ResolvedFit
from analysis.models.mixed.tables import combine_fits
from analysis.privacy import StudyTotals
from analysis.provenance import collect_provenance
from analysis.quality import check_quality, summarise_quality
from analysis.report.inputs import read_report_tables
from analysis.report.render import render_report
from analysis.scoring import merge_flags, prorating_flags, score_administrations
from analysis.settings import (
    DeriveSettings,
    EpisodeSettings,
    FigureSettings,
    QualitySettings,
    ScoreSettings,
)
from analysis.simulate import simulate_study
from analysis.settings import ReportSettings
from analysis.study import Study, ingest_settings, score_settings, study_from_dict

KEY = "design-corpus-test-key"
WAI = [f"wai_{i}" for i in range(1, 13)]
PHQ = [f"phq9_{i}" for i in range(1, 10)]
GAD = [f"gad7_{i}" for i in range(1, 8)]

#: Models of the in-process runs: the primary DPM, the conventional M2, the therapist ICC R3
#: and the early-alliance M4 (the ones whose specification depends on therapists), and R1.
CORPUS_MODELS = ["M2", "DPM", "M4", "R1", "R3"]
NO_SENSITIVITY = {"detrended": False, "completers": False, "ml": False, "subscales": False,
                  "free_paths": False}
#: The sections every design's reduced config sets (the minimal config sets none of them).
REDUCED = {
    "models": {"run": CORPUS_MODELS, "sensitivity": NO_SENSITIVITY,
               "riclpm": {"run": False}},
    "multiverse": {"run": False},
}


# ---------------------------------------------------------------------------------------------
# exports


def simulated(n_clients: int = 60, n_therapists: int = 8, seed: int = 3,
              max_sessions: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sessions (WAI-SR items) and outcomes (PHQ-9, GAD-7 items) of a small simulated service,
    without identifying columns or invalid rows."""
    study = simulate_study(n_clients, n_therapists, seed, max_sessions=max_sessions,
                           identifiers=False, invalid_rows=False)
    return study.sessions.copy(), study.outcomes.copy()


def sessions_columns(therapist: bool = True, date: bool = True) -> dict[str, str]:
    columns = {"client": "client_id", "session": "session"}
    if therapist:
        columns["therapist"] = "therapist_id"
    if date:
        columns["date"] = "session_date"
    return columns


def csv_inputs(therapist: bool = True, date: bool = True, **sessions_extra: Any) -> dict:
    """The two CSV tables of the simulator, as a config's ``inputs``."""
    return {
        "sessions": {"path": "data/raw/sessions.csv", "kind": "sessions",
                     "columns": sessions_columns(therapist, date),
                     "instruments": {"wai_sr": {"items": "wai_{i}"}}, **sessions_extra},
        "outcomes": {"path": "data/raw/outcomes.csv",
                     "columns": {"client": "client_id", "session": "session"},
                     "instruments": {"phq9": {"items": "phq9_{i}"}}},
    }


def write_csvs(raw: Path, sessions: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    sessions.to_csv(raw / "sessions.csv", index=False)
    outcomes.to_csv(raw / "outcomes.csv", index=False)


def one_table(sessions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One weekly export: a row per client and session with the process and outcome items."""
    return sessions.merge(outcomes.drop(columns=["date"]), on=["client_id", "session"],
                          how="left")


# ---------------------------------------------------------------------------------------------
# the designs


@dataclass(frozen=True)
class Design:
    """One study design: its config, how its exports are written, and what it must show.

    ``therapists`` is what the models may estimate: ``"none"`` (no therapist term by design,
    with ``design_reason`` the reason the run states), or ``"estimated"``. ``first_wave`` is the
    session number of the dynamic panel model's first wave. ``dates``: whether the exports carry
    dates. ``phq9``: whether the PHQ-9 is among the outcomes (its item-9 sentence).
    """

    name: str
    config: dict
    write: Callable[[Path], None]
    therapists: str = "estimated"
    design_reason: str = ""
    first_wave: int = 1
    dates: bool = True
    phq9: bool = True
    outcome: str = "phq9"


def _config(inputs: dict, alliance: str = "wai_sr", outcomes: tuple[str, ...] = ("phq9",),
            reduced: bool = True, **sections: Any) -> dict:
    config = {"study": {"name": "Design corpus", "seed": 5}, "inputs": inputs,
              "analysis": {"alliance": alliance, "outcomes": list(outcomes)}, **sections}
    if reduced:
        for key, value in REDUCED.items():
            config.setdefault(key, value)
    return config


NO_THERAPIST_IDS = "the data have no therapist ids"
TOO_FEW = "the data have fewer than 5 therapists (a therapist variance needs at least 5)"


def _no_therapist_column(raw: Path) -> None:
    sessions, outcomes = simulated(seed=11)
    write_csvs(raw, sessions.drop(columns=["therapist_id"]), outcomes)


def _one_therapist(raw: Path) -> None:
    write_csvs(raw, *simulated(n_therapists=1, seed=12))


def _three_therapists(raw: Path) -> None:
    write_csvs(raw, *simulated(n_therapists=3, seed=13))


def _shifted(offsets: Callable[[pd.Series], pd.Series], seed: int) -> Callable[[Path], None]:
    def write(raw: Path) -> None:
        sessions, outcomes = simulated(seed=seed)
        for frame in (sessions, outcomes):
            frame["session"] = frame["session"] + offsets(frame["client_id"])
        write_csvs(raw, sessions, outcomes)
    return write


def _client_offset(ids: pd.Series) -> pd.Series:
    # 0, 1, 2 or 3 sessions before the first questionnaire, by client (assessment sessions)
    codes = ids.str.extract(r"(\d+)$")[0].astype(int)
    return codes % 4


def _spss(raw: Path) -> None:
    """An SPSS export of one weekly table, sessions numbered from 3, no therapist column: -99
    declared user-missing in the items, 999 declared missing in the PHQ-9 items."""
    import pyreadstat

    sessions, outcomes = simulated(seed=21)
    table = one_table(sessions.drop(columns=["therapist_id"]), outcomes)
    table["session"] = table["session"] + 2
    table["session_date"] = pd.to_datetime(table["session_date"])
    rng = np.random.default_rng(21)
    for column, code in (("wai_3", -99), ("wai_7", -99), ("phq9_2", 999)):
        hit = rng.random(len(table)) < 0.05
        table.loc[hit, column] = code
    table = table.drop(columns=GAD)
    raw.mkdir(parents=True, exist_ok=True)
    missing = {column: [-99] for column in WAI}
    missing.update({column: [999] for column in PHQ})
    pyreadstat.write_sav(table, str(raw / "weekly.sav"), missing_ranges=missing)


def _stata(raw: Path) -> None:
    import pyreadstat

    sessions, outcomes = simulated(seed=22)
    table = one_table(sessions, outcomes).drop(columns=GAD)
    table["session_date"] = pd.to_datetime(table["session_date"])
    raw.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_dta(table, str(raw / "weekly.dta"))


CODED_CELLS = 40  # cells replaced by a missing-value code in the CSV design


def _csv_codes(raw: Path) -> None:
    sessions, outcomes = simulated(seed=23)
    table = one_table(sessions, outcomes).drop(columns=GAD).astype(object)
    rng = np.random.default_rng(23)
    cells = rng.choice(len(table) * len(WAI), CODED_CELLS, replace=False)
    for position, code in zip(cells, ["#NULL!", "-99", "999"] * CODED_CELLS):
        table.iat[position // len(WAI), table.columns.get_loc(WAI[position % len(WAI)])] = code
    raw.mkdir(parents=True, exist_ok=True)
    table.to_csv(raw / "weekly.csv", index=False)


BLANK_LINES, PLACEHOLDERS = 37, 12


def _blank_and_placeholder(raw: Path) -> None:
    """A weekly CSV with empty placeholder weeks (ids and a week number, no measure), some of
    them beside a filled row of the same week, and blank trailing lines."""
    sessions, outcomes = simulated(seed=24)
    table = one_table(sessions, outcomes).drop(columns=GAD)
    measures = WAI + PHQ
    last = table.groupby("client_id")["session"].max()
    extra = last.head(PLACEHOLDERS // 2).reset_index()
    final = table.merge(extra, on=["client_id", "session"])[["client_id", "session",
                                                              "session_date"]]
    # a week booked after the last one (dated a week later), with nothing recorded
    after = final.assign(session=final["session"] + 1, session_date=(
        pd.to_datetime(final["session_date"]) + pd.Timedelta(days=7)).dt.strftime("%Y-%m-%d"))
    # an empty row beside the filled row of the same week: not a conflicting duplicate
    beside = table.drop_duplicates("client_id").head(PLACEHOLDERS // 2)[
        ["client_id", "session", "session_date"]]
    therapist = table.drop_duplicates("client_id").set_index("client_id")["therapist_id"]
    placeholders = pd.concat([after, beside], ignore_index=True)
    placeholders["therapist_id"] = placeholders["client_id"].map(therapist)
    for column in measures:
        placeholders[column] = np.nan
    table = pd.concat([table, placeholders[table.columns]], ignore_index=True)
    raw.mkdir(parents=True, exist_ok=True)
    text = table.to_csv(index=False) + ("," * (len(table.columns) - 1) + "\n") * BLANK_LINES
    (raw / "weekly.csv").write_text(text, encoding="utf-8")


PROCESS = {"label": "PCIT coding", "construct": "parenting process", "n_items": 12,
           "item_min": 1, "item_max": 5, "scoring": "mean", "direction": "higher_better"}
BEHAVIOUR = {"label": "ECBI Intensity (child disruptive behaviour)",
             "construct": "disruptive behaviour", "n_items": 9, "item_min": 0, "item_max": 3,
             "scoring": "sum", "direction": "higher_worse", "reliable_change": 5}


def _custom_process(raw: Path) -> None:
    sessions, outcomes = simulated(seed=25)
    table = one_table(sessions, outcomes).drop(columns=GAD)
    table = table.rename(columns={f"wai_{i}": f"dpics_{i}" for i in range(1, 13)}
                         | {f"phq9_{i}": f"ecbi_{i}" for i in range(1, 10)})
    raw.mkdir(parents=True, exist_ok=True)
    table.to_csv(raw / "pcit.csv", index=False)


def _weekly_input(path: str, fmt: str | None = None, therapist: bool = True,
                  instruments: dict | None = None, **extra: Any) -> dict:
    table = {"path": path, "kind": "sessions", "columns": sessions_columns(therapist),
             "instruments": instruments or {"wai_sr": {"items": "wai_{i}"},
                                            "phq9": {"items": "phq9_{i}"}}, **extra}
    if fmt:
        table["format"] = fmt
    return {"weekly": table}


def designs() -> list[Design]:
    """The corpus, in the order the tests run it."""
    return [
        Design("no_therapist_column", _config(csv_inputs(therapist=False)),
               _no_therapist_column, therapists="none", design_reason=NO_THERAPIST_IDS),
        Design("one_therapist", _config(csv_inputs()), _one_therapist, therapists="none",
               design_reason=TOO_FEW),
        Design("three_therapists", _config(csv_inputs()), _three_therapists, therapists="none",
               design_reason=TOO_FEW),
        Design("eight_therapists", _config(csv_inputs()),
               lambda raw: write_csvs(raw, *simulated(seed=14))),
        Design("sessions_from_3",
               _config(csv_inputs(), models={**REDUCED["models"], "panel": {"origin": "study"}}),
               _shifted(lambda ids: pd.Series(2, index=ids.index), seed=15), first_wave=3),
        Design("per_client_offsets", _config(csv_inputs()), _shifted(_client_offset, seed=16)),
        Design("spss_user_missing", _config(_weekly_input("data/raw/weekly.sav", "spss",
                                                          therapist=False)),
               _spss, therapists="none", design_reason=NO_THERAPIST_IDS, first_wave=3),
        Design("stata", _config(_weekly_input("data/raw/weekly.dta", "stata")), _stata),
        Design("csv_missing_codes",
               _config(_weekly_input("data/raw/weekly.csv",
                                     missing_values=["#NULL!", -99, 999])),
               _csv_codes),
        Design("blank_lines_and_placeholders",
               _config(_weekly_input("data/raw/weekly.csv")), _blank_and_placeholder),
        Design("custom_process_measure",
               _config(_weekly_input("data/raw/pcit.csv", therapist=True, instruments={
                   "pcit": {"items": "dpics_{i}"}, "ecbi": {"items": "ecbi_{i}"}}),
                   alliance="pcit", outcomes=("ecbi",),
                   instruments={"pcit": PROCESS, "ecbi": BEHAVIOUR}),
               _custom_process, phq9=False, outcome="ecbi"),
        # only inputs and analysis: every model and sensitivity analysis of the defaults
        # (12 sessions, so that the completers analysis has enough clients)
        Design("minimal_config", {"inputs": csv_inputs(date=False),
                                  "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]}},
               lambda raw: write_csvs(raw, *simulated(seed=17, max_sessions=12)), dates=False),
    ]


# ---------------------------------------------------------------------------------------------
# running a design


@dataclass
class DesignRun:
    """What a design's run produced: the study, every table by catalogue name, the fit results,
    the therapist figures, the report and the fits that failed."""

    design: Design
    root: Path
    study: Study
    tables: dict[str, pd.DataFrame]
    fits: list[dict[str, Any]]
    figures: dict[str, Any]
    report_html: str
    #: fits that stopped with a DataError (the pipeline would have stopped), by fit label
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The report's visible text, whitespace collapsed."""
        body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", self.report_html, flags=re.S)
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()

    def section(self, name: str) -> str:
        """The visible text of one report section (``<section id="name">``)."""
        match = re.search(rf'<section id="{name}">(.*?)</section>', self.report_html, flags=re.S)
        assert match, f"no section {name}"
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))))

    def fit(self, model: str, outcome: str | None = None) -> dict[str, Any]:
        outcome = outcome or self.design.outcome
        return next(fit for fit in self.fits if fit["model"] == model
                    and fit["outcome"] == outcome and fit["analysis"] == "primary")


def _write(root: Path, name: str, table: pd.DataFrame) -> pd.DataFrame:
    write_table(table, root / catalogue_path(name))
    return read_table(root / catalogue_path(name))


def run_design(design: Design, root: Path) -> DesignRun:
    """Write the design's exports under ``root/data/raw`` and run it to the report (in-process,
    stage by stage as the workflow's scripts do; see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    design.write(root / "data" / "raw")
    study = study_from_dict(design.config)
    tables: dict[str, pd.DataFrame] = {}

    # ingest and the quality gate (workflow/scripts/ingest.py, quality_gate.py)
    ingested = run_ingest(ingest_settings(study), root=root, key=KEY)
    names = {"flow": "ingest_flow", "flags": "ingest_flags"}
    for name, table in ingested.items():
        tables[names.get(name, name)] = _write(root, names.get(name, name), table)
    quality = QualitySettings.from_params(study.quality.params())
    tables["data_quality"] = _write(root, "data_quality", summarise_quality(
        tables["ingest_flow"], tables["rejects"], quality))
    check_quality(tables["data_quality"], quality)

    # score, episodes, derive (score.py, episodes.py, publish_episodes.py, derive.py)
    registry = ScoreSettings.from_params(score_settings(study).params()).registry()
    scores = score_administrations(tables["administrations"], registry)
    tables["scores"] = _write(root, "scores", scores)
    tables["flags"] = _write(root, "flags", merge_flags(
        tables["ingest_flags"], prorating_flags(tables["administrations"], scores)))
    episodes = run_episodes(tables["scores"], tables["sessions"], tables["administrations"],
                            EpisodeSettings.from_params(study.episodes.params()))
    names = {"combined": "episodes_combined", "parameters": "jacobson_truax_parameters"}
    for name, table in episodes.items():
        tables[names.get(name, name)] = _write(root, names.get(name, name), table)
    published = publish_episodes(tables["episodes"], tables["episodes_combined"],
                                 tables["jacobson_truax_parameters"],
                                 min_cell=study.privacy.min_cell_count)
    for name, table in published.items():
        name = {"summary": "episodes_summary"}.get(name, name)
        tables[name] = _write(root, name, table)
    tables["derived"] = _write(root, "derived", derive_analysis_frame(
        tables["scores"], tables["sessions"], DeriveSettings.from_params(study.derive.params())))

    # every planned fit (fit_model.py), then the combined tables (combine_models.py)
    fits, errors = [], {}
    for planned in study.fits:
        settings = study.fit_settings(planned.outcome, planned.model, planned.analysis)
        fit = ResolvedFit.from_dict(settings["fit"])
        try:
            result = fit_planned_model(tables["derived"], fit,
                                       registry_from_params(settings["instruments"]),
                                       episodes=tables["episodes"],
                                       administrations=tables["administrations"])
        except DataError as error:
            # the pipeline would stop here with this message; the run goes on without the fit,
            # so that the tests can say which fit failed and still check everything else
            errors[fit.label] = str(error)
            continue
        write_json(result, root / "results" / "fits" / fit.outcome / fit.model
                   / f"{fit.analysis}.json")
        fits.append(result)
    # the engine cross-checks of the primary mixed models (cross_check_model.py's steps)
    checks = [_cross_check(tables["derived"], fit, study) for fit in fits
              if (fit["outcome"], fit["model"]) in set(study.cross_checks)
              and fit["analysis"] == "primary"]
    combined = combine_fits(fits, checks, min_cell=study.privacy.min_cell_count,
                            totals=StudyTotals.from_tables(tables["sessions"],
                                                           tables["episodes"]))
    for name, table in combined.items():
        tables[name] = _write(root, name, table)

    # the data flow (data_flow.py)
    flow = build_data_flow(tables["ingest_flow"], tables["sessions"], tables["derived"],
                           tables["episodes"], tables["fit_counts"], scores=tables["scores"])
    tables["data_flow_full"] = _write(root, "data_flow_full", flow)
    tables["data_flow"] = _write(root, "data_flow", publish_data_flow(
        flow, study.privacy.min_cell_count))

    # the engagement analyses switched on (engagement.smk: dropout_episodes.py, fit_dropout.py,
    # fit_therapist_patient.py, fit_sudden_gains.py and their combine scripts)
    tables.update(_engagement(root, study, tables))

    # the therapist figures (figure.py; drawn, not saved: saving is the same for every figure)
    figure_settings = FigureSettings.from_params(study.figures.params())
    figures = {}
    for fit in fits:
        if fit["model"] == FAMILY["therapist_caterpillar"].model and fit["analysis"] == "primary":
            figures[f"therapist_caterpillar_{fit['outcome']}"] = make_figure(
                "therapist_caterpillar", {"fit": fit}, figure_settings, fit["outcome"])

    # the reviewer report (build_report.py), from the files as written
    report_tables = ["models", "random_effects", "model_fit", "engine_agreement", "rm_corr",
                     "reliability", "therapist_icc", "episodes_summary", "jacobson_truax",
                     "data_flow", "data_quality", "sessions", "scores",
                     *[name for name in ENGAGEMENT_TABLES if name in tables]]
    paths = {name: root / catalogue_path(name) for name in report_tables}
    settings = ReportSettings.from_params(study.report.params())
    provenance = collect_provenance(root, study.config_sha256, settings.seed,
                                    sorted((root / "data" / "raw").iterdir()),
                                    [paths[name] for name in report_tables[:11]])
    page = render_report(read_report_tables(paths), settings, {}, provenance)
    return DesignRun(design, root, study, tables, fits, figures, page, errors)


#: The engagement tables the report reads.
ENGAGEMENT_TABLES = ("dropout", "attendance", "therapist_patient_alliance",
                     "sudden_gains_summary")


def _engagement(root: Path, study: Study, tables: dict[str, pd.DataFrame]
                ) -> dict[str, pd.DataFrame]:
    """The engagement stages of every analysis switched on, as their scripts run them."""
    from analysis.engagement.dropout_stage import (combine_dropout, dropout_stage,
                                                   fit_dropout_outcome)
    from analysis.engagement.sudden_gains_stage import combine_sudden_gains, sudden_gains_outcome
    from analysis.engagement.therapist_patient_stage import (combine_therapist_patient,
                                                             fit_therapist_patient_outcome)
    from analysis.settings import DropoutHazardSettings, DropoutSettings, SuddenGainSettings

    engagement, min_cell, out = study.engagement, study.privacy.min_cell_count, {}
    derived = tables["derived"]
    if engagement.dropout is not None:
        made = dropout_stage(tables["sessions"], tables["offered_sessions"], derived,
                             DropoutSettings.from_params(engagement.dropout.params()))
        hazard = DropoutHazardSettings.from_params(engagement.dropout_hazard.params())
        fits = [fit_dropout_outcome(derived, made["dropout_episodes"], outcome, hazard)
                for outcome in study.outcome_keys]
        made.update(combine_dropout(fits, made["dropout_episodes"], min_cell,
                                    engagement.dropout.status_recorded))
        out.update(made)
    if engagement.therapist_patient:
        out.update(combine_therapist_patient(
            [fit_therapist_patient_outcome(derived, outcome) for outcome in study.outcome_keys],
            min_cell))
    if engagement.sudden_gains is not None:
        gains = SuddenGainSettings.from_params(engagement.sudden_gains.params())
        out.update(combine_sudden_gains(
            [sudden_gains_outcome(derived, tables["jacobson_truax_parameters"], outcome, gains)
             for outcome in study.outcome_keys], min_cell))
    return {name: _write(root, name, table) for name, table in out.items()}


def _cross_check(derived: pd.DataFrame, fit: dict[str, Any], study: Study) -> dict[str, Any]:
    """One cross-check, as workflow/scripts/cross_check_model.py makes it."""
    from dataclasses import replace

    from analysis.models.mixed.crosscheck import cross_check_fit
    from analysis.models.mixed.design import without_group
    from analysis.models.mixed.fitting import select_model_rows
    from analysis.models.mixed.specs import THERAPIST

    resolved = ResolvedFit.from_dict(fit["spec"])
    info = fit.get("fit") or {}
    if info.get("status") == "not_estimated":
        return {"outcome": fit["outcome"], "model": fit["model"], "analysis": fit["analysis"],
                "engine": "statsmodels", "formula": info.get("formula"), "expressible": False,
                "reason": f"not estimated: {info.get('reason')}", "terms": []}
    if info.get("design"):
        resolved = replace(resolved, formula=without_group(resolved.formula or "", THERAPIST))
    rows, _ = select_model_rows(derived, resolved)
    settings = study.cross_check_settings()
    return cross_check_fit(rows, fit, reml=resolved.reml,
                           tolerance=settings.agreement_tolerance,
                           max_clients=settings.max_clients)


def figure_text(figure: Any) -> str:
    """Every text drawn on a matplotlib figure (titles, labels, message panels), joined."""
    from matplotlib.text import Text

    return " ".join(artist.get_text() for artist in figure.findobj(Text) if artist.get_text())
