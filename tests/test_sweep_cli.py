"""`tfsbench sweep` end to end in subprocesses against the embedded target: the grid, resume, and
interruption by SIGINT (Ctrl-C), a second SIGINT, and SIGKILL, with no finished run lost or redone. Bad flags and
config files are checked in-process (helpers.cli)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli, run_tfsbench
from tfsbench.bench.results import load_result, load_results

ROOT = Path(__file__).resolve().parent.parent


def tfsbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_tfsbench(*args, timeout=timeout)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tfsbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def grid_args(url: str, out: Path, *, concurrency: str = "1,2", duration: str = "1s") -> list[str]:
    return ["sweep", "--url", url, "--model", "{kind}", "--kinds", "numeric", "--batch-sizes", "1,4",
            "--concurrency", concurrency, "--duration", duration, "--warmup", "0", "--out", str(out),
            "--no-progress"]


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def wait_for_runs(out: Path, proc: subprocess.Popen[str], n: int, timeout_s: float = 60.0) -> None:
    """Poll the manifest (which the sweep rewrites after each run) until n runs are listed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if len(manifest(out)["runs"]) >= n:
                return
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"sweep did not finish {n} runs in {timeout_s} s")


def stop_proc(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.slow
def test_sweep_runs_the_grid_and_resumes(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    first = tfsbench(*grid_args(tfs_url, out))
    assert first.returncode == 0, first.stderr
    ids = ["numeric-b1-row-c1", "numeric-b1-row-c2", "numeric-b4-row-c1", "numeric-b4-row-c2"]
    doc = manifest(out)
    assert doc["complete"] is True and doc["planned"] == ids
    assert doc["runs"] == [f"{i}.json" for i in ids]
    results = load_results([str(out)])
    assert [r.config.concurrency for r in results] == [1, 2, 1, 2]
    assert all(r.summary.ok > 0 and not r.partial for r in results)
    assert "numeric-b4-row-c2" in first.stdout  # the table
    mtimes = {i: (out / f"{i}.json").stat().st_mtime_ns for i in ids}

    again = tfsbench(*grid_args(tfs_url, out))
    assert again.returncode == 0, again.stderr
    for i in ids:
        assert f"skipped {i}: already finished" in again.stderr
    assert {i: (out / f"{i}.json").stat().st_mtime_ns for i in ids} == mtimes
    assert "4 skipped" in again.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_interrupt_keeps_finished_runs_and_resume_finishes(tfs_url: str, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "sweep"
    proc = start(*grid_args(tfs_url, out, duration="1.5s"))
    try:
        wait_for_runs(out, proc, 1)
        os.kill(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        stop_proc(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = manifest(out)
    assert doc["complete"] is False and doc["interrupted"] is True
    finished = [name[:-5] for name in doc["runs"]]
    assert 1 <= len(finished) < 4
    assert f"interrupted: {len(finished)} of 4 runs finished" in stderr
    for i in finished:
        assert not load_result(out / f"{i}.json").partial
    for name in doc["partial"]:  # the run that was going on: kept, marked partial
        assert load_result(out / name).partial is True
    mtimes = {i: (out / f"{i}.json").stat().st_mtime_ns for i in finished}

    resumed = tfsbench(*grid_args(tfs_url, out, duration="1.5s"))
    assert resumed.returncode == 0, resumed.stderr
    for i in finished:
        assert f"skipped {i}: already finished" in resumed.stderr
    assert {i: (out / f"{i}.json").stat().st_mtime_ns for i in finished} == mtimes
    doc = manifest(out)
    assert doc["complete"] is True and doc["partial"] == []
    assert len(load_results([str(out)])) == 4 and not any(r.partial for r in load_results([str(out)]))


@pytest.mark.slow
def test_sigkill_leaves_finished_runs_readable_and_resumable(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = start(*grid_args(tfs_url, out))
    try:
        wait_for_runs(out, proc, 2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop_proc(proc)
    doc = manifest(out)
    finished = [name[:-5] for name in doc["runs"]]
    assert doc["complete"] is False and len(finished) >= 2
    assert len(load_results([str(out)])) == len(finished)
    mtimes = {i: (out / f"{i}.json").stat().st_mtime_ns for i in finished}
    resumed = tfsbench(*grid_args(tfs_url, out))
    assert resumed.returncode == 0, resumed.stderr
    assert {i: (out / f"{i}.json").stat().st_mtime_ns for i in finished} == mtimes
    assert manifest(out)["complete"] is True


@pytest.mark.slow
def test_second_sigint_exits_at_once(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = start(*grid_args(tfs_url, out, concurrency="1", duration="30s"))
    try:
        deadline = time.monotonic() + 60
        while not (out / "manifest.json").exists():  # written after preflight, just before the first run
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        waited = time.monotonic() - t0
    finally:
        stop_proc(proc)
    assert proc.returncode == 130, stderr
    assert waited < 20  # far less than the 30 s run
    assert "Traceback" not in stderr
    assert manifest(out)["complete"] is False


@pytest.mark.parametrize("args, message", [
    (["--kinds", "numerc"], "did you mean 'numeric'"),
    (["--batch-sizes", "1,0"], "--batch-sizes"),
    (["--batch-sizes", "eight"], "--batch-sizes"),
    (["--concurrency", "1", "--rates", "5"], "not allowed with argument"),
    (["--duration", "10 parsecs"], "--duration"),
    (["--url", "localhost:8501"], "http:// or https://"),
    (["--rates", "0"], "--rates"),
    (["--arrival", "poisson"], "--arrival only applies to open-loop"),
    (["--image-size", "0x5"], "--image-size"),
    (["--processes", "3"], "--processes 3 is more than --concurrency"),
])
def test_bad_flags_exit_2_with_one_line_and_write_nothing(tmp_path: Path, args, message) -> None:
    out = tmp_path / "out"
    base = ["sweep", "--url", "http://127.0.0.1:9", "--model", "m", "--kinds", "numeric", "--batch-sizes", "1",
            "--concurrency", "1", "--out", str(out)]
    # later flags win in argparse, so appending overrides the base values
    if "--rates" in args and "--concurrency" not in args:
        base = base[:-4] + base[-2:]
    proc = cli(*base, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


def test_unreachable_target_exits_2_before_any_load(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("sweep", "--url", "http://127.0.0.1:9", "--model", "numeric", "--kinds", "numeric",
               "--batch-sizes", "1", "--concurrency", "1", "--duration", "1s", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # preflight fails before the announcement
    assert "error" in proc.stderr.strip().splitlines()[-1]
    assert not (out / "manifest.json").exists()


CONFIG = """
[sweep]
url = "{url}"
model = "{{kind}}"
kinds = ["numeric", "text"]
batch_sizes = [1]
concurrency = [1]
duration = "1s"
warmup = 0
out = "{out}"

[payload]
text_words = "4-8"

[check]
thresholds = ["error_rate<1%"]
"""


@pytest.mark.slow
def test_config_file_sweep(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "from-config"
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(CONFIG.format(url=tfs_url, out=out))
    proc = tfsbench("sweep", "--config", str(cfg), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = load_results([str(out)])
    assert [r.config.kind for r in results] == ["numeric", "text"]
    assert [r.config.model for r in results] == ["numeric", "text"]
    assert results[1].config.extra["payload"]["text_words"] == [4, 8]
    assert manifest(out)["thresholds"] == ["error_rate<1%"]


@pytest.mark.parametrize("mutation, message", [
    (("batch_sizes", "batch_size"), "unknown key 'batch_size' (did you mean 'batch_sizes'?)"),
    (("text_words", "text_word"), "unknown key 'text_word' (did you mean 'text_words'?)"),
    (('"4-8"', '"eight"'), "[payload]"),
    (("[check]", "[checks]"), "did you mean 'check'"),
    (("concurrency = [1]", "concurrency = [1.5]"), "concurrency must be an integer"),
])
def test_bad_config_file_exit_2(tmp_path: Path, mutation, message) -> None:
    cfg = tmp_path / "sweep.toml"
    text = CONFIG.format(url="http://127.0.0.1:9", out=tmp_path / "out")
    assert mutation[0] in text
    cfg.write_text(text.replace(*mutation))
    proc = cli("sweep", "--config", str(cfg))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(cfg) in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
