"""Latency distributions from a run's HdrHistogram, as plain numpy arrays for figures.

The histogram decoding, the percentile definition and the bootstrap live in the statistics core
(`tfsbench.bench.stats.histograms`) so that figures, tables, compare and check read the same p99
from the same counts; this module adds what only figures need (the percentile spectrum).
"""

from __future__ import annotations

import numpy as np
from tfsbench.bench.stats.histograms import (
    Buckets,
    bootstrap_percentile,
    buckets,
    percentiles_from_counts,
    rank,
)

# The spectrum's x axis: 1 / (1 - p). 50% -> 2, 90% -> 10, 99% -> 100, 99.9% -> 1000 ...
NINES: tuple[tuple[float, str], ...] = (
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (99.999, "99.999%"),
)


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
    ranks = np.array([int(rank(p, total)) for p in ps], dtype=np.int64)
    idx = np.minimum(np.searchsorted(cum, ranks), len(b.values_ms) - 1)
    return ps, b.values_ms[idx]


__all__ = ["NINES", "Buckets", "bootstrap_percentile", "buckets", "percentiles_from_counts", "spectrum_ms"]
