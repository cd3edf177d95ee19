"""Rendering: the report's sections, each from its own template, in one self-contained HTML page.

:data:`SECTIONS` lists the sections in page order; each has a template
(``templates/report/<id>.html.j2``) and a function that builds its context from the result
tables and the study (:class:`~analysis.report.view.ReportView`). A new section is one entry here
and one template. Everything is inline (images as base64 PNG, CSS in the page), so the file
opens offline and makes no requests; nothing depends on the clock, so the same inputs give the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2
from markupsafe import Markup

from analysis.io import atomic_path
from analysis.literature import META_ANALYTIC_CI, META_ANALYTIC_R, META_ANALYTIC_SOURCE
from analysis.presentation import model_title, name_process
from analysis.report import answer, methods, tables as apa
from analysis.report.formatting import (
    format_number,
    format_p,
    format_people,
    format_percent,
    format_r,
    Table,
    generic_table,
    in_outcome_order,
    plain_int,
    rows_of,
)
from analysis.report.inputs import FigureEntry, ReportTables
from analysis.report.engagement import (
    dropout_context,
    sudden_gains_context,
    therapist_patient_context,
)
from analysis.report.limitations import limitations
from analysis.report.power import power_context
from analysis.report.robustness import multiverse_context, riclpm_context
from analysis.report.view import ReportView
from analysis.settings import ReportSettings


@dataclass(frozen=True)
class Section:
    """One section of the report: its anchor id, its name in the navigation, its context."""

    id: str
    title: str
    build: Callable[[ReportTables, ReportView], dict[str, Any]]


def _answer(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"answers": [answer.outcome_answer(tables, outcome, view) for outcome in view.outcomes],
            "alpha": f"{view.settings.alpha:g}".removeprefix("0"),
            "stronger": answer.stronger_phrase(view)}


def _data(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    flow = tables.data_flow
    if not flow.empty and {"stage", "instrument", "reason"} <= set(flow.columns):
        # an instrument scored only from pre-scored totals was not "scored from every item"
        pre_scored = flow["instrument"].fillna("").astype(str).map(
            lambda key: bool(key) and not tables.item_level(key))
        relabel = ((flow["stage"].astype(str) == "scored") & pre_scored
                   & (flow["reason"].astype(str) == "scored from every item"))
        flow = flow.assign(reason=flow["reason"].where(~relabel, "pre-scored total, as given"))
    return {"data_flow": generic_table(
        flow, "Data flow: every input row and every person, stage by stage",
        {"stage": "Stage", "source": "Source", "instrument": "Instrument", "unit": "Unit",
         "reason": "Reason", "count": "Count"})}


def _methods(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"methods": methods.methods_context(tables, view)}


def _results(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    result_models = []
    for outcome in view.outcomes:
        fitted = (set(rows_of(tables.models, outcome=outcome, analysis="primary")["model"]
                      .astype(str)) if not tables.models.empty else set())
        for model in [model for model in view.models_run if model in fitted]:
            spec = view.specs[model]
            label = view.labels[outcome]
            title = name_process(model_title(model), view.process_label)
            result_models.append({
                "outcome": outcome,
                "outcome_label": label,
                "model": model,
                "title": title,
                "question": name_process(spec.question, view.process_label),
                "fixed": apa.fixed_effects_table(tables.models, outcome, model,
                                                 caption=f"{label}: {title}"),
                "random": apa.random_effects_table(tables.random_effects, outcome, model),
                "fit": apa.fit_summary(tables.models, tables.model_fit, outcome, model,
                                       view.min_cell, clients=tables.population(),
                                       therapists=tables.population("therapists")),
            })
    min_cell, clients = view.min_cell, tables.population()
    return {
        "result_models": result_models,
        "rm_corr": generic_table(
            in_outcome_order(tables.rm_corr, view.outcomes),
            f"Repeated-measures correlation of {view.process_label} and symptoms (within "
            "clients)",
            {"outcome": "Outcome", "method": "Version", "r": "r", "ci_low": "CI low",
             "ci_high": "CI high", "p": "p", "dof": "df", "n": "Clients"},
            {"outcome": view.name_of, "method": lambda m: str(m).replace("_", " "),
             "r": format_r, "ci_low": format_r, "ci_high": format_r, "p": format_p,
             "dof": plain_int, "n": lambda n: format_people(n, min_cell, clients)},
            note=f"Meta-analytic benchmark: r = {format_r(META_ANALYTIC_R)}, 95% CI "
                 f"{format_r(META_ANALYTIC_CI[0])}-{format_r(META_ANALYTIC_CI[1])} "
                 f"({META_ANALYTIC_SOURCE}), mostly between patients; these within-client "
                 "correlations answer a different question (see the answer above).",
            empty=_when_empty("R1", view)),
        "reliability": generic_table(
            tables.reliability, "Internal consistency at first administration (Cronbach's "
            "alpha)", {"instrument": "Instrument", "alpha": "α", "ci_low": "CI low",
                       "ci_high": "CI high", "n": "Clients"},
            {"instrument": view.name_of, "alpha": lambda v: format_number(v, 3),
             "ci_low": lambda v: format_number(v, 3), "ci_high": lambda v: format_number(v, 3),
             "n": lambda n: format_people(n, min_cell, clients)},
            empty=_when_empty("R2", view)),
    }


def _when_empty(model: str, view: ReportView) -> str:
    """What an empty table of ``model`` says: not requested, or not available."""
    if model not in view.models_run:
        return f"not estimated ({model} is not in models.run)"
    return Table.empty


def _sensitivity(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"sensitivity": apa.sensitivity_table(tables.models, view.outcomes, view.labels,
                                                 view.process_label)}


def _therapists(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    table = apa.icc_table(in_outcome_order(tables.therapist_icc, view.outcomes), view.min_cell,
                          view.name_of)
    design = apa.therapist_design(tables.model_fit)
    not_estimated = design["not_estimated"]
    table.empty = _when_empty("R3", view)
    if table.empty == Table.empty and not_estimated:
        # R3 planned, but the design has no therapist variance to estimate: say why
        reasons = list(dict.fromkeys(not_estimated.values()))
        table.empty = f"not estimated: {'; '.join(reasons)}"
    return {"therapist_icc": table,
            "therapist_design": apa.therapist_design_sentences(design),
            # outcomes whose R3 was not estimated while others' were (the table lists those)
            "therapist_not_estimated": [
                f"{view.name_of(outcome)}: not estimated: {reason}"
                for outcome, reason in not_estimated.items()] if table.rows else [],
            "therapist_figures": not not_estimated or bool(table.rows)}


def _episodes(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"episodes": generic_table(
        in_outcome_order(tables.episodes_summary, view.outcomes),
        f"Episode outcomes (counts of people below the threshold shown as "
        f"\"<{view.min_cell}\"; \"not defined\" where an outcome has no caseness cut-off or "
        "reliable-change threshold)",
        {"outcome": "Outcome", "measure": "Measure", "n_episodes": "Episodes",
         "n_with_outcome": "With outcome", "count": "Count", "rate": "Rate"},
        {"outcome": view.name_of,
         "measure": lambda m: str(m).replace("jt_", "Jacobson-Truax ").replace("_", " "),
         "rate": format_percent}),
        "jacobson_truax": methods.jacobson_truax_text(tables.jacobson_truax, view)}


def _diagnostics(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"engine_agreement": apa.engine_agreement_table(
        tables.engine_agreement, view.settings.models.agreement_tolerance)}


def _limitations(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {"limitations": limitations(tables, view)}


def _provenance(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    return {}


#: The report's sections in page order.
SECTIONS: tuple[Section, ...] = (
    Section("answer", "Answer", _answer),
    Section("data", "Data", _data),
    Section("methods", "Methods", _methods),
    Section("results", "Results", _results),
    Section("sensitivity", "Sensitivity", _sensitivity),
    Section("riclpm", "RI-CLPM", riclpm_context),
    Section("multiverse", "Multiverse", multiverse_context),
    Section("therapists", "Therapists", _therapists),
    Section("therapist_patient", "Therapist/patient", therapist_patient_context),
    Section("episodes", "Episodes", _episodes),
    Section("dropout", "Dropout", dropout_context),
    Section("sudden_gains", "Sudden gains", sudden_gains_context),
    Section("power", "Power", power_context),
    Section("diagnostics", "Diagnostics", _diagnostics),
    Section("limitations", "Limitations", _limitations),
    Section("provenance", "Provenance", _provenance),
)


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def shared_context(view: ReportView, figures: Mapping[str, FigureEntry],
                   provenance: Mapping[str, Any]) -> dict[str, Any]:
    """What every section's template reads besides its own context (the manuscript's methods
    document renders the methods template with it too)."""
    return {"figures": figures, "outcomes": view.outcomes, "labels": view.labels,
            "alliance": view.alliance, "process": view.process_label,
            "name_process": lambda text: name_process(text, view.process_label),
            "stronger_process": view.stronger_process, "min_cell": view.min_cell,
            "provenance": provenance}


def render_report(tables: ReportTables, settings: ReportSettings,
                  figures: Mapping[str, FigureEntry], provenance: Mapping[str, Any]) -> str:
    """The reviewer report as one HTML document.

    Parameters
    ----------
    tables : ReportTables
        From :func:`analysis.report.inputs.read_report_tables`.
    settings : ReportSettings
        What the report states about the study (the reviewer_report rule's params).
    figures : mapping
        From :func:`analysis.report.inputs.figure_entries`; an absent figure is not shown.
    provenance : mapping
        From :func:`analysis.provenance.collect_provenance`.
    """
    view = ReportView(settings)
    env = environment()
    shared = shared_context(view, figures, provenance)
    sections = [Markup(env.get_template(f"report/{section.id}.html.j2").render(
        **shared, **section.build(tables, view))) for section in SECTIONS]
    return env.get_template("report/page.html.j2").render(
        **shared, study=settings.title, sections=sections,
        navigation=[(section.id, section.title) for section in SECTIONS])


def write_report(html: str, path: str | Path) -> None:
    """Write the report atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
