"""A model directory's files checked before transformers reads them, so a damaged file (zero bytes,
truncated, not UTF-8, a directory where a file belongs, unreadable) is one line naming it, not a
traceback from safetensors, tokenizers or json deep inside from_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import safetensors

TEXT_SUFFIXES = (".json", ".txt", ".model")  # configs, tokenizer vocabularies, sentencepiece


def damaged(directory: Path) -> str | None:
    """`<file>: cannot be read (why); the fix` for the first damaged file of a local checkpoint
    directory, its subdirectories included (textclf's saved form keeps the body in body/); None
    when every file reads."""
    for path in sorted(directory.rglob("*")):
        if path.suffix not in (*TEXT_SUFFIXES, ".safetensors"):
            continue
        why = _why(path)
        if why:
            return (
                f"{path}: cannot be read ({why}); restore the file (copy the checkpoint again) "
                "or point at a complete checkpoint"
            )
    return None


def _why(path: Path) -> str | None:
    if path.is_dir():
        return "a directory where a file belongs"
    try:
        if path.suffix == ".safetensors":
            with safetensors.safe_open(str(path), framework="pt") as weights:
                weights.keys()  # the header is read and checked against the file's size
        elif path.suffix == ".json":
            json.loads(path.read_bytes().decode("utf-8"))
        elif path.suffix == ".txt":
            path.read_bytes().decode("utf-8")
        elif path.stat().st_size == 0:
            return "the file is empty"
    except UnicodeDecodeError as e:
        return f"byte 0x{e.object[e.start]:02x} at offset {e.start} is not valid UTF-8"
    except json.JSONDecodeError as e:
        return "empty" if not e.doc.strip() else f"not valid JSON: {e.msg} at line {e.lineno}"
    except OSError as e:
        return e.strerror or type(e).__name__
    except Exception as e:  # safetensors raises its own SafetensorError: header, size, dtype
        return f"{type(e).__name__}: {e}"
    return None
