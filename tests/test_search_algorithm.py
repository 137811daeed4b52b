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
    ({"rps": 90.0}, False, "achieved 90.0 req/s"),
    ({"stable": False}, False, "unstable"),
    ({"saturated": True}, False, "saturated"),
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

    def __call__(self, config, *, headers=None, progress=None, stop=None, pool=None, environment=None):
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
