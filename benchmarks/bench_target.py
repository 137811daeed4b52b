"""Benchmark of the embedded target itself: requests/s and server CPU per request, numeric b=1 and image b=8.

    python -m benchmarks.bench_target [--duration 10s] [--workers 1] [--client wrk|fast|aiohttp]
        [--serve-args "--no-uvloop"] --out FILE.json

Why: the self-benchmarks measure the suite's own engines against this target, so the target must
not be the bottleneck; this says how much it can take on this machine. It starts `tfsbench serve
--port 0` as a subprocess and drives it closed loop (keep-alive) with wrk when installed (through
selfbench's wrk runner), else with one of our engines (through the runner, every response validated).
Requests are what the client counted, never rate x nominal duration; an error response, or wrk output
that does not parse, stops the benchmark with exit status 1 and writes nothing. "Server CPU per
request" is the serving process's own CPU time (user + system, from /proc) over the requests it
answered, which depends much less on what else the machine runs than the rate does.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.orchestrate.selfbench import ToolRate, run_wrk
from tfsbench.bench.results import RunConfig
from tfsbench.payloads.pool import build_pool
from tfsbench.payloads.spec import PayloadSpec
from tfsbench.server.testing import serve_process

from benchmarks import harness

CASES = (("numeric", 1, 16), ("image", 8, 8))  # model (= payload kind), batch size, connections


class BenchmarkFailed(RuntimeError):
    """The measurement cannot be trusted (errors, unparsable client output): no figure is written."""


def _wrk_case(base_url: str, model: str, body: bytes, connections: int, duration_s: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="bench-target-") as tmp:
        rate = run_wrk(base_url, connections, duration_s, None, Path(tmp), path=f"/v1/models/{model}:predict",
                       body=body)
    return counted(rate, model)


def counted(rate: ToolRate, model: str) -> tuple[float, int]:
    """(req/s, requests) of a wrk run, or BenchmarkFailed: never a 0.0 that looks like a measurement."""
    if rate.rps is None or rate.requests <= 0:
        raise BenchmarkFailed(f"wrk against {model}: {rate.note or 'no request count in its output'}")
    if rate.errors:
        raise BenchmarkFailed(f"wrk against {model}: {rate.errors} error responses or socket errors")
    return rate.rps, rate.requests


def _engine_case(base_url: str, engine: str, model: str, batch: int, connections: int,
                 duration_s: float) -> tuple[float, int]:
    config = RunConfig(url=base_url, model=model, kind=model, batch_size=batch, format="row", mode="closed",
                       engine=engine, concurrency=connections, duration_s=duration_s, warmup_s=0.0)
    result = run_benchmark(config)
    s = result.summary
    if s.error_count or s.ok == 0:
        raise BenchmarkFailed(f"{engine} against {model}: {s.ok} ok, errors {dict(s.errors)} "
                              f"{list(s.error_samples)[:1]}")
    return s.throughput_rps, s.requests


def measure(duration_s: float, workers: int, serve_args: str, client: str) -> dict[str, Any]:
    bodies = {model: build_pool(PayloadSpec(model, batch_size=batch, format="row", seed=0), size=1).bodies[0]
              for model, batch, _ in CASES}
    args = ["--workers", str(workers), *shlex.split(serve_args)]
    cases = []
    with serve_process(*args) as server:
        for model, batch, connections in CASES:
            cpu_before_s = server.cpu_s()
            if client == "wrk":
                rps, requests = _wrk_case(server.base_url, model, bodies[model], connections, duration_s)
            else:
                rps, requests = _engine_case(server.base_url, client, model, batch, connections, duration_s)
            # with an engine the window also holds preflight's few requests: a slight overestimate
            cpu_us = (server.cpu_s() - cpu_before_s) / requests * 1e6
            cases.append({"model": model, "batch_size": batch, "body_bytes": len(bodies[model]),
                          "connections": connections, "requests": requests, "throughput_rps": round(rps, 1),
                          "throughput_ips": round(rps * batch, 1), "server_cpu_us_per_request": round(cpu_us, 1)})
            print(f"{model:8s} batch={batch:<3d} body={len(bodies[model]):>6d} B connections={connections:<3d} "
                  f"{rps:9.0f} req/s {rps * batch:9.0f} instances/s  server CPU {cpu_us:7.0f} us/request")
    return {"client": client, "workers": workers, "serve_args": args, "duration_s": duration_s, "cases": cases}


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser("bench_target", __doc__)
    parser.add_argument("--duration", type=harness.duration, default=10.0, help="per case (default 10s)")
    parser.add_argument("--workers", type=harness.positive_int, default=1, help="tfsbench serve --workers")
    parser.add_argument("--serve-args", default="", help="extra arguments for tfsbench serve")
    parser.add_argument("--client", choices=("auto", "wrk", "fast", "aiohttp"), default="auto",
                        help="auto: wrk when installed, else the fast engine")
    args = parser.parse_args(argv)
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "fast"
    try:
        results = measure(args.duration, args.workers, args.serve_args, args.client)
    except BenchmarkFailed as exc:
        print(f"bench_target: failed: {exc}", file=sys.stderr)
        return 1
    return harness.emit("bench_target", args, results, None, argv)


if __name__ == "__main__":
    raise SystemExit(main())
