"""Is a run's answer trustworthy? perf_analyzer-style windows plus a minimum sample count.

Two rules, both must hold for `stable`:

1. Enough samples for the highest percentile we stand behind, p99: at least 1000 successful
   responses, so that about 10 of them lie above the p99. With only 100 samples the "p99" is
   the single slowest response; with 10 above it, one outlier moves the estimate by one rank in
   ten instead of deciding it (MLPerf's early-stopping rule needs 459 queries for p99 even when
   none is slow; 1000 is a round, slightly stricter figure). The p99.9 is reported too, but it
   needs 10,000 samples for the same footing; below that a warning says so.
2. Steady state: the measured window is cut into equal windows (6 of them, at least 1 s each, as
   perf_analyzer's default 5 s windows are for a 30 s run) and the last 3 must agree within 10%
   on throughput and on latency (max/min <= 1.10). Latency means p99 when each window holds
   at least 1000 samples (rule 1 again), else the mean, and the reason says which.
"""

from __future__ import annotations

from collections.abc import Sequence

from hdrh.histogram import HdrHistogram
from tfsbench.bench.measure import hist

MIN_SAMPLES_P99 = 1000
MIN_SAMPLES_P999 = 10_000
WINDOWS_COMPARED = 3
TOLERANCE = 0.10
TARGET_WINDOWS = 6


def _spread(values: Sequence[float]) -> float:
    lo, hi = min(values), max(values)
    if hi <= 0:
        return 0.0
    if lo <= 0:
        return float("inf")
    return hi / lo - 1.0


def verdict(seconds: Sequence[tuple[int, HdrHistogram | str | None]], total_ok: int,
            partial: bool = False) -> tuple[bool, str]:
    """(stable, reason) from the measured window's whole seconds, in order: (ok count, histogram
    of ok latencies, or its encoding) per second, plus the total number of ok responses. Only the
    last 3 windows are decoded, so memory does not grow with the run's length."""
    if partial:
        return False, "interrupted: a partial run is never called stable"
    if total_ok < MIN_SAMPLES_P99:
        return False, (f"too few samples: {total_ok} successful responses, p99 needs >= {MIN_SAMPLES_P99} "
                       f"(about 10 above it)")
    n = len(seconds)
    if n < WINDOWS_COMPARED:
        return False, f"too short: {n} whole seconds measured, need >= {WINDOWS_COMPARED} for 3 windows"
    window_s = max(1, n // TARGET_WINDOWS)
    usable = n - n % window_s
    groups = [seconds[k:k + window_s] for k in range(n - usable, n, window_s)][-WINDOWS_COMPARED:]
    rates: list[float] = []
    merged: list[HdrHistogram] = []
    for g in groups:
        h = hist.new()
        count = 0
        for ok, sh in g:
            count += ok
            if sh is not None:
                hist.merge_into(h, hist.decode(sh) if isinstance(sh, str) else sh)
        rates.append(count / window_s)
        merged.append(h)
    if max(rates) == 0:
        return False, "no successful responses in the last windows"
    rate_spread = _spread(rates)
    use_p99 = all(h.get_total_count() >= MIN_SAMPLES_P99 for h in merged)
    if use_p99:
        lat = [h.get_value_at_percentile(99.0) for h in merged]
        lat_name = "p99"
    else:
        lat = [h.get_mean_value() if h.get_total_count() else 0.0 for h in merged]
        lat_name = "mean latency (windows too small for p99)"
    lat_spread = _spread(lat)
    where = f"last {WINDOWS_COMPARED} windows of {window_s} s"
    if rate_spread > TOLERANCE:
        return False, f"unstable: throughput differs by {_pct(rate_spread)} across the {where} (limit 10%)"
    if lat_spread > TOLERANCE:
        return False, f"unstable: {lat_name} differs by {_pct(lat_spread)} across the {where} (limit 10%)"
    return True, (f"stable: {where} within 10% (throughput {_pct(rate_spread)}, {lat_name} {_pct(lat_spread)}); "
                  f"{total_ok} samples >= {MIN_SAMPLES_P99} for p99")


def _pct(x: float) -> str:
    return "inf" if x == float("inf") else f"{x * 100:.1f}%"
