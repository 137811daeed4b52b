"""`tfsbench demo`: the whole pipeline in a few minutes against an embedded target it starts and stops."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tfsbench.commands import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="start the embedded target, sweep, search, report and plan (a few minutes)",
        description="Starts the embedded TF Serving-compatible target on a free 127.0.0.1 port, runs a short "
        "sweep over the three payload kinds, batch sizes and concurrency levels, an SLO search for one "
        "configuration, writes the report and a capacity plan, prints where they are and stops the target.",
    )
    p.add_argument("--out", default="results/demo", metavar="DIR", help="output directory (default results/demo)")
    p.add_argument("--quick", action="store_true",
                   help="half-second runs and one-second probes (about half a minute on 2 cores; a smoke test: too "
                        "short for any stability verdict)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (plain log lines only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.commands.report import check_out_dir
    from tfsbench.pipeline import DemoSettings, compare_protocols, measure, report_and_plan
    from tfsbench.server.testing import serve_process

    out = check_out_dir(args.out)
    settings = DemoSettings()
    if args.quick:
        settings = DemoSettings(kinds=("numeric", "text", "image"), batch_sizes=(1, 8), concurrencies=(1, 4),
                                duration_s=0.5, warmup_s=0.2, search_max_probes=3, search_duration_s=1.0,
                                search_warmup_s=0.3, search_require_stable=False)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    log("[1/4] starting the embedded target (tfsbench serve) on a free 127.0.0.1 port")
    # The target runs in its own process so that it and the load generator each get a core.
    with serve_process("--grpc-port", "0") as server:
        url = server.base_url
        log(f"      target: {url}, gRPC {server.grpc_url} (models numeric, text, image)")
        protocols: dict[str, Any] = {}

        def rest_and_grpc() -> None:  # before the search (see measure)
            t1 = time.perf_counter()
            # --quick bounds the pair like its other runs; the full demo keeps the pair's own bounds
            bounds = {"max_s": settings.duration_s, "warmup_max_s": settings.warmup_s} if args.quick else {}
            protocols["dir"] = compare_protocols(url, server.grpc_url, Path(out) / "protocols", log=log, **bounds)
            protocols["s"] = time.perf_counter() - t1

        outcome = measure(url, Path(out), settings, progress=not args.no_progress, log=log, after_sweep=rest_and_grpc)
        outcome.protocols_dir = protocols.get("dir")
        outcome.timings_s["protocols"] = protocols.get("s", 0.0)
    log("      target stopped")
    outcome = report_and_plan(outcome, settings, log=log)
    total = time.perf_counter() - t0
    steps = ", ".join(f"{k} {v:.0f}s" for k, v in outcome.timings_s.items())
    print(f"demo finished in {total:.0f}s ({steps})")
    print(f"report:  {outcome.report_html}")
    print(f"plan:    {outcome.plan_json}")
    print(f"sweep:   {outcome.sweep_dir}")
    print(f"search:  {outcome.search_dir} (best rate meeting the SLO: "
          f"{'none' if outcome.best_rate_rps is None else f'{outcome.best_rate_rps:g} req/s'})")
    print(f"open it: xdg-open {outcome.report_html}  (or: tfsbench plan {outcome.sweep_dir} {outcome.search_dir} "
          "--slo 'p99<=50ms' --target-ips 20000)")
    return 0
