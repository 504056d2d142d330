"""The program each rank of a run on several processes runs, as the launcher (launch.py) starts
it:

    python -m textclf.run.rank DIRECTORY/spec.json

The spec names the resolved config (a YAML file beside it), the tracking URI and the run to resume.
Every rank runs train_run on its share (rank 0 alone talks to MLflow) and rank 0 writes
DIRECTORY/result.json. A rank that rank 0 stopped (StoppedByMain: a pruned trial) ends with exit 0;
Ctrl-C 130, SIGTERM 143.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from textclf import interrupts
from textclf.config import Config, load_config, replace
from textclf.errors import Terminated
from textclf.run import TrialHooks, train_run
from textclf.training.ddp import StoppedByMain


def main(spec_path: str, hooks_of: Callable[[dict, Config], TrialHooks] | None = None) -> NoReturn:
    """Rank $RANK's part of the run `spec_path` describes; `hooks_of` gives rank 0 its trial's
    hooks (studies/trial_rank.py). Every way out leaves the process at once (interrupts.leave),
    inside the handler where there is one: the exception's traceback holds the model in
    DistributedDataParallel, and freeing that after the process group is gone joins gloo's
    threads while holding the GIL one of them waits for (a hang seen with torch 2.13)."""
    interrupts.install()
    spec = json.loads(Path(spec_path).read_text())
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s")
    cfg = load_config(spec["config"])
    if rank:  # one progress bar on the terminal: rank 0's
        cfg = replace(cfg, train__progress=False)
    result_file = Path(spec_path).parent / "result.json"
    hooks = hooks_of(spec, cfg) if hooks_of and rank == 0 else None
    try:
        result = train_run(cfg, spec["tracking_uri"], hooks, resume=spec.get("resume"))
    except StoppedByMain as e:
        logging.getLogger(__name__).info("rank %d: stopped by rank 0 (%s)", rank, e)
        interrupts.leave(0)
    except KeyboardInterrupt as e:
        interrupts.leave(143 if isinstance(e, Terminated) else 130)
    except Exception as e:
        if hooks and isinstance(e, hooks.killed_by):  # a pruned trial: the worker marks it
            result_file.write_text(json.dumps({"stopped": str(e)}))
            interrupts.leave(0)
        traceback.print_exc()
        interrupts.leave(1)
    if rank == 0:
        result_file.write_text(json.dumps(dataclasses.asdict(result), default=float))
    interrupts.leave(0)


if __name__ == "__main__":
    main(sys.argv[1])
