"""Pooling repeats: the runs of one configuration summarised as one, without throwing any away.

- Latency: the runs' histograms are merged (counts add), and percentiles are read from the merged
  histogram with the one definition in `histograms`.
- Throughput: total successful responses over total measured seconds.
- Throughput's noise comes from WHOLE measured windows only: the 1 s points of the time series
  that lie entirely inside the measured window (0 <= t_s and t_s + 1 <= measured_s). Warm-up
  seconds (t_s < 0) and the partial second at the end (a closed loop's last few responses
  complete after the window closed) would otherwise enter a bootstrap as a second with almost no
  requests, which is how a 545/s pair once got a -99% interval.
- Across repeats, the mean of per-run values with a Student-t interval (`repeat_interval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tfsbench.bench.results import RunResult
from tfsbench.bench.stats import histograms
from tfsbench.bench.stats.intervals import DEFAULT_CONFIDENCE, Interval, mean_ci

WINDOW_S = 1.0  # the time series' resolution
_EDGE = 1e-6

LATENCY_METRICS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean", "max", "min")
_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def whole_windows(run: RunResult) -> np.ndarray:
    """Successful responses in each whole measured 1 s window of a run, in order."""
    measured_s = run.summary.measured_s
    return np.asarray([p.requests - p.errors for p in run.timeseries
                       if p.t_s >= 0 and p.t_s + WINDOW_S <= measured_s + _EDGE], dtype=float)


@dataclass(frozen=True, slots=True)
class Pool:
    """One configuration's runs (one or several repeats) seen as one sample."""

    runs: tuple[RunResult, ...]

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def batch_size(self) -> int:
        return self.runs[0].config.batch_size

    @property
    def parts(self) -> tuple[histograms.Buckets, ...]:
        """Each run's latency histogram; empty when any run has none (e.g. Locust exports)."""
        parts = tuple(histograms.buckets(r.histogram) for r in self.runs)
        return () if any(p is None for p in parts) else parts  # type: ignore[return-value]

    @property
    def latency(self) -> histograms.Buckets | None:
        parts = self.parts
        return histograms.merge(parts) if parts else None

    @property
    def ok(self) -> int:
        return sum(r.summary.ok for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(r.summary.requests for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.summary.error_count for r in self.runs)

    @property
    def measured_s(self) -> float:
        return sum(r.summary.measured_s for r in self.runs)

    @property
    def windows(self) -> tuple[np.ndarray, ...]:
        return tuple(whole_windows(r) for r in self.runs)

    @property
    def partial(self) -> bool:
        return any(r.partial for r in self.runs)

    def value(self, metric: str) -> float | None:
        """The pooled value of a metric, None when the runs hold no data for it."""
        if metric in LATENCY_METRICS:
            if self.ok == 0:
                return None
            merged = self.latency
            if merged is None:  # no histograms: only a single run's own summary can be reported
                return float(getattr(self.runs[0].summary.latency_ms, metric)) if self.n_runs == 1 else None
            if metric == "mean":  # the runs' own means (HdrHistogram's), weighted by their requests
                return sum(r.summary.latency_ms.mean * r.summary.ok for r in self.runs) / self.ok
            if metric == "max":
                return float(max(r.summary.latency_ms.max for r in self.runs))
            if metric == "min":
                return float(min(r.summary.latency_ms.min for r in self.runs))
            return merged.percentile_ms(_PERCENTILES[metric])
        if metric in ("throughput_rps", "throughput_ips"):
            if self.measured_s <= 0:
                return None
            rps = self.ok / self.measured_s if len(self.runs) > 1 else self.runs[0].summary.throughput_rps
            return rps * (self.batch_size if metric == "throughput_ips" else 1)
        if metric == "error_rate":
            return self.errors / self.requests if self.requests else None
        if metric == "request_bytes":
            if not self.requests:
                return None
            return sum(r.summary.request_bytes * r.summary.requests for r in self.runs) / self.requests
        raise KeyError(metric)


def repeat_interval(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Mean of one value per repeat (e.g. throughput) with its Student-t interval."""
    return mean_ci(values, confidence)


def throughput_across_repeats(runs: Sequence[RunResult], *, per_instance: bool = False,
                              confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """'1,285 ± 40 req/s': the mean throughput of repeats and its t interval (none for one run)."""
    return mean_ci([r.summary.throughput_ips if per_instance else r.summary.throughput_rps for r in runs],
                   confidence)


def across_repeats(runs: Sequence[RunResult], metric: str, confidence: float = DEFAULT_CONFIDENCE) -> Interval | None:
    """Mean and Student-t interval of one metric (e.g. 'throughput_rps', 'p99') over repeats, each
    repeat's value read as `Pool.value` reads it; None when a repeat has no data for it."""
    values = [Pool((r,)).value(metric) for r in runs]
    if not values or any(v is None for v in values):
        return None
    return mean_ci([float(v) for v in values], confidence)  # type: ignore[arg-type]


__all__ = ["LATENCY_METRICS", "Pool", "across_repeats", "repeat_interval", "throughput_across_repeats",
           "whole_windows"]
