"""When to send: closed loop (C requests in flight) and open loop (arrivals at a rate), per process.

Closed loop: C workers, each sends, waits for the whole response, sends again. Latency runs from
the actual send, so a server stall slows the senders down and hides itself (coordinated omission):
use it to find capacity, not to quote tail latency.

Open loop: arrivals follow a schedule fixed in advance (constant spacing or Poisson, seeded), and
each request's latency runs from its *intended* send time (as wrk2 and MLPerf LoadGen do), so a
stall shows up in full in the percentiles. How late each request actually left is the schedule
lag; a request more than 1 ms late counts as late. When --max-inflight requests are already in
flight, a due arrival is refused and counted (never dropped silently, never queued into a burst).

Timers: the event loop's own timers have 1 ms resolution (libuv) and fire up to a millisecond early
or late, far too coarse for a schedule whose lag should stay under a millisecond. On Linux the
dispatcher therefore sleeps on a timerfd armed at the absolute intended time (CLOCK_MONOTONIC, the
clock behind time.perf_counter) and registered with the event loop, so responses keep flowing while
it waits and it wakes within tens of microseconds, without spinning. It wakes at most once per
BURST_S (0.2 ms) and then sends every arrival that has come due, each with its own lag: above about
5,000 req/s per process that bounds the timer's cost instead of paying a wake-up per request.
Elsewhere it sleeps on the
loop's timer until 1.5 ms before the arrival, then yields to the loop until it is due (spinning that
is measured and not counted as client CPU).
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tfsbench.bench.measure.engine import CANCELLED, Engine, Outcome
from tfsbench.bench.measure.recorder import Recorder

ARRIVALS = ("constant", "poisson")
STOP_GRACE_S = 2.0  # an interrupted run waits this long for requests in flight
SPIN_S = 0.0015  # open loop: stop sleeping on a timer this long before an arrival
IDLE_ITERATION_S = 50e-6  # a loop iteration this short did no I/O: it was idle spinning
# open loop: below this wait, yield to the loop instead of sleeping: a sleep and wake-up costs tens
# of microseconds of CPU (about 50 us in this project's VM), a loop iteration a few
TIMER_MIN_S = 50e-6
# open loop: the dispatcher wakes at most once per BURST_S. At higher rates each wake-up sends every
# arrival that has come due (a burst, each with its own lag); arming a timer per arrival would cost
# about 50 us of CPU each and saturate the client at 14k req/s. A lag of up to 0.2 ms stays well
# under the 1 ms that counts as late; at lower rates the dispatcher still wakes at each arrival.
BURST_S = 200e-6
# open loop: a completion sends the arrivals that are due once the dispatcher is this late. Sending
# from every completion as soon as anything is due splits the bursts into single sends, each waking
# an idle target (a cross-CPU wake-up costs the sender tens of microseconds in this project's VM):
# measured at 45k req/s, 77-83% of a core instead of 71-74%, for a lag p50 of 0.02 instead of 0.16 ms
COMPLETION_SLACK_S = BURST_S
_perf = time.perf_counter


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """One engine process's share of the load."""

    mode: str  # closed | open
    concurrency: int = 1  # closed loop
    rate_rps: float = 0.0  # open loop, this process's share
    arrival: str = "constant"
    phase_s: float = 0.0  # open loop: offset of this process's first arrival (constant spacing)
    warmup_s: float = 0.0
    duration_s: float | None = None
    requests_limit: int | None = None  # measured requests for this process
    max_inflight: int = 1024
    seed: int = 0


# ---- arrivals ---------------------------------------------------------------------------------


def interarrival_s(rate_rps: float, arrival: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` gaps between arrivals: constant 1/rate, or exponential with mean 1/rate (Poisson)."""
    if rate_rps <= 0 or not math.isfinite(rate_rps):
        raise ValueError(f"rate must be > 0, got {rate_rps}")
    if arrival == "constant":
        return np.full(n, 1.0 / rate_rps)
    if arrival == "poisson":
        return rng.exponential(1.0 / rate_rps, n)
    raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, got {arrival!r}")


def arrival_offsets(rate_rps: float, arrival: str, seed: int = 0, phase_s: float = 0.0,
                    chunk: int = 4096) -> Iterator[float]:
    """Intended send times, in seconds from the schedule's start, forever (generated in chunks).

    Constant: `phase_s + k / rate` exactly, so rounding never drifts the rate over millions of
    arrivals. Poisson: cumulative sums of exponential gaps (the first arrival after one random gap;
    the process is memoryless, so no phase is needed)."""
    rng = np.random.default_rng(seed)
    base = 0.0
    k = 0
    while True:
        if arrival == "constant":
            offs = phase_s + np.arange(k, k + chunk) / rate_rps
            k += chunk
        else:
            offs = base + np.cumsum(interarrival_s(rate_rps, arrival, chunk, rng))
            base = float(offs[-1])
        yield from offs.tolist()


# ---- precise sleeping ---------------------------------------------------------------------------


class _TimerFd:
    """A Linux timerfd in the event loop: `await sleep_until(t)` wakes at perf_counter() == t."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import ctypes
        import os

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class Itimerspec(ctypes.Structure):
            _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

        if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            raise OSError("perf_counter is not CLOCK_MONOTONIC")
        libc = ctypes.CDLL(None, use_errno=True)
        self._libc = libc
        self._spec = Itimerspec(Timespec(0, 0), Timespec(0, 0))  # reused: no allocation per wake-up
        self._spec_ref = ctypes.byref(self._spec)
        self._settime = libc.timerfd_settime
        fd = libc.timerfd_create(1, os.O_NONBLOCK | os.O_CLOEXEC)  # CLOCK_MONOTONIC
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd = fd
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self._read = os.read
        loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        try:
            self._read(self.fd, 8)
        except BlockingIOError:
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sleep_until(self, t: float) -> None:
        sec = int(t)
        value = self._spec.it_value
        value.tv_sec = sec
        value.tv_nsec = int((t - sec) * 1e9)
        self._waiter = self._loop.create_future()
        if self._settime(self.fd, 1, self._spec_ref, None) != 0:  # TFD_TIMER_ABSTIME
            self._waiter = None
            await asyncio.sleep(max(0.0, t - _perf()))
            return
        await self._waiter

    def close(self) -> None:
        import os

        self._loop.remove_reader(self.fd)
        os.close(self.fd)


class _LoopSleeper:
    """Fallback: the loop's 1 ms timer, then yield-and-check for the last SPIN_S."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def sleep_until(self, t: float) -> None:
        while True:
            wait = t - _perf()
            if wait <= 0:
                return
            if wait > SPIN_S + 0.001:
                await asyncio.sleep(wait - SPIN_S)
            else:
                t_yield = _perf()
                await asyncio.sleep(0)
                spun = _perf() - t_yield
                if spun < IDLE_ITERATION_S:
                    self.rec.idle_spin_s += spun

    def close(self) -> None:
        pass


def make_sleeper(loop: asyncio.AbstractEventLoop, rec: Recorder) -> _TimerFd | _LoopSleeper:
    try:
        return _TimerFd(loop)
    except (OSError, AttributeError, NotImplementedError):
        return _LoopSleeper(rec)


# ---- drivers ------------------------------------------------------------------------------------


class RunState:
    """Shared by a process's driver and ticker; `stopping` means: send nothing new (an interruption).
    `measure_start`/`measure_end` (perf_counter) bound the measured window; `drive` sets them from
    the plan, and a run that measures until stable moves them while it runs (warm-up settled early,
    stability reached): requests are sent until `measure_end`, and those in flight then finish."""

    __slots__ = ("stopping", "stop_reason", "stopped_at", "measure_start", "measure_end")

    def __init__(self) -> None:
        self.stopping = False
        self.stop_reason: str | None = None
        self.stopped_at: float | None = None
        self.measure_start = math.inf
        self.measure_end = math.inf

    def stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            self.stopped_at = _perf()


async def drive(engine: Engine, plan: LoadPlan, recorder: Recorder, request_sizes: tuple[int, ...],
                start_at: float, state: RunState, on_tick: Callable[[float], None] | None = None,
                tick_s: float = 0.1) -> float:
    """Run one process's load from `start_at` (perf_counter) to the end; returns the end time."""
    loop = asyncio.get_running_loop()
    state.measure_start = start_at + plan.warmup_s
    state.measure_end = state.measure_start + plan.duration_s if plan.duration_s is not None else math.inf
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), tick_s)
            except TimeoutError:
                pass
            now = _perf()
            recorder.roll(now)
            if on_tick is not None:
                on_tick(now)

    tick_task = loop.create_task(ticker())
    # Everything allocated so far (modules, payload pools) is long-lived: freezing it keeps the
    # collector's occasional full pass during the run short (measured: a 15 ms stall became 8 ms,
    # about 200 requests late at 30k req/s); unfrozen afterwards, so the caller sees no change.
    frozen = not gc.get_freeze_count()
    if frozen:
        gc.freeze()
    while _perf() < start_at:  # timers may fire up to ~1 ms early: never start before start_at
        delay = start_at - _perf()
        await asyncio.sleep(delay if delay > 0.002 else 0)
    try:
        if plan.mode == "closed":
            await _closed(engine, plan, recorder, request_sizes, state)
        else:
            await _open(engine, plan, recorder, request_sizes, start_at, state)
    finally:
        done.set()
        await tick_task
        if frozen:
            gc.unfreeze()
    return _perf()


async def _settle(tasks: set[asyncio.Task[None]], state: RunState) -> None:
    """Wait for tasks; if the run is being interrupted, give them STOP_GRACE_S, then cancel."""
    while tasks:
        if state.stopping:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
            return
        await asyncio.wait(tasks, timeout=0.1)
        tasks = {t for t in tasks if not t.done()}


async def _wait_callbacks(engine: Any, finished: asyncio.Future[None], state: RunState) -> None:
    """Wait until `finished`; if the run is being interrupted, give in-flight requests
    STOP_GRACE_S, then have the engine end them (they are recorded as `cancelled`)."""
    while not finished.done():
        if state.stopping:
            try:
                await asyncio.wait_for(asyncio.shield(finished), STOP_GRACE_S)
            except TimeoutError:
                engine.abort_inflight("in flight when the run was interrupted")
                await asyncio.wait({finished}, timeout=5.0)
            return
        await asyncio.wait({finished}, timeout=0.1)


async def _closed_callbacks(engine: Any, plan: LoadPlan, rec: Recorder, sizes: tuple[int, ...],
                            state: RunState) -> None:
    """Closed loop on an engine with `submit`: each of the C senders chains its next request
    from the previous one's completion callback (no task or future per request)."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    n_bodies = len(sizes)
    limit = plan.requests_limit
    st = [0, 0, plan.concurrency]  # next body index, measured sends, senders still going
    submit = engine.submit
    record = rec.record

    class Sender:
        """One of the C closed-loop senders; its bound `done` is reused for every request."""

        __slots__ = ("t0", "i", "cb")

        def __init__(self) -> None:
            self.t0 = 0.0
            self.i = 0
            self.cb = self.done

        def step(self) -> None:
            t0 = _perf()
            if state.stopping or t0 >= state.measure_end or (
                    limit is not None and t0 >= state.measure_start and st[1] >= limit):
                st[2] -= 1
                if st[2] == 0 and not finished.done():
                    finished.set_result(None)
                return
            if limit is not None and t0 >= state.measure_start:
                st[1] += 1
            i = st[0]
            st[0] = i + 1 if i + 1 < n_bodies else 0
            self.t0 = t0
            self.i = i
            submit(i, self.cb)

        def done(self, out: Outcome) -> None:
            record(self.t0, _perf(), out, sizes[self.i])
            self.step()

    for _ in range(plan.concurrency):
        loop.call_soon(Sender().step)
    await _wait_callbacks(engine, finished, state)


async def _closed(engine: Engine, plan: LoadPlan, rec: Recorder, sizes: tuple[int, ...], state: RunState) -> None:
    if hasattr(engine, "submit"):
        await _closed_callbacks(engine, plan, rec, sizes, state)
        return
    n_bodies = len(sizes)
    limit = plan.requests_limit
    counter = [0, 0]  # next body index, measured sends so far

    async def worker(first: int) -> None:
        while not state.stopping:
            t0 = _perf()
            if t0 >= state.measure_end:
                return
            if t0 >= state.measure_start and limit is not None:
                if counter[1] >= limit:
                    return
                counter[1] += 1
            i = counter[0]
            counter[0] = i + 1 if i + 1 < n_bodies else 0
            try:
                out = await engine.send(i)
            except asyncio.CancelledError:
                rec.record(t0, _perf(), Outcome(CANCELLED, 0, "in flight when the run was interrupted"), sizes[i])
                raise
            rec.record(t0, _perf(), out, sizes[i])

    loop = asyncio.get_running_loop()
    tasks = {loop.create_task(worker(k)) for k in range(plan.concurrency)}
    await _settle(tasks, state)


async def _open(engine: Engine, plan: LoadPlan, rec: Recorder, sizes: tuple[int, ...], start_at: float,
                state: RunState) -> None:
    """Send each arrival at its intended time. Arrivals are dispatched from two places: the
    dispatcher coroutine, which sleeps on the timer until the next arrival (waking at most once
    per BURST_S), and the completions: when the loop is busy with responses, the timer's wake-up
    waits behind a whole loop iteration of them (milliseconds at tens of thousands of req/s), so
    a completion that finds the dispatcher COMPLETION_SLACK_S behind sends what is due itself.
    The check costs one comparison per response."""
    loop = asyncio.get_running_loop()
    n_bodies = len(sizes)
    limit = plan.requests_limit
    cap = plan.max_inflight
    tasks: set[asyncio.Task[None]] = set()
    inflight = [0]
    submit = getattr(engine, "submit", None)
    record = rec.record
    drained: asyncio.Future[None] = loop.create_future()
    offsets = arrival_offsets(plan.rate_rps, plan.arrival, plan.seed, plan.phase_s)
    # next body index, measured arrivals so far, next arrival's time, all arrivals dispatched
    body = 0
    measured = 0
    next_t = start_at + next(offsets)
    finished = False
    finishing = False

    def dispatch(now: float) -> None:
        """Send (or refuse, at the in-flight cap) every arrival due by `now`."""
        nonlocal body, measured, next_t, finished
        while next_t <= now and not finished:
            if state.stopping or next_t >= state.measure_end:
                finished = True
                return
            if next_t >= state.measure_start and limit is not None:
                if measured >= limit:
                    finished = True
                    return
                measured += 1
            if inflight[0] >= cap:
                rec.refuse(next_t)
            else:
                send_now(body, next_t)
                body = body + 1 if body + 1 < n_bodies else 0
            next_t = start_at + next(offsets)

    async def one(i: int, intended: float) -> None:
        actual = _perf()
        if intended >= state.measure_start:
            rec.record_lag(intended, actual)
        try:
            out = await engine.send(i)
        except asyncio.CancelledError:
            rec.record(intended, _perf(), Outcome(CANCELLED, 0, "in flight when the run was interrupted"), sizes[i])
            raise
        finally:
            inflight[0] -= 1
        t = _perf()
        rec.record(intended, t, out, sizes[i])
        if t - next_t >= COMPLETION_SLACK_S:
            dispatch(t)

    def send_now(i: int, intended: float) -> None:
        inflight[0] += 1
        if submit is None:
            t = loop.create_task(one(i, intended))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            return

        def done(out: Outcome) -> None:
            inflight[0] -= 1
            t = _perf()
            record(intended, t, out, sizes[i])
            if t - next_t >= COMPLETION_SLACK_S:
                dispatch(t)
            if finishing and inflight[0] == 0 and not drained.done():
                drained.set_result(None)

        if intended >= state.measure_start:
            rec.record_lag(intended, _perf())
        submit(i, done)

    sleeper = make_sleeper(loop, rec)
    try:
        while not finished and not state.stopping:
            woke = _perf()
            dispatch(woke)
            if finished or next_t >= state.measure_end:  # nothing more to send in this window
                break
            # wake at the next arrival, but not sooner than BURST_S after this wake-up (or within
            # 0.1 s, to notice a stop); responses are handled (and dispatch) meanwhile
            wake_at = next_t if next_t - woke >= BURST_S else woke + BURST_S
            if wake_at - _perf() > TIMER_MIN_S:
                await sleeper.sleep_until(min(wake_at, _perf() + 0.1))
            else:
                await asyncio.sleep(0)  # due in microseconds: one loop iteration costs less than a wake-up
    finally:
        finished = True  # completions arriving from now on send nothing
        sleeper.close()
    if submit is None:
        await _settle(set(tasks), state)
        return
    finishing = True
    if inflight[0] == 0:
        drained.set_result(None)
    await _wait_callbacks(engine, drained, state)
