"""Sub-millisecond sleeps for the event loop: `--service-time 5.4ms` must cost 5.4 ms, not 6.

The loop's own timers round to its clock resolution (libuv/uvloop: whole milliseconds; asyncio's
selector: the epoll timeout is rounded up to 1 ms), so `asyncio.sleep(0.0054)` returns after ~6 ms.
`PreciseTimer` keeps one daemon thread that waits on a condition variable until the earliest
deadline (the kernel wakes it within ~0.1 ms, it does not spin) and then resolves the sleeping
coroutine's future with `call_soon_threadsafe`, which wakes the loop at once. The loop itself stays
free: thousands of overlapping sleeps cost one heap entry each.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time

# Sleeps longer than this first wait on the loop (cheap, coarse) and hand only the rest to the thread.
_COARSE_MARGIN_S = 0.003


class PreciseTimer:
    """`await timer.sleep(delay_s)`: returns within ~0.1 ms after the delay (see module doc)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def sleep(self, delay_s: float) -> None:
        deadline = time.perf_counter() + delay_s
        if delay_s > 2 * _COARSE_MARGIN_S:
            await asyncio.sleep(delay_s - _COARSE_MARGIN_S)
        if deadline - time.perf_counter() <= 0:
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("timer closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tfsbench-serve-timer", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._seq), loop, future))
            self._cond.notify()
        await future

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait_s = self._heap[0][0] - time.perf_counter()
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                _, _, loop, future = heapq.heappop(self._heap)
                try:
                    loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    pass

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()


def _wake(future: asyncio.Future) -> None:
    if not future.done():  # cancelled by a deadline (asyncio.timeout) in the meantime
        future.set_result(None)
