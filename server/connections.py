"""Slow and idle connections are closed; open connections are capped.

aiohttp closes a connection that stays idle for `keepalive_timeout` (also from the moment it is
accepted), but has no timeout for a request head that arrives slowly once its first byte is in, and
no cap on connections. `GuardedServer` adds both at the protocol level:

- header timeout: from the first byte of a request (or from accept, for the first one) until its
  head is complete. A client that sends half a header, or nothing, is disconnected.
- max connections: a connection accepted beyond the cap is closed at once (the client sees the
  connection close before any answer, like a full accept queue); the others are not disturbed.

The body timeout lives in the request handler (server/app.py `_read_body`), which reads the body.
These hooks use aiohttp's `RequestHandler._waiter` (pending while it waits for the next request
head); tests/test_server_hardening.py checks every one of them with raw sockets.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class GuardedServer(web.Server):
    """aiohttp's low-level server with a header timeout and a connection cap."""

    def __init__(self, handler: Any, *, header_timeout_s: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.refused_connections = 0
        self.header_timeouts = 0

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


class _GuardedHandler(RequestHandler):
    _head_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager: GuardedServer = self._manager  # type: ignore[assignment]
        over = len(manager._connections) >= manager.max_connections
        super().connection_made(transport)
        if over:
            manager.refused_connections += 1
            self.force_close()
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        waiting = self._waiting_for_head()
        super().data_received(data)
        if self._head_handle is not None:
            if not self._waiting_for_head():  # the head is complete: the handler has it
                self._head_handle.cancel()
                self._head_handle = None
        elif waiting and data and self._waiting_for_head():  # first bytes of a new request head
            self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        """Idle, or in the middle of a request head (not while a request is being handled)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._messages

    def _arm_head_timer(self) -> None:
        manager: GuardedServer = self._manager  # type: ignore[assignment]
        self._head_handle = self._loop.call_later(manager.header_timeout_s, self._head_expired)

    def _head_expired(self) -> None:
        self._head_handle = None
        if self._waiting_for_head() or (self._request_count == 0 and not self._messages):
            manager: GuardedServer = self._manager  # type: ignore[assignment]
            if manager is not None:
                manager.header_timeouts += 1
            self.force_close()
