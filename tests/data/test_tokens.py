"""The token cache: slicing cached ids equals tokenizing at the shorter length; length grouping
keeps rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from conftest import sentiment_frame
from textclf.data import tokens
from textclf.data.batches import GroupedBatches


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def texts(n: int = 60) -> list[str]:
    return list(sentiment_frame(n, seed=3).text)


@pytest.mark.parametrize("max_length", [5, 8, 12, 64])
def test_sliced_cache_equals_tokenizing_at_the_shorter_length(tokenizer, tmp_path, max_length):
    direct = tokenizer(texts(), truncation=True, max_length=max_length)["input_ids"]
    cached = tokens.tokenize(texts(), tokenizer, max_length, cache_length=64, directory=tmp_path)
    assert [ids.tolist() for ids in cached.ids] == direct


def bpe_tokenizer(corpus: list[str]):
    """A RoBERTa-style tokenizer built in-process: byte-level BPE trained on `corpus`, with <s>
    and </s> around each text."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    bpe.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def test_real_wordpiece_and_bpe_tokenizers_slice_the_same_way(assets, tmp_path):
    """MiniLM's WordPiece ends texts with [SEP]; a byte-level BPE tokenizer (RoBERTa style) with
    </s>."""
    import pandas as pd

    reviews = list(pd.read_parquet(assets / "data" / "imdb" / "test.parquet").text[:200])
    minilm = AutoTokenizer.from_pretrained(assets / "models" / "all-MiniLM-L6-v2")
    bpe = bpe_tokenizer(reviews)
    assert bpe("a b")["input_ids"][0] == 0 and bpe("a b")["input_ids"][-1] == 2  # <s> ... </s>
    for tokenizer in (minilm, bpe):
        for length in (64, 128, 256):
            cached = tokens.tokenize(
                reviews, tokenizer, length, cache_length=512, directory=tmp_path
            )
            direct = tokenizer(reviews, truncation=True, max_length=length)["input_ids"]
            assert [i.tolist() for i in cached.ids] == direct
            assert sum(len(d) == length for d in direct) > 20  # truncation really happened


def test_a_second_call_reads_everything_from_the_cache(tiny_model, tmp_path):
    # fresh: no truncation state from earlier calls
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    first = tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    again = tokens.tokenize(texts()[::-1], tokenizer, 16, cache_length=64, directory=tmp_path)
    assert first.misses == len(set(texts())) and again.misses == 0
    assert [i.tolist() for i in again.ids] == [i.tolist() for i in first.ids][::-1]
    more = tokens.tokenize(texts(80), tokenizer, 16, cache_length=64, directory=tmp_path)
    assert more.misses == len(set(texts(80)) - set(texts()))  # only the new texts are tokenized


def test_a_torn_cache_file_is_rebuilt_not_trusted(tokenizer, tmp_path):
    tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    [path] = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # as if a writer had been killed mid-file
    redone = tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    assert redone.misses == len(set(texts()))
    assert [i.tolist() for i in redone.ids] == tokenizer(texts(), truncation=True, max_length=16)[
        "input_ids"
    ]


def test_another_tokenizer_gets_another_cache(tokenizer, tmp_path):
    tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    tokenizer.add_tokens(["superbly"])
    assert tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path).misses > 0
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_length_grouping_sees_every_row_once_per_epoch_with_less_padding():
    lengths = np.random.default_rng(0).integers(5, 500, size=1000)
    sampler = GroupedBatches(lengths, 16, torch.Generator().manual_seed(1), bucket=10)
    for _ in range(2):  # two epochs, two different orders
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(1000)) and len(batches) == len(
            sampler
        )
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert padded < 0.7 * sum(len(b) * lengths[b].max() for b in random)


def test_an_interrupt_while_the_cache_is_written_leaves_no_temporary_file(
    tokenizer, tmp_path, monkeypatch
):
    def interrupted(file, **arrays):
        file.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(tokens.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []
