"""textclf: MLflow-tracked experiments for fine-tuning BERT-family text classifiers."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`textclf.train`, `.sweep`, `.report`, `.compare`, `.predict` (api/), imported when used."""
    if name in ("train", "sweep", "report", "write_report", "compare", "predict", "TrainResult"):
        from textclf import api

        return getattr(api, name)
    raise AttributeError(f"module 'textclf' has no attribute {name!r}")
