"""The metrics scraper reads at most MAX_METRICS_BYTES of a page: a target that streams an endless
metrics page costs the client a bounded amount of memory, and the scrape records why it failed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from tfsbench.bench.measure import server_metrics


@pytest.fixture
def endless_metrics(monkeypatch) -> Iterator[str]:
    monkeypatch.setattr(server_metrics, "MAX_METRICS_BYTES", 256 * 1024)
    sent = {"bytes": 0}

    async def page(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        line = b"# HELP x y\n" * 1000
        try:
            while sent["bytes"] < 64 * 1024 * 1024:  # bounded: stops by itself after 64 MiB
                await resp.write(line)
                sent["bytes"] += len(line)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/metrics", page)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_blocking_scrape_stops_at_the_cap(endless_metrics):
    scrape = server_metrics.scrape(endless_metrics)
    assert scrape.samples is None
    assert "larger than" in scrape.error


def test_async_scrape_stops_at_the_cap(endless_metrics):
    async def go() -> server_metrics.Scrape:
        async with aiohttp.ClientSession() as session:
            return await server_metrics.scrape_async(session, endless_metrics)

    scrape = asyncio.run(go())
    assert scrape.samples is None
    assert "larger than" in scrape.error


def test_trimmed_buckets_of_an_empty_window_are_empty():
    """A window in which the server saw no request (all cumulative counts 0) has no buckets to keep;
    it used to raise IndexError and crash the run that scraped it."""
    empty = ((0.001, 0.0), (0.005, 0.0), (float("inf"), 0.0))
    assert server_metrics._trimmed(empty) == []
    some = ((0.001, 0.0), (0.005, 3.0), (0.01, 4.0), (float("inf"), 4.0))
    assert server_metrics._trimmed(some) == [(0.001, 0.0), (0.005, 3.0), (0.01, 4.0), (float("inf"), 4.0)]
