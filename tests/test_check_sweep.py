"""`tfsbench sweep --config bench.toml --check`: one command runs the grid and gates it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CliOutcome, cli

CONFIG = """
[sweep]
url = "{url}"
model = "numeric"
kinds = ["numeric"]
batch_sizes = [1]
concurrency = [2]
duration = "1s"
warmup = "0.3s"
out = "{out}"

[check]
thresholds = [{thresholds}]
"""


def sweep(tmp_path: Path, url: str, thresholds: str, *extra: str) -> CliOutcome:
    """`tfsbench sweep --config` in this process (helpers.cli); test_sweep_cli runs the real entry point."""
    config = tmp_path / "bench.toml"
    config.write_text(CONFIG.format(url=url, out=tmp_path / "sweep", thresholds=thresholds))
    return cli("sweep", "--config", str(config), "--no-progress", "--no-resume", *extra)


@pytest.mark.slow
def test_sweep_check_passes_and_fails_on_the_config_thresholds(tfs_url: str, tmp_path: Path) -> None:
    ok = sweep(tmp_path, tfs_url, '"error_rate<50%", "p99<10s"', "--check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "check: passed: all 2 checks passed" in ok.stdout
    bad = sweep(tmp_path, tfs_url, '"p99<1us"', "--check")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout and "p99<0.001ms" in bad.stdout


def test_sweep_check_without_thresholds_is_bad_input_before_load(tfs_url: str, tmp_path: Path) -> None:
    r = sweep(tmp_path, tfs_url, "", "--check")
    assert r.returncode == 2
    assert "--check needs thresholds" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sweep").exists()


def test_sweep_config_with_a_bad_threshold_is_refused(tfs_url: str, tmp_path: Path) -> None:
    r = sweep(tmp_path, tfs_url, '"p99 < soon"', "--check")
    assert r.returncode == 2
    assert "[check] thresholds" in r.stderr and "not a time" in r.stderr
