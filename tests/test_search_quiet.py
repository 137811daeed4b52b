"""After a probe that did not pass, the search waits until the target has worked off its backlog
(bench/orchestrate/quiet.py): the rule on a scripted sequence, then against a real single-server
queue holding a real backlog, then wired into run_search."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_search_algorithm import SimulatedServer
from test_search_queue import SERVICE_S, serve_queue
from tfsbench.bench.measure import preflight
from tfsbench.bench.orchestrate.quiet import QUIET_IN_A_ROW, quiet_bound_ms, wait_until_quiet
from tfsbench.bench.orchestrate.search import run_search
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats.slo import parse_slo
from tfsbench.payloads.errors import InputError


def scripted(latencies: list[float | Exception]):
    seq = iter(latencies)
    sent: list[int] = []

    def send() -> float:
        sent.append(1)
        item = next(seq)
        if isinstance(item, Exception):
            raise item
        return item

    return send, sent


class FakeClock:
    def __init__(self, step_s: float) -> None:
        self.t, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        self.t += self.step_s
        return self.t


def test_quiet_needs_three_fast_answers_in_a_row() -> None:
    assert quiet_bound_ms(1.0) == 6.0 and quiet_bound_ms(10.0) == 30.0
    send, sent = scripted([400.0, 250.0, 4.0, 5.0, 300.0, 3.0, 2.0, 2.0, 999.0])
    out = wait_until_quiet(send, baseline_ms=1.0)
    assert out.quiet and out.requests == 8 == len(sent)  # the slow answer after two fast ones starts over


def test_a_timeout_is_not_quiet_and_the_wait_is_bounded() -> None:
    send, _ = scripted([TimeoutError("slow"), 2.0, 2.0, 2.0])
    assert wait_until_quiet(send, baseline_ms=1.0).requests == 4
    send, sent = scripted([500.0] * 100)
    out = wait_until_quiet(send, baseline_ms=1.0, max_wait_s=5.0, clock=FakeClock(1.0))
    assert not out.quiet and len(sent) < 10


def test_an_unreachable_target_or_a_stop_ends_the_wait() -> None:
    send, sent = scripted([500.0, InputError("cannot reach"), 1.0, 1.0, 1.0])
    assert not wait_until_quiet(send, baseline_ms=1.0).quiet and len(sent) == 2
    stop = threading.Event()
    stop.set()
    send, sent = scripted([1.0] * 3)
    assert not wait_until_quiet(send, baseline_ms=1.0, stop=stop).quiet and sent == []


def _flood(url: str, n: int) -> list[socket.socket]:
    """n requests sent and left unread: the queue serves them one after another (SERVICE_S each)."""
    u = urlparse(url)
    body = b'{"instances": [1]}'
    socks = []
    for _ in range(n):
        s = socket.create_connection((u.hostname, u.port))
        s.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        socks.append(s)
    return socks


@pytest.mark.serial  # single-request latencies against a bound: not beside a busy neighbour
def test_a_real_backlog_is_waited_out() -> None:
    """400 requests queued at 2.5 ms each hold the queue for up to a second: single requests wait
    behind those already read, and quiet comes only when they answer fast again."""
    with serve_queue() as url:
        cfg = RunConfig(url=url, model="m", kind="constant", batch_size=1, format="row", mode="open", engine="fast",
                        rate_rps=1.0, timeout_s=10.0)
        body = b'{"instances": [1]}'

        def send() -> float:
            return preflight.probe(cfg, body, {"Content-Type": "application/json"})["probe_latency_ms"]

        baseline = min(send() for _ in range(3))
        socks = _flood(url, 400)
        try:
            out = wait_until_quiet(send, baseline)
        finally:
            for s in socks:
                s.close()
        assert out.quiet and out.requests >= QUIET_IN_A_ROW + 1  # at least one answer was slow
        assert out.waited_s <= 400 * SERVICE_S + 5.0


def test_the_search_waits_after_a_probe_that_failed(tmp_path: Path) -> None:
    """Wired: a failed probe makes the next one wait for quiet (logged when it took a while); a
    passed one does not. The simulated server leaves a real backlog in a real queue."""
    with serve_queue() as url:
        server = SimulatedServer(mu=1000.0)
        flooded: list[socket.socket] = []

        def runner(config, **kw):
            result = server(config, **kw)
            if config.rate_rps and config.rate_rps >= 1000.0:  # the overloaded probe leaves a backlog
                flooded.extend(_flood(url, 400))
            return result

        base = RunConfig(url=url, model="m", kind="constant", batch_size=1, format="row", mode="closed",
                         engine="fast", concurrency=8, duration_s=1.0, timeout_s=10.0)
        log: list[str] = []
        try:
            run_search(base, parse_slo("p99<=46ms"), tmp_path, lo_rps=600.0, hi_rps=1200.0, max_probes=3,
                       progress=False, runner=runner, preflight_fn=lambda cfg, headers=None: {"probe_latency_ms": 1.0},
                       log=log.append, require_stable=False)
        finally:
            for s in flooded:
                s.close()
    assert server.rates == [600.0, 1200.0, 900.0], log
    waits = [m for m in log if "work off the last probe's backlog" in m]
    assert len(waits) == 1 and waits[0].startswith("target quiet: waited"), log
    assert log.index(waits[0]) == 2  # after probe 2 (failed), before probe 3
