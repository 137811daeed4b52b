"""A trace replay over trace time: traffic (offered, served, errors) and latency per window, with
the windows that broke the SLO marked, so "where in the day did it hurt" is one look."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from tfsbench.bench.results import RunResult, TraceWindow
from tfsbench.reports.style import MUTED, SLO_COLOR, empty_note, log_axis, new_figure, styled


def _hours(windows: Sequence[TraceWindow]) -> tuple[np.ndarray, str, float]:
    """x positions (window starts), the unit's name and its length in seconds."""
    span = windows[-1].t_s + windows[-1].duration_s
    unit, scale = ("h", 3600.0) if span >= 3 * 3600 else (("min", 60.0) if span >= 180 else ("s", 1.0))
    return np.array([w.t_s for w in windows]) / scale, unit, scale


def violations(windows: Sequence[TraceWindow], slo=None) -> list[int]:
    """Indices of windows that broke the SLO: its statistic above the bound, or errors, or refusals
    (a window with no successful response has no latency to meet it with)."""
    if slo is None:
        return [i for i, w in enumerate(windows) if w.errors or w.refused]
    out = []
    metric = slo.metric if slo.metric in ("p50", "p90", "p99") else "p99"
    for i, w in enumerate(windows):
        value = getattr(w, f"{metric}_ms")
        bad = w.errors > 0 or w.refused > 0 or (w.scheduled > 0 and value is None)
        if value is not None:
            bad = bad or (value >= slo.bound_ms if slo.op == "<" else value > slo.bound_ms)
        if bad:
            out.append(i)
    return out


def runs_of(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive indices as (first, last) pairs, so adjacent marked windows shade as one span."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def replay_figure(run: RunResult, slo=None) -> Figure:
    """Two panels over trace time: requests/s (offered vs ok, errors) and latency p50/p99 per window;
    SLO-violating windows shaded red in both."""
    with styled():
        fig, axes = new_figure(1, 2, height_in=7.0, sharex=True)
        top, bottom = axes[0][0], axes[1][0]
        windows = run.windows
        if not windows:
            empty_note(top, "no windows: not a trace replay")
            empty_note(bottom, "")
            return fig
        x, unit, scale = _hours(windows)
        width = np.array([w.duration_s for w in windows]) / scale
        ends = x + width
        bad = violations(windows, slo)
        for ax in (top, bottom):
            for lo, hi in runs_of(bad):
                ax.axvspan(x[lo], ends[hi], color=SLO_COLOR, alpha=0.15, lw=0)
        offered = [w.offered_rps for w in windows]
        served = [w.throughput_rps for w in windows]
        errs = [(w.errors + w.refused) / w.duration_s for w in windows]
        top.step(np.r_[x, ends[-1]], np.r_[offered, offered[-1]], where="post", color=MUTED, lw=4.0, alpha=0.5,
                 label="offered (trace)")
        top.step(np.r_[x, ends[-1]], np.r_[served, served[-1]], where="post", color="#1f77b4", lw=1.4,
                 label="ok responses")
        if any(errs):
            top.bar(x, errs, width=width, align="edge", color=SLO_COLOR, alpha=0.8, label="errors + refused")
        top.set_ylabel("requests/s (trace time)")
        top.set_ylim(bottom=0)
        replay = dict(run.config.extra).get("replay", {})
        top.set_title(f"Replay of {replay.get('trace') or 'a trace'}: {replay.get('requests', run.summary.requests):,} "
                      f"requests, speed x{replay.get('speed', 1):g}, scale x{replay.get('scale', 1):g}")
        handles, labels = top.get_legend_handles_labels()
        if bad:
            handles.append(Patch(color=SLO_COLOR, alpha=0.15))
            n = f"{len(bad)} window{'s' if len(bad) != 1 else ''}"
            labels.append(f"broke {slo} ({n})" if slo else f"errors ({n})")
        top.legend(handles, labels, loc="upper left")
        mids = x + width / 2
        for name, style, color in (("p50_ms", "-", "#2ca02c"), ("p99_ms", "-", "#d95f02"), ("max_ms", ":", MUTED)):
            ys = np.array([getattr(w, name) if getattr(w, name) is not None else np.nan for w in windows])
            bottom.plot(mids, ys, style, color=color, marker="." if len(windows) <= 60 else None,
                        label=name.replace("_ms", ""))
        if slo is not None:
            bottom.axhline(slo.bound_ms, color=SLO_COLOR, ls="--", lw=1.2, label=f"SLO {slo}")
        values = [v for w in windows for v in (w.p50_ms, w.max_ms) if v]
        if values and max(values) / max(min(values), 1e-3) > 30:
            log_axis(bottom)
        bottom.set_ylabel("latency per window (ms)")
        bottom.set_xlabel(f"trace time ({unit}); window {windows[0].duration_s:g} s")
        bottom.legend(loc="upper left")
        return fig


# ---- report section (reports/context.py EXTRA_SECTION_MODULES) -----------------------------------

MAX_REPLAY_FIGURES = 3
CAPTION = ("Each replayed trace over its own time: the offered rate (grey, from the trace) and the ok "
           "responses per second of trace time (blue), errors and refusals as red bars; below, latency "
           "percentiles per window from the intended send time. Windows shaded red broke the SLO (or had "
           "errors when no SLO was given).")


def _replays(ctx: Any) -> list[RunResult]:
    return [r for r in ctx.runs if r.windows][:MAX_REPLAY_FIGURES]


def build_figures(ctx: Any) -> list[Any]:
    from tfsbench.reports.context import FigureOut
    from tfsbench.reports.style import png_bytes

    out = []
    for i, run in enumerate(_replays(ctx), start=1):
        trace = dict(run.config.extra).get("replay", {}).get("trace") or run.config.label_text()
        out.append(FigureOut(name=f"replay_{i}.png", title=f"Replay of {trace}", caption=CAPTION,
                             png=png_bytes(replay_figure(run, ctx.slo))))
    return out


def build_section(ctx: Any) -> Any:
    """Per replay: windows, the ones that broke the SLO, and the worst; None without replays."""
    import html

    from tfsbench.reports.context import Section

    runs = _replays(ctx)
    if not runs:
        return None
    rows, md, warnings = [], ["| trace | windows | broke the SLO | worst p99 ms | lag p99 ms |", "|---|---|---|---|---|"], []
    for run in runs:
        replay = dict(run.config.extra).get("replay", {})
        bad = violations(run.windows, ctx.slo)
        worst = max((w.p99_ms for w in run.windows if w.p99_ms is not None), default=None)
        lag = run.summary.schedule_lag_ms.p99 if run.summary.schedule_lag_ms else None
        cells = [str(replay.get("trace") or run.config.label_text()), f"{len(run.windows)} x {run.windows[0].duration_s:g} s",
                 ", ".join(f"{run.windows[i].t_s:g} s" for i in bad[:8]) + (" ..." if len(bad) > 8 else "") or "none",
                 f"{worst:.1f}" if worst is not None else "-", f"{lag:.2f}" if lag is not None else "-"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if bad:
            warnings.append(f"replay of {cells[0]}: {len(bad)} of {len(run.windows)} windows broke "
                            f"{ctx.slo if ctx.slo is not None else 'the run (errors)'}")
    head = "".join(f"<th>{h}</th>" for h in ("trace", "windows", "windows that broke the SLO (start, trace time)",
                                            "worst p99 ms", "lag p99 ms"))
    body = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return Section(id="replay", title="Trace replay", html=body, markdown="\n".join(md), warnings=tuple(warnings))
