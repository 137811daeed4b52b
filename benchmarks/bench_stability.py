"""Does the stability rule call a steady server stable and still catch a planted change of speed?

    python -m benchmarks.bench_stability [--runs 4] [--duration 9s] [--slowdown 1.3] --out FILE.json

Two parts:

1. Real runs on loopback against a minimal HTTP server (a spawned process, keep-alive, TF Serving's
   response shape) whose service time is `--service-ms`, closed loop at concurrency 4:
   - steady, measured until stable (bound 2 x --duration): how many are judged stable, how long they took;
   - steady, fixed --duration: how many are judged stable;
   - planted: the server becomes `--slowdown` x slower at the middle of a fixed --duration run
     (counted from its first request after the warm-up): how many are still caught as unstable.
2. The rule on simulated seconds (Poisson counts, exponential latencies, seeded), where the truth is
   known: the fraction of steady and of planted-change runs judged stable, by this rule and by the
   point rule used before (perf_analyzer's: the last 3 windows' point values within 10%).

Targets: steady runs stable in >= 90% of the real until-stable runs and of the simulations; planted
changes caught in >= 90% of both.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from typing import Any

import numpy as np
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats import stability

from benchmarks import harness

RESPONSE = b'{"predictions": [[0.1, 0.2, 0.7]]}'
WARMUP_S = 1.0


def _serve(port_q: Any, service_s: float, slowdown: float, change_after_s: float | None) -> None:
    """A minimal keep-alive HTTP/1.1 server: every POST waits its service time, then answers."""

    async def main() -> None:
        first: list[float] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    if length:
                        await reader.readexactly(length)
                    now = time.perf_counter()
                    if not first:
                        first.append(now)
                    wait = service_s
                    if change_after_s is not None and now - first[0] >= WARMUP_S + change_after_s:
                        wait *= slowdown
                    await asyncio.sleep(wait)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(RESPONSE)).encode() + b"\r\n\r\n" + RESPONSE)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _one_run(args: Any, *, slowdown: float, until_stable: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    change = args.duration / 2 if slowdown != 1.0 else None
    proc = ctx.Process(target=_serve, args=(port_q, args.service_ms / 1000, slowdown, change), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=30)
        cfg = RunConfig(url=f"http://127.0.0.1:{port}", model="m", kind="constant", batch_size=1, format="row",
                        mode="closed", engine="fast", concurrency=4, warmup_s=WARMUP_S,
                        duration_s=args.duration * (2 if until_stable else 1), until_stable=until_stable)
        s = run_benchmark(cfg).summary
        return {"stable": s.stable, "reason": s.stability_reason, "measured_s": round(s.measured_s, 2),
                "throughput_rps": round(s.throughput_rps, 1), "p50_ms": s.latency_ms.p50, "p99_ms": s.latency_ms.p99}
    finally:
        proc.kill()
        proc.join(5)


def _simulated(n_s: int, slowdown: float, runs: int) -> dict[str, float]:
    def point_rule(seconds: list[tuple[int, Any]]) -> bool:
        w = max(1, len(seconds) // 6)
        groups = [seconds[k:k + w] for k in range(len(seconds) - 3 * w, len(seconds), w)]
        rates, means = [], []
        for g in groups:
            h = hist.new()
            for _, sh in g:
                hist.merge_into(h, sh)
            rates.append(sum(c for c, _ in g))
            means.append(h.get_mean_value())
        return max(rates) / min(rates) <= 1.1 and max(means) / min(means) <= 1.1  # the rule used before

    ours = points = 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        counts = [int(c) for c in rng.poisson(400, n_s)]
        seconds = []
        for k, c in enumerate(counts):
            h = hist.new()
            scale = 5000.0 * (slowdown if k >= n_s // 2 else 1.0)
            hist.record_many(h, rng.exponential(scale, c) + 1000.0)
            seconds.append((c, h))
        ours += stability.verdict(seconds, sum(counts))[0]
        points += point_rule(seconds)
    return {"stable_fraction": ours / runs, "point_rule_stable_fraction": points / runs}


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_stability", __doc__)
    p.add_argument("--runs", type=harness.positive_int, default=4, help="real runs per scenario (default 4)")
    p.add_argument("--duration", type=harness.duration, default=9.0, help="fixed run length (default 9s)")
    p.add_argument("--service-ms", type=harness.positive_float, default=4.0, help="service time (default 4 ms)")
    p.add_argument("--slowdown", type=harness.positive_float, default=1.3, help="planted change (default 1.3x)")
    p.add_argument("--simulations", type=harness.positive_int, default=100, help="simulated runs (default 100)")
    args = p.parse_args(argv)
    real = {
        "steady_until_stable": [_one_run(args, slowdown=1.0, until_stable=True) for _ in range(args.runs)],
        "steady_fixed": [_one_run(args, slowdown=1.0, until_stable=False) for _ in range(args.runs)],
        "planted_fixed": [_one_run(args, slowdown=args.slowdown, until_stable=False) for _ in range(args.runs)],
    }
    summary = {k: sum(r["stable"] for r in v) / len(v) for k, v in real.items()}
    sim = {f"{kind}_{n}s": _simulated(n, slow, args.simulations)
           for kind, slow in (("steady", 1.0), ("planted", args.slowdown)) for n in (6, 12)}
    results = {"real_runs": real, "real_stable_fraction": summary, "simulated": sim}
    targets = {
        "steady_until_stable_stable": harness.target(summary["steady_until_stable"], ">=", 0.9),
        "planted_caught": harness.target(1.0 - summary["planted_fixed"], ">=", 0.9),
        "simulated_steady_12s_stable": harness.target(sim["steady_12s"]["stable_fraction"], ">=", 0.9),
        "simulated_planted_12s_caught": harness.target(1.0 - sim["planted_12s"]["stable_fraction"], ">=", 0.9),
    }
    return harness.emit("bench_stability", args, results, targets, argv)


if __name__ == "__main__":
    raise SystemExit(main())
