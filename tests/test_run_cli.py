"""`tfsbench run` in a subprocess: a real run, bad input (one line, exit 2, nothing written), Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import CliOutcome, cli, free_port, run_tfsbench
from tfsbench.bench.results import load_result

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_tfsbench("run", *args, timeout=timeout)


def _in_process(*args: str) -> CliOutcome:
    """`tfsbench run ARGS` through main() in this process (helpers.cli): bad input needs no new interpreter."""
    return cli("run", *args)


@pytest.mark.slow
def test_a_run_writes_a_result_and_prints_a_summary(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _cli("--url", tfs_url, "--model", "text", "--kind", "text", "--batch-size", "2", "--rate", "100",
                "--arrival", "poisson", "--duration", "1500ms", "--warmup", "0.5s", "--engine", "aiohttp",
                "--header", "Authorization: Bearer test-token", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "target: POST " + tfs_url + "/v1/models/text:predict" in proc.stderr
    assert "open loop, 100 req/s poisson" in proc.stderr
    assert "schedule lag" in proc.stdout and "throughput" in proc.stdout
    result = load_result(out)
    s = result.summary
    assert s.ok == s.requests > 80 and s.errors == {}
    assert result.config.mode == "open" and result.config.arrival == "poisson" and result.config.batch_size == 2
    assert result.environment["target"]["model_status"]["model_version_status"]
    assert "python" in result.environment and "packages" in result.environment
    assert not result.partial


@pytest.mark.parametrize(("args", "fragment"), [
    (["--duration", "3x"], "--duration"),
    (["--duration", "0s"], "--duration"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "two"], "--batch-size"),
    (["--rate", "-5"], "--rate"),
    (["--timeout", "soon"], "--timeout"),
    (["--header", "NoColonHere"], "--header"),
    (["--processes", "3"], "--processes 3 is more than --concurrency 2"),
    (["--version", "1", "--label", "stable"], "not allowed with"),
])
def test_bad_arguments_are_one_line_exit_2(tfs_url: str, tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "r.json"
    base = ["--url", tfs_url, "--model", "numeric", "--out", str(out)]
    if "--rate" not in args:
        base += ["--concurrency", "2"]
    proc = _in_process(*base, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and fragment in lines[-1] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_unreachable_url_is_one_line_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _in_process("--url", f"http://127.0.0.1:{free_port()}", "--model", "numeric", "--concurrency", "1",
                "--out", str(out))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tfsbench run: error: cannot reach") and "refused" in last.lower()
    assert "Traceback" not in proc.stderr and not out.exists()


def test_url_without_scheme_is_rejected(tmp_path: Path) -> None:
    proc = _in_process("--url", "localhost:8501", "--model", "m", "--concurrency", "1", "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "http://" in proc.stderr.strip().splitlines()[-1]


def test_unknown_model_shows_tf_servings_message(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _in_process("--url", tfs_url, "--model", "nosuchmodel", "--concurrency", "1", "--out", str(out))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "Could not find any versions of model nosuchmodel" in last  # TF Serving's own words
    assert not out.exists()


def test_payload_the_model_rejects_is_one_line_exit_2(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _in_process("--url", tfs_url, "--model", "numeric", "--kind", "text", "--concurrency", "1", "--out", str(out))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "rejected" in last and "HTTP 400" in last and "not of expected type" in last
    assert not out.exists()


def _start_and_wait_for_load(args: list[str], own_group: bool = False,
                             ) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "run", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, process_group=0 if own_group else None)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while True:  # wait for the first progress line: the load is running
        line = lines.get(timeout=60)
        seen.append(line)
        if " measure: " in line:
            return proc, lines


@pytest.mark.parametrize(("sig", "processes"), [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 2)])
@pytest.mark.slow
def test_interrupt_writes_a_partial_result_and_exits_130(tfs_url: str, tmp_path: Path, sig: int,
                                                          processes: int) -> None:
    out = tmp_path / "partial.json"
    args = ["--url", tfs_url, "--model", "numeric", "--concurrency", "2", "--duration", "60s", "--warmup", "0s",
            "--processes", str(processes), "--out", str(out)]
    proc, _lines = _start_and_wait_for_load(args, own_group=processes > 1)
    try:
        if processes > 1:
            os.killpg(proc.pid, sig)  # like Ctrl-C in a terminal: the whole process group gets it
        else:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    doc = json.loads(out.read_text())
    assert doc["partial"] is True
    assert signal.Signals(sig).name in doc["partial_reason"]
    result = load_result(out)
    s = result.summary
    assert s.requests > 0 and s.ok + sum(s.errors.values()) == s.requests
    assert not s.stable
    assert result.environment["client"]["processes"] == processes
    assert "PARTIAL" in stdout


@pytest.mark.slow
def test_second_interrupt_exits_at_once(tfs_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = tfs_server(faults="delay=3s:1.0")  # every request takes 3 s: the grace period is still running
    out = tmp_path / "never.json"
    args = ["--url", url, "--model", "numeric", "--concurrency", "2", "--duration", "60s", "--warmup", "0s",
            "--out", str(out)]
    proc, lines = _start_and_wait_for_load(args)
    try:
        proc.send_signal(signal.SIGINT)
        while "stopping" not in lines.get(timeout=30):  # acknowledged (signals do not queue)
            pass
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        rest = []
        try:  # the pump thread may still be delivering the last lines
            while not any("second SIGINT" in line for line in rest):
                rest.append(lines.get(timeout=5))
        except queue.Empty:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert any("second SIGINT" in line for line in rest)
    assert not out.exists()


@pytest.mark.slow
def test_kind_auto_by_request_count_in_two_processes(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "auto.json"
    proc = _cli("--url", tfs_url, "--model", "image", "--version", "2", "--kind", "auto", "--batch-size", "2",
                "--concurrency", "2", "--requests", "40", "--warmup", "0s", "--processes", "2", "--quiet",
                "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = load_result(out)
    s = result.summary
    assert s.requests == 40 and s.ok == 40  # exactly the measured requests asked for, split over 2 processes
    assert result.config.kind == "auto" and result.config.version == 2 and result.config.duration_s is None
    assert result.environment["client"]["processes"] == 2
    assert result.environment["target"]["metadata"]["metadata"]["signature_def"]  # fetched by preflight
    assert s.raw_bytes > 0 and s.request_bytes > s.raw_bytes  # b64 JSON costs more than the raw bytes
