"""The aiohttp engine: full HTTP client semantics (TLS, redirects off, auth headers, timeouts).

One `ClientSession` per engine process with a connector tuned for load: keep-alive, as many
connections as requests in flight, no cookie jar, no automatic decompression (we only need the
bytes and their length), no DNS cache misses after the first lookup. Bodies are pre-encoded bytes.
"""

from __future__ import annotations

import asyncio

import aiohttp

from bench.engine import Outcome, Target, classify, classify_exception, ssl_context_for


class AiohttpEngine:
    name = "aiohttp"

    def __init__(self, target: Target, limit: int = 0) -> None:
        self.target = target
        self.limit = limit  # 0 = unlimited: the driver already caps requests in flight
        self.session: aiohttp.ClientSession | None = None
        headers = {"Content-Type": "application/json"}
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
            timeout=aiohttp.ClientTimeout(total=self.target.timeout_s),
            skip_auto_headers=("Accept-Encoding",),
        )

    async def send(self, index: int) -> Outcome:
        t = self.target
        try:
            async with self.session.post(  # type: ignore[union-attr]
                t.url, data=t.bodies[index], allow_redirects=False
            ) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.CancelledError:
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
        return classify(status, body, t.batch_size, t.validate)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
