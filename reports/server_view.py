"""The report's "client vs server latency" section and figure, from `RunResult.server`.

TF Serving measures a request from the moment its HTTP handler has the request to the moment the
response is ready (`:tensorflow:serving:request_latency`); the client measures from send to the last
byte read. The gap is JSON encoding and decoding on both sides, HTTP, the network and the load
generator's own queueing. A big gap with a small server time says: fix the payload (smaller JSON,
b64 images, columnar format), not the model.

Listed in `reports.context.EXTRA_SECTION_MODULES`; the report builder calls `build_section` and
`build_figures`.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from typing import Any

from bench.results import RunResult
from reports.context import FigureOut, ReportContext, Section

SECTION_ID = "server-view"
TITLE = "Client vs server latency"
FIGURE_NAME = "server_view.png"
CAPTION = (
    "Per configuration, the client's latency split into the server's own time (TF Serving's "
    ":tensorflow:serving:request_latency histogram over the measured window, dark) and the rest "
    "(light): JSON encoding/decoding, HTTP, the network and client queueing. Left p50, right p99. "
    "Server percentiles are interpolated inside TF Serving's buckets, each 1.8x wider than the last."
)
MAX_ROWS = 40
_TEXT = ' class="text"'


def _e(value: Any) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _server_runs(runs: Sequence[RunResult]) -> list[RunResult]:
    return [r for r in runs if isinstance(r.server, dict) and r.server.get("found") and r.server.get("latency_ms")]


def _name(run: RunResult, with_model: bool) -> str:
    label = run.config.label_text()
    return f"{label} ({run.config.model})" if with_model else label


def rows(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per run with a server view: client and server p50/p99 (ms), the gap, the server share."""
    out = []
    with_model = len({r.config.model for r in runs}) > 1
    for run in _server_runs(runs):
        server = run.server or {}
        lat = server.get("latency_ms") or {}
        client = run.summary.latency_ms
        row: dict[str, Any] = {"name": _name(run, with_model), "run": run}
        for p in ("p50", "p99"):
            s = lat.get(p)
            c = float(getattr(client, p))
            row[f"client_{p}"] = c
            row[f"server_{p}"] = s
            row[f"gap_{p}"] = None if s is None else c - s
        row["server_share_p50"] = (
            None if row["server_p50"] is None or row["client_p50"] <= 0 else min(1.0, row["server_p50"] / row["client_p50"])
        )
        row["server_requests"] = int(server.get("requests", 0))
        row["client_ok"] = run.summary.ok
        queue = server.get("batching_queuing_latency_ms") or {}
        row["queue_p50"] = queue.get("p50")
        row["statuses"] = dict(server.get("request_count_by_status") or {})
        out.append(row)
    return out


def _missing_note(runs: Sequence[RunResult]) -> str:
    """Why some runs have no server view (not a data-quality warning: monitoring is opt-in)."""
    missing = [r for r in runs if isinstance(r.server, dict) and not r.server.get("found")]
    if not missing:
        return ""
    why = (missing[0].server or {}).get("error") or "no metrics"
    return f"{len(missing)} of {len(runs)} run(s) have no server-side latency: {why}"


def _warnings(table: list[dict[str, Any]]) -> list[str]:
    warns = []
    for row in table:
        ok, seen = row["client_ok"], row["server_requests"]
        conc = row["run"].config.concurrency or 0
        if ok and abs(seen - ok) > max(0.05 * ok, 2 * conc + 2):
            warns.append(
                f"{row['name']}: the server counted {seen} successful predicts in the window, the client {ok}; "
                "was another client using the server during the run?"
            )
    return warns


def build_section(ctx: ReportContext) -> Section | None:
    runs = ctx.runs
    if not any(isinstance(r.server, dict) for r in runs):
        return None
    table = rows(runs)
    warns = _warnings(table)
    note = _missing_note(runs)
    note_html = f'<p class="muted">{_e(note)}</p>' if note else ""
    intro = (
        "TF Serving's own latency (Prometheus <code>:tensorflow:serving:request_latency</code>, scraped at the "
        "start and end of each measured window) next to the client's. The gap is JSON encoding and decoding, "
        "HTTP, the network and client queueing: when it dominates, shrink the payload before tuning the model."
    )
    if not table:
        html = f"<p>{intro}</p>{note_html}<p class=\"muted\">No run has server metrics. Enable them with "
        html += "<code>--monitoring_config_file</code> holding <code>prometheus_config { enable: true }</code>.</p>"
        return Section(SECTION_ID, TITLE, html, note or "No run has server metrics.", tuple(warns))
    with_queue = any(r["queue_p50"] is not None for r in table)
    head = ["configuration", "client p50", "server p50", "gap p50", "server share",
            "client p99", "server p99", "gap p99", "requests server / client"]
    if with_queue:
        head.append("batch queue p50")
    body_rows = []
    for r in table[:MAX_ROWS]:
        share = "n/a" if r["server_share_p50"] is None else f"{r['server_share_p50']:.0%}"
        cells = [r["name"], _ms(r["client_p50"]), _ms(r["server_p50"]), _ms(r["gap_p50"]), share,
                 _ms(r["client_p99"]), _ms(r["server_p99"]), _ms(r["gap_p99"]),
                 f"{r['server_requests']} / {r['client_ok']}"]
        if with_queue:
            cells.append(_ms(r["queue_p50"]))
        body_rows.append(cells)
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    trs = "".join(
        "<tr>" + "".join(f"<td{_TEXT if i == 0 else ''}>{_e(c)}</td>" for i, c in enumerate(cells)) + "</tr>"
        for cells in body_rows
    )
    more = f'<p class="muted">{len(table) - MAX_ROWS} more rows in the CSV/JSON results.</p>' if len(table) > MAX_ROWS else ""
    html = (
        f"<p>{intro} Latencies in milliseconds; server share is server p50 / client p50.</p>"
        f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>{more}{note_html}'
        f'<p class="muted">Server percentiles are interpolated inside TF Serving\'s buckets (each 1.8x the last), '
        "so read them to about 20%. TF Serving records latency only for successful REST requests.</p>"
    )
    md_head = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    md_rows = "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |" for cells in body_rows)
    markdown = (
        "Server latency from TF Serving's Prometheus metrics (ms); the gap is JSON, HTTP and the network.\n\n"
        + md_head + md_rows + (f"\n\n{note}" if note else "")
    )
    return Section(SECTION_ID, TITLE, html, markdown, tuple(warns))


def figure(runs: Sequence[RunResult]) -> Any:
    """Stacked horizontal bars per configuration: server time + the rest = client latency (p50, p99)."""
    table = rows(runs)[:MAX_ROWS]
    table = [r for r in table if r["server_p50"] is not None]
    if not table:
        return None
    from reports import style

    with style.styled():
        height = max(3.0, 0.42 * len(table) + 2.0)
        fig, axes = style.new_figure(ncols=2, height_in=height, sharey=True)
        names = [r["name"] for r in table]
        ys = list(range(len(table)))[::-1]
        for ax, p in zip(axes[0], ("p50", "p99"), strict=True):
            server = [max(0.0, r[f"server_{p}"] or 0.0) for r in table]
            client = [r[f"client_{p}"] for r in table]
            gap = [max(0.0, c - s) for c, s in zip(client, server, strict=True)]
            colors = [style.kind_color(r["run"].config.kind) for r in table]
            ax.barh(ys, server, color=colors, edgecolor=colors)
            ax.barh(ys, gap, left=server, color=colors, alpha=0.3, edgecolor=colors, hatch="//")
            for y, c, s in zip(ys, client, server, strict=True):
                share = f"{s / c:.0%} server" if c > 0 else ""
                ax.text(c, y, f" {_ms(c)} ms ({share})", va="center", fontsize=8)
            ax.set_title(f"{p} latency")
            ax.set_xlabel("milliseconds")
            ax.set_xlim(0, max(client) * 1.45 if max(client) > 0 else 1)
            ax.grid(axis="y", visible=False)
        axes[0][0].set_yticks(ys)
        axes[0][0].set_yticklabels(names)
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=style.MUTED, edgecolor=style.MUTED, label="server: TF Serving's request_latency"),
            Patch(facecolor=style.MUTED, alpha=0.3, edgecolor=style.MUTED, hatch="//",
                  label="the rest: JSON encode/decode, HTTP, network, client queueing"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        fig.suptitle("Client vs server latency: where the time goes")
    return fig


def build_figures(ctx: ReportContext) -> list[FigureOut]:
    fig = figure(ctx.runs)
    if fig is None:
        return []
    from reports import style

    return [FigureOut(FIGURE_NAME, TITLE, CAPTION, style.png_bytes(fig))]
