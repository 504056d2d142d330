"""Sweeps, the only package that imports optuna: a sweep file (spec.py: the dataclass and
`trial_config`, the one search-space function; spec_file.py: reading and checking it), the Optuna
study (study.py; how it hands out trials: strategies.py, grid.py), one trial (objective.py), the
bookkeeping around trials (records.py), which trials keep models and the best one registered
(best_models.py), the command (sweep.py), and after the trials: seed repeats (repeats.py), the
report (report.py, views.py)."""
