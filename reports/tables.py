"""The per-run summary table, once, for HTML, Markdown, CSV and the terminal.

CSV columns follow perf_analyzer's habit (configuration, load, throughput, p50/p90/p95/p99, bytes)
with units in the names; values are numbers, never formatted strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from tfsbench.bench.results import RunResult
from tfsbench.reports.dataset import load_of, run_warnings

CSV_COLUMNS: tuple[str, ...] = (
    "model", "kind", "batch_size", "format", "mode", "engine", "source", "concurrency", "offered_rps",
    "throughput_rps", "throughput_ips", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "mean_ms",
    "max_ms", "requests", "ok", "errors", "error_rate", "request_bytes", "response_bytes", "raw_bytes",
    "measured_s", "stable", "partial", "client_cpu_pct", "label",
)

# (heading, unit hint) for the human tables
DISPLAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("configuration", ""),
    ("load", ""),
    ("throughput", "req/s"),
    ("predictions", "inst/s"),
    ("p50", "ms"),
    ("p90", "ms"),
    ("p99", "ms"),
    ("p99.9", "ms"),
    ("errors", ""),
    ("request", "bytes"),
    ("status", ""),
)


def csv_row(run: RunResult) -> dict[str, Any]:
    c, s = run.config, run.summary
    lat = s.latency_ms
    return {
        "model": c.model, "kind": c.kind, "batch_size": c.batch_size, "format": c.format, "mode": c.mode,
        "engine": c.engine, "source": c.source, "concurrency": c.concurrency if c.concurrency is not None else "",
        "offered_rps": _r(c.rate_rps if c.rate_rps is not None else s.offered_rps),
        "throughput_rps": _r(s.throughput_rps), "throughput_ips": _r(s.throughput_ips),
        "p50_ms": _r(lat.p50), "p90_ms": _r(lat.p90), "p95_ms": _r(lat.p95), "p99_ms": _r(lat.p99),
        "p999_ms": _r(lat.p999), "mean_ms": _r(lat.mean), "max_ms": _r(lat.max),
        "requests": s.requests, "ok": s.ok, "errors": s.error_count, "error_rate": _r(s.error_rate, 5),
        "request_bytes": _r(s.request_bytes, 1), "response_bytes": _r(s.response_bytes, 1),
        "raw_bytes": _r(s.raw_bytes, 1), "measured_s": _r(s.measured_s, 2), "stable": s.stable,
        "partial": run.partial, "client_cpu_pct": _r(s.client_cpu_pct, 1), "label": c.label or "",
    }


def _r(v: float | None, digits: int = 3) -> float | str:
    return "" if v is None else round(float(v), digits)


def _csv_safe(value: Any) -> Any:
    """Strings that a spreadsheet would run as a formula get a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(runs: Sequence[RunResult]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({k: _csv_safe(v) for k, v in csv_row(run).items()})
    return buf.getvalue()


def fmt_ms(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_num(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_bytes(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f} MB"
    if v >= 1e4:
        return f"{v / 1e3:.1f} kB"
    return f"{v:,.0f} B"


def load_text(run: RunResult) -> str:
    if run.config.mode == "closed":
        return f"c={run.config.concurrency}"
    return f"{load_of(run):g} req/s"


def display_row(run: RunResult, *, with_model: bool = False) -> list[str]:
    """Plain strings (unescaped); renderers escape for their format."""
    c, s = run.config, run.summary
    lat = s.latency_ms
    name = f"{c.kind} b={c.batch_size} {c.format}"
    if with_model:
        name = f"{c.model}: {name}"
    errors = f"{s.error_count} ({s.error_rate:.1%})" if s.error_count else "0"
    warns = run_warnings(run)
    status = "ok" if not warns else f"{len(warns)} warning{'s' if len(warns) > 1 else ''}"
    if run.partial:
        status = "PARTIAL"
    elif not s.stable:
        status = "UNSTABLE"
    return [
        name, load_text(run), fmt_num(s.throughput_rps), fmt_num(s.throughput_ips), fmt_ms(lat.p50),
        fmt_ms(lat.p90), fmt_ms(lat.p99), fmt_ms(lat.p999), errors, fmt_bytes(s.request_bytes), status,
    ]


def headings() -> list[str]:
    return [f"{h} ({u})" if u else h for h, u in DISPLAY_COLUMNS]


def needs_model_column(runs: Sequence[RunResult]) -> bool:
    per_kind: dict[str, set[str]] = {}
    for r in runs:
        per_kind.setdefault(r.config.kind, set()).add(r.config.model)
    return any(len(v) > 1 for v in per_kind.values())
