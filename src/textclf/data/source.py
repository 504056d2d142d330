"""A Source: labeled text as one DataFrame per split, with where each row came from (for messages).
Every reader (files.py, hf.py, readers.py) fills one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Source:
    uri: str  # where the data came from (logged with the MLflow dataset input)
    splits: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # split -> file or directory, for messages
    # split -> row i -> "line 7"
    locators: dict[str, Callable[[int], str]] = field(default_factory=dict)
    label_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label column -> names

    def where(self, split: str, i: int) -> str:
        return f"{self.files[split]}: {self.locators[split](i)}"

    def add(self, split: str, frame: pd.DataFrame, file: str, locate: Callable[[int], str]) -> None:
        self.splits[split], self.files[split], self.locators[split] = frame, file, locate
