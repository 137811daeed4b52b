"""Confidence intervals: of a mean across repeats (Student t) and of any statistic (bootstrap).

Repeats of a run are few (3 to 10), so the interval of their mean uses Student's t, not the normal
limit: with 3 repeats the 95% half-width is 4.30 standard errors, not 1.96. One repeat has no
spread to estimate, so it has no interval (`low`/`high` are None), never a zero-width one.
No scipy: the t quantile is computed here from the regularised incomplete beta function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with its confidence interval; `low`/`high` are None when there is none."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width: the '± x' of '1,285 ± 40 req/s' (symmetric for t intervals)."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2.0

    def conservative(self, higher_is_better: bool) -> float:
        """The end a cautious plan should use: the low end of a throughput, the high end of a latency."""
        if self.low is None or self.high is None:
            return self.mean
        return self.low if higher_is_better else self.high

    def excludes(self, value: float) -> bool:
        return self.low is not None and self.high is not None and (value < self.low or value > self.high)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value below which a fraction `p` of Student's t(df) lies (bisection on the CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"t_quantile: df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def mean_ci(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Mean of `values` (e.g. one throughput per repeat) with its Student-t confidence interval.

    n = 1 gives the value with no interval; n = 0 raises, since there is nothing to summarise.
    """
    _check_confidence(confidence)
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci: no values")
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean, None, None, 1, confidence)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def percentile_interval(replicates: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                        min_replicates: int = 10) -> tuple[float, float] | None:
    """The central `confidence` range of bootstrap replicates (non-finite ones dropped), or None
    when fewer than `min_replicates` are usable."""
    _check_confidence(confidence)
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size < min_replicates:
        return None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap interval of `statistic` over `values` (default: the mean).

    `statistic` takes a [resamples, n] array and returns one value per row (e.g.
    `lambda a: np.median(a, axis=1)`). Fewer than 2 values give no interval.
    """
    _check_confidence(confidence)
    xs = np.asarray(values, dtype=float)
    if xs.size == 0:
        raise ValueError("bootstrap_ci: no values")
    stat = statistic or (lambda a: a.mean(axis=1))
    point = float(stat(xs[None, :])[0])
    if xs.size < 2:
        return Interval(point, None, None, int(xs.size), confidence)
    rng = np.random.default_rng(seed)
    draws = xs[rng.integers(0, xs.size, size=(resamples, xs.size))]
    ci = percentile_interval(stat(draws), confidence)
    if ci is None:
        return Interval(point, None, None, int(xs.size), confidence)
    return Interval(point, ci[0], ci[1], int(xs.size), confidence)


__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "Interval",
    "bootstrap_ci",
    "mean_ci",
    "percentile_interval",
    "t_cdf",
    "t_quantile",
]
