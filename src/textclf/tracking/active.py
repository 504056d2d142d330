"""The run being logged to (ActiveRun): params, the resolved config and the dataset inputs at the
start, per-epoch metrics through a spool (training goes on while the tracking server is away), the
per-row predictions, and the final results. runs.py opens and ends the run."""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from textclf.config import Config, dump_yaml
from textclf.tracking import models
from textclf.tracking.provenance import redact
from textclf.tracking.spool import Spool

if TYPE_CHECKING:  # matplotlib loads only when a run logs figures
    from matplotlib.figure import Figure

PREDICTIONS = "predictions"  # the artifact folder of per-row predictions
EPOCH_KEYS = {"train_val_loss_ratio": "epoch_train_val_loss_ratio"}


class ActiveRun:
    """The run being logged to, with its metric spool."""

    def __init__(self, run_id: str, spool: Spool):
        self.run_id, self.spool = run_id, spool

    def log_setup(
        self,
        cfg: Config,
        frames: dict[str, pd.DataFrame],
        data_uri: str,
        varied: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> None:
        """Params (the config, flat and namespaced, and what a trial `varied`), the resolved
        config, and the splits as dataset inputs whose digests are textclf's fingerprints of each
        split's full rows (`digests`): the runs table's Dataset column then shows which runs were
        trained and scored on the same rows."""
        params = {**cfg.flat(), **varied, **models.inference_config(cfg.data.max_length)}
        mlflow.log_params({k: redact(k, v) for k, v in params.items()})
        mlflow.log_text(dump_yaml(cfg), "config.yaml")
        # MLflow guesses a source type for plain paths and warns about it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for split, frame in frames.items():
                dataset = from_pandas(
                    frame,
                    source=data_uri,
                    targets="label",
                    name=f"{cfg.data.name}:{split}",
                    digest=(digests or {}).get(split),
                )
                _log_input(dataset, split)

    def log_derived(self, metrics: dict[str, float], tags: dict[str, str]) -> None:
        """What the data and model turned out to be (summary.derived_values)."""
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)

    def log_trainable(self, names: list[str]) -> None:
        """The tensors that train, one name per line: what a freeze preset or peft method chose."""
        mlflow.log_text("\n".join(names) + "\n", "trainable_parameters.txt")

    def log_samples(self, text: str) -> None:
        """A few training inputs decoded, to check the tokenization (run.py training_samples)."""
        mlflow.log_text(text, "samples.txt")

    def log_steps(self, key: str, values: list[float]) -> None:
        """A per-step series (steps 1, 2, ...) through the spool; in a resumed run the spool asks
        the server which steps it has first (run: `uncertain`), so none is logged twice."""
        self.spool.add_steps(key, values)
        self.spool.flush()

    def log_epoch(self, metrics: dict[str, float], epoch: int) -> None:
        """Through the spool: training goes on while the tracking server is away (spool.py)."""
        # the final `train_val_loss_ratio` is the best epoch's; the per-epoch series needs its own
        # key, or MLflow's "latest value" (highest step) would show the last epoch's ratio under the
        # final name
        self.spool.add({EPOCH_KEYS.get(k, k): v for k, v in metrics.items()}, epoch)
        self.spool.flush()

    def drain(self, wait_s: float) -> dict[str, float]:
        """Send what the spool holds (waiting up to `wait_s` for the server); returns how logging
        fared while training."""
        self.spool.drain(wait_s)
        return {
            "tracking_longest_wait_s": self.spool.longest_wait_s,
            "tracking_failed_sends": self.spool.failures,
        }

    def tag(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_results(
        self, final: dict[str, float], confusion: dict, figures: dict[str, Figure]
    ) -> None:
        mlflow.log_metrics(final)
        mlflow.log_dict(confusion, "confusion_matrix.json")
        if figures:  # matplotlib only when there are figures (tracking.log_figures)
            import matplotlib.pyplot as plt

            for name, figure in figures.items():
                mlflow.log_figure(figure, name)
                plt.close(figure)

    def log_predictions(
        self, frames: dict[str, pd.DataFrame], errors: dict[str, pd.DataFrame]
    ) -> None:
        """predictions/<split>.parquet, every evaluated row (what `textclf compare` and champion
        promotion pair up), and misclassified_<split>.json, the most confident errors as an MLflow
        table (the UI shows it)."""
        with tempfile.TemporaryDirectory() as tmp:
            for split, frame in frames.items():
                frame.to_parquet(Path(tmp) / f"{split}.parquet", index=False)
            mlflow.log_artifacts(tmp, PREDICTIONS)
        for split, table in errors.items():
            mlflow.log_table(table, artifact_file=f"misclassified_{split}.json")


def _log_input(dataset, context: str, attempts: int = 3) -> None:
    """Workers of one sweep log the same dataset at once: MLflow's store inserts it after checking
    that it is not there, and the slower insert fails on the unique key. The dataset then exists:
    link to it again."""
    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except mlflow.exceptions.MlflowException as e:
            if attempt == attempts - 1 or not re.search(
                r"UNIQUE constraint|IntegrityError|duplicate key", str(e)
            ):
                raise
            time.sleep(0.2 * (attempt + 1))
