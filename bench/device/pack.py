"""Build what bench/device/run.sh needs on the GPU machine, in ONE carried folder of at most 64 MiB
(what one call carries), so the whole device benchmark is one call:

    .device/run/wheels/   cp312 manylinux wheels of what that machine lacks (imports.py decides
                          which): 22 MiB
    .device/run/model/    the MiniLM checkpoint, its weights xz-compressed (44 -> 39 MiB; already
                          fp16 on disk), its tokenizer also the tokenizer of bench/sizes'
                          random-init BERT shapes
    .device/run/imdb/     a part of IMDB (ROWS), text and labels, xz-compressed JSON lines (~2 MiB):
                          what fits beside the weights; run.sh rebuilds the parquet files

    python -m bench.device.pack [--dry-run]      (bench/device/prepare.sh calls this)

--dry-run packs the same files (CI then checks the real size against the limit, and that the wheels
cover every import, run.sh --dry-run). Prints the carry list and the size; exits 1 over 64 MiB.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.device.imports import carried, check_wheels
from textclf.assets import resolve

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 64 * 2**20  # what one device call may carry
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
    "manylinux_2_5_x86_64",
)


def download_wheels(into: Path) -> None:
    """Exactly the carried distributions at this venv's versions, no dependencies resolved again."""
    into.mkdir(parents=True)
    pins = [f"{name}=={version}" for name, version in carried().items()]
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--abi",
            "cp312",
            *platforms,
            "--dest",
            str(into),
            *pins,
        ],
        check=True,
    )
    check_wheels(into)  # every carried distribution at its exact version


ROWS = {"train": 4000, "test": 1200}  # IMDB rows carried: about 1.9 MiB compressed


def pack_imdb(into: Path) -> None:
    """text + label only, xz (all 50,000 reviews would be 17 MiB: they do not fit beside the
    weights)."""
    into.mkdir(parents=True)
    source = Path(resolve("imdb", "data").location)
    for split, rows in ROWS.items():
        frame = pd.read_parquet(source / f"{split}.parquet", columns=["text", "label"])
        frame = frame.sample(n=rows, random_state=0).sort_index()
        lines = frame.to_json(orient="records", lines=True).encode()
        (into / f"{split}.jsonl.xz").write_bytes(lzma.compress(lines, preset=9))


def copy_model(into: Path, name: str = "all-MiniLM-L6-v2") -> None:
    """Every file as it is but the weights, which travel xz-compressed (unpack.py restores them)."""
    source = Path(resolve(name, "models").location)
    shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("*.safetensors"))
    for weights in source.glob("*.safetensors"):
        (into / name / f"{weights.name}.xz").write_bytes(
            lzma.compress(weights.read_bytes(), preset=9 | lzma.PRESET_EXTREME)
        )


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument(
        "--dry-run", action="store_true", help="for CI: the same files (kept for run.sh's symmetry)"
    )
    args.parse_args()
    out = ROOT / ".device"
    shutil.rmtree(out, ignore_errors=True)
    download_wheels(out / "run" / "wheels")
    copy_model(out / "run" / "model")
    pack_imdb(out / "run" / "imdb")
    parts = {p.name: size(p) / 2**20 for p in (out / "run").iterdir()}
    mib = size(out / "run") / 2**20
    print(
        f'carry=[".device/run"]  {mib:.1f} MiB of 64 ('
        + ", ".join(f"{name} {m:.1f}" for name, m in parts.items())
        + ")"
    )
    if mib * 2**20 > LIMIT:
        raise SystemExit(f".device/run is {mib:.1f} MiB: over the 64 MiB one call may carry")


if __name__ == "__main__":
    main()
