"""SLO parsing, probe verdicts and the bracket-and-bisect search (against a simulated server whose
p99 grows with the offered rate; the real engine is exercised in test_search_cli.py)."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
from tfsbench.bench.orchestrate.search import judge_probe, run_search
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, load_results
from tfsbench.bench.stats.slo import Slo, parse_slo
from tfsbench.payloads.errors import InputError

BASE = RunConfig(url="http://127.0.0.1:1", model="numeric", kind="numeric", batch_size=1, format="row",
                 mode="closed", engine="fast", concurrency=8, duration_s=1.0)


@pytest.mark.parametrize("text, metric, op, bound", [
    ("p99<=50ms", "p99", "<=", 50.0),
    ("p99<0.05s", "p99", "<", 50.0),
    ("p95 <= 120 ms", "p95", "<=", 120.0),
    ("P50<500us", "p50", "<", 0.5),
    ("p99.9<1s", "p999", "<", 1000.0),
    ("mean<=2.5ms", "mean", "<=", 2.5),
    ("max<1e3ms", "max", "<", 1000.0),
])
def test_parse_slo(text, metric, op, bound) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.op, slo.bound_ms) == (metric, op, pytest.approx(bound))
    assert parse_slo(str(slo)) == slo


@pytest.mark.parametrize("text", ["p99<=50", "p99>=50ms", "p98<50ms", "p99<=-5ms", "p99<=0ms", "", "50ms",
                                  "p99<=50msx", "p99 = 50ms"])
def test_parse_slo_rejects(text) -> None:
    with pytest.raises(InputError) as info:
        parse_slo(text)
    assert "\n" not in str(info.value)


def summary(p99: float, *, rps: float, ok: int = 1000, errors: int = 0, stable: bool = True,
            saturated: bool = False) -> Summary:
    lat = LatencySummary(mean=p99 / 3, p50=p99 / 3, p90=p99 / 2, p95=p99 / 1.5, p99=p99, p999=p99 * 1.5,
                         max=p99 * 2)
    return Summary(requests=ok + errors, ok=ok, errors={"http_500": errors} if errors else {}, throughput_rps=rps,
                   throughput_ips=rps, latency_ms=lat, request_bytes=1, response_bytes=1, raw_bytes=1,
                   stable=stable, stability_reason="stable" if stable else "p99 varies 30% across windows",
                   client_saturated=saturated)


def test_slo_met_by() -> None:
    slo = parse_slo("p99<=50ms")
    assert slo.met_by(summary(50.0, rps=1))
    assert not slo.met_by(summary(50.01, rps=1))
    assert not parse_slo("p99<50ms").met_by(summary(50.0, rps=1))
    assert not slo.met_by(summary(1.0, rps=0, ok=0))  # no responses: nothing met
    assert slo.value_ms(summary(7.0, rps=1)) == 7.0


@pytest.mark.parametrize("kw, passed, reason", [
    ({}, True, "ok"),
    ({"p99": 60.0}, False, "p99 60.00 ms misses p99<=50ms"),
    ({"errors": 20}, False, "error rate"),
    ({"rps": 90.0}, True, "ok"),  # Poisson: 900 arrivals in a window of a nominal 1000, all answered
    ({"stable": False}, False, "unstable"),
    ({"saturated": True}, False, "saturated"),
    ({"ok": 600}, False, "too few samples for p99: 600 < 1000"),
])
def test_judge_probe(kw, passed, reason) -> None:
    args = {"p99": 10.0, "rps": 100.0}
    args.update(kw)
    p99, rps = args.pop("p99"), args.pop("rps")
    cfg = dataclasses.replace(BASE, mode="open", rate_rps=100.0, concurrency=None)
    result = RunResult(config=cfg, environment={}, summary=summary(p99, rps=rps, **args))
    ok, why = judge_probe(result, parse_slo("p99<=50ms"))
    assert ok is passed and reason in why


class SimulatedServer:
    """An M/M/1-like server with capacity `mu` req/s: p99 ~ 1/(mu - rate), saturated above mu."""

    def __init__(self, mu: float = 1000.0) -> None:
        self.mu = mu
        self.rates: list[float | None] = []
        self.seeds: list[int] = []

    def __call__(self, config, *, headers=None, progress=None, stop=None, pool=None, environment=None):
        self.seeds.append(config.seed)
        if config.mode == "closed":
            self.rates.append(None)
            return RunResult(config=config, environment={}, summary=summary(5.0, rps=self.mu * 0.95))
        rate = config.rate_rps
        self.rates.append(rate)
        achieved = min(rate, self.mu * 0.98)
        p99 = 1000.0 * 4.6 / max(self.mu - rate, 1e-3) if rate < self.mu else 5000.0
        return RunResult(config=config, environment={}, summary=summary(p99, rps=achieved))


def no_preflight(config, headers=None):
    return None


def test_search_brackets_then_bisects_to_the_slo_rate(tmp_path: Path) -> None:
    # p99 <= 46 ms  <=>  mu - rate >= 100  <=>  rate <= 900 req/s
    server = SimulatedServer(mu=1000.0)
    out = run_search(BASE, parse_slo("p99<=46ms"), tmp_path, progress=False, runner=server,
                     preflight_fn=no_preflight, log=lambda m: None, tolerance=0.02, max_probes=12)
    assert server.rates[0] is None  # closed-loop estimate first
    assert server.rates[1] == pytest.approx(475.0)  # half the estimate
    assert server.rates[2] == pytest.approx(950.0)  # doubled, then fails
    assert out.best_rate_rps is not None and 880.0 <= out.best_rate_rps <= 900.0
    assert "converged" in out.reason
    passed = [v.rate_rps for v in out.verdicts if v.passed]
    failed = [v.rate_rps for v in out.verdicts if not v.passed]
    assert max(passed) == out.best_rate_rps and min(failed) > out.best_rate_rps
    assert (min(failed) - max(passed)) <= 0.02 * min(failed)
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest["kind"] == "search" and manifest["complete"] is True
    assert manifest["search"]["slo"] == "p99<=46ms"
    assert manifest["search"]["best_rate_rps"] == out.best_rate_rps
    assert len(manifest["search"]["probes"]) == len(out.probes) == len(load_results([str(tmp_path)]))


def test_search_goes_down_when_the_first_probe_fails(tmp_path: Path) -> None:
    server = SimulatedServer(mu=100.0)
    out = run_search(BASE, parse_slo("p99<=100ms"), tmp_path, lo_rps=80.0, progress=False, runner=server,
                     preflight_fn=no_preflight, log=lambda m: None)
    assert server.rates[:2] == [80.0, 40.0]  # fail at 80 (p99 230 ms), halve
    assert out.best_rate_rps is not None and 40.0 <= out.best_rate_rps <= 54.0


def test_search_respects_hi_and_max_probes(tmp_path: Path) -> None:
    server = SimulatedServer(mu=10_000.0)
    out = run_search(BASE, parse_slo("p99<=50ms"), tmp_path / "a", lo_rps=100.0, hi_rps=300.0, progress=False,
                     runner=server, preflight_fn=no_preflight, log=lambda m: None)
    assert server.rates == [100.0, 200.0, 300.0]
    assert out.best_rate_rps == 300.0 and "--hi" in out.reason
    server2 = SimulatedServer(mu=1000.0)
    out2 = run_search(BASE, parse_slo("p99<=46ms"), tmp_path / "b", lo_rps=100.0, max_probes=3, progress=False,
                      runner=server2, preflight_fn=no_preflight, log=lambda m: None)
    assert len(out2.verdicts) == 3 and out2.best_rate_rps == 400.0


def test_search_nothing_passes(tmp_path: Path) -> None:
    server = SimulatedServer(mu=1.0)
    out = run_search(BASE, parse_slo("p99<=1ms"), tmp_path, lo_rps=4.0, progress=False, runner=server,
                     preflight_fn=no_preflight, log=lambda m: None)
    assert out.best_rate_rps is None and "no probed rate met the SLO" in out.reason


def test_search_stops_on_interrupt(tmp_path: Path) -> None:
    stop = threading.Event()
    server = SimulatedServer(mu=1000.0)

    def runner(config, **kw):
        result = server(config, **kw)
        if len(server.rates) == 3:
            stop.set()
            return dataclasses.replace(result, partial=True, partial_reason="interrupted")
        return result

    out = run_search(BASE, parse_slo("p99<=46ms"), tmp_path, progress=False, runner=runner, stop=stop,
                     preflight_fn=no_preflight, log=lambda m: None)
    assert out.interrupted and len(out.verdicts) == 2 and out.verdicts[-1].partial
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest["complete"] is False and manifest["interrupted"] is True
    assert manifest["runs"] == [out.verdicts[0].file]


def test_slo_dataclass_validates() -> None:
    with pytest.raises(InputError):
        Slo("p98", "<", 1.0)
    with pytest.raises(InputError):
        Slo("p99", ">", 1.0)


def test_achieved_rate_is_judged_against_the_realised_schedule() -> None:
    """A Poisson probe at a nominal 11.7 req/s whose window held 315 arrivals (10.5/s over 30 s), all
    answered: it kept up with its schedule. Judged against the nominal rate it failed before."""
    from tfsbench.bench.orchestrate.search import Rules, classify

    cfg = dataclasses.replace(BASE, mode="open", rate_rps=11.7, concurrency=None, arrival="poisson")
    s = dataclasses.replace(summary(40.0, rps=10.5, ok=1050), measured_s=100.0)
    assert classify(RunResult(config=cfg, environment={}, summary=s), Rules(parse_slo("p99<=100ms"))) == ("pass", "ok")
    cancelled = dataclasses.replace(s, requests=1150, errors={"cancelled": 8}, ok=1050)  # 100 never answered
    outcome, why = classify(RunResult(config=cfg, environment={}, summary=cancelled), Rules(parse_slo("p99<=100ms")))
    assert outcome == "fail" and "of the 1150 arrivals scheduled" in why


def test_a_lag_under_a_quarter_of_the_slo_keeps_a_pass_a_pass() -> None:
    """5% of sends late with a 4 ms p99 lag under a 25 ms SLO (an idle VM's timer wake-ups): the latency
    judged already includes the lag, so the pass stands; a 10 ms lag p99 makes the probe inconclusive."""
    from tfsbench.bench.orchestrate.search import Rules, classify

    cfg = dataclasses.replace(BASE, mode="open", rate_rps=90.0, concurrency=None, arrival="poisson")
    rules = Rules(parse_slo("p99<=25ms"))
    base = dataclasses.replace(summary(20.0, rps=90.0, ok=1800), measured_s=20.0, late_requests=90)

    def lagging(p99_ms: float) -> Summary:
        return dataclasses.replace(base, schedule_lag_ms=dataclasses.replace(base.latency_ms, p99=p99_ms))

    assert classify(RunResult(config=cfg, environment={}, summary=lagging(4.0)), rules) == ("pass", "ok")
    outcome, why = classify(RunResult(config=cfg, environment={}, summary=lagging(10.0)), rules)
    assert outcome == "inconclusive" and "behind its schedule" in why and "25% of the SLO" in why


class FlakyServer(SimulatedServer):
    """Meets the SLO everywhere below mu, but the first measurement of each rate is unstable."""

    def __call__(self, config, **kw):
        result = super().__call__(config, **kw)
        if config.mode == "open" and self.rates.count(config.rate_rps) == 1:
            return dataclasses.replace(result, summary=dataclasses.replace(result.summary, stable=False))
        return result


def test_inconclusive_probes_are_measured_again_not_counted_as_slo_failures(tmp_path: Path) -> None:
    server = FlakyServer(mu=1000.0)
    out = run_search(BASE, parse_slo("p99<=46ms"), tmp_path, lo_rps=400.0, progress=False, runner=server,
                     preflight_fn=no_preflight, log=lambda m: None, tolerance=0.05)
    first = out.verdicts[0]
    assert (first.rate_rps, first.outcome, first.attempt) == (400.0, "inconclusive", 1)
    assert (out.verdicts[1].rate_rps, out.verdicts[1].outcome, out.verdicts[1].attempt) == (400.0, "pass", 2)
    assert out.best_rate_rps is not None and 850.0 <= out.best_rate_rps <= 900.0  # same answer as a steady server
    open_seeds = [seed for seed, rate in zip(server.seeds, server.rates, strict=True) if rate is not None]
    assert open_seeds[:2] == [BASE.seed, BASE.seed + 1]  # the re-measure is a new sample, not a replay
    manifest = json.loads(out.manifest_path.read_text())
    assert [p["outcome"] for p in manifest["search"]["probes"]][:2] == ["inconclusive", "pass"]


def test_probes_measure_long_enough_for_their_percentile() -> None:
    from tfsbench.bench.orchestrate.search import MAX_PROBE_S, probe_bound_s

    assert probe_bound_s(10.0, 23.4, parse_slo("p99<=100ms")) == MAX_PROBE_S  # 3000 samples: 128 s, capped
    assert probe_bound_s(10.0, 40.0, parse_slo("p99<=100ms")) == pytest.approx(3000 / 40.0)  # 75 s, not 10
    assert probe_bound_s(10.0, 5000.0, parse_slo("p99<=100ms")) == 10.0
    assert probe_bound_s(10.0, 50.0, parse_slo("p99.9<=100ms")) == MAX_PROBE_S


def test_an_slo_missed_in_an_unstable_run_is_measured_again() -> None:
    from tfsbench.bench.orchestrate.search import Rules, classify

    cfg = dataclasses.replace(BASE, mode="open", rate_rps=100.0, concurrency=None)
    stalled = RunResult(config=cfg, environment={}, summary=summary(240.0, rps=100.0, stable=False))
    assert classify(stalled, Rules(parse_slo("p99<=25ms"))) == ("inconclusive",
                                                                 "p99 240.00 ms misses p99<=25ms in an unstable run")
    assert classify(stalled, Rules(parse_slo("p99<=25ms"), require_stable=False))[0] == "fail"


@pytest.mark.parametrize("idle_ms, probed_at_estimate", [(0.5, False), (1.0, True)])
def test_a_saturated_estimate_is_the_upper_end_without_a_probe(tmp_path: Path, idle_ms, probed_at_estimate) -> None:
    """The estimate's mean latency (1.67 ms) is 3.3x one request's 0.5 ms: the target queued, 950 req/s
    is its capacity, and an open loop there has no steady state, so the search bisects below it instead
    of probing it. At 1.67x a 1 ms request the target may have had spare parallelism: probed as before."""
    server = SimulatedServer(mu=1000.0)
    out = run_search(BASE, parse_slo("p99<=46ms"), tmp_path, progress=False, runner=server,
                     preflight_fn=lambda config, headers=None: {"probe_latency_ms": idle_ms},
                     log=lambda m: None, tolerance=0.02, max_probes=12)
    assert (950.0 in server.rates) is probed_at_estimate
    if not probed_at_estimate:
        assert server.rates[2] == 712.0  # halfway between 475 (passed) and 950, to three digits
    assert out.best_rate_rps is not None and 880.0 <= out.best_rate_rps <= 900.0
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest["search"]["upper_end_from_estimate"] == (None if probed_at_estimate else 950.0)
