"""train.compile: the training forward through torch.compile, static shapes from padded widths,
compile time measured apart.

Compiling on CPU takes seconds per shape, so the runs here are one tiny model's few shapes.
"""

import pytest
import torch
from test_train import CPU, cfg, loaders_for, tiny_classifier
from transformers import AutoTokenizer

from textclf.config import load_config
from textclf.data import load_splits
from textclf.data.features import Collate, make_loaders
from textclf.training.compiled import CompileClock
from textclf.training.evaluate import evaluate
from textclf.training.loop import fit


def test_compiled_batches_pad_to_a_multiple_of_64_up_to_max_length_and_always_carry_a_mask():
    rows = [([5] * 70, 0), ([5] * 70, 1)]
    same_length = Collate(0, multiple=64, limit=100, always_mask=True)(rows)
    assert same_length["input_ids"].shape == (2, 100)  # 128 would pass max_length 100
    assert (
        same_length["attention_mask"] is not None
        and int(same_length["attention_mask"].sum()) == 140
    )
    assert Collate(0, multiple=64, limit=512, always_mask=True)([([5] * 3, 0)])[
        "input_ids"
    ].shape == (1, 64)
    # without compile nothing changes: no padding, no mask
    assert Collate(0)(rows)["attention_mask"] is None and Collate(0)(rows)["input_ids"].shape == (
        2,
        70,
    )


def test_only_training_batches_change_shape_when_compiling(tiny_model, tiny_data):
    splits = load_splits(load_config(None, [f"data.name={tiny_data}"]).data)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    loaders = make_loaders(
        splits,
        tokenizer,
        max_length=32,
        batch_size=16,
        eval_batch_size=64,
        seed=0,
        device=CPU,
        compile=True,
    )
    assert {tuple(b["input_ids"].shape)[1] for b in loaders.train} == {32}  # capped at max_length
    assert all(b["attention_mask"] is not None for b in loaders.train)
    # eval: padded to its longest row
    assert {tuple(b["input_ids"].shape)[1] for b in loaders.val} != {32}


def test_the_clock_counts_first_steps_at_each_shape_less_the_shapes_usual_step(monkeypatch):
    times = iter([0.0, 5.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0, 40.0, 42.0])
    monkeypatch.setattr("textclf.training.compiled.time.perf_counter", lambda: next(times))
    clock = CompileClock(CPU, enabled=True)
    for shape in [(16, 64), (16, 64), (16, 64), (16, 64), (4, 64)]:
        with clock.timing(shape):
            pass
    # (16, 64): first 5 s, later 1 s each; (4, 64): seen once, all of its 2 s count
    assert clock.seconds() == pytest.approx(4.0 + 2.0)
    assert CompileClock(CPU, enabled=False).seconds() == 0.0


def test_a_compiled_run_trains_like_an_eager_one_and_reports_its_compile_time(
    tiny_model, tiny_data
):
    results = {}
    for compiled in (False, True):
        loaders = loaders_for(tiny_model, tiny_data)
        model = tiny_classifier(tiny_model, dropout=0.0)
        fitted = fit(
            model, loaders.train, loaders.val, cfg(epochs=2, patience=0, compile=compiled), CPU
        )
        results[compiled] = (fitted, evaluate(model, loaders.test, CPU, None).accuracy)
    (eager, eager_accuracy), (fast, fast_accuracy) = results[False], results[True]
    assert (
        load_config(None, []).train.compile is False
        and load_config(None, ["train.compile=true"]).train.compile
    )
    # compiling (seconds per shape on CPU) costs more than all the tiny model's eager steps together
    assert eager.compile_time_s == 0.0 and fast.compile_time_s > eager.step_time_s
    assert fast.compile_time_s < fast.step_time_s  # inside the steps' time, not beside it
    # the same rows and order; only the padding and the kernels differ: losses agree closely
    for a, b in zip(eager.history, fast.history, strict=False):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
    assert fast_accuracy == pytest.approx(eager_accuracy, abs=0.02)
    assert torch._dynamo.config.recompile_limit == 8  # restored after training


def test_a_compiled_run_logs_its_compile_time_and_an_eager_one_does_not(
    tiny_overrides, tracking_uri
):
    import mlflow

    from textclf.run import train_run

    base = load_config(
        None,
        [
            *tiny_overrides,
            "train.epochs=1",
            "tracking.log_model=false",
            "tracking.log_figures=false",
        ],
    )
    compiled_run = train_run(
        load_config(
            None,
            [
                *tiny_overrides,
                "train.epochs=1",
                "tracking.log_model=false",
                "tracking.log_figures=false",
                "train.compile=true",
            ],
        ),
        tracking_uri,
    )
    eager_run = train_run(base, tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    logged = client.get_run(compiled_run.run_id).data
    assert logged.params["train.compile"] == "True" and logged.metrics["compile_time_s"] > 0
    assert "compile_time_s" not in client.get_run(eager_run.run_id).data.metrics
