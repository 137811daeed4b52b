"""Latency distributions from a run's HdrHistogram, as plain numpy arrays for figures and statistics.

Results store latency as base64 HdrHistograms in microseconds. Everything in `reports` works in
milliseconds and on (value, count) buckets, so the bootstrap can resample counts rather than
individual requests (which the result files never keep).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The spectrum's x axis: 1 / (1 - p). 50% -> 2, 90% -> 10, 99% -> 100, 99.9% -> 1000 ...
NINES: tuple[tuple[float, str], ...] = (
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (99.999, "99.999%"),
)


@dataclass(frozen=True, slots=True)
class Buckets:
    """A histogram as recorded: bucket values (ms, ascending) and how many requests fell in each."""

    values_ms: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile_ms(self, percentile: float) -> float:
        """Value at `percentile` (0-100), nearest rank on the cumulative counts."""
        return float(percentiles_from_counts(self.values_ms, self.counts[None, :], percentile)[0])


def _decode(encoded: str):  # -> HdrHistogram
    from tfsbench.bench.measure import (
        hist as bench_hist,  # without hdrh's histogram<->encoder cycle: freed at once
    )

    return bench_hist.decode(encoded)


@lru_cache(maxsize=512)
def buckets(encoded: str | None) -> Buckets | None:
    """Decode a base64 HdrHistogram (microseconds) into ms buckets; None when absent or unreadable.

    A broken histogram must not sink a whole report: figures and tests that need it are skipped and
    the report says the run had no usable histogram.
    """
    if not encoded:
        return None
    try:
        hist = _decode(encoded)
    except Exception:  # noqa: BLE001 - any decoding failure means "no histogram"
        return None
    return _buckets_of(hist)


def _buckets_of(hist) -> Buckets | None:
    """Non-empty buckets straight from the counts array (hdrh's iterators are far too slow for
    reports over many runs). Each bucket reports its highest equivalent value, as HdrHistogram's
    own percentile queries do."""
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len].astype(np.int64)
    index = np.nonzero(counts)[0]
    if index.size == 0:
        return None
    half_mag = hist.sub_bucket_half_count_magnitude
    half = hist.sub_bucket_half_count
    bucket = (index >> half_mag) - 1
    sub = (index & (half - 1)) + half
    low = bucket < 0
    sub = np.where(low, sub - half, sub)
    bucket = np.where(low, 0, bucket)
    shift = bucket + hist.unit_magnitude
    lowest = sub << shift
    highest = lowest + (np.int64(1) << shift) - 1
    return Buckets(highest.astype(float) / 1000.0, counts[index])


def percentiles_from_counts(values_ms: np.ndarray, counts: np.ndarray, percentile: float) -> np.ndarray:
    """Percentile of each row of `counts` (shape [R, K]) over the shared bucket values (nearest rank)."""
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1]
    rank = np.maximum(1, np.ceil(percentile / 100.0 * total)).astype(np.int64)
    idx = (cum < rank[:, None]).sum(axis=1)  # first bucket whose cumulative count reaches the rank
    idx = np.minimum(idx, len(values_ms) - 1)
    return values_ms[idx]


def spectrum_ms(b: Buckets, max_percentile: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(percentile, latency_ms) points of the full distribution, up to the highest resolvable nine.

    With N requests the spectrum cannot honestly go past 1 - 1/N, so it stops there.
    """
    total = b.total
    top = 100.0 * (1.0 - 1.0 / total) if total > 1 else 50.0
    if max_percentile is not None:
        top = min(top, max_percentile)
    # even spacing in "nines" space: p = 100 * (1 - 10**-x)
    x_top = -np.log10(1.0 - top / 100.0) if top < 100 else 6.0
    xs = np.linspace(0.0, max(x_top, 0.31), 160)
    ps = 100.0 * (1.0 - 10.0 ** (-xs))
    cum = np.cumsum(b.counts)
    ranks = np.maximum(1, np.ceil(ps / 100.0 * total)).astype(np.int64)
    idx = np.minimum(np.searchsorted(cum, ranks), len(b.values_ms) - 1)
    return ps, b.values_ms[idx]



def bootstrap_percentile(b: Buckets, percentile: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` bootstrap replicates of a percentile, drawn exactly without materialising requests.

    Resampling N requests with replacement from the recorded ones and taking the r-th smallest is
    the same as taking the (floor(N * Beta(r, N - r + 1)) + 1)-th smallest recorded value (the
    order statistics of N uniforms), so each replicate costs one Beta draw and a binary search.
    """
    n = b.total
    rank = max(1, int(np.ceil(percentile / 100.0 * n)))
    position = np.floor(n * rng.beta(rank, n - rank + 1, size=resamples)).astype(np.int64) + 1
    position = np.clip(position, 1, n)
    idx = np.minimum(np.searchsorted(np.cumsum(b.counts), position), len(b.values_ms) - 1)
    return b.values_ms[idx]
