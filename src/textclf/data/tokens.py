"""Token ids cached on disk, per tokenizer, at the model's longest input; each shorter max length
is a slice of them.

A tokenizer reads the whole text before it truncates, so tokenizing at 512 costs what tokenizing at
128 does: one cache at the model's limit serves every max length a sweep tries. Truncating cached
ids to L keeps the first L-1 tokens and the final special token ([SEP], </s>), which is exactly what
the tokenizer's own truncation gives for a single text (tested). Files are replaced atomically, so a
killed writer never leaves a torn cache behind; at worst, concurrent writers lose each other's new
entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textclf.data.encoding import encode_ids, shorten

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tokenized:
    # one int32 array per text, special tokens included, at most `length` long
    ids: list[np.ndarray]
    seconds: float  # wall time spent here, cache reads included
    misses: int  # texts that had to be tokenized (0: the cache had them all)


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTCLF_CACHE") or Path.home() / ".cache" / "textclf") / "tokens"


def fingerprint(tokenizer) -> str:
    """What decides the ids: the tokenizer's definition (vocabulary, normalizer, special tokens)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # minus the truncation/padding state that each call leaves behind in it
        definition = json.dumps(
            {
                k: v
                for k, v in json.loads(backend.to_str()).items()
                if k not in ("truncation", "padding")
            },
            sort_keys=True,
        )
    else:
        definition = json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = json.dumps(
        [type(tokenizer).__name__, tokenizer.all_special_tokens, tokenizer.padding_side]
    )
    return hashlib.sha256((definition + extra).encode()).hexdigest()[:20]


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            for t in texts
        ),
        dtype=np.uint64,
        count=len(texts),
    )


def tokenize(
    texts: Sequence[str],
    tokenizer,
    max_length: int,
    cache_length: int,
    directory: Path | None = None,
) -> Tokenized:
    """Ids of `texts` cut to `max_length`, read from (and added to) the cache at `cache_length`."""
    start = time.perf_counter()
    path = (directory or cache_dir()) / f"{fingerprint(tokenizer)}-{cache_length}.npz"
    keys = text_keys(texts)
    known_keys, offsets, flat = _read(path)
    where = np.searchsorted(known_keys, keys)
    found = (
        (where < len(known_keys)) & (known_keys[np.minimum(where, len(known_keys) - 1)] == keys)
        if len(known_keys)
        else np.zeros(len(keys), dtype=bool)
    )
    missing = np.flatnonzero(~found)
    if len(missing):
        new_keys, first = np.unique(keys[missing], return_index=True)
        log.info("tokenizing %d texts (token cache: %s)", len(new_keys), path.parent)
        lengths, new_flat = encode_ids(
            [texts[int(i)] for i in missing[first]], tokenizer, cache_length
        )
        known_keys, offsets, flat = _merge(known_keys, offsets, flat, new_keys, lengths, new_flat)
        _write(path, known_keys, offsets, flat)
        where = np.searchsorted(known_keys, keys)
    ids = [shorten(flat[offsets[i] : offsets[i + 1]], max_length) for i in where]
    return Tokenized(ids, time.perf_counter() - start, len(missing))


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path) as cached:
            return cached["keys"], cached["offsets"], cached["ids"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):  # absent or torn: rebuilt
        return np.empty(0, np.uint64), np.zeros(1, np.int64), np.empty(0, np.int32)


def _merge(keys, offsets, flat, new_keys, new_lengths, new_flat):
    """The cache's rows and the new ones in one key-sorted table, gathered without a Python loop
    over rows."""
    all_keys = np.concatenate([keys, new_keys])
    lengths = np.concatenate([np.diff(offsets), new_lengths]).astype(np.int64)
    starts = np.concatenate([offsets[:-1], len(flat) + np.cumsum(new_lengths) - new_lengths])
    order = np.argsort(all_keys, kind="stable")
    lengths, starts = lengths[order], starts[order]
    merged_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # each output position's source: its row's start plus its place within the row
    source = np.repeat(starts - merged_offsets[:-1], lengths) + np.arange(merged_offsets[-1])
    return all_keys[order], merged_offsets, np.concatenate([flat, new_flat])[source]


def _write(path: Path, keys, offsets, flat) -> None:
    """Atomic: readers see the old file or the new one, never half of one. The cache only saves
    time: a write that fails (a full disk) leaves nothing behind and the run goes on with the ids in
    memory."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            temporary = f.name
            np.savez(f, keys=keys, offsets=offsets, ids=flat)
        os.replace(temporary, path)
    except BaseException as e:  # a full disk, or a Ctrl-C mid-write: no temporary file stays
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        if not isinstance(e, OSError):
            raise
        log.warning(
            "token cache not written to %s (%s): tokenized in memory this time; free space "
            "there or set TEXTCLF_CACHE",
            path.parent,
            e.strerror or e,
        )
