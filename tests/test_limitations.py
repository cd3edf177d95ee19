"""Limitations computed from the data: the attenuation of within-client alliance effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.report.limitations import within_client_reliability


def test_within_client_reliability_matches_a_simulation():
    # true alliance: large between-client variance, small within; error at reliability r
    rng = np.random.default_rng(4)
    n_clients, n_sessions, r = 4000, 6, 0.9
    true = (rng.normal(0, 1.0, n_clients)[:, None] + rng.normal(0, 0.4, (n_clients, n_sessions)))
    error_sd = np.sqrt((1 - r) / r * true.var())
    observed = true + rng.normal(0, error_sd, true.shape)
    scores = pd.DataFrame({"client_id": np.repeat(np.arange(n_clients), n_sessions),
                           "instrument": "wai", "score": observed.ravel()})
    within_true = true - true.mean(axis=1, keepdims=True)
    within_observed = observed - observed.mean(axis=1, keepdims=True)
    expected = within_true.var() / within_observed.var()
    assert within_client_reliability(scores, "wai", r) == pytest.approx(expected, abs=0.02)
    # far below the scale's reliability: most of the variance is between clients
    assert within_client_reliability(scores, "wai", r) < 0.7


def test_without_scores_there_is_no_statement():
    assert within_client_reliability(pd.DataFrame(), "wai", 0.9) is None
