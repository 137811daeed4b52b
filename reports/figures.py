"""The report's figures. Each function takes results and returns a matplotlib Figure (or None when
the results hold nothing it could honestly draw); rendering to PNG is the caller's business.

Conventions: one panel per payload kind (colour = batch size or load level inside a panel), units
on every axis, log scales when values span a decade or more, legends outside the data.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter
from tfsbench.bench.results import RunResult
from tfsbench.reports import style
from tfsbench.reports.dataset import kinds_in, knee_index, load_label, load_of, series_of, stability_text
from tfsbench.reports.latency import NINES, buckets, spectrum_ms

MAX_PANEL_COLS = 3


def _grid(n: int) -> tuple[int, int]:
    cols = 2 if n == 4 else min(MAX_PANEL_COLS, max(1, n))
    return cols, math.ceil(n / cols)


def _figure_legend(fig: Figure, handles: list, title: str) -> None:
    """One legend for the whole figure, below the panels, so it never covers data or the title."""
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), title=title)


def _hide_unused(axes: list[list[Axes]], used: int) -> None:
    flat = [ax for row in axes for ax in row]
    for ax in flat[used:]:
        ax.set_visible(False)


def _fmt_bytes(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f} MB"
    if v >= 1e3:
        return f"{v / 1e3:.1f} kB"
    return f"{v:.0f} B"


SOURCE_STYLES = ("-", "--", ":", "-.")


def _source_styles(source_of: Mapping[int, str] | None, runs: Sequence[RunResult]) -> dict[str, str]:
    """Input name -> line style (baseline solid, then dashed, dotted...), when inputs are compared."""
    if not source_of:
        return {}
    names: list[str] = []
    for r in runs:
        name = source_of.get(id(r), "")
        if name not in names:
            names.append(name)
    return {n: SOURCE_STYLES[i % len(SOURCE_STYLES)] for i, n in enumerate(names)}


def _source_handles(styles: dict[str, str]) -> list:
    return [Line2D([], [], color="black", ls=ls, label=f"input: {name}") for name, ls in styles.items()]


def _ok_runs(runs: Sequence[RunResult]) -> list[RunResult]:
    return [r for r in runs if r.summary.ok > 0]


def _label_suffix(runs: Sequence[RunResult]) -> tuple[bool, bool]:
    """Whether labels need the format and the model (only when they vary)."""
    formats = {r.config.format for r in runs}
    models_per_kind: dict[str, set[str]] = {}
    for r in runs:
        models_per_kind.setdefault(r.config.kind, set()).add(r.config.model)
    return len(formats) > 1, any(len(m) > 1 for m in models_per_kind.values())


# ---- 1. throughput vs batch size --------------------------------------------------------------


def throughput_vs_batch(runs: Sequence[RunResult], source_of: Mapping[int, str] | None = None) -> Figure | None:
    """Peak throughput at each batch size (best over the load levels measured), per payload kind
    (and per input, line style, when `source_of` maps id(run) to the input's name)."""
    runs = _ok_runs(runs)
    if not runs:
        return None
    need_fmt, need_model = _label_suffix(runs)
    src_styles = _source_styles(source_of, runs)
    lines: dict[tuple[str, str, str, str], dict[int, tuple[float, float]]] = {}
    for r in runs:
        key = (r.config.kind, r.config.format, r.config.model, source_of.get(id(r), "") if source_of else "")
        best = lines.setdefault(key, {})
        cur = best.get(r.config.batch_size, (0.0, 0.0))
        if r.summary.throughput_ips > cur[0]:
            best[r.config.batch_size] = (r.summary.throughput_ips, r.summary.throughput_rps)
    with style.styled():
        fig, axes = style.new_figure(2)
        ax_ips, ax_rps = axes[0]
        batches: list[int] = []
        all_ips, all_rps = [], []
        kind_index = {k: i for i, k in enumerate(kinds_in(runs))}
        for (kind, fmt, model, src), points in sorted(lines.items(), key=lambda kv: (kind_index[kv[0][0]], kv[0][1])):
            xs = sorted(points)
            ips = [points[b][0] for b in xs]
            rps = [points[b][1] for b in xs]
            batches += xs
            all_ips += ips
            all_rps += rps
            label = kind + (f" {fmt}" if need_fmt else "") + (f" ({model})" if need_model else "")
            ls = src_styles.get(src) or style.FORMAT_STYLES.get(fmt, "-")
            if src_styles:
                label += f" [{src}]"
            kw = dict(color=style.kind_color(kind, kind_index[kind]), ls=ls, marker="o", label=label)
            ax_ips.plot(xs, ips, **kw)
            ax_rps.plot(xs, rps, **kw)
        for ax, vals, what in ((ax_ips, all_ips, "instances/s"), (ax_rps, all_rps, "requests/s")):
            style.batch_axis(ax, batches)
            ax.set_xlabel("batch size (instances per request)")
            ax.set_ylabel(f"throughput ({what})")
            if style.spans_decades(vals):
                style.log_axis(ax, "y")
            else:
                ax.set_ylim(bottom=0)
                ax.yaxis.set_major_formatter(FuncFormatter(style.number))
        ax_ips.set_title("Predictions per second vs batch size")
        ax_rps.set_title("Requests per second vs batch size")
        handles, _labels = ax_ips.get_legend_handles_labels()
        _figure_legend(fig, handles, "payload kind")
        fig.suptitle("Peak throughput by batch size (best load level of each configuration)")
    return fig


# ---- 2. latency vs load, and the latency-throughput curve --------------------------------------


def _panel_keys(runs: Sequence[RunResult]) -> list[tuple[str, str]]:
    kinds = kinds_in(runs)
    modes = sorted({r.config.mode for r in runs})
    return [(k, m) for k in kinds for m in modes if any(r.config.kind == k and r.config.mode == m for r in runs)]


def _batch_colors(runs: Sequence[RunResult]) -> dict[tuple[int, str], object]:
    keys = sorted({(r.config.batch_size, r.config.format) for r in runs})
    return dict(zip(keys, style.shade_colors(len(keys)), strict=True))


def _batch_label(batch: int, fmt: str, need_fmt: bool) -> str:
    return f"b={batch}" + (f" {fmt}" if need_fmt else "")


def latency_vs_load(runs: Sequence[RunResult], percentiles: Sequence[str] = ("p50", "p99"),
                    source_of: Mapping[int, str] | None = None) -> Figure | None:
    """p50 and p99 latency against concurrency (closed loop) or offered rate (open loop). With
    several inputs (`source_of`), p99 only, one line style per input."""
    runs = _ok_runs(runs)
    src_styles = _source_styles(source_of, runs)
    if src_styles:
        percentiles = (percentiles[-1],)
    multi = [s for s in series_of(runs, source_of if src_styles else None) if len(s.runs) >= 1]
    if not multi:
        return None
    panels = _panel_keys(runs)
    need_fmt, _ = _label_suffix(runs)
    colors = _batch_colors(runs)
    cols, rows = _grid(len(panels))
    styles = {"p50": ":", "p90": "-.", "p95": "-.", "p99": "-", "p999": "--"}
    with style.styled():
        fig, axes = style.new_figure(cols, rows, height_in=3.8 * rows)
        for i, (kind, mode) in enumerate(panels):
            ax = axes[i // cols][i % cols]
            xs_all, ys_all = [], []
            for s in multi:
                if s.kind != kind or s.mode != mode:
                    continue
                xs = [load_of(r) for r in s.runs]
                for pct in percentiles:
                    ys = [getattr(r.summary.latency_ms, pct) for r in s.runs]
                    ax.plot(xs, ys, color=colors[(s.batch_size, s.format)],
                            ls=src_styles.get(s.source) or styles.get(pct, "-"),
                            marker="o" if pct == percentiles[-1] else None,
                            lw=1.9 if pct == percentiles[-1] else 1.3)
                    ys_all += ys
                xs_all += xs
            ax.set_title(f"{kind} ({'closed loop' if mode == 'closed' else 'open loop'})")
            ax.set_xlabel(load_label(mode))
            ax.set_ylabel("latency (ms)")
            if mode == "closed" and style.spans_decades(xs_all, math.log10(8)):
                ax.set_xscale("log", base=2)
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
                ax.set_xticks(sorted(set(xs_all)))
            elif style.spans_decades(xs_all):
                style.log_axis(ax, "x")
            if style.spans_decades(ys_all):
                style.log_axis(ax, "y")
            else:
                ax.set_ylim(bottom=0)
        _hide_unused(axes, len(panels))
        handles = [Line2D([], [], color=c, marker="o", label=_batch_label(b, f, need_fmt))
                   for (b, f), c in colors.items()]
        if src_styles:
            handles += _source_handles(src_styles)
        else:
            handles += [Line2D([], [], color="black", ls=styles.get(p, "-"), label=p) for p in percentiles]
        _figure_legend(fig, handles, "batch size / input" if src_styles else "batch size / percentile")
        fig.suptitle("p99 latency as load grows, per input" if src_styles else "Latency percentiles as load grows")
    return fig


def latency_throughput(runs: Sequence[RunResult], slo=None, metric: str | None = None,
                       source_of: Mapping[int, str] | None = None) -> Figure | None:
    """Latency (the SLO's statistic, p99 by default) against achieved throughput, with the SLO line
    and each curve's knee (highest throughput per unit of latency) marked."""
    runs = _ok_runs(runs)
    if not runs:
        return None
    metric = metric or (slo.metric if slo is not None else "p99")
    src_styles = _source_styles(source_of, runs)
    panels = _panel_keys(runs)
    need_fmt, _ = _label_suffix(runs)
    colors = _batch_colors(runs)
    cols, rows = _grid(len(panels))
    with style.styled():
        fig, axes = style.new_figure(cols, rows, height_in=3.8 * rows)
        for i, (kind, mode) in enumerate(panels):
            ax = axes[i // cols][i % cols]
            xs_all, ys_all = [], []
            for s in series_of(runs, source_of if src_styles else None):
                if s.kind != kind or s.mode != mode:
                    continue
                pts = sorted((r.summary.throughput_ips, getattr(r.summary.latency_ms, metric), load_of(r))
                             for r in s.runs)
                pts.sort(key=lambda p: p[2])  # along the load axis, as measured
                xs = [p[0] for p in pts]
                ys = [p[1] for p in pts]
                color = colors[(s.batch_size, s.format)]
                ax.plot(xs, ys, color=color, marker="o", ls=src_styles.get(s.source, "-"))
                k = knee_index(xs, ys)
                if k is not None and len(xs) >= 3:
                    ax.plot([xs[k]], [ys[k]], marker="*", ms=15, color=color, mec="black", mew=0.8,
                            ls="none", zorder=5)
                xs_all += xs
                ys_all += ys
            if slo is not None:
                ax.axhline(slo.bound_ms, color=style.SLO_COLOR, ls="--", lw=1.4, zorder=1)
                ys_all.append(slo.bound_ms)
            ax.set_title(f"{kind} ({'closed loop' if mode == 'closed' else 'open loop'})")
            ax.set_xlabel("achieved throughput (instances/s)")
            ax.set_ylabel(f"{metric} latency (ms)")
            if style.spans_decades(xs_all):
                style.log_axis(ax, "x")
            else:
                ax.xaxis.set_major_formatter(FuncFormatter(style.number))
            if style.spans_decades(ys_all):
                style.log_axis(ax, "y")
            else:
                ax.set_ylim(0, max(ys_all) * 1.1 if ys_all else 1)
        _hide_unused(axes, len(panels))
        handles = [Line2D([], [], color=c, marker="o", label=_batch_label(b, f, need_fmt))
                   for (b, f), c in colors.items()]
        handles.append(Line2D([], [], marker="*", ms=12, color="white", mec="black", ls="none",
                              label="knee (max throughput / latency)"))
        if slo is not None:
            handles.append(Line2D([], [], color=style.SLO_COLOR, ls="--", label=f"SLO {slo}"))
        handles += _source_handles(src_styles)
        _figure_legend(fig, handles, "batch size")
        fig.suptitle(f"Latency-throughput curve ({metric}): the curve bends up where the server saturates")
    return fig


# ---- 3. HDR percentile spectrum ---------------------------------------------------------------


def _nines_x(percentiles: np.ndarray) -> np.ndarray:
    return -np.log10(1.0 - np.asarray(percentiles) / 100.0)


def _spectrum_selection(runs: Sequence[RunResult], per_panel: int) -> list[RunResult]:
    """At most `per_panel` runs of one kind: every run if few, else one configuration's load levels."""
    with_hist = [r for r in runs if buckets(r.histogram) is not None]
    if len(with_hist) <= per_panel:
        return with_hist
    series = [s for s in series_of(with_hist)]
    series.sort(key=lambda s: (-len(s.runs), s.batch_size))
    chosen = list(series[0].runs)
    if len(chosen) > per_panel:
        idx = np.unique(np.linspace(0, len(chosen) - 1, per_panel).round().astype(int))
        chosen = [chosen[i] for i in idx]
    return chosen


def latency_spectrum(runs: Sequence[RunResult], per_panel: int = 6,
                     source_of: Mapping[int, str] | None = None) -> Figure | None:
    """The whole latency distribution from each run's HdrHistogram, x axis in 'nines'.

    `source_of` maps id(run) to its input's name, which then prefixes the legend labels.
    """
    runs = [r for r in _ok_runs(runs) if buckets(r.histogram) is not None]
    if not runs:
        return None
    kinds = kinds_in(runs)
    cols, rows = _grid(len(kinds))
    need_fmt, _ = _label_suffix(runs)
    with style.styled():
        fig, axes = style.new_figure(cols, rows, height_in=3.9 * rows)
        top_x = 0.0
        for i, kind in enumerate(kinds):
            ax = axes[i // cols][i % cols]
            chosen = _spectrum_selection([r for r in runs if r.config.kind == kind], per_panel)
            colors = style.shade_colors(len(chosen), "plasma")
            ys_all = []
            for r, color in zip(chosen, colors, strict=True):
                b = buckets(r.histogram)
                ps, ys = spectrum_ms(b)
                xs = _nines_x(ps)
                top_x = max(top_x, float(xs[-1]))
                ys_all += [float(ys.min()), float(ys.max())]
                got = f"{r.summary.throughput_rps:,.0f} req/s"
                if r.config.mode == "closed":
                    label = (f"b={r.config.batch_size}" + (f" {r.config.format}" if need_fmt else "")
                             + f" c={r.config.concurrency}: {got}")
                else:
                    label = (f"b={r.config.batch_size}" + (f" {r.config.format}" if need_fmt else "")
                             + f" offered {load_of(r):,.0f}/s: {got}")
                if source_of and id(r) in source_of:
                    label = f"{source_of[id(r)]}: {label}"
                ax.plot(xs, ys, color=color, label=label, lw=1.6)
            ax.set_title(kind)
            ax.set_xlabel("percentile")
            ax.set_ylabel("latency (ms)")
            style.log_axis(ax, "y")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7.5, ncols=2, frameon=False)
            if len(set(np.round(ys_all, 6))) <= 1:
                ax.set_ylim(min(ys_all) / 2, max(ys_all) * 2)
        ticks = [(x, label) for p, label in NINES if (x := float(_nines_x(np.array([p]))[0])) <= top_x + 0.05]
        for row in axes:
            for ax in row:
                ax.set_xlim(0.0, max(top_x, 1.0) * 1.02)
                ax.xaxis.set_major_locator(FixedLocator([t[0] for t in ticks]))
                ax.xaxis.set_major_formatter(FuncFormatter(
                    lambda v, _p, _t=ticks: next((lbl for x, lbl in _t if abs(x - v) < 1e-6), "")))
        _hide_unused(axes, len(kinds))
        fig.suptitle("Latency distribution (HDR percentile spectrum): the tail is on the right")
    return fig


# ---- 4. payload size overhead -----------------------------------------------------------------


def gzip_bytes(run: RunResult) -> float | None:
    """Mean gzip-compressed request body size, when the run recorded it (schema v6: the summary)."""
    value = run.summary.request_gzip_bytes
    return float(value) if value is not None and value > 0 else None


def payload_overhead(runs: Sequence[RunResult], gzip_estimates: dict[int, float] | None = None) -> Figure | None:
    """What JSON and base64 cost on the wire: bytes per instance vs raw tensor bytes, and request
    size vs batch size, for each kind and format (and gzip, recorded or estimated by id(run))."""
    gzip_estimates = gzip_estimates or {}
    runs = [r for r in runs if r.summary.request_bytes > 0 and r.config.batch_size > 0]
    if not runs:
        return None
    kinds = kinds_in(runs)
    formats = sorted({r.config.format for r in runs})
    # (kind, fmt) -> batch -> (wire, raw, gzip)
    table: dict[tuple[str, str], dict[int, tuple[float, float, float | None]]] = {}
    for r in runs:
        table.setdefault((r.config.kind, r.config.format), {})[r.config.batch_size] = (
            r.summary.request_bytes, r.summary.raw_bytes, gzip_bytes(r) or gzip_estimates.get(id(r)))
    any_gzip = any(v[2] for d in table.values() for v in d.values())
    with style.styled():
        fig, axes = style.new_figure(2, width_in=12.0)
        ax_bar, ax_line = axes[0]
        # left: per-instance bytes at the largest batch (the JSON envelope amortised away)
        bars = ["raw tensor"] + [f"JSON {f}" for f in formats] + (["JSON + gzip"] if any_gzip else [])
        bar_colors = ["#bbbbbb"] + [style.shade_colors(len(formats), "Blues")[i] for i in range(len(formats))]
        if any_gzip:
            bar_colors.append("#6a3d9a")
        width = 0.8 / len(bars)
        top = 0.0
        for ki, kind in enumerate(kinds):
            per_fmt = {f: table.get((kind, f)) for f in formats}
            present = {f: d for f, d in per_fmt.items() if d}
            if not present:
                continue
            some = next(iter(present.values()))
            b = max(some)
            raw = some[b][1] / b
            values = [raw]
            for f in formats:
                d = present.get(f)
                values.append(d[max(d)][0] / max(d) if d else 0.0)
            if any_gzip:
                gz = [d[max(d)][2] / max(d) for d in present.values() if d[max(d)][2]]
                values.append(min(gz) if gz else 0.0)
            for bi, v in enumerate(values):
                x = ki + (bi - (len(bars) - 1) / 2) * width
                if v <= 0:
                    continue
                ax_bar.bar(x, v, width * 0.92, color=bar_colors[bi], label=bars[bi] if ki == 0 else None)
                note = _fmt_bytes(v) if bi == 0 or raw <= 0 else f"{_fmt_bytes(v)}\n×{v / raw:.1f}"
                ax_bar.annotate(note, (x, v), textcoords="offset points", xytext=(0, 2), ha="center",
                                va="bottom", fontsize=7)
                top = max(top, v)
        ax_bar.set_xticks(range(len(kinds)))
        ax_bar.set_xticklabels(kinds)
        style.log_axis(ax_bar, "y")
        ax_bar.set_ylim(top=top * 8 if top else 1)
        ax_bar.set_ylabel("bytes per instance (log)")
        ax_bar.set_xlabel("payload kind (at the largest batch size measured)")
        ax_bar.set_title("Wire bytes per instance vs raw tensor bytes")
        ax_bar.legend(loc="upper left", ncols=2)
        ax_bar.grid(axis="x", visible=False)
        # right: request size vs batch size, log-log
        for ki, kind in enumerate(kinds):
            color = style.kind_color(kind, ki)
            for f in formats:
                d = table.get((kind, f))
                if not d:
                    continue
                xs = sorted(d)
                ax_line.plot(xs, [d[b][0] for b in xs], color=color, ls=style.FORMAT_STYLES.get(f, "-"),
                             marker="o", label=f"{kind} JSON {f}")
                gz = [(b, d[b][2]) for b in xs if d[b][2]]
                if gz:
                    ax_line.plot([g[0] for g in gz], [g[1] for g in gz], color=color, ls=":", lw=1.3,
                                 marker=".", label=f"{kind} {f} + gzip")
            d = next((table[(kind, f)] for f in formats if (kind, f) in table), None)
            if d:
                xs = sorted(d)
                ax_line.plot(xs, [d[b][1] for b in xs], color=color, ls="-.", lw=1.0, alpha=0.7,
                             label=f"{kind} raw tensor")
        style.batch_axis(ax_line, [r.config.batch_size for r in runs])
        style.log_axis(ax_line, "y")
        ax_line.set_xlabel("batch size (instances per request)")
        ax_line.set_ylabel("request body (bytes, log)")
        ax_line.set_title("Request size vs batch size")
        ax_line.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=7.5, ncols=3, frameon=False)
        fig.suptitle("Payload overhead: what JSON and base64 cost on the wire")
    return fig


# ---- 5. time series ---------------------------------------------------------------------------


def _with_gaps(ts: list[float], *cols: list[float | None]) -> tuple[np.ndarray, ...]:
    """Insert NaN where seconds are missing, so outages show as gaps instead of straight lines."""
    out_t: list[float] = []
    out_cols: list[list[float]] = [[] for _ in cols]
    for i, t in enumerate(ts):
        if i and t - ts[i - 1] > 1.5:
            out_t.append((t + ts[i - 1]) / 2)
            for c in out_cols:
                c.append(float("nan"))
        out_t.append(t)
        for c, src in zip(out_cols, cols, strict=True):
            v = src[i]
            c.append(float("nan") if v is None else float(v))
    return (np.asarray(out_t), *(np.asarray(c) for c in out_cols))


def timeseries(run: RunResult, title: str | None = None) -> Figure | None:
    """One run second by second: throughput, p50/p99 and errors, with the warmup shaded."""
    pts = sorted(run.timeseries, key=lambda p: p.t_s)
    if len(pts) < 2:
        return None
    # Second t covers [t, t+1). The first (warmup start) and last (window end) seconds may be only
    # partly covered: rates are per covered second, points sit mid-interval, and slivers under half
    # a second are left out of the rate line (too few requests to be a rate).
    warmup_start = -float(run.config.warmup_s or 0.0)
    settled = float(run.summary.settled_s or 0.0)  # seconds set aside: t_s still counts from the window's start
    end = settled + float(run.summary.measured_s or 0.0) if run.summary.measured_s else 0.0
    x, covered = [], []
    for p in pts:
        lo = max(p.t_s, warmup_start) if p.t_s < 0 else p.t_s
        hi = min(p.t_s + 1, end) if end and p.t_s < end < p.t_s + 1 else p.t_s + 1
        lo = lo if lo < hi else p.t_s
        x.append((lo + hi) / 2)
        covered.append(max(hi - lo, 1e-9))
    ok = [(p.requests - p.errors) / c if c >= 0.5 else None for p, c in zip(pts, covered, strict=True)]
    errs = [p.errors / c if c >= 0.5 else 0.0 for p, c in zip(pts, covered, strict=True)]
    t = x
    t_arr, ok_arr, err_arr, p50, p99 = _with_gaps(t, ok, errs, [p.p50_ms for p in pts], [p.p99_ms for p in pts])
    has_errors = any(errs)
    nrows = 3 if has_errors else 2
    with style.styled():
        fig, axes = style.new_figure(1, nrows, height_in=2.3 * nrows + 0.6, sharex=True)
        ax_rps, ax_lat = axes[0][0], axes[1][0]
        ax_rps.plot(t_arr, ok_arr, color="#1f77b4", marker=".", label="successful requests/s")
        ax_rps.set_ylabel("requests/s")
        ax_rps.set_ylim(bottom=0)
        ax_rps.yaxis.set_major_formatter(FuncFormatter(style.number))
        ax_lat.plot(t_arr, p50, color="#2ca02c", marker=".", label="p50")
        ax_lat.plot(t_arr, p99, color="#d62728", marker=".", label="p99")
        ax_lat.set_ylabel("latency (ms)")
        lat_vals = [v for v in np.concatenate([p50, p99]) if np.isfinite(v)]
        if style.spans_decades(lat_vals):
            style.log_axis(ax_lat, "y")
        else:
            ax_lat.set_ylim(bottom=0)
        ax_lat.legend(loc="upper right", ncols=2)
        if has_errors:
            ax_err = axes[2][0]
            ax_err.bar(t_arr, np.nan_to_num(err_arr), width=0.8, color="#d62728")
            ax_err.set_ylabel("errors/s")
            ax_err.set_ylim(bottom=0)
        bottom = axes[nrows - 1][0]
        bottom.set_xlabel("time since the start of the measured window (s)")
        left = min(pts[0].t_s if pts[0].t_s >= 0 else warmup_start, 0.0)
        right = max(end, pts[-1].t_s + 1 if not end else end)
        if pts[0].t_s < 0:
            for row in axes:
                row[0].axvspan(left, 0.0, color="#999999", alpha=0.18, lw=0)
            ax_rps.text(left + 0.05, 0.04, "warmup\n(not measured)", transform=ax_rps.get_xaxis_transform(),
                        fontsize=8, color="#555555", va="bottom")
        if settled:
            for row in axes:
                row[0].axvspan(0.0, settled, color="#e6a700", alpha=0.15, lw=0)
            ax_rps.text(0.05, 0.04, "set aside\n(not yet steady)", transform=ax_rps.get_xaxis_transform(),
                        fontsize=8, color="#7a5900", va="bottom")
        ax_rps.set_xlim(left, right)
        s = run.summary
        status = "stable" if s.stable else f"UNSTABLE: {stability_text(s.stability_reason)}"
        if s.stable and settled:
            status += f" from second {settled:g} on (the first {settled:g} s set aside)"
        model = textwrap.shorten(run.config.model, 40, placeholder="...")
        fig.suptitle(title or f"Time series: {run.config.label_text()} ({model})\n{textwrap.shorten(status, 110)}")
    return fig


# ---- 6. comparison ----------------------------------------------------------------------------


def comparison(table) -> Figure | None:
    """Relative change of throughput and p99 per matched configuration, against the baseline, with
    95% bootstrap intervals; grey points are within noise (`~`)."""
    rows = [r for r in table.rows if r.metrics]
    if not rows:
        return None
    panels = [("throughput_rps", "throughput (requests/s)"), ("p99", "p99 latency")]
    n = len(rows)
    height = min(1.6 + 0.26 * n, 16.0)
    with style.styled():
        fig, axes = style.new_figure(2, height_in=height, sharey=True)
        ys = np.arange(n)[::-1]
        for ax, (metric, title) in zip(axes[0], panels, strict=True):
            for y, row in zip(ys, rows, strict=True):
                m = row.metrics.get(metric)
                if m is None or m.rel_change is None:
                    continue
                x = 100.0 * m.rel_change
                color = _change_color(m, metric)
                if m.ci is not None:
                    ax.plot([100 * m.ci[0], 100 * m.ci[1]], [y, y], color=color, lw=2.2, alpha=0.6)
                ax.plot([x], [y], marker="o", color=color, ms=6)
            ax.axvline(0, color="black", lw=0.8)
            ax.axvspan(-100 * table.noise_threshold, 100 * table.noise_threshold, color="#999999",
                       alpha=0.15, lw=0)
            ax.set_title(f"{title}: change vs {table.baseline_name}")
            ax.set_xlabel("relative change (%)")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:+.0f}%"))
            ax.grid(axis="y", visible=False)
        axes[0][0].set_yticks(ys)
        axes[0][0].set_yticklabels([r.label for r in rows], fontsize=8 if n < 30 else 6.5)
        axes[0][0].set_ylim(-0.7, n - 0.3)
        handles = [
            Line2D([], [], color="#1a9850", marker="o", label="better (significant)"),
            Line2D([], [], color="#d73027", marker="o", label="worse (significant)"),
            Line2D([], [], color=style.MUTED, marker="o", label="~ within noise"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        fig.suptitle(f"{table.other_name} compared with {table.baseline_name} (95% bootstrap intervals)")
    return fig


def _change_color(m, metric: str) -> str:
    if not m.significant:
        return style.MUTED
    better = m.rel_change > 0 if metric.startswith("throughput") else m.rel_change < 0
    return "#1a9850" if better else "#d73027"
