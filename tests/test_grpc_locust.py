"""The Locust gRPC user: a headless run against the embedded target's gRPC port, its payload CSV and
exported result (protocol grpc), and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tfsbench.bench.results import load_result
from tfsbench.server.testing import ServerThread

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfiles" / "grpc_user.py")


def _locust(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def grpc_port():
    server = ServerThread(grpc_port=0)
    server.start()
    try:
        yield server.grpc_port
    finally:
        server.stop()


@pytest.mark.slow
def test_headless_run_reports_and_exports(grpc_port, tmp_path):
    proc = _locust("-H", f"grpc://127.0.0.1:{grpc_port}", "--model", "numeric", "--kind", "numeric",
                   "--batch-size", "4", "-u", "2", "-r", "2", "-t", "2s", "--csv", str(tmp_path / "loc"),
                   "--tfs-result", str(tmp_path / "r.json"), "--only-summary")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"target: gRPC Predict at grpc://127.0.0.1:{grpc_port}" in proc.stderr
    rows = (tmp_path / "loc_payload.csv").read_text().splitlines()
    assert rows[1].startswith("numeric b=4 grpc,4,")
    sidecar = json.loads((tmp_path / "loc_tfsbench.json").read_text())
    assert sidecar["failures"] == 0 and sidecar["requests"] > 20
    result = load_result(tmp_path / "r.json")
    assert result.config.protocol == "grpc" and result.summary.ok == sidecar["requests"]


@pytest.mark.parametrize(("args", "fragment"), [
    (["-H", "http://127.0.0.1:8501", "--model", "numeric"], "is not a gRPC address grpc://HOST:PORT"),
])
@pytest.mark.slow
def test_bad_host_is_one_line(args, fragment):
    proc = _locust(*args, "-t", "1s")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr


@pytest.mark.slow
def test_unknown_model_is_one_line(grpc_port):
    proc = _locust("-H", f"grpc://127.0.0.1:{grpc_port}", "--model", "nope", "-t", "1s")
    assert proc.returncode == 2
    assert "NOT_FOUND: Could not find any versions of model nope" in proc.stderr
