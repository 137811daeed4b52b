"""The performance paths of the engines: open-loop bursts (exact counts, never early, one wake-up
per burst), the heap frozen only during a run, and the aiohttp engine's sweeper timeouts."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import tfsbench.bench.measure.schedule as schedule
import uvloop
from tfsbench.bench.measure.engine import OK_EMPTY, Outcome
from tfsbench.bench.measure.recorder import Recorder
from tfsbench.bench.measure.schedule import BURST_S, LoadPlan, RunState, arrival_offsets, drive

RATE_RPS = 10_000.0  # arrivals 100 us apart: one timer per arrival without bursts
DURATION_S = 0.5


class _CountingEngine:
    """What every test engine here shares: a count of the requests sent, nothing to open or close."""

    name = "test"

    def __init__(self) -> None:
        self.sent = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class InstantEngine(_CountingEngine):
    """Answers every request on the next loop iteration (callback path, like the fast engine)."""

    def submit(self, index: int, done) -> None:  # noqa: ANN001 - the engine callback
        self.sent += 1
        asyncio.get_running_loop().call_soon(done, OK_EMPTY)

    def abort_inflight(self, reason: str) -> None:
        pass

    async def send(self, index: int) -> Outcome:
        return OK_EMPTY


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_open_loop_sends_every_due_arrival_in_bursts(arrival: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lags: list[tuple[float, float]] = []
    sleeps = [0]
    real_make_sleeper = schedule.make_sleeper

    def counting_sleeper(loop, rec):  # noqa: ANN001, ANN202
        sleeper = real_make_sleeper(loop, rec)
        real_sleep = sleeper.sleep_until

        async def sleep_until(t: float) -> None:
            sleeps[0] += 1
            await real_sleep(t)

        sleeper.sleep_until = sleep_until  # type: ignore[method-assign]
        return sleeper

    monkeypatch.setattr(schedule, "make_sleeper", counting_sleeper)
    engine = InstantEngine()
    plan = LoadPlan(mode="open", rate_rps=RATE_RPS, arrival=arrival, duration_s=DURATION_S,
                    max_inflight=100_000, seed=7)

    async def main() -> Recorder:
        start_at = time.perf_counter() + 0.01
        rec = Recorder(start_at, start_at, True)
        real_lag = rec.record_lag
        rec.record_lag = lambda intended, actual: (lags.append((intended, actual)), real_lag(intended, actual))  # type: ignore[method-assign]
        await drive(engine, plan, rec, (10,), start_at, RunState())
        return rec

    rec = uvloop.run(main())
    expected = sum(1 for _ in itertools.takewhile(lambda t: t < DURATION_S, arrival_offsets(RATE_RPS, arrival, 7)))
    assert engine.sent == expected  # every arrival of the schedule, no more, no fewer
    assert rec.requests == expected and rec.refused == 0
    assert len(lags) == expected
    assert all(actual >= intended for intended, actual in lags)  # never sent early
    # one wake-up per burst, not one per arrival: at most one per BURST_S (plus 0.1 s stop checks)
    assert sleeps[0] <= DURATION_S / BURST_S * 1.1 + 10
    assert sleeps[0] < expected / 2


class SlowEngine(InstantEngine):
    """Answers each request 3 ms later (callback path): responses keep arriving all the time."""

    def submit(self, index: int, done) -> None:  # noqa: ANN001 - the engine callback
        self.sent += 1
        asyncio.get_running_loop().call_later(0.003, done, OK_EMPTY)


class SlowTaskEngine(_CountingEngine):
    """The same, through the coroutine interface only (the aiohttp engine's path: a task each)."""

    async def send(self, index: int) -> Outcome:
        self.sent += 1
        await asyncio.sleep(0.003)
        return OK_EMPTY


@pytest.mark.parametrize("engine_class", [SlowEngine, SlowTaskEngine])
@pytest.mark.serial
def test_open_loop_sends_from_completions_when_the_timer_is_late(
        engine_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy loop the dispatcher's timer wake-up waits behind a loop iteration full of
    responses; arrivals that come due meanwhile leave from the completions themselves. With a
    timer that always wakes 30 ms late, the lag stays near the spacing of the responses (0.5 ms)
    instead of growing to tens of milliseconds."""
    real_make_sleeper = schedule.make_sleeper

    def late_sleeper(loop, rec):  # noqa: ANN001, ANN202
        sleeper = real_make_sleeper(loop, rec)
        real_sleep = sleeper.sleep_until

        async def sleep_until(t: float) -> None:
            await real_sleep(t + 0.03)

        sleeper.sleep_until = sleep_until  # type: ignore[method-assign]
        return sleeper

    monkeypatch.setattr(schedule, "make_sleeper", late_sleeper)
    engine = engine_class()
    rate, duration = 2000.0, 0.5
    plan = LoadPlan(mode="open", rate_rps=rate, duration_s=duration, max_inflight=100_000)
    lags: list[float] = []

    async def main() -> Recorder:
        start_at = time.perf_counter() + 0.01
        rec = Recorder(start_at, start_at, True)
        real_lag = rec.record_lag
        rec.record_lag = lambda intended, actual: (lags.append(actual - intended), real_lag(intended, actual))  # type: ignore[method-assign]
        await drive(engine, plan, rec, (10,), start_at, RunState())
        return rec

    rec = uvloop.run(main())
    assert engine.sent == rec.requests == int(rate * duration)  # the whole schedule, nothing refused
    assert min(lags) >= 0.0
    lags.sort()
    # the timer alone would leave most arrivals 15-30 ms late; generous bounds for a shared machine
    assert lags[len(lags) // 2] < 0.003, f"median lag {lags[len(lags) // 2] * 1e3:.1f} ms"


@pytest.mark.slow
def test_drive_freezes_the_heap_only_while_it_runs() -> None:
    """A full collection over every module and payload pool would stall the open loop for 10+ ms;
    drive() freezes the heap for the run and restores it, so callers see no lasting change."""
    import gc

    seen: list[int] = []

    class Probe(InstantEngine):
        def submit(self, index: int, done) -> None:  # noqa: ANN001
            seen.append(gc.get_freeze_count())
            super().submit(index, done)

    probe = Probe()
    plan = LoadPlan(mode="open", rate_rps=1000.0, duration_s=0.05, max_inflight=100)
    before = gc.get_freeze_count()

    async def main() -> None:
        start_at = time.perf_counter() + 0.005
        await drive(probe, plan, Recorder(start_at, start_at, True), (10,), start_at, RunState())

    uvloop.run(main())
    assert seen and min(seen) > 0  # frozen while sending
    assert gc.get_freeze_count() == before == 0  # and restored afterwards


@pytest.mark.serial
def test_aiohttp_sweeper_timeout_leaves_the_task_usable() -> None:
    """The aiohttp engine's one sweeper cancels an overdue send and reports `timeout`; the
    cancellation must not leak into the sender's next request (or into its task's state)."""
    from aiohttp import web
    from tfsbench.bench.measure.engine import TIMEOUT, Target
    from tfsbench.bench.measure.engine_aiohttp import AiohttpEngine

    calls = [0]

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        calls[0] += 1
        if calls[0] == 1:
            await asyncio.sleep(2.0)
        return web.Response(body=b'{"predictions": [1]}', content_type="application/json")

    async def main() -> tuple[list[str | None], int, float]:
        app = web.Application()
        app.router.add_post("/v1/models/m:predict", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        engine = AiohttpEngine(Target(url=f"http://127.0.0.1:{port}/v1/models/m:predict",
                                      bodies=(b'{"instances": [1]}',), timeout_s=0.3))
        try:
            await engine.start()
            t0 = time.perf_counter()
            first = await engine.send(0)
            elapsed = time.perf_counter() - t0
            second = await engine.send(0)
            return [first.error, second.error], asyncio.current_task().cancelling(), elapsed  # type: ignore[union-attr]
        finally:
            await engine.close()
            await runner.cleanup()

    errors, cancelling, elapsed = uvloop.run(main())
    assert errors == [TIMEOUT, None]
    assert cancelling == 0
    assert 0.25 <= elapsed < 1.5  # the 0.3 s timeout (swept every 15 ms), not the server's 2 s
