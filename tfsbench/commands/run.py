"""`tfsbench run`: one benchmark of one payload configuration at one load, written as a result file.

Validates everything, checks the target (preflight), says what it is about to do, runs, writes the
result atomically and prints a summary. Ctrl-C or SIGTERM once: stop, keep what was measured, write
it marked partial, exit 130. Twice: exit at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tfsbench.bench.args import EXIT_INTERRUPTED, duration, duration_or_zero, positive_int, rate
from tfsbench.bench.interrupt import StopEvent, stop_on_signals
from tfsbench.commands import Subparsers
from tfsbench.commands._payload_args import add_payload_arguments, payload_spec_from_args
from tfsbench.commands._protocol_args import add_protocol_arguments, protocol_from_args
from tfsbench.payloads.errors import InputError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="benchmark one payload at one load level (closed or open loop) and write a result file",
        description="Send one payload configuration at a model, closed loop (--concurrency) or open loop "
                    "(--rate), and write one result JSON (latency histogram, throughput, errors, time series).",
    )
    t = p.add_argument_group("target")
    t.add_argument("--url", required=True, help="TF Serving REST base URL, e.g. http://127.0.0.1:8501")
    t.add_argument("--model", required=True, help="model name")
    add_protocol_arguments(t)
    v = t.add_mutually_exclusive_group()
    v.add_argument("--version", type=positive_int, default=None, metavar="N", help="model version (default latest)")
    v.add_argument("--label", default=None, metavar="L", help="model version label")
    t.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra HTTP header on every request (repeatable), e.g. 'Authorization: Bearer x'")
    load = p.add_argument_group("load")
    mode = load.add_mutually_exclusive_group(required=True)
    mode.add_argument("--concurrency", type=positive_int, metavar="C",
                      help="closed loop: C requests in flight (finds capacity; hides stalls)")
    mode.add_argument("--rate", type=rate, metavar="R",
                      help="open loop: R requests/s on a fixed schedule (honest tail latency)")
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant",
                      help="open loop arrivals: evenly spaced or Poisson (default constant)")
    load.add_argument("--duration", type=duration, default=None, metavar="D",
                      help="a fixed measured window, e.g. 30s, 2m (default: measure until stable, docs/stability.md)")
    load.add_argument("--max-duration", type=duration, default=60.0, metavar="D",
                      help="without --duration: measure until stable, at most this long (default 60s)")
    load.add_argument("--warmup", type=duration_or_zero, default=None, metavar="D",
                      help="a fixed warm-up, excluded from statistics (default: until throughput settles)")
    load.add_argument("--max-warmup", type=duration, default=10.0, metavar="D",
                      help="without --warmup: warm up until throughput settles, at most this long (default 10s)")
    load.add_argument("--requests", type=positive_int, default=None, metavar="N",
                      help="measure N requests instead of a duration")
    load.add_argument("--max-inflight", type=positive_int, default=None, metavar="N",
                      help="open loop: most requests in flight; arrivals beyond are refused and counted "
                           "(default 1000)")
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=("aiohttp", "fast"), default="fast",
                   help="fast: asyncio protocols + httptools (default; see docs/run.md); aiohttp: full client")
    e.add_argument("--processes", type=positive_int, default=1, metavar="N",
                   help="engine processes sharing the load (default 1)")
    e.add_argument("--timeout", type=duration, default=30.0, metavar="D",
                   help="per-request timeout, connect included (default 30s)")
    e.add_argument("--max-response-bytes", type=positive_int, default=None, metavar="N",
                   help="largest response body accepted; a larger one is a response_too_large error and its "
                        "connection is dropped (default 67108864, 64 MiB)")
    add_payload_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE", help="result JSON to write (an existing file needs --force)")
    p.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                   help="run N times (FILE-r1.json ... FILE-rN.json) and print the mean and 95%% CI across repeats")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def _check_out(path: str, force: bool = False) -> Path:
    out = Path(path)
    if out.is_dir():
        raise InputError(f"--out {path}: is a directory; give a file name")
    if out.exists() and not force:
        raise InputError(f"--out {path}: exists; give --force to overwrite it, or another file name")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError(f"--out {path}: {parent} is not a directory")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise InputError(f"--out {path}: directory {parent} is not writable")
    return out


def build_config(args: argparse.Namespace) -> Any:
    from tfsbench.bench.measure.engine import check_url
    from tfsbench.bench.measure.runner import check_config, payload_extra
    from tfsbench.bench.results import RunConfig

    protocol, engine, extra = protocol_from_args(args)
    if protocol == "rest":
        check_url(args.url)
    spec = payload_spec_from_args(args)
    until_stable = args.duration is None and args.requests is None
    duration = args.duration if args.duration is not None else (args.max_duration if until_stable else None)
    warmup_auto = args.warmup is None
    open_loop = args.rate is not None
    config = RunConfig(
        url=args.url.rstrip("/"), model=args.model, kind=spec.kind, batch_size=spec.batch_size, format=spec.format,
        mode="open" if open_loop else "closed", engine=engine, version=args.version, label=args.label,
        signature=args.signature, concurrency=args.concurrency, rate_rps=args.rate,
        arrival=args.arrival if open_loop else None, duration_s=duration,
        warmup_s=args.max_warmup if warmup_auto else args.warmup, until_stable=until_stable, warmup_auto=warmup_auto,
        requests_limit=args.requests, processes=args.processes, seed=spec.seed, timeout_s=args.timeout,
        max_inflight=args.max_inflight, pool_size=args.pool_size, extra={"payload": payload_extra(spec), **_engine_extra(args), **extra},
        protocol=protocol,
    )
    check_config(config)
    return config


def _engine_extra(args: argparse.Namespace) -> dict[str, Any]:
    limit = getattr(args, "max_response_bytes", None)
    return {"max_response_bytes": limit} if limit is not None else {}


def _exit_now(name: str) -> None:
    """Second Ctrl-C of a run: kill the engine processes and leave without a result."""
    from tfsbench.bench.measure.runner import kill_children

    kill_children()
    os.write(2, f"tfsbench run: second {name}: exiting without a result\n".encode())
    os._exit(EXIT_INTERRUPTED)


def run(args: argparse.Namespace) -> int:
    from tfsbench.bench.measure.engine import header_dict, predict_url
    from tfsbench.bench.units import format_duration

    out = _check_out(args.out, args.force)
    from tfsbench.bench.orchestrate.repeats import repeat_paths, summarize

    outs = [_check_out(str(p), args.force) for p in repeat_paths(out, args.repeat)]
    headers = header_dict(args.header)
    config = build_config(args)
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    load = (f"closed loop, concurrency {config.concurrency}" if config.mode == "closed"
            else f"open loop, {config.rate_rps:g} req/s {config.arrival} arrivals, max {config.max_inflight or 1000} in flight")
    bound = format_duration(config.duration_s) if config.duration_s is not None else ""
    if config.until_stable:
        bound = f"until stable (at most {bound})"
    if config.requests_limit:
        bound = f"{config.requests_limit} requests" + (f" or {bound}" if bound else "")
    from tfsbench.bench.measure.preflight import preflight_and_pool
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import save_result

    # Preflight first, so that bad input (an unreachable URL, an unknown model, a rejected payload)
    # is one line on stderr; the announcement comes before any load is sent.
    info, pool = preflight_and_pool(config, headers)
    err.print(f"target: gRPC Predict at {config.url}" if config.protocol == "grpc" else f"target: POST {predict_url(config)}")
    warm = (f"until throughput settles (at most {format_duration(config.warmup_s)})" if config.warmup_auto
            else format_duration(config.warmup_s))
    err.print(f"load:   {config.label_text()}; {load}; warmup {warm}, then {bound}; "
              f"engine {config.engine} x{config.processes}; timeout {format_duration(config.timeout_s)}")
    err.print(f"preflight: model '{config.model}' available; one request took {info['probe_latency_ms']:.1f} ms; "
              f"{len(pool.bodies)} bodies, {pool.mean_wire_bytes:,.0f} bytes each on average")
    stop = StopEvent()

    def first_signal(name: str) -> None:
        err.print(f"[yellow]{name}: stopping; waiting up to 2 s for requests in flight, then writing a partial "
                  "result (again to exit at once)[/]")

    from tfsbench.reports.run_summary import print_summary

    results = []
    for out in outs:
        with stop_on_signals(stop, first_signal, _exit_now):
            with _progress_display(err, args.quiet) as on_progress:
                result = run_benchmark(config, pool=pool, headers=headers, progress=on_progress, stop=stop,
                                       environment={"target": info})
        save_result(result, out)
        results.append(result)
        print_summary(result, Console(highlight=False, soft_wrap=True), str(out))
        if result.partial:
            err.print(f"[yellow]partial result written to {out}: {result.partial_reason}[/]")
            return EXIT_INTERRUPTED
    if len(results) > 1:
        for line in summarize(results).lines():
            print(line)
    return 0


class _progress_display:
    """A rich progress bar on a terminal; a line every 5 s otherwise (CI logs)."""

    def __init__(self, console: Any, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None
        self.last_line = -5.0

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            # redrawn on each progress update (every 0.5 s), not by rich's 10-per-second refresh
            # thread: a redraw holds the GIL for about a millisecond, which the engine thread of a
            # one-process run waits out (at 30k req/s the open loop's lag p99 doubled, late arrivals
            # went up 2-20x)
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeRemainingColumn(), console=self.console, transient=True, auto_refresh=False)
            self.bar.start()
            self.task = self.bar.add_task("starting", total=None, info="")
        return self.update

    def update(self, u: Any) -> None:
        info = f"{u.requests:,} req, {u.errors:,} err, {u.rps:,.0f} req/s"
        if self.bar is not None:
            self.bar.update(self.task, description=u.phase, total=u.planned_s, completed=u.elapsed_s, info=info,
                            refresh=True)
        elif u.elapsed_s - self.last_line >= 5.0:
            self.last_line = u.elapsed_s
            print(f"  {u.elapsed_s:6.1f}s {u.phase}: {info}", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
