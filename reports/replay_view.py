"""A trace replay over trace time: traffic (offered, served, errors) and latency per window, with
the windows that broke the SLO marked, so "where in the day did it hurt" is one look."""

from __future__ import annotations

from collections.abc import Sequence

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
            for i in bad:
                ax.axvspan(x[i], ends[i], color=SLO_COLOR, alpha=0.15, lw=0)
        offered = [w.offered_rps for w in windows]
        served = [w.throughput_rps for w in windows]
        errs = [(w.errors + w.refused) / w.duration_s for w in windows]
        top.step(np.r_[x, ends[-1]], np.r_[offered, offered[-1]], where="post", color=MUTED, lw=2.2,
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
            labels.append(f"broke {slo} ({len(bad)} windows)" if slo else f"errors ({len(bad)} windows)")
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
