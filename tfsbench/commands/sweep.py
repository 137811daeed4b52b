"""`tfsbench sweep`: run a grid of benchmarks (kinds x batch sizes x formats x load levels)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tfsbench.bench.args import (
    EXIT_INTERRUPTED,
    choice_of,
    comma_list,
    duration,
    duration_or_zero,
    non_negative_int,
    positive_float,
    positive_int,
)
from tfsbench.commands import Subparsers
from tfsbench.commands._protocol_args import rest_or_grpc_url
from tfsbench.payloads.errors import InputError

KINDS = ("text", "image", "numeric", "auto")
FORMATS = ("row", "columnar")
ENGINES = ("fast", "aiohttp")


def add_target_arguments(p: argparse.ArgumentParser, *, required: bool, kind_template: bool = False) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--url", required=required, type=rest_or_grpc_url,
                   help="TF Serving REST base URL, e.g. http://127.0.0.1:8501 (gRPC: grpc://127.0.0.1:8500)")
    g.add_argument("--protocol", choices=("rest", "grpc"),
                   help="rest (JSON) or grpc (PredictionService, protobuf; --url grpc://HOST:8500) (default rest)")
    g.add_argument("--numeric-form", choices=("content", "val"),
                   help="gRPC numbers as tensor_content or float_val/int_val... (default content)")
    g.add_argument("--model", required=required,
                   help="model name; '{kind}' is replaced by each payload kind (the demo models are named by kind)"
                   if kind_template else "model name")
    vl = g.add_mutually_exclusive_group()
    vl.add_argument("--version", type=non_negative_int, help="model version")
    vl.add_argument("--label", help="model version label")
    g.add_argument("--header", action="append", metavar="'NAME: VALUE'",
                   help="extra HTTP header, e.g. an auth token (repeatable; not stored in results)")


def add_load_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("load")
    g.add_argument("--duration", type=duration, help="measured time per run (default 10s)")
    g.add_argument("--warmup", type=duration_or_zero, help="warmup per run, excluded from statistics (default 2s)")
    g.add_argument("--engine", choices=ENGINES, help="load engine (default fast)")
    g.add_argument("--processes", type=positive_int, help="engine processes per run (default 1)")
    g.add_argument("--timeout", type=duration, help="per-request timeout (default 30s)")
    g.add_argument("--max-inflight", type=positive_int, help="open loop: cap on requests in flight")


def add_payload_options(p: argparse.ArgumentParser, *, multi: bool) -> None:
    """The shared payload flags (--kind, --batch-size, --format, --seed, --signature, --pool-size,
    generator knobs), with their defaults suppressed: an attribute is present only when the flag
    was given, so flags can override a config file and payload_spec_from_args fills the rest."""
    from tfsbench.commands._payload_args import add_payload_arguments

    add_payload_arguments(p, multi=multi, suppress_defaults=True)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of benchmarks: kinds x batch sizes x formats x concurrency levels or rates",
        description="Run every combination of payload kind, batch size, format and load level, writing one "
                    "result file per run as soon as it finishes plus manifest.json. Rerunning the same sweep "
                    "resumes it: finished runs are not redone. Ctrl-C stops the current run (kept, marked "
                    "partial) and reports what finished; a second Ctrl-C exits at once.",
    )
    p.add_argument("--config", type=Path, help="TOML sweep file ([sweep], [payload], [check]); flags override it")
    add_target_arguments(p, required=False, kind_template=True)
    g = p.add_argument_group("grid")
    g.add_argument("--kinds", type=comma_list(choice_of(KINDS, "kind"), "kinds"), help="payload kinds, e.g. text,image,numeric")
    g.add_argument("--batch-sizes", type=comma_list(positive_int, "positive integers"), help="e.g. 1,8,32")
    g.add_argument("--formats", type=comma_list(choice_of(FORMATS, "format"), "formats"), help="row,columnar (default row)")
    lv = g.add_mutually_exclusive_group()
    lv.add_argument("--concurrency", type=comma_list(positive_int, "positive integers"),
                    help="closed loop: requests in flight, e.g. 1,4,16")
    lv.add_argument("--rates", type=comma_list(positive_float, "positive numbers"),
                    help="open loop: requests per second, e.g. 50,100,200")
    g.add_argument("--arrival", choices=("constant", "poisson"), help="open loop arrivals (default constant)")
    g.add_argument("--requests", type=positive_int, help="measure this many requests per run instead of --duration")
    g.add_argument("--repeat", type=positive_int, metavar="N",
                   help="measure each run N times (files ID-r1.json ... ID-rN.json); summaries give the mean and "
                        "95%% CI across repeats (default 1)")
    add_load_arguments(p)
    st = p.add_argument_group("until stable (docs/stability.md)")
    st.add_argument("--max-duration", type=duration, metavar="D",
                    help="instead of --duration: measure each run until stable, at most this long")
    st.add_argument("--max-warmup", type=duration, metavar="D",
                    help="instead of --warmup: warm up until throughput settles, at most this long")
    st.add_argument("--max-remeasure", type=non_negative_int, default=0, metavar="N",
                    help="measure a run that ends unstable again, up to N times; the last attempt counts and the "
                         "unstable ones are kept in OUT/unstable/ (default 0)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, help="output directory (one JSON per run + manifest.json)")
    o.add_argument("--no-resume", action="store_true", help="redo every run even if its result exists")
    o.add_argument("--no-progress", action="store_true", help="plain log lines instead of a progress bar")
    o.add_argument("--no-saturation-stop", action="store_true",
                   help="run every load level even past saturation (default: a series stops once throughput "
                        "stops rising while latency keeps climbing; see docs/replay.md)")
    o.add_argument("--check", action="store_true",  # [check hook] see tfsbench check / tfsbench.reports.check
                   help="gate the finished runs on the --config file's [check] thresholds; exit 1 if one fails")
    add_payload_options(p, multi=True)
    p.set_defaults(func=run)


_FLAG_KEYS = ("url", "model", "version", "label", "signature", "kinds", "batch_sizes", "formats", "concurrency",
              "rates", "arrival", "requests", "duration", "warmup", "engine", "processes", "timeout", "seed",
              "max_inflight", "pool_size", "protocol", "numeric_form", "repeat", "max_duration", "max_warmup")
# Payload flags that are grid or run settings in a sweep: flag dest -> [sweep] key.
_PAYLOAD_TO_SWEEP = {"kind": "kinds", "batch_size": "batch_sizes", "format": "formats", "seed": "seed",
                     "signature": "signature", "pool_size": "pool_size"}


class _TableParser(argparse.ArgumentParser):
    """Parses a config table as if it were flags; errors become one InputError line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message.replace('argument --', 'option ')}")


def payload_namespace(args: argparse.Namespace, table: dict[str, Any], source: str) -> argparse.Namespace:
    """Payload options from a config file's [payload] table (keys are the flag names with
    underscores, values as on the command line), overridden by payload flags on the command line.
    The same validators as the flags check every value."""
    from tfsbench.bench.orchestrate.config_file import suggest
    from tfsbench.commands._payload_args import add_payload_arguments

    parser = _TableParser(prog=f"{source} [payload]", add_help=False)
    actions = {a.dest: a for a in add_payload_arguments(parser, multi=True, suppress_defaults=True)}
    allowed = [d for d in actions if d not in _PAYLOAD_TO_SWEEP]
    argv: list[str] = []
    for key, value in table.items():
        if key in _PAYLOAD_TO_SWEEP:
            raise InputError(f"{source} [payload]: {key!r} belongs in [sweep] as {_PAYLOAD_TO_SWEEP[key]!r}")
        if key not in allowed:
            raise InputError(f"{source} [payload]: unknown key {key!r}{suggest(key, allowed)}; "
                             f"known keys: {', '.join(allowed)}")
        action = actions[key]
        flag = action.option_strings[0]
        if action.nargs == 0:
            if not isinstance(value, bool):
                raise InputError(f"{source} [payload] {key} must be true or false, not {value!r}")
            if value:
                argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in value if isinstance(value, list) else [value]:
                argv += [flag, _as_flag_text(item)]
        else:
            argv += [flag, _as_flag_text(value)]
    ns = parser.parse_args(argv)
    for dest in allowed:
        if hasattr(args, dest):
            setattr(ns, dest, getattr(args, dest))
    return ns


def _as_flag_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def build_sweep(args: argparse.Namespace) -> Any:
    """The validated SweepFile from --config and flags (flags win), before anything is sent."""
    from tfsbench.bench.measure.engine import header_dict
    from tfsbench.bench.orchestrate.config_file import load_toml
    from tfsbench.bench.orchestrate.sweep import parse_sweep_doc

    doc: dict[str, Any] = load_toml(args.config) if args.config else {"sweep": {}}
    source = str(args.config) if args.config else "command line"
    sweep = doc.get("sweep")
    if not isinstance(sweep, dict):
        sweep = {}
    sweep = dict(sweep)
    # --kind/--batch-size/--format (the shared payload flags) are accepted as --kinds/... here.
    for dest, key in _PAYLOAD_TO_SWEEP.items():
        if hasattr(args, dest):
            if dest != key and getattr(args, key, None) is not None:
                raise InputError(f"give --{key.replace('_', '-')} or --{dest.replace('_', '-')}, not both")
            setattr(args, key, list(getattr(args, dest)) if dest != key else getattr(args, dest))
    given: list[str] = []
    for key in _FLAG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            sweep[key] = value
            given.append(key)
    # A load level given on the command line replaces the other kind from the file.
    if "concurrency" in given:
        sweep.pop("rates", None)
        if "arrival" not in given:
            sweep.pop("arrival", None)
    if "rates" in given:
        sweep.pop("concurrency", None)
    if "duration" in given and "requests" not in given:
        sweep.pop("requests", None)
    if "requests" in given and "duration" not in given:
        sweep.pop("duration", None)
    # a fixed length on the command line replaces the file's until-stable bound, and the reverse
    if ("duration" in given or "requests" in given) and "max_duration" not in given:
        sweep.pop("max_duration", None)
    if "max_duration" in given and not {"duration", "requests"} & set(given):
        sweep.pop("duration", None)
        sweep.pop("requests", None)
    if "warmup" in given and "max_warmup" not in given:
        sweep.pop("max_warmup", None)
    if "max_warmup" in given and "warmup" not in given:
        sweep.pop("warmup", None)
    if args.out is not None:
        sweep["out"] = str(args.out)
        given.append("out")
    headers = header_dict(args.header)
    if headers:
        merged = dict(sweep.get("headers") or {})
        merged.update(headers)
        sweep["headers"] = merged
    doc = dict(doc)
    doc["sweep"] = sweep
    from tfsbench.reports.check import parse_threshold

    sf = parse_sweep_doc(doc, source, from_flags=given, path=args.config, check_threshold=parse_threshold)
    if sf.out_dir is None:
        raise InputError("missing --out DIR (or 'out' in the config file's [sweep] table)")
    ns = payload_namespace(args, dict(sf.payload), source)
    base = with_payload_options(sf.plan.base, ns)
    return dataclasses.replace(sf, plan=dataclasses.replace(sf.plan, base=base))


def with_payload_options(base: Any, ns: argparse.Namespace) -> Any:
    """`base` with the generator knobs of the payload flags in config.extra["payload"] (where the
    runner reads them, and where resume sees them as part of the configuration)."""
    from tfsbench.bench.measure.runner import payload_extra
    from tfsbench.commands._payload_args import payload_spec_from_args

    ns.seed, ns.signature = base.seed, base.signature
    spec = payload_spec_from_args(ns, kind=base.kind, batch_size=base.batch_size, fmt=base.format)
    knobs = payload_extra(spec)
    if not knobs:
        return base
    return dataclasses.replace(base, extra={**dict(base.extra), "payload": knobs})


def run(args: argparse.Namespace) -> int:
    import threading

    from tfsbench.bench.orchestrate.sweep import check_configs, run_sweep, stop_on_signals

    sf = build_sweep(args)
    plan = sf.plan
    configs = plan.configs()
    check_configs(configs)
    if args.check and not sf.thresholds:  # [check hook] bad input before any load
        raise InputError("--check needs thresholds: add [check] thresholds = [\"p99<50ms\", ...] to --config")
    if sf.out_dir.exists() and not sf.out_dir.is_dir():
        raise InputError(f"--out {sf.out_dir}: exists and is not a directory")
    base = plan.base
    load = (f"concurrency {','.join(map(str, plan.concurrencies))}" if plan.concurrencies
            else f"rates {','.join(f'{r:g}' for r in plan.rates)} req/s ({base.arrival})")
    per_run = f"{base.duration_s:g} s" if base.duration_s else f"{base.requests_limit} requests"
    if base.until_stable:
        per_run = f"until stable (at most {base.duration_s:g} s)"
    warm = f"warmup until settled (at most {base.warmup_s:g} s)" if base.warmup_auto else f"{base.warmup_s:g} s warmup"
    times = f" x {sf.repeat} repeats" if sf.repeat > 1 else ""
    announcement = (f"sweep: {len(configs)} runs{times} against {base.url} (model {base.model}); {load}; {per_run} "
                    f"per run + {warm}, engine {base.engine}; results in {sf.out_dir}")
    stop = threading.Event()

    def first_signal(name: str) -> None:
        print(f"\n{name}: stopping the current run (press Ctrl-C again to exit at once)", file=sys.stderr)

    with stop_on_signals(stop, first_signal):
        outcome = run_sweep(plan, sf.out_dir, resume=not args.no_resume, progress=not args.no_progress,
                            headers=dict(sf.headers) or None, stop=stop, thresholds=sf.thresholds,
                            on_ready=lambda: print(announcement, file=sys.stderr, flush=True),
                            stop_when_saturated=not getattr(args, "no_saturation_stop", False),
                            repeat=sf.repeat, max_remeasure=args.max_remeasure)
    print_outcome(outcome)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if args.check:  # [check hook] the same gate as `tfsbench check OUT_DIR --config FILE`
        from tfsbench.bench.results import load_results
        from tfsbench.reports import check as gates

        gate = gates.check_results(load_results([str(sf.out_dir)]), sf.thresholds)
        print(gates.render_text(gate))
        return max(1 if outcome.failed else 0, gate.exit_status)
    return 1 if outcome.failed else 0


def print_outcome(outcome: Any) -> None:
    """A table of the finished runs, then one line saying what is done and what is not."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"sweep {outcome.out_dir}", show_lines=False)
    for col in ("run", "req/s", "inst/s", "p50 ms", "p99 ms", "errors", "stable", "status"):
        table.add_column(col, justify="left" if col in ("run", "status") else "right")
    skipped = set(outcome.skipped_ids)
    for rid, r in zip(outcome.finished_ids, outcome.results, strict=True):
        s = r.summary
        table.add_row(rid, f"{s.throughput_rps:,.1f}", f"{s.throughput_ips:,.1f}", f"{s.latency_ms.p50:.2f}",
                      f"{s.latency_ms.p99:.2f}", str(s.error_count), "yes" if s.stable else "no",
                      "skipped (done before)" if rid in skipped else "done")
    for r in outcome.partial:
        from tfsbench.bench.orchestrate.sweep import run_id

        s = r.summary
        if s.ok:
            cells = [f"{s.throughput_rps:,.1f}", f"{s.throughput_ips:,.1f}", f"{s.latency_ms.p50:.2f}",
                     f"{s.latency_ms.p99:.2f}"]
        else:  # stopped during warmup: nothing measured
            cells = ["-"] * 4
        table.add_row(run_id(r.config), *cells, str(s.error_count), "-", "partial (interrupted)")
    console.print(table)
    print_repeat_summaries(outcome)
    saturated = getattr(outcome, "saturated", {}) or {}
    if saturated:
        from tfsbench.bench.orchestrate.saturation import RULE

        print(f"over-saturation stop ({RULE}):")
        for rid, why in saturated.items():
            print(f"  skipped {rid}: {why}")
    n_done, n_all = len(outcome.finished_ids), len(outcome.planned)
    for rid, why in outcome.failed.items():
        print(f"run {rid} FAILED: {why} (rerun the sweep to retry it)", file=sys.stderr)
    if outcome.interrupted:
        remaining = [rid for rid in outcome.planned if rid not in set(outcome.finished_ids)]
        print(f"interrupted: {n_done} of {n_all} runs finished and saved; not finished: {', '.join(remaining)}. "
              f"Run the same command again to resume. Manifest: {outcome.manifest_path}", file=sys.stderr)
    elif outcome.failed:
        print(f"sweep finished with {len(outcome.failed)} failed run(s): {n_done} of {n_all} runs saved. "
              f"Manifest: {outcome.manifest_path}", file=sys.stderr)
    else:
        past = f", {len(saturated)} not run: past saturation" if saturated else ""
        print(f"sweep complete: {n_all} runs ({outcome.skipped} skipped as already done{past}). "
              f"Manifest: {outcome.manifest_path}", file=sys.stderr)


def print_repeat_summaries(outcome: Any) -> None:
    """With --repeat N: one line per grid point, mean and 95% CI of throughput and p99 across its repeats."""
    if getattr(outcome, "repeat", 1) <= 1:
        return
    from tfsbench.bench.orchestrate.repeats import summarize

    points: dict[str, list[Any]] = {}
    for rid, r in zip(outcome.finished_ids, outcome.results, strict=True):
        points.setdefault(outcome.groups.get(rid, rid), []).append(r)
    print(f"across repeats (mean and 95% CI, Student t; {outcome.repeat} planned per point):")
    for point, runs in points.items():
        for line in summarize(runs).lines():
            print(f"  {point}: {line}")
