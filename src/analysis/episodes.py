"""Episode outcomes: pre-post change, reliable change, caseness, recovery and Jacobson-Truax.

An episode is one client's course on one outcome instrument (docs/methods.md section 2). Input is
``scores.parquet`` (per administration) and ``sessions.parquet`` (the session registry, for the
therapist); output is ``episodes.parquet`` (one row per client and outcome instrument, from
:func:`compute_episodes`), a per-client table of combined NHS Talking Therapies style flags
(:func:`combine_episodes`), the Jacobson-Truax parameters used (:func:`jacobson_truax_parameters`)
and the published summary with small counts suppressed (:func:`summarise_episodes`). Every client
in the session registry (or with an outcome score) gets a row for every outcome, so episodes with
fewer than two scores are counted, never silently dropped; their outcome flags are <NA>.

The ``episodes`` config section (every key optional; defaults shown)::

    episodes:
      caseness_rule: any_outcome        # any_outcome | all_outcomes: combined caseness at start
                                        # is a case on any (NHS Talking Therapies) / every measure
      recovery_rule: all_outcomes       # all_outcomes | cased_outcomes: recovery needs every
                                        # measure below caseness at the end / only those that
                                        # were a case at the start
      reliable_change_rule: any_without_opposite   # any_without_opposite | all_outcomes
      rci_criterion: 1.96               # |RC| above this is reliable (Jacobson & Truax, 1991)
      reliability: {}                   # r_xx per instrument, e.g. {phq9: 0.84}
      functional_norms: {}              # per instrument, e.g. {phq9: {mean: 3.3, sd: 3.8}}

``r_xx`` for Jacobson-Truax comes from ``episodes.reliability``, else from the instrument's
``reliability`` in the registry, else from Cronbach's alpha of each client's first complete
administration in the data (computed by :func:`analysis.jacobson_truax.estimate_sample_reliability`, passed in as
``sample_reliability``). Functional norms come from ``episodes.functional_norms``, else from the
instrument's ``functional_mean``/``functional_sd``.
"""

from __future__ import annotations

import logging
import math
from typing import Mapping

import numpy as np
import pandas as pd

from analysis.errors import DataError
from analysis.instruments import Instrument
from analysis.privacy import format_count, publish_rate
from analysis.jacobson_truax import estimate_sample_reliability, jacobson_truax_parameters
from analysis.settings import EpisodeSettings

log = logging.getLogger(__name__)


EPISODE_COLUMNS = [
    "client_id",
    "therapist_id",
    "outcome",
    "n_scored",
    "first_session",
    "last_session",
    "first_score",
    "last_score",
    "change",
    "improvement",
    "has_outcome",
    "caseness_cutoff",
    "reliable_change_threshold",
    "case_start",
    "case_end",
    "reliable_improvement",
    "reliable_deterioration",
    "rci",
    "jt_reliable_improvement",
    "jt_reliable_deterioration",
    "jt_clinically_significant",
    "jt_recovered",
]

#: What the summary says for a measure without a definition (e.g. recovery without a cut-off).
NOT_DEFINED = "not defined"

SUMMARY_COLUMNS = [
    "outcome", "measure", "n_episodes", "n_with_outcome", "n_denominator", "count", "rate"
]

# Measures in the published summary, in the order shown.
OUTCOME_MEASURES = [
    "has_outcome",
    "case_start",
    "case_end",
    "reliable_improvement",
    "reliable_deterioration",
    "jt_reliable_improvement",
    "jt_reliable_deterioration",
    "jt_clinically_significant",
    "jt_recovered",
]
COMBINED_MEASURES = [
    "has_outcome",
    "case_start",
    "recovery",
    "reliable_improvement",
    "reliable_deterioration",
    "reliable_recovery",
]


def run_episodes(
    scores: pd.DataFrame, sessions: pd.DataFrame, administrations: pd.DataFrame,
    settings: EpisodeSettings,
) -> dict[str, pd.DataFrame]:
    """The episodes stage: outcomes per client and outcome, the combined flags and the
    Jacobson-Truax parameters (published by :func:`publish_episodes`).

    Parameters
    ----------
    scores : DataFrame
        ``scores.parquet`` (``client_id, session, instrument, score``).
    sessions : DataFrame
        ``sessions.parquet`` (``client_id, therapist_id, session``).
    administrations : DataFrame
        ``administrations.parquet`` (items, for Cronbach's alpha as ``r_xx`` when neither config
        nor registry gives a reliability).
    settings : EpisodeSettings
        The outcome instruments and the ``episodes`` config section.

    Returns
    -------
    dict of str to DataFrame
        ``episodes`` (:func:`compute_episodes`), ``combined`` (:func:`combine_episodes`) and
        ``parameters`` (:func:`jacobson_truax_parameters`).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.scoring import score_administrations
    >>> settings = EpisodeSettings(outcomes=("gad7",), reliability={"gad7": 0.85},
    ...                            instruments={"gad7": BUILT_IN["gad7"].params("episodes")})
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "b", "b", "c", "c"],
    ...                          "therapist_id": ["t1"] * 6, "session": [1, 2] * 3})
    >>> items = [[2, 2, 3, 2, 1, 2, 2], [1, 1, 1, 0, 0, 1, 1], [3, 2, 2, 2, 1, 2, 2],
    ...          [2, 2, 2, 2, 1, 2, 2], [0, 1, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 0]]
    >>> administrations = pd.DataFrame(items, columns=[f"item_{i}" for i in range(1, 8)]).assign(
    ...     client_id=sessions["client_id"], session=sessions["session"], instrument="gad7",
    ...     given_total=float("nan"))
    >>> scores = score_administrations(administrations, settings.registry())
    >>> out = run_episodes(scores, sessions, administrations, settings)
    >>> {name: len(table) for name, table in out.items()}
    {'episodes': 3, 'combined': 3, 'parameters': 1}
    """
    reliability = estimate_sample_reliability(administrations, settings.registry(),
                                              settings.outcomes)
    episodes = compute_episodes(scores, sessions, settings, reliability)
    combined = combine_episodes(episodes, settings)
    return {
        "episodes": episodes,
        "combined": combined,
        "parameters": jacobson_truax_parameters(episodes, settings, reliability),
    }


def compute_episodes(
    scores: pd.DataFrame,
    sessions: pd.DataFrame,
    settings: EpisodeSettings,
    sample_reliability: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per (client, outcome instrument): pre-post change and its interpretation.

    Parameters
    ----------
    scores : DataFrame
        ``scores.parquet``: ``client_id, session, instrument, score`` (other columns ignored).
    sessions : DataFrame
        ``sessions.parquet``: ``client_id, therapist_id, session``.
    settings : EpisodeSettings
        The outcome instruments (``analysis.outcomes``) and the ``episodes`` config section.
    sample_reliability : mapping of str to float, optional
        Cronbach's alpha per instrument from :func:`estimate_sample_reliability`, used as
        ``r_xx`` when neither config nor registry gives one.

    Returns
    -------
    DataFrame
        Sorted by outcome (in the order of ``outcomes``) then ``client_id``, with columns:

        - ``client_id``, ``therapist_id`` (the therapist of most of the client's sessions, ties
          to the earliest; <NA> if none recorded), ``outcome`` (instrument key).
        - ``n_scored`` (int): sessions with a score; ``first_session``, ``last_session`` (Int64)
          and ``first_score``, ``last_score`` (float) at the earliest and latest scored session.
        - ``change`` = last - first, ``improvement`` = change signed so that positive is better
          (NaN without an outcome); ``has_outcome`` (bool): n_scored >= 2.
        - ``caseness_cutoff``, ``reliable_change_threshold`` (float or NaN): the registry values.
        - ``case_start`` (caseness of the first score; <NA> without a score or cut-off),
          ``case_end`` (of the last score; <NA> without an outcome).
        - ``reliable_improvement`` / ``reliable_deterioration``: improvement / worsening of at
          least the reliable-change threshold (<NA> without an outcome or threshold).
        - ``rci``: Jacobson-Truax RC = change / S_diff; ``jt_reliable_improvement`` /
          ``jt_reliable_deterioration``: |RC| above ``rci_criterion`` in the better / worse
          direction; ``jt_clinically_significant``: started on the dysfunctional side of the
          cut-off and ended on the functional side (<NA> unless it started dysfunctional);
          ``jt_recovered``: clinically significant and reliably improved.

    Notes
    -----
    Jacobson & Truax (1991), J Consult Clin Psychol 59(1), 12-19; parameters from
    :func:`jacobson_truax_parameters`.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> settings = EpisodeSettings(outcomes=("phq9",), reliability={"phq9": 0.84},
    ...                            instruments={"phq9": BUILT_IN["phq9"].params("episodes")})
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "a", "b", "b", "c"],
    ...                          "therapist_id": ["t1"] * 3 + ["t2"] * 3,
    ...                          "session": [1, 2, 3, 1, 2, 1]})
    >>> scores = sessions.assign(instrument="phq9", score=[18.0, 12.0, 6.0, 12.0, 11.0, 9.0])
    >>> episodes = compute_episodes(scores, sessions, settings)
    >>> episodes[["client_id", "n_scored", "first_score", "last_score", "improvement"]]
      client_id  n_scored  first_score  last_score  improvement
    0         a         3         18.0         6.0         12.0
    1         b         2         12.0        11.0          1.0
    2         c         1          9.0         9.0          NaN
    >>> episodes[["client_id", "case_start", "case_end", "reliable_improvement", "jt_recovered"]]
      client_id  case_start  case_end  reliable_improvement  jt_recovered
    0         a        True     False                  True          True
    1         b        True      True                 False         False
    2         c       False      <NA>                  <NA>          <NA>
    """
    registry = settings.registry()
    instruments = [registry[key] for key in settings.outcomes]
    episodes = _episode_scores(scores, sessions, [inst.key for inst in instruments])
    parameters = jacobson_truax_parameters(
        episodes, settings, sample_reliability
    ).set_index("outcome").reindex([inst.key for inst in instruments])

    parts = []
    for instrument in instruments:
        part = episodes[episodes["outcome"] == instrument.key].copy()
        part = _interpret(part, instrument, parameters.loc[instrument.key], settings)
        parts.append(part)
    result = pd.concat(parts, ignore_index=True) if parts else episodes.iloc[0:0]
    return result[EPISODE_COLUMNS].reset_index(drop=True)


def _episode_scores(
    scores: pd.DataFrame, sessions: pd.DataFrame, outcomes: list[str]
) -> pd.DataFrame:
    """First and last scored session of every (outcome, client), therapist from the registry."""
    needed = ("client_id", "session", "instrument", "score")
    missing = [c for c in needed if c not in scores.columns]
    if missing:
        raise DataError(f"scores: column(s) {', '.join(missing)} missing.")
    missing = [c for c in ("client_id", "therapist_id", "session") if c not in sessions.columns]
    if missing:
        raise DataError(f"sessions: column(s) {', '.join(missing)} missing.")

    outcome_scores = scores.loc[
        scores["instrument"].isin(outcomes), ["client_id", "session", "instrument", "score"]
    ]
    duplicated = outcome_scores.duplicated(["instrument", "client_id", "session"])
    if duplicated.any():
        first = outcome_scores.loc[duplicated, "instrument"].iloc[0]
        raise DataError(
            f"scores: {int(duplicated.sum())} row(s) repeat a (client, session) already scored on "
            f"the same instrument (e.g. {first}); each administration must appear once."
        )
    scored = outcome_scores[outcome_scores["score"].notna()].sort_values(
        ["instrument", "client_id", "session"], kind="stable"
    )
    grouped = scored.groupby(["instrument", "client_id"], sort=False)
    summary = pd.DataFrame(
        {
            "n_scored": grouped.size(),
            "first_session": grouped["session"].first(),
            "last_session": grouped["session"].last(),
            "first_score": grouped["score"].first(),
            "last_score": grouped["score"].last(),
        }
    )
    summary.index = summary.index.set_names(["outcome", "client_id"])

    all_ids = pd.concat([sessions["client_id"], outcome_scores["client_id"]]).astype("string")
    clients = pd.Index(all_ids.dropna().unique()).sort_values()
    grid = pd.MultiIndex.from_product([outcomes, clients], names=["outcome", "client_id"])
    episodes = summary.reindex(grid).reset_index()
    episodes["n_scored"] = episodes["n_scored"].fillna(0).astype("int64")
    episodes["first_session"] = episodes["first_session"].astype("Int64")
    episodes["last_session"] = episodes["last_session"].astype("Int64")
    episodes["first_score"] = episodes["first_score"].astype("float64")
    episodes["last_score"] = episodes["last_score"].astype("float64")
    episodes["outcome"] = episodes["outcome"].astype("string")
    episodes["client_id"] = episodes["client_id"].astype("string")
    therapists = main_therapist(sessions)
    episodes["therapist_id"] = (
        episodes["client_id"].map(therapists).astype("string")
        if len(therapists)
        else pd.Series(pd.NA, index=episodes.index, dtype="string")
    )
    return episodes


def main_therapist(sessions: pd.DataFrame) -> pd.Series:
    """Each client's therapist: the one at most of their sessions, ties to the earliest session.

    Returns a Series indexed by ``client_id`` (clients without any recorded therapist absent).

    Parameters
    ----------
    sessions : DataFrame
        The session registry (``client_id``, ``therapist_id``, ``session``).

    Returns
    -------
    Series
        The therapist of each client, indexed by ``client_id``.

    Examples
    --------
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "a", "b", "b", "c"],
    ...                          "therapist_id": ["t1", "t2", "t2", "t3", "t1", None],
    ...                          "session": [1, 2, 3, 1, 2, 1]})
    >>> main_therapist(sessions)
    a    t2
    b    t3
    dtype: string
    """
    known = sessions.loc[sessions["therapist_id"].notna(), ["client_id", "therapist_id", "session"]]
    if known.empty:
        return pd.Series([], dtype="string")
    counts = (
        known.groupby(["client_id", "therapist_id"], sort=False)["session"]
        .agg(n_sessions="size", first_session="min")
        .reset_index()
        .sort_values(
            ["client_id", "n_sessions", "first_session"],
            ascending=[True, False, True],
            kind="stable",
        )
        .drop_duplicates("client_id")
    )
    return pd.Series(
        counts["therapist_id"].astype("string").to_numpy(),
        index=counts["client_id"].astype("string").to_numpy(),
        dtype="string",
    )


def _interpret(
    part: pd.DataFrame, instrument: Instrument, parameters: pd.Series, settings: dict
) -> pd.DataFrame:
    has_outcome = (part["n_scored"] >= 2).to_numpy()
    first = part["first_score"].to_numpy(dtype="float64")
    last = part["last_score"].to_numpy(dtype="float64")
    change = np.where(has_outcome, last - first, np.nan)
    improvement = instrument.improvement(change)

    part["change"] = change
    part["improvement"] = improvement
    part["has_outcome"] = has_outcome
    part["caseness_cutoff"] = np.nan if instrument.caseness is None else float(instrument.caseness)
    threshold = instrument.reliable_change
    part["reliable_change_threshold"] = np.nan if threshold is None else float(threshold)
    part["case_start"] = instrument.is_case(first)
    part["case_end"] = instrument.is_case(np.where(has_outcome, last, np.nan))

    known = has_outcome & (threshold is not None)
    limit = np.inf if threshold is None else float(threshold)
    with np.errstate(invalid="ignore"):
        part["reliable_improvement"] = _flag(improvement >= limit, known)
        part["reliable_deterioration"] = _flag(-improvement >= limit, known)

    s_diff = float(parameters["s_diff"])
    criterion = float(settings.rci_criterion)
    usable = math.isfinite(s_diff) and s_diff > 0
    rci = change / s_diff if usable else np.full(len(part), np.nan)
    oriented_rci = instrument.improvement(rci)
    rci_known = has_outcome & usable
    with np.errstate(invalid="ignore"):
        jt_improved = oriented_rci > criterion
        part["rci"] = rci
        part["jt_reliable_improvement"] = _flag(jt_improved, rci_known)
        part["jt_reliable_deterioration"] = _flag(oriented_rci < -criterion, rci_known)

    cutoff = float(parameters["cutoff"])
    with np.errstate(invalid="ignore"):
        if instrument.direction == "higher_worse":
            dysfunctional_start = first >= cutoff
            functional_end = last < cutoff
        else:
            dysfunctional_start = first <= cutoff
            functional_end = last > cutoff
    crossing_known = has_outcome & math.isfinite(cutoff) & dysfunctional_start
    part["jt_clinically_significant"] = _flag(functional_end, crossing_known)
    part["jt_recovered"] = _flag(functional_end & jt_improved, crossing_known & rci_known)
    return part


def _flag(values: np.ndarray, known: np.ndarray) -> pd.arrays.BooleanArray:
    """A nullable boolean array: ``values`` where ``known``, else <NA>."""
    values = np.asarray(values, dtype=bool) & np.asarray(known, dtype=bool)
    return pd.arrays.BooleanArray(values, ~np.asarray(known, dtype=bool))


def combine_episodes(episodes: pd.DataFrame, settings: EpisodeSettings) -> pd.DataFrame:
    """One row per client: caseness, recovery and reliable change over all outcome measures.

    Parameters
    ----------
    episodes : DataFrame
        From :func:`compute_episodes`.
    settings : EpisodeSettings
        The outcome instruments to combine (``analysis.outcomes``) and the rules
        ``caseness_rule``, ``recovery_rule``, ``reliable_change_rule``.

    Returns
    -------
    DataFrame
        Sorted by ``client_id``: ``client_id, therapist_id``, ``n_outcomes_with_outcome`` (int),
        ``has_outcome`` (bool: two or more scores on every outcome measure), and nullable boolean
        flags:

        - ``case_start``: a case at the first score on any measure (``caseness_rule:
          any_outcome``, NHS Talking Therapies) or on every measure (``all_outcomes``); measures
          without a cut-off are left out; <NA> when it cannot be decided.
        - ``recovery``: a case at start and, at the end, below caseness on every measure
          (``recovery_rule: all_outcomes``) or on each measure that was a case at start
          (``cased_outcomes``); <NA> without an outcome or when not a case at start.
        - ``reliable_improvement``: reliable improvement on at least one measure and reliable
          deterioration on none (``reliable_change_rule: any_without_opposite``) or reliable
          improvement on every measure (``all_outcomes``); measures without a threshold are left
          out. ``reliable_deterioration``: the mirror image.
        - ``reliable_recovery``: recovery and reliable improvement (<NA> where recovery is).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> settings = EpisodeSettings(outcomes=("phq9", "gad7"), instruments={
    ...     key: BUILT_IN[key].params("episodes") for key in ("phq9", "gad7")})
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "b", "b"], "therapist_id": ["t1"] * 4,
    ...                          "session": [1, 8, 1, 8]})
    >>> scores = pd.DataFrame({"client_id": ["a", "a", "b", "b"] * 2, "session": [1, 8] * 4,
    ...                        "instrument": ["phq9"] * 4 + ["gad7"] * 4,
    ...                        "score": [18.0, 6.0, 12.0, 11.0, 14.0, 5.0, 9.0, 12.0]})
    >>> episodes = compute_episodes(scores, sessions, settings)
    >>> combine_episodes(episodes, settings)[["client_id", "case_start", "recovery",
    ...                                       "reliable_improvement", "reliable_recovery"]]
      client_id  case_start  recovery  reliable_improvement  reliable_recovery
    0         a        True      True                  True               True
    1         b        True     False                 False              False
    """
    outcomes = list(settings.outcomes)
    selected = episodes[episodes["outcome"].isin(outcomes)]
    clients = pd.Index(selected["client_id"].astype("string").dropna().unique()).sort_values()

    row_of = clients.get_indexer(selected["client_id"].astype("string"))
    column_of = pd.Index(outcomes).get_indexer(selected["outcome"].astype("string"))

    def wide(column: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, known) as client x outcome arrays; an absent episode is unknown."""
        table = np.full((len(clients), len(outcomes)), np.nan)
        table[row_of, column_of] = selected[column].astype("Float64").to_numpy(
            dtype="float64", na_value=np.nan
        )
        known = ~np.isnan(table)
        return known & (table != 0), known

    has_each, _ = wide("has_outcome")
    has_all = has_each.all(axis=1) if outcomes else np.zeros(len(clients), dtype=bool)
    _, case_applies = wide("caseness_cutoff")
    _, change_applies = wide("reliable_change_threshold")
    start, start_known = wide("case_start")
    end, end_known = wide("case_end")
    improved, improved_known = wide("reliable_improvement")
    worse, worse_known = wide("reliable_deterioration")

    if settings.caseness_rule == "any_outcome":
        case_start, case_start_known = _kleene_any(start, start_known, case_applies)
    else:
        case_start, case_start_known = _kleene_all(start, start_known, case_applies)

    if settings.recovery_rule == "all_outcomes":
        must_end_below = case_applies
    else:
        must_end_below = case_applies & start & start_known
    ended_case = (end & end_known & must_end_below).any(axis=1)
    recovery_known = has_all & case_start_known & case_start & case_applies.any(axis=1)
    recovery = recovery_known & ~ended_case

    n_change = change_applies.sum(axis=1)
    change_known = has_all & (n_change > 0)
    any_improved = (improved & improved_known & change_applies).any(axis=1)
    any_worse = (worse & worse_known & change_applies).any(axis=1)
    if settings.reliable_change_rule == "any_without_opposite":
        reliable_improvement = any_improved & ~any_worse
        reliable_deterioration = any_worse & ~any_improved
    else:
        reliable_improvement = ((improved & change_applies) == change_applies).all(axis=1)
        reliable_deterioration = ((worse & change_applies) == change_applies).all(axis=1)

    therapist = (
        selected.dropna(subset=["therapist_id"]).drop_duplicates("client_id")
        .set_index("client_id")["therapist_id"].reindex(clients)
    )
    combined = pd.DataFrame(
        {
            "client_id": pd.array(clients.to_numpy(), dtype="string"),
            "therapist_id": pd.array(therapist.to_numpy(), dtype="string"),
            "n_outcomes_with_outcome": has_each.sum(axis=1).astype("int64"),
            "has_outcome": has_all,
            "case_start": _flag(case_start, case_start_known),
            "recovery": _flag(recovery, recovery_known),
            "reliable_improvement": _flag(reliable_improvement, change_known),
            "reliable_deterioration": _flag(reliable_deterioration, change_known),
            "reliable_recovery": _flag(
                recovery & reliable_improvement, recovery_known & change_known
            ),
        }
    )
    return combined


def _kleene_any(
    values: np.ndarray, known: np.ndarray, applies: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise three-valued OR over the applicable columns: True wins, else unknown wins."""
    any_true = (values & known & applies).any(axis=1)
    any_unknown = (~known & applies).any(axis=1)
    decided = any_true | (~any_unknown & applies.any(axis=1))
    return any_true, decided


def _kleene_all(
    values: np.ndarray, known: np.ndarray, applies: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise three-valued AND over the applicable columns: False wins, else unknown wins."""
    any_false = (~values & known & applies).any(axis=1)
    any_unknown = (~known & applies).any(axis=1)
    decided = any_false | (~any_unknown & applies.any(axis=1))
    return ~any_false & decided, decided


def summarise_episodes(
    episodes: pd.DataFrame, combined: pd.DataFrame, min_cell: int
) -> pd.DataFrame:
    """The published episode summary: counts and rates per outcome and measure, small cells hidden.

    Parameters
    ----------
    episodes : DataFrame
        From :func:`compute_episodes`.
    combined : DataFrame
        From :func:`combine_episodes`.
    min_cell : int
        Counts of people below this (and above 0) are shown as "<min_cell"
        (``privacy.min_cell_count``).

    Returns
    -------
    DataFrame
        One row per (outcome, measure), outcomes in order of appearance then ``combined``:
        ``outcome, measure``, ``n_episodes`` (episodes, or clients for ``combined``),
        ``n_with_outcome`` (two or more scores), ``n_denominator`` (episodes for which the measure
        is defined: all for ``has_outcome``; those with a first score for ``case_start``; those
        with an outcome for the change measures; those a case / on the dysfunctional side at start
        for recovery and clinical significance), ``count`` (True) - these four as text from
        :func:`analysis.privacy.format_count`, each with the total it is part of - and ``rate`` =
        count / n_denominator (:func:`analysis.privacy.publish_rate`: NaN when the count or the
        denominator is suppressed or the denominator is 0). A measure whose
        definition is missing (no caseness cut-off, no reliable-change threshold, no r_xx) says
        "not defined" instead of counting zero.

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> settings = EpisodeSettings(outcomes=("phq9",), reliability={"phq9": 0.84},
    ...                            instruments={"phq9": BUILT_IN["phq9"].params("episodes")})
    >>> clients = [f"c{i}" for i in range(12)]
    >>> sessions = pd.DataFrame({"client_id": clients * 2, "therapist_id": "t1",
    ...                          "session": [1] * 12 + [8] * 12})
    >>> first = [18.0, 16, 15, 14, 12, 12, 11, 10, 10, 8, 6, 5]
    >>> last = [6.0, 7, 14, 5, 11, 4, 12, 9, 3, 8, 6, 4]
    >>> scores = sessions.assign(instrument="phq9", score=first + last)
    >>> episodes = compute_episodes(scores, sessions, settings)
    >>> summary = summarise_episodes(episodes, combine_episodes(episodes, settings), min_cell=5)
    >>> summary.query("outcome == 'phq9'")[["measure", "n_denominator", "count", "rate"]].round(3)
                         measure n_denominator count   rate
    0                has_outcome            12    12  1.000
    1                 case_start            12    >7    NaN
    2                   case_end            12    <5    NaN
    3       reliable_improvement            12     5  0.417
    4     reliable_deterioration            12     0  0.000
    5    jt_reliable_improvement            12     5  0.417
    6  jt_reliable_deterioration            12     0  0.000
    7  jt_clinically_significant            12    <5    NaN
    8               jt_recovered            12    <5    NaN
    """
    rows = []
    for outcome in pd.unique(episodes["outcome"].astype("string")):
        part = episodes[episodes["outcome"] == outcome]
        rows.extend(_summary_rows(str(outcome), part, OUTCOME_MEASURES, min_cell,
                                  _undefined(part, OUTCOME_MEASURES), clients=len(combined)))
    rows.extend(_summary_rows("combined", combined, COMBINED_MEASURES, min_cell,
                              _undefined(episodes, COMBINED_MEASURES)))
    summary = pd.DataFrame(
        rows,
        columns=SUMMARY_COLUMNS,
    )
    for column in SUMMARY_COLUMNS[:-1]:
        summary[column] = summary[column].astype("string")
    summary["rate"] = summary["rate"].astype("float64")
    return summary


#: What each measure needs to be defined: a column of ``episodes`` that must not be all missing.
MEASURE_NEEDS = {
    "case_start": "caseness_cutoff",
    "case_end": "caseness_cutoff",
    "recovery": "caseness_cutoff",
    # reliable recovery is reliable improvement and recovery: it needs both definitions
    "reliable_recovery": ("caseness_cutoff", "reliable_change_threshold"),
    "reliable_improvement": "reliable_change_threshold",
    "reliable_deterioration": "reliable_change_threshold",
    "jt_reliable_improvement": "rci",
    "jt_reliable_deterioration": "rci",
    "jt_clinically_significant": "rci",
    "jt_recovered": "rci",
}


def _undefined(episodes: pd.DataFrame, measures: list[str]) -> set[str]:
    # A measure is undefined when what it needs is missing for every episode (e.g. an outcome
    # without a caseness cut-off has no caseness and no recovery): "not defined", not zero.
    def missing(column: str) -> bool:
        return column in episodes.columns and bool(
            pd.to_numeric(episodes[column], errors="coerce").isna().all())

    return {measure for measure in measures if measure in MEASURE_NEEDS and any(
        missing(column) for column in np.atleast_1d(MEASURE_NEEDS[measure]))}


def _summary_rows(outcome: str, frame: pd.DataFrame, measures: list[str], min_cell: int,
                  undefined: set[str], clients: int | None = None) -> list:
    # Every count goes through analysis.privacy.format_count with the total it is part of
    # (complementary suppression), and a rate is published only when neither its count nor its
    # denominator is hidden (publish_rate): a rate beside a hidden count would reveal it.
    n_episodes = len(frame)
    n_with_outcome = int(frame["has_outcome"].astype(bool).sum())
    rows = []
    for measure in measures:
        base = {"outcome": outcome, "measure": measure,
                "n_episodes": format_count(n_episodes, min_cell, clients),
                "n_with_outcome": format_count(n_with_outcome, min_cell, n_episodes)}
        if measure in undefined:
            rows.append({**base, "n_denominator": NOT_DEFINED, "count": NOT_DEFINED,
                         "rate": math.nan})
            continue
        if measure == "has_outcome":
            denominator, count = n_episodes, n_with_outcome
        else:
            flags = frame[measure].astype("boolean")
            denominator = int(flags.notna().sum())
            count = int(flags.fillna(False).astype(bool).sum())
        rate = publish_rate(count, denominator, min_cell, total=n_episodes)
        count_shown = format_count(count, min_cell, denominator)
        if math.isnan(rate) and denominator and count_shown == str(count):
            # the denominator is hidden: the count beside it must not give it back either
            count_shown = format_count(count, min_cell, n_episodes)
        rows.append({**base, "n_denominator": format_count(denominator, min_cell, n_episodes),
                     "count": count_shown, "rate": rate})
    return rows


def publish_episodes(episodes: pd.DataFrame, combined: pd.DataFrame,
                     parameters: pd.DataFrame, min_cell: int) -> dict[str, pd.DataFrame]:
    """The published episode tables: the summary and the Jacobson-Truax parameters, with counts
    of people below ``min_cell`` hidden (``privacy.min_cell_count``).

    Parameters
    ----------
    episodes : DataFrame
        From :func:`compute_episodes`.
    combined : DataFrame
        From :func:`combine_episodes`.
    parameters : DataFrame
        From :func:`jacobson_truax_parameters`.
    min_cell : int
        The smallest count of people published as a number.

    Returns
    -------
    dict of str to DataFrame
        ``summary`` (:func:`summarise_episodes`) and ``jacobson_truax`` (the parameters with
        ``n_with_outcome`` as published text).

    Examples
    --------
    >>> from analysis.instruments import BUILT_IN
    >>> settings = EpisodeSettings(outcomes=("phq9",), reliability={"phq9": 0.84},
    ...                            instruments={"phq9": BUILT_IN["phq9"].params("episodes")})
    >>> sessions = pd.DataFrame({"client_id": ["a", "a", "b", "b", "c", "c"],
    ...                          "therapist_id": ["t1"] * 6, "session": [1, 2] * 3})
    >>> scores = sessions.assign(instrument="phq9", score=[18.0, 12.0, 12.0, 11.0, 9.0, 4.0])
    >>> episodes = compute_episodes(scores, sessions, settings)
    >>> tables = publish_episodes(episodes, combine_episodes(episodes, settings),
    ...                           jacobson_truax_parameters(episodes, settings), min_cell=5)
    >>> sorted(tables)
    ['jacobson_truax', 'summary']
    >>> tables["jacobson_truax"][["outcome", "n_with_outcome", "r_xx"]]
      outcome n_with_outcome  r_xx
    0    phq9             <5  0.84
    """
    published = parameters.copy()
    # beside the outcome's episodes (published in the summary): complementary suppression
    totals = episodes.groupby("outcome").size().to_dict() if "outcome" in episodes else {}
    published["n_with_outcome"] = pd.array(
        [format_count(int(n), min_cell, totals.get(outcome))
         for outcome, n in zip(parameters["outcome"], parameters["n_with_outcome"])],
        dtype="string")
    return {"summary": summarise_episodes(episodes, combined, min_cell),
            "jacobson_truax": published}

