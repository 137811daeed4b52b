"""Benchmark of `tfsbench check`'s statistics: why percentiles are bootstrapped by order statistics.

    python -m benchmarks.bench_gates [--samples 100000] [--replicates 2000] --out FILE.json

A naive bootstrap of a percentile from an HDR histogram draws a multinomial over every bucket for
every replicate (O(replicates x buckets)); the exact order-statistic shortcut used by tfsbench.reports.check
draws one Beta variate per replicate (O(replicates x log buckets)). Both give the same distribution;
this prints their times, their 95% intervals, and the time of a whole `check` over a 24-run sweep
with a baseline, all within one process so the ratios are meaningful on a noisy machine.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from tfsbench.bench.measure import hist
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, TimePoint
from tfsbench.bench.stats import histograms
from tfsbench.reports import check as gates

from benchmarks import harness


def _run(kind: str, batch: int, conc: int, seed: int, n: int = 20_000) -> RunResult:
    rng = np.random.default_rng(seed * 1000 + batch * 10 + conc)
    latencies_us = rng.lognormal(math.log(2000 + 300 * batch), 0.35, size=n)
    h = hist.new()
    hist.record_many(h, latencies_us)
    # the summary straight from the samples: hdrh's own mean/stddev walk every bucket (0.2 s a run)
    ms = latencies_us / 1000.0
    p50, p90, p95, p99, p999 = (float(x) for x in np.percentile(ms, [50, 90, 95, 99, 99.9]))
    latency = LatencySummary(mean=float(ms.mean()), p50=p50, p90=p90, p95=p95, p99=p99, p999=p999,
                             max=float(ms.max()), min=float(ms.min()), stdev=float(ms.std()))
    summary = Summary(
        requests=n, ok=n, errors={}, throughput_rps=n / 10, throughput_ips=n / 10 * batch,
        latency_ms=latency, request_bytes=100.0, response_bytes=50.0,
        raw_bytes=16.0, stable=True, stability_reason="", measured_s=10.0,
    )
    config = RunConfig(url="http://127.0.0.1:8501", model=kind, kind=kind, batch_size=batch, format="row",
                       mode="closed", engine="fast", concurrency=conc)
    series = tuple(TimePoint(float(t), int(n / 10 + rng.normal(0, 20)), 0, None, None) for t in range(10))
    return RunResult(config=config, environment={}, summary=summary, timeseries=series, histogram=hist.encode(h))


def measure(samples: int, replicates: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    h = hist.new()
    hist.record_many(h, rng.lognormal(math.log(5000), 0.4, size=samples))
    b = histograms.buckets(hist.encode(h))
    values, counts = b.values_ms, b.counts
    n = int(counts.sum())
    rank = math.ceil(0.99 * n)

    t = time.perf_counter()
    draws = rng.multinomial(n, counts / n, size=replicates)
    naive = values[(np.cumsum(draws, axis=1) >= rank).argmax(axis=1)]
    naive_s = time.perf_counter() - t

    t = time.perf_counter()
    position = np.floor(n * rng.beta(rank, n - rank + 1, size=replicates)).astype(np.int64) + 1
    fast = values[np.searchsorted(np.cumsum(counts), position)]
    fast_s = time.perf_counter() - t

    per_run = max(500, samples // 5)  # 20,000 latencies per run at the default size
    runs = [_run(k, b, c, 1, per_run) for k in ("numeric", "text", "image") for b in (1, 8, 32, 64) for c in (1, 4)]
    base = [_run(k, b, c, 2, per_run) for k in ("numeric", "text", "image") for b in (1, 8, 32, 64) for c in (1, 4)]
    t = time.perf_counter()
    outcome = gates.check_results(runs, ["p99<1s", "error_rate<1%"], baseline=base)
    check_s = time.perf_counter() - t

    return {
        "samples": samples,
        "replicates": replicates,
        "histogram_buckets": len(values),
        "naive_bootstrap_ms": naive_s * 1000,
        "order_statistic_bootstrap_ms": fast_s * 1000,
        "speedup": naive_s / fast_s,
        "naive_ci_ms": [float(x) for x in np.percentile(naive, [2.5, 97.5])],
        "order_statistic_ci_ms": [float(x) for x in np.percentile(fast, [2.5, 97.5])],
        "check_24_runs_with_baseline_s": check_s,
        "checks": len(outcome.checks),
    }


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser("bench_gates", __doc__)
    parser.add_argument("--samples", type=harness.positive_int, default=100_000, help="latencies in the histogram")
    parser.add_argument("--replicates", type=harness.positive_int, default=2000, help="bootstrap replicates")
    args = parser.parse_args(argv)
    out = measure(args.samples, args.replicates)
    print(f"p99 bootstrap, {out['replicates']} replicates over {out['histogram_buckets']} buckets: "
          f"naive {out['naive_bootstrap_ms']:.1f} ms, order statistic {out['order_statistic_bootstrap_ms']:.2f} ms "
          f"({out['speedup']:.0f}x); check of 24 runs with a baseline: {out['check_24_runs_with_baseline_s']:.2f} s")
    return harness.emit("bench_gates", args, out, None, argv)


if __name__ == "__main__":
    raise SystemExit(main())
