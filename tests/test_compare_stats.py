"""`tfsbench compare`: matched side-by-side changes, bootstrap significance, `~` for noise."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import cli
from reports_fixtures import (
    run_cli,
    synth,  # noqa: F401
)
from tfsbench.bench.stats.histograms import bootstrap_percentile, buckets
from tfsbench.reports.compare import compare_pair, compare_runs
from tfsbench.reports.dataset import all_runs, load_sources
from tfsbench.reports.synthetic import make_run


def test_a_run_against_itself_is_within_noise_everywhere() -> None:
    run = make_run("numeric", 8, concurrency=4)
    changes = compare_pair(run, run)
    assert all(not m.significant for m in changes.values())
    assert changes["p99"].change_text().startswith("~")
    lo, hi = changes["p99"].ci
    assert lo <= 0 <= hi


def test_a_faster_server_is_significantly_better() -> None:
    before = make_run("numeric", 8, concurrency=4, seed=1)
    after = make_run("numeric", 8, concurrency=4, seed=2, speed=1.5)
    changes = compare_pair(before, after)
    p99 = changes["p99"]
    assert p99.significant and p99.better is True and p99.rel_change < -0.2
    assert p99.ci[1] < 0, "the whole interval is below zero"
    assert p99.test == "bootstrap-histogram"
    assert changes["throughput_rps"].better is True


def test_a_small_change_is_noise_even_when_the_interval_excludes_zero() -> None:
    before = make_run("numeric", 8, concurrency=4, seed=1)
    after = make_run("numeric", 8, concurrency=4, seed=1, speed=1.02)  # 2% faster: below the 5% threshold
    assert not compare_pair(before, after)["p50"].significant


def test_same_seed_different_histograms_differ_only_within_noise() -> None:
    a = make_run("text", 1, concurrency=2, seed=5)
    b = make_run("text", 1, concurrency=2, seed=6)
    changes = compare_pair(a, b)
    assert not changes["p50"].significant


def test_exact_order_statistic_bootstrap_matches_resampling_requests() -> None:
    b = buckets(make_run("image", 8, concurrency=16).histogram)
    rng = np.random.default_rng(1)
    fast = bootstrap_percentile(b, 99.0, 2000, rng)
    requests = np.repeat(b.values_ms, b.counts)
    slow = np.array([np.sort(rng.choice(requests, size=requests.size))[int(np.floor(0.99 * requests.size + 0.5)) - 1]
                     for _ in range(300)])
    assert np.median(fast) == pytest.approx(np.median(slow), rel=0.02)
    assert np.percentile(fast, 97.5) - np.percentile(fast, 2.5) == pytest.approx(
        np.percentile(slow, 97.5) - np.percentile(slow, 2.5), rel=0.35)


def test_sweeps_are_matched_by_configuration_and_load(synth) -> None:  # noqa: F811
    a = all_runs(load_sources([str(synth["sweep"])]))
    b = all_runs(load_sources([str(synth["after"])]))
    extra = make_run("numeric", 64, concurrency=1)
    table = compare_runs(a, b + [extra])
    assert len(table.rows) == len(a)
    assert table.unmatched_b == (extra.config.label_text(),)
    for row in table.rows:
        assert row.a.config.label_text() == row.b.config.label_text()
    counts = table.summary_counts()
    assert counts["better"] > counts["worse"]


def test_locust_runs_without_histograms_fall_back_to_a_threshold(synth) -> None:  # noqa: F811
    run = all_runs(load_sources([str(synth["locust"])]))[0]
    slower = dataclasses.replace(run, summary=dataclasses.replace(
        run.summary, latency_ms=dataclasses.replace(run.summary.latency_ms, p99=run.summary.latency_ms.p99 * 2)))
    m = compare_pair(run, slower)["p99"]
    assert m.test == "threshold-only" and m.significant and m.better is False


@pytest.mark.slow
def test_compare_cli_prints_a_side_by_side_table(synth) -> None:  # noqa: F811
    a = next(synth["sweep"].glob("numeric-b8-row-c4.json"))
    b = synth["after"] / a.name
    proc = run_cli("compare", a, b)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "p99 (ms)" in out and "95% interval" in out and "bootstrap" in out
    assert "~" in out  # error rate and bytes are unchanged: within noise
    assert "better" in out


@pytest.mark.slow
def test_compare_cli_writes_a_report_with_the_comparison(synth, tmp_path) -> None:  # noqa: F811
    proc = cli("compare", synth["sweep"], synth["after"], "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert "Comparison: after vs sweep" in page
    assert (tmp_path / "cmp" / "comparison_1.png").exists()


def test_compare_cli_with_nothing_in_common_is_bad_input(synth, tmp_path) -> None:  # noqa: F811
    proc = cli("compare", synth["sweep"], synth["search"])
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "nothing" not in proc.stdout
    assert "no runs with the same configuration" in proc.stderr


def test_bootstrap_is_reproducible() -> None:
    a, b = make_run("numeric", 1, concurrency=1, seed=3), make_run("numeric", 1, concurrency=1, seed=4)
    c1 = compare_pair(a, b, seed=0)["p99"].ci
    c2 = compare_pair(a, b, seed=0)["p99"].ci
    assert c1 == c2
    assert compare_pair(a, b, seed=1)["p99"].ci != c1


def test_compare_cli_bad_results_file_is_one_line_exit_2(synth, tmp_path) -> None:  # noqa: F811
    newer = tmp_path / "newer.json"
    doc = json.loads(next(synth["sweep"].glob("text-*.json")).read_text())
    doc["schema_version"] = 999
    newer.write_text(json.dumps(doc))
    proc = cli("compare", synth["sweep"], newer, "--out", tmp_path / "cmp")
    assert proc.returncode == 2 and "newer.json" in proc.stderr and "newer than this tfsbench" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cmp").exists()
