"""A sweep command validated: everything that can reject it (the spec and every trial config, the
pruner's arguments, the tracking URI, the study's storage, the data and the model, the command's own
options) checked before any study, storage file, experiment or run exists."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from textclf.config import Config
from textclf.errors import InputError
from textclf.studies.spec import FixedTrial, SweepSpec, trial_config
from textclf.studies.spec_file import load_spec
from textclf.studies.storage import check_storage, storage_url
from textclf.studies.strategies import make_pruner
from textclf.tracking import runs, store

if TYPE_CHECKING:  # data/ (and its pandas, tokenizers) loads only where splits are read
    from textclf.data import Splits


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated sweep command: what it will run, where it will log and store."""

    spec: SweepSpec
    base: Config
    tracking_uri: str
    storage_url: str
    splits: Splits | None  # the base config's splits; None for worker processes


def validate(
    spec_path: str,
    overrides: tuple[str, ...],
    n_trials: int | None,
    storage: str | None,
    tracking_flag: str | None,
    worker: bool,
) -> Plan:
    """Everything that can reject the command, before a study, storage, experiment or run exists."""
    from textclf.assets import resolve
    from textclf.data import load_splits

    spec = load_spec(spec_path, overrides)  # every problem of the spec and of every trial config
    spec = dataclasses.replace(spec, n_trials=n_trials or spec.n_trials)
    make_pruner(spec)  # Optuna's own checks of pruner_args
    base = trial_config(spec, FixedTrial({}), overrides)  # first choices: the study's base config
    uri, origin = store.resolve_uri(tracking_flag, base.tracking.uri, base.where("tracking.uri"))
    store.check_uri(uri, origin, wait_s=store.startup_wait(base.tracking.outage_wait_s))
    runs.check_journal_dir(base.tracking)
    url = storage_url(spec, storage)
    check_storage(
        spec,
        url,
        f"--storage {url}"
        if storage
        else f"{spec.path}: study.storage {url}"
        if spec.storage
        else f"the default study storage {url}",
    )
    if worker:  # the command that spawned this worker validated the data and the model
        return Plan(spec, base, uri, url, None)
    model = resolve(base.model.name, "models")
    if isinstance(model, str):
        raise InputError([f"{base.where('model.name')}: model.name: {model}"])
    return Plan(spec, base, uri, url, load_splits(base.data))


def check_command(plan: Plan, spec_path: str, repeat_best: int) -> None:
    if plan.base.tracking.register_as and plan.spec.keep_models == "none":
        raise InputError(
            [
                f"{spec_path}: study.keep_models: none keeps no model to register as "
                f"{plan.base.tracking.register_as!r}; use best (the default) or all"
            ]
        )
    if repeat_best and len(plan.spec.objectives) > 1:
        raise InputError(
            [
                f"--repeat-best: {spec_path} has {len(plan.spec.objectives)} objectives; "
                "seed repeats need a single-objective study"
            ]
        )
