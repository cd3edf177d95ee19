"""Parameter recovery of the primary model on studies simulated through the whole pipeline."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.models import recovery

N_DATASETS = 50


@pytest.fixture(scope="module")
def replicates():
    # 50 simulated studies of 80 clients and 10 therapists, raw exports -> derived -> M2.
    return recovery.recovery_replicates(N_DATASETS, n_clients=80, n_therapists=10, first_seed=1)


def test_m2_within_alliance_ci_covers_the_truth_and_is_unbiased(replicates):
    summary = recovery.summarise_recovery(replicates).set_index("outcome")
    assert set(summary.index) == {"phq9", "gad7"}
    assert (summary["n_datasets"] == N_DATASETS).all()
    for outcome, row in summary.iterrows():
        assert 0.90 <= row["coverage"] <= 0.99, (outcome, row["coverage"])
        assert abs(row["relative_bias"]) < 0.10, (outcome, row["relative_bias"])
        assert row["passed"]
    assert replicates["converged"].all()
    assert not replicates["singular"].any()


def test_summary_applies_the_criteria():
    rows = pd.DataFrame(
        {
            "outcome": ["phq9"] * 4,
            "truth": [-1.0] * 4,
            "estimate": [-1.0, -1.2, -0.8, -1.4],
            "se": [0.2] * 4,
            "covered": [True, True, True, False],
            "fallback_steps": ["", "", "drop_therapist", ""],
        }
    )
    summary = recovery.summarise_recovery(rows).iloc[0]
    assert summary["coverage"] == 0.75
    assert summary["bias"] == pytest.approx(-0.1)
    assert summary["relative_bias"] == pytest.approx(-0.1)
    assert summary["share_fallback"] == 0.25
    assert not summary["passed"]


def test_command_line_prints_the_summary_and_verdict(capsys):
    status = recovery.main(["--datasets", "1", "--clients", "40", "--therapists", "5"])
    out = capsys.readouterr().out
    assert "coverage" in out and "relative_bias" in out
    # one study cannot give a coverage inside [0.90, 0.99]: the verdict is a failure
    assert "FAILED" in out and status == 1
