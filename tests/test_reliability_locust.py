"""The Locust users under the faults tests/test_locust_faults.py leaves out: server stalls longer
than `--request-timeout`, HTTP 500s and slow body trickles, in one headless run.

Locust runs in a subprocess (importing it here would monkey-patch the test process); its CSV and
the tfsbench sidecar are turned into a run result with `tfsbench locust-export`. The run must end
on time, classify every failure, account for every request, and never wait out a stall.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import kill_group
from tfsbench.bench.results import load_result

ROOT = Path(__file__).resolve().parent.parent
USERS = 3
RUN_S = 4
TIMEOUT_S = 0.3


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


@pytest.mark.slow
def test_locust_users_under_stalls_500s_and_trickles(tfs_server: Callable[..., str], tmp_path: Path) -> None:
    url = tfs_server(faults="status=500:10%,trickle=30ms:10%,stall=700ms/1s,seed=5")
    prefix = tmp_path / "run"
    log = tmp_path / "locust.log"
    started = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"), "--headless",
             "-H", url, "--model", "numeric", "--kind", "numeric", "--request-timeout", str(TIMEOUT_S),
             "-u", str(USERS), "-r", str(USERS * 10), "-t", f"{RUN_S}s", "--csv", str(prefix), "--only-summary"],
            cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
            process_group=0,
        )
        try:
            code = proc.wait(timeout=90)
        finally:
            kill_group(proc, wait_s=10)
    elapsed_s = time.monotonic() - started
    text = log.read_text()
    assert code == 1, text  # Locust's rule: any failure -> exit 1
    assert "Traceback" not in text and "Uncaught exception" not in text, text
    assert elapsed_s < RUN_S + 20, elapsed_s  # on time, start-up and shut-down included
    assert f"target: POST {url}/v1/models/numeric:predict" in text  # it said what it would load

    export = subprocess.run(
        [sys.executable, "-m", "tfsbench", "locust-export", "--csv-prefix", str(prefix), "--out",
         str(tmp_path / "run.json")], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    result = load_result(tmp_path / "run.json")
    s = result.summary
    sidecar = json.loads(Path(f"{prefix}_tfsbench.json").read_text())
    assert s.ok + sum(s.errors.values()) == s.requests  # every request counted exactly once
    assert sidecar["requests"] == s.requests
    assert 0 <= sidecar["attempts"] - s.requests <= USERS  # only those cut off at the stop are missing
    assert sidecar["max_users"] == USERS  # the closed loop's concurrency held
    assert set(s.errors) == {"http_500", "timeout"}, s.errors  # stalls are timeouts; trickles succeed
    # 70% of every second is stalled: each user times out about three times a second in it
    assert s.errors["timeout"] >= USERS * RUN_S, s.errors
    assert s.ok > 0
    # successes did not wait out stalls (p99, not max: on a loaded machine a starved client process can
    # stretch a sample or two, and a timeout that fired late would show in many)
    assert s.latency_ms.p99 < TIMEOUT_S * 1000 + 100, s.latency_ms
