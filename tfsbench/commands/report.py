"""`tfsbench report`: figures, report.html, summary.md and results.csv from run/sweep/search results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tfsbench.commands import Subparsers
from tfsbench.commands.plan import add_plan_arguments
from tfsbench.payloads.errors import InputError


def check_out_dir(raw: str) -> Path:
    """An output directory we may write into (created later, only once inputs have loaded)."""
    out = Path(raw)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {raw}: exists and is not a directory")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--out {raw}: {parent} is not a directory")
            break
    return out


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "report",
        help="HTML/Markdown/CSV report with figures from results",
        description="Turn run files, sweep or search directories and Locust exports into report.html "
        "(self-contained), summary.md, results.csv and PNG figures. Two or more inputs are also compared "
        "(each against the first). Give --target-qps or --target-ips with --slo to add a capacity plan.",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="run files, sweep or search directories")
    p.add_argument("--out", default="results/report", metavar="DIR", help="output directory (default results/report)")
    p.add_argument("--title", default="tfsbench report", help="report title")
    p.add_argument("--no-compare", action="store_true", help="do not compare the inputs with each other")
    add_plan_arguments(p, slo_required=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.reports.build import build_report
    from tfsbench.reports.dataset import load_sources

    out = check_out_dir(args.out)
    wants_plan = args.target_qps is not None or args.target_ips is not None
    if wants_plan and args.slo is None:
        raise InputError("a capacity plan needs --slo (e.g. --slo 'p99<=100ms') as well as the target")
    sources = load_sources(args.results)
    plan = None
    if wants_plan:
        from tfsbench.reports.plan import make_plan

        plan = make_plan(sources, args.slo, target_qps=args.target_qps, target_ips=args.target_ips,
                         headroom=args.headroom, cost_per_replica_hour=args.cost_per_replica_hour)
    files = build_report(sources, out, slo=args.slo, plan=plan, title=args.title, compare=not args.no_compare,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"report:  {files.html}")
    print(f"summary: {files.markdown}")
    print(f"csv:     {files.csv}")
    print(f"figures: {len(files.figures)} PNG in {files.out_dir}")
    if files.plan_json:
        print(f"plan:    {files.plan_json}")
    return 0
