"""model.init: random and model.config overrides (notebooks 003 and 004: encoders trained from
scratch), and notebook 002's freeze sets as name-substring patterns with its trainable-tensor
counts."""

from __future__ import annotations

import pytest
import torch
from test_variants import build
from transformers import (
    AutoModel,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    set_seed,
)

from textclf.config import load_config
from textclf.errors import InputError


def test_random_init_keeps_the_architecture_and_drops_every_pretrained_weight(tiny_model):
    pretrained = AutoModel.from_pretrained(tiny_model).state_dict()
    set_seed(1)  # as a run seeds before it builds (run.py)
    scratch = build(tiny_model, "model.init=random")
    set_seed(1)
    again = build(tiny_model, "model.init=random")
    body = {
        k.removeprefix("bert."): v for k, v in scratch.state_dict().items() if k.startswith("bert.")
    }
    assert body.keys() == pretrained.keys()
    weights = [k for k in body if k.endswith("weight") and "LayerNorm" not in k]
    assert not any(torch.equal(body[k], pretrained[k]) for k in weights)
    same_seed = dict(again.state_dict())
    # seeded, reproducible
    assert all(torch.equal(v, same_seed[k]) for k, v in scratch.state_dict().items())


def test_model_config_overrides_build_notebook_003s_shape(tiny_model):
    """003's encoder at toy size: more layers, another width, head count and FFN, mean pooling."""
    model = build(
        tiny_model,
        "model.init=random",
        "model.head=mean",
        "model.config=[num_hidden_layers=3, hidden_size=48, num_attention_heads=4,"
        " intermediate_size=96, max_position_embeddings=40]",
    )
    body = model.body.config
    assert (
        body.num_hidden_layers,
        body.hidden_size,
        body.num_attention_heads,
        body.intermediate_size,
        body.max_position_embeddings,
    ) == (3, 48, 4, 96, 40)
    assert len(model.body.encoder.layer) == 3 and model.head.net[-1].in_features == 48
    out = model(
        input_ids=torch.ones(2, 10, dtype=torch.long), attention_mask=torch.ones(2, 10)
    ).logits
    assert out.shape == (2, 2)


def test_a_yaml_mapping_is_accepted_for_model_config(tmp_path, tiny_model):
    path = tmp_path / "scratch.yaml"
    path.write_text(
        f"model: {{name: {tiny_model}, init: random, config: {{num_hidden_layers: 1}}}}\n"
    )
    assert load_config(path).model.config == ("num_hidden_layers=1",)


def test_the_position_limit_follows_the_overridden_table(tiny_model):
    with pytest.raises(
        InputError, match=r"data\.max_length: 32 is above the limit .* \(20 tokens\)"
    ):
        build(tiny_model, "model.init=random", "model.config=[max_position_embeddings=20]")


def test_bad_architecture_overrides_are_listed_together(tiny_model):
    with pytest.raises(InputError) as e:
        build(tiny_model, "model.init=random", "model.config=[num_hidden_layer=3, hidden_size=big]")
    assert e.value.problems == [
        "-o: model.config: num_hidden_layer is not in the bert config; did you mean "
        "num_hidden_layers?",
        "-o: model.config: hidden_size must be int like the checkpoint's 32, got 'big'",
    ]
    with pytest.raises(InputError, match="not divisible by num_attention_heads 4"):
        build(tiny_model, "model.init=random", "model.config=[hidden_size=30]")
    with pytest.raises(
        InputError, match=r"model\.config: changes the architecture.*set model\.init=random"
    ):
        load_config(None, ["model.config=[num_hidden_layers=3]"])


def test_a_key_the_checkpoint_leaves_unset_takes_any_plain_value(tiny_model):
    """BERT's config has classifier_dropout: null (use hidden_dropout_prob); a from-scratch encoder
    may set it.

    Refused before with "must be NoneType like the checkpoint's None".
    """
    model = build(tiny_model, "model.init=random", "model.config=[classifier_dropout=0.3]")
    assert model.config.classifier_dropout == 0.3 and model.dropout.p == 0.3
    with pytest.raises(InputError, match="classifier_dropout must be a number, text or true/false"):
        build(tiny_model, "model.init=random", "model.config=[classifier_dropout={p: 1}]")


@pytest.fixture(scope="module")
def bert_base_names(tmp_path_factory):
    """A tiny BERT with bert-base's naming and depth (12 blocks, pooler): 201 tensors with its
    classifier."""
    path = tmp_path_factory.mktemp("bert-12")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=12,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    return path


@pytest.mark.parametrize(
    "freeze, tensors",
    [
        # 3.a: embeddings., encoder.layer.0., classifier.
        (
            "[*embeddings.*, *encoder.layer.0.*]",
            23,
        ),
        ("[*encoder.layer.10.*, *encoder.layer.11.*, *pooler.*]", 36),  # 3.b-e: + pooler.
        ("full", 201),  # 3.f-i: "" matches every name
    ],
)
def test_notebook_002_freeze_sets_train_its_tensor_counts(bert_base_names, freeze, tensors):
    model = build(bert_base_names, f"model.freeze={freeze}")
    assert sum(1 for p in model.parameters()) == 201
    assert sum(1 for p in model.parameters() if p.requires_grad) == tensors
    frozen_pooler = not model.bert.pooler.dense.weight.requires_grad
    assert frozen_pooler == (tensors == 23)  # 3.a freezes the pooler, as the notebook did
