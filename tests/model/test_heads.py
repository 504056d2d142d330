"""model/heads.py: the one table of heads.

Every name the config accepts has an entry, and every entry builds a head that maps token states to
one logit per label whatever the padding.
"""

from __future__ import annotations

import typing

import pytest
import torch

from textclf.config.schema import PEFT_HEADS, HeadName
from textclf.model.heads import HEADS, make_head

SPEC = {
    "pooling": "mean",
    "dropout": 0.0,
    "mlp_hidden": 8,
    "cnn_channels": 4,
    "cnn_kernels": [2, 3],
    "num_labels": 3,
    "label_names": ["a", "b", "c"],
}


def test_the_config_accepts_exactly_the_heads_the_table_builds():
    assert set(typing.get_args(HeadName)) == set(HEADS), (
        "config/schema.py HeadName and model/heads.py HEADS name different heads: add the name to "
        "both"
    )


@pytest.mark.parametrize("name", sorted(n for n, h in HEADS.items() if h.build is not None))
def test_each_built_head_scores_a_text_the_same_with_or_without_padding(name):
    torch.manual_seed(0)
    head = make_head({**SPEC, "head": name}, hidden=16).eval()
    states = torch.randn(1, 5, 16)
    padded = torch.cat([states, torch.randn(1, 3, 16)], dim=1)  # three padding positions of noise
    alone = head(states, torch.ones(1, 5, dtype=torch.long))
    with_padding = head(padded, torch.tensor([[1] * 5 + [0] * 3]))
    assert alone.shape == (1, 3)
    # cls reads position 0; mean, mlp and cnn pool over the mask: padding never changes the logits
    torch.testing.assert_close(alone, with_padding)


def test_only_the_checkpoints_own_head_takes_peft_and_a_4d_mask():
    """peft wraps transformers' own classifiers: the heads the config lets it wrap are the table's
    checkpoint heads (build None)."""
    assert set(PEFT_HEADS) == {n for n, h in HEADS.items() if h.build is None} == {"auto"}
    assert {n for n, h in HEADS.items() if h.mask_4d} == {"auto"}


def test_a_heads_spec_holds_every_setting_the_table_reads():
    """build.py builds no spec of its own: head_spec takes every setting SETTINGS names from
    model.*, and each built head is built from it."""
    from textclf.config import load_config
    from textclf.model.heads import SETTINGS, head_spec

    m = load_config(None, ["model.head=cnn", "model.cnn_kernels=[2,5]"]).model
    spec = head_spec(m, ("neg", "pos"))
    assert spec["cnn_kernels"] == [2, 5] and spec["dropout"] == m.head_dropout
    assert set(spec) == {"head", "num_labels", "label_names", *SETTINGS}
    for name, head in HEADS.items():
        if head.build is not None:
            assert isinstance(make_head({**spec, "head": name}, hidden=16), torch.nn.Module)
