"""examples/ci: the shell script runs the whole flow against the embedded target; the workflow is valid."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "examples" / "ci"
SCRIPT = CI / "bench-gate.sh"


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread() as url:
        yield url


def gate(url: str, out: Path, *thresholds: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("GITHUB_STEP_SUMMARY", None)
    full_env.update(
        TFSBENCH=f"{sys.executable} -m tfsbench", OUT=str(out), DURATION="1s", WARMUP="0.3s",
        BATCH_SIZES="1", CONCURRENCY="2", READY_TIMEOUT_S="20",
    )
    full_env.update(env)
    return subprocess.run(
        ["bash", str(SCRIPT), url, *thresholds], capture_output=True, text=True, timeout=240, env=full_env, cwd=ROOT
    )


@pytest.mark.slow
def test_lax_thresholds_pass_and_everything_is_written(target: str, tmp_path: Path) -> None:
    out = tmp_path / "ci"
    r = gate(target, out, "error_rate<50%", "p99<10s", "throughput_ips>=1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check: passed: all 3 checks passed" in r.stdout
    root = ET.parse(out / "junit.xml").getroot()
    assert len(root.findall("./testsuite/testcase")) == 3 and root.find("testsuite").get("failures") == "0"
    assert "all 3 checks passed" in (out / "summary.md").read_text()
    assert (out / "report" / "report.html").is_file()
    assert (out / "sweep" / "manifest.json").is_file()


@pytest.mark.slow
def test_impossible_threshold_fails_with_exit_1_and_still_reports(target: str, tmp_path: Path) -> None:
    out = tmp_path / "ci"
    r = gate(target, out, "p99<1us")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL" in r.stdout and "p99<0.001ms" in r.stdout
    root = ET.parse(out / "junit.xml").getroot()
    assert root.find("testsuite").get("failures") == "1"
    assert (out / "report" / "report.html").is_file()


def test_bad_threshold_exits_2_before_any_load(target: str, tmp_path: Path) -> None:
    out = tmp_path / "ci"
    r = gate(target, out, "p99<fast")
    assert r.returncode == 2
    assert "not a time" in r.stderr
    assert not (out / "sweep").exists()


@pytest.mark.slow
def test_unreachable_url_exits_2(tmp_path: Path) -> None:
    r = gate("http://127.0.0.1:9", tmp_path / "ci", "p99<1s", READY_TIMEOUT_S="1")
    assert r.returncode == 2


def test_sweep_config_with_check_table_is_valid() -> None:
    from tfsbench.bench.orchestrate.sweep import load_sweep_config
    from tfsbench.reports.check import parse_threshold

    sf = load_sweep_config(CI / "bench.toml")
    assert sf.thresholds and all(parse_threshold(t) for t in sf.thresholds)


def test_github_workflow_runs_tf_serving_as_a_service_and_the_same_script() -> None:
    import yaml

    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    job = doc["jobs"]["bench"]
    service = job["services"]["tfserving"]
    assert service["image"].startswith("tensorflow/serving")
    assert "8501:8501" in service["ports"]
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "examples/ci/bench-gate.sh" in runs
    assert "docker/export_models.py" in runs
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()"
    assert (ROOT / "docker" / "export_models.py").is_file()

