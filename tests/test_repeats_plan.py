"""The capacity plan reads repeats at the conservative end of their 95% interval (low throughput,
high SLO statistic) and says so; a repeat that fails for another reason is left out and named."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.reports.dataset import Source
from tfsbench.reports.plan import make_plan
from tfsbench.reports.synthetic import make_run

T975_2 = 4.302653  # Student t, 97.5th percentile, 2 degrees of freedom


def run(concurrency: int, rps: float, p99: float, seed: int = 0, stable: bool = True):
    r = make_run("numeric", 1, concurrency=concurrency, seed=seed)
    lat = dataclasses.replace(r.summary.latency_ms, p99=p99)
    return dataclasses.replace(r, summary=dataclasses.replace(
        r.summary, throughput_rps=rps, latency_ms=lat, stable=stable, requests=5000, ok=5000,
        stability_reason="stable" if stable else "unstable: throughput varies 30% across windows"))


def plan_of(runs, slo="p99<=50ms", target=1000.0):
    return make_plan([Source(path="sweep", kind="sweep", runs=tuple(runs))], parse_slo(slo), target_qps=target,
                     headroom=0.0)


def test_capacity_is_the_low_end_of_the_repeats_interval_and_the_plan_says_so() -> None:
    runs = [run(1, 100.0, 5.0)] + [run(4, t, 20.0, seed=i) for i, t in enumerate((380.0, 400.0, 420.0))]
    plan = plan_of(runs, target=1100.0)
    c = plan.configs[0]
    low = 400.0 - T975_2 * 20.0 / math.sqrt(3)
    assert c.capacity_rps == pytest.approx(low, rel=1e-5)  # not the mean 400, not the best repeat 420
    assert c.replicas == 4  # 1100 / 350.3 = 3.1; the mean (400 req/s) would have bought 3
    assert "conservative end of the 95% CI over 3 repeats" in c.capacity_note
    assert "conservative end" in plan.recommendation and "(x3)" in c.capacity_run
    assert c.points[-1].repeats == 3 and c.points[-1].throughput_mean_rps == pytest.approx(400.0)


def test_the_slo_is_judged_at_the_high_end_of_the_interval() -> None:
    # mean p99 40 ms meets p99<=50ms, but the high end (40 + 4.30 * 10 / sqrt(3) = 64.8 ms) does not
    runs = [run(1, 100.0, 5.0)] + [run(4, 400.0, p, seed=i) for i, p in enumerate((30.0, 40.0, 50.0))]
    c = plan_of(runs).configs[0]
    assert c.capacity_rps == pytest.approx(100.0)  # the level of one run, as measured
    top = c.points[-1]
    assert not top.met and "high end of the 95% CI" in top.reason
    assert top.slo_value_ms == pytest.approx(40.0 + T975_2 * 10.0 / math.sqrt(3), rel=1e-5)


def test_an_unstable_repeat_is_left_out_and_named() -> None:
    runs = [run(4, 400.0, 20.0, seed=0), run(4, 410.0, 21.0, seed=1), run(4, 900.0, 5.0, seed=2, stable=False)]
    c = plan_of(runs).configs[0]
    assert c.points[0].throughput_mean_rps == pytest.approx(405.0)
    assert "1 of 3 left out (unstable run" in c.points[0].reason
    assert c.feasible


def test_single_runs_are_read_as_before() -> None:
    c = plan_of([run(1, 100.0, 5.0), run(4, 400.0, 20.0)]).configs[0]
    assert c.capacity_rps == 400.0 and c.capacity_note == "" and c.points[-1].repeats == 1


def test_one_usable_repeat_has_no_interval_and_says_so() -> None:
    runs = [run(4, 400.0, 20.0, seed=0), run(4, 800.0, 5.0, seed=1, stable=False),
            run(4, 900.0, 5.0, seed=2, stable=False)]
    c = plan_of(runs).configs[0]
    assert c.capacity_rps == 400.0
    assert "only 1 of 3 repeats was usable" in c.capacity_note
    assert any("1 usable repeat of 3" in w for w in c.warnings)
    none = plan_of([run(4, 800.0, 7.0, seed=s, stable=False) for s in range(2)]).configs[0]
    assert not none.feasible and "measured 7.0 ms" in none.expected_note


def test_runs_of_two_inputs_are_not_repeats() -> None:
    before = [run(4, 400.0, 20.0, seed=0)]
    after = [run(4, 520.0, 15.0, seed=1)]
    plan = make_plan([Source(path="before", kind="sweep", runs=tuple(before)),
                      Source(path="after", kind="sweep", runs=tuple(after))], parse_slo("p99<=50ms"),
                     target_qps=1000.0, headroom=0.0)
    c = plan.configs[0]
    assert all(p.repeats == 1 for p in c.points) and c.capacity_rps == 520.0


def test_a_throughput_interval_reaching_zero_cannot_set_a_capacity() -> None:
    runs = [run(1, 100.0, 5.0)] + [run(4, t, 20.0, seed=i) for i, t in enumerate((100.0, 900.0))]  # t(2) = 12.7
    c = plan_of(runs).configs[0]
    assert c.capacity_rps == 100.0 and "too noisy to size from" in c.points[-1].reason
