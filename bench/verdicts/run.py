"""bench/verdicts: the error rates and power of textclf's verdicts on simulated runs
(bench/verdicts/simulate.py).

    .venv/bin/python -m bench.verdicts.run [--sims 2000] [--rows 300]

No training: each configuration's runs are per-row correctness drawn from the model in simulate.py,
so what is measured is the statistics, not the models. Prints one JSON line per row of the table in
docs/methodology.md ("How often the verdicts are wrong"), with the machine it ran on (the rates do
not depend on it):

- configurations: identical configurations (and ones equal only on average over new rows) called
  different, and a lead of about 4 points found, by textclf compare's configuration test
  (stats/seeds.py), by the seed-noise rule before it (Welch over seeds and an independent-rows
  bound), and by a model-level McNemar test on one run a side (what `textclf compare A B` answered
  for configurations before);
- promotion: the best of K equal challengers promoted by the champion test, corrected for K and not;
- one primary test: two exchangeable models called "better" on accuracy, F1 or loss (any of three,
  the rule before) and on the primary metric with Holm-adjusted secondaries.
"""

from __future__ import annotations

import json

import numpy as np

from bench.common import machine, parser
from bench.verdicts.simulate import configuration, pair
from textclf.stats import paired, seeds


def configurations(
    rng, sims: int, rows: int, n_seeds: int, lead: float, same_taste: bool = True
) -> dict:
    ours = old = model_level = 0
    for _ in range(sims):
        a, b = pair(rng, n_seeds, lead=lead, rows=rows, same_taste=same_taste)
        ours += seeds.mean_scores("accuracy", a, b).p_value < 0.05
        old += _old_rule(a, b, rows)
        labels = rng.integers(0, 2, rows)
        single = [np.where(side[0] == 1, labels, 1 - labels) for side in (a, b)]
        model_level += paired.accuracy(labels, *single, resamples=10).p_value < 0.05
    return {
        "seeds": n_seeds,
        "rows": rows,
        "lead_logit": lead,
        "same_taste": same_taste,
        "called_different": {
            "configuration test": ours / sims,
            "old seed-noise rule": old / sims,
            "McNemar on one run a side": model_level / sims,
        },
    }


def _old_rule(a: np.ndarray, b: np.ndarray, rows: int) -> bool:
    """Before: Welch's t over the per-seed scores and the lead beyond 1.96 x the independent-rows
    bound."""
    from scipy import stats

    means = a.mean(1), b.mean(1)
    welch = stats.ttest_ind(means[1], means[0], equal_var=False).pvalue < 0.05
    bound = 1.96 * np.sqrt(sum(m.mean() * (1 - m.mean()) / rows for m in means))
    return bool(welch and abs(means[1].mean() - means[0].mean()) > bound)


def promotion(rng, sims: int, rows: int, candidates: int) -> dict:
    corrected = uncorrected = before = 0
    for _ in range(sims):
        difficulty, taste = rng.normal(1.6, 1.5, rows), rng.normal(0, 0.5, rows)
        right = configuration(rng, candidates + 1, difficulty, 0.0, taste, seed_sd=0.0)
        labels = rng.integers(0, 2, rows)
        predicted = [np.where(r == 1, labels, 1 - labels) for r in right]
        best = 1 + int(np.argmax(right[1:].mean(1)))
        corrected += paired.challenger_wins(
            "accuracy", labels, predicted[0], predicted[best], 0.05, candidates
        )[0]
        uncorrected += paired.challenger_wins(
            "accuracy", labels, predicted[0], predicted[best], 0.05
        )[0]
        before += (
            paired.accuracy(labels, predicted[0], predicted[best], resamples=10).better(0.05) == "b"
        )
    return {
        "rows": rows,
        "best_of": candidates,
        "promoted": {
            "one-sided, corrected for the candidates": corrected / sims,
            "one-sided, uncorrected": uncorrected / sims,
            "two-sided at 0.05 (before)": before / sims,
        },
    }


def primary(rng, sims: int, rows: int) -> dict:
    any_of_three = primary_only = 0
    for s in range(sims):
        difficulty, taste = rng.normal(1.6, 1.5, rows), rng.normal(0, 0.5, rows)
        a, b = (configuration(rng, 1, difficulty, 0.0, taste, seed_sd=0.0) for _ in range(2))
        labels = rng.integers(0, 2, rows)
        pa, pb = (np.where(side[0] == 1, labels, 1 - labels) for side in (a, b))
        losses = [np.where(side[0] == 1, 0.2, 1.6) + rng.exponential(0.1, rows) for side in (a, b)]
        tests = [
            paired.accuracy(labels, pa, pb, resamples=10),
            paired.f1(labels, pa, pb, 2, resamples=300, seed=s),
            paired.loss(*losses, resamples=300, seed=s),
        ]
        any_of_three += any(t.p_value < 0.05 for t in tests)
        primary_only += tests[0].p_value < 0.05
    return {
        "rows": rows,
        "models": "exchangeable row by row",
        "called_better": {
            "any of accuracy, F1, loss (before)": any_of_three / sims,
            "the primary metric": primary_only / sims,
        },
    }


def main() -> None:
    args = parser(__doc__, sims=2000, rows=300).parse_args()
    rng = np.random.default_rng(0)
    table = [
        configurations(rng, args.sims, args.rows, 3, 0.0),
        configurations(rng, args.sims, args.rows, 5, 0.0),
        configurations(rng, args.sims, args.rows, 3, 0.0, same_taste=False),
        configurations(rng, args.sims // 4, args.rows, 3, 0.3),
        configurations(rng, args.sims // 4, args.rows, 5, 0.3),
        *(promotion(rng, args.sims // 2, args.rows, k) for k in (1, 8, 20)),
        primary(rng, args.sims // 4, args.rows),
    ]
    for row in table:
        print(json.dumps({**row, "sims": args.sims, "machine": machine()}))
    print(
        "# rerun: .venv/bin/python -m bench.verdicts.run "
        + f"--sims {args.sims} --rows {args.rows}"
    )


if __name__ == "__main__":
    main()
