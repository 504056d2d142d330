"""reporting/compare.py's verdicts on simulated runs (no MLflow): seed lists of identical
configurations get "configuration B is better" at most at alpha, single runs get the model
question's wording and never a configuration verdict, and secondary metrics never flip or contradict
the primary one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import pair, tolerance
from textclf.reporting import compare, verdicts
from textclf.stats import rows
from textclf.tracking.predictions import Scored


def side(name: str, labels: np.ndarray, right: np.ndarray, lr: str = "1e-4") -> compare.Side:
    """Runs (one per row of `right`: 1 where the run is right) as a side, binary labels."""
    texts = [f"text {i}" for i in range(len(labels))]
    runs, frames = [], []
    for seed, hits in enumerate(right):
        predicted = np.where(hits == 1, labels, 1 - labels)
        confident = np.where(hits == 1, 0.8, 0.3)  # the label's probability
        probabilities = np.stack(
            [
                np.where(labels == 0, confident, 1 - confident),
                np.where(labels == 1, confident, 1 - confident),
            ],
            1,
        )
        frame = rows.predictions_frame(texts, labels, probabilities)
        assert (frame.prediction.to_numpy() == predicted).all()
        runs.append(
            Scored(
                f"{name}{seed}",
                f"{name}{seed:031d}",
                f"{name} run",
                "rows",
                frame,
                {"train.learning_rate": lr, "train.seed": str(42 + seed)},
            )
        )
        frames.append(frame)
    return compare.Side(name, runs, frames)


def test_identical_configurations_with_three_seeds_are_rarely_called_different():
    rng, sims = np.random.default_rng(7), 400
    verdicts = []
    for _ in range(sims):
        a, b = pair(rng, 3)
        labels = rng.integers(0, 2, a.shape[1])
        verdicts.append(
            compare.judge([side("A", labels, a), side("B", labels, b)], "val")["verdict"]
        )
    assert {v["kind"] for v in verdicts} == {"configurations"}
    b_better = np.mean([v["better"] == "b" for v in verdicts])
    assert b_better <= 0.05 + tolerance(0.05, sims)
    assert np.mean([v["better"] is not None for v in verdicts]) <= 0.05 + tolerance(0.05, sims)


def test_two_single_runs_get_the_model_wording_and_no_configuration_verdict():
    rng = np.random.default_rng(8)
    a, b = pair(rng, 1)
    labels = rng.integers(0, 2, a.shape[1])
    result = compare.judge([side("A", labels, a), side("B", labels, b)], "val")
    verdict = result["verdict"]
    assert verdict["kind"] == "models" and "two trained models" in verdict["text"]
    assert (
        "configuration B is better" not in verdict["text"]
        and "configuration A" not in verdict["text"]
    )
    assert "comma-separated" in verdict["text"]


def test_a_secondary_metric_never_flips_the_verdict():
    """Primary accuracy: no difference; secondary loss: a large one.

    The verdict stays "no difference" and reports the secondary as Holm-adjusted.
    """
    comparisons = [
        {"metric": "accuracy", "difference": 0.01, "p_value": 0.4, "n": 300, "role": "primary"},
        {
            "metric": "loss",
            "difference": -0.2,
            "p_value": 0.001,
            "p_holm": 0.002,
            "n": 300,
            "role": "secondary",
        },
    ]
    verdict = verdicts.verdict("models", comparisons, 0.05, "val")
    assert (
        verdict["better"] is None
        and verdict["metric"] == "accuracy"
        and "no difference" in verdict["text"]
    )
    # B better on the primary, A on a secondary: one verdict, and the trade-off said as such
    comparisons[0] |= {"difference": 0.05, "p_value": 0.001}
    comparisons[1] |= {"difference": 0.2}
    verdict = verdicts.verdict("models", comparisons, 0.05, "val")
    assert (
        verdict["better"] == "b"
        and "point the other way" in verdict["text"]
        and "trade-off" in verdict["text"]
    )


@pytest.mark.parametrize(
    "objective, metric",
    [
        ("best_val_loss", "loss"),
        ("best_val_accuracy", "accuracy"),
        ("train_time_s", "accuracy"),
        ("", "accuracy"),
    ],
)
def test_the_objective_chooses_the_primary_metric(objective, metric):
    labels = np.array([0, 1, 0, 1])
    one = side("A", labels, np.ones((1, 4)))
    one.runs[0] = Scored(**{**one.runs[0].__dict__, "objective": objective})
    assert compare.primary_metric(None, [one, one])[0] == metric
    assert compare.primary_metric("f1", [one, one]) == ("f1", "chosen with --metric")


def test_configuration_sides_report_their_seeds():
    rng = np.random.default_rng(9)
    a, b = pair(rng, 3, lead=0.6)
    labels = rng.integers(0, 2, a.shape[1])
    result = compare.judge([side("A", labels, a), side("B", labels, b, lr="5e-5")], "val")
    assert [r["seed"] for r in result["b"]["runs"]] == ["42", "43", "44"]
    assert result["verdict"]["better"] == "b" and result["comparisons"][0]["metric"] == "accuracy"
    text = verdicts.as_text(result)
    assert "configuration B is better on accuracy" in text and "3 and 3 seeds" in text
    assert isinstance(pd.DataFrame(result["comparisons"]), pd.DataFrame)
