"""A search probe's stability is judged on the question it asks: thirds whose p99 lies within the SLO's
bound with 95% confidence agree, however far apart (a stall of the machine in one third); throughput
and the median are judged as before, and a bound the thirds straddle, or all exceed, changes nothing
(a miss in an unstable probe is measured again)."""

from __future__ import annotations

import numpy as np
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.stop_control import SLO_BOUND_KEY, slo_bound_us
from tfsbench.bench.orchestrate.search import _probe_extra
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats import stability
from tfsbench.bench.stats.slo import parse_slo


def _seconds(stall_ms: float, p50_scale_ms: float = 2.0) -> list[tuple[int, object]]:
    """Nine seconds of 2,000 responses (1 ms + exponential 2 ms); the eighth also has 60 responses
    of `stall_ms` (one stall of the machine holding 3% of that second's requests)."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(9):
        h = hist.new()
        hist.record_many(h, rng.exponential(p50_scale_ms * 1000, 2000) + 1000.0)
        n = 2000
        if k == 7:
            hist.record_many(h, np.full(60, stall_ms * 1000.0))
            n += 60
        out.append((n, h))
    return out


def _judge(seconds: list[tuple[int, object]], bound_ms: float | None) -> tuple[bool, str]:
    return stability.verdict(seconds, sum(c for c, _ in seconds),
                             bound_us=bound_ms * 1000 if bound_ms is not None else None)


def test_one_stall_far_under_the_slo_is_stable_for_the_slo() -> None:
    seconds = _seconds(stall_ms=40.0)
    ok, reason = _judge(seconds, None)
    assert not ok and "p99 differs" in reason  # without an SLO: the last third's p99 is far apart
    ok, reason = _judge(seconds, 50.0)
    assert ok and reason.startswith("stable for the SLO") and "within the SLO's 50 ms" in reason
    ok, reason = _judge(seconds, 20.0)  # the stall's third reaches past 20 ms, the others do not
    assert not ok and "p99 differs" in reason
    ok, reason = _judge(seconds, 5.0)  # every third's p99 beyond 5 ms: no pass for a miss
    assert not ok and "p99 differs" in reason


def test_the_median_and_throughput_are_still_judged() -> None:
    slower = _seconds(stall_ms=4.0)[:6] + _seconds(stall_ms=4.0, p50_scale_ms=4.0)[6:]
    ok, reason = _judge(slower, 50.0)
    assert not ok and "p50 differs" in reason


def test_probes_of_a_p99_slo_carry_its_bound() -> None:
    extra = _probe_extra({"validate": "full"}, parse_slo("p99<=50ms"))
    assert extra == {"validate": "full", SLO_BOUND_KEY: 50.0}
    assert SLO_BOUND_KEY not in _probe_extra({}, parse_slo("p95<=50ms"))  # the rule judges the p99
    cfg = RunConfig(url="http://127.0.0.1:1", model="m", kind="constant", batch_size=1, format="row", mode="open",
                    engine="fast", rate_rps=100.0, arrival="constant", duration_s=5.0, extra=extra)
    assert slo_bound_us(cfg) == 50_000.0
