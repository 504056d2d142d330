"""Hugging Face `datasets`: a hub name (through `datasets.load_dataset`, which reads its local cache
when HF_DATASETS_OFFLINE=1), a directory written by `save_to_disk` (a DatasetDict with its split
names, or a single Dataset as the train split), an `.arrow` file, and in-memory Datasets from the
Python API. Label names come from a `ClassLabel` feature when there is one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from textclf.data.source import Source
from textclf.errors import InputError, first_line


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def read_hub(name: str) -> Source:
    import datasets

    try:
        dataset = datasets.load_dataset(name)
    except Exception as e:  # offline, unknown name, gated: all end the same way for the user
        raise InputError(
            [
                f"data.name: {name!r} is not a local path, not in $TEXTCLF_ASSETS/data, "
                "and could not be loaded from the Hugging Face hub or its local cache "
                f"({type(e).__name__}); check the name, set TEXTCLF_ASSETS, or load it "
                "once with network"
            ]
        ) from None
    source = Source(uri=f"hf://{name}")
    for split, part in dataset.items():
        add_dataset(source, split, part, f"hf://{name}[{split}]")
    return source


def read_saved(path: Path, uri: str) -> Source:
    """A `save_to_disk` directory: a DatasetDict (its splits) or a Dataset (the train split)."""
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as e:
        empty = [
            state.parent
            for state in sorted(path.glob("**/state.json"))
            if not json.loads(state.read_text()).get("_data_files")
        ]
        if empty:  # datasets writes an empty Dataset without data files, then cannot read it back
            split = "train" if empty[0] == path else empty[0].name
            raise InputError([f"{empty[0]}: has no rows; the {split} split is empty"]) from None
        raise InputError(
            [
                f"{path}: not a readable datasets directory ({first_line(e)}); write it "
                "with Dataset.save_to_disk or DatasetDict.save_to_disk"
            ]
        ) from None
    source = Source(uri=uri)
    parts = saved.items() if isinstance(saved, datasets.DatasetDict) else [("train", saved)]
    for split, part in parts:
        add_dataset(source, split, part, f"{path}[{split}]")
    return source


def read_arrow(path: Path, split: str, source: Source) -> None:
    import datasets

    try:
        part = datasets.Dataset.from_file(str(path))
    except Exception as e:
        raise InputError(
            [
                f"{path}: not a readable Arrow file ({first_line(e)}); write it with "
                "datasets.Dataset.save_to_disk"
            ]
        ) from None
    add_dataset(source, split, part, str(path))


def add_dataset(source: Source, split: str, part, where: str) -> None:
    """A datasets.Dataset as one split, its ClassLabel names as the label names."""
    import datasets

    for column, feature in part.features.items():
        if isinstance(feature, datasets.ClassLabel):
            source.label_names.setdefault(column, tuple(feature.names))
    source.add(split, part.to_pandas(), where, lambda i: f"row {i + 1}")


def is_dataset(data) -> bool:
    return type(data).__module__.startswith("datasets")


def as_frame(data) -> pd.DataFrame:
    """A pandas DataFrame, or a datasets.Dataset converted to one (the Python API)."""
    return data if isinstance(data, pd.DataFrame) else data.to_pandas()
