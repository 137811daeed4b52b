"""Both engines, closed and open loop, against the embedded target with each fault alone and all of
them together (`tfsbench serve --faults`, here through the `tfs_server` fixture).

Every run must: finish on time, classify every failure into a known class, account for every
request (`ok + sum(errors) == requests`, the histogram and the time series agree), keep its load
shape (open loop: the schedule's arrivals were all sent or counted as refused; closed loop: C
requests in flight the whole time) and honour the per-request timeout.

The closed loop's concurrency is observed, not inferred: the engine is wrapped (the runner's
`make_engine` is patched) to keep a time-weighted count of requests in flight. Tolerances are wide:
two shared cores, seven engineers' tests at once.

tests/test_engine_faults.py holds the engine owner's cases (exact counts against scripted servers,
each fault alone in open loop); this file is the cross-check of the matrix.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import tfsbench.bench.measure.runner
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.runner import run_benchmark
from tfsbench.bench.results import RunConfig, RunResult
from tfsbench.payloads.errors import InputError

ENGINES = ("fast", "aiohttp")
KNOWN_CLASSES = {"timeout", "refused", "reset", "invalid_json", "invalid_response", "batch_mismatch", "cancelled"}
HTTP_CLASS = re.compile(r"^http_[1-5][0-9][0-9]$")

# spec -> error classes it must produce (all of them, and nothing else)
FAULTS: dict[str, set[str]] = {
    "status=500:10%,status=503:10%,status=429:10%,seed=1": {"http_500", "http_503", "http_429"},
    "delay=exp:20ms:50%,seed=2": set(),
    "stall=300ms/1s": set(),
    "reset=20%,seed=4": {"reset"},
    "truncate=20%,seed=5": {"invalid_json"},
    "nonjson=20%,seed=6": {"invalid_json"},
    "trickle=50ms:20%,seed=7": set(),
}
ALL_FAULTS = ("status=503:5%,status=500:5%,status=429:5%,delay=exp:5ms:20%,stall=300ms/1s,reset=5%,"
              "truncate=5%,nonjson=5%,trickle=20ms:5%,seed=11")
ALL_CLASSES = {"http_503", "http_500", "http_429", "reset", "invalid_json"}


class InflightMeter:
    """Wraps an engine; integrates the number of requests in flight over time."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.inflight = 0
        self.max_inflight = 0
        self._last_t: float | None = None
        self.first_t: float | None = None
        self.area = 0.0  # request-seconds in flight
        if hasattr(engine, "submit"):
            self.submit = self._submit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _step(self, delta: int) -> None:
        now = time.perf_counter()
        if self._last_t is not None:
            self.area += self.inflight * (now - self._last_t)
        else:
            self.first_t = now
        self._last_t = now
        self.inflight += delta
        self.max_inflight = max(self.max_inflight, self.inflight)

    async def send(self, index: int) -> Any:
        self._step(+1)
        try:
            return await self._engine.send(index)
        finally:
            self._step(-1)

    def _submit(self, index: int, done: Callable[[Any], None]) -> None:
        def finished(outcome: Any) -> None:
            self._step(-1)
            done(outcome)

        self._step(+1)
        self._engine.submit(index, finished)

    def mean_inflight(self) -> float:
        span = (self._last_t or 0.0) - (self.first_t or 0.0)
        return self.area / span if span > 0 else 0.0


@pytest.fixture
def meters(monkeypatch: pytest.MonkeyPatch) -> list[InflightMeter]:
    made: list[InflightMeter] = []
    real = tfsbench.bench.measure.runner.make_engine

    def make_engine(*args: Any, **kwargs: Any) -> InflightMeter:
        meter = InflightMeter(real(*args, **kwargs))
        made.append(meter)
        return meter

    monkeypatch.setattr(tfsbench.bench.measure.runner, "make_engine", make_engine)
    return made


def _config(url: str, engine: str, mode: str, duration_s: float, timeout_s: float = 5.0, **kw: Any) -> RunConfig:
    load: dict[str, Any] = ({"concurrency": 4} if mode == "closed" else {"rate_rps": 150.0, "arrival": "constant"})
    load.update(kw)
    return RunConfig(url=url, model="numeric", kind="numeric", batch_size=2, format="row", mode=mode, engine=engine,
                     duration_s=duration_s, warmup_s=0.0, timeout_s=timeout_s, pool_size=8, **load)


def _run_and_check(config: RunConfig, meters: list[InflightMeter]) -> tuple[RunResult, float]:
    """Run; check what must hold for every run under any fault; return the result and wall time."""
    t0 = time.perf_counter()
    result = run_benchmark(config)
    wall_s = time.perf_counter() - t0
    s = result.summary
    # on time: the measured window, then at most one timeout for the last requests, plus slack
    assert wall_s < (config.duration_s or 0) + config.timeout_s + 10.0, wall_s
    assert not result.partial
    # every failure classified, every request accounted for exactly once
    unknown = {k for k in s.errors if k not in KNOWN_CLASSES and not HTTP_CLASS.match(k)}
    assert not unknown, s.errors
    assert s.ok + sum(s.errors.values()) == s.requests
    assert hist.decode(result.histogram).get_total_count() == s.ok
    assert sum(p.requests for p in result.timeseries) == s.requests
    assert sum(p.errors for p in result.timeseries) == sum(s.errors.values())
    assert all(p.errors <= p.requests for p in result.timeseries)
    # the load shape
    if config.mode == "open":
        scheduled = round((config.rate_rps or 0) * (config.duration_s or 0))
        assert abs(s.requests + s.refused_inflight - scheduled) <= 1, (s.requests, s.refused_inflight, scheduled)
    else:
        (meter,) = meters
        c = config.concurrency or 0
        assert meter.max_inflight == c
        assert meter.mean_inflight() >= 0.75 * c, meter.mean_inflight()
    return result, wall_s


def _engine_for(index: int, mode: str) -> str:
    """Alternate engines across faults, crosswise for the two modes: each engine meets each loop."""
    return ENGINES[(index + (mode == "open")) % 2]


CASES = [(spec, mode, _engine_for(i, mode)) for i, spec in enumerate(FAULTS) for mode in ("closed", "open")]


@pytest.mark.parametrize(("spec", "mode", "engine"), CASES, ids=[f"{s.split('=')[0]}-{m}-{e}" for s, m, e in CASES])
@pytest.mark.slow
def test_each_fault_alone(tfs_server: Callable[..., str], meters: list[InflightMeter], spec: str, mode: str,
                          engine: str) -> None:
    url = tfs_server(faults=spec)
    result, _ = _run_and_check(_config(url, engine, mode, duration_s=1.0), meters)
    s = result.summary
    expected = FAULTS[spec]
    assert set(s.errors) == expected, s.errors
    if expected:
        rate = sum(s.errors.values()) / s.requests
        assert 0.05 < rate < 0.6, (rate, s.errors)  # 20-30% injected, seeded
        assert s.error_samples
    assert s.ok > 0.4 * s.requests  # reconnected after every reset and kept getting answers
    if spec.startswith("reset") and engine == "fast":
        # each reset costs a connection and the engine opened a new one
        assert result.environment["client"]["connections_opened"] > s.errors["reset"]


@pytest.mark.parametrize("mode", ["closed", "open"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_all_faults_together(tfs_server: Callable[..., str], meters: list[InflightMeter], engine: str,
                             mode: str) -> None:
    url = tfs_server(faults=ALL_FAULTS)
    result, _ = _run_and_check(_config(url, engine, mode, duration_s=2.0), meters)
    s = result.summary
    assert set(s.errors) <= ALL_CLASSES, s.errors
    assert len(s.errors) >= 3, s.errors  # 35% of requests broken five ways: most classes show up
    assert s.ok > 0.4 * s.requests
    if mode == "open":  # a 300 ms stall every second: latency from the intended send shows it
        assert s.latency_ms.max >= 150.0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_delays_longer_than_the_timeout_are_timeouts(tfs_server: Callable[..., str], meters: list[InflightMeter],
                                                     engine: str) -> None:
    """A third of the answers come 1.5 s late; with --timeout 0.25 s none of them is waited for."""
    url = tfs_server(faults="delay=1500ms:33%,seed=3")
    config = _config(url, engine, "closed", duration_s=1.5, timeout_s=0.25, concurrency=3)
    result, wall_s = _run_and_check(config, meters)
    s = result.summary
    assert set(s.errors) == {"timeout"} and s.errors["timeout"] >= 3, s.errors
    assert s.latency_ms.max < 1500.0  # no delayed answer was waited out...
    assert wall_s < 1.5 + 1.5 + 8.0  # ...so the run did not wait for the last ones either
    assert s.ok > 0


@pytest.mark.slow
def test_a_stall_longer_than_the_timeout_is_timeouts_and_the_schedule_goes_on(
        tfs_server: Callable[..., str], meters: list[InflightMeter]) -> None:
    """The whole server stops for 1.2 s of every 1.5 s; open loop at 40/s with --timeout 0.3 s: the
    arrivals during the stall time out, the schedule is kept, nothing waits longer than the timeout."""
    url = tfs_server(faults="stall=1200ms/1500ms")
    config = _config(url, "fast", "open", duration_s=1.5, timeout_s=0.3, rate_rps=40.0)
    result, _ = _run_and_check(config, meters)
    s = result.summary
    assert set(s.errors) <= {"timeout"} and s.errors.get("timeout", 0) >= 10, s.errors
    # 1.2 s of 1.5 s stalled: at least 0.9 s of the window, 36 arrivals, were due during a stall
    assert s.errors["timeout"] >= 0.5 * 36
    assert s.latency_ms.max < 1200.0  # nothing that succeeded waited through a whole stall


@pytest.mark.slow
def test_a_stall_with_a_small_in_flight_cap_refuses_and_counts(tfs_server: Callable[..., str],
                                                               meters: list[InflightMeter]) -> None:
    """Open loop with --max-inflight 4 against a server that stalls 600 ms of every second: due
    arrivals beyond the cap are refused and counted (never queued into a burst, never dropped)."""
    url = tfs_server(faults="stall=600ms/1s")
    config = _config(url, "fast", "open", duration_s=1.5, timeout_s=5.0, rate_rps=60.0, max_inflight=4)
    result, _ = _run_and_check(config, meters)  # requests + refused == the schedule
    s = result.summary
    assert s.refused_inflight >= 10, s  # ~0.9 s of stall at 60/s, 4 let through
    assert s.errors == {} and s.ok == s.requests
    assert any("refused" in w for w in result.warnings)


@pytest.mark.slow
def test_two_engine_processes_under_all_faults_merge_exactly(tfs_server: Callable[..., str]) -> None:
    url = tfs_server(faults=ALL_FAULTS)
    config = _config(url, "fast", "open", duration_s=1.5, rate_rps=100.0, processes=2)
    result, _ = _run_and_check(config, [])
    s = result.summary
    assert result.environment["client"]["processes"] == 2
    assert set(s.errors) <= ALL_CLASSES and len(s.errors) >= 2, s.errors


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_stopping_while_every_request_hangs_cancels_them_after_the_grace(
        tfs_server: Callable[..., str], engine: str) -> None:
    """Ctrl-C (the stop event) while the server holds every request for 20 s: the run stops sending,
    waits the 2 s grace, counts what is still in flight as `cancelled` and returns a partial result."""
    import threading

    url = tfs_server(faults="delay=20s:100%")
    stop = threading.Event()
    seen: list[Any] = []

    def progress(update: Any) -> None:
        seen.append(update)
        if update.elapsed_s >= 1.0:
            stop.set()

    config = _config(url, engine, "open", duration_s=60.0, timeout_s=30.0, rate_rps=20.0)
    t0 = time.perf_counter()
    result = run_benchmark(config, progress=progress, stop=stop)
    waited_s = time.perf_counter() - t0 - (seen[-1].elapsed_s if seen else 0.0)
    s = result.summary
    assert result.partial and result.partial_reason == "interrupted"
    assert waited_s < 2.0 + 6.0, waited_s  # the grace, not the 20 s delay nor the 30 s timeout
    assert s.ok == 0 and set(s.errors) == {"cancelled"}, s.errors
    assert s.requests == s.errors["cancelled"] >= 15  # ~1 s at 20/s, every one accounted for


def test_the_preflight_probe_rides_out_transient_failures(tfs_server: Callable[..., str]) -> None:
    """`run`, `sweep` and `search` probe the model with one request before any load. On a target
    that fails 30% of its requests (503s, 429s, resets, bad bodies), the probe retries those instead of
    refusing to start; a target that always fails is still refused, with TF Serving's message."""
    from tfsbench.bench.measure.preflight import PROBE_ATTEMPTS, preflight_and_pool

    flaky = tfs_server(faults="status=503:15%,status=429:5%,reset=5%,truncate=5%,seed=8")
    attempts = []
    for _ in range(20):  # seeded faults, sequential requests: the same draws every time
        info, _ = preflight_and_pool(_config(flaky, "fast", "closed", duration_s=1.0))
        attempts.append(info["probe_attempts"])
    assert max(attempts) > 1, attempts  # some probes met a fault and tried again...
    assert max(attempts) <= PROBE_ATTEMPTS  # ...and every one got through
    broken = tfs_server(faults="status=503:100%")
    with pytest.raises(InputError, match="HTTP 503: Injected fault"):
        preflight_and_pool(_config(broken, "fast", "closed", duration_s=1.0))
    rejected = tfs_server()
    bad = dataclasses.replace(_config(rejected, "fast", "closed", duration_s=1.0), kind="text")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="rejected"):  # a 400 is an answer: no retries
        preflight_and_pool(bad)
    assert time.perf_counter() - t0 < 10
