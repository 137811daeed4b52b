"""`tfsbench search`: the highest open-loop rate that meets a latency SLO (bracket, then bisect)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tfsbench.bench.args import EXIT_INTERRUPTED, positive_float, positive_fraction, positive_int, slo
from tfsbench.commands import Subparsers
from tfsbench.commands.sweep import (
    add_load_arguments,
    add_payload_options,
    add_target_arguments,
    with_payload_options,
)
from tfsbench.payloads.errors import InputError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "search",
        help="find the highest open-loop rate whose latency percentile meets an SLO",
        description="Probe open-loop rates (closed-loop estimate, then doubling to bracket the SLO, then "
                    "bisection, like MLPerf LoadGen's FindPeakPerformance). A probe passes when the SLO "
                    "percentile is met, the run is stable, under 1%% of requests failed and the achieved rate is "
                    "within 5%% of the offered one. Every probe is saved as a run file in --out.",
    )
    p.add_argument("--slo", type=slo, required=True, help="e.g. 'p99<=50ms', 'p95<0.2s'")
    add_target_arguments(p, required=True)
    p.add_argument("--arrival", choices=("constant", "poisson"), default="constant",
                   help="open loop arrivals (default constant; poisson is what MLPerf's Server scenario uses)")
    s = p.add_argument_group("search")
    s.add_argument("--lo", type=positive_float, help="first rate to probe, req/s (default: half of a "
                                                         "closed-loop estimate of the ceiling)")
    s.add_argument("--hi", type=positive_float, help="never probe above this rate, req/s")
    s.add_argument("--max-probes", type=positive_int, default=12, help="open-loop probes at most (default 12)")
    s.add_argument("--tolerance", type=positive_fraction, default=0.05,
                   help="stop when the bracket is narrower than this fraction of its top (default 0.05)")
    s.add_argument("--estimate-concurrency", type=positive_int, default=16,
                   help="concurrency of the closed-loop estimate (default 16)")
    s.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                   help="measure the rate found N more times and report the mean and 95%% CI of its throughput "
                        "and SLO percentile, and whether the SLO holds at the interval's conservative end "
                        "(default 1: no repeats; docs/search.md)")
    s.add_argument("--allow-unstable", action="store_true",
                   help="let probes pass even when the stability verdict says unstable (short smoke runs)")
    add_load_arguments(p)
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="output directory (probe files + manifest.json)")
    o.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")
    add_payload_options(p, multi=False)
    p.set_defaults(func=run)


def build_base(args: argparse.Namespace) -> Any:
    from tfsbench.bench.args import parse_url
    from tfsbench.bench.results import RunConfig

    if args.lo is not None and args.hi is not None and args.lo >= args.hi:
        raise InputError(f"--lo {args.lo:g} must be below --hi {args.hi:g}")
    base = RunConfig(
        url=args.url if getattr(args, "protocol", None) == "grpc" else parse_url(args.url), model=args.model, kind=getattr(args, "kind", "numeric"),
        batch_size=getattr(args, "batch_size", 1), format=getattr(args, "format", "row"), mode="open",
        engine=args.engine or "fast", version=args.version, label=args.label,
        signature=getattr(args, "signature", None), rate_rps=args.lo or 1.0, arrival=args.arrival,
        duration_s=args.duration or 10.0, warmup_s=2.0 if args.warmup is None else args.warmup,
        processes=args.processes or 1, seed=getattr(args, "seed", 0), timeout_s=args.timeout or 30.0,
        max_inflight=args.max_inflight, pool_size=getattr(args, "pool_size", 64),
    )
    from tfsbench.commands._protocol_args import grpc_base

    return with_payload_options(grpc_base(base, getattr(args, "protocol", None), getattr(args, "numeric_form", None)),
                                args)


def run(args: argparse.Namespace) -> int:
    import threading

    from tfsbench.bench.interrupt import stop_on_signals
    from tfsbench.bench.measure.engine import header_dict
    from tfsbench.bench.orchestrate.search import run_search

    base = build_base(args)
    headers = header_dict(args.header) or None
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a directory")
    what = f"{base.kind} b={base.batch_size} {base.format} ({base.arrival} arrivals)"
    announcement = (f"search: highest open-loop rate meeting {args.slo} for {what} against {base.url} "
                    f"(model {base.model}); each probe measured until stable (at least {base.duration_s:g} s, longer for "
                    f"its samples) after {base.warmup_s:g} s warmup, at most "
                    f"{args.max_probes} probes; results in {args.out}")
    stop = threading.Event()

    def first_signal(name: str) -> None:
        print(f"\n{name}: stopping the current probe (press Ctrl-C again to exit at once)", file=sys.stderr)

    with stop_on_signals(stop, first_signal):
        outcome = run_search(base, args.slo, args.out, lo_rps=args.lo, hi_rps=args.hi, max_probes=args.max_probes,
                             tolerance=args.tolerance, progress=not args.no_progress, stop=stop, headers=headers,
                             estimate_concurrency=args.estimate_concurrency,
                             require_stable=not args.allow_unstable, repeat=args.repeat,
                             on_ready=lambda: print(announcement, file=sys.stderr, flush=True))
    print_outcome(outcome, args.slo)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return 0 if outcome.best_rate_rps is not None else 1  # no answer fails the question, like a failed gate


def print_outcome(outcome: Any, slo: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"SLO search: {slo}")
    for col in ("#", "offered req/s", "achieved req/s", f"{slo.metric} ms", "errors", "stable", "verdict"):
        table.add_column(col, justify="left" if col == "verdict" else "right")
    for i, v in enumerate(outcome.verdicts, 1):
        verdict = "pass" if v.passed else f"{getattr(v, 'outcome', 'fail')}: {v.reason}"
        table.add_row(str(i), f"{v.rate_rps:g}", f"{v.achieved_rps:,.1f}", f"{v.value_ms:.2f}",
                      f"{v.error_rate:.2%}", "yes" if v.stable else "no", verdict)
    console.print(table)
    if outcome.best_rate_rps is not None:
        console.print(f"best rate meeting {slo}: {outcome.best_rate_rps:g} req/s ({outcome.reason})")
        from tfsbench.bench.orchestrate.search import confirm_lines

        for line in confirm_lines(getattr(outcome, "confirm", None)):
            console.print(line)
    else:
        console.print(f"no rate found meeting {slo}: {outcome.reason}")
    console.print(f"manifest: {outcome.manifest_path}")
