"""Sudden gains and losses: the R package suddengains' own test cases, reproduced, and unit tests.

The package's cases (milanwiedemann/suddengains, tests/testthat) are copied with their data and
expected numbers: test-identify_sg.R (2 tests), test-identify_sl.R (1), test-create_bysg.R (1),
test-create_byperson.R (2) and test-define_crit1_cutoff.R (the test with a given SD and the four
error tests; the one computing the SD from the bundled ``sgdata`` checks the arithmetic from the
SD it expects, since that data set is not in this repository).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.engagement.sudden_gains import (
    GAIN_COLUMNS,
    MODEL_COLUMNS,
    alliance_around_gains,
    assess_intervals,
    define_crit1_cutoff,
    extract_scores_around_gains,
    fit_alliance_gain_model,
    identify_sudden_gains,
    identify_sudden_losses,
    select_gain_per_client,
)
from analysis.errors import DataError

NA = np.nan


def long_from_wide(rows, first_session=1, client_col="client_id", score_col="score"):
    """Rows ``(id, score at first_session, score at first_session + 1, ...)`` to a long frame."""
    records = []
    for row in rows:
        client, scores = row[0], row[1:]
        for offset, score in enumerate(scores):
            records.append({client_col: client, "session": first_session + offset,
                            score_col: score})
    return pd.DataFrame(records)


def interval_matrix(assessed, column="identified"):
    """Clients x ``sg_<pre>to<post>`` as 1 / 0 / NaN, the layout of the package's output."""
    values = assessed[column].astype("Float64").astype(float)
    frame = assessed.assign(value=values.to_numpy(),
                            name=[f"{pre}to{post}" for pre, post in
                                  zip(assessed["pregain_session"], assessed["postgain_session"])])
    return frame.pivot(index="client_id", columns="name", values="value")


# ---------------------------------------------------------------------------------------------
# test-identify_sg.R and test-identify_sl.R: the six columns are x_2n, x_1n, x_n, x_n1, x_n2,
# x_n3 (sessions 1 to 6; the package names the intervals sg_2to3, sg_3to4, sg_4to5).

DF1 = [
    (1, 28, 19, 23, 12, 13, NA),
    (2, 28, 19, 23, 11, 12, NA),
    (3, 28, 19, NA, 12, 13, NA),
    (4, 28, 19, 23, 12, 13, NA),
    (5, 28, 19, 23, 12, 14, NA),
    (6, 28, 19, NA, 12, 13, NA),
    (7, 28, 19, 23, 11, 12, NA),
    (8, 28, 25, 28, 11, 12, NA),
    (9, 28, 26, 28, 11, 12, NA),
    (10, NA, 26, 28, NA, 12, 11),
]

DF2_SG = [
    (1, 35, 37, 23, 23, 24, 21),
    (2, 35, 37, 34, 24, 24, 21),
    (3, 35, 37, 34, 34, 24, 21),
    (4, 35, 37, 34, 37, 37, 37),
]

DF2_SL = [
    (1, 10, 11, 12, 30, 28, 33),
    (2, 10, 11, 12, 10, 28, 33),
    (3, 10, 11, 30, 30, 28, 33),
    (4, 35, 37, 34, 23, 24, 21),
]


def test_identify_sg_works_1():
    """test-identify_sg.R, "Identify sg works 1": the whole sg_2to3..sg_4to5 matrix, NA kept."""
    assessed = assess_intervals(long_from_wide(DF1), cutoff=7)
    expected = pd.DataFrame(
        [(0, 0, NA), (0, 1, NA), (NA, NA, NA), (0, 0, NA), (0, 0, NA), (NA, NA, NA),
         (0, 1, NA), (0, 1, NA), (0, 1, NA), (NA, NA, NA)],
        index=pd.Index(range(1, 11), name="client_id"), columns=["2to3", "3to4", "4to5"],
    )
    got = interval_matrix(assessed)
    got.columns.name = None
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_identify_sg_works_2():
    """test-identify_sg.R, "Identify sg works 2"."""
    got = interval_matrix(assess_intervals(long_from_wide(DF2_SG), cutoff=7))
    assert got.loc[1].tolist() == [1, 0, 0]
    assert got.loc[2].tolist() == [0, 1, 0]
    assert got.loc[3].tolist() == [0, 0, 1]
    assert got.loc[4].tolist() == [0, 0, 0]
    gains = identify_sudden_gains(long_from_wide(DF2_SG), cutoff=7)
    assert gains["gain_id"].tolist() == ["1_sg_2", "2_sg_3", "3_sg_4"]


def test_identify_sl():
    """test-identify_sl.R, "test identify sudden losses" (the package's cutoff -7 is 7 here)."""
    got = interval_matrix(assess_intervals(long_from_wide(DF2_SL), kind="loss", cutoff=7))
    assert got.loc[1].tolist() == [0, 1, 0]
    assert got.loc[2].tolist() == [0, 0, 1]
    assert got.loc[3].tolist() == [1, 0, 0]
    assert got.loc[4].tolist() == [0, 0, 0]
    losses = identify_sudden_losses(long_from_wide(DF2_SL), cutoff=7)
    assert losses["gain_id"].tolist() == ["1_sl_3", "2_sl_4", "3_sl_2"]
    assert (losses["kind"] == "loss").all()
    assert losses["magnitude"].tolist() == [18.0, 18.0, 19.0]


# ---------------------------------------------------------------------------------------------
# test-create_bysg.R and test-create_byperson.R: 18 clients, bdi_s0 (not analysed: the package's
# sg_var_list starts at bdi_s1) to bdi_s12.

BDI = [
    (1, 33, 35, 37, 34, 23, 24, 21, 29, 17, 11, 11, 10, 7),
    (2, 26, 26, NA, 26, NA, 27, 17, 19, 11, 10, 3, NA, 7),
    (3, 40, 35, 38, 35, 37, 36, 37, NA, 35, 26, 24, NA, 19),
    (4, 33, 31, 30, 32, 22, 22, 20, 21, 19, 24, 33, 30, 28),
    (5, 39, 39, 37, 36, 26, 26, 23, 21, 19, 6, 7, 8, 8),
    (6, 35, 37, NA, 23, NA, 23, 21, NA, NA, 19, NA, 16, 13),
    (7, NA, 37, NA, 23, 21, NA, 21, NA, NA, NA, NA, NA, 20),
    (8, 40, 41, 37, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA),
    (9, 33, 35, 34, 32, 23, 24, 22, 21, 17, 14, 10, 13, 11),
    (10, 34, 35, 35, 25, 25, 17, 17, 16, 16, 11, 9, 7, 8),
    (11, 30, 40, NA, 36, 37, 36, 37, NA, 34, 26, 25, NA, 19),
    (12, 32, 38, 38, 31, 23, 21, 22, 24, 25, 30, 31, NA, 25),
    (13, 34, 34, 33, 36, 23, 25, 23, 19, 18, 10, 9, 8, 9),
    (14, 37, 39, 37, 23, NA, 23, 21, NA, NA, 21, NA, 16, 14),
    (15, 25, 28, 19, 23, 12, 13, NA, 13, NA, NA, NA, NA, 22),
    (16, NA, 25, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA, 20),
    (17, 40, 41, 37, NA, NA, NA, NA, NA, NA, NA, NA, NA, NA),
    (18, 33, NA, 38, 35, 24, NA, 22, 17, 16, NA, 9, 11, 13),
]

# The package's expected bysg rows: id, id_sg, sg_session_n, sg_freq_byperson, sg_bdi_2n,
# sg_bdi_1n, sg_bdi_n, sg_bdi_n1, sg_bdi_n2, sg_bdi_n3, sg_magnitude, sg_change_proportion,
# sg_reversal_value, sg_reversal.
BYSG_EXPECTED = [
    (1, "1_sg_3", 3, 2, 35, 37, 34, 23, 24, 21, 11, 0.39285714285714285, 28.5, 1),
    (1, "1_sg_7", 7, 2, 24, 21, 29, 17, 11, 11, 12, 0.42857142857142855, 23, 0),
    (3, "3_sg_8", 8, 1, 37, NA, 35, 26, 24, NA, 9, 0.5625, 30.5, 0),
    (4, "4_sg_3", 3, 1, 31, 30, 32, 22, 22, 20, 10, 3.3333333333333335, 27, 1),
    (5, "5_sg_3", 3, 2, 39, 37, 36, 26, 26, 23, 10, 0.3225806451612903, 31, 0),
    (5, "5_sg_8", 8, 2, 23, 21, 19, 6, 7, 8, 13, 0.41935483870967744, 12.5, 0),
    (9, "9_sg_3", 3, 1, 35, 34, 32, 23, 24, 22, 9, 0.375, 27.5, 0),
    (10, "10_sg_2", 2, 2, NA, 35, 35, 25, 25, 17, 10, 0.37037037037037035, 30, 0),
    (10, "10_sg_4", 4, 2, 35, 25, 25, 17, 17, 16, 8, 0.2962962962962963, 21, 0),
    (12, "12_sg_3", 3, 1, 38, 38, 31, 23, 21, 22, 8, 0.6153846153846154, 27, 1),
    (13, "13_sg_3", 3, 2, 34, 33, 36, 23, 25, 23, 13, 0.52, 29.5, 0),
    (13, "13_sg_8", 8, 2, 23, 19, 18, 10, 9, 8, 8, 0.32, 14, 0),
    (14, "14_sg_2", 2, 1, NA, 39, 37, 23, NA, 23, 14, 0.56, 30, 0),
    (18, "18_sg_3", 3, 1, NA, 38, 35, 24, NA, 22, 11, NA, 29.5, 0),
]
BYSG_COLUMNS = ["client_id", "gain_id", "pregain_session", "n_per_client",
                "score_pregain_minus2", "score_pregain_minus1", "pregain_score",
                "postgain_score", "score_postgain_plus1", "score_postgain_plus2", "magnitude",
                "share_of_total_change", "reversal_value", "reversal"]

NO_GAIN = [2, 6, 7, 8, 11, 15, 16, 17]


@pytest.fixture(scope="module")
def bdi_long():
    return long_from_wide(BDI, first_session=0)


@pytest.fixture(scope="module")
def bysg(bdi_long):
    return identify_sudden_gains(bdi_long, cutoff=7, crit3_adjust=True, start_session=1,
                                 end_session=12)


def test_create_bysg(bysg):
    """test-create_bysg.R, "Test create bysg dataset": every gain and every expected number."""
    expected = pd.DataFrame(BYSG_EXPECTED, columns=BYSG_COLUMNS)
    expected["reversal"] = expected["reversal"].astype(bool)
    got = bysg[BYSG_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False,
                                  rtol=1e-12)
    assert list(bysg.columns) == ["client_id", *GAIN_COLUMNS]
    assert (bysg["postgain_session"] == bysg["pregain_session"] + 1).all()


def test_create_bysg_reversal_as_package_default(bdi_long):
    """The package's default checks reversals from the pregain session + 3: same answers here."""
    package = identify_sudden_gains(bdi_long, cutoff=7, reversal_from=3)
    assert package["reversal"].tolist() == [bool(row[-1]) for row in BYSG_EXPECTED]


@pytest.mark.parametrize("select, chosen", [
    ("first", {1: "1_sg_3", 3: "3_sg_8", 4: "4_sg_3", 5: "5_sg_3", 9: "9_sg_3",
               10: "10_sg_2", 12: "12_sg_3", 13: "13_sg_3", 14: "14_sg_2", 18: "18_sg_3"}),
    ("largest", {1: "1_sg_7", 3: "3_sg_8", 4: "4_sg_3", 5: "5_sg_8", 9: "9_sg_3",
                 10: "10_sg_2", 12: "12_sg_3", 13: "13_sg_3", 14: "14_sg_2", 18: "18_sg_3"}),
])
def test_create_byperson(bysg, select, chosen):
    """test-create_byperson.R, "select first gain" and "select largest gain": every client."""
    byperson = select_gain_per_client(bysg, select=select, clients=range(1, 19))
    assert byperson["client_id"].tolist() == list(range(1, 19))
    with_gain = byperson.dropna(subset=["gain_id"]).set_index("client_id")
    assert with_gain["gain_id"].to_dict() == chosen
    expected = pd.DataFrame(BYSG_EXPECTED, columns=BYSG_COLUMNS).set_index("gain_id")
    picked = expected.loc[list(chosen.values())]
    assert with_gain["n_per_client"].tolist() == picked["n_per_client"].tolist()
    np.testing.assert_allclose(with_gain["magnitude"], picked["magnitude"])
    np.testing.assert_allclose(with_gain["share_of_total_change"],
                               picked["share_of_total_change"])
    assert with_gain["reversal"].astype(bool).tolist() == picked["reversal"].astype(bool).tolist()
    without = byperson[byperson["gain_id"].isna()]
    assert without["client_id"].tolist() == NO_GAIN
    assert (without["n_per_client"] == 0).all()


# ---------------------------------------------------------------------------------------------
# test-define_crit1_cutoff.R


def test_define_crit1_cutoff_specify_sd():
    """"Define crit 1 cutoff specify sd works" (tolerance 0.001 as the package's test)."""
    got = define_crit1_cutoff(sd=10.5, reliability=0.961).iloc[0]
    assert got["sd"] == pytest.approx(10.5, abs=1e-3)
    assert got["reliability"] == pytest.approx(0.961, abs=1e-3)
    assert got["standard_error_measurement"] == pytest.approx(2.073584, abs=1e-3)
    assert got["standard_error_difference"] == pytest.approx(2.93249, abs=1e-3)
    assert got["reliable_change_value"] == pytest.approx(5.747681, abs=1e-3)


def test_define_crit1_cutoff_from_data():
    """"Define crit 1 cutoff from data works": sgdata$bdi_s0 has SD 6.396073 in the package."""
    got = define_crit1_cutoff(sd=6.396073, reliability=0.931).iloc[0]
    assert got["standard_error_measurement"] == pytest.approx(1.680111, abs=1e-3)
    assert got["standard_error_difference"] == pytest.approx(2.376036, abs=1e-3)
    assert got["reliable_change_value"] == pytest.approx(4.65703, abs=1e-3)
    baseline = pd.DataFrame({"bdi_s0": [20.0, 30.0, np.nan, 25.0]})
    from_data = define_crit1_cutoff(reliability=0.9, data=baseline, baseline_col="bdi_s0")
    assert from_data.loc[0, "sd"] == pytest.approx(5.0)
    assert from_data.loc[0, "reliable_change_value"] == pytest.approx(
        1.96 * math.sqrt(2) * 5.0 * math.sqrt(0.1))


@pytest.mark.parametrize("kwargs", [
    {"sd": 10.0, "reliability": None},                       # "error NULL"
    {"sd": 10.0, "reliability": 2},                          # "error invalid reliability"
    {"reliability": 0.5},                                    # "error no sd"
    {"sd": 10.0, "reliability": 0.5,                         # "error two sd"
     "data": pd.DataFrame({"b": [1.0, 2.0]}), "baseline_col": "b"},
])
def test_define_crit1_cutoff_errors(kwargs):
    with pytest.raises(ValueError):
        define_crit1_cutoff(**kwargs)


def test_define_crit1_cutoff_names_missing_column():
    with pytest.raises(DataError, match="bdi_s0"):
        define_crit1_cutoff(reliability=0.9, data=pd.DataFrame({"x": [1.0]}),
                            baseline_col="bdi_s0")


# ---------------------------------------------------------------------------------------------
# Criterion 3 and missing sessions


def one_client(scores, first_session=1):
    return long_from_wide([("a", *scores)], first_session=first_session)


def test_crit3_critical_value_adjusts_for_missing_scores():
    # Interval 3 -> 4 of 8 sessions: 3 + 3 scores, then one missing before, then one each side.
    full = assess_intervals(one_client([30, 31, 30, 20, 21, 20, 21, 20]), cutoff=7)
    row = full.set_index("pregain_session").loc[3]
    assert (row["n_pre"], row["n_post"]) == (3, 3)
    assert row["critical_value"] == pytest.approx(2.776445, abs=1e-6)
    one_pre = assess_intervals(one_client([30, NA, 30, 20, 21, 20, 21, 20]), cutoff=7)
    assert one_pre.set_index("pregain_session").loc[3, "critical_value"] == pytest.approx(
        3.182446, abs=1e-6)
    both = assess_intervals(one_client([30, NA, 30, 20, NA, 20, 21, 20]), cutoff=7)
    assert both.set_index("pregain_session").loc[3, "critical_value"] == pytest.approx(
        4.302653, abs=1e-6)
    fixed = assess_intervals(one_client([30, NA, 30, 20, NA, 20, 21, 20]), cutoff=7,
                             crit3_adjust=False)
    assert fixed.set_index("pregain_session").loc[3, "critical_value"] == 2.776


def test_crit3_needs_two_scores_each_side():
    assessed = assess_intervals(one_client([NA, NA, 30, 20, 21, 20]), cutoff=7).set_index(
        "pregain_session")
    # Pregain session 3 has only itself before it: criterion 3 and the interval are missing,
    # although criteria 1 and 2 are met.
    assert bool(assessed.loc[3, "crit1"]) and bool(assessed.loc[3, "crit2"])
    assert pd.isna(assessed.loc[3, "crit3"]) and pd.isna(assessed.loc[3, "identified"])


def test_crit3_pooled_sd_by_hand():
    scores = [34, 33, 36, 23, 25, 23]
    assessed = assess_intervals(one_client(scores), cutoff=7).set_index("pregain_session")
    pre, post = np.array(scores[:3]), np.array(scores[3:])
    pooled = math.sqrt((2 * pre.var(ddof=1) + 2 * post.var(ddof=1)) / 4)
    assert pre.mean() - post.mean() > 2.776445 * pooled
    assert assessed.loc[3, "mean_pre"] == pytest.approx(pre.mean())
    assert bool(assessed.loc[3, "crit3"])


def test_missing_rows_equal_missing_scores():
    with_nan = one_client([35, 37, NA, 23, 24, 21, 20])
    without = with_nan.dropna(subset=["score"])
    a = assess_intervals(with_nan, cutoff=7)
    b = assess_intervals(without, cutoff=7)
    pd.testing.assert_frame_equal(a, b)


def test_sessions_missing_at_the_end_for_some_clients():
    data = pd.concat([one_client([30, 31, 30, 20, 21, 20]),
                      long_from_wide([("b", 30, 31, 30, 20)])])
    assessed = assess_intervals(data, cutoff=7)
    # Both clients laid out over sessions 1..6; b's last intervals lack scores after the gain.
    assert assessed.groupby("client_id").size().tolist() == [3, 3]
    b = assessed[assessed["client_id"] == "b"].set_index("pregain_session")
    assert pd.isna(b.loc[3, "identified"])  # only one score from the postgain session on


def test_criteria_can_be_left_out():
    data = one_client([30, 31, 30, 22, 35, 20])
    only_1 = assess_intervals(data, cutoff=7, crit2_pct=None, crit3=False)
    assert only_1["crit3"].isna().all() and only_1["crit2"].isna().all()
    assert only_1.set_index("pregain_session").loc[3, "identified"]
    with_3 = assess_intervals(data, cutoff=7).set_index("pregain_session")
    assert not with_3.loc[3, "identified"]  # the scores after the drop are too unstable
    with pytest.raises(ValueError, match="at least one criterion"):
        assess_intervals(data, cutoff=None, crit2_pct=None, crit3=False)


def test_crit2_relative_to_pregain_score():
    # A 7-point drop from 40 is under 25% of the pregain score; from 20 it is over.
    high = identify_sudden_gains(one_client([40, 41, 40, 33, 33, 33]), cutoff=7, crit3=False)
    low = identify_sudden_gains(one_client([20, 21, 20, 13, 13, 13]), cutoff=7, crit3=False)
    assert high.empty
    assert low["pregain_session"].tolist() == [3]


# ---------------------------------------------------------------------------------------------
# Session 1 to 2, direction, reversals, losses, selection


def test_identify_1to2_uses_the_pretreatment_score():
    data = one_client([30, 31, 18, 18, 17, 18], first_session=0)  # sessions 0..5
    default = identify_sudden_gains(data, cutoff=7)
    assert default.empty  # session 0 ignored: 1 -> 2 cannot be assessed
    with_baseline = identify_sudden_gains(data, cutoff=7, identify_1to2=True)
    assert with_baseline["gain_id"].tolist() == ["a_sg_1"]
    assert with_baseline[["pregain_session", "postgain_session"]].iloc[0].tolist() == [1, 2]
    assert with_baseline["score_pregain_minus1"].tolist() == [30.0]


def test_first_interval_without_1to2():
    intervals = assess_intervals(one_client([30, 31, 18, 18, 17, 18]), cutoff=7)
    assert intervals["pregain_session"].tolist() == [2, 3, 4]
    with_baseline = assess_intervals(one_client([30, 31, 18, 18, 17, 18], first_session=0),
                                     cutoff=7, identify_1to2=True)
    assert with_baseline["pregain_session"].tolist() == [1, 2, 3]


def test_direction_higher_is_better():
    scores = [10, 11, 24, 25, 23, 26]
    higher = identify_sudden_gains(one_client(scores), cutoff=7, direction="higher_is_better")
    assert higher["gain_id"].tolist() == ["a_sg_2"]
    assert higher["magnitude"].tolist() == [13.0]
    assert higher["percent_change"].iloc[0] == pytest.approx(100 * 13 / 11)
    assert identify_sudden_gains(one_client(scores), cutoff=7).empty
    as_loss = identify_sudden_losses(one_client(scores), cutoff=7)
    assert as_loss["gain_id"].tolist() == ["a_sl_2"]
    # On a higher-is-better scale a fall is a loss.
    falling = identify_sudden_losses(one_client([26, 25, 24, 11, 10, 11]), cutoff=7,
                                     direction="higher_is_better")
    assert falling["gain_id"].tolist() == ["a_sl_3"]
    with pytest.raises(ValueError, match="direction"):
        identify_sudden_gains(one_client(scores), cutoff=7, direction="up")


def test_reversal_strictly_beyond_the_midpoint():
    # Gain 30 -> 20 at 3 -> 4: midpoint 25. A later 25 is not a reversal, 25.5 is.
    base = [31, 30, 30, 20, 20, 19, 20, 20]
    at = base[:6] + [25, 20]
    beyond = base[:6] + [25.5, 20]
    for scores, reversed_ in ((base, False), (at, False), (beyond, True)):
        gains = identify_sudden_gains(one_client(scores), cutoff=7)
        assert gains["gain_id"].tolist() == ["a_sg_3"]
        assert gains["reversal_value"].tolist() == [25.0]
        assert gains["reversal"].tolist() == [reversed_]


def test_reversal_window_package_default():
    # The only return is at the session after the postgain session (pregain + 2): counted
    # by default, not by the package's default numbering (reversal_from=3).
    scores = [31, 30, 30, 20, 27, 19, 20, 20]
    data = one_client(scores)
    gains = identify_sudden_gains(data, cutoff=7, crit3=False)
    gain = gains[gains["pregain_session"] == 3]
    assert gain["reversal"].tolist() == [True]
    package = identify_sudden_gains(data, cutoff=7, crit3=False, reversal_from=3)
    assert package[package["pregain_session"] == 3]["reversal"].tolist() == [False]


def test_loss_reversal():
    losses = identify_sudden_losses(one_client([10, 11, 10, 22, 22, 23, 15, 22]), cutoff=7)
    assert losses["gain_id"].tolist() == ["a_sl_3"]
    assert losses["reversal_value"].tolist() == [16.0]
    assert losses["reversal"].tolist() == [True]  # 15 < 16: more than half of the loss undone


def test_select_gain_per_client_options():
    gains = pd.DataFrame({
        "client_id": ["a", "a", "a", "b"],
        "gain_id": ["a_sg_2", "a_sg_5", "a_sg_8", "b_sg_4"],
        "pregain_session": [2, 5, 8, 4],
        "magnitude": [9.0, 12.0, 12.0, 7.0],
    })
    pick = {s: select_gain_per_client(gains, select=s).set_index("client_id")["gain_id"]
            for s in ("first", "earliest", "last", "largest", "smallest")}
    assert pick["first"]["a"] == pick["earliest"]["a"] == "a_sg_2"
    assert pick["last"]["a"] == "a_sg_8"
    assert pick["largest"]["a"] == "a_sg_5"  # tie on magnitude: the earliest
    assert pick["smallest"]["a"] == "a_sg_2"
    assert all(p["b"] == "b_sg_4" for p in pick.values())
    with pytest.raises(ValueError, match="select"):
        select_gain_per_client(gains, select="median")


def test_largest_loss_is_the_largest_worsening():
    data = one_client([10, 11, 10, 20, 20, 21, 20, 35, 35, 36])
    losses = identify_sudden_losses(data, cutoff=7)
    assert losses["magnitude"].tolist() == [10.0, 15.0]
    assert select_gain_per_client(losses, select="largest")["gain_id"].tolist() == ["a_sl_7"]


def test_no_gain_gives_an_empty_frame_with_the_columns():
    gains = identify_sudden_gains(one_client([20, 20, 21, 20, 20, 21]), cutoff=7)
    assert gains.empty
    assert list(gains.columns) == ["client_id", *GAIN_COLUMNS]


def test_other_column_names():
    data = one_client([35, 37, 23, 23, 24, 21]).rename(
        columns={"client_id": "pseudonym", "session": "visit", "score": "phq9_total"})
    gains = identify_sudden_gains(data, "pseudonym", "visit", "phq9_total", cutoff=7)
    assert gains["pseudonym"].tolist() == ["a"]


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_names_the_column():
    data = one_client([35, 37, 23, 23, 24, 21])
    with pytest.raises(DataError, match="score"):
        identify_sudden_gains(data.drop(columns="score"), cutoff=7)
    duplicated = pd.concat([data, data.iloc[[2]]])
    with pytest.raises(DataError, match="more than one row"):
        identify_sudden_gains(duplicated, cutoff=7)
    fractional = data.assign(session=data["session"] + 0.5)
    with pytest.raises(DataError, match="whole session numbers"):
        identify_sudden_gains(fractional, cutoff=7)
    text = data.assign(score=data["score"].astype(object))
    text.loc[1, "score"] = "high"
    with pytest.raises(DataError, match="numeric"):
        identify_sudden_gains(text, cutoff=7)
    with pytest.raises(ValueError, match="positive"):
        identify_sudden_losses(data, cutoff=-7)


# ---------------------------------------------------------------------------------------------
# The course around the gain and the alliance


def test_extract_scores_around_gains_window():
    data = one_client([35, 37, 34, 23, 24, 21, 29, 17, 11, 11])
    gains = identify_sudden_gains(data, cutoff=7, crit3=False)
    assert gains["gain_id"].tolist() == ["a_sg_3", "a_sg_7"]
    course = extract_scores_around_gains(gains, data)
    first = course[course["gain_id"] == "a_sg_3"]
    assert first["offset"].tolist() == [-2, -1, 0, 1, 2, 3]
    assert first["session"].tolist() == [1, 2, 3, 4, 5, 6]
    assert first["score"].tolist() == [35, 37, 34, 23, 24, 21]
    assert first["period"].tolist() == ["pre"] * 3 + ["post"] * 3
    # The package's columns sg_2n .. sg_n3 are the same numbers.
    row = gains[gains["gain_id"] == "a_sg_3"].iloc[0]
    assert row[["score_pregain_minus2", "score_pregain_minus1", "pregain_score",
                "postgain_score", "score_postgain_plus1", "score_postgain_plus2"]].tolist() == \
        first["score"].tolist()
    wide = extract_scores_around_gains(gains, data, n_before=1, n_after=4)
    last = wide[wide["gain_id"] == "a_sg_7"]
    assert last["session"].tolist() == [7, 8, 9, 10, 11]
    assert last["score"].isna().tolist() == [False] * 4 + [True]  # no session 11


def simulate_gains_and_alliance(n_clients=150, rise=0.4, seed=2024):
    """Symptoms with one planted sudden gain per client; the alliance rises by ``rise`` after."""
    rng = np.random.default_rng(seed)
    sessions = np.arange(1, 13)
    symptoms, alliance = [], []
    for client in range(n_clients):
        pregain = int(rng.integers(4, 9))
        level = rng.normal(30, 3)
        drop = rng.normal(12, 1)
        scores = level - 0.3 * sessions + rng.normal(0, 1.0, sessions.size)
        scores[sessions > pregain] -= drop
        intercept = rng.normal(4.0, 0.5)
        ratings = (intercept + 0.02 * sessions + rise * (sessions > pregain)
                   + rng.normal(0, 0.3, sessions.size))
        ratings[rng.random(sessions.size) < 0.1] = np.nan  # some sessions unrated
        symptoms.append(pd.DataFrame({"client_id": f"c{client:03d}", "session": sessions,
                                      "score": scores}))
        alliance.append(pd.DataFrame({"client_id": f"c{client:03d}", "session": sessions,
                                      "alliance": ratings, "true_pregain": pregain}))
    return pd.concat(symptoms, ignore_index=True), pd.concat(alliance, ignore_index=True)


def test_alliance_rise_after_gains_is_recovered():
    rise = 0.4
    symptoms, alliance = simulate_gains_and_alliance(rise=rise)
    gains = identify_sudden_gains(symptoms, cutoff=7)
    largest = select_gain_per_client(gains, select="largest")
    truth = alliance.groupby("client_id")["true_pregain"].first()
    found = largest.set_index("client_id")["pregain_session"]
    assert (found == truth.loc[found.index]).mean() > 0.95
    frame = alliance_around_gains(largest, alliance[["client_id", "session", "alliance"]])
    assert set(frame["post_gain"]) == {0, 1}
    assert frame["offset"].between(-2, 3).all()
    result = fit_alliance_gain_model(frame)
    assert list(result.columns) == MODEL_COLUMNS
    row = result.iloc[0]
    # The rise plus the 3 sessions' drift of 0.02 between the window means.
    expected = rise + 0.02 * 3
    assert row["ci_low"] < expected < row["ci_high"]
    assert row["p"] < 1e-6
    assert row["n_clients"] == len(largest) and row["n_gains"] == len(largest)
    assert row["converged"] and not row["singular"]
    assert row["fitted_formula"] == "alliance ~ post_gain + (1 | client_id)"


def test_alliance_model_needs_both_sides():
    frame = pd.DataFrame({"client_id": ["a", "a"], "post_gain": [1, 1], "alliance": [4.0, 4.1]})
    with pytest.raises(DataError, match="before and after"):
        fit_alliance_gain_model(frame)


def test_docstring_examples_run():
    """The Examples sections are doctests: their printed output is the real output."""
    import doctest

    from analysis.engagement import sudden_gains

    failures, tried = doctest.testmod(sudden_gains, optionflags=doctest.ELLIPSIS)
    assert tried >= 8 and failures == 0
