"""Tests of the simulated raw exports: determinism, layout, generative model, invalid rows, CLI."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.errors import ConfigError
from analysis.instruments import BUILT_IN
from analysis.scoring import score_administrations, score_item_matrix
from analysis.simulate import (
    DEFAULT_EFFECTS,
    SimulatedStudy,
    main,
    simulate_study,
    write_study,
)

WAI = [f"wai_{k}" for k in range(1, 13)]
PHQ = [f"phq9_{k}" for k in range(1, 10)]
GAD = [f"gad7_{k}" for k in range(1, 8)]
IDENTIFYING = ["client_name", "email", "phone", "date_of_birth", "record_number", "notes"]
SESSION_COLUMNS = ["client_id", "therapist_id", "session", "session_date", *WAI, *IDENTIFYING]
OUTCOME_COLUMNS = ["client_id", "session", "date", *PHQ, *GAD, "record_number"]


@pytest.fixture(scope="module")
def study() -> SimulatedStudy:
    return simulate_study(300, 12, seed=11)


@pytest.fixture(scope="module")
def clean_study() -> SimulatedStudy:
    return simulate_study(300, 12, seed=11, invalid_rows=False, identifiers=False)


def test_same_seed_gives_identical_frames_and_another_seed_does_not():
    first = simulate_study(60, 6, seed=5)
    second = simulate_study(60, 6, seed=5)
    pd.testing.assert_frame_equal(first.sessions, second.sessions)
    pd.testing.assert_frame_equal(first.outcomes, second.outcomes)
    pd.testing.assert_frame_equal(first.generated, second.generated)
    assert first.truth == second.truth
    other = simulate_study(60, 6, seed=6)
    assert not first.sessions[WAI].equals(other.sessions[WAI])
    assert not first.outcomes[PHQ].equals(other.outcomes[PHQ])


def test_leaving_out_identifiers_changes_no_value(study):
    without = simulate_study(300, 12, seed=11, identifiers=False)
    pd.testing.assert_frame_equal(without.sessions, study.sessions.drop(columns=IDENTIFYING))
    pd.testing.assert_frame_equal(
        without.outcomes, study.outcomes.drop(columns=["record_number"])
    )


def test_columns_follow_the_contract(study, clean_study):
    assert list(study.sessions.columns) == SESSION_COLUMNS
    assert list(study.outcomes.columns) == OUTCOME_COLUMNS
    assert list(clean_study.sessions.columns) == SESSION_COLUMNS[: 4 + 12]
    assert list(clean_study.outcomes.columns) == OUTCOME_COLUMNS[:-1]


def test_ids_dates_and_sessions_look_like_an_export(study):
    sessions, outcomes = study.sessions, study.outcomes
    assert sessions["client_id"].str.fullmatch(r"CL-\d{6}").all()
    assert sessions["therapist_id"].str.fullmatch(r"TH-\d{3}").all()
    assert outcomes["client_id"].str.fullmatch(r"CL-\d{6}").all()
    iso = r"\d{4}-\d{2}-\d{2}"
    assert sessions["session_date"].str.fullmatch(iso).all()
    assert outcomes["date"].str.fullmatch(iso).all()
    assert sessions["session"].between(1, 16).all()
    first_sessions = sessions.loc[sessions["session"] == 1, "session_date"]
    assert first_sessions.min() >= "2023-01-01" and first_sessions.max() <= "2025-12-31"
    # Weekly rhythm: consecutive sessions of a client are 3 days to about a month apart, on
    # working days.
    unique_sessions = sessions.drop_duplicates(["client_id", "session"])
    dates = pd.to_datetime(unique_sessions["session_date"])
    gaps = dates.groupby(unique_sessions["client_id"]).diff().dropna().dt.days
    assert gaps.between(3, 31).all()
    assert 6 <= gaps.median() <= 8
    assert (dates.dt.day_of_week < 5).all()
    # Session numbers run 1..n without gaps for each client.
    numbers = unique_sessions.groupby("client_id")["session"].agg(["min", "max", "count"])
    assert (numbers["min"] == 1).all() and (numbers["max"] == numbers["count"]).all()


def test_clients_attend_a_varying_number_of_sessions():
    attended = simulate_study(2000, 40, seed=3).generated.groupby("client_id").size()
    assert attended.between(1, 16).all()
    assert 0.55 <= attended.between(4, 12).mean() <= 0.9
    assert 0.05 <= (attended <= 2).mean() <= 0.2
    assert 7 <= attended.mean() <= 9


def test_item_values_are_in_range_apart_from_the_counted_invalid_values(study, clean_study):
    invalid = study.truth["invalid_rows"]
    bad_wai = ~study.sessions[WAI].isin(range(1, 6)) & study.sessions[WAI].notna()
    assert bad_wai.any(axis=1).sum() == invalid["sessions_out_of_range"] > 0
    for columns, key in ((PHQ, "phq9"), (GAD, "gad7")):
        values = study.outcomes[columns]
        bad = ~values.isin(range(0, 4)) & values.notna()
        assert bad.any(axis=1).sum() == invalid[f"outcomes_out_of_range_{key}"]
        clean = clean_study.outcomes[columns]
        assert clean.isin(range(0, 4)).where(clean.notna(), True).all(axis=None)
    assert clean_study.sessions[WAI].isin(range(1, 6)).where(
        clean_study.sessions[WAI].notna(), True
    ).all(axis=None)


def test_items_sum_to_the_generated_totals(clean_study):
    generated = clean_study.generated
    merged = clean_study.outcomes.merge(
        generated, on=["client_id", "session"], how="left", validate="one_to_one"
    )
    for columns, key in ((PHQ, "phq9"), (GAD, "gad7")):
        complete = merged[columns].notna().all(axis=1)
        assert complete.mean() > 0.9
        sums = merged.loc[complete, columns].sum(axis=1)
        np.testing.assert_array_equal(sums.to_numpy(), merged.loc[complete, f"{key}_total"])
        np.testing.assert_allclose(
            merged.loc[complete, f"{key}_score"], merged.loc[complete, f"{key}_total"]
        )
        # One or two missing items: the score is prorated as the scoring stage does it.
        n_missing = merged[columns].isna().sum(axis=1)
        prorated = n_missing.between(1, 2)
        assert prorated.any()
        expected = merged.loc[prorated, columns].mean(axis=1) * len(columns)
        np.testing.assert_allclose(merged.loc[prorated, f"{key}_score"], expected)
        assert merged.loc[n_missing >= 3, f"{key}_score"].isna().all()


def test_totals_stay_in_range_and_rarely_clip():
    study = simulate_study(2000, 40, seed=4)
    generated = study.generated
    assert generated["phq9_total"].between(0, 27).all()
    assert generated["gad7_total"].between(0, 21).all()
    for key, intake_mean in (("phq9", 15), ("gad7", 13)):
        assert study.truth["outcomes"][key]["clipped_share"] < 0.02
        intake = generated.loc[generated["session"] == 1, f"{key}_total"].mean()
        assert abs(intake - intake_mean) < 1.0
    # PHQ-9 item 9 (self-harm) is mostly 0.
    assert (study.outcomes["phq9_9"] == 0).mean() > 0.8


def test_alliance_is_near_ceiling_and_split_as_in_methods(clean_study):
    generated = clean_study.generated
    assert 3.7 <= generated["alliance_score"].mean() <= 4.1
    per_client = generated.groupby("client_id")
    np.testing.assert_allclose(per_client["alliance_within"].mean().dropna(), 0.0, atol=1e-12)
    person_mean = per_client["alliance_score"].transform("mean")
    np.testing.assert_allclose(
        generated["alliance_within"], generated["alliance_score"] - person_mean, atol=1e-12
    )
    between = per_client["alliance_between_c"].first()
    assert abs(between.mean()) < 1e-12
    assert per_client["alliance_between_c"].nunique().max() == 1


def test_observed_alliance_is_the_mean_of_the_answered_items(clean_study):
    merged = clean_study.sessions.merge(
        clean_study.generated, on=["client_id", "session"], validate="one_to_one"
    )
    n_missing = merged[WAI].isna().sum(axis=1)
    scored = n_missing <= 2
    np.testing.assert_allclose(
        merged.loc[scored, "alliance_score"], merged.loc[scored, WAI].mean(axis=1)
    )
    assert merged.loc[~scored, "alliance_score"].isna().all()
    # One or two missing items fall in different WAI-SR subscales, three or more do not.
    subscales = {"task": [1, 2, 10, 12], "goal": [4, 6, 8, 11], "bond": [3, 5, 7, 9]}
    most_in_one = pd.concat(
        [merged[[f"wai_{k}" for k in items]].isna().sum(axis=1) for items in subscales.values()],
        axis=1,
    ).max(axis=1)
    assert (most_in_one[n_missing.between(1, 2)] == 1).all()
    assert (most_in_one[n_missing.between(3, 11)] >= 2).all()


def test_missing_data_rates_are_roughly_as_stated():
    outcomes = simulate_study(2000, 40, seed=8, invalid_rows=False).outcomes
    whole = outcomes[PHQ].isna().all(axis=1).mean()
    one = (outcomes[PHQ].isna().sum(axis=1) == 1).mean()
    assert 0.03 <= whole <= 0.07
    assert 0.015 <= one <= 0.045


def test_each_client_has_exactly_one_therapist_and_caseloads_differ(study):
    sessions = study.sessions
    assert (sessions.groupby("client_id")["therapist_id"].nunique() == 1).all()
    caseloads = sessions.drop_duplicates("client_id")["therapist_id"].value_counts()
    assert len(caseloads) == 12
    assert caseloads.max() >= 2 * caseloads.min()


def test_rows_are_sorted_by_client_then_session(study):
    for frame in (study.sessions, study.outcomes):
        keys = frame[["client_id", "session"]]
        assert keys.equals(keys.sort_values(["client_id", "session"], kind="stable"))


def test_invalid_row_counts_match_the_truth(study):
    sessions, outcomes, invalid = study.sessions, study.outcomes, study.truth["invalid_rows"]
    for frame, prefix in ((sessions, "sessions"), (outcomes, "outcomes")):
        exact = frame.duplicated(keep="first")
        same_visit = frame.duplicated(["client_id", "session"], keep="first")
        assert exact.sum() == invalid[f"{prefix}_exact_duplicates"] > 0
        assert (same_visit & ~exact).sum() == invalid[f"{prefix}_conflicting_duplicates"] > 0
        # Every copy sits directly after its original.
        positions = np.flatnonzero(same_visit.to_numpy())
        previous = frame.iloc[positions - 1][["client_id", "session"]].to_numpy()
        assert (previous == frame.iloc[positions][["client_id", "session"]].to_numpy()).all()
    orphans = ~outcomes["client_id"].isin(sessions["client_id"])
    assert orphans.sum() == invalid["outcomes_orphan_client"] > 0
    # Counts of the file's rows add up.
    assert len(sessions) == (
        study.truth["rows"]["attended_sessions"]
        + invalid["sessions_exact_duplicates"]
        + invalid["sessions_conflicting_duplicates"]
    )


def test_without_invalid_rows_nothing_is_invalid(clean_study):
    assert not any(clean_study.truth["invalid_rows"].values())
    assert not clean_study.sessions.duplicated(["client_id", "session"]).any()
    assert not clean_study.outcomes.duplicated(["client_id", "session"]).any()
    assert clean_study.outcomes["client_id"].isin(clean_study.sessions["client_id"]).all()


def test_identifiers_are_constant_per_client_and_unique(study):
    sessions = study.sessions
    per_client = sessions.groupby("client_id")[IDENTIFYING].nunique()
    assert (per_client == 1).all(axis=None)
    people = sessions.drop_duplicates("client_id")
    assert people["record_number"].is_unique and people["email"].is_unique
    assert people["email"].str.endswith("@example.org").all()
    assert people["phone"].str.fullmatch(r"07700 900\d{3}").all()
    births = pd.to_datetime(people["date_of_birth"])
    ages = (pd.to_datetime(people["session_date"]) - births).dt.days / 365.25
    assert ages.between(18, 90).all()
    # The outcome export carries the same record number for the same client.
    linked = study.outcomes.merge(
        people[["client_id", "record_number"]], on="client_id", suffixes=("", "_session")
    )
    assert (linked["record_number"] == linked["record_number_session"]).all()


@pytest.mark.parametrize("within", [DEFAULT_EFFECTS["phq9_within"], -0.5])
def test_next_session_depression_recovers_the_within_alliance_effect(within):
    study = simulate_study(2000, 50, seed=21, identifiers=False, invalid_rows=False,
                           phq9_within=within)
    assert study.truth["outcomes"]["phq9"]["within"] == within
    generated = study.generated.copy()
    generated["phq9_next"] = generated.groupby("client_id")["phq9_score"].shift(-1)
    pairs = generated.dropna(subset=["phq9_score", "phq9_next", "alliance_within"])
    design = np.column_stack(
        [np.ones(len(pairs)), pairs["phq9_score"], pairs["alliance_within"]]
    )
    coefficients = np.linalg.lstsq(design, pairs["phq9_next"].to_numpy(), rcond=None)[0]
    assert coefficients[2] == pytest.approx(within, abs=0.35)
    assert 0.4 < coefficients[1] < 0.9


def test_truth_holds_every_parameter_and_override():
    study = simulate_study(40, 4, seed=2, gad7_between=-0.8)
    truth = study.truth
    assert truth["outcomes"]["gad7"]["between"] == -0.8
    assert truth["overrides"] == {"gad7_between": -0.8}
    expected = {**DEFAULT_EFFECTS, "gad7_between": -0.8}
    for key in ("phq9", "gad7"):
        entry = truth["outcomes"][key]
        for name in ("within", "between", "rho", "session_slope", "intercept", "sd_client",
                     "sd_therapist", "sd_residual", "intake_mean", "intake_sd"):
            assert entry[name] == expected[f"{key}_{name}"]
    assert truth["correlations"]["client"] == DEFAULT_EFFECTS["outcome_client_correlation"]
    assert truth["alliance"]["mean"] == DEFAULT_EFFECTS["alliance_mean"]
    assert truth["reverse_effect"].startswith("none")
    assert (truth["n_clients"], truth["n_therapists"], truth["seed"]) == (40, 4, 2)


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError, match="n_clients"):
        simulate_study(0, 3, seed=1)
    with pytest.raises(ConfigError, match="phq9_withn"):
        simulate_study(10, 3, seed=1, phq9_withn=-1.0)
    with pytest.raises(ConfigError, match="phq9_sd_client"):
        simulate_study(10, 3, seed=1, phq9_sd_client=-1.0)
    with pytest.raises(SystemExit):
        main(["--clients", "0", "--therapists", "3", "--seed", "1", "--out", "unused"])


def test_cli_writes_the_three_files_byte_identically(tmp_path):
    argv = ["--clients", "30", "--therapists", "3", "--seed", "9", "--max-sessions", "10"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    names = ("sessions.csv", "outcomes.csv", "truth.yaml")
    for name in names:
        assert (tmp_path / "a" / name).is_file()
    for name in names[:2]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    truth = yaml.safe_load((tmp_path / "a" / "truth.yaml").read_text())
    assert truth["command"] == (
        f"python -m analysis.simulate --clients 30 --therapists 3 --seed 9 "
        f"--out {tmp_path / 'a'} --max-sessions 10"
    )
    sessions = pd.read_csv(tmp_path / "a" / "sessions.csv")
    assert list(sessions.columns) == SESSION_COLUMNS
    assert sessions["session"].max() <= 10
    raw = (tmp_path / "a" / "outcomes.csv").read_text()
    assert "\r" not in raw and ",," in raw  # missing items are empty cells
    assert not re.search(r"\d\.0\b", raw)  # integers, not floats


def test_write_study_records_a_python_call_for_overrides(tmp_path):
    study = simulate_study(20, 2, seed=3, identifiers=False, phq9_within=-1.0)
    write_study(study, tmp_path)
    truth = yaml.safe_load((tmp_path / "truth.yaml").read_text())
    assert truth["command"].startswith("python -c ")
    assert "phq9_within=-1.0" in truth["command"] and "identifiers=False" in truth["command"]


# ---------------------------------------------------------------------------------------------
# The demo data, scoring through analysis.scoring, the latent-alliance driver, the package


def test_the_demo_command_reproduces_the_shipped_files(tmp_path):
    # data/raw/README.md: the demo data are this command's output, byte for byte.
    raw = Path(__file__).resolve().parents[1] / "data" / "raw"
    assert main(["--clients", "400", "--therapists", "40", "--seed", "20261125",
                 "--out", str(tmp_path)]) == 0
    for line in (raw / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name
    shipped = (raw / "truth.yaml").read_text()
    made = (tmp_path / "truth.yaml").read_text().replace(f"--out {tmp_path}", "--out data/raw")
    assert made == shipped


def test_observed_scores_are_the_scoring_stages(clean_study):
    # The generator scores with analysis.scoring and the registry: the WAI-SR's own rule (a
    # subscale may miss one item), not a copy of it.
    sessions = clean_study.sessions
    administrations = pd.DataFrame({
        "client_id": sessions["client_id"], "session": sessions["session"],
        "instrument": "wai_sr",
        **{f"item_{k}": sessions[f"wai_{k}"].astype("float64") for k in range(1, 13)},
        "given_total": np.nan,
    })
    scored = score_administrations(administrations, BUILT_IN)[["client_id", "session", "score"]]
    merged = clean_study.generated.merge(scored.astype({"client_id": object}),
                                         on=["client_id", "session"], validate="one_to_one")
    np.testing.assert_array_equal(merged["alliance_score"].to_numpy(), merged["score"].to_numpy())
    items = clean_study.outcomes.merge(clean_study.generated, on=["client_id", "session"])
    for key, columns in (("phq9", PHQ), ("gad7", GAD)):
        expected = score_item_matrix(items[columns].to_numpy(dtype=float, na_value=np.nan),
                                     BUILT_IN[key])
        np.testing.assert_allclose(items[f"{key}_score"], expected, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def latent_study() -> SimulatedStudy:
    return simulate_study(2000, 50, seed=21, identifiers=False, invalid_rows=False,
                          alliance_driver="latent")


def test_latent_driver_measures_the_alliance_with_the_registrys_reliability(latent_study):
    alliance = latent_study.truth["alliance"]
    assert alliance["driver"] == "latent"
    assert alliance["reliability"] == BUILT_IN["wai_sr"].reliability == 0.91
    # the item noise follows from the reliability (clipping at 5 makes the realised one differ)
    assert alliance["sd_item"] != DEFAULT_EFFECTS["alliance_sd_item"]
    assert abs(alliance["realised_reliability"] - 0.91) < 0.03
    generated = latent_study.generated.dropna(subset=["alliance_score"])
    r = np.corrcoef(generated["alliance_score"], generated["alliance_latent"])[0, 1]
    assert r**2 == pytest.approx(alliance["realised_reliability"], abs=1e-5)
    # Cronbach's alpha at the first administration (what R2 reports) is near the target too
    items = latent_study.sessions.loc[latent_study.sessions["session"] == 1, WAI].dropna()
    k = items.shape[1]
    alpha = k / (k - 1) * (1 - items.var().sum() / items.sum(axis=1).var())
    assert abs(alpha - 0.91) < 0.03
    # within clients the score is far less reliable: the attenuation the recovery study expects
    assert 0.6 < alliance["realised_within_attenuation"] < 0.85
    assert latent_study.truth["model"].startswith("Y[i,t+1] = intercept + rho*Y[i,t] + within*T_w")


def test_latent_driver_drives_symptoms_by_the_true_alliance(latent_study):
    generated = latent_study.generated.copy()
    # T_w = T - client's true level, and the between part is the level centred over clients
    levels = generated["alliance_latent"] - generated["alliance_driving_within"]
    assert (levels.groupby(generated["client_id"]).nunique() == 1).all()
    generated["phq9_next"] = generated.groupby("client_id")["phq9_score"].shift(-1)
    pairs = generated.dropna(subset=["phq9_score", "phq9_next", "alliance_within"])

    def slope(within: str) -> float:
        design = np.column_stack([np.ones(len(pairs)), pairs["phq9_score"], pairs[within],
                                  pairs["alliance_driving_between_c"], pairs["session"]])
        return np.linalg.lstsq(design, pairs["phq9_next"].to_numpy(), rcond=None)[0][2]

    truth = latent_study.truth["outcomes"]["phq9"]["within"]
    # (OLS without the client effect: as loose as the observed driver's test above)
    true_slope = slope("alliance_driving_within")
    assert true_slope == pytest.approx(truth, abs=0.35)
    # the observed, person-mean-centred score gives an attenuated slope
    assert abs(slope("alliance_within")) < 0.85 * abs(true_slope)


def test_same_seed_gives_the_same_people_under_either_driver(clean_study):
    latent = simulate_study(300, 12, seed=11, invalid_rows=False, identifiers=False,
                            alliance_driver="latent")
    # common random numbers: the same clients, sessions, dates and missing items
    pd.testing.assert_frame_equal(latent.sessions[SESSION_COLUMNS[:4]],
                                  clean_study.sessions[SESSION_COLUMNS[:4]])
    pd.testing.assert_frame_equal(latent.sessions[WAI].isna(), clean_study.sessions[WAI].isna())
    np.testing.assert_array_equal(latent.generated["alliance_latent"],
                                  clean_study.generated["alliance_latent"])
    assert "driver" not in clean_study.truth["alliance"]


def test_latent_driver_on_the_command_line_and_in_the_reproducing_command(tmp_path):
    assert main(["--clients", "20", "--therapists", "2", "--seed", "3", "--out",
                 str(tmp_path / "a"), "--alliance-driver", "latent"]) == 0
    truth = yaml.safe_load((tmp_path / "a" / "truth.yaml").read_text())
    assert truth["alliance"]["driver"] == "latent"
    assert truth["command"].endswith("--alliance-driver latent")
    study = simulate_study(20, 2, seed=3, alliance_driver="latent", phq9_within=-1.0)
    write_study(study, tmp_path / "b")
    truth = yaml.safe_load((tmp_path / "b" / "truth.yaml").read_text())
    assert "alliance_driver='latent'" in shlex.split(truth["command"])[2]
    with pytest.raises(ConfigError, match="alliance_driver"):
        simulate_study(10, 2, seed=1, alliance_driver="true")
    with pytest.raises(SystemExit):
        main(["--clients", "5", "--therapists", "1", "--seed", "1", "--out", "unused",
              "--alliance-driver", "true"])


def test_python_dash_m_runs_the_package(tmp_path):
    result = subprocess.run([sys.executable, "-m", "analysis.simulate", "--clients", "5",
                             "--therapists", "2", "--seed", "1", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=True)
    assert "wrote" in result.stderr and (tmp_path / "sessions.csv").is_file()


# ---------------------------------------------------------------------------------------------
# Attendance and endings (engagement=True)


@pytest.fixture(scope="module")
def engaged() -> SimulatedStudy:
    return simulate_study(600, 30, seed=11, engagement=True, invalid_rows=False,
                          identifiers=False)


def test_engagement_off_changes_nothing():
    plain = simulate_study(80, 8, seed=4)
    again = simulate_study(80, 8, seed=4, engagement=False)
    pd.testing.assert_frame_equal(plain.sessions, again.sessions)
    pd.testing.assert_frame_equal(plain.outcomes, again.outcomes)
    assert "engagement" not in plain.truth and "status" not in plain.sessions


def test_engagement_adds_endings_missed_appointments_and_renumbers(engaged):
    sessions = engaged.sessions
    assert set(sessions["status"]) == {"attended", "did not attend"}
    assert set(sessions["ending"]) == {"completed", "dropped out"}
    assert sessions.groupby("client_id")["ending"].nunique().max() == 1
    truth = engaged.truth["engagement"]
    assert truth["n_missed_appointments"] == int((sessions["status"] == "did not attend").sum())
    assert truth["n_dropped_out"] == sessions.drop_duplicates("client_id")["ending"].eq(
        "dropped out").sum()
    # appointments numbered 1..n without repeats; a missed one is never a client's first
    assert not sessions.duplicated(["client_id", "session"]).any()
    assert (sessions.groupby("client_id")["session"].min() == 1).all()
    missed = sessions[sessions["status"] == "did not attend"]
    assert missed[WAI].isna().all().all() and (missed["session"] > 1).all()
    # questionnaires only at attended appointments
    keys = set(zip(missed["client_id"], missed["session"]))
    assert not keys & set(zip(engaged.outcomes["client_id"], engaged.outcomes["session"]))
    generated = engaged.generated
    assert set(zip(generated["client_id"], generated["session"])) == set(zip(
        sessions.loc[sessions["status"] == "attended", "client_id"],
        sessions.loc[sessions["status"] == "attended", "session"]))


def test_the_alliance_effect_on_dropout_is_recovered(engaged):
    from analysis.engagement.dropout import (dropout_episodes, fit_dropout_hazard,
                                             person_session_data)

    rows = engaged.generated.rename(columns={"phq9_score": "symptom_score"})
    ends = engaged.sessions.drop_duplicates("client_id")[["client_id", "ending"]]
    episodes = dropout_episodes(rows, ends, "ending", {"dropped_out": ["dropped out"],
                                                       "completed": ["completed"]})
    fit = fit_dropout_hazard(person_session_data(rows, episodes))
    between = fit.table.set_index("term").loc["alliance_between_c"]
    truth = engaged.truth["engagement"]["effects"]["dropout_between"]
    assert truth == -1.5
    # sign and rough size (600 clients): the estimate lies within half the truth of it and
    # its interval excludes 0
    assert abs(between["estimate"] - truth) < 0.5 * abs(truth), between["estimate"]
    assert between["ci_high"] < 0


def test_engagement_command_line_and_bad_effects(tmp_path):
    assert main(["--clients", "30", "--therapists", "3", "--seed", "2", "--out",
                 str(tmp_path), "--engagement"]) == 0
    truth = yaml.safe_load((tmp_path / "truth.yaml").read_text())
    assert "--engagement" in truth["command"]
    assert "ending" in pd.read_csv(tmp_path / "sessions.csv").columns
    with pytest.raises(ConfigError, match="dropout_slope"):
        simulate_study(20, 2, seed=1, engagement=True, engagement_effects={"dropout_slope": 1})
    with pytest.raises(ConfigError, match="engagement=True"):
        simulate_study(20, 2, seed=1, engagement_effects={"dna_rate": 0.2})
