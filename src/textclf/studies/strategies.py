"""How a study hands trials to its workers, one object per kind of sampler, so the rest of the sweep
never asks which one it runs. Sampled (tpe, random): the sampler proposes each trial, workers run
until the study has its target number of finished trials. Grid: every point enqueued once, popped by
the workers, a dead worker's point enqueued again, waiting while the last points run elsewhere
(grid.py)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from textclf.studies import grid
from textclf.studies.spec import SweepSpec

log = logging.getLogger(__name__)
# (study, n_trials or None, timeout or None, more trial callbacks): run trials with the sweep's
# objective
Optimize = Callable[[optuna.Study, int | None, float | None, list], None]


@dataclass(frozen=True)
class Sampled:
    spec: SweepSpec

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.spec.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        # constant_liar: a trial still running elsewhere counts as a poor result, so workers spread
        # out
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)

    def on_stale(self):
        """What happens to a trial whose worker stopped beating: retried up to study.retries
        times."""
        retries = self.spec.retries
        return (
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries) if retries else None
        )

    def enqueue(self, study: optuna.Study) -> int:
        return 0  # the sampler proposes each trial as it starts

    def claim(self, trial: optuna.Trial) -> None:
        pass  # proposed to this trial alone

    def run(
        self, study: optuna.Study, optimize: Optimize, finished: Callable[[optuna.Study], int]
    ) -> None:
        """Until the study has its target number of finished trials (study.n_trials), or
        study.timeout."""
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

    def sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        # its points are enqueued; the sampler is a fallback for a trial that finds the queue
        # emptied under it
        return optuna.samplers.RandomSampler(seed=seed)

    def on_stale(self):
        return grid.retry_dead(self.spec)  # the dead worker's point is enqueued again

    def enqueue(self, study: optuna.Study) -> int:
        return grid.enqueue_missing(self.spec, study)

    def claim(self, trial: optuna.Trial) -> None:
        grid.claim(self.spec, trial)  # two commands may have enqueued one point: only one runs it

    def run(
        self, study: optuna.Study, optimize: Optimize, finished: Callable[[optuna.Study], int]
    ) -> None:
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


def strategy(spec: SweepSpec) -> Sampled | Grid:
    return Grid(spec) if spec.sampler == "grid" else Sampled(spec)
