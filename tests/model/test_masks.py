"""Padded batches reach sdpa models as the 4D boolean mask transformers would build itself
(model/build.py takes_4d_mask): transformers 5 returns a 4D mask as it is, so its
`padding_mask.all()` check, a host-device sync on CUDA in every padded forward, never runs.

The logits must not change.
"""

import pytest
import torch
from test_variants import build

from textclf.data.features import Collate
from textclf.training.evaluate import to_device

CPU = torch.device("cpu")


def a_padded_batch() -> dict:
    rows = [([2, 7, 9, 11, 13, 3], 1), ([2, 8, 3], 0), ([2, 10, 12, 3], 1)]
    return Collate(0)(rows)


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert"])
def test_sdpa_models_get_a_ready_4d_mask_and_the_same_logits(tiny_families, family):
    model = build(tiny_families[family]).eval()
    batch = a_padded_batch()
    inputs, _ = to_device(batch, CPU, model)
    assert model.takes_4d_mask and inputs["attention_mask"].shape == (3, 1, 1, 6)
    assert inputs["attention_mask"].dtype == torch.bool
    with torch.no_grad():
        ready = model(**inputs).logits
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(ready, plain)


@pytest.mark.parametrize(
    "family,overrides",
    [
        # eager attention here: it adds the mask to the scores, a 4D bool would be wrong
        (
            "mpnet",
            [],
        ),
        ("bert", ["model.head=mlp", "model.pooling=mean"]),  # textclf's heads pool with the 2D mask
        # prompt tuning extends the 2D mask with its virtual tokens
        (
            "bert",
            ["model.peft=prompt"],
        ),
    ],
)
def test_other_models_keep_the_2d_mask(tiny_families, family, overrides):
    model = build(tiny_families[family], *overrides)
    inputs, _ = to_device(a_padded_batch(), CPU, model)
    assert not model.takes_4d_mask and inputs["attention_mask"].dim() == 2


def test_lora_keeps_the_4d_mask_and_an_unpadded_batch_still_has_none(tiny_families):
    model = build(tiny_families["bert"], "model.peft=lora")
    assert model.takes_4d_mask
    inputs, _ = to_device(Collate(0)([([2, 7, 3], 0), ([2, 8, 3], 1)]), CPU, model)
    assert "attention_mask" not in inputs
