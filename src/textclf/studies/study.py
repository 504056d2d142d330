"""The Optuna side of a sweep: its storage (checked before it is opened), samplers and pruners, and
the per-trial table and best-trial tags written to the parent run.

Trial state -> child run status: COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED (reason
tagged).
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import optuna

from textclf.errors import InputError, first_line
from textclf.studies import grid
from textclf.studies.spec import GRID_POINT, SweepSpec
from textclf.studies.strategies import strategy
from textclf.tracking import provenance

STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


STATE_RANK = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2}


TrialState = optuna.trial.TrialState


FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def storage_url(spec: SweepSpec, flag: str | None) -> str:
    return flag or spec.storage or f"sqlite:///{Path('optuna.db').resolve()}"


STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


def check_storage(spec: SweepSpec, url: str, origin: str) -> None:
    """A storage URL Optuna can open, and no existing study of this name with other objective
    directions (reopening it would fail every trial). Reads only: a missing SQLite file is not
    created."""
    scheme = url.partition(":")[0].split("+")[0].lower()
    if scheme not in STORAGE_SCHEMES:
        raise InputError(
            [
                f"{origin}: unknown scheme {scheme!r}; use sqlite:///FILE (the default) "
                "or postgresql://USER@HOST:PORT/DB"
            ]
        )
    file = Path(url.removeprefix("sqlite:///"))
    if scheme == "sqlite" and file.exists() and not file.is_file():
        raise InputError([f"{origin}: {file} is a directory, not a SQLite file; name a file"])
    if scheme == "sqlite" and not file.is_file():
        return
    try:
        if not _has_studies(url):
            return  # an empty database: Optuna creates its tables when the study is created
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
        found = storage.get_study_directions(storage.get_study_id_from_name(spec.name))
    except KeyError:
        return  # no such study yet
    except Exception as e:  # unreachable server, not an Optuna database: one line, not a traceback
        raise InputError(
            [f"{origin}: cannot open it ({type(e).__name__}: {first_line(e)})"]
        ) from None
    wanted = [optuna.study.StudyDirection[d.upper()] for _, d in spec.objectives]
    if list(found) != wanted:
        names = lambda ds: ", ".join(d.name.lower() for d in ds)  # noqa: E731
        where = provenance.redact("url", url)
        raise InputError(
            [
                f"{spec.path}: objective: study {spec.name!r} in {where} was created to "
                f"{names(found)}, the spec asks to {names(wanted)}; give the spec "
                "another study.name, or delete the old study (optuna delete-study "
                f"--study-name {spec.name} --storage URL)"
            ]
        )


def _has_studies(url: str) -> bool:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return sqlalchemy.inspect(engine).has_table("studies")
    finally:
        engine.dispose()


# trial and study user attribute: the evaluation rows (data/splits.py eval fingerprint) a trial was
# scored on; on the study, the base config's
EVAL = "eval_fingerprint"


def open_study(spec: SweepSpec, url: str, worker: int = 0) -> optuna.Study:
    """Create or resume the study. Heartbeats let a crashed worker's trial be failed, not RUNNING
    forever (and, in a grid, its point be enqueued again)."""
    engine = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    retry = strategy(spec).on_stale()
    heartbeat = max(1, round(spec.heartbeat_s))
    kind = SQLiteStorage if url.startswith("sqlite:///") else optuna.storages.RDBStorage
    storage = kind(
        url,
        engine_kwargs=engine,
        heartbeat_interval=heartbeat,
        grace_period=4 * heartbeat,
        heartbeat_stale_trial_callback=retry,
    )
    directions = [d for _, d in spec.objectives]
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        sampler=make_sampler(spec, worker),
        pruner=make_pruner(spec),
        directions=directions,
        load_if_exists=True,
    )
    history = len(study.get_trials(deepcopy=False))
    # a resumed study: a seed of its own, or the sampler replays what this worker proposed before
    if history:
        study.sampler = make_sampler(spec, worker, history)
    return study


class SQLiteStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage on a SQLite file, with trial state changes serialized across processes
    by a lock file beside it. SQLite has no row locks (Optuna's SELECT ... FOR UPDATE is a no-op
    there), so two workers could both see a WAITING trial, both set it RUNNING and both run it
    (three processes popped 60 waiting trials 73 times), and two could both fail one stale trial."""

    def __init__(self, url: str, **kwargs):
        super().__init__(url, **kwargs)
        self.lock_path = url.removeprefix("sqlite:///") + ".lock"

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its process dies
            return super().set_trial_state_values(trial_id, state, values)


def make_sampler(spec: SweepSpec, worker: int = 0, history: int = 0) -> optuna.samplers.BaseSampler:
    """Worker i of a study gets its own seed, derived from the study seed (reproducible): with one
    seed in every worker, random and TPE samplers propose the same values in every worker.
    `history`, the trials the study held when this worker opened it, makes each resumption's seed
    its own: with the worker index alone a re-run command (or a restarted pod) drew the same values
    again."""
    # a fresh study's seeds as before
    entropy = [spec.seed, worker, *([history] if history else [])]
    seed = (
        spec.seed
        if worker == history == 0
        else int(np.random.SeedSequence(entropy).generate_state(1)[0])
    )
    return strategy(spec).sampler(seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    args = dict(spec.pruner_args)
    try:
        return {
            "none": optuna.pruners.NopPruner,
            "median": optuna.pruners.MedianPruner,
            "hyperband": optuna.pruners.HyperbandPruner,
            "threshold": optuna.pruners.ThresholdPruner,
        }[spec.pruner](**args)
    except (TypeError, ValueError) as e:  # an unknown argument, or a value Optuna rejects
        raise InputError(
            [f"{spec.path}: study.pruner_args: {e} (Optuna's {spec.pruner} pruner)"]
        ) from None


def comparable(study: optuna.Study, rows: str | None) -> list[optuna.trial.FrozenTrial]:
    """Complete trials scored on the evaluation rows `rows` (an eval fingerprint; trials recorded
    before textclf kept it count as the base config's). A grid over data.seed scores each seed on
    other rows: their values differ by the rows as much as by the models, so "best" is only chosen
    among trials on the same rows."""
    base = study.user_attrs.get(EVAL)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(EVAL, base) == rows
    ]


def candidates(study: optuna.Study) -> int:
    """How many trials the best was chosen among on the base config's rows: the complete ones and
    those pruned on the same rows (they could have completed). The champion test corrects for them
    (registry.SELECTED_FROM)."""
    base = study.user_attrs.get(EVAL)
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.user_attrs.get(EVAL, base) == base
    )


def best_trials(study: optuna.Study, rows: str | None = None) -> list[optuna.trial.FrozenTrial]:
    """The best complete trials on `rows` (default: the base config's rows, the study's EVAL
    attribute): the one best for a single objective, the Pareto front for several; [] when no trial
    was scored on them."""
    group = comparable(study, rows or study.user_attrs.get(EVAL))
    signs = [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]
    if len(signs) == 1:
        return sorted(group, key=lambda t: (-signs[0] * t.values[0], t.number))[:1]

    def dominated(t) -> bool:
        return any(
            all(s * u >= s * v for s, u, v in zip(signs, o.values, t.values))
            and o.values != t.values
            for o in group
        )

    return [t for t in group if not dominated(t)]


def best_tags(study: optuna.Study) -> dict[str, str]:
    """The parent run's best-trial tags: the best among trials on the base config's rows."""
    front = best_trials(study)
    if not front:
        return {}
    best = front[0]
    tags = {
        "best_trial": str(best.number),
        "best_run_id": best.user_attrs.get("mlflow_run_id", ""),
        "best_value": json.dumps(best.values),
    }
    if len(study.directions) > 1:
        tags["pareto_trials"] = ",".join(str(t.number) for t in front)
    return tags


def trial_table(study: optuna.Study):
    """One row per trial: state, objective value(s), varied config values, key metrics, duration,
    MLflow run id, error; best first."""
    frame = study.trials_dataframe(
        attrs=(
            "number",
            "state",
            "value" if len(study.directions) == 1 else "values",
            "params",
            "user_attrs",
            "duration",
        )
    )
    frame.columns = [c.removeprefix("params_").removeprefix("user_attrs_") for c in frame.columns]
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if grid.DUPLICATE in frame:  # trials that found their grid point taken ran nothing
        frame = frame[frame.pop(grid.DUPLICATE).isna()]
    if "duration" in frame:
        frame["duration_s"] = frame.pop("duration").dt.total_seconds().round(1)
    last = [c for c in ("mlflow_run_id", "error") if c in frame]
    frame = frame[[c for c in frame.columns if c not in last and c != GRID_POINT] + last]
    values = [c for c in frame.columns if c == "value" or c.startswith("values_")]
    # complete trials first, then pruned, failed, running; each by the objective
    if values and len(frame):
        ascending = [d == optuna.study.StudyDirection.MINIMIZE for d in study.directions]
        rank = frame["state"].map(STATE_RANK).fillna(len(STATE_RANK))
        frame = (
            frame.assign(_rank=rank)
            .sort_values(
                ["_rank", *values], ascending=[True, *ascending], na_position="last", kind="stable"
            )
            .drop(columns="_rank")
        )
    return frame.set_index("number")


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward the target: complete, pruned, or failed by their own error. A trial
    that failed because its worker died (heartbeat) or was interrupted has no error and does not
    count: it is retried (study.retries) or its budget goes to a new trial."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
        if t.state != optuna.trial.TrialState.FAIL or "error" in t.user_attrs
    )
