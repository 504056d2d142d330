"""The simulated runs the verdicts are checked on (tests/stats, tests/reporting,
bench/verdicts/run.py).

A configuration's run gets row r right when skill + difficulty[r] + taste[r] + its seed's shift +
its seed's noise on that row > 0: rows are mostly learned or not, seeds churn the borderline
ones. With the defaults below a configuration is right on about 85% of 300 rows and its seeds
spread by about 1.5 points of accuracy, as MiniLM's seeds do on a few hundred IMDB validation
rows (docs/benchmarks.md: 0.831 +- 0.001 to 0.829 +- 0.007 on 1,000 test rows; the course
notebooks' tables, which move by 1-2 points between reruns)."""

from __future__ import annotations

import numpy as np


def configuration(
    rng,
    n_seeds: int,
    difficulty: np.ndarray,
    skill: float,
    affinity: np.ndarray,
    seed_sd: float = 0.1,
    churn_sd: float = 0.3,
) -> np.ndarray:
    """Per-row correctness (seeds x rows) of one configuration: row r is right when skill +
    difficulty[r] + affinity[r] (the configuration's own taste for the row) + a seed's shift +
    the seed's noise on that row > 0. seed_sd=0 makes every seed equally good on new rows (they
    differ row by row only)."""
    shift = rng.normal(0, seed_sd, (n_seeds, 1))
    noise = rng.normal(0, churn_sd, (n_seeds, len(difficulty)))
    return (skill + difficulty + affinity + shift + noise > 0).astype(float)


def pair(
    rng,
    n_seeds: int,
    lead: float = 0.0,
    rows: int = 300,
    same_taste: bool = True,
    taste_sd: float = 0.5,
):
    """Two configurations on the same freshly drawn rows; B's skill is `lead` higher (logit scale:
    0.3 is about 4 points of accuracy). same_taste=False gives B its own taste for rows:
    equal on average over new rows, different on these."""
    difficulty = rng.normal(1.6, 1.5, rows)
    taste_a = rng.normal(0, taste_sd, rows)
    taste_b = taste_a if same_taste else rng.normal(0, taste_sd, rows)
    return (
        configuration(rng, n_seeds, difficulty, 0.0, taste_a),
        configuration(rng, n_seeds, difficulty, lead, taste_b),
    )
