"""Locust's web UI cannot choose where files are written, and only its own page can start a swarm.

A real Locust (subprocess, web UI on loopback) and real HTTP POSTs to `/swarm`: a form naming an
output location (`tfs_result`, `csv_prefix`, `html_file`) is refused with `success: false` and one line (what Locust's UI shows under its form); a POST
from another origin is refused with 403; the file given at start-up is the one written at quit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port, kill_group
from tfsbench.locustfiles.webui import cross_origin, refused_fields

ROOT = Path(__file__).resolve().parent.parent


def _post(url: str, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    body = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def locust_web(tfs_url, tmp_path):
    port = free_port()
    good = tmp_path / "good.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "locust.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "tfserving.py"), "--web-host",
         "127.0.0.1", "--web-port", str(port), "-H", tfs_url, "--model", "numeric", "-t", "60s",
         "--tfs-result", str(good)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        process_group=0,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get_json(base + "/stats/requests")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
            time.sleep(0.2)  # polling a server that is starting, not standing in for synchronisation
        yield base, proc, good, tmp_path
    finally:
        kill_group(proc, wait_s=10)
        log.close()


@pytest.mark.slow
def test_swarm_form_cannot_move_output_files_or_come_from_elsewhere(locust_web, tfs_url):
    base, proc, good, tmp_path = locust_web
    form = {"user_count": "1", "spawn_rate": "5", "host": tfs_url, "model": "numeric"}
    own = {"Origin": base, "Referer": base + "/"}

    for field, value in (("tfs_result", tmp_path / "evil.json"), ("csv_prefix", tmp_path / "evil"),
                         ("html_file", tmp_path / "evil.html")):
        status, doc = _post(base + "/swarm", {**form, field: str(value)}, own)
        assert status == 200, (field, status, doc)  # Locust's UI shows messages of 200 answers only
        assert doc["success"] is False and field in doc["message"] and "web UI" in doc["message"]
    assert _get_json(base + "/stats/requests")["state"] == "ready"

    for origin in ("http://evil.example", f"http://127.0.0.1:{free_port()}", "null"):
        status, doc = _post(base + "/swarm", form, {"Origin": origin})
        assert status == 403, (origin, status, doc)
        assert doc["success"] is False
    status, doc = _post(base + "/swarm", form, {"Referer": "http://evil.example/page"})
    assert status == 403, doc
    status, _ = _post(base + "/stop", {}, {"Origin": "http://evil.example"})
    assert status == 403
    assert _get_json(base + "/stats/requests")["state"] == "ready"

    status, doc = _post(base + "/swarm", form, own)
    assert (status, doc["success"]) == (200, True), doc
    deadline = time.monotonic() + 20
    while sum(s["num_requests"] for s in _get_json(base + "/stats/requests")["stats"] if s["name"] != "Aggregated") < 5:
        assert time.monotonic() < deadline, "no requests recorded"
        time.sleep(0.1)  # polling the run's progress, not standing in for synchronisation
    assert _post(base + "/stop", {}, own)[0] == 200
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)

    assert json.loads(good.read_text())["schema_version"] >= 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("evil")) == []


def test_refused_fields_allows_the_start_form_only():
    parsed = {"num_users": 1, "host": "", "tfs_result": "", "csv_prefix": None, "html_file": None,
              "model": "numeric", "batch_size": 1, "logfile": None, "web_port": 8089}
    assert refused_fields(parsed, ["user_count", "spawn_rate", "host", "run_time", "model", "batch_size"]) == []
    assert refused_fields(parsed, ["tfs_result", "logfile", "web_port", "unknown_field"]) == [
        "logfile", "tfs_result", "web_port"]


def test_cross_origin_compares_host_and_port():
    assert cross_origin({}, "127.0.0.1:8089") is None
    assert cross_origin({"Origin": "http://127.0.0.1:8089"}, "127.0.0.1:8089") is None
    assert cross_origin({"Referer": "http://127.0.0.1:8089/x"}, "127.0.0.1:8089") is None
    assert cross_origin({"Origin": "http://127.0.0.1:8090"}, "127.0.0.1:8089") == "http://127.0.0.1:8090"
    assert cross_origin({"Origin": "null"}, "127.0.0.1:8089") == "null"
    assert cross_origin({"Referer": "http://127.0.0.1.evil:8089/"}, "127.0.0.1:8089") is not None
