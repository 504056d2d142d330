"""textclf from a notebook, and the one path every command takes (the CLI prints what these return).

`textclf.train`, `textclf.sweep`, `textclf.report`, `textclf.compare` and `textclf.predict` do the
same validation, splits, fingerprints, MLflow runs and artifacts as the commands. Bad input raises
InputError (its `.problems` are the lines the CLI would print); Ctrl-C (KeyboardInterrupt) ends the
run KILLED, as in the CLI. The tools (`serve`, `ui`, `reap`, `sync`, `inspect_data`,
`inspect_model`) are what the commands around the runs call.

    import textclf
    result = textclf.train("configs/quickstart.yaml", ["train.epochs=1"], train=frame)
    result.metrics["test_accuracy"], result.history, result.model_uri
"""

from textclf.api.runs import (
    SweepRequest,
    TrainResult,
    compare,
    predict,
    report,
    sweep,
    train,
    write_report,
)
from textclf.api.tools import (
    UiSession,
    inspect_data,
    inspect_model,
    reap,
    serve,
    sync,
    ui,
)

__all__ = [
    "SweepRequest",
    "TrainResult",
    "UiSession",
    "compare",
    "inspect_data",
    "inspect_model",
    "predict",
    "reap",
    "report",
    "serve",
    "sweep",
    "sync",
    "train",
    "ui",
    "write_report",
]
