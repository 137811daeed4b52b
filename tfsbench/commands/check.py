"""`tfsbench check`: gate run results on thresholds and a baseline, for CI (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfsbench.bench.args import from_input_error
from tfsbench.commands import Subparsers
from tfsbench.payloads.errors import InputError

# The threshold grammar is the gate's own (reports.check); bench.args turns its InputError into
# argparse's one line, as for every other type.


def _threshold(text: str) -> str:
    from tfsbench.reports.check import parse_threshold

    from_input_error(parse_threshold)(text)
    return text


def _tolerance(text: str) -> float:
    from tfsbench.reports.check import parse_tolerance

    return from_input_error(parse_tolerance)(text)


def _metrics(text: str) -> tuple[str, ...]:
    from tfsbench.reports.check import COMPARABLE

    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(m.strip() for m in raw.split(",") if m.strip())
        for name in names:
            if name not in COMPARABLE:
                raise InputError(f"cannot compare {name!r} with a baseline; use {', '.join(COMPARABLE)}")
        if not names:
            raise InputError("give at least one metric, e.g. p50,p99,throughput_ips")
        return names

    return from_input_error(parse)(text)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="gate results on thresholds and a baseline (CI): exit 0 pass, 1 fail, 2 bad input",
        description=(
            "Check run results against thresholds such as 'p99<50ms', 'error_rate<1%', "
            "'throughput_ips>=200', 'stable==true', '[kind=numeric,batch=8] p99<20ms', and against a "
            "baseline: a metric regresses when it is worse by more than --max-regression AND the "
            "difference is significant (95% bootstrap CI: HDR histograms, whole measured windows; repeats "
            "of a configuration pooled, as in 'tfsbench compare'); '~' marks noise."
        ),
    )
    p.add_argument("results", nargs="*", metavar="RESULTS", help="run files or sweep/search directories")
    p.add_argument(
        "-t", "--threshold", action="append", default=[], type=_threshold, metavar="EXPR",
        help="a threshold, repeatable: [SCOPE] METRIC OP VALUE, e.g. 'p99<50ms'",
    )
    p.add_argument("--config", metavar="TOML", help="read thresholds from the [check] table of a sweep config")
    p.add_argument("--baseline", metavar="BASE", help="baseline run file or directory to compare with")
    p.add_argument(
        "--max-regression", type=_tolerance, default=0.10, metavar="PCT",
        help="tolerated relative regression before significance matters (default 10%%)",
    )
    p.add_argument(
        "--compare", type=_metrics, default=None, metavar="METRICS",
        help="baseline metrics, comma-separated (default p50,p99,throughput_ips)",
    )
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one test case per check)")
    p.add_argument("--summary", metavar="FILE", help="append a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument(
        "--dry-run", action="store_true",
        help="only validate the thresholds (and --config), e.g. before a long sweep; RESULTS not needed",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfsbench.bench.results import load_results
    from tfsbench.reports import check as gates

    thresholds = list(args.threshold)
    if args.config:
        from tfsbench.bench.orchestrate.sweep import load_sweep_config

        sweep_file = load_sweep_config(args.config, check_threshold=gates.parse_threshold)
        thresholds = list(sweep_file.thresholds) + thresholds
    if args.dry_run:
        for t in thresholds:
            gates.parse_threshold(t)
        print(f"check: {len(thresholds)} threshold(s) valid")
        return 0
    if not args.results:
        raise InputError("give RESULTS: run files or sweep/search directories")
    results = load_results(args.results)
    baseline = load_results([args.baseline]) if args.baseline else None
    outcome = gates.check_results(
        results,
        thresholds,
        baseline=baseline,
        max_regression=args.max_regression,
        compare_metrics=args.compare or gates.DEFAULT_COMPARE,
    )
    print(gates.render_text(outcome))
    if args.junit:
        _write(args.junit, gates.render_junit(outcome), append=False)
    if args.summary:
        _write(args.summary, gates.render_markdown(outcome), append=True)
    return outcome.exit_status


def _write(path: str, text: str, *, append: bool) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if append:  # a CI step summary collects what several steps append
            with p.open("a", encoding="utf-8") as fh:
                fh.write(text)
        else:  # a reader (the CI's JUnit parser) sees the old file or the whole new one
            from tfsbench.bench.results import write_text_atomic

            write_text_atomic(p, text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
