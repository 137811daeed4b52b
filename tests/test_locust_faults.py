"""Locust users against a misbehaving target: every failure classified, every request accounted
for, timeouts honoured, reconnection after resets and after the target is killed and restarted.
Locust runs in subprocesses (never imported here)."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import kill_group
from tfsbench.bench.results import load_result

ROOT = Path(__file__).resolve().parent.parent
LOCUST = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py")]
SERVE = (
    "import asyncio, sys\n"
    "from tfsbench.server.runner import start\n"
    "async def main():\n"
    "    await start(port=int(sys.argv[1]))\n"
    "    print('listening', flush=True)\n"
    "    await asyncio.Event().wait()\n"
    "asyncio.run(main())\n"
)


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def _popen(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed in _kill
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=fh,
                            stderr=subprocess.STDOUT, process_group=0)
    proc.log_fh = fh  # type: ignore[attr-defined]
    return proc


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling an observable condition (a file, a port)


def _export(prefix: Path, out: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "tfsbench", "locust-export", "--csv-prefix", str(prefix), "--out", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return load_result(out)


def _check_accounting(prefix: Path, result, users: int) -> dict:
    side = json.loads(Path(f"{prefix}_tfsbench.json").read_text())
    s = result.summary
    assert s.ok + sum(s.errors.values()) == s.requests  # nothing lost, nothing counted twice
    assert "unclassified" not in s.errors and "other" not in s.errors, s.errors
    # every attempt was recorded except those in flight when users were stopped (one per user at most)
    assert 0 <= side["attempts"] - s.requests <= users
    assert side["requests"] == s.requests  # Locust's own total agrees with ours
    return side


@pytest.mark.slow
def test_all_faults_together_are_classified_and_accounted(tfs_server, tmp_path):
    url = tfs_server(
        faults="status=503:10%,status=429:5%,reset=5%,truncate=5%,nonjson=5%,delay=800ms:4%,seed=7"
    )
    prefix = tmp_path / "faults"
    started = time.monotonic()
    proc = _popen(
        LOCUST + ["--headless", "-H", url, "--model", "numeric", "--kind", "numeric", "--batch-size", "2",
                  "--request-timeout", "0.2", "-u", "4", "-r", "20", "-t", "5s", "--csv", str(prefix),
                  "--only-summary"],
        tmp_path / "locust.log",
    )
    try:
        code = proc.wait(timeout=60)
    finally:
        kill_group(proc)
    elapsed_s = time.monotonic() - started
    log = (tmp_path / "locust.log").read_text()
    assert code == 1, log  # Locust's own rule: failures -> exit 1 (no gates set)
    assert "Traceback" not in log and "Uncaught exception" not in log
    assert elapsed_s < 5 + 15  # finished on time (start-up and shut-down included, generous)
    result = _export(prefix, tmp_path / "faults.json")
    _check_accounting(prefix, result, users=4)
    errors = result.summary.errors
    for cls in ("http_503", "http_429", "reset", "invalid_json", "timeout"):
        assert errors.get(cls, 0) > 0, errors
    # after resets the users reconnected and kept getting answers: most requests still succeed
    assert result.summary.ok > 0.5 * result.summary.requests
    # the timeout was honoured: no successful request took much longer than 0.2 s (the 800 ms delays
    # became timeouts); generous because 2 shared cores can delay a greenlet's wake-up
    assert result.summary.latency_ms.max < 2 * 200 + 100
    # closed loop keeps its concurrency through the faults: 4 users from spawn to the end
    history = [r for r in csv.DictReader(open(f"{prefix}_stats_history.csv")) if int(r["Total Request Count"] or 0)]
    assert history and all(int(r["User Count"]) == 4 for r in history), [r["User Count"] for r in history]
    failures_csv = list(csv.DictReader(open(f"{prefix}_failures.csv")))
    assert all(row["Error"].split(":")[0] in errors for row in failures_csv), failures_csv


@pytest.mark.slow
def test_stalls_and_trickled_bodies_hit_the_whole_request_timeout(tfs_server, tmp_path):
    url = tfs_server(faults="stall=1s/2s,trickle=1s:20%,seed=3")
    prefix = tmp_path / "stall"
    started = time.monotonic()
    proc = _popen(
        LOCUST + ["--headless", "-H", url, "--model", "numeric", "--kind", "numeric", "--request-timeout", "0.3",
                  "-u", "3", "-r", "20", "-t", "4s", "--csv", str(prefix), "--only-summary"],
        tmp_path / "locust.log",
    )
    try:
        code = proc.wait(timeout=60)
    finally:
        kill_group(proc)
    elapsed_s = time.monotonic() - started
    log = (tmp_path / "locust.log").read_text()
    assert code == 1 and "Traceback" not in log, log
    assert elapsed_s < 4 + 15
    result = _export(prefix, tmp_path / "stall.json")
    _check_accounting(prefix, result, users=3)
    # a trickled body arrives in time per socket read but not as a whole: the timeout is per request
    assert result.summary.errors.get("timeout", 0) > 0, result.summary.errors
    assert set(result.summary.errors) == {"timeout"}, result.summary.errors
    assert result.summary.latency_ms.max < 2 * 300 + 100  # generous: 2 shared cores delay wake-ups
    assert result.summary.ok > 0


@pytest.mark.slow
def test_target_killed_and_restarted_mid_run(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def history_totals() -> tuple[int, int]:
        path = Path(f"{prefix}_stats_history.csv")
        if not path.exists():
            return 0, 0
        rows = [r for r in csv.DictReader(open(path)) if r.get("Name") == "Aggregated"]
        if not rows or not rows[-1].get("Total Request Count"):
            return 0, 0
        return int(rows[-1]["Total Request Count"]), int(rows[-1]["Total Failure Count"])

    prefix = tmp_path / "restart"
    server = _popen([sys.executable, "-c", SERVE, str(port)], tmp_path / "server1.log")
    locust = None
    try:
        _wait_for(listening, 30, "the target to listen")
        locust = _popen(
            LOCUST + ["--headless", "-H", url, "--model", "text", "--kind", "text", "-u", "2", "-r", "10",
                      "-t", "60s", "--csv", str(prefix), "--only-summary", "--request-timeout", "1"],
            tmp_path / "locust.log",
        )
        _wait_for(lambda: history_totals()[0] > 50, 30, "requests before the kill")
        kill_group(server)  # the target dies mid-run
        _wait_for(lambda: history_totals()[1] > 0, 30, "connection errors during the outage")
        ok_at_outage = history_totals()[0] - history_totals()[1]
        server = _popen([sys.executable, "-c", SERVE, str(port)], tmp_path / "server2.log")
        _wait_for(listening, 30, "the restarted target")
        # the users reconnect by themselves: successes resume; then end the run (SIGTERM, as CI would)
        _wait_for(lambda: history_totals()[0] - history_totals()[1] > ok_at_outage + 50, 30, "successes again")
        locust.send_signal(signal.SIGTERM)
        code = locust.wait(timeout=60)
    finally:
        if locust is not None:
            kill_group(locust)
        kill_group(server)
    log = (tmp_path / "locust.log").read_text()
    assert code == 130, log  # interrupted on purpose, results kept and marked partial
    assert "Traceback" not in log
    result = _export(prefix, tmp_path / "restart.json")
    assert result.partial
    _check_accounting(prefix, result, users=2)
    errors = result.summary.errors
    assert errors.get("refused", 0) > 0, errors  # the outage counts as connection errors
    assert set(errors) <= {"refused", "reset"}, errors
    # the time series shows the gap: a second with (almost) no successes, then successes again
    points = [p for p in result.timeseries if p.requests]
    ok_per_s = [p.requests - p.errors for p in points]
    before = sorted(ok_per_s[:3])[1]
    gap = [i for i, p in enumerate(points) if p.errors and ok_per_s[i] < 0.25 * before]
    assert gap, points
    assert any(ok > 0 for ok in ok_per_s[gap[-1] + 1:]), points  # the run continued after the restart


@pytest.mark.slow
def test_sigterm_mid_run_keeps_results_marked_partial(tfs_url, tmp_path):
    prefix = tmp_path / "term"
    proc = _popen(
        LOCUST + ["--headless", "-H", tfs_url, "--model", "numeric", "--kind", "numeric", "-u", "2", "-r", "10",
                  "-t", "60s", "--csv", str(prefix), "--only-summary"],
        tmp_path / "locust.log",
    )
    try:
        history = Path(f"{prefix}_stats_history.csv")

        def served() -> bool:
            rows = list(csv.DictReader(open(history))) if history.exists() else []
            return any(int(r.get("Total Request Count") or 0) > 20 for r in rows)

        _wait_for(served, 30, "requests before SIGTERM")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        kill_group(proc)
    log = (tmp_path / "locust.log").read_text()
    assert code == 130, log
    assert "results are marked partial" in log
    result = _export(prefix, tmp_path / "term.json")
    assert result.partial and result.partial_reason.startswith("interrupted after")
    assert result.summary.requests > 20
    _check_accounting(prefix, result, users=2)
