"""HdrHistogram helpers: one histogram shape for the whole suite, exact merging, bulk recording.

Every latency and lag histogram in tfsbench tracks 1 us .. 1 hour with 3 significant digits (0.1%
relative error), in microseconds, and travels as HdrHistogram's compressed base64 encoding (V2, the
format the Java/C/Go HdrHistogram libraries read). Merging two encodings is exact: it adds counts.

Recording one value at a time through `hdrh` costs a few microseconds of pure Python, which would
dominate a fast engine, so the recorder buffers raw latencies and hands them here in bulk:
`record_many` computes the bucket indices with numpy and adds them to the counts array in one go.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)


def _acyclic(h: HdrHistogram) -> HdrHistogram:
    """Break hdrh's histogram <-> encoder reference cycle (the encoder keeps a weak proxy instead).

    With the cycle, a dropped histogram (and its ~185 kB counts array) waits for the cyclic garbage
    collector, so decoding one per second of a 30-minute run could pile up hundreds of MiB (388 MiB
    after a soak; 490 MiB for 1,800 s with the collector held off). Without the cycle, reference
    counting frees each one the moment it is dropped."""
    h.encoder.histogram = weakref.proxy(h)
    return h


def new() -> HdrHistogram:
    """An empty histogram of the suite's one shape (microseconds)."""
    return _acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))


def _counts_view(h: HdrHistogram) -> np.ndarray:
    return np.ctypeslib.as_array(h.counts)


def record_many(h: HdrHistogram, values_us: Sequence[float] | np.ndarray,
                also: Sequence[HdrHistogram] = ()) -> int:
    """Record many values (microseconds) at once into `h` and every histogram in `also`; values are
    clamped into [1 us, 1 h]. Returns how many values were recorded.

    Exactly equivalent to calling `record_value` on each (rounded to whole microseconds), but
    vectorised; the bucket indices are computed once for all the histograms. Accepts anything
    numpy reads without copying element by element (an `array('d')` buffer is taken as is).
    """
    v = np.asarray(values_us, dtype=np.float64)
    if v.size == 0:
        return 0
    v = np.clip(np.rint(v), LOWEST_US, HIGHEST_US).astype(np.int64)
    # HdrHistogram's index arithmetic (see hdrh.histogram.get_counts_array_index), vectorised.
    pow2ceiling = np.frexp((v | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = pow2ceiling - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub_bucket = v >> (bucket + h.unit_magnitude)
    index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub_bucket - h.sub_bucket_half_count
    targets = (h, *also)
    if any(t.counts_len != h.counts_len or t.unit_magnitude != h.unit_magnitude for t in targets):
        raise ValueError("record_many: histograms of different shapes")  # before any is changed
    added = np.bincount(index, minlength=h.counts_len)[: h.counts_len]
    lo, hi, n = int(v.min()), int(v.max()), int(v.size)
    for target in targets:
        counts = _counts_view(target)
        counts += added.astype(counts.dtype, copy=False)
        target.total_count += n
        target.min_value = min(target.min_value, lo)
        target.max_value = max(target.max_value, hi)
    return n


class Sparse(NamedTuple):
    """A histogram's non-empty buckets: (bucket indices, counts). A second of a run in a few kB
    instead of its 185 kB counts array, for rules that look at every second of a long run."""

    index: np.ndarray
    counts: np.ndarray


def sparse_counts(h: HdrHistogram) -> Sparse:
    """The non-empty buckets of `h`."""
    counts = _counts_view(h)
    index = np.flatnonzero(counts)
    return Sparse(index, counts[index].astype(np.int64))


def add_sparse(h: HdrHistogram, sparse: Sparse) -> None:
    """Add `sparse` (from a histogram of the suite's shape) into `h`: counts, total, min and max."""
    if sparse.index.size == 0:
        return
    counts = _counts_view(h)
    np.add.at(counts, sparse.index, sparse.counts.astype(counts.dtype, copy=False))
    h.total_count += int(sparse.counts.sum())
    h.min_value = min(h.min_value, int(h.get_value_from_index(int(sparse.index[0]))))
    h.max_value = max(h.max_value, int(h.get_highest_equivalent_value(h.get_value_from_index(int(sparse.index[-1])))))


def bucket_index(h: HdrHistogram, value_us: float) -> int:
    """The counts-array index of the bucket holding `value_us`."""
    return int(h.get_counts_array_index(max(LOWEST_US, min(HIGHEST_US, int(value_us)))))


def clear(h: HdrHistogram) -> None:
    """Reset in place (hdrh's own reset loops in Python over ~23k counters)."""
    _counts_view(h)[:] = 0
    h.total_count = 0
    h.min_value = 2**63 - 1
    h.max_value = 0


def encode(h: HdrHistogram) -> str:
    """Compressed base64 (HdrHistogram V2) text of a histogram."""
    return h.encode().decode("ascii")


def decode(s: str | bytes) -> HdrHistogram:
    """A histogram from `encode`'s text; raises ValueError on anything that is not one."""
    try:
        h = HdrHistogram.decode(s.encode("ascii") if isinstance(s, str) else s)
    except Exception as exc:  # hdrh raises several unrelated types (TypeError, zlib.error, ...)
        raise ValueError(f"not an encoded HdrHistogram ({type(exc).__name__})") from None
    return _acyclic(h)


def merge_into(target: HdrHistogram, other: HdrHistogram) -> None:
    """Add `other`'s counts to `target` (exact)."""
    if other.get_total_count():
        target.add(other)


def merge(encoded: Iterable[str | None]) -> str:
    """Merge encoded histograms (None entries are skipped); the result is exact."""
    total = new()
    for s in encoded:
        if s:
            merge_into(total, decode(s))
    return encode(total)


def value_at_percentile(h: HdrHistogram, percentile: float) -> int:
    """Exactly `h.get_value_at_percentile(percentile)`, with numpy: hdrh walks the counts array in
    Python (about 1 ms for a 20 ms percentile), which held the GIL for 20+ ms a second while a run
    that measures until stable re-judged itself, and made its own load generator late."""
    target = h.get_target_count_at_percentile(percentile)
    cumulative = np.cumsum(_counts_view(h), dtype=np.int64)
    index = int(np.searchsorted(cumulative, target, side="left"))
    if index >= h.counts_len:
        return 0
    value = h.get_value_from_index(index)
    return int(h.get_highest_equivalent_value(value) if percentile else h.get_lowest_equivalent_value(value))


def percentiles_ms(h: HdrHistogram, percentiles: Iterable[float] = DEFAULT_PERCENTILES) -> dict[float, float]:
    """Percentile -> milliseconds. Empty histograms give 0.0 for every percentile."""
    if h.get_total_count() == 0:
        return {float(p): 0.0 for p in percentiles}
    return {float(p): value_at_percentile(h, float(p)) / 1000.0 for p in percentiles}


def summary_ms(h: HdrHistogram) -> dict[str, float]:
    """The fields of `tfsbench.bench.results.LatencySummary`, in milliseconds."""
    if h.get_total_count() == 0:
        return dict.fromkeys(("mean", "p50", "p90", "p95", "p99", "p999", "max", "min", "stdev"), 0.0)
    p = percentiles_ms(h, (50.0, 90.0, 95.0, 99.0, 99.9))
    mean, stdev = mean_stdev(h)
    return {
        "mean": mean / 1000.0,
        "p50": p[50.0],
        "p90": p[90.0],
        "p95": p[95.0],
        "p99": p[99.0],
        "p999": p[99.9],
        "max": h.get_max_value() / 1000.0,
        "min": h.get_min_value() / 1000.0,
        "stdev": stdev / 1000.0,
    }


def mean_stdev(h: HdrHistogram) -> tuple[float, float]:
    """hdrh's get_mean_value() and get_stddev() (each bucket at its median equivalent value) over the
    non-empty buckets only: hdrh iterates every bucket up to the largest in Python, a quarter of a second
    for one run's histogram, paid at the end of every run."""
    counts = _counts_view(h)
    index = np.flatnonzero(counts)
    total = int(counts[index].sum())
    if total == 0:
        return 0.0, 0.0
    values = np.array([h._hdr_median_equiv_value(h.get_value_from_index(int(i))) for i in index], dtype=np.int64)
    weights = counts[index].astype(np.int64)
    mean = float(int((values * weights).sum())) / total
    dev = values.astype(np.float64) - mean
    return mean, math.sqrt(float((dev * dev * weights).sum()) / total)


def spectrum_ms(h_or_encoded: HdrHistogram | str, ticks_per_half_distance: int = 5) -> list[tuple[float, float]]:
    """The percentile spectrum (HdrHistogram's 'percentile distribution'): (percentile, value_ms)
    pairs from 0 to 100, denser towards the tail; plot percentile on a log(1/(1-p)) axis."""
    h = decode(h_or_encoded) if isinstance(h_or_encoded, str) else h_or_encoded
    if h.get_total_count() == 0:
        return []
    out: list[tuple[float, float]] = []
    for item in h.get_percentile_iterator(ticks_per_half_distance):
        out.append((float(item.percentile_level_iterated_to), item.value_iterated_to / 1000.0))
    return out


def total_count(encoded: str | None) -> int:
    return decode(encoded).get_total_count() if encoded else 0


def describe(h: HdrHistogram) -> dict[str, Any]:
    """A small dict for debugging and tests."""
    return {"count": h.get_total_count(), **summary_ms(h)}
