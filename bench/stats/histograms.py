"""Percentiles from HDR histograms: the one definition every tool uses, and its exact bootstrap.

Results keep latency as HdrHistograms (microseconds, 0.1% buckets), never the individual requests.
The percentile of a histogram here is HdrHistogram's own `getValueAtPercentile` (the Java, C, Go
and Python libraries agree, and it is what `tfsbench run` prints):

    rank  = max(1, round_half_up(q / 100 * N))
    value = the highest value equivalent to the first bucket whose cumulative count reaches rank

so `compare`, `check`, the run summary and a pooled set of repeats all give the same p99 for the
same counts. The bootstrap draws a resampled percentile exactly from the counts: the r-th smallest
of N values drawn with replacement from the recorded ones is the (floor(N * Beta(r, N - r + 1)) +
1)-th smallest recorded value (order statistics of N uniforms), one Beta draw per replicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True, slots=True)
class Buckets:
    """A histogram as recorded: bucket values (ms, ascending, each bucket's highest equivalent
    value) and how many requests fell in each (only non-empty buckets)."""

    values_ms: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile_ms(self, percentile: float) -> float:
        """HdrHistogram's value at `percentile` (0-100); see the module docstring."""
        return float(percentiles_from_counts(self.values_ms, self.counts[None, :], percentile)[0])

    def mean_ms(self) -> float:
        return float(self.values_ms @ self.counts) / self.total if self.total else 0.0


def rank(percentile: float, total: np.ndarray | int) -> np.ndarray:
    """HdrHistogram's target rank: max(1, int(q / 100 * N + 0.5)), elementwise."""
    q = min(float(percentile), 100.0)
    return np.maximum(1, np.floor(q / 100.0 * np.asarray(total, dtype=float) + 0.5)).astype(np.int64)


def percentiles_from_counts(values_ms: np.ndarray, counts: np.ndarray, percentile: float) -> np.ndarray:
    """The percentile of each row of `counts` (shape [R, K]) over the shared bucket values."""
    cum = np.cumsum(counts, axis=1)
    r = rank(percentile, cum[:, -1])
    idx = (cum < r[:, None]).sum(axis=1)  # first bucket whose cumulative count reaches the rank
    return values_ms[np.minimum(idx, len(values_ms) - 1)]


def _decode(encoded: str):  # -> HdrHistogram
    from tfsbench.bench.measure import hist  # without hdrh's histogram<->encoder cycle

    return hist.decode(encoded)


@lru_cache(maxsize=512)
def buckets(encoded: str | None) -> Buckets | None:
    """Decode a base64 HdrHistogram (microseconds) into ms buckets; None when absent, empty or
    unreadable (a broken histogram means "no data to test with", never a crash)."""
    if not encoded:
        return None
    try:
        h = _decode(encoded)
    except ValueError:
        return None
    return buckets_of(h)


def buckets_of(h) -> Buckets | None:  # noqa: ANN001 - an hdrh HdrHistogram
    """Non-empty buckets straight from the counts array (hdrh's iterators are far too slow for
    reports over many runs); values are `get_highest_equivalent_value` of each bucket."""
    from tfsbench.bench.measure import hist

    index, counts = hist.sparse_counts(h)
    if index.size == 0:
        return None
    half_mag = h.sub_bucket_half_count_magnitude
    half = h.sub_bucket_half_count
    bucket = (index >> half_mag) - 1
    sub = (index & (half - 1)) + half
    low = bucket < 0
    sub = np.where(low, sub - half, sub)
    bucket = np.where(low, 0, bucket)
    shift = bucket + h.unit_magnitude
    lowest = sub << shift
    highest = lowest + (np.int64(1) << shift) - 1
    return Buckets(highest.astype(float) / 1000.0, counts)


def common_grid(parts: Sequence[Buckets]) -> tuple[np.ndarray, np.ndarray]:
    """(values_ms, counts [len(parts), K]): the runs' buckets on one shared grid, for pooling."""
    values = np.unique(np.concatenate([p.values_ms for p in parts]))
    matrix = np.zeros((len(parts), values.size), dtype=np.int64)
    for i, p in enumerate(parts):
        matrix[i, np.searchsorted(values, p.values_ms)] = p.counts
    return values, matrix


def merge(parts: Sequence[Buckets]) -> Buckets | None:
    """Pool histograms (exact: counts add), e.g. the repeats of one configuration."""
    parts = [p for p in parts if p is not None and p.total]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    values, matrix = common_grid(parts)
    return Buckets(values, matrix.sum(axis=0))


def bootstrap_percentile(b: Buckets, percentile: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap replicates of one histogram's percentile (requests resampled)."""
    return bootstrap_percentile_pooled([b], percentile, resamples, rng)


def bootstrap_percentile_pooled(parts: Sequence[Buckets], percentile: float, resamples: int,
                                rng: np.random.Generator) -> np.ndarray:
    """Replicates of the pooled percentile of repeats: a two-stage bootstrap that resamples the
    runs (so the spread between repeats counts), then the requests of the pooled histogram.
    With one run it is the plain request bootstrap."""
    values, matrix = common_grid(parts)
    k = len(parts)
    if k == 1:  # one run: no [R, K] matrix needed
        cum1 = np.cumsum(matrix[0])
        n1 = int(cum1[-1])
        r1 = int(rank(percentile, n1))
        position = np.minimum(np.floor(n1 * rng.beta(r1, n1 - r1 + 1, size=resamples)).astype(np.int64) + 1, n1)
        return values[np.minimum(np.searchsorted(cum1, position), values.size - 1)]
    picks = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples)  # [R, k]: times each run is drawn
    pooled = picks @ matrix
    cum = np.cumsum(pooled, axis=1)
    n = cum[:, -1]
    r = rank(percentile, n)
    position = np.floor(n * rng.beta(r, n - r + 1)).astype(np.int64) + 1
    position = np.minimum(position, n)
    idx = (cum < position[:, None]).sum(axis=1)
    return values[np.minimum(idx, values.size - 1)]


def bootstrap_mean_pooled(parts: Sequence[Buckets], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Replicates of the pooled mean latency: runs resampled, then the mean's normal limit
    (sd / sqrt(N)) within the pool, which is exact enough for thousands of requests."""
    values, matrix = common_grid(parts)
    k = len(parts)
    picks = (np.ones((resamples, 1), dtype=np.int64) if k == 1
             else rng.multinomial(k, np.full(k, 1.0 / k), size=resamples))
    pooled = (picks @ matrix).astype(float)
    n = pooled.sum(axis=1)
    mean = pooled @ values / n
    var = (pooled @ (values ** 2) / n - mean ** 2) * n / np.maximum(n - 1, 1)
    return rng.normal(mean, np.sqrt(np.maximum(var, 0.0) / n))


__all__ = [
    "Buckets",
    "bootstrap_mean_pooled",
    "bootstrap_percentile",
    "bootstrap_percentile_pooled",
    "buckets",
    "buckets_of",
    "common_grid",
    "merge",
    "percentiles_from_counts",
    "rank",
]
