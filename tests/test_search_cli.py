"""`tfsbench search` end to end in subprocesses against the embedded target."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli, run_tfsbench
from tfsbench.bench.results import load_results

ROOT = Path(__file__).resolve().parent.parent


def tfsbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_tfsbench(*args, timeout=timeout)


@pytest.mark.slow
def test_search_probes_up_to_hi_and_reports(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "search"
    # A generous SLO, so every probe passes: the search doubles from --lo and stops at --hi.
    proc = tfsbench("search", "--slo", "p99<=2s", "--url", tfs_url, "--model", "numeric", "--kind", "numeric",
                    "--batch-size", "2", "--lo", "40", "--hi", "160", "--duration", "1s", "--warmup", "0",
                    "--allow-unstable", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["kind"] == "search" and doc["complete"] is True and doc["slo"] == "p99<=2000ms"
    rates = [p["rate_rps"] for p in doc["search"]["probes"]]
    assert rates == [40.0, 80.0, 160.0]
    assert doc["search"]["best_rate_rps"] == 160.0 and "--hi" in doc["search"]["reason"]
    probes = load_results([str(out)])
    assert [r.config.rate_rps for r in probes] == rates
    assert all(r.config.mode == "open" and r.config.batch_size == 2 for r in probes)
    assert all(r.summary.ok > 0 for r in probes)
    assert "best rate meeting p99<=2000ms: 160 req/s" in proc.stdout


@pytest.mark.slow
def test_search_with_closed_loop_estimate(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "search"
    proc = tfsbench("search", "--slo", "p99<=2s", "--url", tfs_url, "--model", "numeric", "--kind", "numeric",
                    "--estimate-concurrency", "2", "--max-probes", "1", "--duration", "1s", "--warmup", "0",
                    "--allow-unstable", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "manifest.json").read_text())
    estimate = doc["search"]["estimate_rps"]
    assert estimate > 0 and doc["search"]["estimate"] == "estimate-c2.json"
    assert (out / "estimate-c2.json").exists()
    (probe,) = doc["search"]["probes"]
    assert probe["rate_rps"] == pytest.approx(estimate / 2, rel=0.01)  # the bracket starts at half the ceiling
    assert "closed-loop estimate at concurrency 2" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--slo", "p99<=50"], "--slo"),
    (["--slo", "p42<=50ms"], "--slo"),
    (["--lo", "100", "--hi", "50"], "--lo 100 must be below --hi 50"),
    (["--tolerance", "2"], "--tolerance"),
    (["--lo", "-5"], "--lo"),
    (["--max-probes", "0"], "--max-probes"),
    (["--batch-size", "0"], "--batch-size"),
    (["--url", "127.0.0.1:8501"], "http:// or https://"),
])
def test_search_bad_input_exit_2(tmp_path: Path, args, message) -> None:
    out = tmp_path / "out"
    base = ["search", "--slo", "p99<=50ms", "--url", "http://127.0.0.1:9", "--model", "m", "--kind", "numeric",
            "--out", str(out)]
    proc = cli(*base, *args)  # in-process (helpers.cli)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_search_without_an_answer_exits_1(tfs_url: str, tmp_path: Path) -> None:
    """No rate meets the SLO: the search's question has no answer, which a CI job must see."""
    out = tmp_path / "out"
    proc = tfsbench("search", "--slo", "p99<=1us", "--url", tfs_url, "--model", "numeric", "--kind", "numeric",
                    "--lo", "20", "--max-probes", "1", "--duration", "1s", "--warmup", "0", "--allow-unstable",
                    "--out", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "no rate found meeting p99<=0.001ms" in proc.stdout
    assert json.loads((out / "manifest.json").read_text())["search"]["best_rate_rps"] is None


def test_search_unknown_model_exit_2_before_load(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = cli("search", "--slo", "p99<=50ms", "--url", tfs_url, "--model", "nope", "--kind", "numeric",
               "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "nope" in last and "Traceback" not in proc.stderr
    assert not (out / "manifest.json").exists()


@pytest.mark.slow
def test_search_sigint_keeps_the_probe_and_exits_130(tfs_url: str, tmp_path: Path) -> None:
    import os
    import signal
    import time

    out = tmp_path / "search"
    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "search", "--slo", "p99<1s", "--url", tfs_url,
                             "--model", "numeric", "--kind", "numeric", "--lo", "50", "--duration", "30s",
                             "--warmup", "0", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (out / "manifest.json").exists():  # written once preflight passed, before the probe
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["complete"] is False and doc["interrupted"] is True
    assert doc["runs"] == [] and doc["partial"] == ["probe-01-r50.json"]
    assert load_results([str(out / "probe-01-r50.json")])[0].partial is True
    assert "interrupted" in stdout
