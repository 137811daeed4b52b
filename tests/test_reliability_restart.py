"""Kill the target mid-run (SIGKILL, by PID) and start it again on the same port.

The target is a real `python -m tfsbench serve --port P` process; the run is an open-loop
`run_benchmark` in a thread. Everything is driven by the run's own progress reports (bounded
polling, no sleeps standing in for synchronisation): kill once a second has been measured, restart
after the run has seen 1.5 s of outage, stop the run 2.5 s after the restart. The run must carry
on through the outage, count it as connection errors, show it as a gap in its time series, and go
back to clean seconds after the restart.

(tests/test_engine_faults.py stops and restarts an in-process server politely; this one kills a
process, so the kernel resets its connections mid-flight.)
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, kill_group
from tfsbench.bench.measure.runner import ProgressUpdate, run_benchmark
from tfsbench.bench.results import RunConfig, RunResult

ROOT = Path(__file__).resolve().parent.parent
RATE_RPS = 50.0


def _start_target(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "serve", "--port", str(port)], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            process_group=0, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        if "listening on" in line:
            return proc
    kill_group(proc)
    raise AssertionError(f"tfsbench serve did not start on port {port}")


def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)  # polling an observable condition (the run's progress)


@pytest.mark.parametrize("engine", ["fast", "aiohttp"])
@pytest.mark.slow
def test_target_killed_and_restarted_mid_run(engine: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    updates: list[ProgressUpdate] = []
    stop = threading.Event()
    outcome: dict[str, Any] = {}
    config = RunConfig(url=url, model="numeric", kind="numeric", batch_size=1, format="row", mode="open",
                       engine=engine, rate_rps=RATE_RPS, arrival="constant", duration_s=60.0, warmup_s=0.0,
                       timeout_s=1.0, pool_size=8)

    def run() -> None:
        try:
            outcome["result"] = run_benchmark(config, progress=updates.append, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            outcome["error"] = exc

    def elapsed() -> float:
        return updates[-1].elapsed_s if updates else 0.0

    def errors() -> int:
        return updates[-1].errors if updates else 0

    target = _start_target(port)
    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        _wait_for(lambda: elapsed() >= 1.2 and "error" not in outcome, 60, "a measured second before the kill")
        assert errors() == 0, updates[-1]
        killed_at = elapsed()
        kill_group(target)
        _wait_for(lambda: errors() > 0 and elapsed() >= killed_at + 1.5, 60, "errors during the outage")
        target = _start_target(port)
        restarted_at = elapsed()
        _wait_for(lambda: elapsed() >= restarted_at + 2.5, 60, "seconds after the restart")
    finally:
        stop.set()
        runner.join(timeout=60)
        kill_group(target)
    assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    result: RunResult = outcome["result"]
    s = result.summary

    # the run went on until it was stopped, and kept every request
    assert result.partial and result.partial_reason == "interrupted"
    assert s.ok + sum(s.errors.values()) == s.requests
    assert s.requests + s.refused_inflight >= RATE_RPS * (restarted_at + 2.5) * 0.9
    # the outage is connection errors (and requests cut off by the kill or the stop)
    assert set(s.errors) <= {"refused", "reset", "timeout", "cancelled"}, s.errors
    outage = s.errors.get("refused", 0) + s.errors.get("reset", 0)
    assert outage >= 0.5 * RATE_RPS * 1.5, s.errors  # 1.5 s or more at 50/s found nobody listening

    # the time series: clean before the kill, a gap with no successes, clean again after the restart
    points = {int(p.t_s): p for p in result.timeseries}
    before = [p for sec, p in points.items() if sec + 1 <= killed_at - 0.1]
    assert before and all(p.errors == 0 and p.requests > 0 for p in before), before
    gap = [p for p in points.values() if p.requests > 0 and p.errors == p.requests]
    assert gap, result.timeseries  # at least one whole second in which every request failed
    after = [p for sec, p in points.items() if sec >= restarted_at + 0.5 and sec + 1 <= restarted_at + 2.5]
    assert after and all(p.errors == 0 and p.requests > 0.5 * RATE_RPS for p in after), (restarted_at, after)
