"""REST vs gRPC, side by side: per payload kind and batch size, what each protocol costs.

From result files only (the schema's `config.protocol`): runs of the same kind, batch size and load
level are paired across protocols, and each pair becomes one row per protocol with bytes per instance,
p50/p99 latency, throughput and client CPU per request. `size_table_markdown` renders the payload
size table (raw, protobuf, JSON, JSON+gzip) from benchmarks/bench_grpc.py's document, so the docs'
numbers are generated, never typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tfsbench.bench.results import RunResult

PROTOCOLS = ("rest", "grpc")


@dataclass(frozen=True, slots=True)
class ProtocolRow:
    kind: str
    batch_size: int
    load: str  # "c=8" or "r=200/s": the level both protocols ran at
    protocol: str
    request_bytes_per_instance: float
    p50_ms: float
    p99_ms: float
    throughput_rps: float
    client_cpu_us_per_request: float | None  # client CPU time per ok response (None: not measured)
    errors: int


def _load(result: RunResult) -> str:
    c = result.config
    return f"c={c.concurrency}" if c.mode == "closed" else f"r={c.rate_rps:g}/s"


def _row(result: RunResult) -> ProtocolRow:
    c, s = result.config, result.summary
    cpu = None
    if s.client_cpu_pct and s.throughput_rps > 0:
        cpu = s.client_cpu_pct / 100.0 * c.processes / s.throughput_rps * 1e6
    return ProtocolRow(
        kind=c.kind, batch_size=c.batch_size, load=_load(result), protocol=c.protocol,
        request_bytes_per_instance=s.request_bytes / max(c.batch_size, 1),
        p50_ms=s.latency_ms.p50, p99_ms=s.latency_ms.p99, throughput_rps=s.throughput_rps,
        client_cpu_us_per_request=cpu, errors=s.error_count,
    )


def protocol_rows(results: Iterable[RunResult]) -> list[ProtocolRow]:
    """One row per run, keeping only (kind, batch, load) groups measured with both protocols, in order
    kind, batch size, load, protocol (REST first). The latest run wins when a group repeats."""
    groups: dict[tuple[str, int, str], dict[str, RunResult]] = {}
    for result in results:
        key = (result.config.kind, result.config.batch_size, _load(result))
        groups.setdefault(key, {})[result.config.protocol] = result
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2])):
        by_protocol = groups[key]
        if all(p in by_protocol for p in PROTOCOLS):
            rows.extend(_row(by_protocol[p]) for p in PROTOCOLS)
    return rows


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def protocol_table_markdown(rows: Sequence[ProtocolRow]) -> str:
    """The REST-vs-gRPC table as Markdown, with gRPC's change against REST on its row."""
    lines = ["| kind | batch | load | protocol | bytes/instance | p50 ms | p99 ms | req/s | client CPU µs/req |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|"]
    rest: ProtocolRow | None = None
    for row in rows:
        note = ""
        if row.protocol == "rest":
            rest = row
        elif rest is not None and rest.throughput_rps > 0:
            note = f" ({row.throughput_rps / rest.throughput_rps:.2f}x)"
        lines.append(
            f"| {row.kind} | {row.batch_size} | {row.load} | {row.protocol} | {row.request_bytes_per_instance:,.0f} | "
            f"{row.p50_ms:.2f} | {row.p99_ms:.2f} | {row.throughput_rps:,.0f}{note} | "
            f"{_num(row.client_cpu_us_per_request, ',.0f')} |")
    return "\n".join(lines) + "\n"


def size_table_markdown(sizes: Sequence[Mapping[str, Any]]) -> str:
    """Mean bytes per request: raw, protobuf, JSON, JSON+gzip, and JSON/protobuf."""
    with_pz = any("protobuf_gzip_bytes" in r for r in sizes)
    pz_head, pz_rule = (" protobuf+gzip |", "---:|") if with_pz else ("", "")
    lines = [f"| kind | batch | raw | protobuf |{pz_head} JSON | JSON+gzip | JSON/protobuf |",
             f"|---|---:|---:|---:|{pz_rule}---:|---:|---:|"]
    for r in sizes:
        pz = f" {r.get('protobuf_gzip_bytes', 0):,.0f} |" if with_pz else ""
        lines.append(
            f"| {r['kind']} | {r['batch_size']} | {r['raw_bytes']:,.0f} | {r['protobuf_bytes']:,.0f} |{pz} "
            f"{r['json_bytes']:,.0f} | {r['json_gzip_bytes']:,.0f} | "
            f"{r['json_bytes'] / max(r['protobuf_bytes'], 1):.2f}x |")
    return "\n".join(lines) + "\n"


def protocol_figure(rows: Sequence[ProtocolRow]) -> Any:
    """Two panels per (kind, batch, load) group: p50/p99 latency and throughput, REST next to gRPC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    groups = sorted({(r.kind, r.batch_size, r.load) for r in rows})
    fig: Figure = plt.figure(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.2))
    lat, thr = fig.subplots(1, 2)
    width = 0.38
    colors = {"rest": "#4c72b0", "grpc": "#dd8452"}
    for offset, protocol in ((-width / 2, "rest"), (width / 2, "grpc")):
        picked = {(r.kind, r.batch_size, r.load): r for r in rows if r.protocol == protocol}
        xs = [i + offset for i in range(len(groups))]
        p50 = [picked[g].p50_ms if g in picked else 0 for g in groups]
        p99 = [picked[g].p99_ms if g in picked else 0 for g in groups]
        lat.bar(xs, p99, width, color=colors[protocol], alpha=0.35)
        lat.bar(xs, p50, width, color=colors[protocol], label=f"{protocol} p50 (light: p99)")
        thr.bar(xs, [picked[g].throughput_rps if g in picked else 0 for g in groups], width,
                color=colors[protocol], label=protocol)
    labels = [f"{k} b={b}\n{load}" for k, b, load in groups]
    for ax, title, unit in ((lat, "latency", "ms"), (thr, "throughput", "requests/s")):
        ax.set_xticks(range(len(groups)), labels, fontsize=7, rotation=30, ha="right")
        ax.set_title(f"{title}: REST vs gRPC")
        ax.set_ylabel(unit)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # headroom: the legend never covers a bar
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# ---- report section (reports/context.py EXTRA_SECTION_MODULES) -------------------------------------

SECTION_ID = "protocols"
TITLE = "REST vs gRPC"
FIGURE_NAME = "protocols.png"
CAPTION = ("p50 (dark) and p99 (light) latency and throughput of the same payload and load over REST and "
           "gRPC. Lower latency and higher throughput are better; bytes per instance are in the table.")


def build_figures(ctx: Any) -> list[Any]:
    from tfsbench.reports.context import FigureOut
    from tfsbench.reports.style import png_bytes

    rows = protocol_rows(ctx.runs)
    if not rows:
        return []
    return [FigureOut(name=FIGURE_NAME, title=TITLE, caption=CAPTION, png=png_bytes(protocol_figure(rows)))]


def build_section(ctx: Any) -> Any:
    """A table of every (kind, batch, load) measured over both protocols; None when there is none."""
    import html

    from tfsbench.reports.context import Section

    rows = protocol_rows(ctx.runs)
    if not rows:
        return None
    head = ["kind", "batch", "load", "protocol", "bytes/instance", "p50 ms", "p99 ms", "req/s", "client CPU µs/req"]
    body = []
    for r in rows:
        cells = [r.kind, str(r.batch_size), r.load, r.protocol, f"{r.request_bytes_per_instance:,.0f}",
                 f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.throughput_rps:,.0f}",
                 _num(r.client_cpu_us_per_request, ",.0f")]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    intro = ("The same generated tensors sent over TF Serving's REST API (JSON) and its gRPC API (protobuf) at "
             "the same load: what each costs in bytes, latency, throughput and client CPU.")
    fragment = (f"<p>{html.escape(intro)}</p><div class=\"scroll\"><table><thead><tr>{th}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")
    return Section(SECTION_ID, TITLE, fragment, f"{intro}\n\n{protocol_table_markdown(rows)}")
