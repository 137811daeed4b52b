"""Benchmark: what aiohttp's ClientSession itself costs per request, and which settings change it.

    .venv/bin/python -m benchmarks.bench_aiohttp_session [--requests 20000] [--rounds 12] --out FILE.json

Bare request loops (64 tasks, `await session.request(...)`, `read()`, `release()`), no tfsbench
engine around them, against the static nginx target of bench/orchestrate/selfbench.py; CPU time of this
process (user + system) per request, variants alternated round by round, medians reported:

- `skip-list`: `skip_auto_headers=("Accept-Encoding",)` on the session (the engine before 2026-11-27);
- `header`: `Accept-Encoding: identity` as a session header instead (what the engine does now);
- `eager-writer`: as `header`, plus a task factory that runs aiohttp's body-writer coroutine at once
  instead of as a task on the next loop iteration (what aiohttp does itself on Python 3.12+).

This is where docs/performance.md's aiohttp session figures come from. A benchmark script, not a test.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from typing import Any

import aiohttp
from aiohttp.client_reqrep import ClientRequest
from aiohttp.payload import BytesPayload
from tfsbench.bench.orchestrate.selfbench import PREDICT_PATH, REQUEST_BODY, static_target
from yarl import URL

from benchmarks import harness

VARIANTS = ("skip-list", "header", "eager-writer")
CONNECTIONS = 64
_WRITER_CODE = ClientRequest.write_bytes.__code__


def _eager_writer_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """Run aiohttp's body writer to completion at once when it does not wait (a small body always
    fits in the socket), returning a finished future; every other coroutine becomes a normal task."""
    if getattr(coro, "cr_code", None) is not _WRITER_CODE:
        return asyncio.Task(coro, loop=loop, **kwargs)
    fut = loop.create_future()
    try:
        coro.send(None)
    except StopIteration as stop:
        fut.set_result(stop.value)
        return fut
    except BaseException as exc:  # noqa: BLE001 - handed to aiohttp as the writer's outcome
        fut.set_exception(exc)
        return fut
    coro.close()
    raise RuntimeError("the body writer had to wait: use a smaller body for this variant")


async def _one(url: str, variant: str, requests: int) -> float:
    headers = {"Content-Type": "application/json"}
    kwargs: dict[str, Any] = {}
    if variant == "skip-list":
        kwargs["skip_auto_headers"] = ("Accept-Encoding",)
    else:
        headers["Accept-Encoding"] = "identity"
    if variant == "eager-writer":
        asyncio.get_running_loop().set_task_factory(_eager_writer_factory)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0), cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False, headers=headers, timeout=aiohttp.ClientTimeout(), **kwargs)
    target = URL(url + PREDICT_PATH)
    body = BytesPayload(REQUEST_BODY)
    left = [0]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            resp = await session.request("POST", target, data=body, allow_redirects=False)
            await resp.read()
            resp.release()
            if resp.status != 200:
                raise RuntimeError(f"target answered {resp.status}")

    try:
        left[0] = requests // 4  # warm up: connections, caches
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        gc.collect()
        left[0] = requests
        c0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return (time.process_time() - c0) / requests * 1e6
    finally:
        await session.close()


def measure(requests: int, rounds: int) -> dict[str, Any]:
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with static_target("nginx") as target:
        for r in range(rounds):
            for variant in VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS)):
                cpu[variant].append(run(_one(target.url, variant, requests)))
    return {
        "target": target.note,
        "connections": CONNECTIONS,
        "requests_per_round": requests,
        "rounds": rounds,
        "aiohttp": aiohttp.__version__,
        "cpu_us_per_request": {v: round(statistics.median(xs), 1) for v, xs in cpu.items()},
        "rounds_cpu_us": {v: [round(x, 1) for x in xs] for v, xs in cpu.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = harness.parser("bench_aiohttp_session", __doc__)
    p.add_argument("--requests", type=harness.positive_int, default=20_000)
    p.add_argument("--rounds", type=harness.positive_int, default=12)
    args = p.parse_args(argv)
    doc = measure(args.requests, args.rounds)
    for variant, us in doc["cpu_us_per_request"].items():
        print(f"{variant:14s} {us:7.1f} us/request (median of {doc['rounds']} rounds)")
    return harness.emit("bench_aiohttp_session", args, doc, None, argv)


if __name__ == "__main__":
    sys.exit(main())
