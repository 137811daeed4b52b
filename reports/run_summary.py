"""The end-of-run summary printed by `tfsbench run` (rich tables; also usable by sweep/search)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfsbench.bench.results import LatencySummary, RunResult


def _lat_row(name: str, s: LatencySummary) -> list[str]:
    return [name] + [f"{v:.2f}" for v in (s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max)]


def server_lines(result: RunResult) -> list[str]:
    """The server's view of the run (RunResult.server, schema v2) as one or two plain lines, or none.

    TF Serving times a request from its HTTP handler to the ready response; the client from send to
    the last byte. The gap is what the payload costs outside the model: JSON, HTTP, the network.
    """
    server = result.server
    if not isinstance(server, Mapping):
        return []
    lat = server.get("latency_ms") or {}
    if not server.get("found") or lat.get("p50") is None:
        return [f"server latency not measured: {server.get('error') or 'no metrics'}"]
    client = result.summary.latency_ms
    s50, s99 = float(lat["p50"]), float(lat.get("p99") or lat["p50"])
    return [
        f"server p50 {s50:.2f} ms, p99 {s99:.2f} ms "
        f"(TF Serving request_latency, {int(server.get('requests', 0)):,} requests)",
        f"client - server p50 {client.p50 - s50:.2f} ms, p99 {client.p99 - s99:.2f} ms: "
        "JSON, HTTP, network, queueing",
    ]


def print_summary(result: RunResult, console: Any, path: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    c, s = result.config, result.summary
    title = f"{c.model} {c.label_text()} ({c.engine} x{c.processes})"
    if result.partial:
        title += " [yellow]PARTIAL[/]"
    t = Table(title=title, show_header=True, header_style="bold")
    for col in ("latency ms", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"):
        t.add_column(col, justify="right" if col != "latency ms" else "left")
    t.add_row(*_lat_row("response" if c.mode == "closed" else "from intended send", s.latency_ms))
    if s.schedule_lag_ms is not None:
        t.add_row(*_lat_row("schedule lag", s.schedule_lag_ms))
    console.print(t)
    err_text = ", ".join(f"{k} {v:,}" for k, v in s.errors.items()) or "none"
    lines = [
        f"requests {s.requests:,} in {s.measured_s:.1f} s: ok {s.ok:,}, errors {err_text}",
        f"throughput {s.throughput_rps:,.1f} req/s = {s.throughput_ips:,.1f} instances/s"
        + (f" (offered {s.offered_rps:g} req/s)" if s.offered_rps else ""),
        f"bytes per request: sent {s.request_bytes:,.0f}, received {s.response_bytes:,.0f}, raw tensors {s.raw_bytes:,.0f}",
        f"client CPU {s.client_cpu_pct:.0f}% of a core per process",
        ("[green]" if s.stable else "[yellow]") + s.stability_reason + "[/]",
    ]
    lines[2:2] = [escape(line) for line in server_lines(result)]
    if c.mode == "open":
        lines.insert(2, f"late (> 1 ms) {s.late_requests:,}; refused at --max-inflight {s.refused_inflight:,}")
    for sample in s.error_samples[:3]:
        lines.append(f"[red]error sample[/] {sample}")
    for w in result.warnings:
        lines.append(f"[yellow]warning[/] {w}")
    if path:
        lines.append(f"result: {path}")
    for line in lines:
        console.print(line, markup=True, highlight=False)
