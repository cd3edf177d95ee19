"""Every route a questionnaire takes, prorating flags, unknown risk flags and lags in days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.derive import derive_analysis_frame
from analysis.ingest import run_ingest
from analysis.instruments import BUILT_IN
from analysis.scoring import prorating_flags, score_administrations
from analysis.settings import DeriveSettings
from analysis.study import ingest_settings, study_from_dict


def write_exports(folder, orphan=True, unmatched=True):
    sessions = pd.DataFrame({
        "client_id": ["A", "A", "B", "B"], "therapist_id": ["T1", "T1", "T2", "T2"],
        "session": [1, 2, 1, 2],
        "session_date": ["2024-01-01", "2024-01-08", "2024-01-02", "2024-03-30"],
        **{f"wai_{i}": [4, 4, 3, 5] for i in range(1, 13)},
    })
    outcomes = pd.DataFrame({
        "client_id": ["A", "A", "B", "B"], "session": [1, 2, 1, 2],
        "date": ["2024-01-01", "2024-01-08", "2024-01-02", "2024-03-30"],
        **{f"phq9_{i}": [1, 2, 1, 0] for i in range(1, 10)},
    })
    # A's item 9 unanswered at session 2; two items missing at B's session 1 (prorated)
    outcomes.loc[1, "phq9_9"] = np.nan
    outcomes.loc[2, ["phq9_3", "phq9_4"]] = np.nan
    extra = []
    if unmatched:   # A at session 5: no session record there
        extra.append({"client_id": "A", "session": 5, "date": "2024-02-05",
                      **{f"phq9_{i}": 1 for i in range(1, 10)}})
    if orphan:      # Z has no session record at all
        extra.append({"client_id": "Z", "session": 1, "date": "2024-01-03",
                      **{f"phq9_{i}": 1 for i in range(1, 10)}})
    outcomes = pd.concat([outcomes, pd.DataFrame(extra)], ignore_index=True)
    sessions.to_csv(folder / "sessions.csv", index=False)
    outcomes.to_csv(folder / "outcomes.csv", index=False)


def study(folder, **linking):
    config = {
        "inputs": {
            "sessions": {"path": str(folder / "sessions.csv"), "kind": "sessions",
                         "columns": {"client": "client_id", "therapist": "therapist_id",
                                     "session": "session", "date": "session_date"},
                         "instruments": {"wai_sr": {"items": "wai_{i}"}}},
            "outcomes": {"path": str(folder / "outcomes.csv"),
                         "columns": {"client": "client_id", "session": "session", "date": "date"},
                         "instruments": {"phq9": {"items": "phq9_{i}"}}},
        },
        "linking": linking,
        "analysis": {"alliance": "wai_sr", "outcomes": ["phq9"]},
    }
    return study_from_dict(config)


def routes(flow: pd.DataFrame) -> dict[str, int]:
    kept = flow[(flow["unit"] == "administrations") & (flow["stage"] == "kept")
                & (flow["instrument"] == "phq9")]
    return dict(zip(kept["reason"], kept["count"]))


def balance(flow: pd.DataFrame) -> None:
    admins = flow[flow["unit"] == "administrations"]
    for (source, instrument), part in admins.groupby(["source", "instrument"]):
        read = part.loc[part["stage"] == "read", "count"].sum()
        assert read == part.loc[part["stage"].isin(["kept", "rejected"]), "count"].sum(), source


def test_every_route_of_a_questionnaire_is_counted(tmp_path):
    write_exports(tmp_path)
    ingested = run_ingest(ingest_settings(study(tmp_path)), key="k")
    flow = ingested["ingest_flow"] if "ingest_flow" in ingested else ingested["flow"]
    balance(flow)
    counted = routes(flow)
    assert counted["linked to a session record by session number"] == 4
    assert sum(count for reason, count in counted.items() if "no session record at this" in reason) == 1
    rejected = flow[(flow["stage"] == "rejected") & (flow["instrument"] == "phq9")]
    assert dict(zip(rejected["reason"], rejected["count"])) == {"orphan_outcome": 1}


def test_unmatched_sessions_can_be_rejected_and_orphans_kept(tmp_path):
    write_exports(tmp_path)
    ingested = run_ingest(ingest_settings(study(tmp_path, unmatched_sessions="reject",
                                                orphan_outcomes="keep")), key="k")
    flow = ingested["flow"]
    balance(flow)
    rejected = flow[(flow["stage"] == "rejected") & (flow["instrument"] == "phq9")]
    assert dict(zip(rejected["reason"], rejected["count"])) == {"no_session_record": 1}
    assert any("client without any session record" in reason for reason in routes(flow))
    assert "no_session_record" in set(ingested["rejects"]["rule"])


def test_prorated_scores_are_flagged_with_their_source_row(tmp_path):
    write_exports(tmp_path)
    settings = study(tmp_path)
    ingested = run_ingest(ingest_settings(settings), key="k")
    administrations = ingested["administrations"]
    scores = score_administrations(administrations, settings.registry)
    flags = prorating_flags(administrations, scores)
    # row 3: item 9 unanswered (1 missing); row 4: two items missing
    flags = flags.sort_values("row")
    assert list(flags["row"]) == [3, 4] and flags["file"].str.endswith("outcomes.csv").all()
    assert [reason.split(" item")[0] for reason in flags["reason"]] == ["1", "2"]
    # never prorated without a score
    assert not (scores["prorated"].astype(bool) & scores["score"].isna()).any()


def test_an_unanswered_risk_item_is_unknown_not_false():
    frame = pd.DataFrame({"client_id": ["c1", "c2"], "session": [1, 1], "instrument": ["phq9"] * 2,
                          **{f"item_{i}": [1.0, 1.0] for i in range(1, 9)},
                          "item_9": [np.nan, 0.0], "given_total": [np.nan, np.nan]})
    scores = score_administrations(frame, {"phq9": BUILT_IN["phq9"]})
    assert pd.isna(scores.loc[scores["client_id"] == "c1", "risk_flag"].iloc[0])
    assert scores.loc[scores["client_id"] == "c2", "risk_flag"].iloc[0] == False  # noqa: E712


@pytest.mark.parametrize("max_lag_days, pairs", [(None, 2), (30, 1)])
def test_lags_can_be_limited_in_days(tmp_path, max_lag_days, pairs):
    write_exports(tmp_path, orphan=False, unmatched=False)
    settings = study(tmp_path)
    ingested = run_ingest(ingest_settings(settings), key="k")
    scores = score_administrations(ingested["administrations"], settings.registry)
    derived = derive_analysis_frame(scores, ingested["sessions"], DeriveSettings(
        alliance="wai_sr", outcomes=("phq9",), max_lag_days=max_lag_days))
    # A's sessions are 7 days apart, B's 88: a 30-day limit keeps only A's pair
    assert int(derived["symptom_next"].notna().sum()) == pairs
