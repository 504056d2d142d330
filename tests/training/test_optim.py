"""train.optimizer, train.schedule, Adam's betas/eps and the early-stopping monitor (notebook
choices)."""

from __future__ import annotations

import pytest
import torch
from test_train import CPU, cfg, loaders_for, tiny_classifier

from textclf.config import load_config
from textclf.errors import InputError
from textclf.training import loop as train_mod
from textclf.training.evaluate import Evaluation
from textclf.training.loop import fit
from textclf.training.optim import make_optimizer, make_schedule


def test_adam_and_adamw_with_the_notebook_betas_and_eps(tiny_model):
    model = tiny_classifier(tiny_model)
    adam = make_optimizer(model, cfg(optimizer="adam", adam_beta2=0.98, adam_eps=1e-9), CPU)
    assert type(adam) is torch.optim.Adam
    assert adam.defaults["betas"] == (0.9, 0.98) and adam.defaults["eps"] == 1e-9
    assert type(make_optimizer(model, cfg(), CPU)) is torch.optim.AdamW


def rates(tiny_model, schedule: str, warmup: float, steps: int = 4) -> list[float]:
    """The learning rate of each of `steps` optimizer steps (one epoch), as a fraction of the peak
    1e-3."""
    config = cfg(schedule=schedule, warmup_ratio=warmup, epochs=1, learning_rate=1e-3)
    optimizer = make_optimizer(tiny_classifier(tiny_model), config, CPU)
    scheduler = make_schedule(optimizer, config, batches_per_epoch=steps)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"] / 1e-3)
        optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize(
    "schedule, warmup, expected",
    [
        # notebooks 001 and 003 (4.1/4.2): constant LR, no warmup
        (
            "constant",
            0.0,
            [1.0, 1.0, 1.0, 1.0],
        ),
        # notebook 002 (Trainer's default: linear decay, no warmup)
        (
            "linear",
            0.0,
            [1.0, 0.75, 0.5, 0.25],
        ),
        ("linear", 0.5, [0.0, 0.5, 1.0, 0.5]),  # 003's 4.3: linear warmup, then decay
        ("constant", 0.5, [0.0, 0.5, 1.0, 1.0]),
    ],
)
def test_schedules_scale_the_learning_rate_per_step(tiny_model, schedule, warmup, expected):
    assert rates(tiny_model, schedule, warmup) == pytest.approx(expected)


def test_cosine_decays_to_zero_along_a_half_cosine(tiny_model):
    assert rates(tiny_model, "cosine", 0.0) == pytest.approx(
        [1.0, 0.853553, 0.5, 0.146447], abs=1e-5
    )


def scripted(monkeypatch, losses, accuracies):
    """Validation results in a given order (the training probe is off in these fits)."""
    rows = iter(zip(losses, accuracies, strict=False))
    monkeypatch.setattr(train_mod, "evaluate", lambda *a, **k: Evaluation(*next(rows), None, None))


def test_monitor_val_accuracy_keeps_the_most_accurate_epoch_and_stops_on_it(
    tiny_model, tiny_data, monkeypatch
):
    """Notebook 003's 4.3: early stopping on val accuracy (strict >), patience 2 here.

    The lowest val loss is epoch 1, the highest accuracy epoch 3, after which accuracy never
    improves by more than min_delta.
    """
    scripted(monkeypatch, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8], [0.80, 0.85, 0.90, 0.905, 0.90, 0.99])
    loaders = loaders_for(tiny_model, tiny_data)
    result = fit(
        tiny_classifier(tiny_model),
        loaders.train,
        loaders.val,
        cfg(epochs=6, patience=2, monitor="val_accuracy", min_delta=0.01),
        CPU,
    )
    assert (result.best_epoch, len(result.history), result.stopped_early) == (3, 5, True)


def test_every_objective_is_a_property_of_the_kept_weights(tiny_model, tiny_data, monkeypatch):
    """monitor val_accuracy keeps epoch 3; its validation loss (0.5) is best_val_loss, not the
    lowest of any epoch (0.3, epoch 1: weights that were not kept).

    The pruner was told the same quantity each epoch, so a pruned trial's value and a complete one's
    are the same thing (main stored 0.3 for a complete trial and the kept epoch's loss for a pruned
    one).
    """
    from textclf.studies.pruning import running_value
    from textclf.training.summary import selected_values

    scripted(monkeypatch, [0.3, 0.4, 0.5, 0.6, 0.7], [0.80, 0.85, 0.90, 0.905, 0.90])
    loaders = loaders_for(tiny_model, tiny_data)
    told = []
    result = fit(
        tiny_classifier(tiny_model),
        loaders.train,
        loaders.val,
        cfg(epochs=5, patience=2, monitor="val_accuracy", min_delta=0.01),
        CPU,
        report=lambda row, epoch: told.append(row),
    )
    values = selected_values(result)
    assert result.best_epoch == 3 and values["best_epoch"] == 3
    assert values["best_val_loss"] == 0.5 and values["best_val_accuracy"] == 0.90
    for objective in ("best_val_loss", "best_val_accuracy", "train_val_loss_ratio"):
        assert running_value(objective, told[-1]) == values[objective]


def test_monitor_val_loss_with_min_delta_ignores_tiny_improvements(
    tiny_model, tiny_data, monkeypatch
):
    scripted(monkeypatch, [1.0, 0.995, 0.99, 0.5], [0.5, 0.6, 0.7, 0.8])
    loaders = loaders_for(tiny_model, tiny_data)
    result = fit(
        tiny_classifier(tiny_model),
        loaders.train,
        loaders.val,
        cfg(epochs=4, patience=2, min_delta=0.02),
        CPU,
    )
    assert (result.best_epoch, len(result.history), result.stopped_early) == (1, 3, True)


def test_bad_optimizer_settings_are_listed_together():
    with pytest.raises(InputError) as e:
        load_config(
            None,
            [
                "train.optimizer=sgd",
                "train.schedule=poly",
                "train.adam_beta2=1.0",
                "train.adam_eps=0",
                "train.monitor=val_f1",
                "train.min_delta=-1",
            ],
        )
    problems = "\n".join(e.value.problems)
    for key in (
        "train.optimizer",
        "train.schedule",
        "train.adam_beta2",
        "train.adam_eps",
        "train.monitor",
        "train.min_delta",
    ):
        assert f"-o: {key}:" in problems
    assert len(e.value.problems) == 6
