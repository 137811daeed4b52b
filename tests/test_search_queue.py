"""The SLO search against a queue whose answer is known: a single server with a deterministic
service time D, Poisson arrivals (M/D/1). The highest rate whose p99 time in system meets the SLO
follows from the M/D/1 waiting-time distribution (computed below); the search must find it within
10%, with no probe failing for sample count or rate noise.

D is 2.5 ms and the SLO p99 <= 25 ms (10 x D: rho = 0.773, about 309 req/s) rather than the issue's
20 ms and p99 <= 100 ms (5 x D: rho = 0.56, 28 req/s; found within 0.2% by a one-off run, see
docs/stability.md): a faster queue collects each probe's samples eleven times sooner. The SLO stays
at 25 ms, so the sender-lag rule (a quarter of the bound) and the event loop's millisecond timers
weigh on the verdicts as they did with D = 5 ms (a 1 ms later answer moves this answer by 1.2%)."""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tfsbench.bench.orchestrate.search import run_search
from tfsbench.bench.results import RunConfig
from tfsbench.bench.stats.slo import parse_slo

SERVICE_S = 0.0025
SLO_S = 0.025  # 10 x SERVICE_S
RESPONSE = b'{"predictions": [[0.1, 0.2, 0.7]]}'


def md1_wait_cdf(rate: float, service_s: float, t: float) -> float:
    """P(wait <= t) in an M/D/1 queue (Erlang): (1 - rho) sum_k<=t/D (rate(kD - t))^k / k! e^-rate(kD - t)."""
    if t < 0:
        return 0.0
    total = 0.0
    for k in range(int(math.floor(t / service_s)) + 1):
        x = rate * (k * service_s - t)
        total += x ** k / math.factorial(k) * math.exp(-x)
    return (1 - rate * service_s) * total


def md1_rate_for_p99(service_s: float, p99_s: float) -> float:
    """The arrival rate at which the p99 of the time in system (wait + service) is `p99_s`."""
    lo, hi = 0.0, 1.0 / service_s
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if md1_wait_cdf(mid, service_s, p99_s - service_s) >= 0.99 else (lo, mid)
    return lo


@pytest.fixture
def single_server_queue() -> Iterator[str]:
    with serve_queue() as url:
        yield url


def _queue_main(port_q: Any) -> None:
    """The queue's process: one request served at a time, first come first served, each for exactly
    SERVICE_S. It runs on a virtual clock (each service starts when the previous one ends or the
    request arrives), so the event loop's millisecond timers delay an answer by at most about a
    millisecond but never change the queue itself."""

    async def main() -> None:
        free_at = [0.0]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    if length:
                        await reader.readexactly(length)
                    done = max(time.perf_counter(), free_at[0]) + SERVICE_S
                    free_at[0] = done
                    await asyncio.sleep(max(0.0, done - time.perf_counter()))
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(RESPONSE)).encode() + b"\r\n\r\n" + RESPONSE)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def serve_queue() -> Iterator[str]:
    """The queue in its own process (killed by PID at the end), so it never waits for the load
    generator's GIL."""
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    proc = ctx.Process(target=_queue_main, args=(port_q,), daemon=True)
    proc.start()
    try:
        yield f"http://127.0.0.1:{port_q.get(timeout=30)}"
    finally:
        proc.kill()
        proc.join(10)


def test_md1_theory_is_rho_056() -> None:
    assert md1_rate_for_p99(0.020, 0.100) * 0.020 == pytest.approx(0.5608, abs=1e-3)
    assert md1_rate_for_p99(0.005, 0.025) == pytest.approx(112.16, abs=0.05)
    assert md1_rate_for_p99(SERVICE_S, SLO_S) * SERVICE_S == pytest.approx(0.773, abs=1e-3)


@pytest.mark.slow
@pytest.mark.serial
# Each probe measures until stable, at most long enough for 3,000 samples (about 10 s here): with the 1,300
# samples of 3 s probes the p99 estimate's own noise moved the answer 12.6% off in one CI run of two, and
# with at most 1,500 a later CI run counted unstable probes near the knee as failures (91 req/s found).
@pytest.mark.timeout(600)  # 47-61 s on an idle 2-core VM (298, 286 and 298 req/s found for 309)
def test_search_finds_the_md1_rate_within_10_percent(single_server_queue: str, tmp_path: Path) -> None:
    theory = md1_rate_for_p99(SERVICE_S, SLO_S)
    base = RunConfig(url=single_server_queue, model="m", kind="constant", batch_size=1, format="row", mode="open",
                     engine="fast", rate_rps=1.0, arrival="poisson", duration_s=4.0, warmup_s=2.0, warmup_auto=True)
    # The bracket starts at [0.8, 1.15] x theory (its discovery is tested in test_search_algorithm): a search
    # that passed or failed everything would answer 15-20% off; the upper end stays below capacity (rho 0.89).
    out = run_search(base, parse_slo(f"p99<={SLO_S * 1000:g}ms"), tmp_path, lo_rps=0.8 * theory,
                     hi_rps=1.15 * theory, progress=False, log=lambda m: None, tolerance=0.05)
    reasons = [v.reason for v in out.verdicts]
    assert not any("too few samples" in r or "achieved" in r for r in reasons), reasons
    assert out.best_rate_rps is not None, reasons
    assert abs(out.best_rate_rps - theory) <= 0.10 * theory, (out.best_rate_rps, theory, reasons)
