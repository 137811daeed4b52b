"""`tfsbench compare A B`: two runs or sweeps side by side, relative change, significance, `~` for noise."""

from __future__ import annotations

import argparse
import sys

from tfsbench.bench.args import fraction, int_in_range
from tfsbench.commands import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two runs or sweeps (relative change, bootstrap significance)",
        description="Match runs of A and B by configuration and load level (repeats of a configuration "
        "are pooled) and show each metric side by side with its relative change. Latency differences are "
        "tested with a bootstrap over the HDR histograms, throughput over whole measured windows; '~' marks "
        "changes within noise. Same statistics as 'tfsbench check --baseline' (docs/statistics.md).",
    )
    p.add_argument("a", metavar="A", help="baseline: run file, sweep or search directory")
    p.add_argument("b", metavar="B", help="candidate: run file, sweep or search directory")
    p.add_argument("--noise", type=fraction, default=0.05,
                   help="changes smaller than this are within noise (default 0.05 = 5%%)")
    p.add_argument("--resamples", type=int_in_range(50, 100_000, "resamples"), default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--out", metavar="DIR", help="also write a report (report.html with the comparison) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.commands.report import check_out_dir
    from tfsbench.reports.compare import METRIC_LABELS, compare_sources
    from tfsbench.reports.dataset import load_sources
    from tfsbench.reports.terminal import console_for, print_comparison

    out = check_out_dir(args.out) if args.out else None
    sources = load_sources([args.a, args.b])
    table = compare_sources(sources[0], sources[1], noise_threshold=args.noise, resamples=args.resamples)
    if not table.rows:
        from tfsbench.payloads.errors import InputError

        raise InputError(f"{args.a} and {args.b} have no runs with the same configuration and load level to compare")
    print_comparison(table, console_for(sys.stdout))
    for note in table.notes:
        print(f"note: {note}")
    for row in table.rows:  # why a metric has no interval (e.g. too few whole windows)
        for m in row.metrics.values():
            if m.note and m.ci is None and m.test == "threshold-only":
                where = f"{row.label}: " if len(table.rows) > 1 else ""
                print(f"note: {where}{METRIC_LABELS.get(m.name, m.name)}: {m.note}")
    if out is not None:
        from tfsbench.reports.build import build_report

        files = build_report(sources, out, comparisons=[table],
                             title=f"tfsbench comparison: {sources[1].name} vs {sources[0].name}")
        print(f"report: {files.html}")
    return 0
