import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig

from textclf.config import load_config
from textclf.errors import InputError
from textclf.model.build import Backbone, build_classifier, count_params, load_backbone


def backbone_of(path, *overrides) -> Backbone:
    cfg = load_config(None, [f"model.name={path}", "data.max_length=32", *overrides])
    return load_backbone(cfg.model, cfg.data)


def build(path, labels=("neg", "pos"), *overrides):
    cfg = load_config(None, [f"model.name={path}", "data.max_length=32", *overrides])
    return build_classifier(load_backbone(cfg.model, cfg.data), labels, cfg.model)


def test_a_new_head_gets_the_label_names(tiny_model):
    model = build(tiny_model)
    assert model.config.id2label == {0: "neg", 1: "pos"} and model.classifier.out_features == 2
    assert count_params(model)[0] == count_params(model)[1] > 0


def test_a_three_class_checkpoint_is_reheaded_for_two_labels(tiny_model, tmp_path):
    """As when a 3-class sentiment model is fine-tuned on 2-class IMDB: the body is kept, the head
    is new."""
    three = BertForSequenceClassification.from_pretrained(tiny_model, num_labels=3)
    three.save_pretrained(tmp_path)
    backbone_of(tiny_model).tokenizer.save_pretrained(tmp_path)
    two = build(tmp_path)
    assert two.classifier.weight.shape == (2, 32)
    torch.testing.assert_close(
        two.bert.encoder.layer[0].attention.self.query.weight,
        three.bert.encoder.layer[0].attention.self.query.weight,
    )


def test_max_length_is_checked_against_the_model(tiny_model):
    assert backbone_of(tiny_model).max_length() == 64
    with pytest.raises(InputError) as e:
        backbone_of(tiny_model, "data.max_length=65")
    assert e.value.problems == [
        "-o: data.max_length: 65 is above the limit of "
        + str(tiny_model)
        + " (64 tokens); lower it"
    ]


def test_roberta_style_position_tables_lose_the_padding_offset(tiny_model):
    tokenizer = backbone_of(tiny_model).tokenizer
    tokenizer.model_max_length = int(1e30)  # tokenizers without a declared limit
    roberta = Backbone("x", RobertaConfig(max_position_embeddings=514, pad_token_id=1), tokenizer)
    assert roberta.max_length() == 512
    assert Backbone("x", BertConfig(max_position_embeddings=512), tokenizer).max_length() == 512


def test_only_safetensors_weights_load(tiny_model, tmp_path):
    """A pickle checkpoint (pytorch_model.bin) is refused: loading it could run arbitrary code."""
    model = BertForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    model.config.save_pretrained(tmp_path)
    backbone_of(tiny_model).tokenizer.save_pretrained(tmp_path)
    with pytest.raises(InputError) as e:
        build(tmp_path)
    assert "only safetensors checkpoints load" in e.value.problems[0]


def test_a_directory_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(InputError) as e:
        backbone_of(tmp_path)
    assert e.value.problems[0].startswith(
        f"-o: model.name: cannot load {tmp_path} as a transformers checkpoint"
    )
