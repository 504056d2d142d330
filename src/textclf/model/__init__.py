"""Models: a checkpoint loaded (build.py), its head (heads.py), what trains (freeze.py,
peft_tuning.py), and textclf's own saved form with a Predictor over any classifier (saved.py)."""
