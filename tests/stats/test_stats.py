"""textclf/stats: each routine checked against its definition and by simulation (calibration: with
no real difference a test says "different" at about its nominal rate; coverage: a 95% interval holds
the truth about 95% of the time; power: a real difference is found)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from textclf.stats import intervals, paired, rows
from textclf.training.metrics import f1


def noisy(labels: np.ndarray, accuracy: float, rng, k: int = 2) -> np.ndarray:
    """Predictions right with probability `accuracy`, else a wrong class, independently per row."""
    wrong = (labels + rng.integers(1, k, len(labels))) % k
    return np.where(rng.random(len(labels)) < accuracy, labels, wrong)


def test_vectorized_f1_is_the_runs_f1_and_sklearns():
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        for _ in range(60):
            n = int(rng.integers(1, 50))
            y, p = rng.integers(0, k, n), rng.integers(0, k, n)
            mine = intervals.f1_scores(y, p, k)[0]
            assert mine == pytest.approx(f1(y, p, k), abs=1e-12)
            ref = f1_score(
                y,
                p,
                average="binary" if k == 2 else "macro",
                labels=None if k == 2 else np.union1d(y, p),
                zero_division=0,
            )
            assert mine == pytest.approx(ref, abs=1e-12)


def test_wilson_is_scipys():
    from scipy.stats import binomtest

    for k, n in ((0, 10), (10, 10), (3, 7), (160, 200), (499, 500), (1, 1)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert intervals.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_covers_the_true_accuracy_at_its_level():
    rng, n, truth = np.random.default_rng(1), 200, 0.8
    hits = [
        lo <= truth <= hi
        for lo, hi in (intervals.wilson(int(rng.binomial(n, truth)), n) for _ in range(2000))
    ]
    assert 0.93 <= np.mean(hits) <= 0.97


def test_f1_bootstrap_covers_the_population_f1():
    rng, k, n = np.random.default_rng(2), 2, 300
    population = rng.integers(0, k, 200_000)
    guesses = noisy(population, 0.8, rng)
    truth = f1(population, guesses, k)
    hits = []
    for _ in range(300):
        idx = rng.integers(0, len(population), n)
        lo, hi = intervals.bootstrap_f1(
            population[idx], guesses[idx], k, resamples=500, seed=int(rng.integers(1e9))
        )
        hits.append(lo <= truth <= hi)
    assert 0.91 <= np.mean(hits) <= 0.98


@pytest.mark.parametrize("metric", ["accuracy", "f1", "loss"])
def test_paired_tests_are_calibrated_when_nothing_differs(metric):
    """Two equally good classifiers (independent errors, accuracy 0.8) on 200 rows: "different" at
    about 5% (exact McNemar is conservative: at most 5%), and the difference's interval covers 0
    about 95% of the time."""
    rng, n, sims = np.random.default_rng(3), 200, 400
    rejections, covered = 0, 0
    for s in range(sims):
        y = rng.integers(0, 2, n)
        if metric == "loss":
            out = paired.loss(
                rng.exponential(0.4, n), rng.exponential(0.4, n), resamples=500, seed=s
            )
        else:
            a, b = noisy(y, 0.8, rng), noisy(y, 0.8, rng)
            out = (
                paired.accuracy(y, a, b, resamples=500, seed=s)
                if metric == "accuracy"
                else paired.f1(y, a, b, 2, resamples=500, seed=s)
            )
        rejections += out.p_value < 0.05
        covered += out.low <= 0 <= out.high
    assert rejections / sims <= 0.075 and (metric == "accuracy" or rejections / sims >= 0.02)
    assert 0.92 <= covered / sims <= 0.98


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_paired_tests_find_a_real_difference(metric):
    """0.75 vs 0.85 accuracy on 500 rows: found (p < 0.05) in most draws, and B is the better
    one."""
    rng, n, found = np.random.default_rng(4), 500, 0
    for s in range(100):
        y = rng.integers(0, 2, n)
        a, b = noisy(y, 0.75, rng), noisy(y, 0.85, rng)
        out = (
            paired.accuracy(y, a, b, resamples=500, seed=s)
            if metric == "accuracy"
            else paired.f1(y, a, b, 2, resamples=500, seed=s)
        )
        found += out.better(0.05) == "b"
    assert found >= 85


def test_mcnemar_counts_only_the_rows_where_the_two_disagree():
    y = np.zeros(100, dtype=int)
    a = np.zeros(100, dtype=int)
    b = a.copy()
    b[:3] = 1  # B wrong on 3 rows A gets right; nowhere else different
    out = paired.accuracy(y, a, b)
    assert (out.a_only, out.b_only) == (3, 0) and out.difference == pytest.approx(-0.03)
    # exact binomial, 3 of 3 discordant one way: 2 * 0.5**3
    assert out.p_value == pytest.approx(0.25)
    same = paired.accuracy(y, a, a)
    assert same.p_value == 1.0 and same.better(0.05) == ""


def test_row_keys_survive_reordering_and_mark_repeats():
    keys = rows.row_keys(["a", "b", "a"], [0, 1, 0])
    assert keys[2] == keys[0] + "#1" and len(set(keys)) == 3
    assert rows.row_keys(["b", "a"], [1, 0]) == [keys[1], keys[0]]
    assert rows.row_keys(["a"], [1]) != rows.row_keys(["a"], [0])  # the label is part of the row


def test_predictions_frame_pairing_and_losses():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    frame = rows.predictions_frame(["x", "y", "z"], np.array([0, 1, 1]), probs)
    assert list(frame.prediction) == [0, 1, 0] and frame.confidence.tolist() == pytest.approx(
        [0.9, 0.8, 0.6]
    )
    assert rows.row_losses(frame) == pytest.approx(-np.log([0.9, 0.8, 0.4]), rel=1e-6)
    shuffled = frame.iloc[[2, 0, 1]].reset_index(drop=True)
    a, b = rows.paired(frame, shuffled)
    assert list(a.key) == list(b.key) and list(b.row) == [0, 1, 2]
    with pytest.raises(ValueError, match="different rows"):
        rows.paired(frame, frame.head(2))
    errors = rows.misclassified(frame, ["x", "y", "z"], ("neg", "pos"))
    assert errors.to_dict("records") == [
        {"row": 2, "text": "z", "label": "pos", "prediction": "neg", "confidence": 0.6}
    ]
    assert isinstance(errors, pd.DataFrame)


def test_a_full_imdb_test_set_is_resampled_in_bounded_blocks():
    """25,000 rows x 2,000 resamples at once would be 400 MB of indices (and three times that in
    F1's arrays): blocks of at most 2 million indices, every resample drawn once, and the same
    interval for the same seed."""
    blocks = list(intervals.resample_rows(25_000, 2_000))
    assert max(b.size for b in blocks) <= 2_000_000 and sum(len(b) for b in blocks) == 2_000
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 25_000)
    p = noisy(y, 0.9, rng)
    low, high = intervals.bootstrap_f1(y, p, 2)
    assert low < f1(y, p, 2) < high and high - low < 0.02
    assert intervals.bootstrap_f1(y, p, 2) == (low, high)


def test_the_mean_loss_bootstrap_covers_the_population_mean():
    rng, hits = np.random.default_rng(13), []
    for s in range(300):
        losses = rng.exponential(0.4, 200)  # per-row cross-entropy: skewed, as real losses are
        low, high = intervals.bootstrap_mean(losses, resamples=500, seed=s)
        hits.append(low <= 0.4 <= high)
    assert 0.91 <= np.mean(hits) <= 0.98


def test_the_loss_ratio_bootstrap_covers_the_population_ratio():
    """train/val loss ratio from two independent sets of rows (the training probe and
    validation)."""
    rng, hits = np.random.default_rng(14), []
    for s in range(300):
        train, val = rng.exponential(0.3, 200), rng.exponential(0.5, 200)
        low, high = intervals.bootstrap_ratio(train, val, resamples=500, seed=s)
        hits.append(low <= 0.6 <= high)
    assert 0.91 <= np.mean(hits) <= 0.98


def test_a_score_is_printed_with_its_interval():
    metrics = {
        "test_accuracy": 0.8412,
        "test_accuracy_ci_low": 0.81,
        "test_accuracy_ci_high": 0.8702,
        "train_time_s": 12.5,
    }
    assert intervals.bounds("test_accuracy") == ("test_accuracy_ci_low", "test_accuracy_ci_high")
    assert intervals.with_interval(metrics, "test_accuracy") == "0.8412 [0.81, 0.8702]"
    assert intervals.with_interval(metrics, "train_time_s") == "12.5"
