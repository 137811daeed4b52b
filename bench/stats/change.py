"""Is B different from A? The relative change of one metric, its 95% interval, and the verdict.

The rule (asv's and pyperf's): a change counts only when it is larger than the threshold AND
significant, i.e. the 95% bootstrap interval of the relative change excludes zero. Verdicts:

- `same`:   |change| <= threshold
- `noise`:  beyond the threshold but the interval includes zero (shown as `~`, never fails)
- `better` / `worse`: beyond the threshold and significant, in the metric's good/bad direction
- `n/a`:    one side has no data for the metric

When no interval can be computed (no histograms, or too few whole windows), the change is judged
on the threshold alone, doubled, and the result says why it is untested.

Intervals: latency percentiles by the exact order-statistic bootstrap of the HDR histograms;
the mean by its normal limit; throughput by resampling whole measured windows (never warm-up or
partial seconds). With repeats on a side, each replicate first resamples that side's runs, so
the spread between repeats counts (a two-stage bootstrap). Error rate: two-proportion z-test on
the pooled counts (|z| > 1.96 and at least 0.1 percentage points). Request bytes: deterministic.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from tfsbench.bench.stats import histograms
from tfsbench.bench.stats.intervals import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, percentile_interval
from tfsbench.bench.stats.pooling import Pool

MIN_WINDOWS = 6  # per side; below this a percentile bootstrap of a mean covers well under 95%
ERROR_RATE_MIN_PP = 0.001
EXACT_THRESHOLD = 0.005
HIGHER_IS_BETTER = frozenset({"throughput_rps", "throughput_ips"})
PERCENTILE_METRICS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
TESTABLE: tuple[str, ...] = (*PERCENTILE_METRICS, "mean", "throughput_rps", "throughput_ips", "error_rate",
                             "request_bytes")


@dataclass(frozen=True, slots=True)
class Change:
    """One metric of B against A. `rel_change` = (b - a) / a; `ci` is its 95% interval."""

    metric: str
    a: float | None
    b: float | None
    rel_change: float | None
    ci: tuple[float, float] | None
    verdict: str  # same | noise | better | worse | n/a
    test: str  # bootstrap-histogram | bootstrap-normal | bootstrap-windows | z-test | exact | threshold-only | none
    note: str = ""  # why there is no interval, when there is none

    @property
    def significant(self) -> bool:
        return self.verdict in ("better", "worse")

    @property
    def worse_change(self) -> float | None:
        """The change signed so that > 0 is worse (check's convention)."""
        if self.rel_change is None:
            return None
        return -self.rel_change if self.metric in HIGHER_IS_BETTER else self.rel_change


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not a:
        return None
    return (b - a) / a


def decide(metric: str, rel: float | None, ci: tuple[float, float] | None, threshold: float) -> str:
    """The significance rule (module docstring), given the change and its interval (or None)."""
    if rel is None:
        return "n/a"
    if abs(rel) <= threshold:
        return "same"
    significant = abs(rel) > 2 * threshold if ci is None else (ci[0] > 0 or ci[1] < 0)
    if not significant:
        return "noise"
    up_is_good = metric in HIGHER_IS_BETTER
    return "better" if (rel > 0) == up_is_good else "worse"


def _rng(seed: int, metric: str) -> np.random.Generator:
    """One stream per metric, so a metric's interval does not depend on which others were asked for."""
    return np.random.default_rng([seed, zlib.crc32(metric.encode())])


def bootstrap_windows(windows: tuple[np.ndarray, ...], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Replicates of the mean rate per window over the pooled runs: runs resampled (when there are
    several), then each drawn run's whole windows resampled."""
    k = len(windows)
    if k == 1:
        w = windows[0]
        return w[rng.integers(0, w.size, size=(resamples, w.size))].mean(axis=1)
    total = np.zeros(resamples)
    count = np.zeros(resamples)
    picks = rng.integers(0, k, size=(resamples, k))
    for slot in range(k):
        for i, w in enumerate(windows):
            rows = np.flatnonzero(picks[:, slot] == i)
            if rows.size == 0 or w.size == 0:
                continue
            total[rows] += w[rng.integers(0, w.size, size=(rows.size, w.size))].sum(axis=1)
            count[rows] += w.size
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / count


def compare_metric(a: Pool, b: Pool, metric: str, threshold: float, *, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> Change:
    """Compare one metric of two pools (each one run or the repeats of one configuration)."""
    if metric not in TESTABLE:
        raise KeyError(f"cannot compare {metric!r}; testable metrics: {', '.join(TESTABLE)}")
    va, vb = a.value(metric), b.value(metric)
    rel = _rel(va, vb)
    if va is None or vb is None:
        return Change(metric, va, vb, None, None, "n/a", "none", "no data on one side")
    if metric == "error_rate":
        return _error_rate(a, b, va, vb)
    if metric == "request_bytes":
        verdict = "same" if rel is None or abs(rel) < EXACT_THRESHOLD else ("worse" if rel > 0 else "better")
        return Change(metric, va, vb, rel, None, verdict, "exact")
    rng = _rng(seed, metric)
    ci: tuple[float, float] | None = None
    note = ""
    if metric in HIGHER_IS_BETTER:
        test = "bootstrap-windows"
        wa, wb = a.windows, b.windows
        na, nb = sum(w.size for w in wa), sum(w.size for w in wb)
        if min(na, nb) < MIN_WINDOWS:
            note = (f"too few whole windows for an interval: {na} in A, {nb} in B "
                    f"(need >= {MIN_WINDOWS} per side; measure longer or repeat)")
        else:
            ra, rb = bootstrap_windows(wa, resamples, rng), bootstrap_windows(wb, resamples, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                ci = percentile_interval(rb / ra - 1.0, confidence)
    else:
        pa, pb = a.parts, b.parts
        if not pa or not pb:
            test, note = "threshold-only", "no latency histogram on one side"
        elif metric == "mean":
            test = "bootstrap-normal"
            ra, rb = (histograms.bootstrap_mean_pooled(p, resamples, rng) for p in (pa, pb))
            with np.errstate(divide="ignore", invalid="ignore"):
                ci = percentile_interval(rb / ra - 1.0, confidence)
        elif metric in PERCENTILE_METRICS:
            test = "bootstrap-histogram"
            q = PERCENTILE_METRICS[metric]
            ra = histograms.bootstrap_percentile_pooled(pa, q, resamples, rng)
            rb = histograms.bootstrap_percentile_pooled(pb, q, resamples, rng)
            with np.errstate(divide="ignore", invalid="ignore"):
                ci = percentile_interval(rb / ra - 1.0, confidence)
        else:  # pragma: no cover - TESTABLE lists every branch
            raise KeyError(metric)
    if ci is None and not note:
        note = "no usable bootstrap replicates"
    if ci is None:
        test = "threshold-only"
    return Change(metric, va, vb, rel, ci, decide(metric, rel, ci, threshold), test, note)


def _error_rate(a: Pool, b: Pool, pa: float, pb: float) -> Change:
    na, nb, ea, eb = a.requests, b.requests, a.errors, b.errors
    pooled = (ea + eb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)) if 0 < pooled < 1 else 0.0
    z = (pb - pa) / se if se else 0.0
    significant = abs(z) > 1.96 and abs(pb - pa) >= ERROR_RATE_MIN_PP
    verdict = ("worse" if pb > pa else "better") if significant else ("same" if pa == pb else "noise")
    return Change("error_rate", pa, pb, _rel(pa, pb), None, verdict, "z-test")


__all__ = ["Change", "HIGHER_IS_BETTER", "MIN_WINDOWS", "TESTABLE", "bootstrap_windows", "compare_metric", "decide"]
