"""Is B different from A? Side-by-side metrics with relative change and a significance test.

A difference counts only if it is both larger than a noise threshold (5% by default, as asv and
pyperf do) and statistically significant:
- latency percentiles: bootstrap over the HDR histograms. Each replicate resamples a run's N
  recorded requests with replacement and takes the percentile (drawn exactly as an order statistic,
  see `tfsbench.reports.latency.bootstrap_percentile`), for A and for B; the 95% percentile interval of the
  relative difference must exclude zero. Requests are treated as independent, which understates noise on a bursty run; the
  threshold is the guard against that.
- throughput: the same bootstrap over the run's per-second counts of successful requests.
- error rate: a two-proportion z-test (|z| > 1.96) and at least 0.1 percentage points apart.
- request bytes: deterministic; a change is a change when over 0.5%.
Everything else is marked `~` (within noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tfsbench.bench.results import RunResult
from tfsbench.reports.dataset import Source, config_name, load_of, match_key
from tfsbench.reports.latency import Buckets, bootstrap_percentile, buckets

NOISE_THRESHOLD = 0.05
RESAMPLES = 2000
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
LOWER_IS_BETTER = {"p50", "p90", "p99", "p999", "error_rate", "request_bytes"}
METRIC_LABELS = {
    "throughput_rps": "throughput (req/s)",
    "throughput_ips": "throughput (inst/s)",
    "p50": "p50 (ms)",
    "p90": "p90 (ms)",
    "p99": "p99 (ms)",
    "p999": "p99.9 (ms)",
    "error_rate": "error rate",
    "request_bytes": "request bytes",
}
TEST_DESCRIPTION = (
    "A change is significant when it exceeds the noise threshold AND its 95% bootstrap interval "
    "excludes zero (latency: resampling each run's requests from its HDR histogram; throughput: resampling its "
    "per-second counts); error rate uses a two-proportion z-test; '~' marks differences within noise."
)


@dataclass(frozen=True, slots=True)
class MetricChange:
    name: str
    a: float | None
    b: float | None
    rel_change: float | None  # (b - a) / a
    ci: tuple[float, float] | None  # 95% interval of rel_change, when a resampling test ran
    significant: bool
    test: str  # bootstrap-histogram | bootstrap-seconds | z-test | exact | threshold-only | none

    @property
    def better(self) -> bool | None:
        if not self.significant or (self.rel_change is None and self.name != "error_rate"):
            return None
        delta = (self.b or 0.0) - (self.a or 0.0)
        return delta < 0 if self.name in LOWER_IS_BETTER else delta > 0

    def change_text(self) -> str:
        """'+12.3%', '~ -1.0%', or for error rate '+1.20 pp'."""
        if self.a is None or self.b is None:
            return "n/a"
        if self.name == "error_rate":
            text = f"{100 * (self.b - self.a):+.2f} pp"
        elif self.rel_change is None:
            return "n/a"
        else:
            text = f"{100 * self.rel_change:+.1f}%"
        return text if self.significant else f"~ {text}"


@dataclass(frozen=True, slots=True)
class PairRow:
    label: str
    a: RunResult
    b: RunResult
    metrics: dict[str, MetricChange] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComparisonTable:
    baseline_name: str
    other_name: str
    rows: tuple[PairRow, ...]
    unmatched_a: tuple[str, ...] = ()
    unmatched_b: tuple[str, ...] = ()
    noise_threshold: float = NOISE_THRESHOLD
    resamples: int = RESAMPLES

    def summary_counts(self) -> dict[str, int]:
        out = {"better": 0, "worse": 0, "within noise": 0}
        for row in self.rows:
            for m in row.metrics.values():
                if m.better is True:
                    out["better"] += 1
                elif m.better is False:
                    out["worse"] += 1
                else:
                    out["within noise"] += 1
        return out


def _pair_runs(a: Sequence[RunResult], b: Sequence[RunResult]) -> tuple[list[tuple[RunResult, RunResult]], list, list]:
    if len(a) == 1 and len(b) == 1:
        return [(a[0], b[0])], [], []
    for key_fn in (match_key, lambda r: match_key(r)[1:]):  # then ignore the model name
        index_b: dict[tuple, RunResult] = {}
        for r in b:
            index_b.setdefault(key_fn(r), r)
        pairs, used, missing_a = [], set(), []
        for r in a:
            other = index_b.get(key_fn(r))
            if other is not None and id(other) not in used:
                pairs.append((r, other))
                used.add(id(other))
            else:
                missing_a.append(r)
        if pairs:
            missing_b = [r for r in b if id(r) not in used]
            return pairs, missing_a, missing_b
    return [], list(a), list(b)


def _row_label(a: RunResult, b: RunResult) -> str:
    la = a.config.label_text()
    lb = b.config.label_text()
    return la if la == lb else f"{la} vs {lb}"


def compare_runs(
    a_runs: Sequence[RunResult],
    b_runs: Sequence[RunResult],
    *,
    baseline_name: str = "A",
    other_name: str = "B",
    noise_threshold: float = NOISE_THRESHOLD,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> ComparisonTable:
    rng = np.random.default_rng(seed)
    pairs, miss_a, miss_b = _pair_runs(a_runs, b_runs)
    pairs.sort(key=lambda p: (p[0].config.kind, p[0].config.batch_size, p[0].config.format, load_of(p[0])))
    rows = tuple(
        PairRow(label=_row_label(ra, rb), a=ra, b=rb,
                metrics=compare_pair(ra, rb, rng=rng, noise_threshold=noise_threshold, resamples=resamples))
        for ra, rb in pairs
    )
    return ComparisonTable(
        baseline_name=baseline_name,
        other_name=other_name,
        rows=rows,
        unmatched_a=tuple(r.config.label_text() for r in miss_a),
        unmatched_b=tuple(r.config.label_text() for r in miss_b),
        noise_threshold=noise_threshold,
        resamples=resamples,
    )


def compare_sources(a: Source, b: Source, **kwargs) -> ComparisonTable:
    return compare_runs(a.runs, b.runs, baseline_name=a.name, other_name=b.name, **kwargs)


def compare_pair(
    a: RunResult,
    b: RunResult,
    *,
    rng: np.random.Generator | None = None,
    noise_threshold: float = NOISE_THRESHOLD,
    resamples: int = RESAMPLES,
) -> dict[str, MetricChange]:
    rng = rng or np.random.default_rng(0)
    out: dict[str, MetricChange] = {}
    out["throughput_rps"] = _throughput_change(a, b, rng, noise_threshold, resamples)
    out.update(_percentile_changes(a, b, rng, noise_threshold, resamples))
    out["error_rate"] = _error_rate_change(a, b)
    out["request_bytes"] = _exact_change("request_bytes", a.summary.request_bytes, b.summary.request_bytes, 0.005)
    return out


def _rel(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not a:
        return None
    return (b - a) / a


def _ci(samples: np.ndarray) -> tuple[float, float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size < 10:
        return None
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def _decide(rel: float | None, ci: tuple[float, float] | None, threshold: float) -> bool:
    if rel is None or abs(rel) < threshold:
        return False
    if ci is None:
        return True
    return ci[0] > 0 or ci[1] < 0


def _resample_percentiles(b: Buckets, rng: np.random.Generator, resamples: int) -> dict[str, np.ndarray]:
    return {name: bootstrap_percentile(b, q, resamples, rng) for name, q in PERCENTILES}


def _percentile_changes(a: RunResult, b: RunResult, rng: np.random.Generator, threshold: float,
                        resamples: int) -> dict[str, MetricChange]:
    out: dict[str, MetricChange] = {}
    ha, hb = buckets(a.histogram), buckets(b.histogram)
    if a.summary.ok == 0 or b.summary.ok == 0:
        for name, _ in PERCENTILES:
            out[name] = MetricChange(name, None, None, None, None, False, "none")
        return out
    if ha is not None and hb is not None:
        ra, rb = _resample_percentiles(ha, rng, resamples), _resample_percentiles(hb, rng, resamples)
        for name, q in PERCENTILES:
            va, vb = ha.percentile_ms(q), hb.percentile_ms(q)
            rel = _rel(va, vb)
            ci = _ci((rb[name] - ra[name]) / ra[name]) if va else None
            out[name] = MetricChange(name, va, vb, rel, ci, _decide(rel, ci, threshold), "bootstrap-histogram")
        return out
    for name, _ in PERCENTILES:  # no histograms (e.g. Locust): compare the reported values only
        va, vb = getattr(a.summary.latency_ms, name), getattr(b.summary.latency_ms, name)
        rel = _rel(va, vb)
        out[name] = MetricChange(name, va, vb, rel, None, _decide(rel, None, threshold * 2), "threshold-only")
    return out


def _per_second_ok(run: RunResult) -> np.ndarray:
    return np.asarray([p.requests - p.errors for p in run.timeseries if p.t_s >= 0], dtype=float)


def _throughput_change(a: RunResult, b: RunResult, rng: np.random.Generator, threshold: float,
                       resamples: int) -> MetricChange:
    va, vb = a.summary.throughput_rps, b.summary.throughput_rps
    rel = _rel(va, vb)
    sa, sb = _per_second_ok(a), _per_second_ok(b)
    if sa.size >= 3 and sb.size >= 3 and sa.sum() > 0:
        ma = rng.choice(sa, size=(resamples, sa.size)).mean(axis=1)
        mb = rng.choice(sb, size=(resamples, sb.size)).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ci = _ci(mb / ma - 1.0)
        return MetricChange("throughput_rps", va, vb, rel, ci, _decide(rel, ci, threshold), "bootstrap-seconds")
    return MetricChange("throughput_rps", va, vb, rel, None, _decide(rel, None, threshold * 2), "threshold-only")


def _error_rate_change(a: RunResult, b: RunResult) -> MetricChange:
    na, nb = a.summary.requests, b.summary.requests
    ea, eb = a.summary.error_count, b.summary.error_count
    if not na or not nb:
        return MetricChange("error_rate", None, None, None, None, False, "none")
    pa, pb = ea / na, eb / nb
    pooled = (ea + eb) / (na + nb)
    se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)) if 0 < pooled < 1 else 0.0
    z = (pb - pa) / se if se else 0.0
    significant = abs(z) > 1.96 and abs(pb - pa) >= 0.001
    return MetricChange("error_rate", pa, pb, _rel(pa, pb), None, significant, "z-test")


def _exact_change(name: str, a: float, b: float, threshold: float) -> MetricChange:
    rel = _rel(a, b)
    return MetricChange(name, a, b, rel, None, rel is not None and abs(rel) >= threshold, "exact")


__all__ = [
    "ComparisonTable",
    "MetricChange",
    "PairRow",
    "TEST_DESCRIPTION",
    "METRIC_LABELS",
    "compare_pair",
    "compare_runs",
    "compare_sources",
    "config_name",
]
