"""Capacity plans from a traffic shape (reports/traffic_plan.py) and `tfsbench plan --traffic`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import cli
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import make_trace
from tfsbench.payloads.trace_synth import SynthSpec, synthesize
from tfsbench.reports.traffic_plan import make_traffic_plan, replicas_needed, traffic_plan_figure


def _steps(rates_per_window: list[float], window_s: float = 100.0):
    """A trace sending exactly rate x window requests in each window, evenly spaced."""
    times = []
    for w, rate in enumerate(rates_per_window):
        n = int(round(rate * window_s))
        times.extend(w * window_s + (np.arange(n) + 0.5) * window_s / n)
    return make_trace(times, duration_s=window_s * len(rates_per_window))


@pytest.mark.slow
def test_replicas_follow_the_stated_formula_on_a_diurnal_trace():
    trace = synthesize(SynthSpec(profile="diurnal", peak_rps=40.0, duration_s=86400.0, seed=11))
    capacity, headroom = 7.3, 0.25
    plan = make_traffic_plan(trace, capacity, headroom=headroom, window_s=3600.0, peak_over_s=60.0)
    # the formula, computed independently: peak per window = max over 60 s bins of count / 60
    counts = np.bincount((trace.t_s // 60.0).astype(int), minlength=1440)[:1440].reshape(24, 60)
    peaks = counts.max(axis=1) / 60.0
    expected = [max(1, math.ceil(p / (capacity * (1 - headroom)))) for p in peaks]
    assert [w.replicas for w in plan.windows] == expected
    assert [w.peak_rps for w in plan.windows] == pytest.approx(peaks.tolist())
    assert plan.static_replicas == max(expected)
    assert plan.static_replica_hours == pytest.approx(24 * max(expected))
    assert plan.follow_replica_hours == pytest.approx(sum(expected))
    assert plan.over_provisioned_share == pytest.approx(sum(1 for r in expected if r < max(expected)) / 24)
    # a diurnal curve from 20% to 100% of its peak: following it saves a lot
    assert min(expected) < max(expected) / 2 and plan.savings > 0.3


def test_costs_and_edge_of_the_formula():
    assert replicas_needed(70.0, 100.0, 0.3) == 1  # exactly at the usable capacity: one replica
    assert replicas_needed(70.1, 100.0, 0.3) == 2
    assert replicas_needed(0.0, 100.0, 0.3) == 1
    plan = make_traffic_plan(_steps([10, 30, 20]), 10.0, headroom=0.0, window_s=100.0, peak_over_s=10.0,
                             scale_up_delay_s=0.0, cost_per_replica_hour=2.0)
    assert [w.replicas for w in plan.windows] == [1, 3, 2]
    assert plan.static_cost == pytest.approx(3 * 300 / 3600 * 2.0)
    assert plan.follow_cost == pytest.approx(6 * 100 / 3600 * 2.0)
    assert plan.failing_windows == ()  # no delay: the curve is followed exactly


def test_scale_up_slower_than_the_ramp_fails_those_windows():
    trace = _steps([10, 10, 40, 40, 15, 50])
    slow = make_traffic_plan(trace, 10.0, headroom=0.2, window_s=100.0, peak_over_s=10.0, scale_up_delay_s=30.0)
    assert [w.replicas for w in slow.windows] == [2, 2, 5, 5, 2, 7]
    # the ramps at 200 s and 500 s come faster than 30 s of scale-up: 2 replicas (20 req/s) meet 40 and 50 req/s
    assert slow.failing_windows == (2, 5)
    assert slow.windows[2].serving_min == 2 and slow.windows[2].shortfall_rps == pytest.approx(20.0)
    # the step down at 400 s is on time, and 15 req/s fits 2 replicas
    assert not slow.windows[4].fails
    # headroom absorbs a ramp that is smaller than it: 10 -> 12 req/s with 2 replicas of 10
    mild = make_traffic_plan(_steps([10, 12]), 10.0, headroom=0.5, window_s=100.0, peak_over_s=10.0,
                             scale_up_delay_s=1000.0)
    assert [w.replicas for w in mild.windows] == [2, 3] and mild.failing_windows == ()


def test_bad_plan_inputs():
    trace = _steps([10])
    with pytest.raises(InputError, match="whole multiple"):
        make_traffic_plan(trace, 10.0, window_s=100.0, peak_over_s=30.0)
    with pytest.raises(InputError, match="headroom"):
        make_traffic_plan(trace, 10.0, headroom=1.0)
    with pytest.raises(InputError, match="capacity"):
        make_traffic_plan(trace, 0.0)


def test_figure_draws(tmp_path):
    trace = _steps([10, 10, 40, 40, 15, 50])
    plan = make_traffic_plan(trace, 10.0, headroom=0.2, window_s=100.0, peak_over_s=10.0, scale_up_delay_s=30.0)
    from tfsbench.reports.style import png_bytes

    data = png_bytes(traffic_plan_figure(plan, trace))
    assert data[:4] == b"\x89PNG" and len(data) > 10_000


@pytest.mark.slow
def test_plan_traffic_command(tmp_path):
    import json
    import subprocess
    import sys

    from tfsbench.payloads.trace import write_trace
    from tfsbench.reports.synthetic import write_search

    write_search(tmp_path / "search", kind="numeric", batch_size=1, slo_text="p99<=20ms", slo_bound_ms=20.0)
    trace_path = tmp_path / "day.jsonl"
    write_trace(synthesize(SynthSpec(profile="diurnal", peak_rps=2.0, duration_s=86400.0, seed=2)), trace_path)
    out = tmp_path / "plan"
    cmd = [sys.executable, "-m", "tfsbench", "plan", str(tmp_path / "search"), "--slo", "p99<=20ms",
           "--traffic", str(trace_path), "--traffic-scale", "5000", "--cost-per-replica-hour", "2",
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "traffic_plan.json").read_text())
    usable = doc["capacity_rps"] * 0.7
    assert [w["replicas"] for w in doc["windows"]] == [max(1, math.ceil(w["peak_rps"] / usable - 1e-9))
                                                       for w in doc["windows"]]
    assert doc["static_replicas"] > min(w["replicas"] for w in doc["windows"])
    assert "replica-hours" in done.stdout and (out / "traffic_plan.png").exists()
    bad = cli(*cmd[3:-2], "--target-qps", "10", "--out", str(tmp_path / "never"))  # in-process (helpers.cli)
    assert bad.returncode == 2 and "leave out --target-qps" in bad.stderr and bad.stderr.count("\n") == 1
    assert not (tmp_path / "never").exists()
