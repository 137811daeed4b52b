"""Locust runs in subprocesses (locust is never imported here): headless, gates, bad input,
--processes, master + 2 workers, and the export into the run-result schema."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, kill_group
from tfsbench.bench.measure import hist
from tfsbench.bench.results import load_result

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "tfserving.py")
LOCUST = [sys.executable, "-m", "locust", "-f", LOCUSTFILE]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - closed by the caller through proc.log_fh
    proc = subprocess.Popen(
        args, cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
        process_group=0,
    )
    proc.log_fh = fh  # type: ignore[attr-defined]
    return proc


def run_locust(args: list[str], tmp_path: Path, timeout_s: float = 60, name: str = "locust") -> tuple[int, str]:
    log = tmp_path / f"{name}.log"
    proc = _start(LOCUST + args, log)
    try:
        code = proc.wait(timeout=timeout_s)
    finally:
        kill_group(proc)
    return code, log.read_text()


def _csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {r["Name"]: r for r in csv.DictReader(fh)}


def _accounting(log: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"this process sent (\d+) requests and recorded (\d+)", log)]


@pytest.mark.slow
def test_headless_run_writes_payload_csv_sidecar_and_exports(tfs_url, tmp_path):
    prefix = tmp_path / "run"
    code, log = run_locust(
        ["--headless", "-H", tfs_url, "--model", "numeric", "--kind", "numeric", "--batch-size", "8",
         "--format", "columnar", "-u", "3", "-r", "10", "-t", "3s", "--csv", str(prefix), "--only-summary",
         "--tfs-result", str(tmp_path / "direct.json")],
        tmp_path,
    )
    assert code == 0, log
    assert "Traceback" not in log
    rows = _csv_rows(tmp_path / "run_payload.csv")
    row = rows["numeric b=8 columnar"]
    assert int(row["Failures"]) == 0 and int(row["Requests"]) > 50
    assert int(row["Batch size"]) == 8
    raw = float(row["Raw tensor bytes (mean)"])
    assert raw == 8 * 4 * 4  # 8 instances x 4 float32 features
    assert float(row["Request bytes (mean)"]) > raw
    assert float(row["Instances/s"]) == pytest.approx(8 * float(row["Requests/s"]), rel=0.01)
    ((sent, recorded),) = _accounting(log)
    assert recorded == int(row["Requests"]) and sent - recorded <= 3  # at most one in flight per user

    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tfsbench", "locust-export", "--csv-prefix", str(prefix), "--out", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    assert (result.config.engine, result.config.source, result.config.mode) == ("locust", "locust", "closed")
    assert (result.config.model, result.config.kind, result.config.batch_size) == ("numeric", "numeric", 8)
    assert result.summary.requests == int(row["Requests"]) and result.summary.ok == result.summary.requests
    assert hist.total_count(result.histogram) == result.summary.ok
    assert result.summary.raw_bytes == raw
    assert result.config.concurrency == 3
    assert any("closed loop" in w for w in result.warnings)
    direct = load_result(tmp_path / "direct.json")
    assert direct.summary.requests == result.summary.requests


@pytest.mark.slow
def test_headless_gates_set_exit_code_and_say_which_bound_failed(tfs_url, tmp_path):
    code, log = run_locust(
        ["--headless", "-H", tfs_url, "--model", "text", "--kind", "text", "-u", "2", "-r", "10", "-t", "2s",
         "--only-summary", "--slo-p99-ms", "0.001", "--min-rps", "1000000", "--max-fail-ratio", "0.5"],
        tmp_path,
    )
    assert code == 1, log
    assert re.search(r"gate failed: --slo-p99-ms 0.001: p99 was [\d.]+ ms", log)
    assert "gate failed: --min-rps 1e+06: total rate was" in log
    assert "gate failed: --max-fail-ratio" not in log  # no failures: that bound holds


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "video"], "argument --kind: invalid choice: 'video'"),
        (["--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
        (["--model", "nosuch"], "--model: "),
        (["-H", "http://127.0.0.1:{dead}"], "--host: cannot reach"),
    ],
)
@pytest.mark.slow
def test_bad_input_stops_before_the_run_with_one_line(tfs_url, tmp_path, extra, message):
    extra = [a.format(dead=free_port()) for a in extra]
    code, log = run_locust(
        ["--headless", "-H", tfs_url, "--model", "numeric", "-u", "1", "-t", "20s", *extra], tmp_path, timeout_s=30
    )
    assert code == 2, log
    assert message in log
    assert "Traceback" not in log
    assert "All users spawned" not in log


@pytest.mark.slow
def test_processes_two_and_the_payload_tab_aggregates_workers(tfs_url, tmp_path):
    """--processes 2 (a master and two forked workers), with the web UI started automatically so the
    Payload tab's data (`extended_stats` of /stats/requests) can be read during the run."""
    prefix = tmp_path / "proc"
    web_port = free_port()
    master_port = free_port()  # not Locust's default 5557 on every interface: tests run side by side
    proc = _start(
        LOCUST + ["--autostart", "--autoquit", "3", "--web-host", "127.0.0.1", "--web-port", str(web_port),
                  "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                  "--master-port", str(master_port),
                  "-H", tfs_url, "--model", "image", "--kind", "image", "--batch-size", "2", "--image-size", "32x32",
                  "-u", "4", "-r", "10", "-t", "4s", "--processes", "2", "--csv", str(prefix), "--only-summary"],
        tmp_path / "proc.log",
    )
    try:
        deadline = time.monotonic() + 40
        live = final = None
        while final is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/requests", timeout=5) as resp:
                    doc = json.load(resp)
            except OSError:
                doc = {}
            tab = {r["name"]: r for e in doc.get("extended_stats", []) if e["key"] == "tfs-payload" for r in e["data"]}
            stats = {e["name"]: e for e in doc.get("stats", [])}
            row = tab.get("image b=2 row")
            if row and row["requests"] > 0 and doc.get("state") == "running":
                live = row
            if row and doc.get("state") == "stopped" and "image b=2 row" in stats:
                final = (row, stats["image b=2 row"], doc.get("worker_count"))
            else:
                time.sleep(0.3)  # polling the UI's own stats endpoint (Locust caches it for up to 2 s)
        code = proc.wait(timeout=60)
    finally:
        kill_group(proc)
    log = (tmp_path / "proc.log").read_text()
    assert live is not None and final is not None, log
    row_now, stats_now, workers_now = final
    # the tab's numbers are the workers' reports merged on the master, like Locust's own statistics
    assert row_now["requests"] == stats_now["num_requests"] >= live["requests"] > 0
    assert workers_now == 2
    assert row_now["batch_size"] == 2 and row_now["request_bytes"] > row_now["raw_bytes"] > 0
    assert code == 0, log
    acc = _accounting(log)
    assert len(acc) == 3  # master + 2 worker processes
    workers_recorded = sum(r for s, r in acc)
    row = _csv_rows(tmp_path / "proc_payload.csv")["image b=2 row"]
    assert int(row["Requests"]) == workers_recorded > 0
    side = json.loads((tmp_path / "proc_tfsbench.json").read_text())
    assert side["requests"] == workers_recorded == side["payload"]["totals"]["image b=2 row"]["requests"]


@pytest.mark.slow
def test_master_with_two_workers_aggregates_payload_metrics(tfs_url, tmp_path):
    port = free_port()
    prefix = tmp_path / "dist"
    workers = [
        _start(LOCUST + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)], tmp_path / f"w{i}.log")
        for i in range(2)
    ]
    try:
        code, log = run_locust(
            ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--expect-workers", "2",
             "--expect-workers-max-wait", "30", "--headless", "-H", tfs_url, "--model", "text", "--kind", "text",
             "--batch-size", "4", "-u", "4", "-r", "10", "-t", "3s", "--csv", str(prefix), "--only-summary"],
            tmp_path, name="master",
        )
        for w in workers:
            w.wait(timeout=30)
    finally:
        for w in workers:
            kill_group(w)
    assert code == 0, log
    worker_logs = [(tmp_path / f"w{i}.log").read_text() for i in range(2)]
    per_worker = [_accounting(text) for text in worker_logs]
    assert all(len(a) == 1 and a[0][1] > 0 for a in per_worker), worker_logs
    total_recorded = sum(a[0][1] for a in per_worker)
    side = json.loads((tmp_path / "dist_tfsbench.json").read_text())
    assert side["requests"] == total_recorded  # Locust's master total == sum of the workers
    payload = _csv_rows(tmp_path / "dist_payload.csv")["text b=4 row"]
    assert int(payload["Requests"]) == total_recorded
    assert int(payload["Instances (ok)"]) == 4 * int(payload["OK"])
    assert side["workers"] == 2


SHAPES = [sys.executable, "-m", "locust", "-f", f"{LOCUSTFILE},{ROOT / 'locustfiles' / 'shapes.py'}"]


@pytest.mark.slow
def test_step_shape_ramps_and_ends_by_itself(tfs_url, tmp_path):
    proc = _start(
        SHAPES + ["--headless", "-H", tfs_url, "--model", "numeric", "--shape", "step", "--shape-users", "1",
                  "--shape-step-s", "1.5", "--shape-steps", "2", "--only-summary"],
        tmp_path / "step.log",
    )
    try:
        code = proc.wait(timeout=60)  # no -t: the shape ends the run
    finally:
        kill_group(proc)
    log = (tmp_path / "step.log").read_text()
    assert code == 0, log
    assert "Shape test updating to 2 users" in log and "Shape test completed" in log


@pytest.mark.slow
def test_knee_shape_stops_at_the_first_step_over_the_bound(tfs_url, tmp_path):
    proc = _start(
        SHAPES + ["--headless", "-H", tfs_url, "--model", "numeric", "--shape", "knee", "--shape-users", "1",
                  "--shape-step-s", "1.5", "--shape-steps", "5", "--shape-p99-ms", "0.001", "--only-summary"],
        tmp_path / "knee.log",
    )
    try:
        code = proc.wait(timeout=60)
    finally:
        kill_group(proc)
    log = (tmp_path / "knee.log").read_text()
    assert code == 0, log
    assert re.search(r"SLO knee: p99 exceeded 0.001 ms at 1 users \(p99 [\d.]+ ms\)", log), log
    assert "updating to 2 users" not in log
