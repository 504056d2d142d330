"""A run on several processes (train.devices = N): torch.distributed.run's own launcher
(`elastic_launch`, the engine behind torchrun, in this process) starts N ranks of
`python -m textclf.run.rank SPEC`, each in its own session, on 127.0.0.1.

Before any rank starts, this process runs every check a single run does (prepare: bad input exits
2) and tokenizes once for all of them (the ranks read the token cache). Then it watches:

- every rank ends 0: rank 0's result is the run's;
- a rank fails (an error, a kill): the launcher stops the others (SIGTERM, then SIGKILL after
  SHUTDOWN_S), ends the MLflow run FAILED with the failure as its textclf.error tag (rank 0 may have
  died before it could), and raises RanksFailed (exit 1);
- Ctrl-C or SIGTERM here: the ranks get the same signal, rank 0 ends the run KILLED (or the
  launcher does), exit 130 or 143.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textclf import environment, interrupts
from textclf.config import Config, dump_yaml
from textclf.data.source import Source
from textclf.errors import InputError, RanksFailed, Terminated
from textclf.run.hooks import TrialHooks
from textclf.run.prepare import prepare
from textclf.run.ranks import DIRECTORY
from textclf.tracking import runs
from textclf.training.device import cpu_threads, pick_device

log = logging.getLogger(__name__)
SHUTDOWN_S = 8  # a failed or signalled group: SIGTERM to the ranks, SIGKILL this much later


def train_on_ranks(
    cfg: Config,
    tracking_uri: str,
    resume: str | None,
    source: Source | None,
    trial: TrialHooks | None = None,
) -> dict:
    """train_run on cfg.train.devices processes; rank 0's result (a RunResult's fields). A sweep
    trial's ranks run the program its hooks name, which rebuilds them on rank 0."""
    if source is not None:
        raise InputError(
            [
                f"{cfg.where('train.devices')}: train.devices: {cfg.train.devices} processes "
                "cannot share data given in memory; save it and name it in data.name"
            ]
        )
    prepare(cfg, resume)  # every check, and the token cache filled once for all the ranks
    gc.collect()
    with tempfile.TemporaryDirectory(prefix="textclf-ranks-") as tmp:
        directory = Path(tmp)
        (directory / "config.yaml").write_text(dump_yaml(cfg))
        spec: dict[str, Any] = {"config": str(directory / "config.yaml"), "resume": resume}
        spec |= {"tracking_uri": tracking_uri, "trial": trial.on_ranks if trial else None}
        entry = trial.on_ranks["entry"] if trial and trial.on_ranks else "textclf.run.rank"
        return launch(entry, directory, spec, cfg, tracking_uri)


def launch(entry: str, directory: Path, spec: dict, cfg: Config, tracking_uri: str) -> dict:
    """Run `python -m ENTRY DIRECTORY/spec.json` on cfg.train.devices ranks; rank 0's result."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    (directory / "spec.json").write_text(json.dumps(spec))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=cfg.train.devices,
        run_id=f"textclf-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # a free port on loopback only
        local_addr="127.0.0.1",
        max_restarts=0,
        monitor_interval=0.5,
        shutdown_timeout=SHUTDOWN_S,
        logs_specs=DefaultLogsSpecs(log_dir=str(directory / "logs")),
    )
    logging.getLogger("torch.distributed.elastic").setLevel(logging.WARNING)
    try:
        with rank_environment(cfg, directory):
            elastic_launch(config, sys.executable)("-m", entry, str(directory / "spec.json"))
    except SignalException as e:
        _settle(directory, tracking_uri, "KILLED", f"stopped by {e.sigval.name}")
        raise (Terminated if e.sigval == signal.SIGTERM else KeyboardInterrupt)() from None
    except ChildFailedError as e:
        why = "; ".join(_failure(rank, f) for rank, f in sorted(e.failures.items()))
        _settle(directory, tracking_uri, "FAILED", why)
        raise RanksFailed(why) from None
    finally:
        interrupts.install()  # the launcher's signal handlers replaced ours
    return json.loads((directory / "result.json").read_text())


@contextlib.contextmanager
def rank_environment(cfg: Config, directory: Path) -> Iterator[None]:
    """What the ranks inherit: where to leave their results; on CPU, each its share of the
    command's threads, and gloo on the loopback interface."""
    added = {DIRECTORY: str(directory)}
    if pick_device(cfg.train.device).type == "cpu":
        # the command's thread budget ($OMP_NUM_THREADS, or its cores), shared by its ranks
        added |= {"OMP_NUM_THREADS": str(max(1, cpu_threads() // cfg.train.devices))}
        if sys.platform == "linux":
            added |= {"GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME") or "lo"}
    with environment.setting(added):
        yield


def _failure(rank: int, failure) -> str:
    code = failure.exitcode
    if code < 0:
        return f"rank {rank} was killed by {signal.Signals(-code).name}"
    return f"rank {rank} exited with {code}"


def _settle(directory: Path, tracking_uri: str, status: str, why: str) -> None:
    """End rank 0's MLflow run with `status` if it could not (or ended it KILLED for a failure)."""
    known = directory / "run_id"
    if known.is_file():
        with contextlib.suppress(Exception):  # the tracking server may be what failed
            runs.settle(tracking_uri, known.read_text().strip(), status, why)
