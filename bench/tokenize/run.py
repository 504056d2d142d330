"""bench/tokenize: 50k IMDB reviews (train + test) through textclf's token cache, cold then warm.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.tokenize.run \
        [--model all-MiniLM-L6-v2] [--repeats 3]

Cold: an empty cache directory, so every review is tokenized (at the model's limit, 512) and
written. Warm: the same call again, reading every id from the cache and slicing to max length 256.
Prints one JSON line with the timings and the machine it ran on.
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoTokenizer

from bench.common import machine, parser
from textclf.assets import resolve
from textclf.data import tokens


def main() -> None:
    args = parser(__doc__, repeats=3).parse_args()
    data = resolve("imdb", "data").location
    texts = [
        t
        for split in ("train", "test")
        for t in pd.read_parquet(Path(data) / f"{split}.parquet").text
    ]
    tokenizer = AutoTokenizer.from_pretrained(resolve(args.model, "models").location)
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            first = tokens.tokenize(texts, tokenizer, 256, cache_length=512, directory=Path(cache))
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = tokens.tokenize(texts, tokenizer, 256, cache_length=512, directory=Path(cache))
            warm.append(time.perf_counter() - start)
            assert again.misses == 0 and len(again.ids) == len(texts)
            size = sum(f.stat().st_size for f in Path(cache).iterdir()) / 2**20
    print(
        json.dumps(
            {
                "bench": "tokenize",
                "texts": len(texts),
                "unique": first.misses,
                "model": args.model,
                "cold_s": [round(x, 2) for x in cold],
                "warm_s": [round(x, 3) for x in warm],
                "cold_median_s": round(statistics.median(cold), 2),
                "warm_median_s": round(statistics.median(warm), 3),
                "cache_mb": round(size, 1),
                "hardware": machine(),
                "torch_threads": torch.get_num_threads(),
                "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "default"),
            }
        )
    )


if __name__ == "__main__":
    main()
