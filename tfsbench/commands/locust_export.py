"""`tfsbench locust-export`: turn a Locust run's CSV or JSON output into a tfsbench run result."""

from __future__ import annotations

import argparse

from tfsbench.bench.args import choice_of, positive_int
from tfsbench.commands import Subparsers
from tfsbench.payloads.spec import FORMATS, KINDS


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "locust-export",
        help="convert a Locust run (--csv files or --json output) into a run-result JSON",
        description=(
            "Convert a Locust run into the run-result schema so that report, plan and check treat it like "
            "the driver's. Reads <prefix>_stats.csv, _stats_history.csv, _failures.csv, _payload.csv and the "
            "<prefix>_tfsbench.json sidecar (exact latency histograms) written by locustfiles/tfserving.py, "
            "or Locust's --json/--json-file output."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv-prefix", metavar="PREFIX", help="the prefix given to locust --csv")
    src.add_argument("--json", dest="json_path", metavar="FILE", help="Locust's --json output saved to a file")
    p.add_argument("--sidecar", metavar="FILE", help="tfsbench sidecar (default: <prefix>_tfsbench.json if present)")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the run-result JSON")
    p.add_argument("--name", help="request name to export when the run has several (e.g. 'numeric b=8 row')")
    p.add_argument("--url", help="target URL, if the files do not say")
    p.add_argument("--model", help="model name, if the files do not say")
    p.add_argument("--kind", type=choice_of(KINDS, "kind"), help="payload kind, if the request name does not say")
    p.add_argument("--batch-size", type=positive_int, help="batch size, if the request name does not say")
    p.add_argument("--format", type=choice_of(FORMATS, "format"), help="row or columnar, if the request name does not say")
    p.add_argument("--users", type=positive_int, help="number of Locust users (the closed-loop concurrency)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.bench.results import save_result
    from tfsbench.locustfiles.export import Overrides, export

    result = export(
        csv_prefix=args.csv_prefix,
        json_path=args.json_path,
        sidecar_path=args.sidecar,
        overrides=Overrides(
            name=args.name,
            url=args.url,
            model=args.model,
            kind=args.kind,
            batch_size=args.batch_size,
            format=args.format,
            users=args.users,
        ),
    )
    save_result(result, args.out)
    s = result.summary
    print(
        f"wrote {args.out}: {result.config.label_text()} {s.requests} requests, {s.ok} ok, "
        f"{s.throughput_rps:.1f} req/s, p99 {s.latency_ms.p99:.2f} ms"
    )
    return 0
