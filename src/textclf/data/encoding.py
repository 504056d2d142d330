"""Texts to token ids, fast and stoppable: what `tokenizer(texts, truncation=True,
max_length=L)["input_ids"]` gives, computed a chunk at a time through the tokenizer's Rust backend.

- Chunks of about CHUNK_CHARS characters: the batch call runs in native code, where a Ctrl-C is not
  seen, so between chunks it is (interrupts.check): a signal ends tokenizing within a chunk's time.
- The backend itself (`encode_batch_fast`: no character offsets), not transformers' __call__,
  which builds a dict of Python lists per text.
- A tokenizer reads a whole text before it truncates, and an IMDB review can be ten times longer
  than what 512 tokens hold. A text longer than CHARS_PER_TOKEN x (L + MARGIN) characters is cut
  at a whitespace before that and encoded at L + MARGIN tokens; when that many came out, the words
  kept lie MARGIN tokens or more before the cut, which no pre-tokenizer that splits on whitespace
  lets the cut change, and the ids cut to L (`shorten`) are the whole text's. Otherwise (too few
  tokens in the budget) the whole text is encoded again. Each tokenizer is checked on a probe
  before any text is cut (`_cuts_safely`); one that fails, or whose pre-tokenizer is not known to
  split on whitespace, encodes whole texts.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from textclf import interrupts

# characters tokenized between two looks for a Ctrl-C: a few tenths of a second on 2 cores
CHUNK_CHARS = 1_000_000
# a text longer than CHARS_PER_TOKEN x (L + MARGIN) characters is cut before encoding (above)
CHARS_PER_TOKEN, MARGIN = 5, 16
# pre-tokenizers that split text at whitespace, so words before a cut there tokenize as before
WHITESPACE_SPLITTERS = {
    "BertPreTokenizer",
    "ByteLevel",
    "Metaspace",
    "Whitespace",
    "WhitespaceSplit",
}


def encode_ids(texts: Sequence[str], tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids per text, all ids end to end as int32), a chunk at a time."""
    encode = encoder(tokenizer, max_length)
    lengths, flats = [np.zeros(0, np.int64)], [np.zeros(0, np.int32)]
    for start, end in _chunks(texts):
        interrupts.check()
        ids = encode(list(texts[start:end]))
        lengths.append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        total = int(lengths[-1].sum())
        flats.append(np.fromiter(itertools.chain.from_iterable(ids), np.int32, count=total))
    interrupts.check()
    return np.concatenate(lengths), np.concatenate(flats)


def shorten(ids: np.ndarray, max_length: int) -> np.ndarray:
    """Ids cut to `max_length` as the tokenizer's truncation cuts one text: the first L-1 tokens
    and the final special token ([SEP], </s>)."""
    return ids if len(ids) <= max_length else np.concatenate([ids[: max_length - 1], ids[-1:]])


def _chunks(texts: Sequence[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive runs of texts of about CHUNK_CHARS characters."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= CHUNK_CHARS:
            yield start, i + 1
            start, size = i + 1, 0
    if start < len(texts):
        yield start, len(texts)


def encoder(tokenizer, max_length: int) -> Callable[[list[str]], list[list[int]]]:
    """Texts -> ids: the backend's, set as transformers sets it for `truncation=True` (copies, so
    the tokenizer's own state is untouched); transformers' own call without a Rust backend."""
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        return lambda texts: tokenizer(
            texts, truncation=True, max_length=max_length, return_attention_mask=False
        )["input_ids"]
    whole = _backend(tokenizer, max_length)
    budget = CHARS_PER_TOKEN * (max_length + MARGIN)
    if not _cuts_safely(tokenizer, max_length):
        return whole
    longer = _backend(tokenizer, max_length + MARGIN)

    def encode(texts: list[str]) -> list[list[int]]:
        ids: list[list[int]] = [[] for _ in texts]
        short = [i for i, t in enumerate(texts) if len(t) <= budget]
        for i, found in zip(short, whole([texts[i] for i in short]), strict=True):
            ids[i] = found
        cut = [i for i, t in enumerate(texts) if len(t) > budget]
        again = []
        for i, found in zip(cut, longer([_cut(texts[i], budget) for i in cut]), strict=True):
            if len(found) == max_length + MARGIN:  # the budget held enough words: cut to L
                ids[i] = [*found[: max_length - 1], found[-1]]
            else:
                again.append(i)
        for i, found in zip(again, whole([texts[i] for i in again]), strict=True):
            ids[i] = found
        return ids

    return encode


def _backend(tokenizer, max_length: int) -> Callable[[list[str]], list[list[int]]]:
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(
        max_length, strategy="longest_first", direction=tokenizer.truncation_side
    )
    batch = getattr(backend, "encode_batch_fast", backend.encode_batch)  # fast: no offsets
    return lambda texts: [e.ids for e in batch(texts, add_special_tokens=True)]


def _cut(text: str, budget: int) -> str:
    """`text` up to the last whitespace within `budget` characters (whole if it has none)."""
    at = max(text.rfind(" ", 0, budget), text.rfind("\n", 0, budget), text.rfind("\t", 0, budget))
    return text[:at] if at > 0 else text


def _cuts_safely(tokenizer, max_length: int) -> bool:
    """Cutting long texts gives this tokenizer's own ids: its pre-tokenizer splits at whitespace,
    it truncates from the right, and on a probe the ids encoded at L + MARGIN and shortened are
    the ids encoded at L."""
    described = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    kinds = [p.get("type") for p in described.get("pretokenizers", [described])]
    if not kinds or not set(kinds) <= WHITESPACE_SPLITTERS or tokenizer.truncation_side != "right":
        return False
    probe = " ".join(["probe", "words,", "Cut", "here."] * (max_length + MARGIN))
    whole, longer = _backend(tokenizer, max_length), _backend(tokenizer, max_length + MARGIN)
    [expected], [found] = whole([probe]), longer([probe])
    return shorten(np.asarray(found), max_length).tolist() == expected
