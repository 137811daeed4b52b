"""Over-saturation stop for sweeps (bench/orchestrate/saturation.py, applied by bench/orchestrate/sweep.py):
the rule on constructed curves, and a real sweep against an embedded target that saturates."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tfsbench.bench.orchestrate.grid import SweepPlan
from tfsbench.bench.orchestrate.saturation import saturated
from tfsbench.bench.orchestrate.sweep import run_sweep
from tfsbench.bench.results import RunConfig
from tfsbench.reports.synthetic import make_run


def _run(concurrency: int, rps: float, p50_ms: float, **kw):
    run = make_run("numeric", 1, concurrency=concurrency, **kw)
    s = run.summary
    return dataclasses.replace(run, summary=dataclasses.replace(
        s, throughput_rps=rps, latency_ms=dataclasses.replace(s.latency_ms, p50=p50_ms)))


def test_rule_fires_only_when_throughput_is_flat_and_latency_climbs():
    rising = [_run(1, 100, 10), _run(2, 190, 10.5), _run(4, 350, 11.5)]
    assert saturated(rising) is None
    knee = rising + [_run(8, 420, 19), _run(16, 425, 38), _run(32, 430, 75)]
    why = saturated(knee)
    assert why is not None and "8, 16, 32" in why and "420.0 -> 425.0 -> 430.0" in why
    # flat throughput but latency not climbing by x1.5: a plateau, not saturation
    assert saturated([_run(8, 420, 19), _run(16, 425, 20), _run(32, 430, 21)]) is None
    # latency climbing while throughput still grows 5% or more: keep going
    assert saturated([_run(8, 400, 19), _run(16, 415, 38), _run(32, 421, 75)]) is None
    # order of the list does not matter; partial runs are not judged
    assert saturated(list(reversed(knee))) == why
    partial = dataclasses.replace(_run(32, 430, 75), partial=True, partial_reason="stop")
    assert saturated(knee[:-1] + [partial]) is None


@pytest.mark.slow
def test_sweep_skips_load_levels_past_saturation(tfs_server, tmp_path):
    # one request at a time, 20 ms each: ~50 req/s whatever the concurrency, and queueing grows with it
    url = tfs_server(num_threads=1, service_time="20ms")
    base = RunConfig(url=url, model="numeric", kind="numeric", batch_size=1, format="row", mode="closed",
                     engine="fast", duration_s=1.0, warmup_s=0.2)
    plan = SweepPlan(base=base, kinds=("numeric",), batch_sizes=(1,), formats=("row",),
                     concurrencies=(1, 2, 4, 8, 16, 32))
    out = run_sweep(plan, tmp_path / "sweep", progress=False, log=lambda _m: None)
    # from c=2 on the server is the bottleneck: throughput flat, p50 doubling with each level, so the
    # series stops after three such levels (c=1 may still be below the plateau; noise may cost a level)
    level = {f"numeric-b1-row-c{c}": c for c in (1, 2, 4, 8, 16, 32)}
    assert 3 <= len(out.finished_ids) <= 5 and out.saturated
    assert set(out.finished_ids) | set(out.saturated) == set(level)
    assert max(level[r] for r in out.finished_ids) < min(level[r] for r in out.saturated)
    manifest = json.loads((tmp_path / "sweep" / "manifest.json").read_text())
    assert manifest["complete"] is True and set(manifest["saturated"]) == set(out.saturated)
    assert "throughput rose by less than 5%" in manifest["saturation_rule"]
    # the report says so
    from tfsbench.reports.build import build_report
    from tfsbench.reports.dataset import load_sources

    files = build_report(load_sources([str(tmp_path / "sweep")]), tmp_path / "report")
    html = files.html.read_text()
    assert "over-saturation stop" in html and "numeric-b1-row-c32 not run: saturated" in html
    # and without the stop every level runs
    short = dataclasses.replace(plan, concurrencies=(1, 2, 4, 8))
    full = run_sweep(short, tmp_path / "full", progress=False, log=lambda _m: None, stop_when_saturated=False,
                     resume=False)
    assert len(full.finished_ids) == 4 and not full.saturated
