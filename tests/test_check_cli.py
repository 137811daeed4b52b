"""`tfsbench check` end to end (one real subprocess, the rest in-process): exit 0/1/2, JUnit XML, Markdown
summary, bad input."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import CliOutcome, cli, run_tfsbench
from tfsbench.bench.results import save_result, write_json_atomic

from tests.test_check_gates import FIXTURE_V1, make_run

pytestmark = pytest.mark.xdist_group("test_check_cli")  # module fixtures built once, on one xdist worker


def tfsbench_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tfsbench check ARGS`: the wiring (entry point, exit 1 for a failed gate, files written)."""
    return run_tfsbench("check", *args)


def tfsbench(*args: str) -> CliOutcome:
    """`tfsbench check ARGS` in this process (helpers.cli): same status and streams, no 1.7 s of imports."""
    return cli("check", *args)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input files only (check reads them): built once per module, 4 x 5000-sample histograms."""
    tmp_path = tmp_path_factory.mktemp("runs")
    out: dict[str, Path] = {}
    for name, run in {
        "fast": make_run(median_ms=5.0, seed=1),
        "fast_again": make_run(median_ms=5.0, seed=2),
        "slow": make_run(median_ms=7.0, seed=3),
        "b16": make_run(batch_size=16, seed=4),
    }.items():
        out[name] = tmp_path / f"{name}.json"
        save_result(run, out[name])
    return out


def test_all_thresholds_pass_exit_0(runs: dict[str, Path]) -> None:
    r = tfsbench(str(runs["fast"]), "-t", "p99<1s", "-t", "error_rate<1%", "-t", "stable==true")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "check: passed: all 3 checks passed"


@pytest.mark.slow
def test_a_failing_threshold_exits_1_and_writes_junit_and_summary(runs: dict[str, Path], tmp_path: Path) -> None:
    junit = tmp_path / "out" / "check.xml"
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    r = tfsbench_process(
        str(runs["fast"]), str(runs["b16"]), "-t", "p99<1us", "-t", "p99<1s",
        "--junit", str(junit), "--summary", str(summary),
    )
    assert r.returncode == 1, r.stderr
    assert "FAIL" in r.stdout and "p99<0.001ms" in r.stdout
    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 4  # 2 thresholds x 2 configurations
    assert sum(c.find("failure") is not None for c in cases) == 2
    text = summary.read_text()
    assert text.startswith("# earlier step\n")  # appended, as $GITHUB_STEP_SUMMARY expects
    assert "2 of 4 checks failed" in text


@pytest.mark.slow
def test_baseline_regression_exits_1_and_noise_does_not(runs: dict[str, Path]) -> None:
    slow = tfsbench(str(runs["slow"]), "--baseline", str(runs["fast"]), "--max-regression", "10%")
    assert slow.returncode == 1, slow.stderr
    assert "worse" in slow.stdout or "regressed" in slow.stdout
    same = tfsbench(str(runs["fast_again"]), "--baseline", str(runs["fast"]), "--max-regression", "10%")
    assert same.returncode == 0, same.stdout + same.stderr


@pytest.mark.slow
def test_directories_of_runs_pair_by_configuration(tmp_path: Path) -> None:
    cur, base = tmp_path / "cur", tmp_path / "base"
    for d, seed in ((cur, 10), (base, 20)):
        names = []
        for b in (1, 8):
            save_result(make_run(batch_size=b, seed=seed + b), d / f"b{b}.json")
            names.append(f"b{b}.json")
        write_json_atomic(d / "manifest.json", {"type": "tfsbench.manifest", "runs": names})
    r = tfsbench(str(cur), "--baseline", str(base), "-t", "[batch=8] p50<1s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("baseline p99") == 2


def test_thresholds_from_a_sweep_config(runs: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(
        '[sweep]\nurl = "http://127.0.0.1:8501"\nmodel = "numeric"\nkinds = ["numeric"]\nbatch_sizes = [8]\n'
        '[check]\nthresholds = ["p99<1us"]\n'
    )
    r = tfsbench(str(runs["fast"]), "--config", str(config))
    assert r.returncode == 1, r.stderr
    assert "p99<0.001ms" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-t", "p99<50"], "add a unit"),
        (["-t", "p99x<50ms"], "unknown metric 'p99x'"),
        (["-t", "latency_p99<5ms"], "unknown metric"),
        (["-t", "[kind=image] p99<50ms"], "matches no run"),
        (["--max-regression", "lots"], "--max-regression"),
        (["--compare", "stable"], "cannot compare 'stable'"),
        ([], "nothing to check"),
    ],
)
def test_bad_input_is_one_line_exit_2(runs: dict[str, Path], args: list[str], needle: str) -> None:
    r = tfsbench(str(runs["fast"]), *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_unlike_baseline_is_refused_naming_fields(runs: dict[str, Path]) -> None:
    r = tfsbench(str(runs["fast"]), "--baseline", str(runs["b16"]))
    assert r.returncode == 2
    assert "refusing to compare unlike runs" in r.stderr and "batch_size (8 vs 16)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unreadable_results_are_bad_input(tmp_path: Path) -> None:
    missing = tfsbench(str(tmp_path / "nope.json"), "-t", "p99<1s")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    bad = tfsbench(str(junk), "-t", "p99<1s")
    assert bad.returncode == 2 and "corrupt JSON" in bad.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    r = tfsbench(str(other), "-t", "p99<1s")
    assert r.returncode == 2 and "not a tfsbench result" in r.stderr


def test_v1_fixture_is_checked_after_migration() -> None:
    r = tfsbench(str(FIXTURE_V1), "-t", "p99<1s", "-t", "error_rate<1%", "--baseline", str(FIXTURE_V1))
    assert r.returncode == 0, r.stdout + r.stderr
