"""On the GPU machine (and in the dry-run): turn the carried folder into a $TEXTCLF_ASSETS mirror,
.device-run/assets/{data/imdb/*.parquet, models/all-MiniLM-L6-v2}. Only pandas and pyarrow, which
that machine has.

    python -m bench.device.unpack wheels   .device/run/wheels -> .device-run/site
                                           (unzipped: no pip needed)
    python -m bench.device.unpack data     .device/run/imdb   -> .device-run/assets/data/imdb
    python -m bench.device.unpack model    .device/run/model  -> .device-run/assets/models
                                           (weights unxz'd)
"""

from __future__ import annotations

import lzma
import shutil
import sys
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / ".device-run" / "assets"
CARRIED = ROOT / ".device" / "run"


def unpack_wheels() -> None:
    """A wheel is a zip of its site-packages files: extracting it is installing it (carried
    wheels have no scripts or compiled-at-install parts that the benchmarks use)."""
    site = ROOT / ".device-run" / "site"
    wheels = sorted((CARRIED / "wheels").glob("*.whl"))
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(
                site, [n for n in z.namelist() if not n.split("/", 1)[0].endswith(".data")]
            )
    print(f"{len(wheels)} wheels into {site}")


def unpack_data() -> None:
    into = ASSETS / "data" / "imdb"
    into.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with lzma.open(CARRIED / "imdb" / f"{split}.jsonl.xz") as f:
            frame = pd.read_json(f, lines=True, dtype={"text": str, "label": int})
        frame.to_parquet(into / f"{split}.parquet", index=False)
        print(f"{split}: {len(frame)} rows")


def unpack_model() -> None:
    into = ASSETS / "models"
    into.mkdir(parents=True, exist_ok=True)
    for model in (CARRIED / "model").iterdir():
        shutil.rmtree(into / model.name, ignore_errors=True)
        shutil.copytree(model, into / model.name, ignore=shutil.ignore_patterns("*.xz"))
        for packed in model.glob("*.xz"):
            (into / model.name / packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
        print(f"model {model.name}")


if __name__ == "__main__":
    {"wheels": unpack_wheels, "data": unpack_data, "model": unpack_model}[sys.argv[1]]()
