"""`tfsbench selfbench`: measure the load generator itself against a target that is not the bottleneck."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tfsbench.bench.args import choice_of, comma_list, duration, positive_int
from tfsbench.commands import Subparsers

TOOLS = ("wrk", "fast", "aiohttp", "locust")




def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "selfbench",
        help="measure the load generator: fast and aiohttp engines vs wrk and Locust against nginx",
        description="Start a static target (nginx with a fixed JSON body on a free loopback port; a built-in "
                    "server when nginx is missing) and measure, in the same run and with the same connections, "
                    "the fast engine, the aiohttp engine, wrk and Locust FastHttpUser (those installed). Prints "
                    "request rates and the ratios fast/wrk (target >= 0.8) and aiohttp/locust (target >= 2).",
    )
    p.add_argument("--duration", type=duration, default=5.0, help="per tool (default 5s)")
    p.add_argument("--connections", type=positive_int, default=64, help="connections / users (default 64)")
    p.add_argument("--rounds", type=positive_int, default=1,
                   help="measure every tool this many times, rotating the order; report medians (default 1; 3-5 on a busy machine)")
    p.add_argument("--tools", type=comma_list(choice_of(TOOLS, "tool"), "tools"), default=list(TOOLS), help="subset, e.g. fast,wrk (default all)")
    p.add_argument("--target", choices=("nginx", "builtin"), default="nginx",
                   help="nginx (falls back to builtin when not installed) or the built-in server")
    p.add_argument("--pin", action="store_true",
                   help="pin the target to one CPU and each client to another (sched_setaffinity); off by "
                        "default: on a shared machine it lowers rates without steadying the ratios")
    p.add_argument("--protocol", choices=("rest", "grpc"), default="rest",
                   help="grpc: the grpc engine vs a bare grpcio asyncio loop against `tfsbench serve --grpc-port` "
                        "(--connections = requests in flight), then its open loop at half its ceiling (default rest)")
    p.add_argument("--out", type=Path, help="write the JSON result here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.bench.orchestrate.selfbench import run_selfbench
    from tfsbench.bench.results import write_json_atomic

    if args.out is not None and args.out.is_dir():
        from tfsbench.payloads.errors import InputError

        raise InputError(f"--out {args.out} is a directory; give a file name")
    if args.protocol == "grpc":
        return _run_grpc(args)
    result = run_selfbench(args.duration, args.connections, tools=args.tools, rounds=args.rounds,
                           prefer_target=args.target, pin=args.pin)
    print_table(result)
    if args.out is not None:
        write_json_atomic(args.out, result.to_dict())
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _run_grpc(args: argparse.Namespace) -> int:
    from tfsbench.bench.measure.engine_grpc import quiet_grpc_logs
    from tfsbench.bench.orchestrate.selfbench_grpc import measure
    from tfsbench.bench.results import write_json_atomic

    quiet_grpc_logs()
    doc = measure(args.duration, args.rounds, args.connections, pin=args.pin)
    bare = " ".join(f"{b['rps']:,.0f}" for b in doc["bare_rounds"])
    engine = " ".join(f"{e['rps']:,.0f}" for e in doc["engine_rounds"])
    print(f"selfbench gRPC: {doc['concurrency']} in flight, {args.duration:g} s each; target {doc['target']}")
    print(f"  bare grpcio loop: {bare} req/s; grpc engine: {engine} req/s")
    ratio = doc["engine_over_bare_median"]
    print(f"grpc/bare: {ratio:.2f}x  (target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})")
    ol = doc["open_loop"]
    off = abs(ol["achieved_over_offered"] - 1)
    print(f"open loop at half the ceiling: {ol['offered_rps']:,} offered, {ol['achieved_rps']:,} achieved "
          f"(off by {off:.2%}; target <= 1%: {'met' if off <= 0.01 else 'NOT met'})")
    print(f"pinning: {doc['pinning']}")
    if args.out is not None:
        write_json_atomic(args.out, doc)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def print_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    rounds = f", median of {result.rounds} rounds" if result.rounds > 1 else ""
    table = Table(title=f"selfbench: {result.connections} connections, {result.duration_s:g} s each{rounds}, "
                        f"target {result.target}")
    for col in ("tool", "req/s", "rounds req/s", "req/CPU-s", "requests", "errors", "note"):
        table.add_column(col, justify="right" if col in ("req/s", "req/CPU-s", "requests", "errors") else "left")
    for r in result.rates:
        table.add_row(r.tool, f"{r.rps:,.0f}" if r.rps is not None else "-",
                      " ".join(f"{x:,.0f}" for x in r.rounds_rps),
                      f"{r.rps_per_cpu:,.0f}" if r.rps_per_cpu else "-", f"{r.requests:,}", str(r.errors), r.note)
    console.print(table)
    for name, value in result.ratios.items():
        goal = result.targets.get(name)
        if value is None:
            console.print(f"{name}: n/a (a tool did not run)")
            continue
        verdict = "" if goal is None else (f"  (target >= {goal:g}: {'met' if value >= goal else 'NOT met'})")
        per_round = result.ratio_rounds.get(name, ())
        rounds = f"  rounds: {' '.join(f'{x:.2f}' for x in per_round)}" if len(per_round) > 1 else ""
        console.print(f"{name}: {value:.2f}x{verdict}{rounds}")
    console.print(f"target: {result.target_note}; {result.pinning}")
