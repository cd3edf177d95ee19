"""The report's section on planning the next study: power from this study's components.

From ``power.csv`` and ``power_parameters.csv`` (:mod:`analysis.power`): what was simulated and
from what, one sentence per design and true effect ("With 30 therapists and 10 clients each (300
clients), 12 sessions and dropout as observed (14% per session), the power of the dynamic panel
model to detect b = -1.58 (this study's estimate) is .84 (95% CI .77-.89) ..."), the smallest
design of the grid that reaches .80 for the primary test, the power table, the power curve and
the generating parameters. Both tables hold designs and aggregates of simulated studies only: no
count of this study's people.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.report.formatting import Table, format_number, generic_table, plain_int
from analysis.report.inputs import ReportTables
from analysis.report.view import ReportView

#: The power a study is usually planned for.
TARGET_POWER = 0.80
ESTIMATOR_NAMES = {"DPM": "the dynamic panel model (primary)", "M2": "the conventional M2"}
EFFECT_NAMES = {"estimate": "this study's estimate", "smallest_effect": "the smallest effect of "
                "interest"}
NOT_RUN = ("Not run in this configuration (power.run is false): `make power` simulates the next "
           "study's power, and power.run: true adds it to this report.")


def format_share(value: Any) -> str:
    """A power or its CI bound in APA style: two decimals, no leading zero (".84", "1.00")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return format_number(None)
    if number != number:  # NaN
        return format_number(None)
    return f"{number:.2f}".removeprefix("0")


def _dropout_words(row: dict[str, Any]) -> str:
    hazard = 100 * float(row["dropout_hazard"])
    if bool(row["dropout_observed"]):
        return f"dropout as observed in this study ({hazard:.0f}% per session)"
    return f"dropout of {hazard:.0f}% per session"


def design_words(row: dict[str, Any]) -> str:
    """"30 therapists and 10 clients each (300 clients), 12 sessions and dropout ..."."""
    return (f"{int(row['design_therapists'])} therapists and "
            f"{int(row['design_clients_per_therapist'])} clients each "
            f"({int(row['design_clients'])} clients), {int(row['design_sessions'])} sessions and "
            f"{_dropout_words(row)}")


def _power_words(row: dict[str, Any]) -> str:
    return (f"{format_share(row['power'])} (95% CI {format_share(row['ci_low'])}-"
            f"{format_share(row['ci_high'])})")


def power_sentences(power: pd.DataFrame, view: ReportView) -> list[str]:
    """One sentence per outcome, design and true effect, the primary's power and M2's."""
    sentences = []
    if power.empty:
        return sentences
    keys = ["outcome", "design", "effect_kind"]
    for (outcome, _design, effect_kind), rows in power.groupby(keys, sort=False):
        by_estimator = {str(row["estimator"]): row for row in rows.to_dict("records")}
        primary = by_estimator.get("DPM")
        if primary is None:
            continue
        effect = f"b = {format_number(primary['effect'], 2)}"
        sentence = (f"{view.name_of(outcome)}: with {design_words(primary)}, the power of "
                    f"{ESTIMATOR_NAMES['DPM']} to detect {effect} "
                    f"({EFFECT_NAMES.get(str(effect_kind), effect_kind)}) is "
                    f"{_power_words(primary)}")
        conventional = by_estimator.get("M2")
        if conventional is not None:
            sentence += f"; that of {ESTIMATOR_NAMES['M2']} is {_power_words(conventional)}"
        sentence += f" ({int(primary['n_sims'])} simulated studies)."
        sentences.append(sentence)
    return sentences


def smallest_adequate_designs(power: pd.DataFrame, view: ReportView) -> list[str]:
    """Per outcome and true effect: the smallest design of the grid (fewest clients, then fewest
    sessions) whose primary test reaches power .80, or that none does."""
    sentences = []
    primary = power.loc[power["estimator"].astype(str) == "DPM"] if not power.empty else power
    if primary.empty:
        return sentences
    for (outcome, effect_kind), rows in primary.groupby(["outcome", "effect_kind"], sort=False):
        effect = (f"b = {format_number(rows['effect'].iloc[0], 2)} "
                  f"({EFFECT_NAMES.get(str(effect_kind), effect_kind)})")
        enough = rows.loc[rows["power"].astype(float) >= TARGET_POWER].sort_values(
            ["design_clients", "design_sessions"], kind="stable")
        if enough.empty:
            best = rows.sort_values("power", ascending=False, kind="stable").iloc[0].to_dict()
            sentences.append(
                f"{view.name_of(outcome)}, {effect}: no design of the grid reaches power "
                f"{format_share(TARGET_POWER)} for the primary test; the largest power is "
                f"{_power_words(best)}, with {design_words(best)}. Larger designs go in "
                "power.grid.")
            continue
        row = enough.iloc[0].to_dict()
        sentences.append(
            f"{view.name_of(outcome)}, {effect}: the smallest design of the grid with power of "
            f"at least {format_share(TARGET_POWER)} for the primary test has {design_words(row)} "
            f"(power {_power_words(row)}; whether the whole CI clears "
            f"{format_share(TARGET_POWER)} says whether the simulations settle it).")
    return sentences


def _power_table(power: pd.DataFrame, view: ReportView) -> Table:
    return generic_table(
        power, "Power of the next study by design, true effect and estimator (share of "
        "simulated studies with p < .05; Wilson 95% Monte-Carlo CI)",
        {"outcome": "Outcome", "design_therapists": "Therapists",
         "design_clients_per_therapist": "Clients each", "design_sessions": "Sessions",
         "dropout_hazard": "Dropout per session", "effect_kind": "True effect",
         "effect": "b", "estimator": "Estimator", "n_sims": "Studies",
         "n_converged": "Fitted", "power": "Power", "ci_low": "CI low", "ci_high": "CI high",
         "mean_estimate": "Mean estimate", "mean_se": "Mean SE"},
        {"outcome": view.name_of, "design_therapists": plain_int,
         "design_clients_per_therapist": plain_int, "design_sessions": plain_int,
         "dropout_hazard": lambda value: format_number(value, 2),
         "effect_kind": lambda kind: EFFECT_NAMES.get(str(kind), str(kind)),
         "effect": lambda value: format_number(value, 2), "n_sims": plain_int,
         "n_converged": plain_int, "power": format_share, "ci_low": format_share,
         "ci_high": format_share, "mean_estimate": lambda value: format_number(value, 2),
         "mean_se": lambda value: format_number(value, 2)},
        note="A simulated study whose fit gave no estimate counts as not significant; Fitted: "
             "the fits that converged without a singular variance (M2's client variance is "
             "often at the boundary once the previous symptom score is in the model).")


def _parameter_table(parameters: pd.DataFrame, view: ReportView) -> Table:
    return generic_table(
        parameters, "What the simulated studies are drawn from (this study's fitted components)",
        {"outcome": "Outcome", "parameter": "Parameter", "value": "Value", "source": "Source"},
        {"outcome": view.name_of, "parameter": lambda name: str(name).replace("_", " "),
         "value": lambda value: format_number(value, 3)})


def power_context(tables: ReportTables, view: ReportView) -> dict[str, Any]:
    """The power section's context (template ``report/power.html.j2``)."""
    if tables.power.empty:
        return {"power_run": False, "power_off": NOT_RUN, "power_sentences": [],
                "power_adequate": [], "power_table": None, "power_parameters": None}
    return {
        "power_run": True, "power_off": "",
        "power_sentences": power_sentences(tables.power, view),
        "power_adequate": smallest_adequate_designs(tables.power, view),
        "power_table": _power_table(tables.power, view),
        "power_parameters": _parameter_table(tables.power_parameters, view),
    }
