"""Data-flow accounting: where every input row went, and who reached each analysis.

Input: the ingest stage's per-file flow (rows read, columns dropped, rows rejected by rule, rows
kept; per instrument, administrations read, rejected by rule and kept by the route that linked
them to a session), the scores, the session registry, the derived frame, the episodes and the
exact counts of every fit (``fit_counts.csv``: the published model tables hide small counts). Output: one tidy table with columns ``stage, source, instrument, unit, reason,
count``:

- per input file: ``read``/``rejected``/``kept`` rows (read = kept + rejected, always), dropped
  columns (by name, with the number of non-empty cells, never their values); and, where not 0,
  blank rows ``skipped`` (not rows: the file's lines = read + skipped), cells set missing by the
  table's ``missing_values`` (stage ``missing_values``, unit ``cells``) and kept rows with
  ``no_measure`` (in a sessions table: "session records with no measure", not counted as
  attended sessions; see :data:`analysis.ingest.tables.NOTES`);
- per input file and instrument: administrations ``read``, ``rejected`` (by rule) and ``kept``
  (by route: in a session record, linked by session number or date, at a session number with no
  session record, of a client without session records); read = kept + rejected, always;
- ``scored``: per instrument, kept administrations scored, prorated, and not scored (too many
  missing items);
- ``registry``: clients, therapists and sessions after cleaning;
- ``episodes``: per outcome, episodes and episodes with an outcome (>= 2 scores);
- ``analysis``: per (outcome, model, analysis) fitted, the observations, clients and therapists.

:func:`publish_data_flow` formats counts of people (clients, episodes) with small-cell
suppression for the published copy.
"""

from __future__ import annotations

import pandas as pd

from analysis.privacy import StudyTotals, format_count

FLOW_COLUMNS = ["stage", "source", "instrument", "unit", "reason", "count"]
PEOPLE_UNITS = {"clients", "episodes", "episodes_with_outcome", "therapists"}


def build_data_flow(
    ingest_flow: pd.DataFrame,
    sessions: pd.DataFrame,
    derived: pd.DataFrame,
    episodes: pd.DataFrame,
    fit_counts: pd.DataFrame,
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The full (unsuppressed) accounting table described in the module docstring.

    Parameters
    ----------
    ingest_flow : DataFrame
        The ingest stage's flow, in the columns :data:`FLOW_COLUMNS`.
    sessions : DataFrame
        The session registry (``client_id``, ``therapist_id``).
    derived : DataFrame
        The derived frame (``outcome``, ``symptom_score``, ``symptom_next``).
    episodes : DataFrame
        The episodes (``outcome``, ``n_scored``).
    fit_counts : DataFrame
        The exact counts of every fit (``outcome, model, analysis, n_obs, n_clients,
        n_therapists``).
    scores : DataFrame, optional
        The scores (``instrument``, ``score``, ``prorated``), for the ``scored`` rows.

    Returns
    -------
    DataFrame
        The accounting table, in the columns :data:`FLOW_COLUMNS`, counts exact.

    Examples
    --------
    >>> ingest_flow = pd.DataFrame({"stage": ["read", "kept"], "source": ["sessions"] * 2,
    ...                             "instrument": ["", ""], "unit": ["rows", "rows"],
    ...                             "reason": ["", ""], "count": [6, 6]})
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "a", "b", "b", "c"],
    ...                          "therapist_id": ["t1"] * 3 + ["t2"] * 3})
    >>> derived = pd.DataFrame({"outcome": ["phq9"] * 6,
    ...                         "symptom_score": [12.0, 9.0, 7.0, 15.0, 11.0, None],
    ...                         "symptom_next": [9.0, 7.0, None, 11.0, None, None]})
    >>> episodes = pd.DataFrame({"outcome": ["phq9"] * 3, "n_scored": [3, 2, 0]})
    >>> fit_counts = pd.DataFrame({"outcome": ["phq9"], "model": ["M2"], "analysis": ["primary"],
    ...                            "n_obs": [3], "n_clients": [2], "n_therapists": [2]})
    >>> flow = build_data_flow(ingest_flow, sessions, derived, episodes, fit_counts)
    >>> flow[["stage", "source", "unit", "count"]]
           stage           source                   unit  count
    0       read         sessions                   rows      6
    1       kept         sessions                   rows      6
    2   registry         sessions                clients      3
    3   registry         sessions             therapists      2
    4   registry         sessions               sessions      6
    5    derived             phq9               sessions      5
    6    derived             phq9               sessions      3
    7   episodes             phq9               episodes      3
    8   episodes             phq9  episodes_with_outcome      2
    9   analysis  phq9 M2 primary           observations      3
    10  analysis  phq9 M2 primary                clients      2
    11  analysis  phq9 M2 primary             therapists      2
    """
    flow = ingest_flow.fillna({"instrument": "", "reason": ""})
    rows = flow[FLOW_COLUMNS].to_dict("records")
    if scores is not None:
        for instrument, part in scores.groupby("instrument", sort=True):
            scored = part["score"].notna()
            prorated = scored & part["prorated"].astype(bool)
            rows += [
                _row("scored", "scores", "administrations", "scored from every item",
                     int((scored & ~prorated).sum()), str(instrument)),
                _row("scored", "scores", "administrations", "scored, prorated",
                     int(prorated.sum()), str(instrument)),
                _row("scored", "scores", "administrations",
                     "not scored: too many missing items", int((~scored).sum()), str(instrument)),
            ]
    registry = StudyTotals.from_tables(sessions)
    rows += [
        _row("registry", "sessions", "clients", "", registry.clients),
        _row("registry", "sessions", "therapists", "", registry.therapists),
        _row("registry", "sessions", "sessions", "", len(sessions)),
    ]
    for outcome, part in derived.groupby("outcome", sort=True):
        scored = part[part["symptom_score"].notna()]
        rows += [
            _row("derived", str(outcome), "sessions", "symptom scored", len(scored)),
            _row("derived", str(outcome), "sessions", "lag pair (score and next score)",
                 int((part["symptom_score"].notna() & part["symptom_next"].notna()).sum())),
        ]
    for outcome, part in episodes.groupby("outcome", sort=True):
        rows += [
            _row("episodes", str(outcome), "episodes", "", len(part)),
            _row("episodes", str(outcome), "episodes_with_outcome", ">= 2 scored sessions",
                 int((part["n_scored"] >= 2).sum())),
        ]
    if not fit_counts.empty:
        fits = fit_counts.sort_values(["outcome", "model", "analysis"], kind="stable")
        for fit in fits.itertuples():
            source = f"{fit.outcome} {fit.model} {fit.analysis}"
            for unit, column in (("observations", "n_obs"), ("clients", "n_clients"), ("therapists", "n_therapists")):
                value = getattr(fit, column, None)
                if value is not None and pd.notna(value):
                    rows.append(_row("analysis", source, unit, "", int(value)))
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)


def publish_data_flow(flow: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """The published copy: counts of people through :func:`analysis.privacy.format_count`.

    Each count of people is published with the totals it is part of, so that no published total
    reveals a hidden complement by subtraction (complementary suppression): episodes with an
    outcome beside all episodes of the outcome; the clients of a fit beside its outcome's
    episodes and the registry's clients; every other count of clients (episodes are one per
    client and outcome) beside the registry's clients, and counts of therapists beside the
    registry's therapists (:class:`analysis.privacy.StudyTotals`, as the model tables). Row
    counts are not counts of people and stay exact, so every file's rows still visibly balance.

    Parameters
    ----------
    flow : DataFrame
        The table of :func:`build_data_flow`.
    min_cell : int
        The smallest count of people published as a number (``privacy.min_cell``).

    Returns
    -------
    DataFrame
        A copy with ``count`` as published text.

    Examples
    --------
    >>> flow = pd.DataFrame({
    ...     "stage": ["registry", "registry", "episodes", "episodes", "analysis"],
    ...     "source": ["sessions", "sessions", "phq9", "phq9", "phq9 M2 primary"],
    ...     "instrument": [""] * 5,
    ...     "unit": ["clients", "sessions", "episodes", "episodes_with_outcome", "clients"],
    ...     "reason": [""] * 5, "count": [64, 700, 64, 60, 3]})
    >>> publish_data_flow(flow, min_cell=10)[["stage", "unit", "count"]]
          stage                   unit count
    0  registry                clients    64
    1  registry               sessions   700
    2  episodes               episodes    64
    3  episodes  episodes_with_outcome   >54
    4  analysis                clients   <10
    """
    published = flow.copy()
    episodes = flow[flow["unit"] == "episodes"].set_index("source")["count"].to_dict()
    registry = {unit: int(count) for stage, unit, count in
                zip(flow["stage"], flow["unit"], flow["count"]) if stage == "registry"}
    totals = StudyTotals(registry.get("clients"), registry.get("therapists"),
                         {str(outcome): int(n) for outcome, n in episodes.items()})

    def shown(stage: str, unit: str, source: str, count: int) -> str:
        if unit not in PEOPLE_UNITS:
            return str(int(count))
        if stage == "registry":
            return format_count(count, min_cell)
        if unit == "episodes_with_outcome" and source in episodes:
            return format_count(count, min_cell, episodes[source])
        if unit == "therapists":
            return format_count(count, min_cell, totals.of("therapists"))
        # a fit's source is "<outcome> <model> <analysis>": its clients are of that outcome
        outcome = source.split(" ")[0] if stage == "analysis" else None
        return format_count(count, min_cell, totals.of("clients", outcome))

    published["count"] = [shown(stage, unit, source, count) for stage, unit, source, count in
                          zip(flow["stage"], flow["unit"], flow["source"], flow["count"])]
    return published


def _row(stage: str, source: str, unit: str, reason: str, count: int, instrument: str = ""
         ) -> dict:
    return {"stage": stage, "source": source, "instrument": instrument, "unit": unit,
            "reason": reason, "count": int(count)}
