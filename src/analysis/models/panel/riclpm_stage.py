"""The RI-CLPM check as a pipeline stage: one job per outcome, then the combined tables.

:mod:`analysis.models.panel.riclpm` fits the random-intercept cross-lagged panel model (Hamaker,
Kuiper & Grasman 2015) to a wide panel. This module runs it for one outcome of the pipeline
(:func:`fit_riclpm_outcome`): the waves are chosen from ``derived.parquet`` by
:func:`analysis.models.panel.waves.choose_waves` (``models.panel``; or the first
``models.riclpm.sessions`` sessions from the origin when that is set), the panel is built, and
the model is fitted with the lagged paths constrained equal over waves and, as a sensitivity
analysis (``models.riclpm.free_paths_sensitivity``), free per wave; innovation (co)variances
equal over waves or free (``models.riclpm.equal_innovations``).

The likelihood-ratio test of free against constrained paths (:func:`likelihood_ratio_test`) is
given only when both fits converged and are admissible; otherwise the result says why, since an
inadmissible solution (a negative variance, a correlation beyond +-1, a singular information
matrix) is not a maximum of a valid model and its likelihood is no basis for a comparison.

When the data cannot identify the model (fewer than 3 waves, fewer clients with two or more waves
than the model has parameters, a wave without data or variance, two consecutive waves no client
has both of), the job does not stop the run: it writes a result with ``status``
``not_identified`` and the reason, with what would help (:func:`identification_advice`: a lower
``models.panel.min_share``, the other time origin, a cap on the waves, equal innovations, ... as
computed from the data), which the report shows. A malformed derived frame (missing columns,
duplicate sessions, ...) still stops the job (its DataError comes from building the panel), and
any other exception is a bug and fails as one.

:func:`combine_riclpm` turns the outcomes' results into ``riclpm.csv`` (every parameter of
every fitted version with estimate, SE, z, p, 95% CI and wave-specific standardised estimate)
and ``riclpm_fit.csv`` (fit indices, sizes, the waves used, convergence and admissibility, the
likelihood-ratio test or why it was not given, and the reason when not identified).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.mixed.records import json_ready, records
from analysis.privacy import StudyTotals, format_count
from analysis.settings import RiclpmSettings

log = logging.getLogger(__name__)

#: The fitted versions: lagged paths equal over waves (the model), free per wave (sensitivity).
VERSIONS = {"constrained": True, "free": False}
STATUS_FITTED = "fitted"
STATUS_NOT_IDENTIFIED = "not_identified"
#: Columns of ``riclpm_fit.csv``. ``wave_sessions``/``waves_description``: which sessions were
#: the waves, in words; ``innovations``: ``equal`` or ``free`` over waves; ``problems``: what
#: makes the fit inadmissible or unconverged; ``lr_*`` (on the ``free`` row): the
#: likelihood-ratio test of free against constrained paths, or in ``lr_note`` why it is not given.
FIT_COLUMNS = [
    "outcome", "version", "status", "reason", "n_clients", "n_waves", "n_parameters", "chisq",
    "df", "pvalue", "cfi", "tli", "rmsea", "srmr", "aic", "bic", "loglik", "converged",
    "admissible", "max_abs_gradient", "problems", "origin", "wave_sessions",
    "waves_description", "innovations", "lr_chisq", "lr_df", "lr_pvalue", "lr_note",
]
#: The lagged paths, as labelled in the parameter table, and their short names.
LAGGED_PATHS = {
    "cross-lagged alliance -> symptoms": "alliance_to_symptoms",
    "cross-lagged symptoms -> alliance": "symptoms_to_alliance",
    "autoregressive alliance": "alliance_carry_over",
    "autoregressive symptoms": "symptoms_carry_over",
}


def choose_riclpm_waves(derived: pd.DataFrame, outcome: str, settings: RiclpmSettings):
    """The RI-CLPM's waves of one outcome: ``models.riclpm.sessions`` when set, else the choice
    from the data by ``models.panel`` (:func:`analysis.models.panel.waves.choose_waves`).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (see :func:`analysis.models.panel.waves.choose_waves`).
    outcome : str
        The outcome instrument.
    settings : RiclpmSettings
        ``sessions`` and ``waves`` (``models.panel``).

    Returns
    -------
    WaveChoice
        The chosen waves.

    Examples
    --------
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(20, 4, seed=3, output="derived")
    >>> choose_riclpm_waves(derived, "phq9", RiclpmSettings(sessions=3)).sessions
    (1, 2, 3)
    >>> choose_riclpm_waves(derived, "phq9", RiclpmSettings()).description
    "each client's sessions 1 to 4, the sessions that at least 50% of clients reached, counted
     from each client's first session with a score"
    """
    from analysis.models.panel.waves import choose_waves

    waves = settings.waves
    return choose_waves(derived, outcome, min_share=waves.min_share, max_waves=waves.max_waves,
                        origin=waves.origin, n_waves=settings.sessions)


def wave_labels(choice) -> list[str]:
    """How messages name each wave: "session 5" (origin study) or "client's session 3"."""
    if choice.origin == "study":
        return [f"session {session}" for session in choice.sessions]
    return [f"each client's session {position}" for position in choice.sessions]


def fit_riclpm_outcome(derived: pd.DataFrame, outcome: str, settings: RiclpmSettings
                       ) -> dict[str, Any]:
    """Fit the RI-CLPM of one outcome (constrained, and free when asked).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (``outcome, client_id, session, alliance_score, symptom_score``;
        ``therapist_id`` carried into the panel when present).
    outcome : str
        The outcome instrument.
    settings : RiclpmSettings
        ``sessions`` (explicit number of waves or None), ``waves`` (``models.panel``),
        ``equal_innovations`` and ``free_paths_sensitivity``.

    Returns
    -------
    dict
        JSON-able: ``outcome``, ``sessions`` (K), ``waves`` (the wave choice,
        :meth:`~analysis.models.panel.waves.WaveChoice.as_dict`), ``equal_innovations``, ``counts``
        (the panel's counts, see :func:`~analysis.models.panel.riclpm.panel_from_derived`),
        ``versions``, one entry per version with ``version``, ``status`` (``fitted`` or
        ``not_identified``), ``reason``, ``paths`` (records of the parameter table), ``fit`` and
        ``convergence`` (see :func:`~analysis.models.panel.riclpm.fit_riclpm`), and
        ``likelihood_ratio`` (:func:`likelihood_ratio_test`; None without the free version).
        Wall times are left out, so reruns give identical files.

    Raises
    ------
    DataError
        The derived frame is malformed (missing columns, no rows for the outcome, two rows for
        one client and session): the panel cannot be built.

    Examples
    --------
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(300, 4, seed=3, output="derived")
    >>> result = fit_riclpm_outcome(derived, "phq9", RiclpmSettings(sessions=4))
    >>> [(v["version"], v["status"]) for v in result["versions"]]
    [('constrained', 'fitted'), ('free', 'fitted')]
    >>> small = fit_riclpm_outcome(derived[derived["client_id"] < "c000020"], "phq9",
    ...                            RiclpmSettings(sessions=4))
    >>> small["versions"][0]["status"]
    'not_identified'
    """
    from analysis.models.panel.riclpm import PanelIdentificationError, fit_riclpm, panel_from_derived

    choice = choose_riclpm_waves(derived, outcome, settings)
    panel, counts = panel_from_derived(derived, outcome, choice)
    versions = [name for name in VERSIONS
                if name == "constrained" or settings.free_paths_sensitivity]
    labels = wave_labels(choice)
    fitted = []
    for version in versions:
        entry: dict[str, Any] = {"version": version, "status": STATUS_FITTED, "reason": "",
                                 "paths": [], "fit": {}, "convergence": {}}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = fit_riclpm(panel, choice.n_waves, constrained=VERSIONS[version],
                                    equal_innovations=settings.equal_innovations,
                                    wave_labels=labels)
            for warning in caught:
                # semopy warns (sqrt of a negative variance) on an inadmissible solution, which
                # the result reports as admissible: False; keep the console quiet.
                log.info("RI-CLPM %s (%s): %s", outcome, version, warning.message)
        except DataError as error:
            # The panel was built, so the data are well formed: they cannot identify the model.
            advice = (identification_advice(error, choice, derived, outcome, settings,
                                            constrained=VERSIONS[version])
                      if isinstance(error, PanelIdentificationError) else "")
            reason = f"Waves: {choice.description}. {_sentence(str(error))}"
            if advice:
                reason += f" {advice}"
            log.warning("RI-CLPM for %s (%s paths) not identified: %s", outcome, version, reason)
            entry.update(status=STATUS_NOT_IDENTIFIED, reason=reason)
        else:
            entry.update(paths=records(result["paths"]), fit=result["fit"],
                         convergence=result["convergence"])
            convergence = result["convergence"]
            if not (convergence["converged"] and convergence["admissible"]):
                log.warning("RI-CLPM for %s (%s paths): %s", outcome, version,
                            "; ".join(convergence["problems"]) or "not converged")
        fitted.append(entry)
    by_version = {entry["version"]: entry for entry in fitted}
    comparison = (likelihood_ratio_test(by_version["constrained"], by_version["free"])
                  if "free" in by_version else None)
    return json_ready({"outcome": outcome, "sessions": choice.n_waves,
                       "waves": choice.as_dict(),
                       "equal_innovations": settings.equal_innovations, "counts": counts,
                       "versions": fitted, "likelihood_ratio": comparison})


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def likelihood_ratio_test(constrained: Mapping[str, Any], free: Mapping[str, Any]
                          ) -> dict[str, Any]:
    """The likelihood-ratio test of free against constrained lagged paths, when it is valid.

    Parameters
    ----------
    constrained, free : mapping
        The two versions' entries of :func:`fit_riclpm_outcome` (``status``, ``fit`` with
        ``loglik`` and ``n_parameters``, ``convergence`` with ``converged``, ``admissible``,
        ``problems``, ``information_min_eigenvalue``).

    Returns
    -------
    dict
        ``chisq``, ``df``, ``pvalue`` (None when not given) and ``note``: empty when the test is
        given, otherwise why not: a version was not fitted, did not converge, has a
        non-positive-definite information matrix or is inadmissible (a negative variance or a
        correlation beyond -1 or 1). A likelihood-ratio test assumes that both fits are maxima of
        valid models; an inadmissible or unconverged fit is neither.

    Examples
    --------
    >>> ok = {"status": "fitted", "fit": {"loglik": -100.0, "n_parameters": 10},
    ...       "convergence": {"converged": True, "admissible": True, "problems": [],
    ...                       "information_min_eigenvalue": 0.5}}
    >>> free = {**ok, "fit": {"loglik": -95.0, "n_parameters": 14}}
    >>> test = likelihood_ratio_test(ok, free)
    >>> test["chisq"], test["df"], round(test["pvalue"], 4), test["note"]
    (10.0, 4, 0.0404, '')
    >>> bad = {**free, "convergence": {**ok["convergence"], "admissible": False,
    ...        "problems": ["innovation variance alliance at wave 4 estimated at -0.1"]}}
    >>> likelihood_ratio_test(ok, bad)["note"]  # doctest: +NORMALIZE_WHITESPACE
    'not given: the free-paths fit is inadmissible (innovation variance alliance at wave 4
    estimated at -0.1) (a likelihood-ratio test needs two admissible maximum-likelihood fits)'
    """
    none = {"chisq": None, "df": None, "pvalue": None}
    names = {"constrained": "constrained-paths", "free": "free-paths"}
    reasons = []
    for version, entry in (("constrained", constrained), ("free", free)):
        name = names[version]
        if entry.get("status") != STATUS_FITTED:
            reasons.append(f"the {name} model could not be fitted")
            continue
        convergence = entry.get("convergence") or {}
        problems = "; ".join(convergence.get("problems") or [])
        eigenvalue = convergence.get("information_min_eigenvalue")
        if not convergence.get("admissible", False):
            reasons.append(f"the {name} fit is inadmissible"
                           + (f" ({problems})" if problems else ""))
        elif eigenvalue is not None and not (isinstance(eigenvalue, (int, float))
                                             and eigenvalue > 0):
            reasons.append(f"the {name} fit's information matrix is not positive definite")
        elif not convergence.get("converged", False):
            reasons.append(f"the {name} fit did not converge"
                           + (f" ({problems})" if problems else ""))
    if reasons:
        invalid = any("could not be fitted" not in reason for reason in reasons)
        return {**none, "note": "not given: " + "; ".join(reasons)
                + (" (a likelihood-ratio test needs two admissible maximum-likelihood fits)"
                   if invalid else "")}
    ddf = int(free["fit"]["n_parameters"]) - int(constrained["fit"]["n_parameters"])
    if ddf <= 0:
        return {**none, "note": "not given: the free-paths model has no more parameters"}
    chisq = max(0.0, 2.0 * (float(free["fit"]["loglik"]) - float(constrained["fit"]["loglik"])))
    return {"chisq": chisq, "df": ddf, "pvalue": float(stats.chi2.sf(chisq, ddf)), "note": ""}


def identification_advice(error, choice, derived: pd.DataFrame, outcome: str,
                          settings: RiclpmSettings, constrained: bool = True) -> str:
    """What would let the data identify the RI-CLPM, worked out from the data (one sentence).

    Only suggestions that change the problem are made: fewer waves where later waves are thin or
    the parameters outnumber the clients (the number of waves that would pass is computed), a
    lower ``models.panel.min_share`` or the other time origin where too few waves were chosen
    (with the waves they would give), equal innovation variances where they would bring the
    parameters below the clients. Empty when nothing in the configuration can help.

    Parameters
    ----------
    error : PanelIdentificationError
        Why :func:`analysis.models.panel.riclpm.fit_riclpm` could not fit the panel.
    choice : WaveChoice
        The waves that were used.
    derived : DataFrame
        ``derived.parquet``.
    outcome : str
        The outcome instrument.
    settings : RiclpmSettings
        The settings that chose the waves.
    constrained : bool
        Whether the version has its lagged paths equal over waves.

    Returns
    -------
    str
        The advice, or "" when no setting can help.

    Examples
    --------
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(20, 4, seed=3, output="derived")
    >>> from analysis.models.panel.riclpm import PanelIdentificationError, fit_riclpm, panel_from_derived
    >>> settings = RiclpmSettings(sessions=4)
    >>> choice = choose_riclpm_waves(derived, "phq9", settings)
    >>> panel, _ = panel_from_derived(derived, "phq9", choice)
    >>> try:
    ...     fit_riclpm(panel, choice.n_waves)
    ... except PanelIdentificationError as error:
    ...     print(identification_advice(error, choice, derived, "phq9", settings))
    To fit it: set models.riclpm.sessions to 3 (fewer waves, 19 parameters).
    """
    from analysis.models.panel.riclpm import MIN_WAVES, n_free_parameters
    from analysis.models.panel.waves import choose_waves, wide_panel

    kind = getattr(error, "kind", "")
    options: list[str] = []
    waves = settings.waves

    def other_origin() -> str | None:
        other = "study" if choice.origin == "client" else "client"
        alternative = choose_waves(derived, outcome, min_share=waves.min_share,
                                   max_waves=waves.max_waves, origin=other,
                                   n_waves=settings.sessions)
        if alternative.n_waves >= MIN_WAVES and (choice.first_sessions_differ
                                                 or other == "client"):
            return (f"set models.panel.origin to {other} (which gives "
                    f"{alternative.session_range})")
        return None

    def fewer_waves(limit: int) -> str | None:
        # the most waves below `limit` at which the parameter and data checks would pass
        for k in range(limit, MIN_WAVES - 1, -1):
            panel, counts = wide_panel(derived, outcome, _first(choice, k))
            needed = n_free_parameters(k, constrained, settings.equal_innovations)
            if counts["clients_2plus_waves"] >= needed and _waves_have_data(panel, k):
                key = "models.riclpm.sessions" if choice.explicit else "models.panel.max_waves"
                return f"set {key} to {k} (fewer waves, {needed} parameters)"
        return None

    if kind == "too_few_waves":
        if choice.explicit:
            options.append("set models.riclpm.sessions to 3 or more, or to null to choose the "
                           "waves from the data")
        else:
            share = choice.share_for_waves(MIN_WAVES)
            if share is not None and share > 0 and share < choice.min_share:
                options.append(f"lower models.panel.min_share to {math.floor(share * 100) / 100:g}"
                               f" (then {choice.waves_for_share(share)} sessions qualify)")
            if waves.max_waves is not None and waves.max_waves < MIN_WAVES:
                options.append(f"raise models.panel.max_waves to {MIN_WAVES} or more")
            alternative = other_origin()
            if alternative:
                options.append(alternative)
            if not options and len(choice.share_by_wave) < MIN_WAVES:
                return (f"No client has {MIN_WAVES} sessions from the time origin, so no setting "
                        "can identify the RI-CLPM with these data.")
    elif kind == "too_few_clients":
        if not settings.equal_innovations:
            needed = n_free_parameters(choice.n_waves, constrained, True)
            if error.available is not None and error.available >= needed:
                options.append(f"set models.riclpm.equal_innovations to true ({needed} "
                               "parameters)")
        option = fewer_waves(choice.n_waves - 1)
        if option:
            options.append(option)
        if not constrained and not options:
            return ("The free-paths version needs more clients than these data hold; the "
                    "constrained version is the model.")
        if not options:
            return (f"Even {MIN_WAVES} waves have more parameters than clients with two or more "
                    "waves, so no setting can identify the RI-CLPM with these data.")
    elif kind in ("wave_without_data", "no_variance", "no_consecutive"):
        wave = int(error.wave or 0)
        if kind == "no_variance":
            options.append("check the scoring of that session")
        last_good = wave - 1 if kind != "no_consecutive" else wave
        if last_good >= MIN_WAVES:
            option = fewer_waves(last_good)
            if option:
                options.append(option)
            if not choice.explicit:
                share = choice.share_by_wave[last_good] if last_good < len(
                    choice.share_by_wave) else None
                if share is not None:
                    options.append(f"raise models.panel.min_share above {share:.2f}")
        alternative = other_origin() if wave <= MIN_WAVES else None
        if alternative:
            options.append(alternative)
    if not options:
        return ""
    return "To fit it: " + "; or ".join(options) + "."


def _first(choice, k: int):
    from dataclasses import replace

    return replace(choice, sessions=choice.sessions[:k], n_waves=k,
                   share_reaching=choice.share_reaching[:k])


def _waves_have_data(panel: pd.DataFrame, k: int) -> bool:
    for prefix in ("a", "y"):
        for t in range(1, k + 1):
            values = panel[f"{prefix}{t}"].dropna()
            if len(values) < 2 or values.max() - values.min() <= 0:
                return False
    return True


def combine_riclpm(results: Iterable[Mapping[str, Any]], min_cell: int = 10, *,
                   totals: StudyTotals) -> dict[str, pd.DataFrame]:
    """``riclpm`` (parameters) and ``riclpm_fit`` (fit indices) over every outcome's result.

    Parameters
    ----------
    results : iterable of dict
        :func:`fit_riclpm_outcome`'s results, one per outcome (in outcome order).
    min_cell : int
        Counts of clients below this are published as ``"<min_cell"`` (``privacy``).
    totals : StudyTotals
        The study's clients and each outcome's episodes: a count of clients whose complement in
        them is a small cell is hidden too (:func:`analysis.privacy.format_count`).

    Returns
    -------
    dict of str to DataFrame
        ``riclpm``: ``outcome, version`` and the columns of
        :data:`analysis.models.panel.riclpm.PATH_COLUMNS` (``std_estimate`` is lavaan's std.all of that
        row's wave: a path held equal over waves has one estimate but a standardised value per
        wave, as the within-client SDs differ by wave), one row per parameter of each fitted
        version. ``riclpm_fit``: :data:`FIT_COLUMNS`, one row per outcome and version, fitted or
        not; the likelihood-ratio test (or why it is not given) on the ``free`` row.

    Examples
    --------
    >>> from analysis.privacy import StudyTotals
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(120, 4, seed=3, output="derived")
    >>> result = fit_riclpm_outcome(derived, "phq9", RiclpmSettings(free_paths_sensitivity=False))
    >>> tables = combine_riclpm([result], totals=StudyTotals(clients=120, episodes={"phq9": 120}))
    >>> tables["riclpm_fit"][["outcome", "version", "status", "n_clients", "n_waves", "df"]]
      outcome      version  status n_clients  n_waves  df
    0    phq9  constrained  fitted       120        4  23
    >>> tables["riclpm"][["version", "lhs", "op", "rhs", "wave"]].head(3)
           version  lhs op  rhs  wave
    0  constrained  wa2  ~  wa1   2.0
    1  constrained  wa3  ~  wa2   3.0
    2  constrained  wa4  ~  wa3   4.0
    """
    from analysis.models.panel.riclpm import PATH_COLUMNS

    path_rows, fit_rows = [], []
    for result in results:
        outcome = result["outcome"]
        part_of = totals.of("clients", outcome)
        counts = result.get("counts") or {}
        waves = result.get("waves") or {}
        comparison = result.get("likelihood_ratio") or {}
        innovations = ("equal" if result.get("equal_innovations") else "free"
                       if "equal_innovations" in result else None)
        for entry in result["versions"]:
            for row in entry.get("paths") or []:
                path_rows.append({"outcome": outcome, "version": entry["version"],
                                  **{name: row.get(name) for name in PATH_COLUMNS}})
            fit = entry.get("fit") or {}
            convergence = entry.get("convergence") or {}
            n_clients = fit.get("n_clients", counts.get("clients_with_data"))
            fit_rows.append({
                "outcome": outcome, "version": entry["version"], "status": entry["status"],
                "reason": suppress_counts_in_text(entry.get("reason") or "", min_cell,
                                                  part_of),
                "n_clients": None if n_clients is None else format_count(int(n_clients),
                                                                          min_cell, part_of),
                "n_waves": fit.get("n_waves", result.get("sessions")),
                **{name: fit.get(name) for name in ("n_parameters", "chisq", "df", "pvalue",
                                                    "cfi", "tli", "rmsea", "srmr", "aic", "bic",
                                                    "loglik")},
                "converged": convergence.get("converged"),
                "admissible": convergence.get("admissible"),
                "max_abs_gradient": convergence.get("max_abs_gradient"),
                "problems": "; ".join(convergence.get("problems") or []),
                "origin": waves.get("origin"),
                "wave_sessions": _session_range(waves),
                "waves_description": waves.get("description"),
                "innovations": innovations,
                **({"lr_chisq": comparison.get("chisq"), "lr_df": comparison.get("df"),
                    "lr_pvalue": comparison.get("pvalue"), "lr_note": comparison.get("note")}
                   if entry["version"] == "free" else
                   {"lr_chisq": None, "lr_df": None, "lr_pvalue": None, "lr_note": None}),
            })
    paths = pd.DataFrame(path_rows, columns=["outcome", "version", *PATH_COLUMNS])
    fits = pd.DataFrame(fit_rows, columns=FIT_COLUMNS)
    fits["lr_df"] = pd.array(fits["lr_df"], dtype="Int64")
    for column in ("lr_chisq", "lr_pvalue"):
        fits[column] = pd.to_numeric(fits[column]).astype(float)
    for column in ("problems", "origin", "wave_sessions", "waves_description", "innovations",
                   "lr_note"):
        fits[column] = fits[column].astype("string")
    return {"riclpm": paths, "riclpm_fit": fits}


def _session_range(waves: Mapping[str, Any]) -> str | None:
    if not waves:
        return None
    from analysis.models.panel.waves import WaveChoice

    return WaveChoice.from_dict(dict(waves)).session_range


#: Where a message of :mod:`analysis.models.panel.riclpm` states a count of people: "16 clients",
#: "1 client(s)", "3 waves: 2" (clients with 3 waves), "but 16 have them", "all 5 values".
_COUNT_PATTERNS = (
    re.compile(r"(?P<before>)(?P<count>\d+)(?P<after>\s+clients?\b|\s+client\(s\))"),
    re.compile(r"(?P<before>\bwaves?:\s*)(?P<count>\d+)(?P<after>)"),
    re.compile(r"(?P<before>\bbut\s+)(?P<count>\d+)(?P<after>\s+have\b)"),
    re.compile(r"(?P<before>\ball\s+)(?P<count>\d+)(?P<after>\s+values\b)"),
)


def suppress_counts_in_text(text: str, min_cell: int, totals: Sequence[int] = ()) -> str:
    """A message about the panel with its counts of people below ``min_cell`` shown as "<min_cell".

    The reason an RI-CLPM was not identified is published (``riclpm_fit.csv``, the report), and
    it counts clients; the privacy rule for published counts applies to it too, with the totals
    the counts are part of (``totals``, e.g. ``StudyTotals.of("clients", outcome)``: "but 35
    have them" beside a study of 36 is hidden).

    Parameters
    ----------
    text : str
        The message.
    min_cell : int
        The smallest count of people published as a number.
    totals : sequence of int
        The totals the counts are part of, innermost first.

    Returns
    -------
    str
        The message as published.

    Examples
    --------
    >>> suppress_counts_in_text("16 clients have data (3 waves: 2, 6 waves: 14); but 16 have "
    ...                         "them", 10)
    '16 clients have data (3 waves: <10, 6 waves: 14); but 16 have them'
    >>> suppress_counts_in_text("36 clients have data; but 35 have them", 10, (36,))
    '36 clients have data; but >26 have them'
    """
    for pattern in _COUNT_PATTERNS:
        text = pattern.sub(lambda match: match.group("before")
                           + format_count(int(match.group("count")), min_cell, totals)
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

    Examples
    --------
    >>> from analysis.privacy import StudyTotals
    >>> from analysis.simulate.panel import simulate_riclpm
    >>> derived, _ = simulate_riclpm(120, 4, seed=3, output="derived")
    >>> result = fit_riclpm_outcome(derived, "phq9", RiclpmSettings(free_paths_sensitivity=False))
    >>> tables = combine_riclpm([result], totals=StudyTotals(clients=120))
    >>> paths = lagged_paths(tables["riclpm"], "phq9")
    >>> paths[["path", "lhs", "rhs", "wave", "estimate"]].round(3)
                        path  lhs  rhs  wave  estimate
    6   alliance_to_symptoms  wy2  wa1   2.0    -0.190
    7   alliance_to_symptoms  wy3  wa2   3.0    -0.190
    8   alliance_to_symptoms  wy4  wa3   4.0    -0.190
    9   symptoms_to_alliance  wa2  wy1   2.0    -0.164
    10  symptoms_to_alliance  wa3  wy2   3.0    -0.164
    11  symptoms_to_alliance  wa4  wy3   4.0    -0.164
    0    alliance_carry_over  wa2  wa1   2.0     0.247
    1    alliance_carry_over  wa3  wa2   3.0     0.247
    2    alliance_carry_over  wa4  wa3   4.0     0.247
    3    symptoms_carry_over  wy2  wy1   2.0     0.461
    4    symptoms_carry_over  wy3  wy2   3.0     0.461
    5    symptoms_carry_over  wy4  wy3   4.0     0.461
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
    "choose_riclpm_waves",
    "identification_advice",
    "likelihood_ratio_test",
    "suppress_counts_in_text",
    "LAGGED_PATHS",
    "VERSIONS",
    "combine_riclpm",
    "fit_riclpm_outcome",
    "lagged_paths",
]
