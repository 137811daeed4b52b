"""Trace replay: send each request of a trace at its own time, open loop, to its own target.

The arrivals come from a trace instead of a rate, and a request may go to one of several targets
(model, version, batch size: one engine and one body pool each), but the timing is the open loop's
of `schedule.py`, reused as is: the dispatcher sleeps on the timerfd sleeper until the next send
time (waking at most once per BURST_S and then sending everything due, each with its own lag),
completions send what is due once the dispatcher is COMPLETION_SLACK_S behind, latency runs from
the *intended* send time (no coordinated omission), and an arrival that finds --max-inflight
requests in flight is refused and counted, never queued into a burst.

Besides the shared Recorder (run totals, histograms, per-second series), every request's intended
time, lag, latency and outcome are kept in flat arrays (25 bytes a request), so results can be cut
into windows of trace time afterwards, and the bar "each request within 1 ms of its time" can be
checked request by request.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tfsbench.bench.measure.engine import CANCELLED, Outcome
from tfsbench.bench.measure.recorder import Recorder
from tfsbench.bench.measure.schedule import (
    BURST_S,
    COMPLETION_SLACK_S,
    STOP_GRACE_S,
    TIMER_MIN_S,
    RunState,
    make_sleeper,
)

# outcome codes per request
OK, ERROR, REFUSED, NOT_SENT = 0, 1, 2, 3
_perf = time.perf_counter


@dataclass(frozen=True, slots=True, eq=False)
class TraceLoad:
    """What to send when: request i leaves at start + send_s[i] for target target_index[i] with
    that target's body body_index[i]."""

    send_s: np.ndarray  # float64, sorted, seconds from the start (trace time / speed)
    target_index: np.ndarray  # int32
    body_index: np.ndarray  # int32
    max_inflight: int = 1000

    def __post_init__(self) -> None:
        n = self.send_s.size
        if self.target_index.size != n or self.body_index.size != n:
            raise ValueError("send_s, target_index and body_index differ in length")
        if n and np.any(np.diff(self.send_s) < 0):
            raise ValueError("send_s must be sorted")


@dataclass(frozen=True, slots=True, eq=False)
class TraceRecord:
    """Per request, in trace order: lag (actual - intended send, s; NaN unless sent), latency from
    the intended send time (s; NaN unless ok) and outcome code (OK, ERROR, REFUSED, NOT_SENT)."""

    lag_s: np.ndarray
    latency_s: np.ndarray
    status: np.ndarray  # int8
    errors_by_request: dict[int, str]  # request index -> error class (errors only)


async def replay(engines: Sequence[Any], load: TraceLoad, sizes: Sequence[Sequence[int]], rec: Recorder,
                 start_at: float, state: RunState, on_tick: Callable[[float], None] | None = None,
                 tick_s: float = 0.1) -> tuple[float, TraceRecord]:
    """Send `load` from `start_at` (perf_counter); returns (end time, per-request record).
    `sizes[k][j]` is the byte size of target k's body j (for the recorder's accounting)."""
    loop = asyncio.get_running_loop()
    n = load.send_s.size
    lag = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    status = np.full(n, NOT_SENT, dtype=np.int8)
    errors: dict[int, str] = {}
    send_s = load.send_s.tolist()
    targets = load.target_index.tolist()
    bodies = load.body_index.tolist()
    submits = [getattr(e, "submit", None) for e in engines]
    cap = load.max_inflight
    inflight = [0]
    tasks: set[asyncio.Task[None]] = set()
    record = rec.record
    done_ev = asyncio.Event()
    drained: asyncio.Future[None] = loop.create_future()
    nxt = 0
    next_t = start_at + send_s[0] if n else math.inf
    finished = n == 0
    finishing = False

    def note(i: int, intended: float, t: float, out: Outcome) -> None:
        k = targets[i]
        record(intended, t, out, sizes[k][bodies[i]])
        if out.error is None:
            status[i] = OK
            latency[i] = t - intended
        else:
            status[i] = ERROR
            errors[i] = out.error

    def dispatch(now: float) -> None:
        nonlocal nxt, next_t, finished
        while next_t <= now and not finished:
            if state.stopping:
                finished = True
                return
            i = nxt
            if inflight[0] >= cap:
                rec.refuse(next_t)
                status[i] = REFUSED
            else:
                send_now(i, next_t)
            nxt = i + 1
            if nxt >= n:
                finished = True
                next_t = math.inf
                return
            next_t = start_at + send_s[nxt]

    async def one(i: int, intended: float) -> None:
        engine = engines[targets[i]]
        try:
            out = await engine.send(bodies[i])
        except asyncio.CancelledError:
            note(i, intended, _perf(), Outcome(CANCELLED, 0, "in flight when the replay was interrupted"))
            raise
        finally:
            inflight[0] -= 1
        t = _perf()
        note(i, intended, t, out)
        if t - next_t >= COMPLETION_SLACK_S:
            dispatch(t)

    def send_now(i: int, intended: float) -> None:
        inflight[0] += 1
        actual = _perf()
        lag[i] = actual - intended
        rec.record_lag(intended, actual)
        submit = submits[targets[i]]
        if submit is None:
            task = loop.create_task(one(i, intended))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return

        def done(out: Outcome) -> None:
            inflight[0] -= 1
            t = _perf()
            note(i, intended, t, out)
            if t - next_t >= COMPLETION_SLACK_S:
                dispatch(t)
            if finishing and inflight[0] == 0 and not drained.done():
                drained.set_result(None)

        submit(bodies[i], done)

    async def ticker() -> None:
        while not done_ev.is_set():
            try:
                await asyncio.wait_for(done_ev.wait(), tick_s)
            except TimeoutError:
                pass
            now = _perf()
            rec.roll(now)
            if on_tick is not None:
                on_tick(now)

    tick_task = loop.create_task(ticker())
    frozen = not gc.get_freeze_count()
    if frozen:
        gc.freeze()  # as in schedule.drive: keeps the collector's full passes short during the run
    while _perf() < start_at:
        delay = start_at - _perf()
        await asyncio.sleep(delay if delay > 0.002 else 0)
    sleeper = make_sleeper(loop, rec)
    try:
        while not finished and not state.stopping:
            woke = _perf()
            dispatch(woke)
            if finished:
                break
            wake_at = next_t if next_t - woke >= BURST_S else woke + BURST_S
            if wake_at - _perf() > TIMER_MIN_S:
                await sleeper.sleep_until(min(wake_at, _perf() + 0.1))
            else:
                await asyncio.sleep(0)
        finished = True
        if tasks:
            await _settle_tasks(tasks, state)
        finishing = True
        if inflight[0] == 0 and not drained.done():
            drained.set_result(None)
        await _wait_drained(engines, drained, state)
    finally:
        finished = True
        sleeper.close()
        done_ev.set()
        await tick_task
        if frozen:
            gc.unfreeze()
    return _perf(), TraceRecord(lag, latency, status, errors)


async def _settle_tasks(tasks: set[asyncio.Task[None]], state: RunState) -> None:
    while tasks:
        pending = {t for t in tasks if not t.done()}
        if not pending:
            return
        if state.stopping:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE_S)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late)
            return
        await asyncio.wait(pending, timeout=0.1)


async def _wait_drained(engines: Sequence[Any], drained: asyncio.Future[None], state: RunState) -> None:
    while not drained.done():
        if state.stopping:
            try:
                await asyncio.wait_for(asyncio.shield(drained), STOP_GRACE_S)
            except TimeoutError:
                for engine in engines:
                    abort = getattr(engine, "abort_inflight", None)
                    if abort is not None:
                        abort("in flight when the replay was interrupted")
                await asyncio.wait({drained}, timeout=5.0)
            return
        await asyncio.wait({drained}, timeout=0.1)
