"""Benchmark: CPU time per request of each engine (what decides how much load one core can offer).

    .venv/bin/python -m benchmarks.bench_engine_cpu [--requests 100000] [--rounds 3] --out FILE.json

Throughput on a shared machine swings with the neighbours; CPU seconds per request (user + system,
of this process, over a closed-loop run of N requests against nginx with a static JSON answer, see
bench/orchestrate/selfbench.py) swing much less, so this is the figure docs/run.md uses to choose the default
engine. Both validation levels are measured: `status` (any 200: the load generator's own cost) and
`full` (JSON parse and batch check, what a real run does). Medians over rounds, engines alternated.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.orchestrate.selfbench import pinned, plan_pinning, static_target
from tfsbench.bench.results import RunConfig

from benchmarks import harness

BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'


def one(url: str, engine: str, validate: str, requests: int, connections: int) -> dict[str, float]:
    config = RunConfig(url=url, model="bench", kind="constant", batch_size=1, format="row", mode="closed",
                       engine=engine, concurrency=connections, requests_limit=requests, warmup_s=0.5,
                       extra={"validate": validate, "body": BODY})
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = run_benchmark(config)
    cpu_s = time.process_time() - c0
    wall_s = time.perf_counter() - t0
    total = result.summary.requests + result.environment["client"]["warmup_requests"]
    return {"cpu_us_per_request": cpu_s / total * 1e6, "throughput_rps": result.summary.throughput_rps,
            "wall_s": wall_s}


def measure(requests: int, rounds: int, connections: int = 32) -> dict[str, Any]:
    target_cpus, client_cpus, pin_note = plan_pinning()
    runs: dict[str, list[dict[str, float]]] = {}
    # nginx's static answer has 1 prediction, so `full` validation passes with batch size 1
    cases = [("fast", "status"), ("aiohttp", "status"), ("fast", "full"), ("aiohttp", "full")]
    with static_target("nginx", target_cpus) as target, pinned(client_cpus):
        for r in range(rounds):
            for engine, validate in cases if r % 2 == 0 else list(reversed(cases)):
                n = requests if engine == "fast" else max(1000, requests // 5)
                runs.setdefault(f"{engine}/{validate}", []).append(one(target.url, engine, validate, n, connections))
    out: dict[str, Any] = {"target": target.note, "pinning": pin_note, "connections": connections, "rounds": rounds}
    for key, values in runs.items():
        out[key] = {
            "cpu_us_per_request": round(statistics.median(v["cpu_us_per_request"] for v in values), 1),
            "throughput_rps": round(statistics.median(v["throughput_rps"] for v in values)),
        }
    out["aiohttp_over_fast_cpu"] = round(out["aiohttp/status"]["cpu_us_per_request"]
                                         / out["fast/status"]["cpu_us_per_request"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_engine_cpu", __doc__)
    p.add_argument("--requests", type=harness.positive_int, default=100_000, help="per fast run (aiohttp runs send a fifth)")
    p.add_argument("--rounds", type=harness.positive_int, default=3)
    args = p.parse_args(argv)
    doc = measure(args.requests, args.rounds)
    for key in ("fast/status", "aiohttp/status", "fast/full", "aiohttp/full"):
        print(f"{key:15s} {doc[key]['cpu_us_per_request']:7.1f} us/request  {doc[key]['throughput_rps']:>8,} req/s")
    return harness.emit("bench_engine_cpu", args, doc, None, argv)


if __name__ == "__main__":
    sys.exit(main())
