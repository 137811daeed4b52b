"""`search --repeat N`: the answer is measured N more times, and the manifest and output carry the
mean and 95% CI of its throughput and SLO statistic, judged at the interval's conservative end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tfsbench.bench.orchestrate.search import confirm_lines, run_search
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, load_results
from tfsbench.bench.stats.intervals import mean_ci
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.payloads.errors import InputError

from tests.helpers import cli

BASE = RunConfig(url="http://127.0.0.1:1", model="numeric", kind="numeric", batch_size=1, format="row",
                 mode="closed", engine="fast", concurrency=8, duration_s=1.0)


def summary(p99: float, rps: float) -> Summary:
    lat = LatencySummary(mean=p99 / 3, p50=p99 / 3, p90=p99 / 2, p95=p99 / 1.5, p99=p99, p999=p99 * 1.5, max=p99 * 2)
    return Summary(requests=2000, ok=2000, errors={}, throughput_rps=rps, throughput_ips=rps, latency_ms=lat,
                   request_bytes=1, response_bytes=1, raw_bytes=1, stable=True, stability_reason="stable")


class Server:
    """Passes every rate up to 100 req/s (p99 10 ms), fails above; confirm runs get p99s from `spread`."""

    def __init__(self, spread: list[float]) -> None:
        self.spread = list(spread)
        self.calls: list[RunConfig] = []

    def __call__(self, config, **kw):
        self.calls.append(config)
        rate = config.rate_rps or 0.0
        if len(self.calls) > 3:  # the three probes below are done: these are the repeats of the answer
            return RunResult(config=config, environment={}, summary=summary(self.spread.pop(0), rate * 0.99))
        return RunResult(config=config, environment={}, summary=summary(10.0 if rate <= 100 else 500.0, rate))


def search(tmp_path: Path, server: Server, repeat: int, slo: str = "p99<=20ms"):
    # lo 80 passes, 160 fails, 120 fails (tolerance 0.4: [80, 120] is within 40%)
    return run_search(BASE, parse_slo(slo), tmp_path, lo_rps=80.0, tolerance=0.4, progress=False, runner=server,
                      preflight_fn=lambda c, headers=None: None, log=lambda m: None, repeat=repeat)


def test_the_answer_is_measured_again_n_times_with_its_interval(tmp_path: Path) -> None:
    server = Server([10.0, 12.0, 14.0])
    out = search(tmp_path, server, 3)
    assert out.best_rate_rps == 80.0
    assert [c.rate_rps for c in server.calls] == [80.0, 160.0, 120.0, 80.0, 80.0, 80.0]
    c = out.confirm
    assert c is not None and c["n"] == 3 and c["rate_rps"] == 80.0
    expected = mean_ci([10.0, 12.0, 14.0])
    assert c["slo_ms"]["mean"] == pytest.approx(12.0)
    assert c["slo_ms"]["high"] == pytest.approx(expected.high)  # 12 + 4.30 * 2 / sqrt(3) = 16.97
    assert c["throughput_rps"]["mean"] == pytest.approx(79.2)
    assert c["slo_met_at_conservative_end"] is True
    manifest = json.loads(out.manifest_path.read_text())
    assert manifest["search"]["confirm"]["files"] == ["confirm-r80-1.json", "confirm-r80-2.json",
                                                      "confirm-r80-3.json"]
    assert all(f in manifest["runs"] for f in manifest["search"]["confirm"]["files"])
    assert len(load_results([str(tmp_path)])) == 6
    lines = confirm_lines(c)
    assert "12.00 ± 4.97 ms" in lines[0] and "3 of 3 stable" in lines[0]
    assert "holds" in lines[1]


def test_the_conservative_end_can_miss_the_slo_the_mean_meets(tmp_path: Path) -> None:
    out = search(tmp_path, Server([10.0, 12.0, 26.0]), 3, slo="p99<=20ms")  # mean 16 ms, high end ~36 ms
    assert out.confirm is not None and out.confirm["slo_ms"]["mean"] < 20
    assert out.confirm["slo_met_at_conservative_end"] is False
    assert "does NOT hold" in confirm_lines(out.confirm)[1]


def test_no_repeats_without_the_flag_and_none_without_an_answer(tmp_path: Path) -> None:
    server = Server([])
    out = search(tmp_path / "a", server, 1)
    assert out.confirm is None and len(server.calls) == 3
    assert json.loads(out.manifest_path.read_text())["search"]["confirm"] is None
    failing = Server([])
    out2 = run_search(BASE, parse_slo("p99<=1ms"), tmp_path / "b", lo_rps=4.0, max_probes=2, progress=False,
                      runner=failing, preflight_fn=lambda c, headers=None: None, log=lambda m: None, repeat=3)
    assert out2.best_rate_rps is None and out2.confirm is None and len(failing.calls) == 2


def test_repeat_below_one_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--repeat"):
        search(tmp_path, Server([]), 0)
    res = cli("search", "--slo", "p99<=50ms", "--url", "http://127.0.0.1:1", "--model", "m", "--out",
              tmp_path / "o", "--repeat", "0")
    assert res.code == 2 and "--repeat" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
