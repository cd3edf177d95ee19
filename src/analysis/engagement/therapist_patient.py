"""Therapist and patient contributions to the alliance-outcome association (Baldwin et al. 2007).

docs/methods.md section 8. Baldwin, Wampold & Imel (2007, J Consult Clin Psychol 75(6)) split
each client's alliance into the therapist's mean over their clients and the client's deviation
from that mean, and found that the therapists' part predicted outcome and the patients' part did
not; Del Re, Flueckiger, Horvath, Symonds & Wampold (2012) confirmed it across studies.

Input is one row per client (:func:`client_outcome_table` builds it from the long ``derived``
rows of one outcome): ``client_id``, ``therapist_id``, the start and end scores of the outcome
and the client's mean alliance. :func:`split_alliance_by_therapist` adds
``alliance_therapist`` (the therapist's mean of their clients' alliance, centred on the mean over
clients) and ``alliance_client`` (the client's deviation from their therapist's mean), and
:func:`fit_therapist_patient` fits ``end_score ~ start_score + alliance_therapist +
alliance_client + (1 | therapist_id)`` by REML with Satterthwaite df, with the project's engine
(:func:`analysis.models.mixed.protocol.fit_with_fallback`, the therapist term kept), checked against
lmerTest (``tests/test_therapist_patient.py``, through ``tests/r/fit_lmer.R``). Output is a tidy
table (:data:`RESULT_COLUMNS`), one row per term; a design that cannot carry the decomposition
(no therapist ids, too few therapists, too few clients per therapist) gives rows with status
"not_estimated" and the reason, never an error.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import DataError
from analysis.models.mixed.protocol import fit_with_fallback

log = logging.getLogger(__name__)

CLIENT = "client_id"
THERAPIST = "therapist_id"

#: Fewest therapists (each with :data:`MIN_CLIENTS_PER_THERAPIST` clients) for the
#: decomposition. The therapist part is a regression on therapist means: with fewer than 10
#: therapists its slope rests on fewer than 10 points and the therapist variance beside it is
#: poorly estimated (lme4's FAQ asks for at least 5-6 levels for a variance alone; the slope
#: needs more). Baldwin et al. had 80 therapists.
MIN_THERAPISTS = 10
#: Fewest clients for a therapist to enter the model. With one client the client's deviation is
#: 0 by construction and the therapist mean is that client's alliance, so patient and therapist
#: variability cannot be told apart; with two, the therapist mean still carries half of each
#: client's own alliance. Therapists with fewer clients are left out (their clients counted in
#: ``n_clients_excluded``); caseloads above it are weighted as lme4 weights them.
MIN_CLIENTS_PER_THERAPIST = 3

FORMULA = ("end_score ~ start_score + alliance_therapist + alliance_client + "
           "(1 | therapist_id)")
TERMS = ("(Intercept)", "start_score", "alliance_therapist", "alliance_client")
STATUS_ESTIMATED, STATUS_NOT_ESTIMATED = "estimated", "not_estimated"
RESULT_COLUMNS = ["outcome", "term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high",
                  "n_clients", "n_therapists", "n_clients_excluded", "status", "reason",
                  "singular", "converged", "therapist_sd", "residual_sd"]


def client_outcome_table(
    long: pd.DataFrame,
    score_col: str = "symptom_score",
    alliance_col: str = "alliance_score",
    session_col: str = "session",
) -> pd.DataFrame:
    """One row per client: start and end score of one outcome and the mean alliance.

    The start score is the score at the earliest scored session and the end score at the latest
    (docs/methods.md section 2); a client needs at least two scored sessions to have an end
    score. The alliance is the mean of the client's observed alliance scores.

    Parameters
    ----------
    long : DataFrame
        One row per client and session of one outcome (e.g. the ``derived`` rows of it), with
        ``client_id``, ``therapist_id`` (optional), the session, the score and the alliance.
    score_col, alliance_col, session_col : str
        Column names.

    Returns
    -------
    DataFrame
        ``client_id``, ``therapist_id`` (when present), ``start_score``, ``end_score`` (NaN with
        fewer than two scores), ``alliance_mean``, ``n_alliance``.

    Examples
    --------
    >>> rows = pd.DataFrame({"client_id": ["a", "a", "a", "b"], "therapist_id": ["t"] * 4,
    ...                      "session": [1, 2, 3, 1], "symptom_score": [20.0, 15, 11, 9],
    ...                      "alliance_score": [4.0, None, 5.0, 6.0]})
    >>> client_outcome_table(rows)
      client_id therapist_id  start_score  end_score  alliance_mean  n_alliance
    0         a            t         20.0       11.0            4.5           2
    1         b            t          9.0        NaN            6.0           1
    """
    missing = [c for c in (CLIENT, session_col, score_col, alliance_col) if c not in long]
    if missing:
        raise DataError(f"client_outcome_table: column(s) {', '.join(missing)} missing.")
    ordered = long.sort_values([CLIENT, session_col], kind="stable")
    scored = ordered.dropna(subset=[score_col]).groupby(CLIENT)[score_col]
    out = pd.DataFrame({"start_score": scored.first(), "end_score": scored.last(),
                        "n_scores": scored.size()})
    alliance = ordered.groupby(CLIENT)[alliance_col]
    out = out.reindex(alliance.size().index)
    out["end_score"] = out["end_score"].where(out["n_scores"] >= 2)
    out["alliance_mean"] = alliance.mean()
    out["n_alliance"] = alliance.count().astype("int64")
    out = out.drop(columns="n_scores").reset_index()
    out[CLIENT] = out[CLIENT].astype("string")
    if THERAPIST in long:
        therapist = long.dropna(subset=[THERAPIST]).groupby(CLIENT)[THERAPIST].first()
        therapist.index = therapist.index.astype(str)
        out.insert(1, THERAPIST, out[CLIENT].map(therapist).astype("string"))
    return out


def split_alliance_by_therapist(clients: pd.DataFrame,
                                alliance_col: str = "alliance_mean") -> pd.DataFrame:
    """Add the therapist part and the client part of each client's alliance.

    ``alliance_therapist`` = the therapist's mean of their clients' alliance minus the mean over
    all clients (grand-mean centred); ``alliance_client`` = the client's alliance minus their
    therapist's mean. The two add up to the client's alliance minus the grand mean. Means are
    over the rows given (pass the clients that enter the model).

    Parameters
    ----------
    clients : DataFrame
        One row per client with ``therapist_id`` and the alliance.
    alliance_col : str
        The client's alliance column.

    Returns
    -------
    DataFrame
        A copy of ``clients`` with ``alliance_therapist`` and ``alliance_client``.

    Examples
    --------
    >>> clients = pd.DataFrame({"therapist_id": ["t1", "t1", "t2"],
    ...                         "alliance_mean": [4.0, 6.0, 8.0]})
    >>> split_alliance_by_therapist(clients)
      therapist_id  alliance_mean  alliance_therapist  alliance_client
    0           t1            4.0                -1.0             -1.0
    1           t1            6.0                -1.0              1.0
    2           t2            8.0                 2.0              0.0
    """
    alliance = clients[alliance_col].astype(float)
    therapist_mean = alliance.groupby(clients[THERAPIST]).transform("mean")
    return clients.assign(alliance_therapist=therapist_mean - alliance.mean(),
                          alliance_client=alliance - therapist_mean)


def _design_reason(clients: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """Why the decomposition cannot be estimated ("" when it can), and the clients kept."""
    if THERAPIST not in clients or not clients[THERAPIST].notna().any():
        return "the data have no therapist ids", clients.iloc[0:0]
    with_therapist = clients.dropna(subset=[THERAPIST])
    caseload = with_therapist.groupby(THERAPIST)[CLIENT].transform("size")
    kept = with_therapist[caseload >= MIN_CLIENTS_PER_THERAPIST]
    # counts of people may be small: the reasons give the thresholds, never the counts
    if with_therapist[THERAPIST].nunique() < MIN_THERAPISTS:
        return (f"the data have fewer than {MIN_THERAPISTS} therapists with clients who have "
                f"start, end and alliance scores (the decomposition needs at least "
                f"{MIN_THERAPISTS})"), kept
    if kept[THERAPIST].nunique() < MIN_THERAPISTS:
        return (f"fewer than {MIN_THERAPISTS} therapists have at least "
                f"{MIN_CLIENTS_PER_THERAPIST} clients with start, end and alliance scores (the "
                f"decomposition needs at least {MIN_THERAPISTS} such therapists)"), kept
    return "", kept



def therapist_patient_rows(
    clients: pd.DataFrame,
    start_col: str = "start_score",
    end_col: str = "end_score",
    alliance_col: str = "alliance_mean",
) -> tuple[pd.DataFrame, str, dict]:
    """The model rows of :func:`fit_therapist_patient`, why it cannot be fitted, and the counts.

    Parameters
    ----------
    clients : DataFrame
        One row per client (:func:`client_outcome_table`).
    start_col, end_col : str
        The symptom score at the start and at the end of the client's episode.
    alliance_col : str
        The client's alliance.

    Returns
    -------
    (DataFrame, str, dict)
        The clients that enter the model with ``client_id``, ``therapist_id``, ``start_score``,
        ``end_score``, ``alliance_mean``, ``alliance_therapist`` and ``alliance_client`` (also
        the rows of a figure of therapist means against their clients' outcomes); the reason the
        design cannot carry the decomposition ("" when it can: the rows are then the model's);
        and ``n_clients``, ``n_therapists``, ``n_clients_excluded``.

    Examples
    --------
    >>> clients = pd.DataFrame({"client_id": ["a", "b", "c"], "therapist_id": ["t1"] * 3,
    ...                         "start_score": [20.0, 18, 15], "end_score": [10.0, 12, None],
    ...                         "alliance_mean": [5.0, 6, 7]})
    >>> rows, reason, counts = therapist_patient_rows(clients)
    >>> reason.startswith("the data have fewer than 10 therapists")
    True
    >>> counts
    {'n_clients': 0, 'n_therapists': 0, 'n_clients_excluded': 2}
    """
    for name in (CLIENT, start_col, end_col, alliance_col):
        if name not in clients:
            raise DataError(f"fit_therapist_patient: column {name!r} is missing (it has "
                            f"{', '.join(map(str, clients.columns))}).")
    frame = pd.DataFrame({
        CLIENT: clients[CLIENT].astype("string"),
        THERAPIST: (clients[THERAPIST].astype("string") if THERAPIST in clients
                    else pd.Series(pd.NA, index=clients.index, dtype="string")),
        "start_score": clients[start_col].astype(float),
        "end_score": clients[end_col].astype(float),
        "alliance_mean": clients[alliance_col].astype(float),
    })
    complete = frame.dropna(subset=["start_score", "end_score", "alliance_mean"])
    reason, kept = _design_reason(complete)
    excluded = int(complete[THERAPIST].notna().sum() - len(kept))
    counts = {"n_clients": int(len(kept)), "n_therapists": int(kept[THERAPIST].nunique()),
              "n_clients_excluded": excluded}
    rows = split_alliance_by_therapist(kept.reset_index(drop=True))
    return rows, reason, counts


def fit_therapist_patient(
    clients: pd.DataFrame,
    outcome: str = "",
    start_col: str = "start_score",
    end_col: str = "end_score",
    alliance_col: str = "alliance_mean",
    engine: str = "mixedlm",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Baldwin et al.'s decomposition: do therapists' or patients' alliances predict outcome?

    Fits ``end_score ~ start_score + alliance_therapist + alliance_client + (1 | therapist_id)``
    by REML with Satterthwaite df (lmerTest's), through
    :func:`analysis.models.mixed.protocol.fit_with_fallback` with the therapist term kept: a therapist
    variance estimated at 0 is the answer, reported with ``singular`` True, as lmerTest would.
    Clients without a start score, end score, alliance or therapist are left out, then therapists
    with fewer than :data:`MIN_CLIENTS_PER_THERAPIST` such clients; the decomposition is computed
    on the clients that remain (:func:`split_alliance_by_therapist`). With fewer than
    :data:`MIN_THERAPISTS` therapists left, or no therapist ids, nothing is fitted: the rows say
    "not_estimated" and why. Checked against lmerTest to 1e-4 (relative) on fixtures.

    Parameters
    ----------
    clients : DataFrame
        One row per client (:func:`client_outcome_table`): ``client_id``, ``therapist_id``
        (optional), the start and end scores and the mean alliance.
    outcome : str
        The outcome's name, written in the ``outcome`` column.
    start_col, end_col, alliance_col : str
        Column names.
    engine : str
        Mixed-model engine (:func:`analysis.models.mixed.engines.get_engine`).
    conf_level : float
        Level of the CIs (t intervals with the Satterthwaite df).

    Returns
    -------
    DataFrame
        Columns :data:`RESULT_COLUMNS`, one row per term of :data:`TERMS`. ``n_clients`` and
        ``n_therapists`` are those in the model (or that would have been), ``n_clients_excluded``
        the complete clients left out with their therapists' small caseloads; ``therapist_sd`` and
        ``residual_sd`` are the random-effect SDs.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> therapist = np.repeat([f"t{i}" for i in range(20)], 6)
    >>> skill = np.repeat(rng.normal(size=20), 6)
    >>> alliance = 5 + skill + rng.normal(size=120)
    >>> start = rng.normal(16, 4, size=120)
    >>> end = 3 + 0.5 * start - 2 * skill + rng.normal(scale=3, size=120)
    >>> clients = pd.DataFrame({"client_id": [f"c{i}" for i in range(120)],
    ...                         "therapist_id": therapist, "start_score": start,
    ...                         "end_score": end, "alliance_mean": alliance})
    >>> table = fit_therapist_patient(clients, "phq9")
    >>> table[["term", "estimate", "se", "df", "p"]].round(3)
                     term  estimate     se       df      p
    0         (Intercept)     4.269  1.156  115.047  0.000
    1         start_score     0.465  0.072  114.528  0.000
    2  alliance_therapist    -1.553  0.399   18.557  0.001
    3     alliance_client    -0.244  0.312   98.188  0.435
    >>> first = table.iloc[0]
    >>> int(first["n_clients"]), int(first["n_therapists"]), first["status"]
    (120, 20, 'estimated')
    >>> print(fit_therapist_patient(clients.drop(columns="therapist_id"))["reason"].iloc[0])
    the data have no therapist ids
    """
    rows, reason, counts = therapist_patient_rows(clients, start_col, end_col, alliance_col)
    if reason:
        return _not_estimated(outcome, reason, counts)
    try:
        fit, _ = fit_with_fallback(rows, FORMULA, reml=True, engine=engine,
                                   label=f"{outcome} therapist-patient alliance",
                                   keep_groups=(THERAPIST,))
    except DataError as error:
        return _not_estimated(outcome, f"the model could not be fitted: {error}", counts)
    fixed = fit.fixed.set_index("term").reindex(list(TERMS))
    # t intervals with the Satterthwaite df of each term: estimate -/+ t quantile x SE
    half = stats.t.ppf(0.5 + conf_level / 2, fixed["df"]) * fixed["se"]
    fixed["ci_low"], fixed["ci_high"] = fixed["estimate"] - half, fixed["estimate"] + half
    random = fit.random.set_index("group")["sd"]
    out = fixed.reset_index()[["term", "estimate", "se", "df", "t", "p", "ci_low", "ci_high"]]
    out.insert(0, "outcome", outcome)
    out = out.assign(**counts, status=STATUS_ESTIMATED, reason="",
                     singular=bool(fit.info.get("singular")),
                     converged=bool(fit.info.get("converged")),
                     therapist_sd=float(random.get(THERAPIST, np.nan)),
                     residual_sd=float(random.get("Residual", np.nan)))
    return out[RESULT_COLUMNS]


def _not_estimated(outcome: str, reason: str, counts: dict) -> pd.DataFrame:
    log.info("%s: therapist-patient alliance not estimated: %s", outcome, reason)
    out = pd.DataFrame({"outcome": outcome, "term": list(TERMS)})
    for name in ("estimate", "se", "df", "t", "p", "ci_low", "ci_high"):
        out[name] = np.nan
    out = out.assign(**counts, status=STATUS_NOT_ESTIMATED, reason=reason, singular=pd.NA,
                     converged=pd.NA, therapist_sd=np.nan, residual_sd=np.nan)
    return out[RESULT_COLUMNS]


__all__ = [
    "FORMULA",
    "MIN_CLIENTS_PER_THERAPIST",
    "MIN_THERAPISTS",
    "RESULT_COLUMNS",
    "client_outcome_table",
    "fit_therapist_patient",
    "split_alliance_by_therapist",
    "therapist_patient_rows",
]
