"""Training, plain PyTorch: the loop (loop.py), evaluation (evaluate.py), the end-of-run numbers
(summary.py) and what they need: device and precision, resumable checkpoints, FLOPs for MFU,
metric definitions. Imports neither mlflow nor optuna: it reports through callables."""
