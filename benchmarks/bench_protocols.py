"""Benchmark: REST vs gRPC at equal load, per payload kind and batch size, against `tfsbench serve`.

    .venv/bin/python -m benchmarks.bench_protocols [--batch-sizes 1,8,64] [--concurrency 4] \\
        [--requests 400] --out FILE.json [--figure FILE.png]

The embedded target (REST and gRPC ports of one process, pinned to one CPU; client on the other) is
sent the same generated tensors over both protocols: REST with the fast engine (JSON), gRPC with the
grpc engine (protobuf), closed loop, same concurrency and request count. The document holds one row
per run (reports/protocols.py: bytes per instance, p50/p99, req/s, client CPU per request) and the
Markdown table docs/grpc.md shows. No target: this measures, it does not gate.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from tfsbench.bench.args import positive_int
from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.orchestrate.selfbench import pinned, plan_pinning
from tfsbench.bench.orchestrate.selfbench_grpc import serve_both
from tfsbench.bench.results import RunConfig
from tfsbench.reports.protocols import protocol_figure, protocol_rows, protocol_table_markdown

from benchmarks import harness
from tfsbench.commands._payload_args import int_list, kind_list


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_protocols", __doc__)
    p.add_argument("--kinds", type=kind_list, default=("numeric", "text", "image"),
                   help="payload kinds (default numeric,text,image)")
    p.add_argument("--batch-sizes", type=int_list, default=(1, 8, 64), help="batch sizes (default 1,8,64)")
    p.add_argument("--concurrency", type=positive_int, default=4, help="requests in flight (default 4)")
    p.add_argument("--requests", type=positive_int, default=400, help="measured requests per run (default 400)")
    p.add_argument("--figure", type=Path, default=None, help="also save the REST-vs-gRPC figure here (PNG)")
    args = p.parse_args(argv)
    kinds, batches = args.kinds, args.batch_sizes
    target_cpus, client_cpus, pin_note = plan_pinning()
    results = []
    with serve_both(target_cpus) as (rest_url, grpc_url), pinned(client_cpus):
        for kind in kinds:
            for batch in batches:
                for protocol, url, engine in (("rest", rest_url, "fast"), ("grpc", grpc_url, "grpc")):
                    config = RunConfig(url=url, model=kind, kind=kind, batch_size=batch, format="row",
                                       mode="closed", engine=engine, protocol=protocol,
                                       concurrency=args.concurrency, requests_limit=args.requests, warmup_s=1.0)
                    results.append(run_benchmark(config))
    rows = protocol_rows(results)
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        protocol_figure(rows).savefig(args.figure, dpi=100)
    table = protocol_table_markdown(rows)
    print(table)
    doc = {"pinning": pin_note, "concurrency": args.concurrency, "requests": args.requests,
           "rows": [dataclasses.asdict(r) for r in rows],
           "markdown": table, "load_avg_after": os.getloadavg()}
    return harness.emit("bench_protocols", args, doc, {}, argv)


if __name__ == "__main__":
    sys.exit(main())
