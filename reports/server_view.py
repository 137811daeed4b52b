"""The report's "client vs server latency" section and figure, from `RunResult.server`.

TF Serving measures a request from the moment its HTTP handler has the request to the moment the
response is ready (`:tensorflow:serving:request_latency`); the client measures from send to the last
byte read. The gap is JSON encoding and decoding on both sides, HTTP, the network and the load
generator's own queueing. A big gap with a small server time says: fix the payload (smaller JSON,
b64 images, columnar format), not the model.

Listed in `tfsbench.reports.context.EXTRA_SECTION_MODULES`; the report builder calls `build_section` and
`build_figures`.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from typing import Any

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.coarse import Share, percentile_bounds, share_of_client
from tfsbench.reports.context import FigureOut, ReportContext, Section

SECTION_ID = "server-view"
TITLE = "Client vs server latency"
FIGURE_NAME = "server_view.png"
CAPTION = (
    "Per configuration, two bars normalised to the client's latency (100%), p50 above p99: the dark part is "
    "the server's own time (TF Serving's :tensorflow:serving:request_latency histogram over the measured "
    "window), the light part the rest: JSON encoding/decoding, HTTP, the network and client queueing. The "
    "client's latency in ms is written right of each bar (open loop: from the intended send time). One panel "
    "per payload kind for closed-loop runs, one for fixed-rate (open-loop) runs such as search probes. TF "
    "Serving's buckets are each 1.8x wider than the last, so its counts only say which bucket a server "
    "percentile lies in: the hatched part is that range, and the label gives it (e.g. 62–100%). A share never "
    "exceeds 100%: every request's server time is part of its client time, so the server's percentile is at "
    "most the client's."
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
        cumulative = server.get("latency_buckets_us") or []
        for p, q in (("p50", 50.0), ("p99", 99.0)):
            s = lat.get(p)
            c = float(getattr(client, p))
            bounds_us = percentile_bounds(cumulative, q) if cumulative else None
            bounds = None if bounds_us is None else (bounds_us[0] / 1000.0, bounds_us[1] / 1000.0)
            row[f"client_{p}"] = c
            row[f"server_{p}"] = s
            row[f"server_{p}_bounds"] = bounds
            row[f"share_{p}"] = share_of_client(c, s, bounds)
            row[f"gap_{p}"] = None if s is None else c - min(s, c)  # the server's part is at most the client's
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


def _share_text(share: Share | None) -> str:
    return "n/a" if share is None else share.text()


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
    head = ["configuration", "client p50", "server p50", "gap p50", "server share p50",
            "client p99", "server p99", "gap p99", "server share p99", "requests server / client"]
    if with_queue:
        head.append("batch queue p50")
    body_rows = []
    for r in table[:MAX_ROWS]:
        share = _share_text(r["share_p50"])
        cells = [r["name"], _ms(r["client_p50"]), _ms(r["server_p50"]), _ms(r["gap_p50"]), share,
                 _ms(r["client_p99"]), _ms(r["server_p99"]), _ms(r["gap_p99"]), _share_text(r["share_p99"]),
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
        f"<p>{intro} Latencies in milliseconds; server share is the server's percentile over the client's, as "
        "the range TF Serving's bucket allows, and never above 100% (a request's server time is part of its "
        "client time, so the server's percentile is at most the client's).</p>"
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


_PERCENTILES = ("p50", "p99")
_ROW_IN = 0.36  # figure height per configuration (two thin bars: p50 and p99)
_PANEL_EXTRA_IN = 0.95  # title, x axis and its label


_KIND_ORDER = ("numeric", "text", "image")


def _group_key(run: RunResult) -> tuple[int, int, str, str]:
    """Closed-loop runs first (one panel per payload kind), then fixed-rate runs (search probes)."""
    kind = run.config.kind
    return (0 if run.config.mode == "closed" else 1,
            _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), kind, run.config.model)


def _row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    c = row["run"].config
    return (c.batch_size, c.format, c.concurrency or 0, c.rate_rps or 0.0)


def _short_label(run: RunResult, same_format: bool) -> str:
    c = run.config
    load = f"c={c.concurrency}" if c.mode == "closed" else f"{c.rate_rps:g} req/s"
    return f"b={c.batch_size} {load}" if same_format else f"b={c.batch_size} {c.format} {load}"


def _panels(table: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[tuple[int, int, str, str], list[dict[str, Any]]] = {}
    for row in table:
        groups.setdefault(_group_key(row["run"]), []).append(row)
    out = []
    for (open_loop, _, kind, model), rows_ in sorted(groups.items()):
        formats = sorted({r["run"].config.format for r in rows_})
        title = f"{kind} payload" + ("" if model == kind else f", model {model}")
        title += f", {formats[0]}" if len(formats) == 1 else ""
        title += ", fixed rate (open loop)" if open_loop else ", closed loop"
        out.append((title, sorted(rows_, key=_row_order)))
    return out


def figure(runs: Sequence[RunResult]) -> Any:
    """Per configuration, two 100% bars (p50, p99): the server's share of the client's latency and the
    rest, each labelled with the client's latency in ms; one panel per payload kind and loop mode."""
    table = rows(runs)[:MAX_ROWS]
    table = [r for r in table if r["server_p50"] is not None]
    if not table:
        return None
    import math

    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter
    from matplotlib.transforms import blended_transform_factory
    from tfsbench.reports import style

    panels = _panels(table)
    ncols = 1 if len(panels) == 1 else 2
    nrows = math.ceil(len(panels) / ncols)
    grid_rows = [max(len(p[1]) for p in panels[i * ncols:(i + 1) * ncols]) for i in range(nrows)]
    height = sum(_ROW_IN * n + _PANEL_EXTRA_IN for n in grid_rows) + 0.9
    with style.styled():
        width = style.WIDTH_IN if ncols == 2 else 7.5  # one panel: bars a reader can compare at a glance
        fig = style.Figure(figsize=(width, max(3.2, height)), dpi=style.DPI, layout="constrained")
        grid = fig.add_gridspec(nrows, ncols, height_ratios=[_ROW_IN * n + _PANEL_EXTRA_IN for n in grid_rows])
        for i, (title, rows_) in enumerate(panels):
            ax = fig.add_subplot(grid[i // ncols, i % ncols])
            same_format = len({r["run"].config.format for r in rows_}) == 1
            color = style.kind_color(rows_[0]["run"].config.kind, i)
            to_text = blended_transform_factory(ax.transAxes, ax.transData)
            ys = list(range(len(rows_)))[::-1]
            for y, row in zip(ys, rows_, strict=True):
                for offset, p in zip((0.2, -0.2), _PERCENTILES, strict=True):
                    client, share = row[f"client_{p}"], row[f"share_{p}"]
                    low, high = (share.low, share.high) if share is not None else (0.0, 0.0)
                    yy = y + offset
                    ax.barh(yy, low, height=0.36, color=color, edgecolor=color, linewidth=0.5)
                    if high > low:  # where in its bucket the server's percentile lies is unknown
                        ax.barh(yy, high - low, left=low, height=0.36, color=color, alpha=0.55, hatch="////",
                                edgecolor="white", linewidth=0.0)
                    ax.barh(yy, 1.0 - high, left=high, height=0.36, color=color, alpha=0.22,
                            edgecolor=color, linewidth=0.5)
                    if share is not None:
                        if low >= 0.3:  # inside the solid part
                            x, ha, ink = low - 0.01, "right", "white"
                        elif high <= 0.8:  # right of the range
                            x, ha, ink = high + 0.01, "left", "black"
                        else:  # a wide range from near zero: over the hatching
                            x, ha, ink = low + 0.01, "left", "black"
                        ax.text(x, yy, share.text(), va="center", ha=ha, fontsize=7.5, color=ink)
                    ax.text(1.015, yy, f"{p} {_ms(client)} ms", transform=to_text, va="center",
                            fontsize=7.5, clip_on=False)
            ax.set_yticks(ys)
            ax.set_yticklabels([_short_label(r["run"], same_format) for r in rows_])
            top = len(rows_) - 0.4  # top-aligned, same bar thickness in every panel
            ax.set_ylim(top - grid_rows[i // ncols], top)
            for y in ys[:-1]:
                ax.axhline(y - 0.5, color=style.MUTED, linewidth=0.4, alpha=0.5)
            ax.set_xlim(0, 1)
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_xlabel("share of the client's latency (%)")
            ax.grid(axis="y", visible=False)
            ax.set_title(title, loc="left")
        handles = [
            Patch(facecolor=style.MUTED, edgecolor=style.MUTED, label="server: TF Serving's request_latency"),
            Patch(facecolor=style.MUTED, alpha=0.55, hatch="////", edgecolor="white",
                  label="server, somewhere in this range (its 1.8x-wide bucket)"),
            Patch(facecolor=style.MUTED, alpha=0.22, edgecolor=style.MUTED,
                  label="the rest: JSON encode/decode, HTTP, network, client queueing"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3 if ncols == 2 else 1)
        fig.suptitle("Client vs server latency: where the time goes\n"
                     "per configuration: p50 bar above p99 bar, each 100% of the client's latency")
    return fig


def build_figures(ctx: ReportContext) -> list[FigureOut]:
    fig = figure(ctx.runs)
    if fig is None:
        return []
    from tfsbench.reports import style

    return [FigureOut(FIGURE_NAME, TITLE, CAPTION, style.png_bytes(fig))]
