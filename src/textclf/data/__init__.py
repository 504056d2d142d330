"""Data: sources (files, directories, the hub) -> labels checked -> splits -> token ids ->
batches."""

from textclf.data.draws import take
from textclf.data.labels import label_frames
from textclf.data.splits import Splits, fingerprint, load_source, load_splits

__all__ = ["Splits", "fingerprint", "label_frames", "load_source", "load_splits", "take"]
