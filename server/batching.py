"""Server-side batching modelled on TF Serving's BasicBatchScheduler.

Why: batch-size and concurrency sweeps against the embedded target should show the effects users
see with `--enable_batching`: requests wait in a queue (the queuing_latency histogram), small
requests are merged, and when `max_enqueued_batches` batches are waiting, new requests that need a
new batch are refused with UNAVAILABLE (HTTP 503), as SharedBatchScheduler::Schedule does.

One scheduler per (servable, signature). A batch is processed when a batch thread is free and the
batch is full, or its `batch_timeout_micros` has passed (0: at once). Batch threads are asyncio
tasks: the per-batch service time is awaited (overlapping across threads), and `compute` is awaited
too (the server runs the model in its worker threads, off the event loop).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

import numpy as np
from tfsbench.server.options import BatchingOptions
from tfsbench.server.registry import ServingError

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


class _Task:
    __slots__ = ("inputs", "size", "future", "enqueued_ns")

    def __init__(self, inputs: Mapping[str, np.ndarray], size: int, future: asyncio.Future) -> None:
        self.inputs = inputs
        self.size = size
        self.future = future
        self.enqueued_ns = time.perf_counter_ns()


class _Batch:
    __slots__ = ("tasks", "size", "expired")

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.expired = False


class BatchScheduler:
    """Queue tasks into batches; run at most `num_batch_threads` batches at a time."""

    def __init__(
        self,
        options: BatchingOptions,
        compute: Callable[[Mapping[str, np.ndarray]], Awaitable[dict[str, np.ndarray]]],
        service_delay: Callable[[], Awaitable[None]] | None = None,
        on_queued: Callable[[float], None] | None = None,
        on_batch: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self._compute = compute
        self._service_delay = service_delay
        self._on_queued = on_queued
        self._on_batch = on_batch
        self._timeout_s = options.batch_timeout_micros / 1e6
        self._open: _Batch | None = None
        self._closed: deque[_Batch] = deque()
        self._idle_threads = options.num_batch_threads
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()

    @property
    def enqueued_batches(self) -> int:
        return len(self._closed) + (1 if self._open is not None else 0)

    async def submit(self, inputs: Mapping[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
        """Queue one request's inputs (dim 0 = `size`) and wait for its slice of the batch output."""
        if size > self.options.max_batch_size:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Task size {size} is larger than maximum input batch size {self.options.max_batch_size}",
            )
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or batch.size + size > self.options.max_batch_size:
            if self.enqueued_batches >= self.options.max_enqueued_batches:
                raise ServingError("UNAVAILABLE", QUEUE_FULL_MESSAGE)
            if batch is not None:
                self._closed.append(batch)
            batch = self._open = _Batch()
            if self._timeout_s > 0:
                self._timer = loop.call_later(self._timeout_s, self._expire, batch)
        task = _Task(inputs, size, loop.create_future())
        batch.tasks.append(task)
        batch.size += size
        if batch.size >= self.options.max_batch_size:
            self._closed.append(batch)
            self._open = None
        self._dispatch()
        return await task.future

    def _expire(self, batch: _Batch) -> None:
        batch.expired = True
        self._dispatch()

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._idle_threads > 0:
            if self._closed:
                batch = self._closed.popleft()
            elif self._open is not None and (self._timeout_s == 0 or self._open.expired):
                batch, self._open = self._open, None
            else:
                return
            self._idle_threads -= 1
            runner = loop.create_task(self._run(batch))
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        try:
            now_ns = time.perf_counter_ns()
            if self._on_queued is not None:
                for task in batch.tasks:
                    self._on_queued((now_ns - task.enqueued_ns) / 1000.0)
            if self._service_delay is not None:
                await self._service_delay()
            tasks = [t for t in batch.tasks if not t.future.done()]
            if not tasks:
                return
            if self._on_batch is not None:
                self._on_batch()
            try:
                if len(tasks) == 1:
                    outputs = await self._compute(tasks[0].inputs)
                    tasks[0].future.set_result(outputs)
                    return
                names = list(tasks[0].inputs)
                merged = {name: np.concatenate([t.inputs[name] for t in tasks], axis=0) for name in names}
                outputs = await self._compute(merged)
            except Exception as exc:  # one bad input fails its batch, as in TF
                for task in tasks:
                    if not task.future.done():
                        task.future.set_exception(exc)
                return
            start = 0
            for task in tasks:
                end = start + task.size
                if not task.future.done():
                    task.future.set_result({name: out[start:end] for name, out in outputs.items()})
                start = end
        finally:
            self._idle_threads += 1
            self._dispatch()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for runner in list(self._running):
            runner.cancel()
