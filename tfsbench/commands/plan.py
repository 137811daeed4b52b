"""`tfsbench plan`: replicas needed for a peak under a latency SLO, from sweep or search results."""

from __future__ import annotations

import argparse
import sys

from tfsbench.bench.args import fraction, non_negative_float, positive_float, slo
from tfsbench.commands import Subparsers


def add_plan_arguments(p: argparse.ArgumentParser, *, slo_required: bool) -> None:
    p.add_argument("--slo", type=slo, required=slo_required,
                   help="latency SLO, e.g. 'p99<=100ms' (metrics p50 p90 p95 p99 p999 mean max)")
    p.add_argument("--target-qps", type=positive_float, metavar="Q",
                   help="peak traffic in requests/s (each request carries the configuration's batch)")
    p.add_argument("--target-ips", type=positive_float, metavar="I",
                   help="peak traffic in instances (predictions)/s; compares batch sizes fairly")
    p.add_argument("--headroom", type=fraction, default=0.3,
                   help="fraction of each replica's capacity kept free (default 0.3)")
    p.add_argument("--cost-per-replica-hour", type=non_negative_float, metavar="C",
                   help="price of one replica for one hour, to get cost per million predictions")


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "plan",
        help="capacity plan: replicas needed for a peak under a latency SLO",
        description="From one replica's sweep or search results: each configuration's capacity under the "
        "SLO, replicas = ceil(target / (capacity x (1 - headroom))), expected latency at the target and "
        "cost per million predictions. Writes plan.json and a report with the plan to --out.",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="run files, sweep or search directories")
    add_plan_arguments(p, slo_required=True)
    p.add_argument("--out", default="results/plan", metavar="DIR",
                   help="where plan.json and report.html go (default results/plan)")
    p.add_argument("--no-report", action="store_true", help="write plan.json only, no HTML report")
    from tfsbench.commands._plan_traffic import add_traffic_arguments

    add_traffic_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.commands.report import check_out_dir
    from tfsbench.reports.dataset import load_sources
    from tfsbench.reports.plan import make_plan
    from tfsbench.reports.terminal import console_for, print_plan

    if getattr(args, "traffic", None):
        from tfsbench.commands._plan_traffic import run_traffic

        return run_traffic(args)
    out = check_out_dir(args.out)
    if args.target_qps is None and args.target_ips is None:
        from tfsbench.payloads.errors import InputError

        raise InputError("give the peak traffic with --target-qps (requests/s) or --target-ips (instances/s)")
    sources = load_sources(args.results)
    plan = make_plan(sources, args.slo, target_qps=args.target_qps, target_ips=args.target_ips,
                     headroom=args.headroom, cost_per_replica_hour=args.cost_per_replica_hour)
    print_plan(plan, console_for(sys.stdout))
    if args.no_report:
        from tfsbench.bench.results import write_json_atomic
        from tfsbench.reports.build import _finite

        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "plan.json", _finite(plan.to_dict()))
        print(f"plan: {out / 'plan.json'}")
        return 0
    from tfsbench.reports.build import build_report

    files = build_report(sources, out, slo=args.slo, plan=plan, title="tfsbench capacity plan")
    print(f"plan: {files.plan_json}\nreport: {files.html}")
    return 0
