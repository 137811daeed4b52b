"""Keep the event loop free: heavy request decoding in worker processes, model calls in threads.

Why processes for decoding: parsing a large JSON body is one long C call (orjson) followed by
numpy conversions that also hold the GIL; a 24 MB body of numbers holds it for seconds, and a
thread pool would still freeze status and metadata requests for that long. Worker processes
(forkserver, started on the first heavy body, sized to the usable cores) parse and check the body
and send back the decoded arrays. Small bodies, the bulk of any benchmark, are decoded inline:
their cost is bounded (at most `INLINE_MAX_BYTES` and `INLINE_MAX_TOKENS` JSON values, ~1 ms), and
a process hop would cost more than the decoding.

Model calls and response encoding run in a thread pool of the same size (numpy, Pillow and
TensorFlow release the GIL while they compute), except for models that declare themselves cheap
(`inline_ok = True`) on small inline-decoded requests.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tfsbench.payloads.codec import CodecError, DecodedRequest, decode_request, parse_json
from tfsbench.payloads.signature import SignatureSpec

INLINE_MAX_BYTES = 256 * 1024
INLINE_MAX_TOKENS = 8192  # ',' + '[' + '{' in the body: an upper bound on the JSON values in it

T = TypeVar("T")


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def is_light(body: bytes) -> bool:
    """True when decoding `body` is cheap enough for the event loop (see module doc)."""
    if len(body) > INLINE_MAX_BYTES:
        return False
    return body.count(b",") + body.count(b"[") + body.count(b"{") <= INLINE_MAX_TOKENS


class WorkerLost(RuntimeError):
    """A decoding worker process died (killed, out of memory): the request fails, the pool is renewed."""


class RequestLimitError(Exception):
    """A request over a per-request cap: 400 INVALID_ARGUMENT with this message."""


def check_limits(decoded: DecodedRequest, max_instances: int, max_elements: int) -> None:
    batch = decoded.batch_size
    if batch is not None and batch > max_instances:
        raise RequestLimitError(
            f"Request has {batch} instances, more than the limit of {max_instances} (serve --max-instances)"
        )
    elements = sum(int(arr.size) for arr in decoded.inputs.values())
    if elements > max_elements:
        raise RequestLimitError(
            f"Request has {elements} tensor elements, more than the limit of {max_elements} (serve --max-elements)"
        )


def decode_checked(
    body: bytes,
    signatures: Mapping[str, SignatureSpec],
    default_signature: str,
    max_depth: int,
    max_instances: int,
    max_elements: int,
) -> tuple[str, Any, Any]:
    """Decode and check the caps; never raises for bad input (the result crosses a process boundary).

    ("ok", DecodedRequest, None), ("codec", http_status, message) or ("limit", None, message).
    """
    try:
        decoded = decode_request(body, signatures, default_signature=default_signature, max_depth=max_depth)
        check_limits(decoded, max_instances, max_elements)
    except CodecError as exc:
        return ("codec", exc.status, str(exc))
    except RequestLimitError as exc:
        return ("limit", None, str(exc))
    except MemoryError:
        return ("codec", 400, "Request is too large to decode")
    return ("ok", decoded, None)


def json_error(body: bytes, max_depth: int) -> tuple[int, str] | None:
    """(http_status, message) when `body` is not acceptable JSON, else None (nothing big crosses back)."""
    try:
        parse_json(body, max_depth=max_depth)
    except CodecError as exc:
        return (exc.status, str(exc))
    except MemoryError:
        return (400, "Request is too large to decode")
    return None


class Offload:
    """One server's worker threads and (lazily) worker processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or usable_cores()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="tfsbench-serve-work")
        self._procs: ProcessPoolExecutor | None = None
        self._procs_lock = threading.Lock()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in the thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    async def decode(self, body: bytes, signatures: Mapping[str, SignatureSpec], default_signature: str,
                     max_depth: int, max_instances: int, max_elements: int) -> tuple[str, Any, Any]:
        """decode_checked, inline for light bodies, else in a worker process."""
        args = (body, signatures, default_signature, max_depth, max_instances, max_elements)
        if is_light(body):
            return decode_checked(*args)
        return await self._in_process(decode_checked, args)

    async def check_json(self, body: bytes, max_depth: int) -> None:
        """Raise CodecError when `body` is not acceptable JSON; heavy bodies are parsed in a worker process."""
        if is_light(body):
            parse_json(body, max_depth=max_depth)
            return
        error = await self._in_process(json_error, (body, max_depth))
        if error is not None:
            raise CodecError(error[1], error[0])

    async def _in_process(self, fn: Callable[..., T], args: tuple) -> T:
        loop = asyncio.get_running_loop()
        # Submitting may start the pool (seconds, blocking): do it from a worker thread, not the loop.
        try:
            pool, future = await loop.run_in_executor(self._threads, self._submit, fn, args)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            with self._procs_lock:
                if self._procs is pool:
                    self._procs = None  # the next heavy request starts a fresh pool
            pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerLost("a decoding worker process died (out of memory?); the request was not decoded") from None

    def _submit(self, fn: Callable[..., Any], args: tuple) -> tuple[ProcessPoolExecutor, Any]:
        with self._procs_lock:
            if self._procs is None:
                # forkserver: workers fork from a clean single-threaded process (not from this one,
                # whose event loop and pool threads may hold locks); spawn where it does not exist.
                if "forkserver" in multiprocessing.get_all_start_methods():
                    context = multiprocessing.get_context("forkserver")
                    context.set_forkserver_preload(["tfsbench.server.offload"])
                else:
                    context = multiprocessing.get_context("spawn")
                self._procs = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._procs, self._procs.submit(fn, *args)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._procs_lock:
            if self._procs is not None:
                self._procs.shutdown(wait=False, cancel_futures=True)
                self._procs = None
