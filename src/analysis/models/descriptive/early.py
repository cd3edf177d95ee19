"""M4: does the early alliance predict pre-post symptom change?

One row per client with an episode outcome (``episodes.parquet``, at least two scores) joined to
the client's early alliance (``derived.parquet``); OLS ``change ~ first_score + alliance_early``
with standard errors clustered by therapist (statsmodels), as docs/methods.md section 4 specifies.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.errors import DataError, require_columns
from analysis.models.mixed.design import therapist_design
from analysis.models.mixed.engines import INTERCEPT
from analysis.models.mixed.records import records
from analysis.models.mixed.specs import ResolvedFit, split_formula
from analysis.models.mixed.standardise import standardised_estimates


def early_alliance_rows(
    derived: pd.DataFrame, episodes: pd.DataFrame, outcome: str,
    completers_min_sessions: int | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per client with an episode outcome: change, first score, early alliance, therapist.

    Episodes need ``n_scored >= 2``; ``alliance_early`` and ``n_sessions`` are client-level
    columns of ``derived``. Rows missing any of them or the therapist are dropped and counted.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet`` (``outcome, client_id, alliance_early, n_sessions``).
    episodes : DataFrame
        ``episodes.parquet`` (``client_id, therapist_id, outcome, n_scored, first_score,
        change``).
    outcome : str
        The outcome instrument.
    completers_min_sessions : int, optional
        Keep only clients with at least this many sessions.

    Returns
    -------
    (DataFrame, dict)
        The model rows and the row accounting (``n_episodes``, ``n_episodes_fewer_than_2_scores``,
        ``n_not_completers``, ``missing_by_variable``, ``n_rows_missing``, ``n_obs``, and
        ``cluster``: the column the SEs are clustered by).

    Raises
    ------
    DataError
        When a needed column is missing.

    Examples
    --------
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived()
    >>> scored = derived.dropna(subset=["symptom_score"])
    >>> episodes = scored.groupby("client_id", as_index=False).agg(
    ...     therapist_id=("therapist_id", "first"), n_scored=("symptom_score", "size"),
    ...     first_score=("symptom_score", "first"), last_score=("symptom_score", "last"))
    >>> episodes = episodes.assign(outcome="phq9",
    ...                            change=episodes["last_score"] - episodes["first_score"])
    >>> rows, counts = early_alliance_rows(derived, episodes, "phq9", completers_min_sessions=6)
    >>> rows.columns.tolist()
    ['client_id', 'therapist_id', 'outcome', 'n_scored', 'first_score', 'change',
     'alliance_early', 'n_sessions']
    >>> counts
    {'n_episodes': 40, 'n_episodes_fewer_than_2_scores': 0, 'n_not_completers': 11,
     'missing_by_variable': {}, 'n_rows_missing': 0, 'n_obs': 29, 'cluster': 'therapist_id'}
    """
    needed = ["client_id", "therapist_id", "outcome", "n_scored", "first_score", "change"]
    require_columns(episodes, needed, "episodes.parquet", "model M4")
    require_columns(derived, ["outcome", "client_id", "alliance_early", "n_sessions"],
                    "derived.parquet", "model M4")
    rows = episodes.loc[episodes["outcome"] == outcome, needed]
    accounting: dict[str, Any] = {"n_episodes": int(len(rows))}
    with_outcome = rows["n_scored"] >= 2
    accounting["n_episodes_fewer_than_2_scores"] = int((~with_outcome).sum())
    rows = rows.loc[with_outcome]
    client_level = (
        derived.loc[derived["outcome"] == outcome, ["client_id", "alliance_early", "n_sessions"]]
        .sort_values(["client_id"], kind="stable")
        .groupby("client_id", sort=True)
        .agg(alliance_early=("alliance_early", "first"), n_sessions=("n_sessions", "max"))
        .reset_index()
    )
    rows = rows.merge(client_level, on="client_id", how="left", validate="one_to_one")
    accounting["n_not_completers"] = 0
    if completers_min_sessions is not None:
        completers = rows["n_sessions"] >= completers_min_sessions
        accounting["n_not_completers"] = int((~completers).sum())
        rows = rows.loc[completers]
    # Without therapist ids (or too few therapists) the standard errors are clustered by client,
    # so a missing therapist id must not drop the episode.
    by_client = bool(therapist_design(rows))
    variables = ["change", "first_score", "alliance_early"] + ([] if by_client else
                                                               ["therapist_id"])
    missing_values = rows[variables].isna()
    accounting["missing_by_variable"] = {
        name: int(count) for name, count in missing_values.sum().items() if count
    }
    incomplete = missing_values.any(axis=1)
    accounting["n_rows_missing"] = int(incomplete.sum())
    rows = rows.loc[~incomplete].sort_values("client_id", kind="stable").reset_index(drop=True)
    accounting["n_obs"] = int(len(rows))
    accounting["cluster"] = "client_id" if by_client else "therapist_id"
    return rows, accounting


def fit_early_alliance(
    derived: pd.DataFrame, episodes: pd.DataFrame, resolved: ResolvedFit
) -> dict[str, Any]:
    """M4: OLS ``change ~ first_score + alliance_early`` with SEs clustered by therapist.

    Inference uses t with G - 1 df (G = therapists), statsmodels' small-sample convention for
    cluster-robust SEs.

    Parameters
    ----------
    derived : DataFrame
        ``derived.parquet``.
    episodes : DataFrame
        ``episodes.parquet``.
    resolved : ResolvedFit
        The M4 job (formula, outcome, completers restriction).

    Returns
    -------
    dict
        ``data`` (the row accounting of :func:`early_alliance_rows`), ``fixed`` (one record
        per term: estimate, se, df, t, p, CI, standardised estimate), ``random`` (empty),
        ``fit`` (engine, formula, fit statistics, counts) and ``early_alliance``. With fewer
        than 4 rows or 2 clusters the fit is ``not_estimated``, with the reason.

    Examples
    --------
    >>> from analysis.simulate.examples import example_derived
    >>> derived = example_derived()
    >>> scored = derived.dropna(subset=["symptom_score"])
    >>> episodes = scored.groupby("client_id", as_index=False).agg(
    ...     therapist_id=("therapist_id", "first"), n_scored=("symptom_score", "size"),
    ...     first_score=("symptom_score", "first"), last_score=("symptom_score", "last"))
    >>> episodes = episodes.assign(outcome="phq9",
    ...                            change=episodes["last_score"] - episodes["first_score"])
    >>> from analysis.instruments import BUILT_IN
    >>> from analysis.models.mixed.specs import ModelSettings, find_fit, plan_fits
    >>> plan = plan_fits(ModelSettings(run=("M4",)), BUILT_IN["wai_sr"], [BUILT_IN["phq9"]])
    >>> result = fit_early_alliance(derived, episodes, find_fit(plan, "phq9", "M4", "primary"))
    >>> result["fit"]["formula"], result["fit"]["engine"]
    ('change ~ first_score + alliance_early', 'statsmodels OLS (cluster-robust by therapist)')
    >>> pd.DataFrame(result["fixed"])[["term", "estimate", "se", "df", "p"]].round(3)
                 term  estimate     se   df      p
    0     (Intercept)    11.239  1.935  7.0  0.001
    1     first_score    -0.264  0.114  7.0  0.053
    2  alliance_early    -2.587  0.621  7.0  0.004
    """
    import statsmodels.formula.api as smf

    data, accounting = early_alliance_rows(
        derived, episodes, resolved.outcome, resolved.completers_min_sessions
    )
    cluster = accounting["cluster"]
    unit = "therapists" if cluster == "therapist_id" else "clients"
    n_clusters = int(data[cluster].nunique())
    if len(data) < 4 or n_clusters < 2:
        # Too few episodes (e.g. in the completers analysis of a small study): this analysis is
        # not estimated, with the reason, and the run goes on. Counts of people are not printed.
        reason = (f"fewer than 4 episodes with a change score and early alliance, or fewer than "
                  f"2 {unit}, are left; clustered standard errors need more")
        return {"data": accounting, "fixed": [], "random": [],
                "fit": {"status": "not_estimated", "reason": reason, "converged": None,
                        "formula": resolved.formula, "requested_formula": resolved.formula,
                        "engine": f"statsmodels OLS (cluster-robust by {unit[:-1]})"},
                "early_alliance": []}
    codes = pd.factorize(data[cluster].astype(str), sort=True)[0]
    n_therapists = int(data["therapist_id"].nunique()) if "therapist_id" in data else 0
    result = smf.ols(resolved.formula or "", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    confidence = result.conf_int(alpha=0.05)
    fixed = pd.DataFrame(
        {
            "term": [INTERCEPT if name == "Intercept" else str(name)
                     for name in result.params.index],
            "estimate": result.params.to_numpy(dtype=float),
            "se": result.bse.to_numpy(dtype=float),
            "df": float(n_clusters - 1),
            "t": result.tvalues.to_numpy(dtype=float),
            "p": result.pvalues.to_numpy(dtype=float),
            "ci_low": confidence.iloc[:, 0].to_numpy(dtype=float),
            "ci_high": confidence.iloc[:, 1].to_numpy(dtype=float),
        }
    )
    response = split_formula(resolved.formula or "")[0]
    fixed["std_estimate"] = standardised_estimates(fixed, data, response)
    info = {
        "engine": f"statsmodels OLS (cluster-robust by {unit[:-1]})",
        "design": "" if cluster == "therapist_id" else (
            f"standard errors clustered by client: {therapist_design(data)}"),
        "reml": None,
        "formula": resolved.formula,
        "requested_formula": resolved.formula,
        "fallback_steps": [],
        "attempts": [],
        "reml_criterion": float("nan"),
        "deviance": float("nan"),
        "loglik": float(result.llf),
        "aic": float(result.aic),
        "bic": float(result.bic),
        "optimizer_converged": True,
        "converged": True,  # a least-squares solution has no iterative optimisation
        "singular": False,
        "gradient_norm": float("nan"),
        "hessian_positive_definite": None,
        "optimizer": "least squares",
        "n_obs": int(result.nobs),
        "n_clients": int(data["client_id"].nunique()),
        "n_therapists": n_therapists,
        "r_squared": float(result.rsquared),
    }
    early = fixed.loc[fixed["term"] == "alliance_early"].iloc[0]
    summary = {
        "outcome": resolved.outcome,
        "analysis": resolved.analysis,
        "estimate": float(early["estimate"]),
        "se": float(early["se"]),
        "df": float(early["df"]),
        "t": float(early["t"]),
        "p": float(early["p"]),
        "ci_low": float(early["ci_low"]),
        "ci_high": float(early["ci_high"]),
        "std_estimate": float(early["std_estimate"]),
        "r_squared": float(result.rsquared),
        "n_episodes": int(result.nobs),
        "n_therapists": n_therapists,
        "n_episodes_fewer_than_2_scores": accounting["n_episodes_fewer_than_2_scores"],
        "n_rows_missing": accounting["n_rows_missing"],
    }
    return {"data": accounting, "fixed": records(fixed), "random": [], "fit": info,
            "early_alliance": [summary]}


