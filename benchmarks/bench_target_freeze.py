"""Benchmark: status and metadata latency of the embedded target while worst-case legal requests decode.

    python -m benchmarks.bench_target_freeze [--instances 100000] [--heavy 3] [--serve-args "..."] --out FILE.json

Why (issue 13): one request must not freeze the target. It starts `tfsbench serve --port 0` as a
subprocess, sends `--heavy` gzip bodies of `--instances` rows of four long floats (at the default
--max-instances this is the largest legal numeric request: ~8 MB of JSON from ~60 KB on the wire)
one after another from a thread, and meanwhile GETs the model status and metadata on one keep-alive
connection, timing each. Target: status/metadata p99 < 50 ms. The heavy requests must all answer
200, or nothing is written (exit 1).
"""

from __future__ import annotations

import gzip
import http.client
import shlex
import statistics
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from tfsbench.server.testing import http_request, serve_process

from benchmarks import harness

ROW = b"[1.2345678901234567, 2.2345678901234567, 3.2345678901234567, 4.2345678901234567]"


def heavy_body(instances: int) -> bytes:
    return gzip.compress(b'{"instances": [' + b",".join([ROW] * instances) + b"]}", 6)


def measure(base_url: str, body: bytes, heavy: int) -> dict[str, Any]:
    statuses: list[int] = []
    heavy_s: list[float] = []

    def post() -> None:
        for _ in range(heavy):
            start = time.perf_counter()
            status = http_request(base_url, "POST", "/v1/models/numeric:predict", body,
                                  {"Content-Encoding": "gzip"}, timeout_s=120)[0]
            heavy_s.append(time.perf_counter() - start)
            statuses.append(status)

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    latencies_ms: list[float] = []
    poster = threading.Thread(target=post)
    poster.start()
    deadline = time.monotonic() + 600
    try:
        while poster.is_alive() and time.monotonic() < deadline and len(latencies_ms) < 200_000:
            for path in ("/v1/models/numeric", "/v1/models/text/metadata"):
                start = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                latencies_ms.append((time.perf_counter() - start) * 1e3)
    finally:
        poster.join(600)
        conn.close()
    if statuses != [200] * heavy or len(latencies_ms) < 2:
        raise SystemExit(f"bench_target_freeze: heavy requests answered {statuses}; {len(latencies_ms)} GETs")
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {"status_gets": len(latencies_ms), "status_p50_ms": round(cuts[49], 3),
            "status_p99_ms": round(cuts[98], 3), "status_max_ms": round(max(latencies_ms), 3),
            "heavy_request_s": [round(x, 3) for x in heavy_s]}


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_target_freeze", __doc__)
    p.add_argument("--instances", type=harness.positive_int, default=100_000, help="rows per heavy request")
    p.add_argument("--heavy", type=harness.positive_int, default=3, help="heavy requests, one after another")
    p.add_argument("--serve-args", default="", help="extra `tfsbench serve` arguments (quoted)")
    args = p.parse_args(argv)
    body = heavy_body(args.instances)
    with serve_process(*shlex.split(args.serve_args)) as server:
        # The first heavy body may start the decoding workers: warm up, then measure.
        http_request(server.base_url, "POST", "/v1/models/numeric:predict", body, {"Content-Encoding": "gzip"},
                     timeout_s=120)
        results = measure(server.base_url, body, args.heavy)
    results["heavy_body_bytes"] = len(body)
    print(f"{results['status_gets']} status/metadata GETs during {args.heavy} heavy requests "
          f"({len(body)} B gzip, {args.instances} instances, {results['heavy_request_s']} s): "
          f"p50 {results['status_p50_ms']} ms, p99 {results['status_p99_ms']} ms, max {results['status_max_ms']} ms")
    return harness.emit("bench_target_freeze", args, results,
                        {"status_p99_ms": harness.target(results["status_p99_ms"], "<", 50.0)}, argv)


if __name__ == "__main__":
    sys.exit(main())
