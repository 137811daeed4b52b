"""`tfsbench plan --traffic TRACE`: the plan per window of a traffic trace (reports/traffic_plan.py).

Kept apart from plan.py so that the one-peak plan's handler stays short; plan.py adds these
arguments and hands over when --traffic is given."""

from __future__ import annotations

import argparse
import math
import sys

from tfsbench.bench.args import duration, duration_or_zero, positive_float


def add_traffic_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("traffic shape (plan per window of a trace; see docs/replay.md)")
    g.add_argument("--traffic", metavar="TRACE",
                   help="a tfsbench trace: replicas per window instead of one peak (--target-qps not needed)")
    g.add_argument("--window", type=duration, default=3600.0, metavar="D",
                   help="--traffic: planning window (default 1h)")
    g.add_argument("--peak-over", type=duration, default=10.0, metavar="D",
                   help="--traffic: a window's peak is the highest rate over bins of D (default 10s)")
    g.add_argument("--scale-up-delay", type=duration_or_zero, default=300.0, metavar="D",
                   help="--traffic: time from asking for a replica to it serving (default 5m)")
    g.add_argument("--traffic-scale", type=positive_float, default=1.0, metavar="X",
                   help="--traffic: plan for X times the trace's traffic, every rate multiplied (default 1)")


def run_traffic(args: argparse.Namespace) -> int:
    from tfsbench.bench.results import write_bytes_atomic, write_json_atomic
    from tfsbench.commands.report import check_out_dir
    from tfsbench.payloads.errors import InputError
    from tfsbench.payloads.trace import read_trace
    from tfsbench.reports.build import _finite
    from tfsbench.reports.dataset import load_sources
    from tfsbench.reports.plan import make_plan
    from tfsbench.reports.style import png_bytes
    from tfsbench.reports.traffic_plan import bin_rates, describe, make_traffic_plan, traffic_plan_figure

    out = check_out_dir(args.out)
    if args.target_qps is not None or args.target_ips is not None:
        raise InputError("--traffic gives the traffic: leave out --target-qps and --target-ips")
    if not (math.isfinite(args.traffic_scale) and args.traffic_scale > 0):
        raise InputError(f"--traffic-scale must be > 0, got {args.traffic_scale!r}")
    trace = read_trace(args.traffic)
    if trace.bad.count:
        print(f"tfsbench plan: warning: {args.traffic}: {trace.bad.describe()}", file=sys.stderr)
    sources = load_sources(args.results)
    peak = float(bin_rates(trace, min(args.peak_over, trace.duration_s)).max()) * args.traffic_scale
    one_peak = make_plan(sources, args.slo, target_qps=max(peak, 1e-9), headroom=args.headroom,
                         cost_per_replica_hour=args.cost_per_replica_hour)
    best = one_peak.best
    if best is None or best.capacity_rps is None:
        raise InputError(f"no configuration met {args.slo} at any measured load: no capacity to plan with "
                         f"({one_peak.recommendation})")
    warnings = []
    batches = {k.batch_size for k in trace.keys if k.batch_size is not None}
    if batches and batches != {best.batch_size}:
        warnings.append(f"the trace has batch sizes {sorted(batches)}; the capacity is {best.name}'s: a "
                        "mixed trace is planned as if every request were of that configuration")
    plan = make_traffic_plan(trace, best.capacity_rps, headroom=args.headroom, window_s=args.window,
                             peak_over_s=args.peak_over, scale_up_delay_s=args.scale_up_delay,
                             cost_per_replica_hour=args.cost_per_replica_hour,
                             config=f"{best.name} ({best.model}), {best.basis}", slo=str(args.slo),
                             warnings=warnings, rate_scale=args.traffic_scale)
    for line in describe(plan):
        print(line)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "traffic_plan.json", _finite(plan.to_dict()))
    write_bytes_atomic(out / "traffic_plan.png", png_bytes(traffic_plan_figure(plan, trace)))
    print(f"plan: {out / 'traffic_plan.json'}\nfigure: {out / 'traffic_plan.png'}")
    return 0
