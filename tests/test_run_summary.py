"""tfsbench.reports.run_summary: the end-of-run summary of `tfsbench run` shows the server's view (schema v2)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
from tfsbench.reports.run_summary import server_lines

from tests.test_check_gates import make_run

SERVER_RE = re.compile(r"server p50 ([\d.]+) ms, p99 ([\d.]+) ms \(TF Serving request_latency, ([\d,]+) requests\)")
GAP_RE = re.compile(r"client - server p50 (-?[\d.]+) ms, p99 (-?[\d.]+) ms: JSON, HTTP, network, queueing")
OK_RE = re.compile(r"ok ([\d,]+), errors")


@pytest.mark.slow
def test_tfsbench_run_prints_server_latency_and_the_gap(tfs_url: str, tmp_path) -> None:
    out = tmp_path / "run.json"
    r = subprocess.run(
        [sys.executable, "-m", "tfsbench", "run", "--url", tfs_url, "--model", "numeric", "--kind", "numeric",
         "--concurrency", "2", "--duration", "1s", "--warmup", "0.3s", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    server, gap, ok = SERVER_RE.search(r.stdout), GAP_RE.search(r.stdout), OK_RE.search(r.stdout)
    assert server and gap and ok, r.stdout
    s50, s99, requests = float(server[1]), float(server[2]), int(server[3].replace(",", ""))
    client_ok = int(ok[1].replace(",", ""))
    assert 0 < s50 <= s99
    # in flight at either window edge (2 x concurrency), plus those answered while each scrape was on the wire:
    # a scrape takes milliseconds, a few requests at 2,800 req/s (one CI run: 2,825 counted for 2,830); a window
    # that counted the warm-up too would be hundreds off
    assert client_ok > 0 and abs(requests - client_ok) <= 4 + 0.005 * client_ok
    # the gap is the client's time outside the server's clock: never much below zero (bucket interpolation)
    assert float(gap[1]) > -0.5 * s50 - 0.05


def test_server_lines_give_the_reason_when_the_metric_is_missing() -> None:
    run = make_run(n=100)
    assert server_lines(run) == []  # schema v1 or --server-metrics off: nothing to say
    missing = dataclasses.replace(run, server={"found": False, "error": "no Prometheus metrics at http://x/m"})
    assert server_lines(missing) == ["server latency not measured: no Prometheus metrics at http://x/m"]


def test_server_lines_subtract_server_from_client_percentiles() -> None:
    run = make_run(median_ms=5.0, n=2000)
    server = {"found": True, "requests": 2000, "latency_ms": {"p50": 1.0, "p99": 2.0}}
    first, second = server_lines(dataclasses.replace(run, server=server))
    assert first == "server p50 1.00 ms, p99 2.00 ms (TF Serving request_latency, 2,000 requests)"
    lat = run.summary.latency_ms
    assert f"p50 {lat.p50 - 1.0:.2f} ms, p99 {lat.p99 - 2.0:.2f} ms" in second
