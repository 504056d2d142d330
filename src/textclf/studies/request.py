"""One `textclf sweep` command as one object: the CLI builds it from its options, `textclf.sweep`
passes it on and `run_sweep` takes it, so the sweep's options are written once; what the sweep
returns is its outcome, so nothing reopens the study to read it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class SweepRequest:
    """What to run: a sweep file and how (README "Sweeps" explains each option)."""

    spec: str  # the sweep file
    overrides: tuple[str, ...] = ()  # `section.key=value` for every trial
    n_trials: int | None = None  # finished trials the study should have in all (None: the spec's)
    workers: str = "1"  # worker processes on this machine, or "auto" (one per GPU)
    gpus: str | None = None  # comma-separated GPUs the workers may use
    storage: str | None = None  # the Optuna storage URL (None: study.storage, else optuna.db)
    tracking_uri: str | None = None
    register_as: str | None = None  # tracking.register_as for the best trial's model
    repeat_best: int = 0  # rerun the best K trials with more training seeds
    seeds: int = 3  # seeds per repeated trial, the original included
    worker_of: str | None = None  # internal: run as a worker process of this parent run
    worker_index: int = 0  # this command's index among the commands of one study
    # processes (GPUs) per trial: each trial a run of train.devices = K, each worker K GPUs
    devices_per_trial: int = 1

    def config_overrides(self) -> tuple[str, ...]:
        """The overrides every trial gets, --register-as and --devices-per-trial included."""
        registered = (f"tracking.register_as={self.register_as}",) if self.register_as else ()
        devices = (f"train.devices={self.devices_per_trial}",) if self.devices_per_trial > 1 else ()
        return (*self.overrides, *registered, *devices)


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep command ends with (empty for a worker process)."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per trial, best first
    summary: str = ""  # what `textclf sweep` prints
