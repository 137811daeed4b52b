"""Benchmark of the payloads package: encoding speed and size vs the naive client, pool build times.

    python -m benchmarks.bench_payloads [--quick] --out FILE.json

1. Encoding a 64 x 784 float32 batch (an MNIST-sized row request) with our codec (orjson, float32
   shortest repr) against the common client code `json.dumps({"instances": array.tolist()})`; the
   target is >= 10x faster. Both wire sizes are printed (the naive path writes float64 reprs).
2. Decoding that body against a signature (what the embedded server does per request) against
   `np.array(json.loads(body)["instances"], dtype=np.float32)`.
3. Building a 64-body pool per kind and batch size (the set-up cost paid before a run).

Timings are medians of several repeats (time.perf_counter); ratios are taken within one run.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import orjson
from tfsbench.payloads.codec import decode_request, encode_request
from tfsbench.payloads.pool import build_pool
from tfsbench.payloads.signature import SignatureSpec, TensorSpec
from tfsbench.payloads.spec import PayloadSpec

from benchmarks import harness

SPEEDUP_TARGET = 10.0


def median_s(fn: Callable[[], object], loops: int, repeats: int) -> float:
    """Median over `repeats` of the mean time per call over `loops` calls."""
    fn()  # warmup, not data
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def bench_encode(quick: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    batch = rng.random((64, 784), dtype=np.float32)
    ours_body = encode_request({"x": batch}, "row")
    naive_body = json.dumps({"instances": batch.tolist()}).encode()
    # Same tensor on both sides (the naive body holds float64 reprs of the same float32 values).
    assert np.array_equal(np.array(json.loads(ours_body)["instances"], dtype=np.float32), batch)
    assert np.array_equal(np.array(json.loads(naive_body)["instances"], dtype=np.float32), batch)
    loops, repeats = (5, 5) if quick else (20, 7)
    ours_s = median_s(lambda: encode_request({"x": batch}, "row"), loops, repeats)
    naive_s = median_s(lambda: json.dumps({"instances": batch.tolist()}).encode(), loops, repeats)
    sig = {"serving_default": SignatureSpec("serving_default", (TensorSpec("x", "DT_FLOAT", (-1, 784)),), ())}
    dec_s = median_s(lambda: decode_request(ours_body, sig), loops, repeats)
    naive_dec_s = median_s(
        lambda: np.array(json.loads(ours_body)["instances"], dtype=np.float32), loops, repeats
    )
    return {
        "encode_ours_ms": ours_s * 1e3,
        "encode_naive_ms": naive_s * 1e3,
        "encode_speedup": naive_s / ours_s,
        "wire_ours_bytes": len(ours_body),
        "wire_naive_bytes": len(naive_body),
        "raw_bytes": batch.nbytes,
        "decode_ours_ms": dec_s * 1e3,
        "decode_naive_ms": naive_dec_s * 1e3,
    }


def bench_pools(quick: bool) -> list[dict[str, object]]:
    rows = []
    batch_sizes = (1, 8) if quick else (1, 8, 64)
    for kind in ("numeric", "text", "image"):
        for batch_size in batch_sizes:
            spec = PayloadSpec(kind, batch_size)
            times = []
            for _ in range(1 if quick else 3):
                start = time.perf_counter()
                pool = build_pool(spec, 64)
                times.append(time.perf_counter() - start)
            rows.append({
                "kind": kind,
                "batch_size": batch_size,
                "pool_build_ms": statistics.median(times) * 1e3,
                "mean_wire_bytes": pool.mean_wire_bytes,
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser("bench_payloads", __doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and batch sizes (a smoke run)")
    args = parser.parse_args(argv)

    enc = bench_encode(args.quick)
    pools = bench_pools(args.quick)
    print(f"numpy {np.__version__}, orjson {orjson.__version__}")
    print("\n64 x 784 float32 row request (raw tensor {:,} B)".format(enc["raw_bytes"]))
    print(f"  encode  ours (orjson)                      {enc['encode_ours_ms']:8.2f} ms   "
          f"wire {enc['wire_ours_bytes']:>9,} B")
    print(f"  encode  json.dumps(array.tolist())         {enc['encode_naive_ms']:8.2f} ms   "
          f"wire {enc['wire_naive_bytes']:>9,} B")
    print(f"  speed-up {enc['encode_speedup']:.1f}x (target >= {SPEEDUP_TARGET:g}x); "
          f"our body is {enc['wire_ours_bytes'] / enc['wire_naive_bytes']:.0%} of the naive size")
    print(f"  decode  ours (decode_request + checks)     {enc['decode_ours_ms']:8.2f} ms")
    print(f"  decode  np.array(json.loads(body))         {enc['decode_naive_ms']:8.2f} ms")
    print("\n64-body pool build")
    print(f"  {'kind':8} {'batch':>5} {'build ms':>10} {'ms/body':>8} {'mean wire B':>12}")
    for row in pools:
        print(f"  {row['kind']:8} {row['batch_size']:>5} {row['pool_build_ms']:>10.1f} "
              f"{row['pool_build_ms'] / 64:>8.2f} {row['mean_wire_bytes']:>12,.0f}")
    results = {"encode": enc, "pools": pools, "versions": {"numpy": np.__version__, "orjson": orjson.__version__}}
    targets = {"encode_speedup": harness.target(enc["encode_speedup"], ">=", SPEEDUP_TARGET)}
    return harness.emit("bench_payloads", args, results, targets, argv)


if __name__ == "__main__":
    raise SystemExit(main())
