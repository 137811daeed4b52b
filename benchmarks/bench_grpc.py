"""Benchmark: the gRPC engine against a bare grpcio asyncio loop, and its open loop at half its ceiling.

    .venv/bin/python -m benchmarks.bench_grpc [--seconds 5] [--rounds 3] [--concurrency 16] --out FILE.json

Target: `tfsbench serve --grpc-port` (the embedded target, trivial numeric model, batch 1) in its own
process, pinned to one CPU, the client to the other. Same run, interleaved rounds:
1. bare loop: grpc.aio channel, C coroutines each awaiting `Predict(body)` back to back (the practical
   Python limit: no schedule, no histogram, no validation);
2. the engine: `tfsbench run --protocol grpc`'s code path (closed loop, C in flight, HDR recording,
   batch-size validation). Target: engine/bare >= 0.9 (median of rounds).
3. open loop at half the engine's ceiling, constant arrivals: achieved/offered within 1%.
Client CPU per request is reported for both (getrusage of the client process).
"""

from __future__ import annotations

import os
import sys

from tfsbench.bench.orchestrate.selfbench_grpc import measure

from benchmarks import harness


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_grpc", __doc__)
    p.add_argument("--seconds", type=harness.positive_float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--rounds", type=harness.positive_int, default=3, help="interleaved bare/engine rounds (default 3)")
    p.add_argument("--concurrency", type=harness.positive_int, default=16, help="requests in flight (default 16)")
    p.add_argument("--no-pin", action="store_true", help="let the OS place target and client")
    args = p.parse_args(argv)
    doc = measure(args.seconds, args.rounds, args.concurrency, pin=not args.no_pin)
    from tfsbench.payloads.grpc_pool import protocol_size_table

    # bytes per request for the docs' size table (reports/protocols.py renders it)
    doc["sizes"] = [
        {"kind": r.kind, "batch_size": r.batch_size, "raw_bytes": r.raw_bytes, "protobuf_bytes": r.protobuf_bytes,
         "json_bytes": r.json_bytes, "json_gzip_bytes": r.json_gzip_bytes,
         "protobuf_gzip_bytes": r.protobuf_gzip_bytes}
        for r in protocol_size_table(("text", "image", "numeric"), (1, 8, 64), pool_size=8)
    ]
    doc["load_avg_after"] = os.getloadavg()
    ol = doc["open_loop"]
    print(f"bare {[b['rps'] for b in doc['bare_rounds']]} req/s, engine {[e['rps'] for e in doc['engine_rounds']]} "
          f"req/s: engine/bare {doc['engine_over_bare_median']}; open loop {ol['offered_rps']} offered, "
          f"{ol['achieved_rps']} achieved ({ol['achieved_over_offered']})")
    targets = {
        "engine_over_bare": harness.target(doc["engine_over_bare_median"], ">=", 0.9),
        "open_loop_off_by": harness.target(round(abs(ol["achieved_over_offered"] - 1), 4), "<=", 0.01),
    }
    return harness.emit("bench_grpc", args, doc, targets, argv)


if __name__ == "__main__":
    sys.exit(main())
