"""Compact diagnostics of a fitted mixed model, written into its fit file for the figures.

The figures show a model's residuals and its therapists' random intercepts. Refitting the model
in a figure job to get them cost minutes per outcome at 100,000 clients, and the residuals
themselves are one number per session row (800,000 at that size), far too many for a JSON file.
So the fit job, which has the fitted model in hand, summarises them once with
:func:`model_diagnostics` (called from :mod:`analysis.models.mixed.fitting` for every
primary-analysis mixed model), and the figure jobs read the summary from the fit file. The summary's
size does not grow with the data except for the therapist list (two numbers per therapist):

- ``residuals``: the standardised residuals (residual / residual SD): their quantiles for a normal
  Q-Q plot, a histogram on fixed edges, and their mean and quantiles within equal-count bins of
  the fitted values (residuals against fitted values);
- ``random_effects``: per grouping factor and term, the number of levels, the SD of the
  conditional modes (BLUPs) and their quantiles (Q-Q plot of, e.g., the clients' intercepts);
- ``therapists``: per term of the therapist factor, every therapist's conditional mode and
  conditional SD (lme4's ``ranef(condVar = TRUE)``), sorted by the mode, without pseudonyms.

The conditional variances are computed for the therapist factor only, from the model's own
matrices (``Z``, ``Lambda``, ``sigma``: ``Var(b | y) = sigma^2 Lambda (Lambda' Z' Z Lambda +
I)^-1 Lambda'``) with one sparse factorisation; mixedlm's ``ranef(condVar=True)`` computes them
for every factor, clients included, which took minutes at 100,000 clients. The input is the
native ``mixedlm`` fit (:attr:`analysis.models.mixed.engines.EngineFit.native`); the output is a
dict of plain values (lists of floats), sorted keys being left to the JSON writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Quantiles stored per distribution: every order statistic up to this many values, else this
#: many equally spaced plotting positions ((k - 0.5) / n, Hazen).
N_QUANTILES = 199
#: Equal-count bins of the fitted values for residuals against fitted values.
N_FITTED_BINS = 20
#: Fewest observations in a bin of fitted values (fewer bins for a small model).
MIN_BIN_OBSERVATIONS = 30
#: Histogram edges of the standardised residuals (residual SDs); values beyond are counted.
HISTOGRAM_EDGES = tuple(round(-5.0 + 0.25 * i, 2) for i in range(41))
#: Quantiles of the residuals within each bin of fitted values.
BIN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Columns of the random-effects precision solved at once (memory: rows x this x 8 bytes).
SOLVE_BATCH = 128

THERAPIST = "therapist_id"


def quantile_summary(values: np.ndarray, n_quantiles: int = N_QUANTILES) -> dict[str, Any]:
    """Plotting positions and quantiles of ``values`` (finite ones), for a Q-Q plot.

    With ``n <= n_quantiles`` values these are the order statistics at ``(k - 0.5) / n``; with
    more, ``n_quantiles`` quantiles at ``(k - 0.5) / n_quantiles`` (Hazen's definition, so the
    small case is exactly the sorted values).
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return {"n": 0, "probabilities": [], "quantiles": []}
    k = min(n, n_quantiles)
    probabilities = (np.arange(1, k + 1) - 0.5) / k
    quantiles = np.quantile(values, probabilities, method="hazen")
    return {"n": int(n), "probabilities": _floats(probabilities), "quantiles": _floats(quantiles)}


def residual_summary(fitted: np.ndarray, residuals: np.ndarray, sigma: float) -> dict[str, Any]:
    """Standardised residuals in summary: quantiles, histogram, binned against fitted values.

    Parameters
    ----------
    fitted, residuals : array
        One value per observation (response scale).
    sigma : float
        The residual SD; residuals are divided by it.
    """
    fitted = np.asarray(fitted, dtype=float)
    standardised = np.asarray(residuals, dtype=float) / float(sigma)
    keep = np.isfinite(fitted) & np.isfinite(standardised)
    fitted, standardised = fitted[keep], standardised[keep]
    edges = np.asarray(HISTOGRAM_EDGES)
    counts, _ = np.histogram(standardised, bins=edges)
    return {
        "sigma": float(sigma),
        "mean": float(standardised.mean()) if standardised.size else None,
        "sd": float(standardised.std(ddof=1)) if standardised.size > 1 else None,
        **quantile_summary(standardised),
        "histogram": {
            "edges": _floats(edges),
            "counts": [int(c) for c in counts],
            "below": int((standardised < edges[0]).sum()),
            "above": int((standardised > edges[-1]).sum()),
        },
        "by_fitted": fitted_bins(fitted, standardised),
    }


def fitted_bins(fitted: np.ndarray, standardised: np.ndarray,
                n_bins: int = N_FITTED_BINS,
                min_observations: int = MIN_BIN_OBSERVATIONS) -> list[dict[str, Any]]:
    """Standardised residuals within equal-count bins of the fitted values.

    One record per bin: ``fitted_low``, ``fitted_high``, ``fitted_mean``, ``n``, ``mean`` and
    ``q05``, ``q25``, ``q50``, ``q75``, ``q95``. Ties are split by order of the fitted values
    (a stable sort), so bins are equal-sized.
    """
    n = fitted.size
    bins = min(n_bins, n // min_observations) if n >= min_observations else (1 if n else 0)
    if bins == 0:
        return []
    order = np.argsort(fitted, kind="stable")
    records = []
    for rows in np.array_split(order, bins):
        x, r = fitted[rows], standardised[rows]
        q = np.quantile(r, BIN_QUANTILES)
        records.append({
            "fitted_low": float(x.min()), "fitted_high": float(x.max()),
            "fitted_mean": float(x.mean()), "n": int(rows.size), "mean": float(r.mean()),
            **{f"q{round(100 * p):02d}": float(value) for p, value in zip(BIN_QUANTILES, q)},
        })
    return records


def random_effect_summaries(values: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Per grouping factor and term: levels, SD and quantiles of the conditional modes."""
    summaries = []
    for group, terms in values.items():
        for term, modes in terms.items():
            modes = np.asarray(modes, dtype=float)
            summaries.append({
                "group": str(group), "term": str(term),
                "sd": float(modes.std(ddof=1)) if modes.size > 1 else None,
                **quantile_summary(modes),
            })
    return summaries


def conditional_variances(model: Any, group: str) -> dict[str, np.ndarray]:
    """Conditional variances of the random effects of one grouping factor of a mixedlm fit.

    ``sigma^2 diag(Lambda (Lambda' Z' Z Lambda + I)^-1 Lambda')`` restricted to the factor's
    columns, by term, in level order (as ``model.ranef(condVar=True).condVar[group]``, which the
    tests compare it with).

    The precision ``P = Lambda' Z' Z Lambda + I`` is factorised once with the factor's columns
    ordered last, so the trailing block of the factor is the Schur complement ``S`` of the other
    columns and ``(P^-1)`` restricted to the factor is ``S^-1``: only a therapists-by-therapists
    system is solved (diagonal when clients are nested in therapists), whatever the number of
    clients. Should the factorisation pivot (it does not for a positive-definite ``P``), the
    factor's columns of ``P^-1`` are solved for directly instead.
    """
    import mixedlm
    from scipy import sparse
    from scipy.sparse.linalg import splu

    lam = sparse.csc_matrix(mixedlm.getME(model, "Lambda"))
    zl = sparse.csc_matrix(mixedlm.getME(model, "Z") @ lam)
    precision = sparse.csc_matrix(zl.T @ zl + sparse.identity(lam.shape[0], format="csc"))
    layout = _factor_columns(model, group)
    if not layout:
        return {}
    columns = np.concatenate([block.ravel() for block, _ in layout])
    rest = np.setdiff1d(np.arange(precision.shape[0]), columns)
    order = np.concatenate([rest, columns])
    factor = splu(precision[order][:, order].tocsc(), permc_spec="NATURAL",
                  diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    identity = np.arange(order.size)
    if np.array_equal(factor.perm_r, identity) and np.array_equal(factor.perm_c, identity):
        k = columns.size
        block = sparse.csc_matrix(factor.L[-k:, -k:] @ factor.U[-k:, -k:])
        local = sparse.csr_matrix(lam[columns][:, columns])
    else:  # pragma: no cover - a positive-definite precision does not pivot
        block = precision
        local = sparse.csr_matrix(lam[columns, :])
    solver = splu(sparse.csc_matrix(block), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                  options={"SymmetricMode": True})
    variances = np.empty(columns.size)
    for start in range(0, columns.size, SOLVE_BATCH):
        rows = local[start:start + SOLVE_BATCH, :]
        solved = solver.solve(rows.T.toarray())
        variances[start:start + rows.shape[0]] = np.einsum("ij,ji->i", rows.toarray(), solved)
    variances *= float(model.sigma) ** 2
    result, start = {}, 0
    for block_columns, names in layout:
        size = block_columns.size
        by_level = variances[start:start + size].reshape(block_columns.shape)
        start += size
        for index, name in enumerate(names):
            result[name] = by_level[:, index].copy()
    return result


def _factor_columns(model: Any, group: str) -> list[tuple[np.ndarray, list[str]]]:
    # The random-effect columns of one grouping factor, per structure (an uncorrelated term is
    # two structures of one factor) as a levels x terms array: Lambda and Z hold structure after
    # structure, level-major within one.
    layout, offset = [], 0
    for structure in model.matrices.random_structures:
        width = structure.n_levels * structure.n_terms
        if structure.grouping_factor == group:
            block = (offset + np.arange(width)).reshape(structure.n_levels, structure.n_terms)
            layout.append((block, [str(name) for name in structure.term_names]))
        offset += width
    return layout


def therapist_effects(model: Any, group: str = THERAPIST) -> list[dict[str, Any]]:
    """Each therapist's conditional mode and conditional SD, per term, sorted by the mode.

    Returns one record per term of the factor: ``group``, ``term``, ``n`` (therapists),
    ``estimate`` and ``se`` (lists in the same order: by mode, then SD). No pseudonyms: the
    figure ranks therapists and never names them. Empty when the model has no such factor.
    """
    modes = model.ranef().get(group) if group in _factors(model) else None
    if not modes:
        return []
    variances = conditional_variances(model, group)
    records = []
    for term, estimate in modes.items():
        estimate = np.asarray(estimate, dtype=float)
        se = np.sqrt(np.clip(variances[str(term)], 0.0, None))
        order = np.lexsort((se, estimate))
        records.append({"group": group, "term": str(term), "n": int(estimate.size),
                        "estimate": _floats(estimate[order]), "se": _floats(se[order])})
    return records


def model_diagnostics(model: Any) -> dict[str, Any]:
    """The diagnostics of a mixedlm fit (see the module docstring), as plain values.

    Parameters
    ----------
    model
        The native ``mixedlm`` result (``mixedlm.lmer``).

    Returns
    -------
    dict
        ``n_obs``, ``residuals`` (:func:`residual_summary`), ``random_effects``
        (:func:`random_effect_summaries`) and ``therapists`` (:func:`therapist_effects`).
    """
    fitted = np.asarray(model.fitted(), dtype=float)
    residuals = np.asarray(model.residuals(), dtype=float)
    return {
        "n_obs": int(fitted.size),
        "residuals": residual_summary(fitted, residuals, float(model.sigma)),
        "random_effects": random_effect_summaries(model.ranef()),
        "therapists": therapist_effects(model),
    }


def _factors(model: Any) -> set[str]:
    return {structure.grouping_factor for structure in model.matrices.random_structures}


def _floats(values: np.ndarray) -> list[float]:
    # JSON numbers with round-trip precision but no more digits than a float32 would need for a
    # figure: 8 significant digits keep the files small and byte-stable across platforms.
    return [float(f"{value:.8g}") for value in np.asarray(values, dtype=float)]


__all__ = [
    "conditional_variances",
    "fitted_bins",
    "model_diagnostics",
    "quantile_summary",
    "random_effect_summaries",
    "residual_summary",
    "therapist_effects",
]
