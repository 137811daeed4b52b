"""Result files are written atomically: a reader sees the old file or the whole new one, a failed or
killed write leaves no half file and no temporary litter.

(A sweep killed with SIGKILL mid-way, its manifest and resuming it: tests/test_sweep_cli.py.)
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import kill_group
from tfsbench.bench.results import load_result, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_json_atomic(path, {"n": 1, "rows": list(range(1000))})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"n": 2, "rows": list(range(1000)) + [math.nan]})  # NaN: not JSON
    assert json.loads(path.read_text())["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.slow
def test_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    docs = [{"version": i, "runs": [f"run-{j}.json" for j in range(2000)]} for i in range(2)]
    write_json_atomic(path, docs[0])
    done = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(json.loads(path.read_text())["version"])  # raises on a torn read

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(150):
            write_json_atomic(path, docs[i % 2])
    finally:
        done.set()
        t.join(30)
    assert seen and set(seen) <= {0, 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.slow
def test_killing_a_run_mid_measurement_leaves_no_result_at_all(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsbench", "run", "--url", tfs_url, "--model", "numeric", "--concurrency", "2",
         "--duration", "30s", "--warmup", "0", "--out", str(out / "r.json")],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"), process_group=0)
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        while True:  # the preflight line comes right before load starts
            line = lines.get(timeout=60)
            assert line is not None, "tfsbench run exited before measuring"
            if line.startswith("preflight:"):
                break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    finally:
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert list(out.iterdir()) == []  # no result, no half result, no temporary file
    # and the same command, left alone, writes a loadable one (the kill was the only difference)
    done = subprocess.run(
        [sys.executable, "-m", "tfsbench", "run", "--url", tfs_url, "--model", "numeric", "--concurrency", "2",
         "--requests", "50", "--warmup", "0", "--quiet", "--out", str(out / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_result(out / "r.json").summary.requests == 50
    assert [p.name for p in out.iterdir()] == ["r.json"]
