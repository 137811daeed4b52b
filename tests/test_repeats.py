"""`tfsbench run --repeat N`: N result files and the mean with its 95% interval across them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from tfsbench.bench.orchestrate.repeats import repeat_paths, summarize
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, load_result

ROOT = Path(__file__).resolve().parent.parent


def _result(rps: float, p99: float) -> RunResult:
    lat = LatencySummary(mean=1, p50=1, p90=1, p95=1, p99=p99, p999=p99, max=p99)
    s = Summary(requests=100, ok=100, errors={}, throughput_rps=rps, throughput_ips=rps, latency_ms=lat,
                request_bytes=1, response_bytes=1, raw_bytes=1, stable=True, stability_reason="stable")
    cfg = RunConfig(url="http://127.0.0.1:1", model="m", kind="numeric", batch_size=1, format="row", mode="closed",
                    engine="fast", concurrency=1, duration_s=1.0)
    return RunResult(config=cfg, environment={}, summary=s)


def test_repeat_paths() -> None:
    assert repeat_paths(Path("r/a.json"), 1) == [Path("r/a.json")]
    assert repeat_paths(Path("r/a.json"), 3) == [Path("r/a-r1.json"), Path("r/a-r2.json"), Path("r/a-r3.json")]


def test_summary_is_the_student_t_interval_across_repeats() -> None:
    runs = [_result(1250.0, 10.0), _result(1300.0, 12.0), _result(1305.0, 11.0)]
    s = summarize(runs)
    assert s.throughput_rps.mean == pytest.approx(1285.0)
    # sd 30.41, t(0.975, 2) = 4.303: half-width 4.303 * 30.41 / sqrt(3) = 75.5
    assert s.throughput_rps.half_width == pytest.approx(75.55, abs=0.05)
    assert "1,285 ± 76 req/s" in s.lines()[0] and "3 of 3 stable" in s.lines()[0]
    one = summarize(runs[:1])
    assert "no interval" in one.lines()[0]
    unstable = dataclasses.replace(runs[0], summary=dataclasses.replace(runs[0].summary, stable=False))
    assert "2 of 3 stable" in summarize([unstable, *runs[1:]]).lines()[0]


@pytest.mark.slow
def test_run_cli_repeat_writes_each_repeat_and_the_interval(tfs_url: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "tfsbench", "run", "--url", tfs_url, "--model", "numeric",
                           "--concurrency", "2", "--duration", "1s", "--warmup", "0", "--repeat", "2",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    files = [tmp_path / "run-r1.json", tmp_path / "run-r2.json"]
    assert all(f.exists() for f in files) and not out.exists()
    assert all(load_result(f).summary.ok > 0 for f in files)
    assert "(mean and 95% CI over 2 repeats" in proc.stdout and " ± " in proc.stdout
