"""selfbench: the static targets (nginx and the built-in server), the parsers of wrk's and Locust's
output, and the whole command in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import cli
from tfsbench.bench.orchestrate.selfbench import (
    PREDICT_PATH,
    REQUEST_BODY,
    STATIC_BODY,
    nginx_config,
    parse_locust_json,
    parse_wrk,
    static_target,
)

ROOT = Path(__file__).resolve().parent.parent

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:44601/v1/models/selfbench:predict
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.01ms  212.00us   4.11ms   80.00%
    Req/Sec    63.75k     2.10k   66.00k    70.00%
  196848 requests in 3.10s, 38.12MB read
  Non-2xx or 3xx responses: 48
Requests/sec:  63432.57
Transfer/sec:     12.29MB
"""


def test_parse_wrk_counts_only_successes() -> None:
    rate = parse_wrk(WRK_OUTPUT, 3.0)
    assert rate.requests == 196848 and rate.errors == 48
    assert rate.rps == pytest.approx(63432.57 * (196848 - 48) / 196848)
    assert parse_wrk("unable to connect to 127.0.0.1:1 Connection refused", 1.0).rps is None


def test_parse_locust_json() -> None:
    text = json.dumps([{"name": "/v1/models/selfbench:predict", "method": "POST", "num_requests": 1000,
                        "num_failures": 10, "start_time": 100.0, "last_request_timestamp": 102.0}])
    rate = parse_locust_json("some log line\n" + text, 3.0)
    assert rate.rps == pytest.approx(495.0) and rate.requests == 1000 and rate.errors == 10
    assert parse_locust_json("not json", 3.0).rps is None


def post(url: str) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url + PREDICT_PATH, data=REQUEST_BODY, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read(), resp.headers.get("Content-Type", "")


@pytest.mark.parametrize("prefer", ["nginx", "builtin"])
def test_static_target_answers_and_is_stopped(prefer: str) -> None:
    if prefer == "nginx" and shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed")  # the built-in case below still runs
    with static_target(prefer) as target:
        assert target.kind == prefer
        assert target.url.startswith("http://127.0.0.1:")
        for _ in range(3):  # keep-alive or not, every request gets the static body
            status, body, ctype = post(target.url)
            assert (status, body) == (200, STATIC_BODY) and ctype.startswith("application/json")
        proc = target.proc
    assert proc.poll() is not None  # stopped by PID when the block ends


def test_nginx_config_stays_in_its_directory(tmp_path: Path) -> None:
    conf = nginx_config(tmp_path, 12345)
    assert "listen 127.0.0.1:12345" in conf and "daemon off;" in conf and "access_log off;" in conf
    for line in conf.splitlines():
        if line.strip().split(" ")[0] in ("pid", "error_log") or "_temp_path" in line:
            assert str(tmp_path) in line


@pytest.mark.slow
def test_selfbench_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "selfbench.json"
    proc = subprocess.run([sys.executable, "-m", "tfsbench", "selfbench", "--duration", "1s", "--connections", "8", "--rounds", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["type"] == "tfsbench.selfbench" and doc["connections"] == 8
    rates = {r["tool"]: r for r in doc["rates"]}
    assert set(rates) == {"wrk", "fast", "aiohttp", "locust"}
    for tool in ("fast", "aiohttp"):
        assert rates[tool]["rps"] > 0 and rates[tool]["errors"] == 0
    for tool in ("wrk", "locust"):  # external tools: measured when installed, else a note says why
        assert rates[tool]["rps"] is None and rates[tool]["note"] or rates[tool]["rps"] > 0
    if rates["wrk"]["rps"]:
        assert doc["ratios"]["fast/wrk"] == pytest.approx(rates["fast"]["rps"] / rates["wrk"]["rps"])
    if rates["locust"]["rps"]:
        assert doc["ratios"]["aiohttp/locust"] == pytest.approx(rates["aiohttp"]["rps"] / rates["locust"]["rps"])
    assert "fast/wrk" in proc.stdout and "req/s" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--connections", "0"], "--connections"),
    (["--duration", "soon"], "--duration"),
    (["--tools", "fast,ab"], "unknown tool 'ab'"),
    (["--target", "apache"], "--target"),
])
def test_selfbench_bad_input(tmp_path: Path, args, message) -> None:
    proc = cli("selfbench", *args, "--out", str(tmp_path / "x.json"))  # in-process; the wiring test is above
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_rounds_rotate_order_and_ratios_are_medians_of_paired_rounds(monkeypatch) -> None:
    import contextlib

    import tfsbench.bench.orchestrate.selfbench as sb

    calls: list[str] = []
    # round r: background load slows every tool by the same factor; fast is always 0.9x wrk
    slow = {0: 1.0, 1: 0.5, 2: 0.8}
    base = {"wrk": 1000.0, "fast": 900.0}

    def fake_measure(tool, url, connections, duration_s, cpus, workdir):
        r = len(calls) // 2
        calls.append(tool)
        return sb.ToolRate(tool, base[tool] * slow[r], requests=10, duration_s=duration_s)

    @contextlib.contextmanager
    def fake_target(prefer, cpus=None):
        class Proc:
            def poll(self):
                return None

        yield sb.RunningTarget("builtin", "http://127.0.0.1:1", "fake", Proc())  # type: ignore[arg-type]

    monkeypatch.setattr(sb, "_measure", fake_measure)
    monkeypatch.setattr(sb, "static_target", fake_target)
    result = sb.run_selfbench(1.0, 4, tools=("wrk", "fast"), rounds=3, pin=False, log=lambda m: None)
    assert calls == ["wrk", "fast", "fast", "wrk", "wrk", "fast"]
    assert result.rate("wrk") == 800.0 and result.rate("fast") == 720.0  # medians
    assert result.ratio_rounds["fast/wrk"] == (0.9, 0.9, 0.9)
    assert result.ratios["fast/wrk"] == pytest.approx(0.9)
    assert result.ratios["aiohttp/locust"] is None
