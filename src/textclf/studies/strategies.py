"""How a study proposes and hands out trials, as tables: `study.sampler` and `study.pruner` name an
entry each (the names the spec accepts are these tables' keys), and every sampler name has a
Strategy, so the rest of the sweep never asks which one it runs. Sampled (tpe, random): the sampler
proposes each trial, workers run until the study has its target number of finished trials. Grid:
every point enqueued once, popped by the workers, a dead worker's point enqueued again, waiting
while the last points run elsewhere (grid.py)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import optuna

from textclf.errors import InputError
from textclf.studies import grid
from textclf.studies.spec import SweepSpec

log = logging.getLogger(__name__)
# (study, n_trials or None, timeout or None, more trial callbacks): run trials with the sweep's
# objective
Optimize = Callable[[optuna.Study, int | None, float | None, list], None]
Finished = Callable[[optuna.Study], int]  # the trials that count toward the target

# study.sampler -> the sampler, given its seed
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    # a grid's points are enqueued; its sampler is a fallback for a trial that finds the queue
    # emptied under it
    "grid": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    # constant_liar: a trial still running elsewhere counts as a poor result, so workers spread out
    "tpe": lambda seed: optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=True
    ),
}
# study.pruner -> Optuna's pruner class; study.pruner_args are its keyword arguments
PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}


class Strategy(Protocol):
    """What the sweep asks of a way of handing out trials."""

    def on_stale(self) -> Callable | None:
        """What happens to a trial whose worker stopped beating (Optuna's stale-trial callback)."""

    def enqueue(self, study: optuna.Study) -> int:
        """Trials queued by the command before its workers start; returns how many."""

    def claim(self, trial: optuna.Trial) -> None:
        """Called as a trial starts: may fail it (a grid point taken twice)."""

    def run(self, study: optuna.Study, optimize: Optimize, finished: Finished) -> None:
        """This worker's trials, until the study is done."""


@dataclass(frozen=True)
class Sampled:
    spec: SweepSpec

    def on_stale(self) -> Callable | None:
        """Retried up to study.retries times."""
        retries = self.spec.retries
        return (
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries) if retries else None
        )

    def enqueue(self, study: optuna.Study) -> int:
        return 0  # the sampler proposes each trial as it starts

    def claim(self, trial: optuna.Trial) -> None:
        pass  # proposed to this trial alone

    def run(self, study: optuna.Study, optimize: Optimize, finished: Finished) -> None:
        """Until the study has its target of finished trials (study.n_trials), or study.timeout."""
        target = self.spec.target_trials()
        if target is None:
            return optimize(study, None, self.spec.timeout, [])
        # every worker stops once the study has them, whoever finished them
        if finished(study) < target:
            optimize(
                study,
                None,
                self.spec.timeout,
                [lambda s, t: s.stop() if finished(s) >= target else None],
            )


@dataclass(frozen=True)
class Grid:
    spec: SweepSpec

    def on_stale(self) -> Callable | None:
        return grid.retry_dead(self.spec)  # the dead worker's point is enqueued again

    def enqueue(self, study: optuna.Study) -> int:
        return grid.enqueue_missing(self.spec, study)

    def claim(self, trial: optuna.Trial) -> None:
        grid.claim(self.spec, trial)  # two commands may have enqueued one point: only one runs it

    def run(self, study: optuna.Study, optimize: Optimize, finished: Finished) -> None:
        """Pop enqueued points one at a time; wait while the remaining ones run in other workers
        (one of them may die, and its point come back); stop when nothing waits or runs."""
        deadline = time.monotonic() + (self.spec.timeout or math.inf)
        said = False
        while time.monotonic() < deadline:
            optuna.storages.fail_stale_trials(study)  # a dead worker's point is enqueued again
            waiting, running = grid.queue_state(study)
            if waiting:
                optimize(study, 1, None, [])
            elif running:
                if not said:
                    log.info("the remaining grid points run in other workers; waiting for them")
                    said = True
                time.sleep(min(5.0, self.spec.heartbeat_s))
            else:
                return


# study.sampler -> how its trials are handed out (every SAMPLERS name has one: a test checks)
STRATEGIES: dict[str, Callable[[SweepSpec], Strategy]] = {
    "grid": Grid,
    "random": Sampled,
    "tpe": Sampled,
}


def strategy(spec: SweepSpec) -> Strategy:
    return STRATEGIES[spec.sampler](spec)


def make_sampler(spec: SweepSpec, worker: int = 0, history: int = 0) -> optuna.samplers.BaseSampler:
    """Worker i of a study gets its own seed, derived from the study seed (reproducible): with
    one seed in every worker, random and TPE samplers propose the same values in every worker.
    `history`, the trials the study held when this worker opened it, makes each resumption's seed
    its own: with the worker index alone a re-run command (or a restarted pod) drew the same
    values again."""
    entropy = [spec.seed, worker, *([history] if history else [])]
    fresh = worker == history == 0  # a fresh study's first worker keeps the study seed
    seed = spec.seed if fresh else int(np.random.SeedSequence(entropy).generate_state(1)[0])
    return SAMPLERS[spec.sampler](seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    try:
        return PRUNERS[spec.pruner](**dict(spec.pruner_args))
    except (TypeError, ValueError) as e:  # an unknown argument, or a value Optuna rejects
        raise InputError(
            [f"{spec.path}: study.pruner_args: {e} (Optuna's {spec.pruner} pruner)"]
        ) from None
