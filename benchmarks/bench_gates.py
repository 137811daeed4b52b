"""Benchmark of `tfsbench check`'s statistics: why percentiles are bootstrapped by order statistics.

    python -m benchmarks.bench_gates

A naive bootstrap of a percentile from an HDR histogram draws a multinomial over every bucket for
every replicate (O(replicates x buckets)); the exact order-statistic shortcut used by tfsbench.reports.check
draws one Beta variate per replicate (O(replicates x log buckets)). Both give the same distribution;
this prints their times, their 95% intervals, and the time of a whole `check` over a 24-run sweep
with a baseline, all within one process so the ratios are meaningful on a noisy machine.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
from tfsbench.bench.measure import hist
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, TimePoint
from tfsbench.reports import check as gates


def _run(kind: str, batch: int, conc: int, seed: int, n: int = 20_000) -> RunResult:
    rng = np.random.default_rng(seed * 1000 + batch * 10 + conc)
    h = hist.new()
    hist.record_many(h, rng.lognormal(math.log(2000 + 300 * batch), 0.35, size=n))
    summary = Summary(
        requests=n, ok=n, errors={}, throughput_rps=n / 10, throughput_ips=n / 10 * batch,
        latency_ms=LatencySummary(**hist.summary_ms(h)), request_bytes=100.0, response_bytes=50.0,
        raw_bytes=16.0, stable=True, stability_reason="", measured_s=10.0,
    )
    config = RunConfig(url="http://127.0.0.1:8501", model=kind, kind=kind, batch_size=batch, format="row",
                       mode="closed", engine="fast", concurrency=conc)
    series = tuple(TimePoint(float(t), int(n / 10 + rng.normal(0, 20)), 0, None, None) for t in range(10))
    return RunResult(config=config, environment={}, summary=summary, timeseries=series, histogram=hist.encode(h))


def main() -> dict[str, float]:
    rng = np.random.default_rng(0)
    h = hist.new()
    hist.record_many(h, rng.lognormal(math.log(5000), 0.4, size=100_000))
    values, counts = gates.histogram_bins(hist.encode(h))
    n = int(counts.sum())
    rank = math.ceil(0.99 * n)
    replicates = 2000

    t = time.perf_counter()
    draws = rng.multinomial(n, counts / n, size=replicates)
    naive = values[(np.cumsum(draws, axis=1) >= rank).argmax(axis=1)]
    naive_s = time.perf_counter() - t

    t = time.perf_counter()
    position = np.floor(n * rng.beta(rank, n - rank + 1, size=replicates)).astype(np.int64) + 1
    fast = values[np.searchsorted(np.cumsum(counts), position)]
    fast_s = time.perf_counter() - t

    runs = [_run(k, b, c, 1) for k in ("numeric", "text", "image") for b in (1, 8, 32, 64) for c in (1, 4)]
    base = [_run(k, b, c, 2) for k in ("numeric", "text", "image") for b in (1, 8, 32, 64) for c in (1, 4)]
    t = time.perf_counter()
    outcome = gates.check_results(runs, ["p99<1s", "error_rate<1%"], baseline=base)
    check_s = time.perf_counter() - t

    out = {
        "histogram_buckets": float(len(values)),
        "naive_bootstrap_ms": naive_s * 1000,
        "order_statistic_bootstrap_ms": fast_s * 1000,
        "speedup": naive_s / fast_s,
        "naive_ci_ms": [float(x) for x in np.percentile(naive, [2.5, 97.5])],
        "order_statistic_ci_ms": [float(x) for x in np.percentile(fast, [2.5, 97.5])],
        "check_24_runs_with_baseline_s": check_s,
        "checks": float(len(outcome.checks)),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
