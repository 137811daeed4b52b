"""The statistics core's intervals: Student t quantiles against published table values, and the
mean-of-repeats interval other modules (repeats, plan) lean on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tfsbench.bench.stats.intervals import Interval, bootstrap_ci, mean_ci, percentile_interval, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 4, 2.7764), (0.975, 9, 2.2622),
     (0.975, 30, 2.0423), (0.95, 5, 2.0150), (0.995, 10, 3.1693), (0.975, 1000, 1.9623)],
)
def test_t_quantile_matches_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-4)


def test_mean_ci_uses_student_t() -> None:
    iv = mean_ci([1250.0, 1285.0, 1320.0])
    sd = 35.0
    half = 4.302653 * sd / math.sqrt(3)
    assert iv.mean == pytest.approx(1285.0)
    assert iv.low == pytest.approx(1285.0 - half, rel=1e-6)
    assert iv.high == pytest.approx(1285.0 + half, rel=1e-6)
    assert iv.half_width == pytest.approx(half, rel=1e-6)
    assert iv.n == 3
    assert iv.conservative(higher_is_better=True) == iv.low
    assert iv.conservative(higher_is_better=False) == iv.high


def test_one_repeat_has_no_interval() -> None:
    iv = mean_ci([42.0])
    assert iv == Interval(42.0, None, None, 1)
    assert not iv.has_interval and iv.half_width is None
    assert iv.conservative(higher_is_better=True) == 42.0
    with pytest.raises(ValueError):
        mean_ci([])


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    hits = sum(mean_ci(rng.normal(10.0, 2.0, size=4)).excludes(10.0) is False for _ in range(2000))
    assert 0.93 <= hits / 2000 <= 0.97


def test_bootstrap_ci_and_percentile_interval() -> None:
    iv = bootstrap_ci(np.arange(100.0))
    assert iv.mean == pytest.approx(49.5)
    assert iv.low < 49.5 < iv.high
    assert iv.high - iv.low == pytest.approx(2 * 1.96 * np.std(np.arange(100.0)) / 10, rel=0.15)
    assert not bootstrap_ci([3.0]).has_interval
    assert percentile_interval(np.array([1.0, np.nan] * 4)) is None


def test_across_repeats_of_real_runs() -> None:
    from pathlib import Path

    from tfsbench.bench.results import load_results
    from tfsbench.bench.stats.pooling import across_repeats, throughput_across_repeats

    runs = load_results(sorted(str(p) for p in (Path(__file__).parent / "fixtures/results/issue17/a").glob("*.json")))
    tp = across_repeats(runs, "throughput_rps")
    assert tp == throughput_across_repeats(runs)
    assert tp.n == 3 and tp.low < tp.mean < tp.high
    assert tp.mean == pytest.approx(np.mean([r.summary.throughput_rps for r in runs]))
    p99 = across_repeats(runs, "p99")
    assert p99.mean == pytest.approx(np.mean([r.summary.latency_ms.p99 for r in runs]))
    assert not across_repeats(runs[:1], "p99").has_interval
