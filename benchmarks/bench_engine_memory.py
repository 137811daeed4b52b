"""Benchmark: memory stays flat however many requests a run sends (target: +100 MB at 10 million).

    .venv/bin/python -m benchmarks.bench_engine_memory [--requests 2000000] [--engine fast] --out FILE.json

Runs one closed-loop run of N requests against a static target (nginx when installed; see
bench/orchestrate/selfbench.py) and samples this process's resident memory (RSS, /proc/self/statm) twice a
second from the progress callback. Growth is measured from the first sample after 5% of the
requests (pools, connections and histograms exist by then) to the last sample while sending (the
result's assembly afterwards is a one-off cost, reported apart), and extrapolated linearly to 10
million requests; the extrapolation is what docs/performance.md quotes when N < 10M, and says so.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from tfsbench.bench.measure.runner import ProgressUpdate, run_benchmark
from tfsbench.bench.orchestrate.selfbench import pinned, plan_pinning, static_target
from tfsbench.bench.results import RunConfig

from benchmarks import harness

BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE / 2**20


def measure(requests: int, engine: str, connections: int = 32) -> dict[str, Any]:
    samples: list[tuple[int, float]] = []

    def progress(u: ProgressUpdate) -> None:
        if u.phase == "measure":
            samples.append((u.requests, rss_mb()))

    target_cpus, client_cpus, pin_note = plan_pinning()
    rss_before = rss_mb()
    t0 = time.perf_counter()
    with static_target("nginx", target_cpus) as target, pinned(client_cpus):
        config = RunConfig(url=target.url, model="bench", kind="constant", batch_size=1, format="row",
                           mode="closed", engine=engine, concurrency=connections, requests_limit=requests,
                           warmup_s=1.0, extra={"validate": "status", "body": BODY})
        result = run_benchmark(config, progress=progress)
    wall_s = time.perf_counter() - t0
    rss_end = rss_mb()
    s = result.summary
    base = next(((n, m) for n, m in samples if n >= requests * 0.05), samples[0] if samples else (0, rss_before))
    last = samples[-1] if samples else (s.requests, rss_end)
    growth_mb = last[1] - base[1]  # while sending; the one-off cost of building the result comes after
    per_million = growth_mb / max(1e-9, (last[0] - base[0]) / 1e6)
    return {
        "engine": engine,
        "target": target.note,
        "pinning": pin_note,
        "requests": s.requests,
        "errors": dict(s.errors),
        "throughput_rps": round(s.throughput_rps, 1),
        "wall_s": round(wall_s, 1),
        "rss_before_run_mb": round(rss_before, 1),
        "rss_baseline_mb": round(base[1], 1),
        "rss_baseline_at_requests": base[0],
        "rss_last_sample_mb": round(last[1], 1),
        "rss_last_sample_at_requests": last[0],
        "rss_after_result_mb": round(rss_end, 1),
        "rss_peak_mb": round(max([m for _, m in samples] + [rss_end]), 1),
        "growth_mb": round(growth_mb, 2),
        "growth_mb_per_million_requests": round(per_million, 3),
        "extrapolated_growth_mb_at_10M": round(per_million * 10, 1),
        "timeseries_points": len(result.timeseries),
        "samples": [(n, round(m, 1)) for n, m in samples[:: max(1, len(samples) // 20)]],
    }


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_engine_memory", __doc__)
    p.add_argument("--requests", type=harness.positive_int, default=2_000_000)
    p.add_argument("--engine", default="fast", choices=("fast", "aiohttp"))
    args = p.parse_args(argv)
    doc = measure(args.requests, args.engine)
    print(f"{doc['engine']}: {doc['requests']:,} requests, RSS {doc['rss_baseline_mb']} -> "
          f"{doc['rss_last_sample_mb']} MB (+{doc['growth_mb']} MB; {doc['extrapolated_growth_mb_at_10M']} MB "
          f"extrapolated to 10M)")
    targets = {"growth_mb_at_10M": harness.target(doc["extrapolated_growth_mb_at_10M"], "<", 100.0)}
    return harness.emit("bench_engine_memory", args, doc, targets, argv)


if __name__ == "__main__":
    sys.exit(main())
