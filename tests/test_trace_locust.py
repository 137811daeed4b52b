"""The Locust trace shape: its arithmetic (locustfiles/trace_plan.py, in-process) and one headless
Locust run in a subprocess (locust is never imported here) following a stepped trace."""

from __future__ import annotations

import csv
import math
import sys

import numpy as np
import pytest
from tfsbench.locustfiles.trace_plan import TraceShapePlan, plan_from_trace
from tfsbench.payloads.trace import make_trace, write_trace


def _steps(rates: list[float], window_s: float):
    times = []
    for w, rate in enumerate(rates):
        n = int(round(rate * window_s))
        times.extend(w * window_s + (np.arange(n) + 0.5) * window_s / n)
    return make_trace(times, duration_s=window_s * len(rates))


def test_users_and_pacing_follow_the_window_rate():
    plan = plan_from_trace(_steps([2, 6, 0.4, 8], 5.0), window_s=5.0, speed=5.0, user_rps=10.0)
    assert plan.duration_s == 4.0
    ticks = [plan.tick(t) for t in (0.1, 1.5, 2.2, 3.9)]
    assert [t.users for t in ticks] == [1, 3, 1, 4]
    for t, wall_rps in zip(ticks, (10, 30, 2, 40), strict=True):
        assert t.users / t.pacing_s == pytest.approx(wall_rps)  # the window's rate exactly
    assert plan.tick(4.0) is None
    silent = TraceShapePlan(rates_rps=np.array([0.0]), window_s=1.0)
    assert silent.tick(0.5).users == 1 and math.isinf(silent.tick(0.5).pacing_s)
    capped = TraceShapePlan(rates_rps=np.array([1e6]), window_s=1.0, max_users=50)
    assert capped.tick(0.0).users == 50


@pytest.mark.slow
def test_headless_locust_follows_the_trace(tfs_url, tmp_path):
    import os
    import subprocess

    from helpers import ROOT, popen_group

    trace = _steps([2, 6, 2, 8], 5.0)  # 90 requests, 20 s of trace time
    path = tmp_path / "t.jsonl"
    write_trace(trace, path)
    args = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "trace_shape.py"), "--headless",
            "-H", tfs_url, "--model", "numeric", "--kind", "numeric", "--trace-file", str(path),
            "--trace-speed", "5", "--trace-window", "5", "--trace-user-rps", "10", "--csv", str(tmp_path / "run"),
            "--only-summary", "TraceUser"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    with open(tmp_path / "locust.log", "w") as fh, popen_group(args, env=env, stdout=fh,
                                                                stderr=subprocess.STDOUT) as proc:
        code = proc.wait(timeout=60)  # no -t: the shape ends the run with the trace
    log = (tmp_path / "locust.log").read_text()
    assert code == 0, log
    for users in (1, 3, 4):
        assert f"Shape test updating to {users} users" in log, log
    with open(tmp_path / "run_stats.csv", newline="") as fh:
        total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    assert int(total["Failure Count"]) == 0
    # closed-loop users paced per window: the count follows the trace's, give or take start-up and ramps
    assert 0.7 * len(trace) <= int(total["Request Count"]) <= 1.3 * len(trace)
