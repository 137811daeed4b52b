"""Is a run's answer trustworthy? thirds compared beyond their sampling noise, plus a sample count.

perf_analyzer's rule (the last 3 windows within 10% of each other) judges point estimates, so on a
busy machine a steady server fails it by chance: a one-second window's p99 rests on a handful of
slow responses. Here each window's statistic is an interval that carries its own sampling noise,
and windows (thirds of the measured window) disagree only when the gap between their intervals is larger than the tolerance:

- throughput: the window's count c +- 1.96 sqrt(c) (Poisson; a closed loop varies less, so this
  is cautious in the lenient direction only by the noise a Poisson stream would have);
- latency: the distribution-free 95% interval of the percentile judged (order statistics: the
  values at percentile p +- 1.96 sqrt(p(1-p)/n)), read from the window's HDR histogram, and the
  same for the median: a window's p99 rests on a few responses, so a 30% change of speed can hide
  inside its interval, never inside the median's.

Those intervals assume independent samples; a queue's slow responses come in bursts and a busy
machine's throughput swings from second to second. Each interval's variance is multiplied by the
run's own dispersion when it is significant (`run_dispersion`: batch means with one-second batches).

Windows disagree, as asv and pyperf judge a difference, only when it is both larger than the
tolerance (max/min > 1.10, perf_analyzer's threshold) and significant (the windows' intervals do
not all overlap: `disagreement` > 0). A steady server on a busy machine passes; a real change of
speed (benchmarks/bench_stability.py plants one) fails. Latency thirds less than LATENCY_FLOOR_US
apart agree whatever their ratio (scheduling jitter of sub-millisecond latencies).

Two rules, both must hold for `stable`:

1. Enough samples for the percentile judged: about 10 beyond it, i.e. 10 / (1 - p): p99 needs
   1000 successful responses, p99.9 10,000 (MLPerf's early stopping needs 459 for p99 even when
   none is slow; 1000 is a round, slightly stricter figure). A run that measures until stable
   keeps measuring until it has them (or reaches its bound).
2. Steady state: the measured window's whole seconds are cut into thirds, and the thirds agree
   as above. Thirds, not the last few seconds, because the summary reports the whole window: a
   change of speed anywhere in it separates the first third from the last and stays caught however
   long the run goes on, while machine noise averages out as the thirds grow (a run that measures
   until stable re-judges after every second, so on a noisy machine it simply runs longer).

A run that measures until stable (closed loop) may also set aside the start of its measured window,
as perf_analyzer judges its last windows: when the whole window is not stable but the seconds from
some second s on are, the run's result is those seconds and it records that it set the first s aside
(`settled_start`). At most the first third is set aside (MIN_KEPT), so a quiet stretch between
disturbances is not picked out of a long run, and a change of speed later in the run stays caught;
the thirds of what is kept are judged by the same rule. On this project's 2-core VMs, where a CPU spin
loop alone moves 15-20% from second to second, this turned 43 of 45 replayed 12-second runs stable
into 45 of 45, 20 of them by setting 1 or 2 s aside (docs/stability.md). A fixed --duration run is
always judged whole.

Warm-up (runs without a fixed --warmup) ends when throughput settles: two consecutive slots of
about half a second agree by the same rule (`settled`), after at least MIN_WARMUP_S.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from hdrh.histogram import HdrHistogram
from tfsbench.bench.measure import hist

MIN_SAMPLES_P99 = 1000
MIN_SAMPLES_P999 = 10_000
WINDOWS_COMPARED = 3
TOLERANCE = 0.10
Z95 = 1.96
DISPERSION_CONFIDENCE = 0.99  # per-second variation beyond independent samples is believed above this
MIN_WARMUP_S = 1.0
SETTLE_SLOTS = 3  # warm-up slots (about half a second each) that must agree
JUDGED_PERCENTILE = 99.0
# latency windows closer than this (us) agree whatever their ratio: with thousands of samples a 30 us
# move of a 0.3 ms median is "significant", but it is the machine's scheduling jitter
LATENCY_FLOOR_US = 100.0
STABLE_FOR_SLO = "stable for the SLO"  # how a verdict that rested on bound_us begins (the report counts them)
MIN_KEPT = 2.0 / 3.0  # settled_start keeps at least this fraction of the measured seconds

Interval = tuple[float, float]


def samples_needed(percentile: float = JUDGED_PERCENTILE) -> int:
    """Successful responses for about 10 beyond `percentile` (p99: 1000, p99.9: 10,000)."""
    return int(math.ceil(round(10.0 / (1.0 - percentile / 100.0), 6)))


def count_interval(count: int, duration_s: float, dispersion: float = 1.0) -> Interval:
    """95% interval of a rate from `count` events in `duration_s` (Poisson, its variance times
    `dispersion` when the stream is burstier than Poisson)."""
    half = Z95 * math.sqrt(max(count, 0) * max(dispersion, 1.0))
    return max(0.0, count - half) / duration_s, (count + half) / duration_s


def percentile_interval(h: HdrHistogram, percentile: float, dispersion: float = 1.0) -> Interval:
    """95% distribution-free interval of `percentile` (us) from a histogram of n samples; with
    `dispersion` > 1 the samples count as n / dispersion independent ones."""
    n = h.get_total_count()
    if n == 0:
        return 0.0, math.inf
    p = percentile / 100.0
    half = Z95 * math.sqrt(max(dispersion, 1.0) * p * (1.0 - p) / n)
    lo_p, hi_p = max(0.0, p - half), min(1.0, p + half)
    return float(hist.value_at_percentile(h, lo_p * 100.0)), float(hist.value_at_percentile(h, hi_p * 100.0))


Chi2 = tuple[float, int]  # (chi-square, degrees of freedom) of one window's per-second variation


def count_dispersion(counts: Sequence[int]) -> Chi2 | None:
    """One window's per-second counts against a Poisson stream (chi-square = variance / mean x df),
    or None with fewer than two seconds."""
    if len(counts) < 2:
        return None
    mean = sum(counts) / len(counts)
    if mean <= 0:
        return None
    return sum((c - mean) ** 2 for c in counts) / mean, len(counts) - 1


def exceedance_dispersion(seconds: Sequence[tuple[int, int]]) -> Chi2 | None:
    """One window's seconds as (samples, samples above the window's percentile) against slow
    responses scattered independently (binomial per second); a queue's come in bursts. None with
    fewer than two seconds."""
    rows = [(n, x) for n, x in seconds if n > 0]
    total = sum(n for n, _ in rows)
    if len(rows) < 2 or total == 0:
        return None
    f = sum(x for _, x in rows) / total
    if f <= 0.0 or f >= 1.0:
        return None
    return sum((x - n * f) ** 2 / (n * f * (1 - f)) for n, x in rows), len(rows) - 1


def chi2_quantile(q: float, df: int) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (within 1% for df >= 1 at q = 0.99)."""
    z = NormalDist().inv_cdf(q)
    k = 2.0 / (9.0 * df)
    return df * (1.0 - k + z * math.sqrt(k)) ** 3


def run_dispersion(per_window: Sequence[Chi2 | None]) -> float:
    """How many times the independent-samples variance the run's per-second variation shows: pooled
    over its windows but the most dispersed one (a change of speed falls into one window and must
    not widen the intervals that catch it), and only when significant at 99% (so an ordinary run
    keeps its plain intervals); never below 1."""
    known = sorted((d for d in per_window if d is not None and d[1] > 0), key=lambda d: d[0] / d[1])
    # whenever some are known, not only with all three: at 4 s the windows are 2, 1 and 1 s long, and the
    # first one's dispersion alone (a slow first second in it) widened every interval enough to agree
    known = known[:-1]
    chi2, df = sum(c for c, _ in known), sum(d for _, d in known)
    if df == 0 or chi2 <= chi2_quantile(DISPERSION_CONFIDENCE, df):
        return 1.0
    return max(1.0, chi2 / df)


def disagreement(intervals: Sequence[Interval]) -> float:
    """How far apart the intervals are: max(lower) / min(upper) - 1, or 0 when they all overlap."""
    lo = max(i[0] for i in intervals)
    hi = min(i[1] for i in intervals)
    if lo <= hi:
        return 0.0
    return math.inf if hi <= 0 else lo / hi - 1.0


def settled(slots: Sequence[tuple[int, float]]) -> bool:
    """Warm-up: have the last (up to SETTLE_SLOTS) (count, duration_s) slots' throughputs settled within
    TOLERANCE? Three slots, not two: a ramp of 8% a half-second passes between neighbours but not over
    a second (the demo's runs still climbed 15-20% into their measured window with two)."""
    last_slots = slots[-SETTLE_SLOTS:]
    if len(last_slots) < 2:
        return False
    if any(d <= 0 for _, d in last_slots) or max(c for c, _ in last_slots) == 0:
        return False
    # the verdict's test: apart only when more than TOLERANCE apart and beyond their sampling noise
    rates = [c / d for c, d in last_slots]
    return _spread(rates) <= TOLERANCE or disagreement([count_interval(c, d) for c, d in last_slots]) <= 0


def thirds(n: int) -> list[tuple[int, int]]:
    """(start, stop) of the three windows of n whole seconds: equal, the first ones a second longer
    when n is not a multiple of 3."""
    sizes = [n // 3 + (1 if k < n % 3 else 0) for k in range(3)]
    return [(sum(sizes[:k]), sum(sizes[:k + 1])) for k in range(3)]


def second_sparse(sh: HdrHistogram | str | hist.Sparse | None) -> hist.Sparse | None:
    """One second's latencies as sparse counts, from a histogram, its encoding or sparse counts
    already (what StopControl keeps, so that re-judging every second decodes each second once)."""
    if sh is None or isinstance(sh, hist.Sparse):
        return sh
    return hist.sparse_counts(hist.decode(sh) if isinstance(sh, str) else sh)


def verdict(seconds: Sequence[tuple[int, HdrHistogram | str | hist.Sparse | None]], total_ok: int,
            partial: bool = False, *, percentile: float = JUDGED_PERCENTILE,
            bound_us: float | None = None) -> tuple[bool, str]:
    """(stable, reason) from the measured window's whole seconds, in order: (ok count, histogram
    of ok latencies, or its encoding) per second, plus the total number of ok responses. The
    seconds are cut into thirds; all three must agree (see the module docstring). `bound_us`: an
    SLO's bound on the judged percentile (an SLO search's probe); thirds whose 95% intervals of that
    percentile all lie within it agree on what the probe asks, however far apart. Not thirds all beyond
    it: a machine's stalls in every third would make a miss that the search should measure again final."""
    if partial:
        return False, "interrupted: a partial run is never called stable"
    needed = samples_needed(percentile)
    name = f"p{percentile:g}"
    if total_ok < needed:
        return False, (f"too few samples: {total_ok} successful responses, {name} needs >= {needed} "
                       f"(about 10 beyond it)")
    n = len(seconds)
    if n < WINDOWS_COMPARED:
        return False, f"too short: {n} whole seconds measured, need >= {WINDOWS_COMPARED} for 3 windows"
    name_pcts = ((name, percentile), ("p50", 50.0))
    windows = []  # per third: (ok count, merged histogram, per second (ok, sparse counts or None), seconds)
    for a, b in thirds(n):
        h = hist.new()
        per_second = []
        for ok, sh in seconds[a:b]:
            sparse = second_sparse(sh)  # kept small: a run may have 1,800 seconds
            if sparse is not None and sparse.index.size:
                hist.add_sparse(h, sparse)
                per_second.append((ok, sparse))
            else:
                per_second.append((ok, None))
        windows.append((sum(ok for ok, _ in per_second), h, per_second, b - a))
    total = sum(w[0] for w in windows)
    # second-to-second variation beyond what independent samples show (a busy machine's swings, a
    # queue's bursts of slow responses) widens every window's interval by the run's dispersion
    dispersion = {"throughput": run_dispersion([count_dispersion([ok for ok, _ in w[2]]) for w in windows])}
    for key, pct in name_pcts:
        per_window: list[Chi2 | None] = []
        for _, h, per_second, _ in windows:
            if not h.get_total_count():
                per_window.append(None)
                continue
            cut = hist.bucket_index(h, hist.value_at_percentile(h, pct))
            per_window.append(exceedance_dispersion([_above(sparse, cut) for _, sparse in per_second]))
        dispersion[key] = run_dispersion(per_window)
    stats: dict[str, list[tuple[float, float, float]]] = {"throughput": [], name: [], "p50": []}
    for count, h, _, length in windows:
        stats["throughput"].append((count / length, *count_interval(count, length, dispersion["throughput"])))
        for key, pct in name_pcts:
            point = float(hist.value_at_percentile(h, pct)) if h.get_total_count() else 0.0
            stats[key].append((point, *percentile_interval(h, pct, dispersion[key])))
    if total == 0:
        return False, "no successful responses in the measured seconds"
    where = f"3 windows of {n / 3:.3g} s"
    spreads = {}
    sided = ""
    for key, values in stats.items():
        points = [v[0] for v in values]
        spread = _spread(points)
        spreads[key] = spread
        if key != "throughput" and max(points) - min(points) <= LATENCY_FLOOR_US:
            continue  # sub-0.1 ms moves of a sub-millisecond latency: scheduling jitter, not a change of speed
        if key == name and bound_us is not None and spread > TOLERANCE and all(hi <= bound_us for _, _, hi in values):
            sided = f"; every third's {name} is within the SLO's {bound_us / 1000:g} ms with 95% confidence"
            continue  # e.g. one stall of the machine in a third: every third still meets the SLO
        if spread > TOLERANCE and disagreement([(v[1], v[2]) for v in values]) > 0:
            return False, (f"unstable: {key} differs by {_pct(spread)} across the {where} (limit 10%), "
                           f"more than sampling noise explains")
    shown = ", ".join(f"{k} {_pct(v)}" for k, v in spreads.items())
    if sided:
        return True, (f"{STABLE_FOR_SLO}: the {where} agree on throughput and median within 10% or within sampling "
                      f"noise ({shown}){sided}; {total_ok} samples >= {needed} for {name}")
    return True, (f"stable: the {where} agree within 10% or within sampling noise ({shown}); "
                  f"{total_ok} samples >= {needed} for {name}")


def keeps_enough(n: int, start: int) -> bool:
    """Does setting aside the first `start` of `n` measured seconds keep MIN_KEPT of them, and three?"""
    return n - start >= max(WINDOWS_COMPARED, MIN_KEPT * n)


def most_set_aside(n_s: float) -> int:
    """The most whole seconds `settled_start` may set aside of a window of `n_s` seconds."""
    return int(math.floor(n_s * (1.0 - MIN_KEPT) + 1e-9))


def settled_start(seconds: Sequence[tuple[int, HdrHistogram | str | hist.Sparse | None]], *, max_start: int,
                  percentile: float = JUDGED_PERCENTILE, bound_us: float | None = None) -> int | None:
    """The earliest second s in 1..max_start from which `seconds` (as for `verdict`) are stable while
    keeping at least MIN_KEPT of them and WINDOWS_COMPARED whole seconds, or None. The caller judges
    the whole window first, and bounds `max_start` (e.g. to the seconds before the first error, whose
    classes a suffix could not account for)."""
    n = len(seconds)
    for s in range(1, max_start + 1):
        if not keeps_enough(n, s):
            return None
        tail = seconds[s:]
        if verdict(tail, sum(ok for ok, _ in tail), percentile=percentile, bound_us=bound_us)[0]:
            return s
    return None


def _above(sparse: hist.Sparse | None, cut: int) -> tuple[int, int]:
    """(samples, samples in buckets above `cut`) of one second's sparse counts."""
    if sparse is None:
        return 0, 0
    index, counts = sparse
    return int(counts.sum()), int(counts[index > cut].sum())


def _spread(values: Sequence[float]) -> float:
    lo, hi = min(values), max(values)
    if hi <= 0:
        return 0.0
    return math.inf if lo <= 0 else hi / lo - 1.0


def _pct(x: float) -> str:
    return "inf" if x == math.inf else f"{x * 100:.1f}%"
