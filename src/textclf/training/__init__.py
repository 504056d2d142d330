"""Training, plain PyTorch: the loop (loop.py) and what it needs: device and precision, resumable
checkpoints, FLOPs for MFU, metric definitions. Imports neither mlflow nor optuna: it reports
through callables."""
