"""The fast engine: HTTP/1.1 keep-alive over asyncio protocols, parsed by httptools (llhttp).

Why it exists: a Python load generator is usually the bottleneck long before the model is. This
engine keeps the per-request work to a few dozen bytecodes: every request (head + body) is encoded
once up front, a response is parsed by llhttp in C, and there is no per-request timer (one sweeper
task checks deadlines every few milliseconds). Connections are reused until the server closes them
(`Connection: close`, EOF or reset), then replaced on the next send. No pipelining: one request in
flight per connection, like wrk and like TF Serving clients in practice.

Two rules cost nothing on the hot path:
- a response body over `Target.max_response_bytes` ends the request as `response_too_large` and
  drops the connection (one counter compare per received chunk);
- a response without Content-Length or chunked framing ends when the server closes the connection
  (HTTP/1.0 style) and is a complete response, as aiohttp and browsers treat it. llhttp cannot tell
  us that the body ended at EOF, so the first response on each connection is parsed by a parser that
  also sees the framing headers (`_FirstResponse`); once a connection has proved keep-alive, later
  responses use the lean parser, which only needs framed messages.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools
from tfsbench.bench.measure.engine import (
    CANCELLED,
    RESET,
    TIMEOUT,
    Outcome,
    Target,
    classify,
    classify_exception,
    ok_outcome,
    ssl_context_for,
    too_large,
    trim,
)

_perf = time.perf_counter
_write = os.write


class _FirstResponse:
    """Parser callbacks for a connection's first response: as the lean ones, plus whether the
    response is framed (Content-Length or Transfer-Encoding) or ends at EOF."""

    __slots__ = ("conn", "framed", "head_done")

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.framed = False
        self.head_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.conn.on_body(body)

    def on_message_complete(self) -> None:
        conn = self.conn
        conn.first = None
        conn.on_message_complete()
        if not conn.closed:  # keep-alive proven: the lean parser from now on
            conn.parser = httptools.HttpResponseParser(conn)


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = ("engine", "transport", "parser", "done", "parts", "closed", "deadline", "fd", "size", "limit",
                 "first")

    def __init__(self, engine: FastEngine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.first: _FirstResponse | None = _FirstResponse(self)
        self.parser = httptools.HttpResponseParser(self.first)
        self.done: Callable[[Outcome], None] | None = None
        self.parts: list[bytes] = []
        self.size = 0  # body bytes of the response being read
        self.limit = engine.max_response_bytes
        self.closed = False
        self.deadline = 0.0
        self.fd = -1  # the socket, for writing requests directly (plain TCP only)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if self.engine.ssl is None and sock is not None:
            self.fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - not used by TF Serving
            self.abort()
            self._finish(Outcome(RESET, 0, "unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self.abort()
            self._finish(Outcome("invalid_response", 0, trim(f"unparsable HTTP response: {exc}")))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is not None:
            first = self.first
            if exc is None and first is not None and first.head_done and not first.framed:
                self.on_message_complete()  # the body ended at EOF (no Content-Length, not chunked)
            elif exc is None:
                self._finish(Outcome(RESET, 0, "server closed the connection before a complete response"))
            else:
                self._finish(classify_exception(exc))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        size = self.size = self.size + len(body)
        if size > self.limit:  # the one check per chunk: memory per request stays bounded
            self._too_large()
            return
        self.parts.append(body)

    def _too_large(self) -> None:
        self.abort()
        self.parts.clear()
        self._finish(too_large(self.engine.max_response_bytes))

    def on_message_complete(self) -> None:
        self.size = 0
        parts = self.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        parser = self.parser
        if not parser.should_keep_alive():
            self.close()
        engine = self.engine
        status = parser.get_status_code()
        if status == 200 and engine.status_only:  # the selfbench path: skip the general rules
            self._finish(ok_outcome(len(body)))
        else:
            self._finish(classify(status, body, engine.batch_size, engine.validate))

    # ours
    def _finish(self, outcome: Outcome) -> None:
        """Hand the outcome over exactly once; a reusable connection goes back to the idle list
        first, so the callback's next request can take it straight away."""
        done = self.done
        if done is None:
            return
        self.done = None
        engine = self.engine
        engine.busy.discard(self)
        if not self.closed:
            engine.idle.append(self)
        done(outcome)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class FastEngine:
    """See the module docstring. One instance per engine process (not thread-safe)."""

    name = "fast"

    def __init__(self, target: Target) -> None:
        self.target = target
        parts = urlsplit(target.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_context_for(target.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        head = [f"POST {path} HTTP/1.1", f"Host: {host_header}"]
        names = {k.lower() for k in target.headers}
        if "content-type" not in names:
            head.append("Content-Type: application/json")
        if "user-agent" not in names:
            head.append("User-Agent: tfsbench-fast")
        head += [f"{k}: {v}" for k, v in target.headers.items()]
        head_bytes = ("\r\n".join(head) + "\r\n").encode("latin-1")
        self.requests = tuple(
            head_bytes + b"Content-Length: " + str(len(b)).encode() + b"\r\n\r\n" + b for b in target.bodies
        )
        self.idle: list[_Conn] = []
        self.busy: set[_Conn] = set()
        self.connections_opened = 0
        self.timeout_s = target.timeout_s
        self.batch_size = target.batch_size
        self.validate = target.validate
        self.max_response_bytes = target.max_response_bytes
        self.status_only = target.validate == "status"
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sweeper = self._loop.create_task(self._sweep())

    async def _connect(self) -> _Conn:
        loop = self._loop or asyncio.get_running_loop()
        self.connections_opened += 1
        kwargs = {"ssl": self.ssl, "server_hostname": self.host} if self.ssl else {}
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: _Conn(self), self.host, self.port, **kwargs),
            self.target.timeout_s,
        )
        return conn

    async def prepare(self, connections: int) -> int:
        """Open up to `connections` keep-alive connections before the clock starts, so a run does
        not begin with a storm of connects (each arrival finding no idle connection opens one).
        Failures are ignored here: the run itself will count them. Returns how many opened."""
        if connections < 1:
            return 0
        tasks = [asyncio.ensure_future(self._connect()) for _ in range(connections)]
        _, pending = await asyncio.wait(tasks, timeout=min(self.timeout_s, 5.0))
        for t in pending:  # a target that does not answer: the run will say so, no need to wait here
            t.cancel()
        if pending:
            await asyncio.wait(pending)
        opened = [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
        opened = [c for c in opened if not c.closed]
        self.idle.extend(opened)
        return len(opened)

    def submit(self, index: int, done: Callable[[Outcome], None]) -> None:
        """Send body `index`; `done(outcome)` is called once, later (never from inside submit).

        The callback path is what makes this engine fast: a closed-loop sender chains its next
        request from the previous one's callback, with no future, task or coroutine switch."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.done = done
                conn.deadline = _perf() + self.timeout_s
                self.busy.add(conn)
                data = self.requests[index]
                transport = conn.transport
                if conn.fd >= 0 and not transport.is_closing():  # type: ignore[union-attr]
                    # straight to the socket: the transport's buffer is empty (one request in flight
                    # per connection, sent whole before its response), so order is kept, and a
                    # write(2) here saves about a microsecond of CPU per request over the transport's
                    # (measured: 9.7 vs 10.6 us). Whatever the kernel does not take now (a full
                    # buffer, or an error) goes through the transport as before. A closing transport
                    # (EOF or an error seen, connection_lost not yet called) may have closed its
                    # socket already, and the number may belong to a new one: never write to it.
                    try:
                        n = _write(conn.fd, data)
                    except OSError:
                        n = 0
                    if n == len(data):
                        return
                    data = data[n:]
                transport.write(data)  # type: ignore[union-attr]
                return
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._connect_then_send(index, done))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_then_send(self, index: int, done: Callable[[Outcome], None]) -> None:
        deadline = _perf() + self.timeout_s
        try:
            conn = await self._connect()
        except asyncio.CancelledError:
            done(Outcome(CANCELLED, 0, "engine closed while connecting"))
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure is an outcome
            done(classify_exception(exc))
            return
        if conn.closed:
            done(Outcome(RESET, 0, "connection closed right after connect"))
            return
        conn.done = done
        conn.deadline = deadline
        self.busy.add(conn)
        conn.transport.write(self.requests[index])  # type: ignore[union-attr]

    async def send(self, index: int) -> Outcome:
        """The Engine interface on top of `submit` (one future per request)."""
        fut: asyncio.Future[Outcome] = (self._loop or asyncio.get_running_loop()).create_future()

        def done(outcome: Outcome) -> None:
            if not fut.done():
                fut.set_result(outcome)

        self.submit(index, done)
        return await fut

    def abort_inflight(self, reason: str) -> None:
        """End every request in flight now (as `cancelled`): an interrupted run's grace is over."""
        for task in list(self._connecting):
            task.cancel()
        for conn in list(self.busy):
            conn.abort()
            conn._finish(Outcome(CANCELLED, 0, reason))

    async def _sweep(self) -> None:
        """Time out requests past their deadline (per-request timers would cost more than this)."""
        period = min(0.05, max(0.001, self.target.timeout_s / 20))
        while True:
            await asyncio.sleep(period)
            if not self.busy:
                continue
            now = _perf()
            for conn in [c for c in self.busy if c.deadline <= now]:
                conn.abort()
                conn._finish(Outcome(TIMEOUT, 0, f"no response within {self.timeout_s:g} s"))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
        self.abort_inflight("engine closed")
        for conn in set(self.idle):
            conn.close()
        self.idle.clear()
        self.busy.clear()
