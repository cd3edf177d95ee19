"""The dropout stage: episodes and attendance, one hazard model per outcome, the published tables.

The pipeline's steps around :mod:`analysis.engagement.dropout` (docs/methods.md section 7):

- :func:`dropout_stage` (rule ``dropout_episodes``): one row per client (``dropout_episodes``:
  time to dropout, the event and where it came from, the attendance counts, the early alliance
  and its tertile) and the Kaplan-Meier curves of time to dropout by early-alliance tertile
  (``dropout_km``), from the session registry, the offered sessions and the derived frame;
- :func:`fit_dropout_outcome` (rule ``fit_dropout``, one job per outcome): the discrete-time
  hazard model of dropout on the within- and between-client alliance, that outcome's score and
  session, and the alliance effect on the scale of Sharf et al.'s d; a design that cannot carry
  it (no dropout, every client dropping out, one cluster) gives "not_estimated" and the reason;
- :func:`combine_dropout` (rule ``combine_dropout``): ``results/tables/dropout.csv`` (the hazard
  models) and ``attendance.csv`` (attendance and dropout overall and by early-alliance tertile),
  counts of people through :func:`analysis.privacy.format_count`.

With an episode-ending column (``inputs.<sessions table>.columns.ending``, mapped by
``ending_values``) the event is the recorded ending (a client's latest record with one);
without one it comes from the proxy rule of
:func:`~analysis.engagement.dropout.dropout_episodes` (``engagement.dropout.proxy_*``), named in
``dropout_source`` and in the report as a proxy.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.engagement.dropout import (
    STATUS_CATEGORIES,
    TERTILES,
    alliance_tertiles,
    attendance_table,
    dropout_effect_d,
    dropout_episodes,
    fit_dropout_hazard,
    kaplan_meier_by_tertile,
    person_session_data,
)
from analysis.errors import DataError
from analysis.privacy import format_count, is_suppressed, publish_rate
from analysis.settings import DropoutHazardSettings, DropoutSettings

#: The offered-session statuses that are attended sessions: ``no_measure`` is an attended
#: session record without any measure (see the ``offered_sessions`` catalogue entry).
ATTENDED_STATUSES = ("attended", "no_measure")
#: Columns of ``dropout_episodes`` (one row per client).
EPISODE_COLUMNS = [
    "client_id", "therapist_id", "sessions_attended", "last_session", "ending", "dropout",
    "dropout_source", "offered", "attended", "did_not_attend", "cancelled_by_client",
    "cancelled_by_service", "status_unknown", "alliance_early", "tertile",
]
#: Columns of ``dropout_km`` (Kaplan-Meier by early-alliance tertile).
KM_TABLE_COLUMNS = ["tertile", "session", "at_risk", "events", "censored", "survival", "se",
                    "ci_low", "ci_high", "n_clients", "alliance_min", "alliance_max",
                    "dropout_source"]
#: Columns of the published ``dropout.csv`` (one row per outcome and model term).
DROPOUT_COLUMNS = [
    "outcome", "term", "estimate", "se", "z", "p", "ci_low", "ci_high", "odds_ratio",
    "odds_ratio_ci_low", "odds_ratio_ci_high", "d", "d_ci_low", "d_ci_high", "d_logistic",
    "benchmark_d", "n_clients", "n_events", "n_rows", "n_events_lost", "cluster", "n_clusters",
    "status", "reason", "dropout_source", "formula",
]
#: Columns of the published ``attendance.csv`` (everyone, then each early-alliance tertile).
ATTENDANCE_COLUMNS = [
    "group", "n_clients", "offered", "attended", "did_not_attend", "cancelled_by_client",
    "cancelled_by_service", "attendance_rate",
    "mean_client_rate", "mean_sessions_attended", "n_dropout", "dropout_rate", "status_recorded",
    "dropout_source", "note",
]
#: The hazard model's term compared with Sharf et al.'s d.
BETWEEN_TERM = "alliance_between_c"


def attended_sessions(sessions: pd.DataFrame, offered: pd.DataFrame) -> pd.DataFrame:
    """Every attended session: the registry's sessions and the attended offered records
    (those without any measure included), one row per client and session.

    Parameters
    ----------
    sessions : DataFrame
        The session registry (``client_id, therapist_id, session, day``).
    offered : DataFrame
        Every session record with its ``status`` (``offered_sessions.parquet``).

    Returns
    -------
    DataFrame
        ``client_id, therapist_id, session, day``, one row per client and session, sorted.

    Examples
    --------
    >>> sessions = pd.DataFrame({"client_id": ["a", "a"], "therapist_id": ["t1", "t1"],
    ...                          "session": [1, 2], "day": [0, 7]})
    >>> offered = pd.DataFrame({"client_id": ["a", "a", "a"], "therapist_id": ["t1"] * 3,
    ...                         "session": [2, 3, 4], "day": [7, 14, 21],
    ...                         "status": ["attended", "no_measure", "did_not_attend"]})
    >>> attended_sessions(sessions, offered)
      client_id therapist_id  session  day
    0         a           t1        1    0
    1         a           t1        2    7
    2         a           t1        3   14
    """
    kept = offered.loc[offered["status"].isin(ATTENDED_STATUSES),
                       ["client_id", "therapist_id", "session", "day"]]
    both = pd.concat([sessions[["client_id", "therapist_id", "session", "day"]], kept],
                     ignore_index=True)
    return (both.drop_duplicates(["client_id", "session"])
            .sort_values(["client_id", "session"], kind="stable").reset_index(drop=True))


def recorded_endings(offered: pd.DataFrame) -> pd.DataFrame:
    """One recorded ending per client: the ending on the client's latest record that has one
    (``offered_sessions``' ``ending``, mapped at ingest); clients without one are left out."""
    recorded = offered.dropna(subset=["ending"]).sort_values(["client_id", "session"],
                                                             kind="stable")
    return recorded.drop_duplicates("client_id", keep="last")[["client_id", "ending"]]


def dropout_stage(sessions: pd.DataFrame, offered: pd.DataFrame, derived: pd.DataFrame,
                  settings: DropoutSettings) -> dict[str, pd.DataFrame]:
    """The dropout episodes (one row per client) and the Kaplan-Meier curves by tertile.

    Parameters
    ----------
    sessions, offered : DataFrame
        The session registry (``sessions.parquet``) and every session record with its status
        (``offered_sessions.parquet``).
    derived : DataFrame
        ``derived.parquet``: its ``alliance_early`` (one value per client) gives the tertiles.
    settings : DropoutSettings
        Whether a status column and an ending column are mapped, and the proxy rule (used
        without an ending column).

    Returns
    -------
    dict
        ``dropout_episodes`` (columns :data:`EPISODE_COLUMNS`) and ``dropout_km``
        (:data:`KM_TABLE_COLUMNS`).

    Examples
    --------
    >>> from analysis.settings import DropoutSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> ends_early = derived["client_id"].str[-1].isin(["1", "4", "7"]) & (derived["session"] > 2)
    >>> derived = derived[~ends_early]
    >>> sessions = derived[["client_id", "therapist_id", "session", "day"]]
    >>> offered = sessions.assign(status="attended", ending=pd.NA)
    >>> episodes = dropout_stage(sessions, offered, derived,
    ...                          DropoutSettings(status_recorded=True))["dropout_episodes"]
    >>> episodes[["client_id", "sessions_attended", "dropout", "tertile"]].head(4)
      client_id  sessions_attended  dropout tertile
    0    C00001                  2        1  middle
    1    C00002                  4        0    high
    2    C00003                  5        0  middle
    3    C00004                  2        1     low
    >>> int(episodes["dropout"].sum()), episodes["dropout_source"].iloc[0]
    (39, 'proxy: fewer than 4 attended sessions, and no session in the last 4 weeks of the data')
    """
    attended = attended_sessions(sessions, offered)
    if attended.empty:
        raise DataError("dropout_episodes: the session registry has no attended session.")
    if settings.ending_recorded:
        episodes = dropout_episodes(attended, recorded_endings(offered), ending_col="ending")
    else:
        episodes = dropout_episodes(attended, min_sessions=settings.proxy_min_sessions,
                                    active_weeks=settings.proxy_active_weeks, day_col="day")
    if settings.status_recorded:
        codes = {category: [category] for category in STATUS_CATEGORIES}
        codes["attended"] = list(ATTENDED_STATUSES)
        counts = attendance_table(offered, "status", codes)
    else:
        counts = attendance_table(attended)
    counts = counts.loc[counts["level"] == "client",
                        ["client_id", "offered", "attended", *STATUS_CATEGORIES[1:],
                         "status_unknown"]].set_index("client_id")
    episodes = episodes.join(counts, on="client_id")
    for name in counts.columns:
        episodes[name] = episodes[name].fillna(0).astype("int64")
    early = (derived.drop_duplicates("client_id").set_index("client_id")["alliance_early"]
             .astype(float))
    early.index = early.index.astype(str)
    episodes["alliance_early"] = episodes["client_id"].astype(str).map(early).astype(float)
    known = episodes.set_index("client_id")["alliance_early"].dropna()
    tertile = alliance_tertiles(known) if len(known) else pd.Series(dtype="string")
    episodes["tertile"] = episodes["client_id"].map(tertile).astype("string")
    if "therapist_id" not in episodes:
        episodes.insert(1, "therapist_id", pd.Series(pd.NA, index=episodes.index,
                                                     dtype="string"))
    km = kaplan_meier_by_tertile(episodes, known) if len(known) else pd.DataFrame(
        columns=KM_TABLE_COLUMNS)
    km = km.reindex(columns=KM_TABLE_COLUMNS)
    km["tertile"] = km["tertile"].astype("string")
    km["dropout_source"] = pd.Series(
        str(episodes["dropout_source"].iloc[0]) if len(episodes) else "", index=km.index,
        dtype="string")
    for name in ("session", "at_risk", "events", "censored", "n_clients"):
        km[name] = km[name].astype("int64")
    for name in ("survival", "se", "ci_low", "ci_high", "alliance_min", "alliance_max"):
        km[name] = km[name].astype(float)
    return {"dropout_episodes": episodes[EPISODE_COLUMNS].reset_index(drop=True),
            "dropout_km": km.reset_index(drop=True)}


def fit_dropout_outcome(derived: pd.DataFrame, episodes: pd.DataFrame, outcome: str,
                        settings: DropoutHazardSettings) -> dict[str, Any]:
    """The hazard model of dropout with one outcome's score, as a JSON-able dict.

    The person-session rows are the outcome's derived rows up to each client's last attended
    session; the event sits on the client's last derived row (a client whose last attended
    session had no measure drops out after their last measured one). Missing alliance or
    symptom scores leave a row out (the events lost so are counted).

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``.
    episodes : DataFrame
        The dropout episodes (:func:`dropout_stage`).
    outcome : str
        The outcome whose score enters the model.
    settings : DropoutHazardSettings
        Session as a line or a B-spline.

    Returns
    -------
    dict
        ``outcome``, ``status`` ("estimated" or "not_estimated"), ``reason``, ``terms`` (records
        of the hazard table), ``effect`` (the d conversion, :func:`dropout_effect_d`), ``info``
        (counts, clustering, formula) and ``dropout_source``.

    Examples
    --------
    >>> from analysis.settings import DropoutSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> ends_early = derived["client_id"].str[-1].isin(["1", "4", "7"]) & (derived["session"] > 2)
    >>> derived = derived[~ends_early]
    >>> sessions = derived[["client_id", "therapist_id", "session", "day"]]
    >>> offered = sessions.assign(status="attended", ending=pd.NA)
    >>> episodes = dropout_stage(sessions, offered, derived,
    ...                          DropoutSettings(status_recorded=True))["dropout_episodes"]
    >>> from analysis.settings import DropoutHazardSettings
    >>> fit = fit_dropout_outcome(derived, episodes, "phq9", DropoutHazardSettings())
    >>> fit["status"], fit["info"]["n_events"], fit["info"]["cluster"]
    ('estimated', 39, 'therapist')
    >>> pd.DataFrame(fit["terms"])[["term", "estimate", "se", "p"]].round(3)
                     term  estimate     se      p
    0         (Intercept)    -1.365  0.665  0.040
    1     alliance_within     0.901  0.861  0.296
    2  alliance_between_c    -0.387  0.225  0.085
    3       symptom_score     0.006  0.044  0.893
    4             session    -0.486  0.036  0.000
    """
    rows = derived.loc[derived["outcome"].astype(str) == outcome]
    source = str(episodes["dropout_source"].iloc[0]) if len(episodes) else ""
    # the totals the model's counts are parts of (complementary suppression when published)
    totals = {"clients": int(len(episodes)), "dropouts": int(episodes["dropout"].sum()),
              "therapists": int(episodes["therapist_id"].nunique())
              if "therapist_id" in episodes else 0}
    result: dict[str, Any] = {"outcome": outcome, "status": "not_estimated", "reason": "",
                              "terms": [], "effect": None, "info": {},
                              "dropout_source": source, "totals": totals}
    if rows.empty:
        result["reason"] = f"the derived table has no rows of {outcome}"
        return result
    last_measured = rows.groupby("client_id")["session"].max()
    last_measured.index = last_measured.index.astype(str)
    ends = episodes.assign(client_id=episodes["client_id"].astype(str))
    ends = ends.assign(last_session=np.minimum(
        ends["last_session"].to_numpy(),
        ends["client_id"].map(last_measured).fillna(ends["last_session"]).to_numpy()
    ).astype("int64"))
    person = person_session_data(rows, ends)
    try:
        fit = fit_dropout_hazard(person, session_spline_df=settings.session_spline_df)
    except DataError as error:
        result["reason"] = str(error).removeprefix("fit_dropout_hazard: ")
        result["info"] = {"n_clients": int(person["client_id"].nunique()),
                          "n_events": int(person["dropout_next"].sum()),
                          "n_rows": int(len(person))}
        return result
    result.update(status="estimated", terms=fit.table.to_dict("records"),
                  effect=dropout_effect_d(fit).iloc[0].to_dict(), info=fit.info)
    return result


def combine_dropout(fits: Iterable[Mapping[str, Any]], episodes: pd.DataFrame,
                    min_cell: int, status_recorded: bool) -> dict[str, pd.DataFrame]:
    """``dropout.csv`` and ``attendance.csv``, counts of people below ``min_cell`` hidden.

    ``dropout.csv`` has one row per outcome and term of the hazard model (one row with the
    reason when it was not estimated); the d conversion sits on the ``alliance_between_c`` row.
    ``attendance.csv`` has a row for everyone and one per early-alliance tertile: clients,
    sessions offered and attended by status, the attendance rate pooled over sessions and the
    mean of the clients' rates, and dropout. A group whose clients are a hidden count shows no
    session counts or rates.

    Parameters
    ----------
    fits : iterable of dict
        :func:`fit_dropout_outcome`'s results, one per outcome.
    episodes : DataFrame
        The dropout episodes (:func:`dropout_stage`).
    min_cell : int
        The smallest count of people published as a number.
    status_recorded : bool
        Whether a session-status column is mapped (attendance rates need one).

    Returns
    -------
    dict of str to DataFrame
        ``dropout`` (:data:`DROPOUT_COLUMNS`) and ``attendance`` (:data:`ATTENDANCE_COLUMNS`).

    Examples
    --------
    >>> from analysis.settings import DropoutSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> ends_early = derived["client_id"].str[-1].isin(["1", "4", "7"]) & (derived["session"] > 2)
    >>> derived = derived[~ends_early]
    >>> sessions = derived[["client_id", "therapist_id", "session", "day"]]
    >>> offered = sessions.assign(status="attended", ending=pd.NA)
    >>> episodes = dropout_stage(sessions, offered, derived,
    ...                          DropoutSettings(status_recorded=True))["dropout_episodes"]
    >>> from analysis.settings import DropoutHazardSettings
    >>> fit = fit_dropout_outcome(derived, episodes, "phq9", DropoutHazardSettings())
    >>> tables = combine_dropout([fit], episodes, min_cell=10, status_recorded=True)
    >>> tables["dropout"][["term", "estimate", "n_clients", "n_events", "status"]].round(3)
                     term  estimate n_clients n_events     status
    0         (Intercept)    -1.365       120       39  estimated
    1     alliance_within     0.901       120       39  estimated
    2  alliance_between_c    -0.387       120       39  estimated
    3       symptom_score     0.006       120       39  estimated
    4             session    -0.486       120       39  estimated
    >>> tables["attendance"][["group", "n_clients", "attended", "n_dropout", "dropout_rate"]].head(4)
                               group n_clients  attended n_dropout  dropout_rate
    0                    all clients       120       587        39         0.325
    1     early alliance low tertile        40       193        15         0.375
    2  early alliance middle tertile        39       201       <10           NaN
    3    early alliance high tertile        40       189        15         0.375
    """
    rows = []
    for fit in fits:
        info = fit.get("info") or {}
        common = {
            "outcome": fit["outcome"], "status": fit["status"], "reason": fit["reason"],
            "dropout_source": fit.get("dropout_source", ""),
            "n_clients": info.get("n_clients"), "n_events": info.get("n_events"),
            "n_rows": info.get("n_rows"), "n_events_lost": info.get("n_events_lost"),
            "cluster": info.get("cluster", ""), "n_clusters": info.get("n_clusters"),
            "formula": info.get("formula", ""),
        }
        if fit["status"] != "estimated":
            rows.append({**common, "term": BETWEEN_TERM})
            continue
        effect = fit.get("effect") or {}
        for term in fit["terms"]:
            extra = {name: effect.get(name) for name in ("d", "d_ci_low", "d_ci_high",
                                                         "d_logistic", "benchmark_d")}
            rows.append({**common, **term,
                         **(extra if term["term"] == BETWEEN_TERM else {})})
    table = pd.DataFrame(rows).reindex(columns=DROPOUT_COLUMNS)
    table["n_rows"] = table["n_rows"].astype("Int64")
    for name in ("outcome", "term", "status", "reason", "dropout_source", "cluster", "formula"):
        table[name] = table[name].fillna("").astype("string")
    numeric = [c for c in DROPOUT_COLUMNS if c not in ("outcome", "term", "status", "reason",
                                                        "dropout_source", "cluster", "formula",
                                                        "n_clients", "n_events", "n_rows",
                                                        "n_events_lost", "n_clusters")]
    table[numeric] = table[numeric].astype(float)
    # counts of people, each beside the total it is part of: the study's clients, its dropouts
    # (the events lost are the rest of them), its therapists or clients (the clusters)
    totals = pd.DataFrame([fit.get("totals") or {} for fit in fits
                           for _ in range(max(1, len(fit["terms"]) if fit["status"] ==
                                              "estimated" else 1))],
                          columns=["clients", "dropouts", "therapists"])

    def published(values: pd.Series, total: pd.Series) -> pd.array:
        return pd.array([None if pd.isna(n) else format_count(
            int(n), min_cell, None if pd.isna(t) else int(t)) for n, t in zip(values, total)],
            dtype="string")

    cluster_total = totals["therapists"].where(table["cluster"] == "therapist",
                                               totals["clients"])
    table["n_clusters"] = published(table["n_clusters"], cluster_total)
    table["n_events_lost"] = published(table["n_events_lost"], totals["dropouts"])
    table["n_events"] = published(table["n_events"], totals["dropouts"])
    table["n_clients"] = published(table["n_clients"], totals["clients"])
    return {"dropout": table,
            "attendance": attendance_summary(episodes, min_cell, status_recorded)}


def attendance_summary(episodes: pd.DataFrame, min_cell: int,
                       status_recorded: bool) -> pd.DataFrame:
    """The published attendance table (see :func:`combine_dropout`); without a status column
    (``status_recorded`` False) only attended sessions are known and the rates stay empty.

    Parameters
    ----------
    episodes : DataFrame
        The dropout episodes (:func:`dropout_stage`).
    min_cell : int
        The smallest count of people published as a number.
    status_recorded : bool
        Whether a session-status column is mapped.

    Returns
    -------
    DataFrame
        The columns :data:`ATTENDANCE_COLUMNS`: everyone, each early-alliance tertile, and the
        clients without an early alliance.

    Examples
    --------
    >>> from analysis.settings import DropoutSettings
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived(n_clients=120, n_therapists=12)
    >>> ends_early = derived["client_id"].str[-1].isin(["1", "4", "7"]) & (derived["session"] > 2)
    >>> derived = derived[~ends_early]
    >>> sessions = derived[["client_id", "therapist_id", "session", "day"]]
    >>> offered = sessions.assign(status="attended", ending=pd.NA)
    >>> episodes = dropout_stage(sessions, offered, derived,
    ...                          DropoutSettings(status_recorded=True))["dropout_episodes"]
    >>> summary = attendance_summary(episodes, min_cell=10, status_recorded=True)
    >>> summary[["group", "offered", "attended", "attendance_rate"]].head(2)
                            group  offered  attended  attendance_rate
    0                 all clients      587       587              1.0
    1  early alliance low tertile      193       193              1.0
    """
    total = len(episodes)
    recorded = bool(status_recorded)
    source = str(episodes["dropout_source"].iloc[0]) if total else ""
    groups = [("all clients", episodes)] + [
        (f"early alliance {name} tertile", episodes[episodes["tertile"] == name])
        for name in TERTILES]
    without = episodes[episodes["tertile"].isna()]
    if len(without):
        groups.append(("no early alliance", without))
    rows = []
    for name, group in groups:
        n = len(group)
        hidden = is_suppressed(n, total if name != "all clients" else None, min_cell)
        offered = int(group["offered"].sum())
        attended = int(group["attended"].sum())
        dropouts = int(group["dropout"].sum())
        row: dict[str, Any] = {
            "group": name, "n_clients": format_count(n, min_cell,
                                                     None if name == "all clients" else total),
            "n_dropout": format_count(dropouts, min_cell, n),
            "dropout_rate": publish_rate(dropouts, n, min_cell,
                                         None if name == "all clients" else total),
            "status_recorded": recorded, "dropout_source": source,
            "note": "" if recorded else ("no session-status column: only attended sessions "
                                         "are known, so attendance rates cannot be computed"),
        }
        if not hidden and n:
            row.update({"offered": offered, "attended": attended,
                        **{status: int(group[status].sum()) for status in STATUS_CATEGORIES[1:]},
                        "mean_sessions_attended": float(group["sessions_attended"].mean())})
            if recorded and offered:
                row["attendance_rate"] = attended / offered
                row["mean_client_rate"] = float((group["attended"]
                                                 / group["offered"].where(group["offered"] > 0))
                                                .mean())
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=ATTENDANCE_COLUMNS)
    for name in ("offered", "attended", *STATUS_CATEGORIES[1:]):
        table[name] = table[name].astype("Int64")
    for name in ("attendance_rate", "mean_client_rate", "mean_sessions_attended",
                 "dropout_rate"):
        table[name] = table[name].astype(float)
    for name in ("group", "n_clients", "n_dropout", "dropout_source", "note"):
        table[name] = table[name].astype("string")
    table["status_recorded"] = table["status_recorded"].astype(bool)
    return table


__all__ = [
    "ATTENDANCE_COLUMNS",
    "DROPOUT_COLUMNS",
    "EPISODE_COLUMNS",
    "KM_TABLE_COLUMNS",
    "attendance_summary",
    "attended_sessions",
    "combine_dropout",
    "dropout_stage",
    "fit_dropout_outcome",
]
