"""Texts to ids (data/encoding.py): a chunk at a time, through the Rust backend, long texts cut
at a whitespace before encoding; always what the tokenizer's own call gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

from conftest import FILLER, NEGATIVE, POSITIVE, sentiment_frame
from textclf.data import encoding, tokens

FAMILIES = ["bert", "distilbert", "roberta", "mpnet"]


def texts(n: int = 60) -> list[str]:
    return list(sentiment_frame(n, seed=3).text)


def long_texts(n: int = 40) -> list[str]:
    """Reviews of 20 to 400 words: many beyond the cut budget at a small max length."""
    rng = np.random.default_rng(5)
    words = np.array([*POSITIVE, *NEGATIVE, *FILLER, "film's", "well-made", "(really)", "ok."])
    return [" ".join(rng.choice(words, size=rng.integers(20, 400))) for _ in range(n)]


def split(lengths: np.ndarray, flat: np.ndarray) -> list[list[int]]:
    return [r.tolist() for r in np.split(flat, np.cumsum(lengths)[:-1])]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_chunked_encoding_equals_one_tokenizer_call(tokenizer, monkeypatch):
    monkeypatch.setattr(encoding, "CHUNK_CHARS", 50)  # a few texts a chunk
    direct = tokenizer(texts(), truncation=True, max_length=12)["input_ids"]
    lengths, flat = encoding.encode_ids(texts(), tokenizer, 12)
    assert split(lengths, flat) == direct
    assert flat.dtype == np.int32 and lengths.sum() == len(flat)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("max_length", [9, 40])
def test_each_family_gets_its_own_ids_with_long_texts_cut(tiny_families, family, max_length):
    """Cutting is on for every supported family (each passes the probe); texts beyond the budget
    are cut, the rest encoded whole, and the ids are the tokenizer's own either way."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_families[family])
    assert encoding._cuts_safely(tokenizer, max_length)
    budget = encoding.CHARS_PER_TOKEN * (max_length + encoding.MARGIN)
    reviews = long_texts() + texts(20)
    assert sum(len(t) > budget for t in reviews) > 10 and sum(len(t) <= budget for t in reviews)
    direct = tokenizer(reviews, truncation=True, max_length=max_length)["input_ids"]
    assert split(*encoding.encode_ids(reviews, tokenizer, max_length)) == direct


SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", " \n ", ", ", ".", "-", "'s "])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from([*POSITIVE, *NEGATIVE, *FILLER, "Éte", "naïve"]), SEPARATORS),
            min_size=1,
            max_size=200,
        ).map(lambda pairs: "".join(w + s for w, s in pairs)),
        min_size=1,
        max_size=8,
    )
)
def test_any_text_encodes_as_the_tokenizer_would(tiny_families, generated):
    """Runs of spaces, tabs and newlines at the cut, punctuation glued to words, accents."""
    for family in ("bert", "roberta"):
        tokenizer = AutoTokenizer.from_pretrained(tiny_families[family])
        direct = tokenizer(generated, truncation=True, max_length=8)["input_ids"]
        assert split(*encoding.encode_ids(generated, tokenizer, 8)) == direct


def test_a_tokenizer_that_does_not_split_at_whitespace_is_never_cut(tiny_families):
    tokenizer = AutoTokenizer.from_pretrained(tiny_families["bert"])
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Split("e", behavior="isolated")
    assert not encoding._cuts_safely(tokenizer, 9)
    direct = tokenizer(long_texts(), truncation=True, max_length=9)["input_ids"]
    assert split(*encoding.encode_ids(long_texts(), tokenizer, 9)) == direct


def test_left_truncation_is_never_cut(tiny_families):
    tokenizer = AutoTokenizer.from_pretrained(tiny_families["bert"], truncation_side="left")
    assert not encoding._cuts_safely(tokenizer, 9)
    direct = tokenizer(long_texts(), truncation=True, max_length=9)["input_ids"]
    assert split(*encoding.encode_ids(long_texts(), tokenizer, 9)) == direct


def test_an_interrupt_between_chunks_ends_tokenizing_and_writes_no_cache(
    tokenizer, tmp_path, monkeypatch
):
    monkeypatch.setattr(encoding, "CHUNK_CHARS", 50)
    seen = []

    def check():  # the third check finds a Ctrl-C that arrived during a chunk
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(encoding.interrupts, "check", check)
    with pytest.raises(KeyboardInterrupt):
        tokens.tokenize(texts(), tokenizer, 16, cache_length=64, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a cache nor a temporary file
