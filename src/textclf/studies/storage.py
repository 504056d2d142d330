"""Where a study lives: its storage URL (checked before it is opened), the SQLite storage with
cross-process trial state changes, and opening (creating or resuming) the study with its sampler
and pruner (strategies.py)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import optuna

from textclf.errors import InputError, first_line
from textclf.studies.spec import SweepSpec
from textclf.studies.strategies import make_pruner, make_sampler, strategy
from textclf.tracking import provenance

TrialState = optuna.trial.TrialState


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
    directions = [optuna.study.StudyDirection[d.upper()] for _, d in spec.objectives]
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
