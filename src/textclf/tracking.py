"""The one module that talks to MLflow: where runs go, how a run ends, and what it logs.

Tracking URI, first that is set: --tracking-uri, $MLFLOW_TRACKING_URI, tracking.uri in the config, then an
embedded SQLite store `mlflow.db` in the working directory (artifacts beside it in `mlartifacts/`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import torch
import transformers

import textclf
from textclf import artifact, plots
from textclf.spool import Spool
from textclf.config import SECRET_VALUE, Config, dump_yaml
from textclf.data import Splits
from textclf.errors import InputError

log = logging.getLogger(__name__)
MODEL_ARTIFACT = "model"
HEARTBEAT, HEARTBEAT_S, REAPED = "textclf.heartbeat", "textclf.heartbeat_s", "no heartbeat"
EPOCH_KEYS = {"train_val_loss_ratio": "epoch_train_val_loss_ratio"}
# experiment tag that makes the MLflow 3 UI open the training-runs table instead of its GenAI view
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
_SECRET_KEY = re.compile(r"token|password|passwd|secret|api[_-]?key|credential", re.I)


def tracking_uri(flag: str | None, cfg: Config) -> str:
    return resolve_uri(flag, cfg)[0]


def resolve_uri(flag: str | None, cfg: Config) -> tuple[str, str]:
    """(URI, where it came from, for messages)."""
    if flag:
        return flag, f"--tracking-uri {flag}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], f"$MLFLOW_TRACKING_URI {os.environ['MLFLOW_TRACKING_URI']}"
    if cfg.tracking.uri:
        return cfg.tracking.uri, f"{cfg.where('tracking.uri')}: tracking.uri {cfg.tracking.uri}"
    return f"sqlite:///{Path('mlflow.db').resolve()}", f"the default tracking store sqlite:///{Path('mlflow.db').resolve()}"


URI_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def check_uri(uri: str, origin: str, must_exist: bool = False, timeout_s: float = 5.0) -> None:
    """Before anything is loaded or created: a scheme MLflow knows, a server that answers (one request with
    a short timeout), and for commands that only read (`must_exist`) a SQLite store that is there."""
    scheme = urllib.parse.urlparse(uri).scheme.split("+")[0].lower()
    if scheme not in URI_SCHEMES:
        raise InputError([f"{origin}: unknown scheme {scheme!r}; use sqlite:///FILE (the default), http://HOST:PORT "
                          f"(textclf server), file:DIR or postgresql://USER@HOST/DB"])
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            urllib.request.urlopen(health, timeout=timeout_s).close()
        except urllib.error.HTTPError:
            pass  # a server answered (authentication or routing is its business)
        except (urllib.error.URLError, OSError) as e:
            raise InputError([f"{origin}: no MLflow tracking server answered GET {health} within {timeout_s:g} s "
                              f"({getattr(e, 'reason', e)}); start one (textclf server) or fix the URI"]) from None
    if must_exist and scheme == "sqlite" and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise InputError([f"{origin}: no MLflow tracking store there; run where mlflow.db is, or pass --tracking-uri"])


def connect(uri: str, experiment: str) -> None:
    """Point MLflow at `uri` and select (or create) the experiment."""
    mlflow.set_tracking_uri(uri)
    if os.environ.get("MLFLOW_RUN_ID"):  # `mlflow run` made our run, in the experiment it was told
        return
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if uri.startswith("sqlite:///"):  # embedded store: artifacts next to the database file
            location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # another worker may create it first
            mlflow.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_KIND)
    mlflow.set_experiment(experiment)
    for run_id in reap(experiment):  # runs of processes that died without ending them (kill -9)
        log.warning("run %s had stopped sending heartbeats; ended it FAILED", run_id)


@contextlib.contextmanager
def run(cfg: Config, tags: dict[str, str], parent_run_id: str | None = None,
        killed_by: tuple[type[BaseException], ...] = (), resume: str | None = None) -> Iterator[str]:
    """An MLflow run that always ends: FINISHED, KILLED on Ctrl-C/SIGTERM or a `killed_by` exception (a
    pruned trial), FAILED (with the error as a tag). With a parent it is that run's child. `resume`: the
    id of an earlier run to continue (it is RUNNING again; epochs it already has are not logged twice)."""
    global _spool
    if resume:
        active = mlflow.start_run(run_id=resume)
        _clear_reaped(active)
    else:
        active = mlflow.start_run(run_name=cfg.tracking.run_name, tags=tags, parent_run_id=parent_run_id)
    _spool, status = _spool_for(active.info.run_id), "FAILED"
    _spool.uncertain = bool(resume)  # the killed process may have logged epochs after its last checkpoint
    beat = heartbeat(active.info.run_id, cfg.tracking.heartbeat_s)
    try:
        yield active.info.run_id
        status = "FINISHED"
    except (KeyboardInterrupt, *killed_by):
        status = "KILLED"
        raise
    except BaseException as e:
        with contextlib.suppress(Exception):  # the error may be the tracking server itself
            mlflow.set_tag("textclf.error", f"{type(e).__name__}: {e}"[:4000])
        raise
    finally:
        try:
            if status != "FINISHED":  # what the epochs logged is kept, if the server answers soon
                with contextlib.suppress(TimeoutError):
                    _spool.drain(min(cfg.tracking.outage_wait_s, 30.0))
        finally:
            _spool = None
            beat.set()
            if status == "FINISHED":  # reaped by mistake while the server was away: it is alive after all
                with contextlib.suppress(Exception):
                    _clear_reaped(mlflow.get_run(active.info.run_id))
            mlflow.end_run(status)


def _clear_reaped(run) -> None:
    """Undo `reap` on a run that is running after all (resumed, or back after an outage)."""
    if run.data.tags.get("textclf.error", "").startswith(REAPED):
        mlflow.MlflowClient().delete_tag(run.info.run_id, "textclf.error")


_spool: Spool | None = None  # the active run's per-epoch metrics, held while the server is unreachable


def _spool_for(run_id: str) -> Spool:
    def send(entries):
        with _fail_fast():
            mlflow.MlflowClient().log_batch(run_id, metrics=[
                mlflow.entities.Metric(key, value, timestamp, step) for key, value, step, timestamp in entries])

    def known(keys):
        with _fail_fast():
            client = mlflow.MlflowClient()
            return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}

    return Spool(send, known)


@contextlib.contextmanager
def _fail_fast(timeout_s: int = 1) -> Iterator[None]:
    """One attempt with a short timeout for HTTP stores (MLflow reads these per request); the spool retries."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def heartbeat(run_id: str, every_s: float) -> threading.Event:
    """Tag the run `textclf.heartbeat` (unix seconds) every `every_s` from a daemon thread until the
    returned event is set. A run that stays RUNNING with a stale heartbeat belongs to a dead process
    (kill -9, lost machine): `reap` ends it FAILED."""
    stop, client = threading.Event(), mlflow.MlflowClient()

    def beat():
        missed = False
        while True:
            try:  # MLflow's own retries: this thread may wait; training does not
                client.set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")
                if missed:  # back after an outage long enough for another process to have reaped us
                    run = client.get_run(run_id)
                    if run.info.status == "FAILED" and not stop.is_set():
                        client.update_run(run_id, status="RUNNING")
                        _clear_reaped(run)
                missed = False
            except Exception:
                missed = True
            if stop.wait(every_s):
                return

    client.set_tag(run_id, HEARTBEAT_S, f"{every_s:g}")
    threading.Thread(target=beat, daemon=True, name="textclf-heartbeat").start()
    return stop


def reap(experiment: str, now: float | None = None) -> list[str]:
    """End FAILED every RUNNING run of `experiment` whose heartbeat is older than 4 of its intervals;
    returns their ids. Runs without a heartbeat tag (not made by textclf) are left alone."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    now, reaped = now or time.time(), []
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        last, every = run.data.tags.get(HEARTBEAT), run.data.tags.get(HEARTBEAT_S)
        if last and every and now - float(last) > 4 * float(every):
            end_dead(run.info.run_id, f"{REAPED} for {now - float(last):.0f} s: the process died (killed, "
                                      f"or its machine was lost)")
            reaped.append(run.info.run_id)
    return reaped


def end_dead(run_id: str, reason: str) -> bool:
    """A run whose process is gone: FAILED with the reason, if it is still RUNNING."""
    client = mlflow.MlflowClient()
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    client.set_tag(run_id, "textclf.error", reason)
    client.set_terminated(run_id, "FAILED")
    return True


def fail_if_finished(run_id: str, reason: str) -> None:
    """A run that ended FINISHED but whose trial then failed (no objective value): FAILED, with the reason."""
    client = mlflow.MlflowClient()
    if client.get_run(run_id).info.status == "FINISHED":
        client.set_tag(run_id, "textclf.error", reason[:4000])
        client.set_terminated(run_id, "FAILED")


def failed_child(cfg: Config, parent_run_id: str, params: dict, tags: dict, error: str) -> str:
    """A FAILED child run for a trial whose config was rejected before training could start."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    child = client.create_run(parent.info.experiment_id, tags={**tags, "mlflow.parentRunId": parent_run_id,
                                                                "textclf.error": error[:4000]})
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # params as far as they are known
        client.log_batch(child.info.run_id, params=[
            mlflow.entities.Param(k, redact(k, v)[:6000]) for k, v in {**cfg.flat(), **params}.items()])
    client.set_terminated(child.info.run_id, "FAILED")
    return child.info.run_id


def start_parent(experiment: str, run_name: str, tags: dict[str, str], reuse: dict[str, str]) -> str:
    """The sweep's parent run: the one whose tags match `reuse` (a resumed study), else a new one. Sweeps
    started at once on several machines may each create one; all then keep the oldest, and delete theirs."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in reuse.items())
    matching = client.search_runs([found.experiment_id], query, order_by=["attributes.start_time ASC"])
    if not matching:
        mine = client.create_run(found.experiment_id, run_name=run_name, tags={**tags, **reuse}).info.run_id
        matching = client.search_runs([found.experiment_id], query, order_by=["attributes.start_time ASC"])
        if matching[0].info.run_id != mine:
            client.delete_run(mine)
    run_id = matching[0].info.run_id
    client.update_run(run_id, status="RUNNING")
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return run_id


def update_run(run_id: str, tags: dict[str, str], files: dict[str, str]) -> None:
    """Tags and small text files on any run by id (a sweep's parent or a trial's child), no active run needed."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for name, text in files.items():
        client.log_text(run_id, text, name)


def experiment_of(run_id: str) -> str:
    client = mlflow.MlflowClient()
    return client.get_experiment(client.get_run(run_id).info.experiment_id).name


def repeats_of(parent_run_id: str) -> set[tuple[str, str]]:
    """(trial number, train.seed) of the seed-repeat runs already logged under a parent."""
    client = mlflow.MlflowClient()
    experiment = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                                            f"tags.`textclf.repeat_of` != ''")
    return {(r.data.tags["textclf.repeat_of"], r.data.params.get("train.seed", "")) for r in runs
            if r.info.status == "FINISHED"}


def connect_read(uri: str) -> None:
    mlflow.set_tracking_uri(uri)


def attach_report(run_id: str, directory: Path) -> None:
    mlflow.MlflowClient().log_artifacts(run_id, str(directory), "report")


def delete_run(run_id: str) -> None:
    mlflow.MlflowClient().delete_run(run_id)


def end_run(run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
    client = mlflow.MlflowClient()
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, status)


def run_tags(splits: Splits, device: torch.device) -> dict[str, str]:
    commit, dirty = _git_state()
    tags = {"textclf.split_fingerprint": splits.fingerprint, "textclf.eval_fingerprint": splits.eval_fingerprint,
            "textclf.git_commit": commit,
            "textclf.git_dirty": dirty, "textclf.device": describe_device(device),
            "textclf.version": textclf.__version__, "textclf.data_uri": splits.uri}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    return tags


def log_setup(cfg: Config, splits: Splits, derived: dict[str, Any]) -> None:
    """Params (flat, namespaced), the resolved config, and the three splits as dataset inputs."""
    params = {**cfg.flat(), **derived}
    mlflow.log_params({k: redact(k, v) for k, v in params.items()})
    mlflow.log_text(dump_yaml(cfg), "config.yaml")
    with warnings.catch_warnings():  # MLflow guesses a source type for plain paths and warns about it
        warnings.simplefilter("ignore")
        for split, frame in splits.frames().items():
            dataset = mlflow.data.from_pandas(frame, source=splits.uri, targets="label",
                                              name=f"{cfg.data.name}:{split}")
            _log_input(dataset, split)


def _log_input(dataset, context: str, attempts: int = 3) -> None:
    """Workers of one sweep log the same dataset at once: MLflow's store inserts it after checking that it
    is not there, and the slower insert fails on the unique key. The dataset then exists: link to it again."""
    for attempt in range(attempts):
        try:
            return mlflow.log_input(dataset, context=context)
        except mlflow.exceptions.MlflowException as e:
            if attempt == attempts - 1 or not re.search(r"UNIQUE constraint|IntegrityError|duplicate key", str(e)):
                raise
            time.sleep(0.2 * (attempt + 1))


def log_trainable(names: list[str]) -> None:
    """The tensors that train, one name per line: what a freeze preset or peft method chose."""
    mlflow.log_text("\n".join(names) + "\n", "trainable_parameters.txt")


def log_epoch(metrics: dict[str, float], epoch: int) -> None:
    """Through the spool: training goes on while the tracking server is away (spool.py)."""
    # the final `train_val_loss_ratio` is the best epoch's; the per-epoch series needs its own key, or
    # MLflow's "latest value" (highest step) would show the last epoch's ratio under the final name
    _spool.add({EPOCH_KEYS.get(k, k): v for k, v in metrics.items()}, epoch)
    _spool.flush()


def drain(wait_s: float) -> dict[str, float]:
    """Send what the spool holds (waiting up to `wait_s` for the server); how logging fared in training."""
    _spool.drain(wait_s)
    return {"tracking_longest_wait_s": _spool.longest_wait_s, "tracking_failed_sends": _spool.failures}


def log_results(final: dict[str, float], history: list[dict[str, float]], best_epoch: int,
                confusion: dict) -> None:
    mlflow.log_metrics(final)
    mlflow.log_dict(confusion, "confusion_matrix.json")
    for name, figure in (("curves.png", plots.curves(history, best_epoch)),
                         ("confusion_matrix.png", plots.confusion_figure(
                             confusion["matrix"], confusion["labels"], "test confusion matrix"))):
        mlflow.log_figure(figure, name)
        plots.plt.close(figure)


def log_model(model: torch.nn.Module, tokenizer, max_length: int, base: str, save_base: bool) -> str:
    """The fine-tuned weights (safetensors) and tokenizer as an MLflow model: the transformers flavor for
    a plain classifier, else textclf's own directory behind a pyfunc model from code."""
    model = model.to("cpu").eval()
    if not artifact.is_plain(model):
        return _log_textclf_model(model, tokenizer, max_length, base, save_base)
    quiet = logging.getLogger("mlflow.transformers")
    level, quiet.level = quiet.level, logging.ERROR  # model card / license lookups fail offline: harmless
    try:
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer}, name=MODEL_ARTIFACT,
            task="text-classification", pip_requirements=requirements(),
            model_config={"truncation": True, "max_length": max_length})
    finally:
        quiet.level = level
    return info.model_uri


def _log_textclf_model(model, tokenizer, max_length: int, base: str, save_base: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "model_dir"
        artifact.save_model_dir(model, tokenizer, directory, max_length, base, save_base)
        mlflow.log_metric("model_artifact_mb", artifact.size_mb(directory))
        with warnings.catch_warnings():  # it asks for type hints, which would make it coerce inputs
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT, python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"model_dir": str(directory)}, pip_requirements=requirements())
    return info.model_uri


def attach_to_mlflow_run(name: str, text: str) -> None:
    """Under `mlflow run`, keep a command's output in the run it created (else that run stays empty)."""
    if os.environ.get("MLFLOW_RUN_ID"):
        with mlflow.start_run():
            mlflow.log_text(text, name)


def requirements() -> list[str]:
    # given explicitly: MLflow's inference imports torchvision, which is not installed (shared/NOTES.md).
    # textclf itself is not listed: the logged model is a plain transformers model and textclf is not on PyPI
    return [f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}",
            f"mlflow=={mlflow.__version__}"]


def redact(key: str, value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    if _SECRET_KEY.search(key) or SECRET_VALUE.match(text):
        return "<redacted>"
    return re.sub(r"://([^:/@]+):[^@/]+@", r"://\1:<redacted>@", text)  # passwords in URIs


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return f"{device} ({torch.get_num_threads()} threads)"


def _git_state() -> tuple[str, str]:
    where = Path(textclf.__file__).parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit, str(bool(dirty)).lower()
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
