"""What the ranks of a run on several processes and their launcher (launch.py) share: a
directory, named to the ranks by $TEXTCLF_RANKS_DIR, where rank 0 leaves its MLflow run's id as
soon as the run exists (the launcher ends that run if rank 0 cannot) and its result at the end.
The program each rank runs is rank.py."""

from __future__ import annotations

import os
from pathlib import Path

from textclf.training import ddp
from textclf.training.ddp import World

DIRECTORY = "TEXTCLF_RANKS_DIR"  # set by the launcher for its ranks


def announce(world: World, run_id: str | None) -> str:
    """Rank 0's run id on every rank; rank 0 also leaves it for the launcher."""
    if world.main and run_id is not None and os.environ.get(DIRECTORY):
        (Path(os.environ[DIRECTORY]) / "run_id").write_text(run_id)
    said = ddp.from_main(world, run_id)
    if said is None:
        raise RuntimeError("rank 0 announced no run id")
    return said
