"""An Optuna study as one MLflow parent run with one child run per trial.

Trial state -> child run status: COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED (reason tagged).
The study lives in an Optuna storage (default: the embedded SQLite file optuna.db), so rerunning the same
command resumes it, and `--workers K` processes (or machines sharing a database) work on one study.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from textclf import interrupts, tracking
from textclf import sweep_grid as grid
from textclf.config import Config, replace
from textclf.errors import InputError, SweepStopped
from textclf.metrics import RUNNING
from textclf.run import TrialHooks, train_run
from textclf.sweep_spec import GRID_POINT, FixedTrial, SweepSpec, trial_config

log = logging.getLogger(__name__)
SHOWN_METRICS = ("best_val_accuracy", "test_accuracy", "test_f1", "train_val_loss_ratio", "train_time_s")
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
STATE_RANK = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2}

TrialState = optuna.trial.TrialState
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclasses.dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    storage_url: str
    tracking_uri: str
    parent_run_id: str
    experiment: str
    overrides: tuple[str, ...] = ()
    worker: int = 0  # index of this worker process; its sampler's seed derives from it


def storage_url(spec: SweepSpec, flag: str | None) -> str:
    return flag or spec.storage or f"sqlite:///{Path('optuna.db').resolve()}"


def open_study(spec: SweepSpec, url: str, worker: int = 0) -> optuna.Study:
    """Create or resume the study. Heartbeats let a crashed worker's trial be failed, not RUNNING forever
    (and, in a grid, its point be enqueued again)."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    retry = grid.retry_dead(spec) if spec.sampler == "grid" else \
        optuna.storages.RetryFailedTrialCallback(max_retry=spec.retries) if spec.retries else None
    heartbeat = max(1, round(spec.heartbeat_s))
    storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                         grace_period=4 * heartbeat, failed_trial_callback=retry)
    directions = [d for _, d in spec.objectives]
    return optuna.create_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec, worker),
                               pruner=make_pruner(spec), directions=directions, load_if_exists=True)


def make_sampler(spec: SweepSpec, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Worker i of a study gets its own seed, derived from the study seed (reproducible): with one seed in
    every worker, random and TPE samplers propose the same values in every worker."""
    seed = spec.seed if worker == 0 else int(np.random.SeedSequence([spec.seed, worker]).generate_state(1)[0])
    if spec.sampler == "grid":  # its points are enqueued (sweep_grid.py); the sampler is a fallback for a trial
        return optuna.samplers.RandomSampler(seed=seed)  # that finds the queue emptied under it
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: a trial still running elsewhere counts as a poor result, so workers spread out
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    args = dict(spec.pruner_args)
    try:
        return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
                "hyperband": optuna.pruners.HyperbandPruner,
                "threshold": optuna.pruners.ThresholdPruner}[spec.pruner](**args)
    except (TypeError, ValueError) as e:  # an unknown argument, or a value Optuna rejects
        raise InputError([f"{spec.path}: study.pruner_args: {e} (Optuna's {spec.pruner} pruner)"]) from None


def run_worker(sweep: Sweep) -> None:
    """Run trials until the study has its target number of finished trials (or the grid is done)."""
    study = open_study(sweep.spec, sweep.storage_url, sweep.worker)
    if sweep.spec.sampler == "grid":
        return run_grid(sweep, study)
    target = sweep.spec.target_trials()
    callbacks = [lambda s, t: record_trial(sweep, s, t), stop_after_failures(sweep.spec)]
    if target is not None:
        callbacks.append(lambda s, t: s.stop() if _finished(s) >= target else None)
        if _finished(study) >= target:
            return
    _optimize(sweep, study, None, sweep.spec.timeout, callbacks)


def run_grid(sweep: Sweep, study: optuna.Study) -> None:
    """Pop enqueued grid points one at a time (sweep_grid.py); wait while the remaining ones run in other
    workers (one of them may die, and its point come back); stop when nothing waits or runs."""
    callbacks = [lambda s, t: record_trial(sweep, s, t), stop_after_failures(sweep.spec)]
    deadline = time.monotonic() + (sweep.spec.timeout or math.inf)
    said = False
    while time.monotonic() < deadline:
        optuna.storages.fail_stale_trials(study)  # a dead worker's point is enqueued again
        waiting, running = grid.queue_state(study)
        if waiting:
            _optimize(sweep, study, 1, None, callbacks)
        elif running:
            if not said:
                log.info("the remaining grid points run in other workers; waiting for them")
                said = True
            time.sleep(min(5.0, sweep.spec.heartbeat_s))
        else:
            return


def _optimize(sweep: Sweep, study: optuna.Study, n_trials: int | None, timeout: float | None, callbacks) -> None:
    while True:
        try:
            study.optimize(lambda trial: objective(sweep, trial), n_trials=n_trials, timeout=timeout,
                           callbacks=callbacks, catch=(Exception,), gc_after_trial=True)
            return
        except optuna.exceptions.UpdateFinishedTrialError as e:  # this worker goes on with the next trial
            log.warning("another worker failed a trial of this one as stale while it still ran (its heartbeat "
                        "came late; raise study.heartbeat_s on a loaded machine): %s", e)
            if n_trials is not None:
                return


def objective(sweep: Sweep, trial: optuna.Trial) -> float | tuple[float, ...]:
    """One trial: its config, a training run as a child of the parent, the objective value(s). Every failure
    of the trial's own making is recorded as the user attribute `error` (so it counts toward n_trials and
    study.max_failures) and leaves its child run FAILED with the reason."""
    interrupts.check()  # a Ctrl-C swallowed between trials ends the sweep here
    hooks = TrialHooks(sweep.parent_run_id, {"trial.number": trial.number, "trial.study": sweep.spec.name},
                       {"trial.number": str(trial.number), "textclf.study": sweep.spec.name},
                       report=lambda row, epoch: _report(trial, sweep.spec.objectives[0][0], row, epoch),
                       killed_by=(optuna.TrialPruned,),
                       on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id))
    if sweep.spec.sampler == "grid":
        grid.claim(sweep.spec, trial)  # two commands may have enqueued one point: only one runs it
    try:
        cfg = replace(trial_config(sweep.spec, trial, sweep.overrides), tracking__experiment=sweep.experiment)
        flat = cfg.flat()
        for key in set(sweep.spec.varied_keys()) - set(trial.params):  # grid points and follows rules:
            trial.set_user_attr(key, ",".join(map(str, flat[key])) if isinstance(flat[key], list) else flat[key])
        result = _train_with_oom_retry(cfg, sweep, hooks, trial)
        values = objective_values(sweep.spec, result.metrics)
    except (optuna.TrialPruned, KeyboardInterrupt):
        raise
    except InputError as e:  # rejected before a run existed: record it as a FAILED child all the same
        error = "; ".join(e.problems)
        run_id = tracking.failed_child(_safe_base(sweep), sweep.parent_run_id, hooks.params, hooks.tags, error)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("error", error[:500])
        raise RuntimeError(error) from None
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        trial.set_user_attr("error", error[:500])
        if trial.user_attrs.get("mlflow_run_id"):  # a run that finished before the trial failed
            tracking.fail_if_finished(trial.user_attrs["mlflow_run_id"], error)
        raise
    finally:
        _release_memory()
    for key in SHOWN_METRICS:
        trial.set_user_attr(key, float(result.metrics[key]))
    return values[0] if len(values) == 1 else values


def objective_values(spec: SweepSpec, metrics: dict[str, float]) -> tuple[float, ...]:
    """The study's objective values from a run's final metrics; a missing or non-finite value fails the trial
    with a reason (Optuna would fail it without one)."""
    values = []
    for metric, _ in spec.objectives:
        if metric not in metrics:
            raise RuntimeError(f"the run logged no {metric!r}, the study's objective (e.g. peak_gpu_mem_mb exists "
                               f"on a GPU only)")
        if not math.isfinite(float(metrics[metric])):
            raise RuntimeError(f"the objective {metric} is {metrics[metric]}")
        values.append(float(metrics[metric]))
    return tuple(values)


def stop_after_failures(spec: SweepSpec):
    """A trial callback: the sweep stops (SweepStopped, exit 1) once study.max_failures trials in a row,
    in order of completion across all workers, failed by their own error."""
    def check(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = sorted((t for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
                       if grid.DUPLICATE not in t.user_attrs and t.datetime_complete), key=lambda t: t.datetime_complete)
        last = done[-spec.max_failures:]
        if len(last) == spec.max_failures and all(t.state == TrialState.FAIL and "error" in t.user_attrs
                                                  for t in last):
            raise SweepStopped(f"{spec.max_failures} trials in a row failed (study.max_failures); the last, trial "
                               f"{last[-1].number}: {last[-1].user_attrs['error'][:300]}. Fix the cause, then rerun "
                               f"the same command to resume the study")
    return check


def _train_with_oom_retry(cfg: Config, sweep: Sweep, hooks: TrialHooks, trial: optuna.Trial):
    try:
        return train_run(cfg, sweep.tracking_uri, hooks)
    except torch.OutOfMemoryError:
        if not sweep.spec.retry_oom or cfg.train.batch_size < 2:
            raise
    # once, with the micro-batch divided by its smallest factor f and f times the accumulation: exactly the
    # same effective batch (16 -> 8 x 2, 15 -> 5 x 3, a prime 13 -> 1 x 13)
    t = cfg.train
    factor = next(f for f in range(2, t.batch_size + 1) if t.batch_size % f == 0)
    micro, accum = t.batch_size // factor, t.grad_accum_steps * factor
    note = (f"batch {t.batch_size} x {t.grad_accum_steps} -> {micro} x {accum} "
            f"(effective batch {t.effective_batch_size()} kept)")
    log.warning("trial %d ran out of memory; retrying once: %s", trial.number, note)
    tracking.delete_run(trial.user_attrs["mlflow_run_id"])  # one child run per trial
    _release_memory()
    smaller = replace(cfg, train__batch_size=micro, train__grad_accum_steps=accum)
    retry = dataclasses.replace(hooks, tags={**hooks.tags, "textclf.oom_retry": note})
    return train_run(smaller, sweep.tracking_uri, retry)


def running_value(metric: str, row: dict[str, float]) -> float | None:
    """The objective's value if training stopped now, from the lowest-val-loss epoch's row so far; None for
    objectives without a per-epoch value (only known at the end, e.g. train_time_s)."""
    return row[RUNNING[metric]] if metric in RUNNING else None


def _report(trial: optuna.Trial, metric: str, row: dict[str, float], epoch: int) -> None:
    """The pruner sees the running objective, so a pruned trial's stored value (its last report) is the same
    quantity as a complete trial's value."""
    value = running_value(metric, row)
    if len(trial.study.directions) > 1 or value is None:
        return  # optuna does not prune multi-objective studies
    trial.report(value, epoch)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned after epoch {epoch} ({metric} so far {value:.4f})")


def end_dead_trials(study: optuna.Study) -> int:
    """Child runs of trials that Optuna failed for a lost heartbeat (their worker was killed) are still
    RUNNING in MLflow: end them FAILED. Returns how many were ended."""
    ended = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and tracking.end_dead(run_id, f"trial {trial.number}: its worker stopped sending heartbeats "
                                                f"(killed, or its machine was lost)"):
            tracking.update_run(run_id, {"trial.state": "FAIL"}, {})
            ended += 1
    return ended


def record_trial(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """After each trial: its child run's state tag, the parent's best-trial tags and leaderboard; child
    runs of trials whose worker died are ended."""
    try:
        _record(sweep, study, trial)
    finally:  # a Ctrl-C that arrived during the trial's clean-up (garbage collection) ends the sweep here
        interrupts.check()


def _record(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if grid.DUPLICATE in trial.user_attrs:
        log.info("trial %d skipped: its grid point is taken by trial %d", trial.number, trial.user_attrs[grid.DUPLICATE])
        return
    reason = f" ({trial.user_attrs.get('error', '')})" if trial.state.name == "FAIL" else ""
    log.info("trial %d %s%s%s", trial.number, trial.state.name, f" {trial.values}" if trial.values else "", reason)
    try:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:  # the run itself already ended with the matching status (STATUS)
            tracking.update_run(run_id, {"trial.state": trial.state.name}, {})
        end_dead_trials(study)
        tracking.update_run(sweep.parent_run_id, best_tags(study),
                            {"leaderboard.csv": leaderboard(study).to_csv()})
    except Exception as e:  # a tracking hiccup must not stop the study; the next trial rewrites all of it
        log.warning("could not record trial %d in MLflow: %s", trial.number, e)


def best_tags(study: optuna.Study) -> dict[str, str]:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return {}
    best = study.best_trial if len(study.directions) == 1 else study.best_trials[0]
    tags = {"best_trial": str(best.number), "best_run_id": best.user_attrs.get("mlflow_run_id", ""),
            "best_value": json.dumps(best.values)}
    if len(study.directions) > 1:
        tags["pareto_trials"] = ",".join(str(t.number) for t in study.best_trials)
    return tags


def leaderboard(study: optuna.Study):
    """One row per trial: state, objective value(s), varied config values, key metrics, duration, MLflow
    run id, error; best first."""
    frame = study.trials_dataframe(attrs=("number", "state", "value" if len(study.directions) == 1 else "values",
                                          "params", "user_attrs", "duration"))
    frame.columns = [c.removeprefix("params_").removeprefix("user_attrs_") for c in frame.columns]
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if grid.DUPLICATE in frame:  # trials that found their grid point taken ran nothing
        frame = frame[frame.pop(grid.DUPLICATE).isna()]
    if "duration" in frame:
        frame["duration_s"] = frame.pop("duration").dt.total_seconds().round(1)
    last = [c for c in ("mlflow_run_id", "error") if c in frame]
    frame = frame[[c for c in frame.columns if c not in last and c != GRID_POINT] + last]
    values = [c for c in frame.columns if c == "value" or c.startswith("values_")]
    if values and len(frame):  # complete trials first, then pruned, failed, running; each by the objective
        ascending = [d == optuna.study.StudyDirection.MINIMIZE for d in study.directions]
        rank = frame["state"].map(STATE_RANK).fillna(len(STATE_RANK))
        frame = frame.assign(_rank=rank).sort_values(["_rank", *values], ascending=[True, *ascending],
                                                     na_position="last", kind="stable").drop(columns="_rank")
    return frame.set_index("number")


def _finished(study: optuna.Study) -> int:
    """Trials that count toward the target: complete, pruned, or failed by their own error. A trial that
    failed because its worker died (heartbeat) or was interrupted has no error and does not count: it is
    retried (study.retries) or its budget goes to a new trial."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
               if t.state != optuna.trial.TrialState.FAIL or "error" in t.user_attrs)


def _safe_base(sweep: Sweep) -> Config:
    from textclf.config import load_config

    return load_config(sweep.spec.base, (), [(str(sweep.spec.path), sweep.spec.config)])


def _release_memory() -> None:
    gc.collect()  # a Ctrl-C raised in a finalizer here is swallowed by Python: record_trial raises it again
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def spawn_workers(argv: list[str], count: int, env: dict[str, str]) -> int:
    """`count` worker processes of this same command; returns the first non-zero exit code, else 0."""
    procs = [subprocess.Popen([sys.executable, "-m", "textclf", *argv, "--worker-index", str(i)],
                              env={**os.environ, **env}) for i in range(count)]
    try:
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    return next((c for c in codes if c), 0)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated sweep command: what it will run, where it will log and store."""
    spec: SweepSpec
    base: Config
    tracking_uri: str
    storage_url: str
    splits: object | None  # the base config's splits (data.Splits); None for worker processes


def validate(spec_path: str, overrides: tuple[str, ...], n_trials: int | None, storage: str | None,
             tracking_flag: str | None, worker: bool) -> Plan:
    """Everything that can reject the command, before any study, storage file, experiment or run exists."""
    from textclf.assets import resolve
    from textclf.data import load_splits
    from textclf.sweep_spec import load_spec

    spec = load_spec(spec_path, overrides)  # every problem of the spec and of every trial config
    spec = dataclasses.replace(spec, n_trials=n_trials or spec.n_trials)
    make_pruner(spec)  # Optuna's own checks of pruner_args
    base = trial_config(spec, FixedTrial({}), overrides)  # first choices: the study's base config
    uri, origin = tracking.resolve_uri(tracking_flag, base)
    tracking.check_uri(uri, origin)
    url = storage_url(spec, storage)
    check_storage(spec, url, f"--storage {url}" if storage else f"{spec.path}: study.storage {url}" if spec.storage
                  else f"the default study storage {url}")
    if worker:  # the command that spawned this worker validated the data and the model
        return Plan(spec, base, uri, url, None)
    model = resolve(base.model.name, "models")
    if isinstance(model, str):
        raise InputError([f"{base.where('model.name')}: model.name: {model}"])
    return Plan(spec, base, uri, url, load_splits(base))


STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


def check_storage(spec: SweepSpec, url: str, origin: str) -> None:
    """A storage URL Optuna can open, and no existing study of this name with other objective directions
    (reopening it would fail every trial). Reads only: a missing SQLite file is not created."""
    scheme = url.partition(":")[0].split("+")[0].lower()
    if scheme not in STORAGE_SCHEMES:
        raise InputError([f"{origin}: unknown scheme {scheme!r}; use sqlite:///FILE (the default) or "
                          f"postgresql://USER@HOST:PORT/DB"])
    if scheme == "sqlite" and not Path(url.removeprefix("sqlite:///")).is_file():
        return
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
        found = storage.get_study_directions(storage.get_study_id_from_name(spec.name))
    except KeyError:
        return  # no such study yet
    except Exception as e:  # unreachable server, not an Optuna database: one line, not a traceback
        raise InputError([f"{origin}: cannot open it ({type(e).__name__}: {str(e).splitlines()[0][:200]})"]) from None
    wanted = [optuna.study.StudyDirection[d.upper()] for _, d in spec.objectives]
    if list(found) != wanted:
        names = lambda ds: ", ".join(d.name.lower() for d in ds)  # noqa: E731
        raise InputError([f"{spec.path}: objective: study {spec.name!r} in {tracking.redact('url', url)} was created to "
                          f"{names(found)}, the spec asks to {names(wanted)}; give the spec another study.name, or "
                          f"delete the old study (optuna delete-study --study-name {spec.name} --storage URL)"])


def run_sweep(spec_path: str, overrides: tuple[str, ...], n_trials: int | None, workers: int,
              storage: str | None, tracking_flag: str | None, worker_of: str | None,
              repeat_best: int = 0, seeds: int = 3, worker_index: int = 0) -> str:
    """The `textclf sweep` command: validate, open the study and its parent run, run the workers."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial comes from record_trial
    plan = validate(spec_path, overrides, n_trials, storage, tracking_flag, worker=bool(worker_of))
    spec, base, uri, url = plan.spec, plan.base, plan.tracking_uri, plan.storage_url
    launched_by_mlflow = os.environ.pop("MLFLOW_RUN_ID", None)  # `mlflow run`: its run is the parent
    tracking.connect(uri, base.tracking.experiment)
    if worker_of:
        run_worker(Sweep(spec, url, uri, worker_of, tracking.experiment_of(worker_of), overrides, worker_index))
        return ""
    study = open_study(spec, url)  # created once, before any worker races to create it
    if spec.sampler == "grid":
        grid.enqueue_missing(spec, study)
    tags = {"textclf.role": "sweep", "study.sampler": spec.sampler, "study.pruner": spec.pruner,
            "study.objective": json.dumps(dict(spec.objectives)), "study.space": json.dumps(spec.describe_space()),
            "textclf.split_fingerprint": plan.splits.fingerprint,
            "textclf.eval_fingerprint": plan.splits.eval_fingerprint}
    reuse = {"textclf.study": spec.name, "study.storage": tracking.redact("storage", url)}
    parent = launched_by_mlflow or tracking.start_parent(base.tracking.experiment, spec.name, tags, reuse)
    if launched_by_mlflow:
        tracking.update_run(parent, {**tags, **reuse}, {})
    sweep = Sweep(spec, url, uri, parent, tracking.experiment_of(parent), overrides)
    beat = tracking.heartbeat(parent, base.tracking.heartbeat_s)  # a killed sweep's parent gets reaped
    status = "FAILED"
    try:
        if workers > 1:
            argv = ["sweep", spec_path, "--storage", url, "--tracking-uri", uri, "--worker-of", parent,
                    *(["--n-trials", str(spec.n_trials)] if spec.n_trials else []),
                    *[a for o in overrides for a in ("-o", o)]]
            code = spawn_workers(argv, workers, {"MLFLOW_TRACKING_URI": uri})
            if code:
                raise SweepStopped(f"a sweep worker exited with code {code}; see its output above")
        else:
            run_worker(sweep)
        if repeat_best:
            repeat_top(sweep, open_study(spec, url), repeat_best, seeds)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        beat.set()
        try:
            study = finish(spec, url, parent)
        except KeyboardInterrupt:  # Ctrl-C during the final report still ends the sweep KILLED
            status = "KILLED"
            raise
        finally:
            if not launched_by_mlflow:  # else `mlflow run` ends its own run
                tracking.end_run(parent, status)
    return summarize(study, url, parent, uri)


def finish(spec: SweepSpec, url: str, parent: str) -> optuna.Study:
    """The parent's final tags, leaderboard and report; trials of workers that died are ended."""
    study = open_study(spec, url)
    optuna.storages.fail_stale_trials(study)  # a worker killed after its last trial started
    end_dead_trials(study)
    tracking.update_run(parent, best_tags(study), {"leaderboard.csv": leaderboard(study).to_csv()})
    attach_report(parent, study)
    return study


def repeat_top(sweep: Sweep, study: optuna.Study, k: int, seeds: int) -> None:
    """Seed noise: rerun the best `k` complete trials with `seeds` - 1 more training seeds each, as extra
    child runs tagged textclf.repeat_of; repeats already logged (a resumed command) are not run again."""
    if len(study.directions) > 1:
        raise InputError(["--repeat-best: needs a single-objective study"])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    complete.sort(key=lambda t: t.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    done = tracking.repeats_of(sweep.parent_run_id)
    for trial in complete[:k]:
        base = replace(trial_config(sweep.spec, FixedTrial(trial.params), sweep.overrides),
                       tracking__experiment=sweep.experiment)
        for offset in range(1, seeds):
            seed = base.train.seed + offset
            if (str(trial.number), str(seed)) in done:
                continue
            hooks = TrialHooks(sweep.parent_run_id, {"repeat.of_trial": trial.number},
                               {"textclf.repeat_of": str(trial.number), "textclf.study": sweep.spec.name})
            log.info("repeat of trial %d with train.seed=%d", trial.number, seed)
            train_run(replace(base, train__seed=seed), sweep.tracking_uri, hooks)
            _release_memory()


def attach_report(parent: str, study: optuna.Study) -> None:
    """Regenerate the report and attach it to the parent run, so the MLflow UI shows the answer."""
    import tempfile

    from textclf import report

    try:
        with tempfile.TemporaryDirectory() as tmp:
            selection = report.select_runs(parent)
            report.build_report(selection, Path(tmp), study)
            tracking.attach_report(parent, Path(tmp))
    except Exception as e:  # the study's results stand without the report; `textclf report` can redo it
        log.warning("could not build the sweep report: %s", e)


def summarize(study: optuna.Study, url: str, parent: str, uri: str) -> str:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        table = leaderboard(study).drop(columns=["mlflow_run_id"], errors="ignore").head(20)
        if "error" in table:
            table["error"] = table["error"].str.slice(0, 60)
        table = table.to_string()
    return (f"{table}\n\nstudy {study.study_name!r}: {len(study.trials)} trials in {tracking.redact('url', url)}\n"
            f"  optuna.load_study(study_name={study.study_name!r}, storage={tracking.redact('url', url)!r})\n"
            f"parent run {parent} in {uri}")
