"""Capacity plans from a traffic shape: replicas per window of a trace, static vs following the curve.

Inputs: a trace (its rate over time) and one replica's capacity under the SLO (from the statistics
core, through reports/plan.py: the highest measured throughput that met the SLO).

  window peak     = the highest rate over any `peak_over_s` bin inside the window (default 10 s:
                    a window's mean hides its bursts, a single second is mostly Poisson noise);
  replicas(w)     = ceil(window peak / (capacity x (1 - headroom)));
  static plan     = max over windows of replicas(w), all the time;
  following plan  = replicas(w) in each window (what an autoscaler following the curve provisions,
                    and what it is paid for: a replica costs from the moment it is asked for);
  autoscaler      = scale-ups take `scale_up_delay_s` to serve (start-up, readiness, model load), and
                    scale-downs are on time: at time t the replicas *serving* are
                    min(replicas(window of t), replicas(window of t - delay));
  failing windows = windows with a bin whose rate exceeds serving replicas x capacity (the SLO
                    capacity itself: headroom used up), i.e. the ramp is faster than the scale-up;
  over-provisioned share = the share of time the static plan runs more replicas than replicas(w).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import Trace

FORMULA = "replicas per window = ceil(window peak / (capacity x (1 - headroom)))"
AUTOSCALER = ("scale-ups serve after the scale-up delay, scale-downs are on time: serving replicas at t = "
              "min(replicas(t), replicas(t - delay))")


@dataclass(frozen=True, slots=True)
class WindowPlan:
    t_s: float
    duration_s: float
    mean_rps: float
    peak_rps: float
    replicas: int  # needed in this window (the following plan's)
    serving_min: int  # fewest replicas serving at any moment of the window under the scale-up delay
    fails: bool  # a bin's rate exceeded serving replicas x capacity
    shortfall_rps: float  # the worst excess over serving capacity (0 when it does not fail)


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    config: str  # the configuration whose capacity was used
    capacity_rps: float
    headroom: float
    window_s: float
    peak_over_s: float
    scale_up_delay_s: float
    trace_requests: int  # x rate_scale
    trace_duration_s: float
    trace_peak_rps: float
    windows: tuple[WindowPlan, ...]
    static_replicas: int
    static_replica_hours: float
    follow_replica_hours: float
    over_provisioned_share: float  # of time
    failing_windows: tuple[int, ...]
    cost_per_replica_hour: float | None = None
    static_cost: float | None = None
    follow_cost: float | None = None
    slo: str = ""
    rate_scale: float = 1.0
    formula: str = FORMULA
    autoscaler: str = AUTOSCALER
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def usable_rps(self) -> float:
        return self.capacity_rps * (1.0 - self.headroom)

    @property
    def savings(self) -> float:
        """Share of the static plan's replica-hours the following plan saves."""
        return 1.0 - self.follow_replica_hours / self.static_replica_hours if self.static_replica_hours else 0.0

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["type"] = "tfsbench.traffic_plan"
        doc["schema_version"] = 1
        doc["usable_rps"] = self.usable_rps
        doc["savings"] = self.savings
        return doc


def replicas_needed(peak_rps: float, capacity_rps: float, headroom: float) -> int:
    """ceil(peak / (capacity x (1 - headroom))), at least 1 (someone has to answer)."""
    if not (capacity_rps > 0 and 0 <= headroom < 1):
        raise InputError("capacity must be > 0 and headroom in [0, 1)")
    return max(1, math.ceil(peak_rps / (capacity_rps * (1.0 - headroom)) - 1e-9))


def bin_rates(trace: Trace, bin_s: float) -> np.ndarray:
    """Rate (req/s) in consecutive bins of `bin_s` seconds covering the trace (the last one shorter)."""
    counts = trace.window_counts(bin_s).astype(np.float64)
    lengths = np.full(counts.size, bin_s)
    lengths[-1] = max(trace.duration_s - bin_s * (counts.size - 1), 1e-9)
    return counts / lengths


def make_traffic_plan(trace: Trace, capacity_rps: float, *, headroom: float = 0.3, window_s: float = 3600.0,
                      peak_over_s: float = 10.0, scale_up_delay_s: float = 300.0,
                      cost_per_replica_hour: float | None = None, config: str = "", slo: str = "",
                      warnings: Sequence[str] = (), rate_scale: float = 1.0) -> TrafficPlan:
    """The plan (see the module docstring). Pure: a trace and numbers in, a record out.
    `rate_scale` plans for that multiple of the trace's traffic (every rate multiplied)."""
    if not (math.isfinite(capacity_rps) and capacity_rps > 0):
        raise InputError(f"the capacity must be a rate > 0, got {capacity_rps!r}")
    if not 0 <= headroom < 1:
        raise InputError(f"--headroom must be in [0, 1), got {headroom!r}")
    for name, v in (("--window", window_s), ("--peak-over", peak_over_s)):
        if not (math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be > 0, got {v!r}")
    if not (math.isfinite(rate_scale) and rate_scale > 0):
        raise InputError(f"--traffic-scale must be > 0, got {rate_scale!r}")
    if not (math.isfinite(scale_up_delay_s) and scale_up_delay_s >= 0):
        raise InputError(f"--scale-up-delay must be >= 0, got {scale_up_delay_s!r}")
    warn = list(warnings)
    if peak_over_s > window_s:
        warn.append(f"--peak-over {peak_over_s:g} s is longer than the window; used the window ({window_s:g} s)")
        peak_over_s = window_s
    ratio = window_s / peak_over_s
    if abs(ratio - round(ratio)) > 1e-9:
        raise InputError(f"--window ({window_s:g} s) must be a whole multiple of --peak-over ({peak_over_s:g} s)")
    per_window = int(round(ratio))
    rates = bin_rates(trace, peak_over_s) * rate_scale
    n_w = max(1, math.ceil(trace.duration_s / window_s - 1e-9))
    bin_window = np.minimum(np.arange(rates.size) // per_window, n_w - 1)
    need = []
    means = trace.window_counts(window_s) * rate_scale
    out_windows = []
    peaks = np.zeros(n_w)
    for w in range(n_w):
        peaks[w] = float(rates[bin_window == w].max()) if np.any(bin_window == w) else 0.0
        need.append(replicas_needed(peaks[w], capacity_rps, headroom))
    need_arr = np.asarray(need)
    # serving replicas per bin under the scale-up delay: min(need(now), need(now - delay))
    starts = np.arange(rates.size) * peak_over_s
    earlier = np.clip(((starts - scale_up_delay_s) // window_s).astype(np.int64), 0, n_w - 1)
    serving = np.minimum(need_arr[bin_window], need_arr[earlier])
    # a bin fails if its rate exceeds what the serving replicas carry under the SLO; the bin straddling
    # the moment new replicas come up is judged with the replicas serving at its start (conservative)
    excess = rates - serving * capacity_rps
    failing = []
    for w in range(n_w):
        mine = bin_window == w
        worst = float(excess[mine].max()) if np.any(mine) else 0.0
        fails = worst > 1e-9
        if fails:
            failing.append(w)
        length = min(window_s, trace.duration_s - w * window_s)
        out_windows.append(WindowPlan(
            t_s=w * window_s, duration_s=length, mean_rps=float(means[w]) / max(length, 1e-9),
            peak_rps=float(peaks[w]), replicas=int(need_arr[w]),
            serving_min=int(serving[mine].min()) if np.any(mine) else int(need_arr[w]), fails=fails,
            shortfall_rps=max(0.0, worst)))
    lengths_h = np.array([w.duration_s for w in out_windows]) / 3600.0
    static = int(need_arr.max())
    static_h = static * float(lengths_h.sum())
    follow_h = float((need_arr * lengths_h).sum())
    over = float(lengths_h[need_arr < static].sum() / lengths_h.sum()) if lengths_h.sum() else 0.0
    cost = cost_per_replica_hour
    return TrafficPlan(
        config=config, capacity_rps=capacity_rps, headroom=headroom, window_s=window_s, peak_over_s=peak_over_s,
        scale_up_delay_s=scale_up_delay_s, trace_requests=round(len(trace) * rate_scale), rate_scale=rate_scale, trace_duration_s=trace.duration_s,
        trace_peak_rps=float(peaks.max()), windows=tuple(out_windows), static_replicas=static,
        static_replica_hours=static_h, follow_replica_hours=follow_h, over_provisioned_share=over,
        failing_windows=tuple(failing), cost_per_replica_hour=cost,
        static_cost=static_h * cost if cost is not None else None,
        follow_cost=follow_h * cost if cost is not None else None, slo=slo, warnings=tuple(warn))


def describe(plan: TrafficPlan) -> list[str]:
    """The plan in a few lines for the terminal."""
    lines = [
        f"capacity {plan.capacity_rps:.1f} req/s per replica ({plan.config}, under {plan.slo}); headroom "
        f"{plan.headroom:.0%}: {plan.usable_rps:.1f} req/s usable",
        f"{FORMULA}; windows of {plan.window_s:g} s, peak over {plan.peak_over_s:g} s bins",
        f"trace: {plan.trace_requests:,} requests over {_when(plan.trace_duration_s, plan.trace_duration_s)}, peak "
        f"{plan.trace_peak_rps:.1f} req/s",
        f"static at peak: {plan.static_replicas} replicas, {plan.static_replica_hours:,.1f} replica-hours"
        + (f", cost {plan.static_cost:,.2f}" if plan.static_cost is not None else ""),
        f"following the curve: {min(w.replicas for w in plan.windows)}..{max(w.replicas for w in plan.windows)} "
        f"replicas, {plan.follow_replica_hours:,.1f} replica-hours ({plan.savings:.0%} less)"
        + (f", cost {plan.follow_cost:,.2f}" if plan.follow_cost is not None else ""),
        f"the static plan is over-provisioned {plan.over_provisioned_share:.0%} of the time",
    ]
    if plan.failing_windows:
        first = [_when(plan.windows[i].t_s, plan.trace_duration_s) for i in plan.failing_windows[:6]]
        lines.append(f"with a scale-up delay of {plan.scale_up_delay_s:g} s the following plan falls short in "
                     f"{len(plan.failing_windows)} of {len(plan.windows)} windows (starting at "
                     f"{', '.join(first)}{', ...' if len(plan.failing_windows) > 6 else ''}): the ramp is "
                     "faster than the scale-up; scale ahead of the curve there or keep more headroom")
    else:
        lines.append(f"with a scale-up delay of {plan.scale_up_delay_s:g} s the following plan never falls short")
    lines.extend(f"warning: {w}" for w in plan.warnings)
    return lines


def _when(t_s: float, span_s: float) -> str:
    """A trace time in the unit the trace's length suggests (h, min or s)."""
    if span_s >= 3 * 3600:
        return f"{t_s / 3600:.1f} h"
    return f"{t_s / 60:.0f} min" if span_s >= 180 else f"{t_s:.0f} s"


def traffic_plan_figure(plan: TrafficPlan, trace: Trace | None = None):
    """Traffic vs provisioned capacity over trace time: the trace's rate (per peak bin when the
    trace is given), window peaks, the static plan's and the following plan's capacity (usable and
    SLO capacity), and the windows where the following plan falls short, shaded."""
    from tfsbench.reports.style import MUTED, SLO_COLOR, new_figure, styled

    with styled():
        fig, axes = new_figure(1, 1, height_in=5.2)
        ax = axes[0][0]
        span = plan.trace_duration_s
        unit, scale = ("h", 3600.0) if span >= 3 * 3600 else (("min", 60.0) if span >= 180 else ("s", 1.0))
        starts = np.array([w.t_s for w in plan.windows]) / scale
        ends = starts + np.array([w.duration_s for w in plan.windows]) / scale
        edges = np.r_[starts, ends[-1]]
        from tfsbench.reports.replay_view import runs_of

        for lo, hi in runs_of(plan.failing_windows):
            ax.axvspan(starts[lo], ends[hi], color=SLO_COLOR, alpha=0.15, lw=0)
        if trace is not None:
            rates = bin_rates(trace, plan.peak_over_s) * plan.rate_scale
            ax.plot((np.arange(rates.size) + 0.5) * plan.peak_over_s / scale, rates, color="#9ecae1", lw=0.6,
                    label=f"traffic (per {plan.peak_over_s:g} s)")
        peaks = [w.peak_rps for w in plan.windows]
        ax.step(edges, np.r_[peaks, peaks[-1]], where="post", color="#1f77b4", lw=1.6, label="window peak")
        follow = [w.replicas * plan.usable_rps for w in plan.windows]
        ax.step(edges, np.r_[follow, follow[-1]], where="post", color="#2ca02c", lw=2.0,
                label="following the curve: replicas x usable capacity")
        ax.axhline(plan.static_replicas * plan.usable_rps, color=MUTED, ls="--", lw=1.6,
                   label=f"static: {plan.static_replicas} replicas x usable capacity")
        ax.axhline(plan.static_replicas * plan.capacity_rps, color=MUTED, ls=":", lw=1.2,
                   label="static: SLO capacity (headroom used up)")
        if plan.failing_windows:
            from matplotlib.patches import Patch

            handles, labels = ax.get_legend_handles_labels()
            handles.append(Patch(color=SLO_COLOR, alpha=0.15))
            labels.append(f"falls short with a {plan.scale_up_delay_s:g} s scale-up delay "
                          f"({len(plan.failing_windows)} window{'s' if len(plan.failing_windows) != 1 else ''})")
            ax.legend(handles, labels, loc="upper left", fontsize=8)
        else:
            ax.legend(loc="upper left", fontsize=8)
        ax.set_ylim(bottom=0, top=max(plan.static_replicas * plan.capacity_rps, max(peaks)) * 1.25)
        ax.set_ylabel("requests/s")
        ax.set_xlabel(f"trace time ({unit}); windows of {plan.window_s:g} s")
        hours = "{:,.0f}" if plan.static_replica_hours >= 100 else "{:,.1f}"
        ax.set_title(f"Traffic vs capacity: {plan.static_replicas} replicas static "
                     f"({hours.format(plan.static_replica_hours)} replica-h) vs following the curve "
                     f"({hours.format(plan.follow_replica_hours)} replica-h, {plan.savings:.0%} less)")
        return fig
