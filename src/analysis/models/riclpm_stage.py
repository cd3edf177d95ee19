"""The RI-CLPM check as a pipeline stage: one job per outcome, then the combined tables.

:mod:`analysis.models.riclpm` fits the random-intercept cross-lagged panel model (Hamaker,
Kuiper & Grasman 2015) to a wide panel. This module runs it for one outcome of the pipeline
(:func:`fit_riclpm_outcome`): the panel of the first ``models.riclpm.sessions`` sessions is
built from ``derived.parquet``, the model is fitted with the lagged paths constrained equal over
waves and, as a sensitivity analysis (``models.riclpm.free_paths_sensitivity``), free per wave.

When the data cannot identify the model (fewer than 3 waves with data, fewer clients with two or
more waves than the model has parameters, a wave without variance, two consecutive waves no
client has both of), the job does not stop the run: it writes a result with ``status``
``not_identified`` and the reason, which the report shows. Those are the
:class:`~analysis.errors.DataError` s that :func:`~analysis.models.riclpm.fit_riclpm` raises
about the panel. A malformed derived frame (missing columns, duplicate sessions, ...) still
stops the job (its DataError comes from building the panel), and any other exception is a bug
and fails as one.

:func:`combine_riclpm` turns the outcomes' results into ``riclpm.csv`` (every parameter of
every fitted version with estimate, SE, z, p, 95% CI and standardised estimate) and
``riclpm_fit.csv`` (fit indices, sizes, convergence and the reason when not identified).
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any, Iterable, Mapping

import pandas as pd

from analysis.errors import DataError
from analysis.models.records import json_ready, records
from analysis.settings import RiclpmSettings

log = logging.getLogger(__name__)

#: The fitted versions: lagged paths equal over waves (the model), free per wave (sensitivity).
VERSIONS = {"constrained": True, "free": False}
STATUS_FITTED = "fitted"
STATUS_NOT_IDENTIFIED = "not_identified"
#: Columns of ``riclpm_fit.csv``.
FIT_COLUMNS = [
    "outcome", "version", "status", "reason", "n_clients", "n_waves", "n_parameters", "chisq",
    "df", "pvalue", "cfi", "tli", "rmsea", "srmr", "aic", "bic", "loglik", "converged",
    "admissible", "max_abs_gradient",
]
#: The lagged paths, as labelled in the parameter table, and their short names.
LAGGED_PATHS = {
    "cross-lagged alliance -> symptoms": "alliance_to_symptoms",
    "cross-lagged symptoms -> alliance": "symptoms_to_alliance",
    "autoregressive alliance": "alliance_carry_over",
    "autoregressive symptoms": "symptoms_carry_over",
}


def fit_riclpm_outcome(derived: pd.DataFrame, outcome: str, settings: RiclpmSettings
                       ) -> dict[str, Any]:
    """Fit the RI-CLPM of one outcome (constrained, and free when asked).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (``outcome, client_id, session, alliance_score, symptom_score``).
    outcome : str
        The outcome instrument.
    settings : RiclpmSettings
        ``sessions`` (waves = sessions 1..K) and ``free_paths_sensitivity``.

    Returns
    -------
    dict
        JSON-able: ``outcome``, ``sessions``, ``counts`` (the panel's counts, see
        :func:`~analysis.models.riclpm.panel_from_derived`) and ``versions``, one entry per
        version with ``version``, ``status`` (``fitted`` or ``not_identified``), ``reason``,
        ``paths`` (records of the parameter table), ``fit`` and ``convergence`` (see
        :func:`~analysis.models.riclpm.fit_riclpm`). Wall times are left out, so reruns give
        identical files.

    Raises
    ------
    DataError
        The derived frame is malformed (missing columns, no rows for the outcome, two rows for
        one client and session): the panel cannot be built.

    Examples
    --------
    >>> from analysis.simulate_panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(300, 4, seed=3, output="derived")
    >>> result = fit_riclpm_outcome(derived, "phq9", RiclpmSettings(sessions=4))
    >>> [(v["version"], v["status"]) for v in result["versions"]]
    [('constrained', 'fitted'), ('free', 'fitted')]
    >>> small = fit_riclpm_outcome(derived[derived["client_id"] < "c000020"], "phq9",
    ...                            RiclpmSettings(sessions=4))
    >>> small["versions"][0]["status"]
    'not_identified'
    """
    from analysis.models.riclpm import fit_riclpm, panel_from_derived

    panel, counts = panel_from_derived(derived, outcome, settings.sessions)
    versions = [name for name in VERSIONS
                if name == "constrained" or settings.free_paths_sensitivity]
    fitted = []
    for version in versions:
        entry: dict[str, Any] = {"version": version, "status": STATUS_FITTED, "reason": "",
                                 "paths": [], "fit": {}, "convergence": {}}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fit_riclpm(panel, settings.sessions, constrained=VERSIONS[version])
            for warning in caught:
                # semopy warns (sqrt of a negative variance) on an inadmissible solution, which
                # the result reports as admissible: False; keep the console quiet.
                log.info("RI-CLPM %s (%s): %s", outcome, version, warning.message)
        except DataError as error:
            # The panel was built, so the data are well formed: they cannot identify the model.
            reason = f"{error}"
            log.warning("RI-CLPM for %s (%s paths) not identified: %s", outcome, version, reason)
            entry.update(status=STATUS_NOT_IDENTIFIED, reason=reason)
        else:
            entry.update(paths=records(result["paths"]), fit=result["fit"],
                         convergence=result["convergence"])
            if not result["convergence"]["converged"]:
                log.warning("RI-CLPM for %s (%s paths) did not converge (largest gradient %.2g)",
                            outcome, version, result["convergence"]["max_abs_gradient"])
        fitted.append(entry)
    return json_ready({"outcome": outcome, "sessions": settings.sessions, "counts": counts,
                       "versions": fitted})


def combine_riclpm(results: Iterable[Mapping[str, Any]], min_cell: int = 10
                   ) -> dict[str, pd.DataFrame]:
    """``riclpm`` (parameters) and ``riclpm_fit`` (fit indices) over every outcome's result.

    Parameters
    ----------
    results : iterable of dict
        :func:`fit_riclpm_outcome`'s results, one per outcome (in outcome order).
    min_cell : int
        Counts of clients below this are published as ``"<min_cell"`` (``privacy``).

    Returns
    -------
    dict of str to DataFrame
        ``riclpm``: ``outcome, version`` and the columns of
        :data:`analysis.models.riclpm.PATH_COLUMNS` (``std_estimate`` is lavaan's std.all), one
        row per parameter of each fitted version. ``riclpm_fit``: :data:`FIT_COLUMNS`, one row
        per outcome and version, fitted or not.
    """
    from analysis.models.riclpm import PATH_COLUMNS
    from analysis.privacy import format_count

    path_rows, fit_rows = [], []
    for result in results:
        outcome = result["outcome"]
        counts = result.get("counts") or {}
        for entry in result["versions"]:
            for row in entry.get("paths") or []:
                path_rows.append({"outcome": outcome, "version": entry["version"],
                                  **{name: row.get(name) for name in PATH_COLUMNS}})
            fit = entry.get("fit") or {}
            convergence = entry.get("convergence") or {}
            n_clients = fit.get("n_clients", counts.get("clients_with_data"))
            fit_rows.append({
                "outcome": outcome, "version": entry["version"], "status": entry["status"],
                "reason": suppress_counts_in_text(entry.get("reason") or "", min_cell),
                "n_clients": None if n_clients is None else format_count(int(n_clients),
                                                                          min_cell),
                "n_waves": fit.get("n_waves", result.get("sessions")),
                **{name: fit.get(name) for name in ("n_parameters", "chisq", "df", "pvalue",
                                                    "cfi", "tli", "rmsea", "srmr", "aic", "bic",
                                                    "loglik")},
                "converged": convergence.get("converged"),
                "admissible": convergence.get("admissible"),
                "max_abs_gradient": convergence.get("max_abs_gradient"),
            })
    paths = pd.DataFrame(path_rows, columns=["outcome", "version", *PATH_COLUMNS])
    fits = pd.DataFrame(fit_rows, columns=FIT_COLUMNS)
    return {"riclpm": paths, "riclpm_fit": fits}


#: Where a message of :mod:`analysis.models.riclpm` states a count of people: "16 clients",
#: "1 client(s)", "3 waves: 2" (clients with 3 waves), "but 16 have them", "all 5 values".
_COUNT_PATTERNS = (
    re.compile(r"(?P<before>)(?P<count>\d+)(?P<after>\s+clients?\b|\s+client\(s\))"),
    re.compile(r"(?P<before>\bwaves?:\s*)(?P<count>\d+)(?P<after>)"),
    re.compile(r"(?P<before>\bbut\s+)(?P<count>\d+)(?P<after>\s+have\b)"),
    re.compile(r"(?P<before>\ball\s+)(?P<count>\d+)(?P<after>\s+values\b)"),
)


def suppress_counts_in_text(text: str, min_cell: int) -> str:
    """A message about the panel with its counts of people below ``min_cell`` shown as "<min_cell".

    The reason an RI-CLPM was not identified is published (``riclpm_fit.csv``, the report), and
    it counts clients; the privacy rule for published counts applies to it too.

    >>> suppress_counts_in_text("16 clients have data (3 waves: 2, 6 waves: 14); but 16 have "
    ...                         "them", 10)
    '16 clients have data (3 waves: <10, 6 waves: 14); but 16 have them'
    """
    from analysis.privacy import format_count

    for pattern in _COUNT_PATTERNS:
        text = pattern.sub(lambda match: match.group("before")
                           + format_count(int(match.group("count")), min_cell)
                           + match.group("after"), text)
    return text


def lagged_paths(paths: pd.DataFrame, outcome: str, version: str = "constrained"
                 ) -> pd.DataFrame:
    """The four lagged paths of one outcome and version, one row per path and wave.

    Parameters
    ----------
    paths : DataFrame
        ``riclpm.csv``.
    outcome, version : str
        Which fit.

    Returns
    -------
    DataFrame
        The rows whose ``label`` is a lagged path, with ``path`` (a short name from
        :data:`LAGGED_PATHS`), sorted by path and wave.
    """
    if paths.empty:
        return paths.assign(path=pd.Series(dtype=str))
    rows = paths.loc[(paths["outcome"] == outcome) & (paths["version"] == version)
                     & paths["label"].isin(list(LAGGED_PATHS))].copy()
    rows["path"] = rows["label"].map(LAGGED_PATHS)
    order = {name: position for position, name in enumerate(LAGGED_PATHS.values())}
    rows["_order"] = rows["path"].map(order)
    return rows.sort_values(["_order", "wave"], kind="stable").drop(columns="_order")


__all__ = [
    "FIT_COLUMNS",
    "suppress_counts_in_text",
    "LAGGED_PATHS",
    "VERSIONS",
    "combine_riclpm",
    "fit_riclpm_outcome",
    "lagged_paths",
]
