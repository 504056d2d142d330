import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from textclf.config import TrainConfig, load_config
from textclf.data import load_splits
from textclf.data.batches import by_length
from textclf.data.features import Collate, encode, make_loaders
from textclf.training import epoch as epoch_mod
from textclf.training import flops
from textclf.training import loop as train_mod
from textclf.training.evaluate import Evaluation, evaluate
from textclf.training.loop import fit
from textclf.training.optim import make_optimizer

CPU = torch.device("cpu")


def tiny_classifier(path, dropout=0.1):
    set_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )


def loaders_for(tiny_model, tiny_data, batch_size=16, seed=0):
    splits = load_splits(load_config(None, [f"data.name={tiny_data}"]).data)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    return make_loaders(
        splits,
        tokenizer,
        max_length=32,
        batch_size=batch_size,
        eval_batch_size=64,
        seed=seed,
        device=CPU,
    )


def cfg(**changes) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, learning_rate=2e-3, warmup_ratio=0.0, progress=False)
    return TrainConfig(**{**base, **changes})


def test_fit_learns_the_synthetic_task(tiny_model, tiny_data):
    loaders = loaders_for(tiny_model, tiny_data)
    model = tiny_classifier(tiny_model)
    logged = []
    result = fit(
        model,
        loaders.train,
        loaders.val,
        cfg(epochs=4, patience=0),
        CPU,
        log=lambda metrics, epoch: logged.append((epoch, metrics)),
    )
    assert [e for e, _ in logged] == [1, 2, 3, 4]
    assert set(logged[0][1]) == {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "train_val_loss_ratio",
        "train_loss_running",
        "train_accuracy_running",
        "epoch_time_s",
        "learning_rate",
        "grad_norm",
        "grad_norm_max",
    }
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(model, loaders.test, CPU, None).accuracy > 0.9  # the label is in the words
    assert result.samples == 4 * len(loaders.train.dataset)
    assert result.tokens > result.samples * 4  # real tokens: [CLS] + >= 4 words + [SEP]


@pytest.mark.parametrize("max_grad_norm", [1e-3, 0.0])
def test_the_applied_learning_rate_and_the_gradient_norm_are_measured(
    tiny_model, tiny_data, max_grad_norm
):
    """Each optimizer step's learning rate after warmup and decay (what the configured peak hides),
    and each epoch's gradient norm before clipping (clipping to 1e-3 must not hide it)."""
    loaders = loaders_for(tiny_model, tiny_data)
    logged = []
    result = fit(
        tiny_classifier(tiny_model),
        loaders.train,
        loaders.val,
        cfg(epochs=2, warmup_ratio=0.25, learning_rate=1e-3, max_grad_norm=max_grad_norm),
        CPU,
        log=lambda metrics, epoch: logged.append(metrics),
    )
    total = 2 * len(loaders.train)
    warmup = int(0.25 * total)
    # transformers' linear schedule, written out: up from 0 over the warmup steps, then down to 0
    expected = [
        1e-3 * (i / warmup if i < warmup else (total - i) / (total - warmup)) for i in range(total)
    ]
    assert result.learning_rates == pytest.approx(expected)
    assert [row["learning_rate"] for row in logged] == pytest.approx(
        [expected[len(loaders.train) - 1], expected[-1]]
    )
    for row in logged:
        assert math.isfinite(row["grad_norm"]) and row["grad_norm_max"] >= row["grad_norm"] > 0.01


def test_early_stopping_restores_the_best_epoch(tiny_model, tiny_data, monkeypatch):
    """Scripted validation losses: best at epoch 2; patience 2 stops after epoch 4."""
    losses = iter([1.0, 0.5, 0.7, 0.8, 0.9])
    real_evaluate = train_mod.evaluate
    monkeypatch.setattr(
        train_mod,
        "evaluate",
        lambda *a, **k: Evaluation(next(losses), real_evaluate(*a, **k).accuracy, None, None),
    )
    loaders = loaders_for(tiny_model, tiny_data)
    model = tiny_classifier(tiny_model)
    snapshots = {}
    result = fit(
        model,
        loaders.train,
        loaders.val,
        cfg(epochs=5, patience=2),
        CPU,
        log=lambda m, epoch: snapshots.update(
            {epoch: {n: p.clone() for n, p in model.named_parameters()}}
        ),
    )
    assert (result.best_epoch, len(result.history), result.stopped_early) == (2, 4, True)
    for name, p in model.named_parameters():
        assert torch.equal(p, snapshots[2][name]), name
    assert not torch.equal(snapshots[4]["classifier.weight"], snapshots[2]["classifier.weight"])


def test_gradient_accumulation_matches_the_full_batch(tiny_model, tiny_data):
    """Without dropout, 2 x 8 accumulated equals 16 in one batch (same data order, same updates)."""
    results = []
    for batch, accum in ((16, 1), (8, 2)):
        loaders = loaders_for(tiny_model, tiny_data, batch_size=batch)
        model = tiny_classifier(tiny_model, dropout=0.0)
        fit(
            model,
            loaders.train,
            loaders.val,
            cfg(epochs=1, batch_size=batch, grad_accum_steps=accum, max_grad_norm=0.0),
            CPU,
        )
        results.append(dict(model.named_parameters()))
    for name, p in results[0].items():
        torch.testing.assert_close(p, results[1][name], rtol=1e-4, atol=1e-5, msg=name)


def test_same_seed_same_run(tiny_model, tiny_data):
    runs = []
    for _ in range(2):
        loaders = loaders_for(tiny_model, tiny_data, seed=3)
        model = tiny_classifier(tiny_model)
        runs.append(fit(model, loaders.train, loaders.val, cfg(epochs=2), CPU).history)
    strip = [[{k: v for k, v in row.items() if k != "epoch_time_s"} for row in h] for h in runs]
    assert strip[0] == strip[1]


def test_no_weight_decay_on_biases_and_layernorm(tiny_model):
    model = tiny_classifier(tiny_model)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    decay, plain = make_optimizer(model, cfg(weight_decay=0.1), CPU).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(
        names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in plain["params"]
    )
    assert any("LayerNorm.weight" in names[id(p)] for p in plain["params"])
    assert all(
        "LayerNorm" not in names[id(p)] and not names[id(p)].endswith("bias")
        for p in decay["params"]
    )
    trainable = sum(p.requires_grad for p in model.parameters())
    assert len(decay["params"]) + len(plain["params"]) == trainable  # frozen ones are left out


def test_nan_loss_stops_with_a_clear_error(tiny_model, tiny_data):
    loaders = loaders_for(tiny_model, tiny_data)
    model = tiny_classifier(tiny_model)
    with torch.no_grad():
        model.classifier.weight.fill_(math.nan)
    with pytest.raises(
        FloatingPointError, match=r"training loss is nan .* lower train\.learning_rate"
    ):
        fit(model, loaders.train, loaders.val, cfg(epochs=1), CPU)


def test_report_sees_each_epoch_and_may_stop_the_run(tiny_model, tiny_data):
    loaders = loaders_for(tiny_model, tiny_data)
    seen = []

    def report(row, epoch):
        seen.append((epoch, row["val_accuracy"]))
        if epoch == 2:
            raise RuntimeError("pruned")

    with pytest.raises(RuntimeError, match="pruned"):
        fit(
            tiny_classifier(tiny_model),
            loaders.train,
            loaders.val,
            cfg(epochs=3),
            CPU,
            report=report,
        )
    assert [e for e, _ in seen] == [1, 2] and all(0 <= v <= 1 for _, v in seen)


def test_collate_pads_dynamically_and_counts_real_tokens():
    batch = Collate(pad_id=0)([([101, 5, 6, 102], 1), ([101, 7, 102], 0)])
    assert batch["input_ids"].tolist() == [[101, 5, 6, 102], [101, 7, 102, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["tokens"] == 7
    assert Collate(pad_id=0, multiple=8)([([1, 2, 3], 0)])["input_ids"].shape == (1, 8)


def test_encode_truncates_and_eval_batches_group_by_length(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoded = encode(
        ["good " * 50, "bad", "good film was great"], [1, 0, 1], tokenizer, max_length=10
    )
    assert encoded.lengths().tolist() == [10, 3, 6]
    assert encoded.input_ids[0][-1] == tokenizer.sep_token_id  # truncation keeps the final [SEP]
    assert by_length(encoded.lengths(), 2) == [[1, 2], [0]]


@pytest.fixture(scope="module")
def four_block_bert(tmp_path_factory):
    """A random 4-block BERT (hidden 32, FFN 37, 28-token vocabulary): 6,789 parameters per block,
    pooler 1,056, a 2-class head 66; embeddings 3,072 (not counted in N)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from conftest import VOCAB

    path = tmp_path_factory.mktemp("bert4")
    set_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(VOCAB),
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=64,
        )
    ).save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, model_max_length=64).save_pretrained(
        path
    )
    return path


# LoRA r=8 on query and value
BLOCK, POOLER, HEAD, LORA_PER_BLOCK = (
    6789,
    1056,
    66,
    2 * (8 * 32 + 32 * 8),
)
N = 4 * BLOCK + POOLER + HEAD  # 28,278 non-embedding parameters
ATTENTION = 32 * 10.0  # d x token-weighted length T


@pytest.mark.parametrize(
    "overrides, expected",
    [
        # forward 2N + 4LdT; backward activations 2 N_above + 8 (L - k) dT; weight gradients 2
        # N_trained
        (["model.freeze=full"], 6 * N + 12 * 4 * ATTENTION),
        (
            ["model.freeze=top2"],  # blocks 2, 3 and the pooler train: k = 2
            2 * N
            + 4 * 4 * ATTENTION
            + 2 * (2 * BLOCK + POOLER + HEAD)
            + 8 * 2 * ATTENTION
            + 2 * (2 * BLOCK + POOLER + HEAD),
        ),
        (
            # nothing below the top trains: k = L; pooler and head count as the top
            ["model.freeze=head_only"],
            2 * N + 4 * 4 * ATTENTION + 2 * (POOLER + HEAD) + 2 * HEAD,
        ),
        (
            ["model.peft=lora"],  # adapters in block 0: k = 0; the base weights get no gradients
            2 * (N + 4 * LORA_PER_BLOCK)
            + 4 * 4 * ATTENTION
            + 2 * (N + 4 * LORA_PER_BLOCK)
            + 8 * 4 * ATTENTION
            + 2 * (4 * LORA_PER_BLOCK + HEAD),
        ),
    ],
)
def test_flops_per_token_count_only_the_backward_work_that_runs(
    four_block_bert, overrides, expected
):
    """flops.py's formula against hand-computed values: a frozen or adapter-tuned model is not
    charged 6N."""
    from textclf.model.build import build_classifier, load_backbone

    cfg = load_config(None, [f"model.name={four_block_bert}", "data.max_length=64", *overrides])
    model = build_classifier(load_backbone(cfg.model, cfg.data), ("neg", "pos"), cfg.model)
    assert flops.flops_per_token(model, model.config, 10.0) == expected


def test_the_attention_length_is_token_weighted():
    """Attention work per token grows with its sequence's length: T = sum(len^2) / sum(len), not
    the mean."""
    batch = Collate(pad_id=0)([([1] * 2, 0), ([1] * 8, 1)])
    assert batch["token_squares"] == 68 and batch["tokens"] == 10
    assert flops.attention_length(tokens=10, token_squares=68) == 6.8  # the plain mean would be 5


def test_peak_flops_override_and_cpu_estimate(monkeypatch):
    monkeypatch.setenv("TEXTCLF_PEAK_TFLOPS", "2.5")
    assert flops.peak_flops(torch.device("cpu"), None) == 2.5e12
    monkeypatch.delenv("TEXTCLF_PEAK_TFLOPS")
    estimate = flops.peak_flops(torch.device("cpu"), None)
    # cores x clock x FLOPs/cycle, when /proc/cpuinfo says
    assert estimate is None or 1e9 < estimate < 1e14


def test_loss_ratio_compares_eval_mode_losses_on_a_fixed_training_sample(tiny_model, tiny_data):
    """The train side of the ratio is the evaluation code on a fixed sample of training rows as
    large as the validation set (dropout off, weights fixed), not the running train-mode loss."""
    loaders = loaders_for(tiny_model, tiny_data)
    assert len(loaders.train_probe.dataset) == len(loaders.val.dataset) == 24
    model = tiny_classifier(tiny_model, dropout=0.5)
    probes = []
    fit(
        model,
        loaders.train,
        loaders.val,
        cfg(epochs=2, patience=0),
        CPU,
        train_probe=loaders.train_probe,
        log=lambda m, epoch: probes.append((m, evaluate(model, loaders.train_probe, CPU, None))),
    )
    for row, probe in probes:
        assert (
            row["train_loss"] == pytest.approx(probe.loss)
            and row["train_accuracy"] == probe.accuracy
        )
        assert row["train_val_loss_ratio"] == pytest.approx(probe.loss / row["val_loss"])
        assert "train_loss_running" in row and row["train_loss_running"] != row["train_loss"]


def test_a_short_micro_batch_is_weighted_by_its_rows(tiny_model, tiny_data, monkeypatch):
    """216 training rows: 20 x 1 ends with a batch of 16; 10 x 2 ends with a window of 10 + 6 rows.

    Each optimizer step's gradient is the mean over the rows of its window in both, so every step's
    gradients agree.
    """
    real_step = epoch_mod.step
    grads = {}

    def recording_step(model, *args):
        grads.setdefault(key, []).append(
            [p.grad.clone() for p in model.parameters() if p.grad is not None]
        )
        return real_step(model, *args)

    monkeypatch.setattr(epoch_mod, "step", recording_step)
    for key in ((20, 1), (10, 2)):
        loaders = loaders_for(tiny_model, tiny_data, batch_size=key[0])
        fit(
            tiny_classifier(tiny_model, dropout=0.0),
            loaders.train,
            loaders.val,
            cfg(epochs=1, batch_size=key[0], grad_accum_steps=key[1], max_grad_norm=0.0),
            CPU,
        )
    assert len(grads[(20, 1)]) == len(grads[(10, 2)]) == 11
    for a, b in zip(grads[(20, 1)][-1], grads[(10, 2)][-1], strict=False):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def scripted_losses(monkeypatch, losses):
    values = iter(losses)
    real_evaluate = train_mod.evaluate

    def evaluate_with(model, loader, *a, **k):
        result = real_evaluate(model, loader, *a, **k)
        if k.get("desc") != "val":
            return result
        return Evaluation(next(values), result.accuracy, result.predictions, result.labels)

    monkeypatch.setattr(train_mod, "evaluate", evaluate_with)


def test_a_nan_validation_loss_after_epoch_one_ends_at_the_best_epoch(
    tiny_model, tiny_data, monkeypatch
):
    scripted_losses(monkeypatch, [1.0, 0.5, math.nan])
    loaders = loaders_for(tiny_model, tiny_data)
    model = tiny_classifier(tiny_model)
    snapshots = {}
    result = fit(
        model,
        loaders.train,
        loaders.val,
        cfg(epochs=5, patience=0),
        CPU,
        log=lambda m, epoch: snapshots.update(
            {epoch: {n: p.clone() for n, p in model.named_parameters()}}
        ),
    )
    assert (result.best_epoch, len(result.history)) == (2, 2)
    assert result.diverged == "validation loss is nan after epoch 3; kept epoch 2"
    for name, p in model.named_parameters():
        assert torch.equal(p, snapshots[2][name]), name
    monkeypatch.undo()
    scripted_losses(monkeypatch, [math.nan])
    with pytest.raises(FloatingPointError, match="validation loss is nan after epoch 1"):
        fit(tiny_classifier(tiny_model), loaders.train, loaders.val, cfg(epochs=2), CPU)


def test_report_gets_the_running_objective_row(tiny_model, tiny_data, monkeypatch):
    """The pruner sees the best-val-loss epoch so far (the objective's own definition), not the last
    epoch."""
    scripted_losses(monkeypatch, [1.0, 0.5, 0.7])
    loaders = loaders_for(tiny_model, tiny_data)
    seen, logged = [], []
    fit(
        tiny_classifier(tiny_model),
        loaders.train,
        loaders.val,
        cfg(epochs=3, patience=0),
        CPU,
        log=lambda m, epoch: logged.append(m),
        report=lambda row, epoch: seen.append((epoch, row)),
    )
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [row for _, row in seen] == [logged[0], logged[1], logged[1]]


def test_dataloader_workers_default_to_two_persistent_ones_on_a_gpu_and_none_on_cpu(
    tiny_model, tiny_data
):
    """Issue 14: batches collated off the main thread where the GPU would otherwise wait
    (persistent, so workers are not forked again every epoch); on CPU the workers would take the
    model's cores."""
    splits = load_splits(load_config(None, [f"data.name={tiny_data}"]).data)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)

    def loaders(device, workers):
        return make_loaders(
            splits,
            tokenizer,
            max_length=32,
            batch_size=16,
            eval_batch_size=64,
            seed=0,
            device=torch.device(device),
            num_workers=workers,
        )

    assert load_config(None, []).train.num_workers is None
    assert load_config(None, ["train.num_workers=3"]).train.num_workers == 3
    on_gpu, on_cpu, chosen = loaders("cuda", None), loaders("cpu", None), loaders("cpu", 1)
    assert [
        (d.num_workers, d.persistent_workers, d.pin_memory) for d in (on_gpu.train, on_gpu.test)
    ] == [(2, True, True)] * 2
    assert (on_cpu.train.num_workers, on_cpu.train.persistent_workers, on_cpu.train.pin_memory) == (
        0,
        False,
        False,
    )
    assert (chosen.train.num_workers, chosen.train.persistent_workers) == (1, True)
    # a worker process delivers every row
    assert sum(len(b["labels"]) for b in chosen.train) == len(splits.train)
