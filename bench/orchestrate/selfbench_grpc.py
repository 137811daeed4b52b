"""selfbench for gRPC: the grpc engine against a bare grpcio asyncio loop, same target, same run.

The target is `tfsbench serve --grpc-port 0` (the embedded target, numeric demo model, batch 1) in its
own process, pinned to one CPU and the client to the other. Interleaved rounds: the bare loop (C
coroutines awaiting Predict back to back: the practical Python limit, no schedule, histogram or
validation), then the engine (closed loop, C in flight, HDR recording, batch validation); then an open
loop at half the engine's ceiling. Used by `tfsbench selfbench --protocol grpc` and
benchmarks/bench_grpc.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tfsbench.bench.orchestrate.selfbench import pinned, plan_pinning

_GRPC_RE = re.compile(r"gRPC listening on (\S+)")
_REST_RE = re.compile(r"serve: listening on (http://\S+)")


@contextmanager
def serve_both(cpus: set[int] | None) -> Iterator[tuple[str, str]]:
    """`tfsbench serve --port 0 --grpc-port 0` in a subprocess (pinned to `cpus`); yields
    (REST base URL, grpc://HOST:PORT) of the same process."""
    env = dict(os.environ, GRPC_VERBOSITY="NONE")
    # No preexec_fn: it forces a plain fork() that runs Python in the child, and this process may hold
    # grpcio's threads (a fork with their locks held can hang the child before it execs). The target
    # is pinned right after it starts instead; it is still importing then, long before it serves.
    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "serve", "--port", "0", "--grpc-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    rest: list[str] = []
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _GRPC_RE.search(line)
            if match:
                found.append(match.group(1))
            match = _REST_RE.search(line)
            if match:
                rest.append(match.group(1))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    try:
        while not (found and rest):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tfsbench serve did not announce its ports")
            reader.join(0.05)
        yield rest[0], f"grpc://{found[0]}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def grpc_target(cpus: set[int] | None) -> Iterator[str]:
    """Like serve_both, yielding only grpc://HOST:PORT."""
    with serve_both(cpus) as (_, grpc_url):
        yield grpc_url


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bare_loop(url: str, bodies: tuple[bytes, ...], concurrency: int, seconds: float) -> dict[str, Any]:
    """The practical limit: grpc.aio, C coroutines awaiting the same Predict calls back to back."""
    import grpc
    from tfsbench.bench.measure.engine_grpc import channel_options, check_grpc_url
    from tfsbench.payloads.tfs_proto import PREDICT_METHOD

    address, _ = check_grpc_url(url)

    async def main() -> tuple[int, float, float]:
        async with grpc.aio.insecure_channel(address, options=channel_options(64 * 2**20)) as channel:
            call = channel.unary_unary(PREDICT_METHOD)
            await call(bodies[0], timeout=10)  # connect before the clock starts
            count = 0
            end = time.perf_counter() + seconds

            async def worker(i: int) -> None:
                nonlocal count
                n = len(bodies)
                while time.perf_counter() < end:
                    await call(bodies[i % n], timeout=30)
                    count += 1
                    i += concurrency

            cpu0, t0 = _cpu_s(), time.perf_counter()
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            return count, time.perf_counter() - t0, _cpu_s() - cpu0

    try:
        import uvloop

        count, elapsed, cpu = uvloop.run(main())
    except ImportError:
        count, elapsed, cpu = asyncio.run(main())
    return {"rps": round(count / elapsed, 1), "requests": count, "cpu_us_per_request": round(cpu / count * 1e6, 1)}


def engine_run(url: str, pool: Any, concurrency: int | None, seconds: float, rate: float | None = None) -> Any:
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import RunConfig

    config = RunConfig(url=url, model="numeric", kind="numeric", batch_size=1, format="row",
                       mode="closed" if rate is None else "open", engine="grpc", protocol="grpc",
                       concurrency=concurrency, rate_rps=rate, arrival="constant" if rate else None,
                       duration_s=seconds, warmup_s=1.0, max_inflight=1000 if rate else None)
    return run_benchmark(config, pool=pool).summary


def measure(seconds: float, rounds: int, concurrency: int, pin: bool = True) -> dict[str, Any]:
    from tfsbench.payloads.grpc_pool import GrpcTarget, build_grpc_pool
    from tfsbench.payloads.spec import PayloadSpec

    pool = build_grpc_pool(PayloadSpec("numeric", 1), GrpcTarget("numeric"), 64)
    target_cpus, client_cpus, pin_note = plan_pinning() if pin else (None, None, "not pinned")
    bare: list[dict[str, Any]] = []
    engine: list[dict[str, Any]] = []
    with grpc_target(target_cpus) as url, pinned(client_cpus):
        bare_loop(url, pool.bodies, concurrency, 1.0)  # warm both sides
        for _ in range(rounds):
            bare.append(bare_loop(url, pool.bodies, concurrency, seconds))
            s = engine_run(url, pool, concurrency, seconds)
            engine.append({"rps": round(s.throughput_rps, 1), "errors": dict(s.errors),
                           "cpu_us_per_request": round(s.client_cpu_pct / 100 / max(s.throughput_rps, 1e-9) * 1e6, 1),
                           "p50_ms": s.latency_ms.p50, "p99_ms": s.latency_ms.p99})
        ceiling = statistics.median(e["rps"] for e in engine)
        rate = round(ceiling / 2)
        s = engine_run(url, pool, None, seconds * 2, rate=float(rate))
    ratios = [e["rps"] / b["rps"] for e, b in zip(engine, bare, strict=True)]
    lag = s.schedule_lag_ms
    return {
        "target": "tfsbench serve --grpc-port (numeric demo model, batch 1)",
        "pinning": pin_note,
        "concurrency": concurrency,
        "bare_rounds": bare,
        "engine_rounds": engine,
        "engine_over_bare": [round(r, 3) for r in ratios],
        "engine_over_bare_median": round(statistics.median(ratios), 3),
        "open_loop": {
            "offered_rps": rate,
            "achieved_rps": round(s.throughput_rps, 1),
            "achieved_over_offered": round(s.throughput_rps / rate, 4),
            "errors": dict(s.errors),
            "lag_ms": {"p50": lag.p50, "p99": lag.p99, "max": lag.max} if lag else None,
            "latency_ms": {"p50": s.latency_ms.p50, "p99": s.latency_ms.p99},
        },
    }
