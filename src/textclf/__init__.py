"""textclf: MLflow-tracked experiments for fine-tuning BERT-family text classifiers."""

__version__ = "0.1.0"
