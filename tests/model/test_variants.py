"""Model variants: frozen-layer presets per architecture, custom heads, peft; each trains and
reloads."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from textclf.config import load_config
from textclf.errors import InputError
from textclf.model.build import build_classifier, load_backbone
from textclf.model.saved import load_model_dir, save_model_dir
from textclf.predict import load_predictor

WB = ("weight", "bias")


def wb(*modules: str) -> set[str]:
    return {f"{m}.{k}" for m in modules for k in WB}


def per_layer(prefix: str, *modules: str, layers=(0, 1)) -> set[str]:
    return wb(*(f"{prefix}.{i}.{m}" for i in layers for m in modules))


# the parameter names of each tiny family, written out by hand (2 blocks each)
BERT_LIKE = {  # BERT (and MiniLM, ELECTRA) and RoBERTa share the body layout
    "attention": (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
    ),
    "attention_norm": ("attention.output.LayerNorm",),
    "ffn": ("intermediate.dense", "output.dense"),
    "ffn_norm": ("output.LayerNorm",),
}
FAMILIES = {
    "bert": dict(
        BERT_LIKE,
        layers="bert.encoder.layer",
        embeddings={
            "bert.embeddings.word_embeddings.weight",
            "bert.embeddings.position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight",
        }
        | wb("bert.embeddings.LayerNorm"),
        embeddings_norm=wb("bert.embeddings.LayerNorm"),
        pooler=wb("bert.pooler.dense"),
        head=wb("classifier"),
    ),
    "roberta": dict(
        BERT_LIKE,
        layers="roberta.encoder.layer",
        embeddings={
            "roberta.embeddings.word_embeddings.weight",
            "roberta.embeddings.position_embeddings.weight",
            "roberta.embeddings.token_type_embeddings.weight",
        }
        | wb("roberta.embeddings.LayerNorm"),
        embeddings_norm=wb("roberta.embeddings.LayerNorm"),
        pooler=set(),
        head=wb("classifier.dense", "classifier.out_proj"),
    ),
    "distilbert": dict(
        layers="distilbert.transformer.layer",
        attention=("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"),
        attention_norm=("sa_layer_norm",),
        ffn=("ffn.lin1", "ffn.lin2"),
        ffn_norm=("output_layer_norm",),
        embeddings={
            "distilbert.embeddings.word_embeddings.weight",
            "distilbert.embeddings.position_embeddings.weight",
        }
        | wb("distilbert.embeddings.LayerNorm"),
        embeddings_norm=wb("distilbert.embeddings.LayerNorm"),
        pooler=set(),
        head=wb("pre_classifier", "classifier"),
    ),
}


def expected(family: str, preset: str) -> set[str]:
    f = FAMILIES[family]

    def block(i):
        parts = (*f["attention"], *f["attention_norm"], *f["ffn"], *f["ffn_norm"])
        return per_layer(f["layers"], *parts, layers=(i,))

    norms = f["embeddings_norm"] | per_layer(f["layers"], *f["attention_norm"], *f["ffn_norm"])
    everything = f["embeddings"] | block(0) | block(1) | f["pooler"] | f["head"]
    chosen = {
        "full": everything,
        "head_only": set(),
        "embeddings+layer0": f["embeddings"] | block(0),
        "top1": block(1) | f["pooler"],
        "top2": block(0) | block(1) | f["pooler"],
        "bottom1": block(0),
        "attention_only": per_layer(f["layers"], *f["attention"]),
        "ffn_only": per_layer(f["layers"], *f["ffn"]),
        "layernorm_only": norms,
        "bias_only": {n for n in everything if n.endswith(".bias")},
    }[preset]
    return chosen | f["head"]


def build(path, *overrides, labels=("neg", "pos")):
    cfg = load_config(None, [f"model.name={path}", "data.max_length=32", *overrides])
    return build_classifier(load_backbone(cfg.model, cfg.data), labels, cfg.model)


def trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "preset",
    [
        "full",
        "head_only",
        "embeddings+layer0",
        "top1",
        "top2",
        "bottom1",
        "attention_only",
        "ffn_only",
        "layernorm_only",
        "bias_only",
    ],
)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_preset_trains_exactly_the_named_parameters(tiny_families, family, preset):
    model = build(tiny_families[family], f"model.freeze={preset}")
    assert trainable(model) == expected(family, preset)
    # the lists are complete
    assert {n for n, _ in model.named_parameters()} == expected(family, "full")


def test_presets_and_patterns_combine_and_mpnet_resolves(tiny_families):
    model = build(tiny_families["bert"], "model.freeze=[top1,*.embeddings.word_embeddings.*]")
    assert trainable(model) == expected("bert", "top1") | {"bert.embeddings.word_embeddings.weight"}
    mpnet = build(tiny_families["mpnet"], "model.freeze=attention_only")
    # shared by all blocks
    assert "mpnet.encoder.relative_attention_bias.weight" in trainable(mpnet)
    assert {n for n in trainable(mpnet) if ".layer.0." in n} == wb(
        *(f"mpnet.encoder.layer.0.attention.attn.{p}" for p in "qkvo")
    )


@pytest.mark.parametrize(
    "freeze, problem",
    [
        ("top3", "top3: the model has 2 transformer blocks; use k in 1..2"),
        ("*.layer.7.*", "*.layer.7.*: matches no parameter of this model"),
    ],
)
def test_a_preset_or_pattern_matching_nothing_is_an_error(tiny_families, freeze, problem):
    with pytest.raises(InputError) as e:
        build(tiny_families["bert"], f"model.freeze={freeze}")
    assert e.value.problems[0].startswith(f"-o: model.freeze: {problem}")


def test_unsupported_families_are_named(tiny_families):
    with pytest.raises(InputError) as e:
        build(tiny_families["gpt2"], "model.freeze=top1")
    assert (
        "model.freeze: freeze presets support BERT, DistilBERT, ELECTRA, MPNet, RoBERTa models"
        in e.value.problems[0]
    )
    assert "not 'gpt2'" in e.value.problems[0]


def test_frozen_parameters_get_no_gradient_and_no_optimizer_slot(tiny_families):
    from textclf.config import TrainConfig
    from textclf.training.optim import make_optimizer

    model = build(tiny_families["bert"], "model.freeze=top1")
    batch = torch.randint(5, 28, (4, 9))
    F.cross_entropy(
        model(input_ids=batch, attention_mask=torch.ones_like(batch)).logits,
        torch.tensor([0, 1, 0, 1]),
    ).backward()
    graded = {n for n, p in model.named_parameters() if p.grad is not None}
    assert graded == expected("bert", "top1")
    optimizer = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(graded)


VARIANTS = [
    ("model.head=cls",),
    ("model.head=mean",),
    ("model.head=cnn", "model.cnn_kernels=[2,3]"),
    ("model.head=mlp", "model.pooling=mean"),
    ("model.peft=lora",),
    ("model.peft=prompt",),
    ("model.head=cls", "model.freeze=top1"),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v))
def test_each_head_and_peft_method_learns_and_reloads_identically(
    tiny_families, pretrained_bert, sentiment, tmp_path, variant
):
    # peft freezes the body, so it starts from one that has seen the task, as a pretrained one would
    # have
    path = pretrained_bert if "peft" in variant[0] else tiny_families["bert"]
    torch.manual_seed(0)
    model = build(path, *variant)
    losses = fit_steps(model, sentiment, steps=12)
    assert losses[-1] < 0.8 * losses[0], losses
    ids, mask, _ = sentiment
    model.eval()
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    cfg = load_config(None, [f"model.name={path}", "data.max_length=32"])
    tokenizer = load_backbone(cfg.model, cfg.data).tokenizer
    save_model_dir(model, tokenizer, tmp_path / "saved", 32, str(path))
    reloaded, _, max_length = load_model_dir(tmp_path / "saved")
    with torch.no_grad():
        after = reloaded(input_ids=ids, attention_mask=mask).logits
    assert max_length == 32
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


def fit_steps(model, batch, steps: int, lr: float = 1e-2) -> list[float]:
    ids, mask, labels = batch
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="module")
def pretrained_bert(tiny_families, sentiment, tmp_path_factory):
    """The tiny BERT body after full fine-tuning on the task, saved without its head."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = build(tiny_families["bert"])
    fit_steps(model, sentiment, steps=30)
    path = tmp_path_factory.mktemp("pretrained-bert")
    model.bert.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_families["bert"]).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sentiment(tiny_families):
    from transformers import AutoTokenizer

    from conftest import sentiment_frame

    frame = sentiment_frame(32, seed=5)
    batch = AutoTokenizer.from_pretrained(tiny_families["bert"])(
        list(frame.text), padding=True, return_tensors="pt"
    )
    return batch["input_ids"], batch["attention_mask"], torch.tensor(frame.label.to_numpy())


def test_mean_and_cnn_heads_ignore_padding(tiny_families):
    for head in ("mean", "cnn", "mlp"):
        model = build(tiny_families["bert"], f"model.head={head}", "model.pooling=mean").eval()
        ids = torch.tensor([[2, 7, 12, 3]])
        padded = torch.tensor([[2, 7, 12, 3, 0, 0, 0]])
        with torch.no_grad():
            alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            in_batch = model(input_ids=padded, attention_mask=(padded != 0).long()).logits
        torch.testing.assert_close(alone, in_batch, rtol=1e-5, atol=1e-5)


def test_prefix_tuning_is_refused_clearly_where_the_model_cannot_take_it(tiny_families):
    """transformers 5 encoders take no past key values, which peft's prefix tuning needs."""
    with pytest.raises(InputError) as e:
        build(tiny_families["bert"], "model.peft=prefix")
    assert e.value.problems[0].startswith(
        "-o: model.peft: prefix does not work with bert models here"
    )
    assert e.value.problems[0].endswith("use model.peft=prompt (soft prompt tokens) or lora")


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (
            ["model.peft=lora", "model.head=mean"],
            "-o: model.peft: works with model.head=auto only, got 'lora'",
        ),
        (
            ["model.peft=lora", "model.freeze=top1"],
            "-o: model.peft: freezes the backbone itself; leave model.freeze",
        ),
        (["model.freeze=lots"], "-o: model.freeze: 'lots' is not a preset"),
        (["model.head=rnn"], "-o: model.head: must be one of auto, cls, mean, cnn, mlp, got 'rnn'"),
        (["model.cnn_kernels=[0,3]"], "-o: model.cnn_kernels: must be one or more widths >= 1"),
        (["model.cnn_kernels=[a]"], "-o: model.cnn_kernels: must be a list of integers"),
    ],
)
def test_variant_config_errors(overrides, problem):
    with pytest.raises(InputError) as e:
        load_config(None, overrides)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems


@pytest.mark.parametrize(
    "variant",
    [("model.head=cnn", "model.freeze=top1"), ("model.peft=lora",)],
    ids=["cnn-top1", "lora"],
)
def test_a_variant_run_logs_its_choice_and_predict_reloads_it(
    cli, tiny_overrides, tracking_uri, variant
):
    code, _, err = cli(
        "train",
        "--tracking-uri",
        tracking_uri,
        *[a for o in (*tiny_overrides, *variant) for a in ("-o", o)],
    )
    assert code == 0, err
    mlflow.set_tracking_uri(tracking_uri)
    experiment = next(o for o in tiny_overrides if o.startswith("tracking.experiment=")).split("=")[
        1
    ]
    [run] = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    params, metrics = run.data.params, run.data.metrics
    assert params["model.freeze"] == ("top1" if "model.freeze=top1" in variant else "full")
    assert 0 < metrics["trainable_fraction"] < 1
    assert metrics["trainable_params"] == round(
        metrics["trainable_fraction"] * metrics["total_params"]
    )
    assert metrics["model_artifact_mb"] > 0
    listed = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/trainable_parameters.txt").split()
    assert len(listed) > 0 and all(
        n.startswith(("head.", "body.encoder.layer.1.", "base_model.")) for n in listed
    )
    history = mlflow.MlflowClient().get_metric_history(
        run.info.run_id, "epoch_train_val_loss_ratio"
    )
    # per epoch, so sweeps show which settings overfit
    assert [m.step for m in history] == [
        1,
        2,
        3,
    ]
    # the reloaded model is the trained one: it reproduces the logged test accuracy on the same rows
    from textclf.data import load_splits

    test = load_splits(load_config(None, [*tiny_overrides, *variant]).data).test
    predictor = load_predictor(f"runs:/{run.info.run_id}/model")
    accuracy = (
        predictor.probabilities(list(test.text)).argmax(-1).numpy() == test.label.to_numpy()
    ).mean()
    assert abs(accuracy - metrics["test_accuracy"]) <= 1 / len(test)
    code, out, err = cli(
        "predict",
        "--model-uri",
        f"runs:/{run.info.run_id}/model",
        "--tracking-uri",
        tracking_uri,
        "great superb film",
        "awful dull plot",
    )
    assert code == 0, err
    labels = [line.split("\t")[0] for line in out.splitlines()]
    assert len(labels) == 2 and set(labels) <= {"neg", "pos"}
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    # the signature names its column
    pyfunc = loaded.predict(pd.DataFrame({"text": list(test.text)}))
    assert list(pyfunc.label) == [
        predictor.label_names[i] for i in predictor.probabilities(list(test.text)).argmax(-1)
    ]


def test_model_inspect_lists_what_trains(cli, tiny_families):
    code, out, err = cli(
        "model",
        "inspect",
        "--model",
        tiny_families["distilbert"],
        "--freeze",
        "top1",
        "-o",
        "data.max_length=32",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert {line.split()[1] for line in lines[:-1]} == expected("distilbert", "top1")
    assert lines[-1].endswith(f"{len(expected('distilbert', 'top1'))} tensors")


def test_patterns_and_full_work_on_any_family(tmp_path, tiny_families):
    import transformers

    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=40, pad_token_id=0)
    transformers.GPT2Model(config).save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(tiny_families["bert"]).save_pretrained(tmp_path)
    assert trainable(build(tmp_path, "model.freeze=*.ln_f.*")) == {
        "transformer.ln_f.weight",
        "transformer.ln_f.bias",
        "score.weight",
    }


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "mpnet"])
@pytest.mark.parametrize(
    "variant",
    [(), ("model.head=mean",), ("model.head=cnn",), ("model.peft=prompt",)],
    ids=["auto", "mean", "cnn", "prompt"],
)
def test_an_unpadded_batch_without_a_mask_gives_identical_logits(tiny_families, family, variant):
    """Collate passes no attention mask when no row is padded (no per-step `mask.all()` sync on
    CUDA); the logits must equal those with an all-ones mask, bit for bit, for every family, head
    and prompt tuning."""
    from textclf.data.features import Collate

    model = build(tiny_families[family], *variant).eval()
    batch = Collate(pad_id=0)([([2, 7, 12, 9, 3], 0), ([2, 8, 11, 10, 3], 1)])
    assert batch["attention_mask"] is None
    with torch.no_grad():
        without = model(input_ids=batch["input_ids"]).logits
        ones = model(
            input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"])
        ).logits
    assert torch.equal(without, ones)
    padded = Collate(pad_id=0)([([2, 7, 12, 3], 0), ([2, 8, 11, 10, 3], 1)])
    # a padded batch keeps it
    assert padded["attention_mask"].tolist() == [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]
