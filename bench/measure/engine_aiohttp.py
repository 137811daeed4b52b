"""The aiohttp engine: full HTTP client semantics (TLS, redirects off, auth headers, timeouts).

One `ClientSession` per engine process with a connector tuned for load: keep-alive, as many
connections as requests in flight, no cookie jar, no automatic decompression (we only need the
bytes and their length), no DNS cache misses after the first lookup. Bodies are pre-encoded bytes
wrapped once in payload objects, the URL is parsed once, and --timeout is enforced by one sweeper
task rather than aiohttp's timer per request.

A body is read whole when its Content-Length is within `Target.max_response_bytes` (the common
case, aiohttp's own read); without one (chunked, or ending at EOF) it is read chunk by chunk and
given up at the limit: `response_too_large`, and the connection is closed rather than reused.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.payload import BytesPayload
from tfsbench.bench.measure.engine import (
    TIMEOUT,
    Outcome,
    Target,
    classify,
    classify_exception,
    ssl_context_for,
    too_large,
)
from yarl import URL

_perf = time.perf_counter


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than `limit` bytes."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)


class AiohttpEngine:
    name = "aiohttp"

    def __init__(self, target: Target, limit: int = 0) -> None:
        self.target = target
        self.limit = limit  # 0 = unlimited: the driver already caps requests in flight
        self.session: aiohttp.ClientSession | None = None
        # parsed once: a str URL is re-parsed by yarl and each bytes body wrapped in a new payload
        # object on every request (BytesPayload is immutable and documented as reusable)
        self.url = URL(target.url)
        self.payloads = tuple(BytesPayload(b) for b in target.bodies)
        # timeouts: one sweeper task instead of aiohttp's per-request timer (a timer handle and a
        # context manager per request, about 8 us of the ~90 us this engine spends per request)
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        # Accept-Encoding as a header rather than in `skip_auto_headers`: a skip list makes aiohttp
        # build and copy a header multidict on every request (about 7% of this engine's CPU per
        # request, measured); "identity" also says what we want: bodies as sent, uncompressed
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        headers.update(target.headers)
        self.headers = headers

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.limit,
            limit_per_host=0,
            ttl_dns_cache=3600,
            ssl=ssl_context_for(self.target.url) or False,
            enable_cleanup_closed=False,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(),  # no aiohttp timers: `_sweep` enforces --timeout
        )
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Cancel sends past their deadline (connect included); `send` turns that into `timeout`."""
        period = min(0.05, max(0.001, self.target.timeout_s / 20))
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(period)
            if not deadlines:
                continue
            now = _perf()
            for task in [t for t, d in deadlines.items() if d <= now and t not in self._expired]:
                self._expired.add(task)
                task.cancel()

    async def send(self, index: int) -> Outcome:
        t = self.target
        resp = None
        task = asyncio.current_task()
        self._deadlines[task] = _perf() + t.timeout_s  # type: ignore[index]
        try:
            # awaiting the request directly skips the context manager's extra coroutine; read()
            # releases the connection, and the `finally` below covers every other exit
            resp = await self.session.request(  # type: ignore[union-attr]
                "POST", self.url, data=self.payloads[index], allow_redirects=False
            )
            length = resp.content_length
            if length is not None and length <= t.max_response_bytes:
                body = await resp.read()
            else:
                body = await _read_at_most(resp, t.max_response_bytes)
                if body is None:
                    resp.close()  # drop the connection: the rest of the body is never read
                    return too_large(t.max_response_bytes)
            status = resp.status
        except asyncio.CancelledError:
            if task in self._expired:  # our own timeout, unless the run is also being cancelled
                self._expired.discard(task)
                if task.uncancel() == 0:  # type: ignore[union-attr]
                    return Outcome(TIMEOUT, 0, f"no response within {t.timeout_s:g} s")
            raise
        except aiohttp.ClientConnectorError as exc:
            inner = exc.os_error if isinstance(exc.os_error, BaseException) else exc
            out = classify_exception(inner)
            return out if out.error != "reset" else Outcome("refused", 0, out.detail)
        except aiohttp.ServerDisconnectedError as exc:
            return Outcome("reset", 0, f"server disconnected: {exc}")
        except aiohttp.ClientPayloadError as exc:
            return Outcome("reset", 0, f"incomplete body: {exc}")
        except aiohttp.ClientResponseError as exc:
            return Outcome("invalid_response", 0, f"unparsable HTTP response: {exc.message}")
        except aiohttp.ClientOSError as exc:
            return classify_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - timeouts and anything else: one outcome each
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return classify_exception(exc)
        finally:
            del self._deadlines[task]  # type: ignore[arg-type]
            if task in self._expired:  # timed out, but aiohttp turned the cancellation into an error
                self._expired.discard(task)
                task.uncancel()  # type: ignore[union-attr]
            if resp is not None:
                resp.release()
        return classify(status, body, t.batch_size, t.validate)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        if self.session is not None:
            await self.session.close()
            self.session = None
