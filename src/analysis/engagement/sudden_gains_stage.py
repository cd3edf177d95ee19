"""The sudden-gains stage: gains, losses and the alliance around them per outcome, and the tables.

The pipeline's steps around :mod:`analysis.engagement.sudden_gains` (docs/methods.md
section 9):

- :func:`sudden_gains_outcome` (rule ``fit_sudden_gains``, one job per outcome): sudden gains
  and sudden losses in the outcome's session-by-session scores (Tang & DeRubeis's three
  criteria as the R package suddengains applies them; criterion 1 by default the reliable
  change value from the outcome's first-score SD and reliability, the Jacobson-Truax parameters
  of the episodes stage), each gain's reversal, the largest gain of each client, the alliance in
  the sessions before and after each gain, the mixed model ``alliance ~ post_gain +
  (1 | client)`` ("not_estimated" with the reason below ``min_gains`` gains), and the average
  course of symptoms and alliance around the gains;
- :func:`combine_sudden_gains` (rule ``combine_sudden_gains``): ``results/tables/
  sudden_gains.csv`` (one row per gain or loss: client pseudonym, outcome, pregain session, the
  scores around it, magnitude, reversal), ``sudden_gains_summary.csv`` (per outcome: counts,
  criteria and the alliance model; counts of people through
  :func:`analysis.privacy.format_count`) and the course of the figure (``sudden_gains_course``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.engagement.sudden_gains import (
    alliance_around_gains,
    define_crit1_cutoff,
    extract_scores_around_gains,
    fit_alliance_gain_model,
    identify_sudden_gains,
    identify_sudden_losses,
    select_gain_per_client,
)
from analysis.errors import DataError
from analysis.privacy import format_count, publish_rate
from analysis.settings import SuddenGainSettings

#: Columns of the published ``sudden_gains.csv`` (one row per gain or loss).
GAIN_TABLE_COLUMNS = [
    "outcome", "client_id", "gain_id", "kind", "pregain_session", "postgain_session",
    "score_pregain_minus2", "score_pregain_minus1", "pregain_score", "postgain_score",
    "score_postgain_plus1", "score_postgain_plus2",
    "magnitude", "percent_change", "share_of_total_change",
    "mean_pre", "mean_post", "n_pre", "n_post", "critical_value",
    "reversal_value", "reversal", "n_per_client", "largest_of_client", "alliance_pre",
    "alliance_post",
]
#: Columns of the published ``sudden_gains_summary.csv`` (one row per outcome).
SUMMARY_COLUMNS = [
    "outcome", "status", "reason", "cutoff", "cutoff_source", "crit2_pct", "crit3",
    "identify_1to2", "n_clients", "n_clients_with_gain", "share_with_gain", "n_gains",
    "n_reversals", "n_clients_with_loss", "n_losses", "mean_magnitude", "alliance_status",
    "alliance_reason", "estimate", "se", "df", "t", "p", "ci_low", "ci_high", "n_obs",
]
#: Columns of ``sudden_gains_course`` (the average course around the gains, for the figure).
COURSE_COLUMNS = ["outcome", "measure", "offset", "mean", "se", "n_gains"]
#: Counts of people (or of gains, each a person's) in the published summary.
PEOPLE_COUNTS = ("n_clients", "n_clients_with_gain", "n_gains", "n_reversals",
                 "n_clients_with_loss", "n_losses")


def crit1_cutoff(parameters: pd.DataFrame, outcome: str, settings: SuddenGainSettings
                 ) -> tuple[float | None, str]:
    """Criterion 1 in points and where it came from; None and the reason when there is none.

    The configured ``cutoff``, else the reliable change value of suddengains'
    ``define_crit1_cutoff`` from the outcome's first-score SD and reliability ``r_xx`` (the
    Jacobson-Truax parameters: the same SD and reliability the episode outcomes use).

    Parameters
    ----------
    parameters : DataFrame
        The Jacobson-Truax parameters (``outcome``, ``sd_first``, ``r_xx``).
    outcome : str
        The outcome instrument.
    settings : SuddenGainSettings
        ``cutoff``: a configured criterion 1, used as is.

    Returns
    -------
    (float or None, str)
        The cut-off in points and its source, or None and the reason.

    Examples
    --------
    >>> from analysis.settings import SuddenGainSettings
    >>> parameters = pd.DataFrame({"outcome": ["phq9"], "sd_first": [5.2], "r_xx": [0.84]})
    >>> settings = SuddenGainSettings(directions={"phq9": "lower_is_better"})
    >>> value, source = crit1_cutoff(parameters, "phq9", settings)
    >>> round(value, 3), source
    (5.765, 'reliable change value from SD 5.20 and r_xx 0.84')
    >>> crit1_cutoff(parameters, "phq9", SuddenGainSettings(directions={}, cutoff=5.0))
    (5.0, 'engagement.sudden_gains.cutoff')
    >>> crit1_cutoff(parameters, "gad7", settings)[0] is None
    True
    """
    if settings.cutoff is not None:
        return float(settings.cutoff), "engagement.sudden_gains.cutoff"
    rows = parameters.loc[parameters["outcome"].astype(str) == outcome]
    if rows.empty or pd.isna(rows["sd_first"].iloc[0]) or pd.isna(rows["r_xx"].iloc[0]):
        return None, (f"criterion 1 needs the reliability and first-score SD of {outcome}, "
                      "which the episodes stage could not estimate; set "
                      f"episodes.reliability.{outcome} or engagement.sudden_gains.cutoff")
    row = rows.iloc[0]
    value = define_crit1_cutoff(sd=float(row["sd_first"]), reliability=float(row["r_xx"]))
    return (float(value["reliable_change_value"].iloc[0]),
            f"reliable change value from SD {float(row['sd_first']):.2f} and r_xx "
            f"{float(row['r_xx']):.2f}")


def sudden_gains_outcome(derived: pd.DataFrame, parameters: pd.DataFrame, outcome: str,
                         settings: SuddenGainSettings) -> dict[str, Any]:
    """Sudden gains and losses of one outcome and the alliance around them (JSON-able dict).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (``outcome, client_id, session, symptom_score, alliance_score``).
    parameters : DataFrame
        The Jacobson-Truax parameters (for criterion 1 without a configured cut-off).
    outcome : str
        The outcome instrument.
    settings : SuddenGainSettings
        The criteria, the outcome's direction, the window and the fewest gains for the model.

    Returns
    -------
    dict
        ``outcome``, ``status`` ("estimated" or "not_estimated"), ``reason``, ``cutoff`` and
        ``cutoff_source``, ``n_clients`` (clients with at least two scores), ``gains`` (records of
        :data:`GAIN_TABLE_COLUMNS`, gains then losses), ``alliance`` (the mixed model's row, or
        ``status`` "not_estimated" and the reason) and ``course`` (records of
        :data:`COURSE_COLUMNS`).

    Examples
    --------
    >>> from analysis.settings import SuddenGainSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=80)
    >>> settings = SuddenGainSettings(directions={"phq9": "lower_is_better"}, cutoff=5.0,
    ...                               min_gains=5)
    >>> no_parameters = pd.DataFrame(columns=["outcome", "sd_first", "r_xx"])
    >>> result = sudden_gains_outcome(derived, no_parameters, "phq9", settings)
    >>> {key: result[key] for key in ("status", "cutoff", "cutoff_source", "n_clients")}
    {'status': 'estimated', 'cutoff': 5.0, 'cutoff_source': 'engagement.sudden_gains.cutoff',
     'n_clients': 80}
    >>> len(result["gains"]), result["alliance"]
    (1, {'status': 'not_estimated', 'reason': 'fewer than 5 sudden gains
     (engagement.sudden_gains.min_gains)'})
    """
    rows = derived.loc[derived["outcome"].astype(str) == outcome,
                       ["client_id", "session", "symptom_score", "alliance_score"]].copy()
    rows["client_id"] = rows["client_id"].astype(str)
    scored = rows.dropna(subset=["symptom_score"])
    n_clients = int((scored.groupby("client_id").size() >= 2).sum())
    total = int(rows["client_id"].nunique())
    cutoff, source = crit1_cutoff(parameters, outcome, settings)
    result: dict[str, Any] = {
        "outcome": outcome, "status": "not_estimated", "reason": "", "cutoff": cutoff,
        "cutoff_source": source if cutoff is not None else "", "n_clients": n_clients,
        "n_clients_total": total,
        "criteria": {"crit2_pct": settings.crit2_pct, "crit3": settings.crit3,
                     "identify_1to2": settings.identify_1to2},
        "gains": [], "alliance": {"status": "not_estimated", "reason": ""}, "course": []}
    if cutoff is None:
        result["reason"] = source
        result["alliance"]["reason"] = "no sudden gains were identified (see the reason above)"
        return result
    if scored.empty:
        result["reason"] = f"the derived table has no {outcome} scores"
        result["alliance"]["reason"] = result["reason"]
        return result
    criteria = {"cutoff": cutoff, "crit2_pct": settings.crit2_pct, "crit3": settings.crit3,
                "identify_1to2": settings.identify_1to2,
                "direction": settings.directions[outcome]}
    gains = identify_sudden_gains(scored, score_col="symptom_score", **criteria)
    losses = identify_sudden_losses(scored, score_col="symptom_score", **criteria)
    result["status"] = "estimated"
    if len(gains):
        largest = set(select_gain_per_client(gains, select="largest")["gain_id"])
        gains = gains.assign(largest_of_client=gains["gain_id"].isin(largest))
        around = alliance_around_gains(gains, rows, alliance_col="alliance_score",
                                       window=settings.window)
        means = around.groupby(["gain_id", "post_gain"])["alliance_score"].mean().unstack()
        means = means.reindex(columns=[0, 1])
        gains = gains.assign(alliance_pre=gains["gain_id"].map(means[0]),
                             alliance_post=gains["gain_id"].map(means[1]))
        result["alliance"] = _alliance_model(around, len(gains), settings.min_gains)
        result["course"] = _course(gains, rows, outcome, settings.window)
    else:
        result["alliance"]["reason"] = "no sudden gains were identified"
    if len(losses):
        largest = set(select_gain_per_client(losses, select="largest")["gain_id"])
        losses = losses.assign(largest_of_client=losses["gain_id"].isin(largest),
                               alliance_pre=np.nan, alliance_post=np.nan)
    both = pd.concat([frame for frame in (gains, losses) if len(frame)], ignore_index=True) \
        if len(gains) or len(losses) else pd.DataFrame(columns=GAIN_TABLE_COLUMNS)
    both = both.assign(outcome=outcome).reindex(columns=GAIN_TABLE_COLUMNS)
    result["gains"] = [{key: (None if _missing(value) else _plain(value))
                        for key, value in row.items()} for row in both.to_dict("records")]
    return result


def _alliance_model(around: pd.DataFrame, n_gains: int, min_gains: int) -> dict[str, Any]:
    if n_gains < min_gains:
        return {"status": "not_estimated",
                "reason": f"fewer than {min_gains} sudden gains (engagement.sudden_gains"
                          ".min_gains)"}
    try:
        model = fit_alliance_gain_model(around, alliance_col="alliance_score")
    except DataError as error:
        return {"status": "not_estimated",
                "reason": str(error).removeprefix("fit_alliance_gain_model: ")}
    row = model.iloc[0].to_dict()
    return {"status": "estimated", "reason": "",
            **{key: _plain(value) for key, value in row.items()}}


def _course(gains: pd.DataFrame, rows: pd.DataFrame, outcome: str, window: int
            ) -> list[dict[str, Any]]:
    parts = []
    for measure, column in (("symptoms", "symptom_score"), ("alliance", "alliance_score")):
        around = extract_scores_around_gains(gains, rows, value_col=column, n_before=window,
                                             n_after=window)
        grouped = around.dropna(subset=[column]).groupby("offset")[column]
        frame = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1),
                              "n_gains": grouped.size()}).reset_index()
        frame["se"] = frame["sd"] / np.sqrt(frame["n_gains"])
        frame.insert(0, "measure", measure)
        frame.insert(0, "outcome", outcome)
        parts.append(frame[COURSE_COLUMNS])
    course = pd.concat(parts, ignore_index=True)
    return [{key: (None if _missing(value) else _plain(value)) for key, value in row.items()}
            for row in course.to_dict("records")]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def combine_sudden_gains(fits: Iterable[Mapping[str, Any]], min_cell: int,
                         individual_rows: bool = False) -> dict[str, pd.DataFrame]:
    """The published gains and summary tables and the course of the figure.

    ``individual_rows`` (``privacy.show_individual_trajectories``): the gains table holds one
    row per gain, a client's scores around it, only where the config allows individual
    trajectories; otherwise it is published with its columns and no rows (the summary and the
    course, which are aggregates, are always published).

    Parameters
    ----------
    fits : iterable of dict
        :func:`sudden_gains_outcome`'s results, one per outcome.
    min_cell : int
        The smallest count of people published as a number.
    individual_rows : bool
        Whether the gains table may hold one row per gain.

    Returns
    -------
    dict of str to DataFrame
        ``sudden_gains`` (:data:`GAIN_TABLE_COLUMNS`), ``sudden_gains_summary`` (one row per
        outcome, counts of people as published text) and ``sudden_gains_course``
        (:data:`COURSE_COLUMNS`).

    Examples
    --------
    >>> from analysis.settings import SuddenGainSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=80)
    >>> settings = SuddenGainSettings(directions={"phq9": "lower_is_better"}, cutoff=5.0,
    ...                               min_gains=5)
    >>> no_parameters = pd.DataFrame(columns=["outcome", "sd_first", "r_xx"])
    >>> tables = combine_sudden_gains([sudden_gains_outcome(derived, no_parameters, "phq9",
    ...                                                     settings)], min_cell=10)
    >>> {name: table.shape for name, table in tables.items()}
    {'sudden_gains': (0, 26), 'sudden_gains_summary': (1, 26), 'sudden_gains_course': (10, 6)}
    >>> tables["sudden_gains_summary"][["outcome", "status", "n_clients", "n_gains"]]
      outcome     status n_clients n_gains
    0    phq9  estimated        80     <10
    """
    fits = list(fits)
    gains = pd.DataFrame([gain for fit in fits for gain in fit["gains"]]).reindex(
        columns=GAIN_TABLE_COLUMNS)
    for name in ("outcome", "client_id", "gain_id", "kind"):
        gains[name] = gains[name].astype("string")
    for name in ("pregain_session", "postgain_session", "n_pre", "n_post", "n_per_client"):
        gains[name] = gains[name].astype("int64")
    for name in ("reversal", "largest_of_client"):
        gains[name] = gains[name].astype(bool)
    floats = [c for c in GAIN_TABLE_COLUMNS if c not in (
        "outcome", "client_id", "gain_id", "kind", "pregain_session", "postgain_session",
        "n_pre", "n_post", "n_per_client", "reversal", "largest_of_client")]
    gains[floats] = gains[floats].astype(float)

    rows = []
    for fit in fits:
        found = gains[gains["outcome"] == fit["outcome"]]
        gain_rows, loss_rows = found[found["kind"] == "gain"], found[found["kind"] == "loss"]
        n = int(fit["n_clients"])
        with_gain = int(gain_rows["client_id"].nunique())
        alliance = fit["alliance"]
        rows.append({
            "outcome": fit["outcome"], "status": fit["status"], "reason": fit["reason"],
            "cutoff": fit["cutoff"], "cutoff_source": fit["cutoff_source"],
            **fit["criteria"],
            "n_clients": format_count(n, min_cell, fit.get("n_clients_total")),
            "n_clients_with_gain": format_count(with_gain, min_cell, n),
            "share_with_gain": publish_rate(with_gain, n, min_cell),
            "n_gains": format_count(len(gain_rows), min_cell),
            "n_reversals": format_count(int(gain_rows["reversal"].sum()), min_cell,
                                        len(gain_rows)),
            "n_clients_with_loss": format_count(int(loss_rows["client_id"].nunique()),
                                                min_cell, n),
            "n_losses": format_count(len(loss_rows), min_cell),
            # a mean over fewer gains than min_cell describes a handful of people: hidden
            "mean_magnitude": (float(gain_rows["magnitude"].mean())
                               if len(gain_rows) >= min_cell else np.nan),
            "alliance_status": alliance["status"], "alliance_reason": alliance["reason"],
            **{name: alliance.get(name) for name in ("estimate", "se", "df", "t", "p",
                                                     "ci_low", "ci_high", "n_obs")},
        })
    summary = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    for name in ("outcome", "status", "reason", "cutoff_source", "alliance_status",
                 "alliance_reason", *PEOPLE_COUNTS):
        summary[name] = summary[name].fillna("").astype("string")
    summary["crit3"] = summary["crit3"].astype(bool)
    summary["identify_1to2"] = summary["identify_1to2"].astype(bool)
    summary["n_obs"] = summary["n_obs"].astype("Int64")
    for name in ("cutoff", "crit2_pct", "share_with_gain", "mean_magnitude", "estimate", "se",
                 "df", "t", "p", "ci_low", "ci_high"):
        summary[name] = summary[name].astype(float)

    course = pd.DataFrame([point for fit in fits for point in fit["course"]]).reindex(
        columns=COURSE_COLUMNS)
    course["outcome"] = course["outcome"].astype("string")
    course["measure"] = course["measure"].astype("string")
    course["offset"] = course["offset"].astype("int64")
    course["n_gains"] = course["n_gains"].astype("int64")
    for name in ("mean", "se"):
        course[name] = course[name].astype(float)
    published = gains if individual_rows else gains.iloc[0:0]
    return {"sudden_gains": published.reset_index(drop=True), "sudden_gains_summary": summary,
            "sudden_gains_course": course}


__all__ = ["COURSE_COLUMNS", "GAIN_TABLE_COLUMNS", "SUMMARY_COLUMNS", "combine_sudden_gains",
           "crit1_cutoff", "sudden_gains_outcome"]
