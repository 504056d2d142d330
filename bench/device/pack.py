"""Build what bench/device/run.sh needs on the GPU machine, in two carried folders of at most 64 MiB each
(one call carries at most 64 MiB; everything together is ~100 MiB, so the run is two calls, see run.sh):

    .device/part1/wheels/   cp312 manylinux wheels of what that machine lacks (imports.py decides which)
    .device/part1/imdb/     IMDB text and labels, xz-compressed JSON lines (run.sh rebuilds the parquet files)
    .device/part2/model/    the MiniLM checkpoint (already fp16 on disk: nothing to shrink losslessly)

    python -m bench.device.pack [--dry-run]      (bench/device/prepare.sh calls this)

--dry-run: the same steps with 2,000 IMDB rows per split, for CI (the wheels are the real ones: CI checks
that they cover every import, run.sh --dry-run). Prints the carry lists and the sizes.
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
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64")


def download_wheels(into: Path) -> None:
    """Exactly the carried distributions at this venv's versions, no dependencies resolved again."""
    into.mkdir(parents=True)
    pins = [f"{name}=={version}" for name, version in carried().items()]
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", *platforms,
                    "--dest", str(into), *pins], check=True)
    check_wheels(into)  # every carried distribution at its exact version


def pack_imdb(into: Path, rows: int | None) -> None:
    """text + label only, xz: 17 MiB for all 50,000 reviews (the parquet files are 27 MiB)."""
    into.mkdir(parents=True)
    source = Path(resolve("imdb", "data").location)
    for split in ("train", "test"):
        frame = pd.read_parquet(source / f"{split}.parquet", columns=["text", "label"])
        if rows:
            frame = frame.sample(n=rows, random_state=0).sort_index()
        lines = frame.to_json(orient="records", lines=True).encode()
        (into / f"{split}.jsonl.xz").write_bytes(lzma.compress(lines, preset=9))


def copy_model(into: Path, name: str = "all-MiniLM-L6-v2") -> None:
    shutil.copytree(resolve(name, "models").location, into / name)


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--dry-run", action="store_true", help="2,000 IMDB rows per split (CI)")
    dry = args.parse_args().dry_run
    out = ROOT / ".device"
    shutil.rmtree(out, ignore_errors=True)
    download_wheels(out / "part1" / "wheels")
    pack_imdb(out / "part1" / "imdb", rows=2000 if dry else None)
    copy_model(out / "part2" / "model")
    for part in ("part1", "part2"):
        mib = size(out / part) / 2**20
        print(f"carry=[\".device/{part}\"]  {mib:.1f} MiB{'' if mib * 2**20 <= LIMIT else '  OVER 64 MiB'}")
        if mib * 2**20 > LIMIT:
            raise SystemExit(f".device/{part} is {mib:.1f} MiB: over the 64 MiB one call may carry")


if __name__ == "__main__":
    main()
