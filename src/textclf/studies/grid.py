"""Grid sweeps that run each grid point exactly once under K workers, kills and reruns.

Optuna's GridSampler picks "unvisited" points on its own: a point whose worker was killed counts as
visited (never run), and idle workers rerun points still running elsewhere. Here the points are
enqueued instead: the `textclf sweep` command enqueues every point that is neither done nor taken;
workers pop waiting trials (an atomic step in Optuna's storage); a point whose worker dies is
enqueued again by the heartbeat check (`retry_dead`); a worker with nothing waiting waits while
points run elsewhere and stops when none do.

A point is done when a trial of it is COMPLETE, PRUNED, or FAILed by its own error; taken while a
trial of it is RUNNING or WAITING. A trial that finds its point done or running elsewhere (two
commands enqueued it at the same moment) ends FAIL with the user attribute `duplicate_of` and no
MLflow run: it is left out of every count, leaderboard and report.
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna

from textclf.studies.spec import SweepSpec

TrialState = optuna.trial.TrialState
DUPLICATE = "duplicate_of"
# a dead worker's point is enqueued again at most this many times (a point that kills its worker
# every time, e.g. the OS killing it for memory, must not loop forever), or study.retries if larger
DEAD_RETRIES = 2


class DuplicatePoint(Exception):
    """This trial's grid point is done, or running in another trial."""


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid point as trial params, in grid order (explicit grid indices or the categories)."""
    space = spec.grid_space()
    return [dict(zip(space, values, strict=False)) for values in itertools.product(*space.values())]


def point_of(trial: optuna.trial.FrozenTrial, keys: list[str]) -> tuple | None:
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    return tuple(params[k] for k in keys) if all(k in params for k in keys) else None


def is_done(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL
        and "error" in trial.user_attrs
        and DUPLICATE not in trial.user_attrs
    )


def progress(spec: SweepSpec, study: optuna.Study) -> tuple[set, set]:
    """(points done, points taken by a running or waiting trial)."""
    keys = list(spec.grid_space())
    done, taken = set(), set()
    for trial in study.get_trials(deepcopy=False):
        point = point_of(trial, keys)
        if is_done(trial):
            done.add(point)
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            taken.add(point)
    return done, taken


def target(spec: SweepSpec) -> int:
    """The points to run: the whole grid, or its first study.n_trials (--n-trials) in grid order."""
    return min(spec.n_trials or len(points(spec)), len(points(spec)))


def enqueue_missing(spec: SweepSpec, study: optuna.Study) -> int:
    """Enqueue every point (up to the target) that is neither done nor taken; returns how many."""
    keys = list(spec.grid_space())
    done, taken = progress(spec, study)
    room = target(spec) - len(done) - len(taken - done)
    missing = [p for p in points(spec) if tuple(p[k] for k in keys) not in done | taken][
        : max(room, 0)
    ]
    for point in missing:
        study.enqueue_trial(point)
    return len(missing)


def claim(spec: SweepSpec, trial: optuna.Trial) -> None:
    """Raise DuplicatePoint if another trial of this trial's point is done or running."""
    keys = list(spec.grid_space())
    mine = tuple(trial.suggest_categorical(k, v) for k, v in spec.grid_space().items())
    for other in trial.study.get_trials(deepcopy=False):
        if (
            other.number != trial.number
            and point_of(other, keys) == mine
            and (is_done(other) or other.state == TrialState.RUNNING)
        ):
            trial.set_user_attr(DUPLICATE, other.number)
            raise DuplicatePoint(
                f"grid point {dict(zip(keys, mine, strict=False))} is taken by trial {other.number}"
            )


def retry_dead(spec: SweepSpec) -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """Called for each trial that Optuna fails for a lost heartbeat: its point is enqueued again.
    Two workers may both fail the same stale trial on SQLite (no row locks) and enqueue it twice:
    `claim` makes the second copy a duplicate that runs nothing."""
    return optuna.storages.RetryHeartbeatStaleTrialCallback(
        max_retry=max(spec.retries, DEAD_RETRIES)
    )


def queue_state(study: optuna.Study) -> tuple[bool, bool]:
    """(a trial is waiting, a trial is running)."""
    states = {
        t.state
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    }
    return TrialState.WAITING in states, TrialState.RUNNING in states
