"""Sweeps: a sweep file (spec.py: the dataclass and `trial_config`, the one search-space function; load.py:
reading and checking it), the Optuna study (study.py, grid.py), one trial (objective.py), the command
(driver.py) and what follows the trials (results.py). With report/, the only package that imports optuna."""
