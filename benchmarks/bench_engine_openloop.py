"""Benchmark: does the open loop keep its schedule at half the engine's ceiling?

    .venv/bin/python -m benchmarks.bench_engine_openloop [--engine fast] [--seconds 10] --out FILE.json

Against a target that is not the bottleneck (nginx with a static JSON answer when installed, else
the built-in static server; see bench/orchestrate/selfbench.py), pinned to one CPU and the client to the other:
1. the ceiling: closed loop, 32 connections, status-only validation;
2. open loop at half that rate, constant arrivals: achieved rate / offered rate (target: within
   1%) and the schedule lag percentiles (target: p99 under 1 ms).
Writes one JSON document to --out. A benchmark script, not a test. On a busy
machine the lag tail is the OS's run queue, not the engine: `--fifo` (root) runs the client under
SCHED_FIFO to tell the two apart.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.orchestrate.selfbench import pinned, plan_pinning, static_target
from tfsbench.bench.results import RunConfig

from benchmarks import harness

BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'


def _config(url: str, engine: str, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(url=url, model="bench", kind="constant", batch_size=1, format="row",
                                engine=engine, warmup_s=1.0, extra={"validate": "status", "body": BODY})
    base.update(kw)
    return RunConfig(**base)


def measure(engine: str, seconds: float, connections: int = 32, fraction: float = 0.5,
            pin: bool = True) -> dict[str, Any]:
    target_cpus, client_cpus, pin_note = plan_pinning() if pin else (None, None, "not pinned")
    with static_target("nginx", target_cpus) as target, pinned(client_cpus):
        ceiling = run_benchmark(_config(target.url, engine, mode="closed", concurrency=connections,
                                        duration_s=seconds)).summary
        rate = round(ceiling.throughput_rps * fraction)
        result = run_benchmark(_config(target.url, engine, mode="open", rate_rps=float(rate), arrival="constant",
                                       duration_s=seconds, max_inflight=1000))
    s = result.summary
    lag = s.schedule_lag_ms
    return {
        "engine": engine,
        "target": target.note,
        "pinning": pin_note,
        "ceiling_rps": round(ceiling.throughput_rps, 1),
        "ceiling_client_cpu_pct": round(ceiling.client_cpu_pct, 1),
        "offered_rps": rate,
        "achieved_rps": round(s.throughput_rps, 1),
        "achieved_over_offered": round(s.throughput_rps / rate, 4),
        "errors": dict(s.errors),
        "refused_inflight": s.refused_inflight,
        "late_requests": s.late_requests,
        "late_fraction": round(s.late_requests / s.requests, 5) if s.requests else None,
        "lag_ms": {"p50": lag.p50, "p90": lag.p90, "p99": lag.p99, "p999": lag.p999, "max": lag.max} if lag else None,
        "latency_ms": {"p50": s.latency_ms.p50, "p99": s.latency_ms.p99},
        "client_cpu_pct": round(s.client_cpu_pct, 1),
        "meets_rate_target": abs(s.throughput_rps / rate - 1) <= 0.01,
        "meets_lag_target": bool(lag and lag.p99 < 1.0),
    }


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_engine_openloop", __doc__)
    p.add_argument("--engine", default="fast", choices=("fast", "aiohttp"))
    p.add_argument("--seconds", type=harness.positive_float, default=10.0)
    p.add_argument("--fraction", type=harness.positive_float, default=0.5, help="open-loop rate as a fraction of the ceiling")
    p.add_argument("--no-pin", action="store_true", help="let the OS place target and client")
    p.add_argument("--fifo", action="store_true",
                   help="diagnostic: run the client under SCHED_FIFO (root) to separate the engine's own "
                        "precision from a busy machine's scheduling delays")
    args = p.parse_args(argv)
    if args.fifo:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # threads started later inherit it
    doc = measure(args.engine, args.seconds, fraction=args.fraction, pin=not args.no_pin)
    doc["scheduling"] = "SCHED_FIFO 1 (diagnostic)" if args.fifo else "normal (SCHED_OTHER)"
    doc["load_avg_after"] = os.getloadavg()
    lag = doc["lag_ms"] or {}
    print(f"{doc['engine']}: ceiling {doc['ceiling_rps']:,} req/s; offered {doc['offered_rps']:,}, achieved "
          f"{doc['achieved_rps']:,} ({doc['achieved_over_offered']}); lag p99 {lag.get('p99')} ms")
    targets = {
        "achieved_off_by": harness.target(round(abs(doc["achieved_over_offered"] - 1), 4), "<=", 0.01),
        "lag_p99_ms": harness.target(lag.get("p99"), "<", 1.0),
    }
    return harness.emit("bench_engine_openloop", args, doc, targets, argv)


if __name__ == "__main__":
    sys.exit(main())
