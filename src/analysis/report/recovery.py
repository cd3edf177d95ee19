"""The recovery study's figures, as the report and docs/methods.md quote them.

``make validate`` simulates data from processes that no fitted model generated (docs/methods.md
section 4a) and records, per scenario and estimator, the mean estimate, bias, coverage and
rejection rate. The table shipped with the project (``docs/validation/recovery.csv``) is the
measured run; the report's limitations quote the conventional M2's bias under the scenario in
which symptoms lower the same-session alliance, beside the primary dynamic panel model's, and
the primary's bias under client-specific trends at the study's size and in large studies
(``docs/validation/large_study.csv``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.simulate.recovery import (
    CONVENTIONAL, DOCS_TABLE, LARGE_STUDY_TABLE, PRIMARY, QUOTED_SCENARIO, TREND_SCENARIO,
)


def load_recovery(path: Path | str = DOCS_TABLE) -> pd.DataFrame | None:
    """A recovery table, or None when the file is not there (a trimmed copy of the project)."""
    path = Path(path)
    if not path.is_file():
        return None
    return pd.read_csv(path)


def _row(table: pd.DataFrame | None, scenario: str, estimator: str) -> dict | None:
    if table is None or table.empty:
        return None
    rows = table.loc[(table["scenario"].astype(str) == scenario)
                     & (table["estimator"].astype(str) == estimator)]
    return rows.iloc[0].to_dict() if len(rows) else None


def recovery_sentence(path: Path | str = DOCS_TABLE,
                      large_study: Path | str = LARGE_STUDY_TABLE) -> str:
    """One sentence with the measured bias and coverage of M2 and of the primary, the gate's
    verdict when it failed, and the primary's bias under client-specific trends; or ""."""
    table = load_recovery(path)
    conventional = _row(table, QUOTED_SCENARIO, CONVENTIONAL)
    primary = _row(table, QUOTED_SCENARIO, PRIMARY)
    if conventional is None or primary is None:
        return ""

    def figures(row: dict) -> str:
        return (f"mean estimate {row['mean_estimate']:+.2f} (true value {row['truth']:g}), "
                f"95% CI coverage {row['coverage']:.2f}, significant in "
                f"{100 * row['rejection_rate']:.0f}% of datasets")

    gated = table.loc[(table["estimator"].astype(str) == PRIMARY)
                      & table.get("gates", pd.Series(True, index=table.index)).astype(bool)]
    calibration = ""
    if "se_ratio" in table and len(gated):
        ratio = float(gated["se_ratio"].mean())
        low, high = float(gated["coverage"].min()), float(gated["coverage"].max())
        if ratio < 0.95 or low < 0.925:  # below the gate's coverage band
            calibration = (f" In the same study the primary's standard errors averaged "
                           f"{ratio:.2f} of the spread of its estimates (95% CI coverage "
                           f"{low:.2f}-{high:.2f}), so with samples of that size its p-values "
                           "are somewhat liberal.")
    if "passed" in table and len(gated):
        missed = gated.loc[gated["passed"].astype(str).str.lower() == "false"]
        if len(missed):
            named = "; ".join(f"{row['scenario']}: {row['failed_criteria']}"
                              for row in missed.to_dict("records"))
            calibration += (f" The primary missed the recovery gate in {len(missed)} of "
                            f"{len(gated)} scenario versions ({named}; docs/methods.md, "
                            "section 7).")
    return (f"Measured in the project's recovery study ({int(conventional['n_datasets'])} "
            "simulated datasets in which symptoms lower the same-session alliance and the "
            f"alliance has no true effect): M2 {figures(conventional)}; the dynamic panel model "
            f"{figures(primary)} (docs/validation/recovery.csv).{calibration}"
            + _trend_sentence(table, large_study))


def _trend_sentence(table: pd.DataFrame, large_study: Path | str) -> str:
    """The primary's bias with client-specific incidental trends and no true effect, at the
    recovery study's size and in large studies; "" without both rows."""
    small = _row(table, TREND_SCENARIO, PRIMARY)
    large = _row(load_recovery(large_study), TREND_SCENARIO, PRIMARY)
    if small is None or large is None or "n_clients" not in small or "n_clients" not in large:
        return ""

    def at(row: dict) -> str:  # simulated studies, not people: no small-cell rule applies
        return (f"{row['bias']:+.2f} with {int(row['n_clients']):,} simulated clients per "
                f"study ({row['bias_over_se']:.2f} of its standard error)")

    return (" The dynamic panel model removes each client's stable level, not a client-specific "
            "trend: in simulated studies with incidental trends in both scores and no true "
            f"effect its mean estimate was {at(small)} and {at(large)}. That bias does not "
            "shrink with more clients, so in large data sets it is a larger share of the "
            f"uncertainty: with {int(large['n_clients']):,} simulated clients per study its 95% "
            f"intervals covered the true value in {100 * large['coverage']:.0f}% of datasets, "
            "where 95% is nominal (docs/validation/large_study.csv).")
