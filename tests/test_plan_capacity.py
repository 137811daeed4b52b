"""Capacity planning: the formula, the basis (search vs closed loop), expected latency, cost, warnings."""

from __future__ import annotations

import json
import math

import pytest
from helpers import cli
from reports_fixtures import (
    run_cli,
    synth,  # noqa: F401
)
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.payloads.errors import InputError
from tfsbench.reports.dataset import load_sources
from tfsbench.reports.plan import FORMULA, make_plan


@pytest.fixture(scope="module")
def sources(synth):  # noqa: F811
    return load_sources([str(synth["sweep"]), str(synth["search"])])


def _config(plan, kind, batch):
    return next(c for c in plan.configs if c.kind == kind and c.batch_size == batch)


def test_replicas_follow_the_stated_formula(sources) -> None:
    plan = make_plan(sources, parse_slo("p99<=20ms"), target_qps=5000, headroom=0.3)
    assert plan.formula == FORMULA
    for c in plan.configs:
        if c.feasible:
            assert c.replicas == math.ceil(c.demand_rps / (c.capacity_rps * 0.7) - 1e-9)
            assert c.per_replica_rps == pytest.approx(5000 / c.replicas)
            assert c.per_replica_rps <= c.capacity_rps * 0.7 + 1e-6


def test_search_results_are_preferred_and_the_basis_is_said(sources) -> None:
    slo = parse_slo("p99<=20ms")
    plan = make_plan(sources, slo, target_ips=10000)
    searched = _config(plan, "numeric", 8)
    assert searched.basis == "open-loop search"
    # capacity is the highest probe that met the SLO, judged with the plan's SLO
    met = [p for p in searched.points if p.met]
    assert searched.capacity_rps == max(p.throughput_rps for p in met)
    assert all(p.slo_value_ms <= 20.0 for p in met)
    assert _config(plan, "text", 1).basis == "closed-loop sweep"
    assert any("closed-loop" in w for w in plan.warnings)


def test_capacity_is_the_best_closed_loop_run_meeting_the_slo(sources) -> None:
    plan = make_plan(sources, parse_slo("p99<=20ms"), target_qps=100)
    c = _config(plan, "text", 1)
    passing = [p for p in c.points if p.met]
    assert passing and c.capacity_rps == max(p.throughput_rps for p in passing)
    assert c.slo_value_at_capacity_ms <= 20.0


def test_expected_latency_is_interpolated_at_the_per_replica_load(sources) -> None:
    plan = make_plan(sources, parse_slo("p99<=20ms"), target_qps=1000, headroom=0.3)
    c = _config(plan, "numeric", 1)
    pts = sorted((p for p in c.points if p.throughput_rps <= c.capacity_rps), key=lambda p: p.throughput_rps)
    lo = max((p for p in pts if p.throughput_rps <= c.per_replica_rps), key=lambda p: p.throughput_rps, default=None)
    hi = min((p for p in pts if p.throughput_rps >= c.per_replica_rps), key=lambda p: p.throughput_rps)
    if lo is None:
        assert c.expected_ms == pytest.approx(hi.slo_value_ms)
    else:
        assert min(lo.slo_value_ms, hi.slo_value_ms) - 1e-9 <= c.expected_ms <= max(lo.slo_value_ms, hi.slo_value_ms) + 1e-9
    assert c.expected_ms <= 20.0


def test_cost_per_million_predictions(sources) -> None:
    plan = make_plan(sources, parse_slo("p99<=20ms"), target_ips=8000, cost_per_replica_hour=2.0)
    for c in plan.configs:
        if c.feasible:
            assert c.cost_per_hour == pytest.approx(2.0 * c.replicas)
            assert c.cost_per_million == pytest.approx(c.cost_per_hour / (8000 * 3600) * 1e6)
    best = plan.best
    assert best is not None
    assert best.cost_per_million == min(c.cost_per_million for c in plan.configs if c.feasible)
    assert best.name in plan.recommendation and str(best.replicas) in plan.recommendation


def test_an_slo_nobody_meets_is_reported_not_hidden(sources) -> None:
    plan = make_plan(sources, parse_slo("p99<=0.01ms"), target_qps=10)
    assert plan.recommended is None and not any(c.feasible for c in plan.configs)
    assert "No configuration met" in plan.recommendation
    assert all(any("no measured load met" in w for w in c.warnings) for c in plan.configs)


def test_short_runs_are_warned_about(synth, tmp_path) -> None:  # noqa: F811
    from tfsbench.reports.synthetic import write_sweep

    write_sweep(tmp_path / "short", kinds=("image",), batch_sizes=(32,), concurrencies=(1, 2), duration_s=1.0)
    plan = make_plan(load_sources([str(tmp_path / "short")]), parse_slo("p99<=2s"), target_qps=10)
    assert any("too few to support a p99" in w for c in plan.configs for w in c.warnings)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "--target-qps"),
    ({"target_qps": 0.0}, "--target-qps"),
    ({"target_qps": 10.0, "headroom": 1.0}, "--headroom"),
    ({"target_ips": 10.0, "cost_per_replica_hour": -1.0}, "--cost-per-replica-hour"),
])
def test_bad_plan_arguments_raise_input_error(sources, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        make_plan(sources, parse_slo("p99<=20ms"), **kwargs)


@pytest.mark.slow
def test_plan_cli_prints_table_and_writes_plan_json_and_report(synth, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "plan"
    proc = run_cli("plan", synth["sweep"], synth["search"], "--slo", "p99<=20ms", "--target-ips", "6000",
                   "--cost-per-replica-hour", "0.5", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Capacity plan for SLO p99<=20ms" in proc.stdout
    assert "Recommendation" in proc.stdout and "ceil(target / (capacity x (1 - headroom)))" in proc.stdout
    doc = json.loads((out / "plan.json").read_text())
    assert doc["recommended_config"] and doc["headroom"] == 0.3 and doc["target_ips"] == 6000
    assert (out / "report.html").exists()


@pytest.mark.parametrize("args, needle", [
    (["--slo", "fast please", "--target-qps", "10"], "--slo"),
    (["--slo", "p99<=100ms", "--target-qps", "0"], "--target-qps"),
    (["--slo", "p99<=100ms"], "--target-qps"),
    (["--target-qps", "10"], "--slo"),
    (["--slo", "p99<=100ms", "--target-qps", "10", "--cost-per-replica-hour", "free"], "--cost-per-replica-hour"),
])
def test_plan_cli_bad_input(args, needle, synth, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "plan"
    proc = cli("plan", synth["sweep"], "--out", out, *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert not (out / "plan.json").exists() and not (out / "report.html").exists()


def test_plan_cli_bad_results_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = cli("plan", bad, "--slo", "p99<=100ms", "--target-qps", "10", "--out", tmp_path / "p")
    assert proc.returncode == 2 and "bad.json" in proc.stderr and "corrupt JSON" in proc.stderr
    assert not (tmp_path / "p" / "plan.json").exists()


def test_the_plan_recommends_only_from_stable_runs(sources) -> None:
    """The best run meeting the SLO was unstable: the capacity comes from the best stable one."""
    import dataclasses

    slo = parse_slo("p99<=20ms")
    before = _config(make_plan(sources, slo, target_qps=100), "text", 1)
    name = before.capacity_run

    def unsettle(run):
        if run.config.label_text() != name or run.config.kind != "text" or run.config.batch_size != 1:
            return run
        return dataclasses.replace(run, summary=dataclasses.replace(
            run.summary, stable=False, stability_reason="unstable: throughput differs by 30% across the thirds"))

    shaken = [dataclasses.replace(s, runs=tuple(unsettle(r) for r in s.runs)) for s in sources]
    after = _config(make_plan(shaken, slo, target_qps=100), "text", 1)
    assert after.capacity_run != name and after.capacity_rps < before.capacity_rps
    assert not any("was unstable" in w for w in after.warnings)
    assert any(p.run == name and not p.met and "unstable" in p.reason for p in after.points)
