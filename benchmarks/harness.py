"""The one harness every benchmark script shares: its command line, the machine it ran on, its output.

Every script runs as `python -m benchmarks.bench_NAME [options] --out FILE.json` from the repository
root and writes one JSON document (atomically, so a killed run leaves no half file):

    {"type": "tfsbench.benchmark", "schema_version": 1, "benchmark": "bench_payloads",
     "command": "python -m benchmarks.bench_payloads --quick --out ...", "args": {...},
     "machine": {"cpus": 2, "cpu_model": "...", "python": "3.11.7", "date": "2026-12-03", ...},
     "results": {...}, "targets": {"encode_speedup": {"value": 31.2, "op": ">=", "limit": 10, "met": true}}}

Exit status: 0 when every target was met, 1 when one was missed (the document is still written), 2
for bad arguments (one line on stderr, nothing written). `benchmarks/perf_table.py` turns the
committed documents in `benchmarks/data/` into docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import operator
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tfsbench.bench.args import duration, out_file, positive_float, positive_int
from tfsbench.bench.measure import environment
from tfsbench.bench.results import write_json_atomic

BENCHMARK_TYPE = "tfsbench.benchmark"
SCHEMA_VERSION = 1
__all__ = ["BENCHMARK_TYPE", "SCHEMA_VERSION", "duration", "emit", "machine_info", "parser", "positive_float",
           "positive_int", "target"]

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt,
                                                    ">": operator.gt}


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The script's parser: description from its docstring, and the required `--out FILE.json`."""
    first, _, rest = (doc or name).strip().partition("\n")
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=first,
                                epilog=rest.strip() or None, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=out_file, required=True, metavar="FILE.json",
                   help="where to write the JSON document (benchmarks/data/ holds the committed ones)")
    return p


def machine_info() -> dict[str, Any]:
    """Where a figure came from: CPUs usable by this process, their model, Python, OS, date and load."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    now = datetime.datetime.now(datetime.UTC)
    return {"cpus": environment.usable_cpus(), "cpu_model": environment.cpu_model() or platform.machine(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "date": now.strftime("%Y-%m-%d"), "time_utc": now.strftime("%H:%M"), "load_avg": load}


def target(value: float | None, op: str, limit: float) -> dict[str, Any]:
    """A target a figure is held to, e.g. target(speedup, '>=', 10); a missing value misses it."""
    met = value is not None and _OPS[op](value, limit)
    return {"value": value, "op": op, "limit": limit, "met": bool(met)}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def emit(name: str, args: argparse.Namespace, results: Mapping[str, Any],
         targets: Mapping[str, dict[str, Any]] | None = None, argv: Sequence[str] | None = None) -> int:
    """Write the benchmark's document to `args.out` atomically and say so; exit status 1 if a target
    was missed, else 0."""
    targets = dict(targets or {})
    options = {k: _plain(v) for k, v in vars(args).items() if k != "out"}
    command = " ".join(["python -m benchmarks." + name, *(sys.argv[1:] if argv is None else argv)])
    doc = {"type": BENCHMARK_TYPE, "schema_version": SCHEMA_VERSION, "benchmark": name, "command": command,
           "args": options, "machine": machine_info(), "results": _plain(results), "targets": targets}
    json.dumps(doc, allow_nan=False)  # refuse NaN/Infinity before anything is written
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, doc)
    missed = [k for k, t in targets.items() if not t["met"]]
    for key in missed:
        t = targets[key]
        print(f"target missed: {key} = {t['value']} (wanted {t['op']} {t['limit']})", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if missed else 0
