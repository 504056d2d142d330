"""Uncertainty for every "better" textclf says: per-row predictions keyed by row, intervals for a
score, and paired tests between two classifiers scored on the same rows. Pure numpy and scipy; no
MLflow, no Optuna."""
