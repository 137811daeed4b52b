"""`tfsbench replay TRACE`: send a traffic trace with its original timing; results per window."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from tfsbench.bench.args import (
    EXIT_INTERRUPTED,
    choice_of,
    duration,
    non_negative_int,
    positive_float,
    positive_int,
    slo,
    url,
)
from tfsbench.commands import Subparsers


def _model_map(text: str) -> dict[str, str]:
    from tfsbench.bench.args import from_input_error
    from tfsbench.payloads.errors import InputError

    def parse(raw: str) -> dict[str, str]:
        out = {}
        for part in (p.strip() for p in raw.split(",") if p.strip()):
            old, sep, new = part.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise InputError(f"{raw!r}: expected TRACE_MODEL=TARGET_MODEL,... e.g. resnet=image")
            out[old.strip()] = new.strip()
        if not out:
            raise InputError("give at least one TRACE_MODEL=TARGET_MODEL")
        return out

    return from_input_error(parse, "model map")(text)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "replay", help="replay a traffic trace open loop with its original timing; results per window",
        description="Send every request of TRACE at its own time (open loop, latency from the intended send "
        "time), to the model and with the batch size the trace gives. Writes run.json (the run-result schema "
        "plus per-window results) and replay.png to --out. See docs/replay.md.")
    p.add_argument("trace", metavar="TRACE", help="a tfsbench trace (see `tfsbench trace`)")
    p.add_argument("--url", type=url, required=True, help="TF Serving REST base URL, e.g. http://127.0.0.1:8501")
    p.add_argument("--speed", type=positive_float, default=1.0,
                   help="time compression: 60 replays an hour in a minute (default 1)")
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="traffic multiplier: < 1 thins, > 1 superposes shifted copies (default 1)")
    p.add_argument("--scale-shift", type=duration, default=1.0, metavar="D",
                   help="superposed copies are shifted by a random offset below D (default 1s)")
    p.add_argument("--window", type=duration, default=60.0, metavar="D",
                   help="results per window of trace time (default 60s)")
    p.add_argument("--model", help="model for trace lines that name none")
    p.add_argument("--model-map", type=_model_map, default={}, metavar="OLD=NEW,...",
                   help="send the trace's model OLD to the target's model NEW (e.g. resnet=image)")
    p.add_argument("--kind", type=choice_of(("text", "image", "numeric", "auto"), "kind"),
                   help="payload kind for lines that name none (default: the model's name when it is one)")
    p.add_argument("--batch-size", type=positive_int, help="batch size for lines that name none (default 1)")
    p.add_argument("--format", type=choice_of(("row", "columnar"), "format"), default="row")
    p.add_argument("--engine", type=choice_of(("aiohttp", "fast"), "engine"), default="fast")
    p.add_argument("--timeout", type=duration, default=30.0, metavar="D", help="per-request timeout (default 30s)")
    p.add_argument("--max-inflight", type=positive_int, default=1000, metavar="N",
                   help="requests in flight at most; arrivals beyond are refused and counted (default 1000)")
    p.add_argument("--pool-size", type=positive_int, default=16, metavar="N", help="bodies per target (default 16)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="payloads and --scale (default 0)")
    p.add_argument("--slo", type=slo, help="mark windows that break this SLO, e.g. 'p99<=50ms'")
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra HTTP header on every request (repeatable)")
    p.add_argument("--out", default="results/replay", metavar="DIR",
                   help="where run.json and replay.png go (default results/replay)")
    p.set_defaults(func=run)


class _Stop(threading.Event):
    reason: str | None = None


def run(args: argparse.Namespace) -> int:
    from tfsbench.bench.measure.engine import header_dict
    from tfsbench.bench.orchestrate.replay import ReplayOptions, resolve_targets, run_replay, scale_trace
    from tfsbench.bench.results import save_result, write_bytes_atomic
    from tfsbench.commands.report import check_out_dir
    from tfsbench.payloads.trace import read_trace

    out = check_out_dir(args.out)
    headers = header_dict(args.header)
    trace = read_trace(args.trace)
    if trace.bad.count:
        print(f"tfsbench replay: warning: {args.trace}: {trace.bad.describe()}", file=sys.stderr)
    opts = ReplayOptions(url=args.url, speed=args.speed, scale=args.scale, shift_s=args.scale_shift,
                         window_s=args.window, engine=args.engine, model=args.model, model_map=args.model_map,
                         kind=args.kind, batch_size=args.batch_size, format=args.format, timeout_s=args.timeout,
                         max_inflight=args.max_inflight, pool_size=args.pool_size, seed=args.seed)
    # everything that can be wrong is found before any load: the targets, then one probe each
    targets, _ = resolve_targets(scale_trace(trace, opts.scale, opts.seed, opts.shift_s), opts)
    from tfsbench.bench.measure.preflight import preflight_and_pool

    pools, infos = [], {}
    for t in targets:
        info, pool = preflight_and_pool(t.config(opts), headers)
        pools.append(pool)
        infos[t.name()] = {k: v for k, v in info.items() if k != "metadata"}
    wall = trace.duration_s / opts.speed
    print(f"replay: {len(trace):,} requests x{opts.scale:g} over {trace.duration_s:,.0f} s of trace time, "
          f"speed x{opts.speed:g}: about {wall:,.1f} s; targets: {', '.join(t.name() for t in targets)}",
          file=sys.stderr)
    stop = _Stop()
    old = _install_signals(stop)
    try:
        replayed = run_replay(trace, opts, pools=pools, headers=headers, stop=stop,
                              environment={"targets": infos}, source=os.path.basename(args.trace))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    result = replayed.result
    out.mkdir(parents=True, exist_ok=True)
    save_result(result, out / "run.json")
    from tfsbench.reports.replay_view import replay_figure, violations
    from tfsbench.reports.style import png_bytes

    write_bytes_atomic(out / "replay.png", png_bytes(replay_figure(result, args.slo)))
    _print_summary(result, replayed.wall_s, args.slo, violations(result.windows, args.slo))
    print(f"result: {out / 'run.json'}\nfigure: {out / 'replay.png'}")
    if result.partial:
        print(f"tfsbench replay: partial result: {result.partial_reason}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _print_summary(result: Any, wall_s: float, slo: Any, bad: list[int]) -> None:
    s = result.summary
    lag = s.schedule_lag_ms
    print(f"sent {s.requests:,} requests in {wall_s:,.1f} s: {s.ok:,} ok, {s.error_count:,} errors, "
          f"{s.refused_inflight:,} refused; latency p50 {s.latency_ms.p50:.1f} ms, p99 {s.latency_ms.p99:.1f} ms; "
          f"schedule lag p99 {lag.p99 if lag else float('nan'):.3f} ms, {s.late_requests:,} late (> 1 ms)")
    worst = max(result.windows, key=lambda w: w.p99_ms or 0.0, default=None)
    if worst is not None and worst.p99_ms is not None:
        print(f"{len(result.windows)} windows of {result.windows[0].duration_s:g} s; worst p99 {worst.p99_ms:.1f} ms "
              f"at t={worst.t_s:,.0f} s ({worst.offered_rps:.1f} req/s offered)")
    if slo is not None:
        print(f"{len(bad)} of {len(result.windows)} windows broke {slo}" if bad else f"every window met {slo}")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)


def _install_signals(stop: _Stop) -> dict[int, Any]:
    """First SIGINT/SIGTERM: stop and keep the partial result. Second: leave now."""

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            os.write(2, f"tfsbench replay: second {name}: exiting without a result\n".encode())
            os._exit(EXIT_INTERRUPTED)
        stop.reason = f"interrupted by {name}"
        stop.set()
        os.write(2, f"tfsbench replay: {name}: stopping, then writing a partial result\n".encode())

    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
    return old
