"""`tfsbench compare A B` and `tfsbench check B --baseline A` agree: same numbers, same intervals,
same verdicts on every fixture pair, repeats included (issue 14 item 3, issue 17)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from helpers import cli
from tfsbench.bench.results import load_results
from tfsbench.reports import check as gates
from tfsbench.reports.compare import compare_runs
from tfsbench.reports.synthetic import make_run

FIX = Path(__file__).parent / "fixtures" / "results" / "issue17"
A = load_results(sorted(str(p) for p in (FIX / "a").glob("*.json")))
B = load_results(sorted(str(p) for p in (FIX / "b").glob("*.json")))
METRICS = ("p50", "p90", "p99", "mean", "throughput_rps", "throughput_ips")
MARK = {"same": "=", "noise": "~", "worse": "worse", "better": "better"}


def _sweep(speed: float, seed: int) -> list:
    return [make_run("numeric", b, concurrency=c, seed=seed + b + c, speed=speed) for b in (1, 8) for c in (1, 4)]


def _locust(speed: float) -> list:
    return [make_run("numeric", 1, concurrency=10, source="locust", with_histogram=False, speed=speed)]


PAIRS = {
    "issue17 single runs": (A[:1], B[:1]),
    "issue17 three repeats each": (A, B),
    "issue17 three vs one": (A, B[1:2]),
    "a run against itself": (A[1:2], A[1:2]),
    "30% faster": ([make_run("numeric", 8, concurrency=4, seed=1)],
                   [make_run("numeric", 8, concurrency=4, seed=2, speed=1.3)]),
    "8% slower, repeats": ([make_run("text", 1, concurrency=4, duration_s=4.0, seed=s) for s in (1, 2, 3)],
                           [make_run("text", 1, concurrency=4, duration_s=4.0, seed=s, speed=1 / 1.08)
                            for s in (4, 5, 6)]),
    "open loop": ([make_run("image", 8, rate_rps=40.0, concurrency=None, seed=3)],
                  [make_run("image", 8, rate_rps=40.0, concurrency=None, seed=4, speed=0.95)]),
    "sweep": (_sweep(1.0, 10), _sweep(1.2, 20)),
    "no histograms (Locust)": (_locust(1.0), _locust(0.7)),
}


@pytest.mark.parametrize("threshold", [0.05, 0.10])
@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.slow
def test_compare_and_check_agree(name: str, threshold: float) -> None:
    a, b = PAIRS[name]
    table = compare_runs(a, b, noise_threshold=threshold)
    compare_metrics = tuple(m for m in METRICS if m != "throughput_ips")
    outcome = gates.check_results(b, [], baseline=a, max_regression=threshold, compare_metrics=METRICS)
    assert table.rows and not table.unmatched_a and not table.unmatched_b
    by_config = {}
    for c in outcome.checks:
        by_config.setdefault(c.config, {})[c.name.removeprefix("baseline ")] = c
    assert len(by_config) == len(table.rows)
    from tfsbench.reports.compare import compare_pair

    for row in table.rows:
        label = row.label.split(" (")[0]
        checks = next(v for k, v in by_config.items() if k.split(" (")[0] == label)
        metrics = {**row.metrics, **compare_pair(row.a_runs, row.b_runs, noise_threshold=threshold,
                                                 metrics=("mean", "throughput_ips"))}
        for metric in (*compare_metrics, "throughput_ips"):
            m = metrics[metric]
            if metric not in checks:  # check skips a metric with no data on one side
                assert m.verdict == "n/a", (name, metric)
                continue
            c = checks[metric]
            assert (c.delta.a, c.delta.b, c.delta.rel_change, c.delta.ci) == (m.a, m.b, m.rel_change, m.ci), metric
            assert c.mark == MARK[m.verdict], (name, metric, m)
            assert c.passed == (m.verdict != "worse")


def _pct_in(text: str) -> list[str]:
    return re.findall(r"[-+]\d+\.\d%", text)


@pytest.mark.slow
def test_cli_compare_and_check_print_the_same_numbers_on_repeats() -> None:
    """The wiring: both commands on issue 17's directories, repeats pooled, same p99 and interval."""
    cmp = cli("compare", FIX / "a", FIX / "b", "--noise", "10%")
    chk = cli("check", FIX / "b", "--baseline", FIX / "a", "--compare", "p99,throughput_rps")
    assert cmp.returncode == 0, cmp.stderr
    assert chk.returncode in (0, 1), chk.stderr
    assert "Not matched" not in cmp.stdout and "pass one" not in chk.stderr
    row = compare_runs(A, B).rows[0].metrics
    p99_line = next(line for line in chk.stdout.splitlines() if "baseline p99" in line)
    assert f"{row['p99'].b:.3g}ms vs {row['p99'].a:.3g}ms" in p99_line
    cmp_p99 = next(line for line in cmp.stdout.splitlines() if line.lstrip("│ ").startswith("p99 (ms)"))
    assert _pct_in(p99_line)[-2:] == _pct_in(cmp_p99)[-2:]  # the same 95% interval, printed by both
    tp_line = next(line for line in chk.stdout.splitlines() if "baseline throughput_rps" in line)
    cmp_tp = next(line for line in cmp.stdout.splitlines() if "throughput (req/s)" in line)
    assert _pct_in(tp_line)[-2:] == _pct_in(cmp_tp)[-2:]


def test_pairs_table_covers_repeats_and_fallbacks() -> None:
    """Guard the table itself: it must keep exercising repeats and the no-histogram path."""
    assert any(len(a) > 1 and len(b) > 1 for a, b in PAIRS.values())
    assert any(all(r.histogram is None for r in a) for a, _ in PAIRS.values())
    assert all(dataclasses.is_dataclass(r) for a, b in PAIRS.values() for r in (*a, *b))


@pytest.mark.slow
@pytest.mark.serial  # asserts a 5 ms vs 10 ms target is > 30% apart: a fresh-clone CI run beside the niced
# parallel pass measured the 5 ms target at a 9.6 ms p50 (29.7% from the 10 ms one's 12.4 ms)
def test_real_runs_against_two_embedded_targets(tfs_server) -> None:
    """Issue 17's scenario, shortened: repeats against a 5 ms and a 10 ms target, pooled by both tools."""
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import RunConfig

    def runs(url: str) -> list:
        config = RunConfig(url=url, model="numeric", kind="numeric", batch_size=1, format="row", mode="closed",
                           engine="fast", concurrency=2, duration_s=1.0, warmup_s=0.3, timeout_s=10.0)
        return [run_benchmark(config) for _ in range(2)]

    a, b = runs(tfs_server(service_time="5ms")), runs(tfs_server(service_time="10ms"))
    row = compare_runs(a, b, noise_threshold=0.10).rows[0]
    assert len(row.a_runs) == len(row.b_runs) == 2
    outcome = gates.check_results(b, [], baseline=a, compare_metrics=("p50", "p99", "throughput_rps"))
    checks = {c.name.removeprefix("baseline "): c for c in outcome.checks}
    for metric in ("p50", "p99", "throughput_rps"):
        m, c = row.metrics[metric], checks[metric]
        assert (c.delta.a, c.delta.b, c.delta.ci) == (m.a, m.b, m.ci)
        assert c.mark == MARK[m.verdict]
    assert row.metrics["p50"].verdict == "worse" and row.metrics["p50"].rel_change > 0.3
    tp = row.metrics["throughput_rps"]  # 1 whole window per run: no interval, judged on twice the threshold
    assert tp.ci is None and "too few whole windows" in tp.note and tp.verdict == "worse"
    assert outcome.exit_status == 1
