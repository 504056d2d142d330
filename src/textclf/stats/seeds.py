"""Is configuration B better than configuration A? Each side is several training runs of one
configuration that differ only in their training seed, all scored on the same rows. The unit of
replication is the seed, and the rows are a sample too, so the difference of the two configurations'
mean scores carries two sources of noise (docs/methodology.md, "Configurations"):

- seeds: the spread of each side's per-seed scores, s_A^2 / n_A + s_B^2 / n_B (as in Welch's test);
- rows: the variance over rows of the per-row difference of the two configurations' seed-averaged
  scores, divided by the rows. The rows are paired, so rows both configurations get right (or
  wrong) carry no noise. Each per-row difference also holds seed noise that the seed term already
  counts, so its expected share (each row's variance over seeds, divided by the seeds) is
  subtracted: a method-of-moments estimate of the two-level (seeds within configurations, crossed
  with rows) variance components.

The difference over its standard error is referred to Student's t with Welch-Satterthwaite degrees
of freedom over the three terms. With 3 seeds a side that is a t with about 4 degrees of freedom;
tests/stats/test_seeds.py checks by simulation that identical configurations are called different at
most at the nominal rate, and how often real leads are found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from textclf.stats.intervals import LEVEL, f1_scores, resample_rows
from textclf.stats.paired import better_side


@dataclass(frozen=True)
class SeedComparison:
    metric: str  # accuracy, f1 or loss (mean per-row cross-entropy: lower is better)
    a: float  # A's mean over its seeds
    b: float
    difference: float  # b - a
    low: float  # the difference's interval (t, df below)
    high: float
    p_value: float  # two-sided, H0: the two configurations score the same on rows like these
    test: str
    n: int  # rows
    seeds_a: int
    seeds_b: int
    se: float  # standard error of the difference: sqrt(seed_var + row_var)
    seed_se: float  # the seeds' share alone
    row_se: float  # the rows' share alone
    df: float  # Welch-Satterthwaite degrees of freedom

    def better(self, alpha: float) -> str:
        """ "b", "a" or "" (no difference at level alpha), in the metric's own direction."""
        return better_side(self.metric, self.difference, self.p_value, alpha)

    def power(self, lead: float, alpha: float) -> float:
        """The chance that a true lead of `lead` is found at `alpha` with this standard error."""
        return power(lead, self.se, self.df, alpha)

    def detectable(self, alpha: float, target: float = 0.8) -> float:
        """The smallest true lead found with probability `target` at this standard error."""
        return detectable(self.se, self.df, alpha, target)

    def as_dict(self) -> dict:
        return asdict(self)


def mean_scores(metric: str, a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> SeedComparison:
    """A metric that is a mean over rows (accuracy: per-row correctness; loss: per-row loss). `a`,
    `b`: seeds x rows arrays of per-row values, rows in the same order on both sides."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    _check(a, b)
    per_seed = a.mean(1), b.mean(1)
    seed_terms = [float(np.var(s, ddof=1)) / len(s) for s in per_seed]
    per_row = b.mean(0) - a.mean(0)
    within = (np.var(b, axis=0, ddof=1) / len(b) + np.var(a, axis=0, ddof=1) / len(a)).mean()
    paired_rows = float(np.var(per_row, ddof=1)) / a.shape[1]
    row_term = _row_term(paired_rows, float(within) / a.shape[1], seed_terms)
    return _combine(metric, *per_seed, seed_terms, row_term, a.shape[1], level)


def _row_term(paired_rows: float, within: float, seed_terms: list[float]) -> float:
    """The rows' share: the paired rows' variance less the seed noise it holds. With 3 seeds that
    estimate is noisy, and where seeds move rows in opposite directions (one seed predicts the
    majority class, another the minority) it can hide every bit of noise: the total is then never
    let below the paired rows' variance itself (the value the two estimates share when the seeds'
    effects on the rows are independent)."""
    return max(0.0, paired_rows - within, paired_rows - sum(seed_terms))


def f1_scores_over_seeds(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    num_labels: int,
    level: float = LEVEL,
    resamples: int = 1000,
    seed: int = 0,
) -> SeedComparison:
    """F1, which is no mean over rows: the rows' share comes from a paired bootstrap over rows (the
    same rows drawn for every run) of the difference of the two sides' mean F1, less the seed noise
    that the same draws show within each side (the expected growth of the spread over seeds)."""
    labels, a, b = np.asarray(labels), np.asarray(a), np.asarray(b)
    _check(a, b)
    full = [np.array([f1_scores(labels, p, num_labels)[0] for p in side]) for side in (a, b)]
    seed_terms = [float(np.var(s, ddof=1)) / len(s) for s in full]
    drawn: list[list[np.ndarray]] = [[], []]
    for idx in resample_rows(len(labels), resamples, seed):
        for k, side in enumerate((a, b)):
            drawn[k].append(np.stack([f1_scores(labels[idx], p[idx], num_labels) for p in side], 1))
    boot = [np.concatenate(d) for d in drawn]  # resamples x seeds, per side
    spread = boot[1].mean(1) - boot[0].mean(1)
    within = sum(
        (np.var(d, axis=1, ddof=1).mean() - np.var(f, ddof=1)) / d.shape[1]
        for d, f in zip(boot, full, strict=False)
    )
    row_term = _row_term(float(np.var(spread, ddof=1)), max(0.0, float(within)), seed_terms)
    return _combine("f1", full[0], full[1], seed_terms, row_term, len(labels), level)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a configuration needs at least 2 seeds a side ({len(a)} and {len(b)})")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"the two sides were scored on different rows ({a.shape[1]}, {b.shape[1]})"
        )


def _combine(
    metric: str,
    a: np.ndarray,
    b: np.ndarray,
    seed_terms: list[float],
    row_term: float,
    rows: int,
    level: float,
) -> SeedComparison:
    """The difference of the means over its standard error, against Student's t with
    Welch-Satterthwaite degrees of freedom over the three variance terms."""
    from scipy import stats

    difference = float(b.mean() - a.mean())
    terms = [(seed_terms[0], len(a) - 1), (seed_terms[1], len(b) - 1), (row_term, rows - 1)]
    variance = sum(v for v, _ in terms)
    common: dict[str, Any] = dict(  # what both outcomes report
        metric=metric,
        a=float(a.mean()),
        b=float(b.mean()),
        difference=difference,
        test=_TEST,
        n=rows,
        seeds_a=len(a),
        seeds_b=len(b),
        seed_se=float(np.sqrt(sum(seed_terms))),
        row_se=float(np.sqrt(row_term)),
    )
    if variance <= 0:  # every run identical on every row: no noise seen, and no evidence either
        p = 1.0 if difference == 0 else 0.0
        return SeedComparison(
            **common, low=difference, high=difference, p_value=p, se=0.0, df=np.inf
        )
    df = variance**2 / sum(v**2 / d for v, d in terms if v > 0)
    se = float(np.sqrt(variance))
    half = float(stats.t.isf((1 - level) / 2, df)) * se
    return SeedComparison(
        **common,
        low=difference - half,
        high=difference + half,
        se=se,
        p_value=float(2 * stats.t.sf(abs(difference) / se, df)),
        df=float(df),
    )


_TEST = "seeds x rows t test (Welch-Satterthwaite)"


def power(lead: float, se: float, df: float, alpha: float) -> float:
    """P(|T| > t_crit) for T noncentral t with noncentrality lead / se: the two-sided test's chance
    of finding a true lead of `lead`."""
    from scipy import stats

    if se <= 0:
        return 1.0 if lead else alpha
    critical = stats.t.isf(alpha / 2, df)
    shift = abs(lead) / se
    # the far tail is negligible, and scipy's nct gives nan there at large shifts
    far = float(np.nan_to_num(stats.nct.cdf(-critical, df, shift)))
    return float(stats.nct.sf(critical, df, shift)) + far


def detectable(se: float, df: float, alpha: float, target: float = 0.8) -> float:
    """The smallest lead found with probability `target` (scipy's brentq on `power`)."""
    from scipy.optimize import brentq

    if se <= 0:
        return 0.0
    return float(brentq(lambda lead: power(lead, se, df, alpha) - target, 0.0, 50 * se))
