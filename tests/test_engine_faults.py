"""Both engines against the embedded target and against small aiohttp servers that misbehave.

Each misbehaving server runs in its own thread on 127.0.0.1, port 0. Counts are asserted exactly
(every attempt ends as ok or one error class); timing assertions are generous (shared 2-core box).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from tfsbench.bench.measure import hist
from tfsbench.bench.measure.runner import ConstantPool, run_benchmark
from tfsbench.bench.results import RunConfig, RunResult

ENGINES = ("fast", "aiohttp")
BODY = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
ANSWER = b'{"predictions": [[0.1, 0.2, 0.7]]}'


@contextmanager
def app_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
               ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """An aiohttp app answering every POST with `handler`, in a thread; yields its base URL."""
    ready: list[object] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()

    async def start() -> web.AppRunner:
        app = web.Application(client_max_size=32 * 2**20)  # room for the large-body test
        app.router.add_post("/{tail:.*}", handler)  # GETs (the Prometheus scrape) get 404
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        ready.append(runner)
        ready.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(ready[0].cleanup())  # type: ignore[attr-defined]
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(10), "fixture server did not start"
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{ready[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _config(url: str, engine: str, **kw: object) -> RunConfig:
    base: dict[str, object] = dict(url=url, model="m", kind="constant", batch_size=1, format="row", mode="closed",
                                   engine=engine, concurrency=2, duration_s=None, warmup_s=0.0, timeout_s=5.0)
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


def _run(config: RunConfig) -> RunResult:
    result = run_benchmark(config, pool=ConstantPool((BODY,)))
    s = result.summary
    assert s.ok + sum(s.errors.values()) == s.requests, "every attempt counted exactly once"
    assert hist.decode(result.histogram).get_total_count() == s.ok
    return result


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_every_tenth_request_fails_with_exact_counts(engine: str) -> None:
    seen = [0]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        seen[0] += 1
        if seen[0] % 10 == 0:
            return web.json_response({"error": f"injected failure {seen[0]}"}, status=500)
        return web.Response(body=ANSWER, content_type="application/json")

    with app_server(handler) as url:
        result = _run(_config(url, engine, concurrency=4, requests_limit=200))
    s = result.summary
    assert seen[0] == 200
    assert (s.requests, s.ok, s.errors) == (200, 180, {"http_500": 20})
    assert any("injected failure" in e for e in s.error_samples)
    assert all(len(e) <= 320 for e in s.error_samples)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_server_closing_every_connection_is_not_an_error(engine: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        resp = web.Response(body=ANSWER, content_type="application/json")
        resp.force_close()  # Connection: close, then the server closes the socket
        return resp

    with app_server(handler) as url:
        result = _run(_config(url, engine, concurrency=3, requests_limit=150))
    s = result.summary
    assert (s.requests, s.ok, s.errors) == (150, 150, {})
    if engine == "fast":
        assert result.environment["client"]["connections_opened"] >= 150  # one per request


def _stalling_handler(stall_at: int, stall_s: float) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Request number `stall_at` freezes the whole server for `stall_s` (like a GC pause): every
    request that arrives meanwhile waits for the pause to end."""
    state = {"n": 0, "until": 0.0}

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        state["n"] += 1
        if state["n"] == stall_at:
            state["until"] = time.monotonic() + stall_s
        wait = state["until"] - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return web.Response(body=ANSWER, content_type="application/json")

    return handler


@pytest.mark.slow
@pytest.mark.serial
def test_a_one_second_stall_shows_in_open_loop_percentiles_but_hides_in_closed_loop() -> None:
    with app_server(_stalling_handler(stall_at=100, stall_s=1.0)) as url:
        open_result = _run(_config(url, "fast", mode="open", concurrency=None, rate_rps=200.0,
                                   arrival="constant", duration_s=3.0))
    with app_server(_stalling_handler(stall_at=100, stall_s=1.0)) as url:
        closed_result = _run(_config(url, "fast", concurrency=1, duration_s=3.0))
    o, c = open_result.summary, closed_result.summary
    # Open loop: ~200 arrivals were due during the pause; latency counts from the intended send,
    # so they wait up to the full second and the top percent is close to 1000 ms.
    assert o.requests == 600 and o.ok == 600
    assert o.latency_ms.p99 >= 900.0
    assert o.latency_ms.max >= 950.0
    # Closed loop: the single sender waited with the server; the pause is one slow sample.
    assert c.latency_ms.max >= 950.0
    assert c.latency_ms.p99 < 200.0
    assert c.latency_ms.p90 < 100.0


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.serial
@pytest.mark.slow
def test_timeouts_are_counted_per_request(engine: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(3.0)
        return web.Response(body=ANSWER, content_type="application/json")

    with app_server(handler) as url:
        t0 = time.perf_counter()
        result = _run(_config(url, engine, concurrency=2, requests_limit=4, timeout_s=0.3))
        elapsed = time.perf_counter() - t0
    assert result.summary.errors == {"timeout": 4}
    assert elapsed < 2.5  # two rounds of 0.3 s timeouts, not the server's 3 s


@pytest.mark.parametrize("engine", ENGINES)
def test_invalid_answers_are_classified(engine: str) -> None:
    answers = [b"not json at all", b'{"nothing": 1}', b'{"predictions": [[1], [2]]}', ANSWER]
    n = [0]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        n[0] += 1
        return web.Response(body=answers[(n[0] - 1) % 4], content_type="application/json")

    with app_server(handler) as url:
        result = _run(_config(url, engine, concurrency=1, requests_limit=40))
    assert result.summary.errors == {"invalid_json": 10, "invalid_response": 10, "batch_mismatch": 10}
    assert result.summary.ok == 10


@pytest.mark.parametrize("engine", ENGINES)
def test_connection_refused_is_counted(engine: str) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(_config(f"http://127.0.0.1:{port}", engine, concurrency=2, requests_limit=6))
    assert result.summary.errors == {"refused": 6}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_both_engines_against_the_embedded_target(tfs_url: str, engine: str) -> None:
    cfg = RunConfig(url=tfs_url, model="numeric", kind="numeric", batch_size=3, format="columnar", mode="open",
                    engine=engine, rate_rps=150.0, arrival="poisson", duration_s=2.0, warmup_s=0.5)
    result = run_benchmark(cfg)
    s = result.summary
    assert s.errors == {} and s.ok == s.requests > 150
    assert s.throughput_ips == pytest.approx(3 * s.throughput_rps)
    assert s.schedule_lag_ms is not None and result.lag_histogram
    assert s.offered_rps == 150.0
    assert result.timeseries[0].t_s == -1.0  # warmup second, kept apart
    assert s.request_bytes > 0 and s.response_bytes > 0 and s.raw_bytes == 3 * 4 * 4


@pytest.mark.slow
def test_two_processes_merge_exactly(tfs_url: str) -> None:
    cfg = RunConfig(url=tfs_url, model="numeric", kind="numeric", batch_size=1, format="row", mode="open",
                    engine="fast", rate_rps=200.0, arrival="constant", duration_s=2.0, processes=2)
    result = run_benchmark(cfg)
    s = result.summary
    # constant arrivals phase-shifted across the two processes: exactly 200/s x 2 s
    assert s.requests == 400 and s.ok == 400
    assert sum(p.requests for p in result.timeseries) == 400
    assert hist.decode(result.histogram).get_total_count() == 400
    assert hist.decode(result.lag_histogram).get_total_count() == 400
    assert result.environment["client"]["processes"] == 2


@pytest.mark.slow
def test_stop_event_gives_a_partial_result(tfs_url: str) -> None:
    stop = threading.Event()
    updates = []

    def progress(u: object) -> None:
        updates.append(u)
        if len(updates) == 2:
            stop.set()

    cfg = RunConfig(url=tfs_url, model="numeric", kind="numeric", batch_size=1, format="row", mode="closed",
                    engine="aiohttp", concurrency=2, duration_s=60.0)
    t0 = time.perf_counter()
    result = run_benchmark(cfg, progress=progress, stop=stop)
    assert time.perf_counter() - t0 < 20
    assert result.partial and result.partial_reason == "interrupted"
    assert not result.summary.stable and "interrupted" in result.summary.stability_reason
    assert result.summary.requests > 0
    assert updates[0].phase == "measure" and updates[-1].requests <= result.summary.requests


class RestartableServer:
    """An aiohttp app on a fixed port that can be stopped and started again from the test thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.port = 0

    def _call(self, coro: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        async def handler(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=ANSWER, content_type="application/json")

        app = web.Application()
        app.router.add_post("/{tail:.*}", handler)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def start(self) -> str:
        self._call(self._start())
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_target_killed_and_restarted_mid_run(engine: str) -> None:
    server = RestartableServer()
    url = server.start()
    events: list[str] = []
    down_at: list[float] = []

    def progress(u: object) -> None:  # drive the outage from the run's own clock
        elapsed = u.elapsed_s  # type: ignore[attr-defined]
        if elapsed >= 1.0 and not events:
            server.stop()
            events.append("down")
            down_at.append(elapsed)
        # up only after the whole next second has passed, so one full second lies inside the outage
        # however late the progress callbacks come on a busy machine
        elif events == ["down"] and elapsed >= math.ceil(down_at[0]) + 1.05:
            server.start()
            events.append("up")

    try:
        cfg = _config(url, engine, mode="open", concurrency=None, rate_rps=100.0, arrival="constant",
                      duration_s=5.5, timeout_s=1.0)
        result = run_benchmark(cfg, pool=ConstantPool((BODY,)), progress=progress)
    finally:
        if events == ["down"]:
            server.start()
        server.stop()
        server.close()
    s = result.summary
    assert events == ["down", "up"]
    assert s.requests == 550 and s.ok + sum(s.errors.values()) == 550
    outage = sum(v for k, v in s.errors.items() if k in ("refused", "reset"))
    assert outage >= 50, s.errors  # about a second of arrivals at 100/s found nobody listening
    assert set(s.errors) <= {"refused", "reset", "timeout"}
    points = {int(p.t_s): p for p in result.timeseries}
    assert points[0].errors == 0 and points[0].requests > 50  # before the outage
    # the gap: the second that lay wholly inside the outage is (almost) all errors
    gap = points[math.ceil(down_at[0])]
    assert gap.requests > 0 and gap.errors >= 0.8 * gap.requests, result.timeseries
    assert points[5].errors == 0 and points[5].requests > 30  # the run went on after the restart


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_https_with_auth_header(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    auth: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        auth.append(request.headers.get("Authorization"))
        return web.Response(body=ANSWER, content_type="application/json")

    with app_server(handler, server_ctx) as url:
        untrusted = run_benchmark(_config(url, engine, requests_limit=3), pool=ConstantPool((BODY,)))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our self-signed certificate
        trusted = run_benchmark(_config(url, engine, requests_limit=20), pool=ConstantPool((BODY,)),
                                headers={"Authorization": "Bearer s3cret"})
    assert untrusted.summary.errors == {"refused": 3}  # certificate verify failed: never sent
    assert any("CERTIFICATE" in e.upper() for e in untrusted.summary.error_samples)
    assert trusted.summary.ok == 20 and trusted.summary.errors == {}
    assert auth == ["Bearer s3cret"] * 20


# ---- the embedded target's fault injection (tfsbench serve --faults) ------------------------------

FAULTS_ALONE = {
    "status=503:20%,seed=1": {"http_503"},
    "status=429:20%,seed=2": {"http_429"},
    "reset=20%,seed=3": {"reset"},
    "truncate=20%,seed=4": {"invalid_json"},
    "nonjson=20%,seed=5": {"invalid_json"},
    "trickle=30ms:20%,seed=6": set(),
    "delay=exp:10ms:0.3,seed=7": set(),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("faults", list(FAULTS_ALONE))
@pytest.mark.slow
def test_each_fault_alone_is_classified_and_the_schedule_kept(tfs_server: Callable[..., str], engine: str,
                                                              faults: str) -> None:
    url = tfs_server(faults=faults)
    cfg = RunConfig(url=url, model="numeric", kind="numeric", batch_size=2, format="row", mode="open",
                    engine=engine, rate_rps=200.0, arrival="constant", duration_s=1.0, timeout_s=5.0)
    s = run_benchmark(cfg).summary
    assert s.requests == 200  # open loop keeps its schedule: 200/s x 1 s, whatever the server does
    assert s.ok + sum(s.errors.values()) == s.requests
    expected = FAULTS_ALONE[faults]
    assert set(s.errors) == expected, s.errors
    if expected:
        assert 15 <= sum(s.errors.values()) <= 70  # ~20% of 200, seeded
        assert s.error_samples


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_all_faults_together(tfs_server: Callable[..., str], engine: str) -> None:
    url = tfs_server(faults="status=503:8%,status=429:4%,delay=exp:5ms:0.2,stall=300ms/1s,reset=4%,"
                            "truncate=4%,nonjson=4%,trickle=20ms:4%,seed=11")
    cfg = RunConfig(url=url, model="numeric", kind="numeric", batch_size=2, format="row", mode="open",
                    engine=engine, rate_rps=100.0, arrival="constant", duration_s=3.0, timeout_s=5.0)
    result = run_benchmark(cfg)
    s = result.summary
    assert s.requests == 300 and s.ok + sum(s.errors.values()) == 300
    assert set(s.errors) == {"http_503", "http_429", "reset", "invalid_json"}, s.errors
    # stalls of 300 ms every second: about 30% of arrivals wait for the stall to end
    assert s.latency_ms.p99 >= 150.0
    assert hist.decode(result.histogram).get_total_count() == s.ok


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.slow
def test_bodies_larger_than_the_socket_buffer_arrive_whole(engine: str) -> None:
    """A 12 MB request to a server that is slow to read does not fit in one write(2): the fast engine
    hands the rest to the transport after a partial write on the socket. The server must see every
    body intact."""
    import hashlib

    bodies = tuple(b'{"instances": [[' + (b"%d.5, " % k) * 2_000_000 + b'1.0]]}' for k in range(2))
    digests = {hashlib.sha256(b).hexdigest() for b in bodies}
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)  # let the socket buffers fill up first
        seen.append(hashlib.sha256(await request.read()).hexdigest())
        return web.Response(body=ANSWER, content_type="application/json")

    with app_server(handler) as url:
        config = _config(url, engine, concurrency=2, requests_limit=6)
        result = run_benchmark(config, pool=ConstantPool(bodies))
    assert result.summary.ok == result.summary.requests == 6
    assert len(seen) == 6 and set(seen) == digests
