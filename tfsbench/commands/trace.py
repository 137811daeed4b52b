"""`tfsbench trace synth|import|show`: make, convert and inspect traffic traces for replay and plans."""

from __future__ import annotations

import argparse
import sys

from tfsbench.bench.args import duration, from_input_error, number_in_range
from tfsbench.commands import Subparsers


def _rate(text: str) -> float:
    from tfsbench.payloads.trace_synth import parse_rate

    return from_input_error(parse_rate)(text)


def _bursts(text: str):
    from tfsbench.payloads.trace_synth import parse_bursts

    return from_input_error(parse_bursts)(text)


def _models(text: str):
    from tfsbench.payloads.trace_synth import parse_mix

    return from_input_error(lambda t: parse_mix(t, "--models"))(text)


def _batches(text: str):
    from tfsbench.payloads.trace_synth import parse_mix

    return from_input_error(lambda t: parse_mix(t, "--batch-sizes", as_int=True))(text)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("trace", help="make (synth), convert (import) and inspect (show) traffic traces",
                       description="Traffic traces for `tfsbench replay` and `tfsbench plan --traffic`. "
                       "The format is described in docs/replay.md.")
    verbs = p.add_subparsers(dest="trace_command", metavar="VERB", parser_class=type(p))
    verbs.required = True

    s = verbs.add_parser("synth", help="a seeded synthetic trace (diurnal, flat or ramp, with bursts)")
    s.add_argument("--profile", choices=("diurnal", "flat", "ramp"), default="diurnal")
    s.add_argument("--peak", type=_rate, default=300.0, metavar="RATE", help="peak rate, e.g. 300/s (default)")
    s.add_argument("--hours", type=number_in_range(0.0, 31 * 24, "hours", low_open=True), default=24.0, help="length of the trace in hours (default 24)")
    s.add_argument("--trough", type=number_in_range(0.0, 1.0, "fraction"), default=0.2,
                   help="quietest rate as a fraction of the peak (default 0.2)")
    s.add_argument("--peak-hour", type=float, default=14.0, help="diurnal: hour of day of the peak (default 14)")
    s.add_argument("--bursts", type=_bursts, default=None, metavar="N[,xF][,D]",
                   help="N bursts where the rate is multiplied by F (default x3) for D (default 60s)")
    s.add_argument("--models", type=_models, default=(("numeric", 1.0),), metavar="M=SHARE,...",
                   help="model mix, e.g. numeric=0.8,text=0.2 (default numeric)")
    s.add_argument("--batch-sizes", type=_batches, default=((1, 1.0),), metavar="B=SHARE,...",
                   help="batch-size mix, e.g. 1=0.7,8=0.3 (default 1)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, metavar="FILE", help="trace to write (.csv for CSV, else JSONL)")
    s.set_defaults(func=run_synth)

    i = verbs.add_parser("import", help="a trace from an nginx/Envoy JSON access log or nginx combined log")
    i.add_argument("log", metavar="LOG")
    i.add_argument("--format", required=True, choices=("nginx-json", "combined"), dest="log_format")
    i.add_argument("--out", required=True, metavar="FILE", help="trace to write (.csv for CSV, else JSONL)")
    i.set_defaults(func=run_import)

    w = verbs.add_parser("show", help="summarise a trace: requests, rates per window, request mix")
    w.add_argument("trace", metavar="TRACE")
    w.add_argument("--window", type=duration, default=None,
                   help="window for rates (default 1h; 1m for traces under 3 h)")
    w.set_defaults(func=run_show)


def run_synth(args: argparse.Namespace) -> int:
    from tfsbench.payloads.trace import write_trace
    from tfsbench.payloads.trace_synth import Bursts, SynthSpec, describe, synthesize

    spec = SynthSpec(profile=args.profile, peak_rps=args.peak, duration_s=args.hours * 3600.0, trough=args.trough,
                     peak_hour=args.peak_hour, bursts=args.bursts or Bursts(), models=args.models,
                     batch_sizes=args.batch_sizes, seed=args.seed)
    trace = synthesize(spec)
    write_trace(trace, args.out)
    for line in describe(trace):
        print(line)
    print(f"trace: {args.out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from tfsbench.payloads.trace import write_trace
    from tfsbench.payloads.trace_import import import_log
    from tfsbench.payloads.trace_synth import describe

    trace = import_log(args.log, args.log_format)
    write_trace(trace, args.out)
    for line in describe(trace):
        print(line)
    if trace.bad.count:
        print(f"tfsbench trace import: warning: {trace.bad.describe()}", file=sys.stderr)
    print(f"trace: {args.out}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from tfsbench.payloads.trace import read_trace
    from tfsbench.payloads.trace_synth import describe

    trace = read_trace(args.trace)
    for line in describe(trace, args.window):
        print(line)
    return 0
