"""Both engines against a raw-socket server that sends what aiohttp's server never would: an endless
chunked body, HTTP/1.0 bodies that end at close, a declared length that never arrives. And URLs
with credentials in them are refused without printing the password.

The server is plain asyncio (port 0, its own thread); each endless response is bounded by a byte
cap and a deadline, so a client that does not stop cannot make the test run away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from tfsbench.bench.measure.engine import DEFAULT_MAX_RESPONSE_BYTES, RESPONSE_TOO_LARGE, Target, check_url
from tfsbench.bench.measure.runner import ConstantPool, run_benchmark
from tfsbench.bench.results import RunConfig
from tfsbench.payloads.errors import InputError

from tfsbench import cli

ENGINES = ("fast", "aiohttp")
BODY = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
ANSWER = b'{"predictions": [[0.1, 0.2, 0.7]]}'
ENDLESS_CAP_BYTES = 256 * 2**20  # the server gives up after this much, whatever the client does
ENDLESS_DEADLINE_S = 20.0
CHUNK = b"x" * 65536


@dataclass
class ServerLog:
    responses: int = 0
    endless_sent: list[int] = field(default_factory=list)  # bytes sent per endless response


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request; return its method."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head.split(b" ", 1)[0]


async def _endless(writer: asyncio.StreamWriter, log: ServerLog) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ENDLESS_DEADLINE_S
    try:
        while sent < ENDLESS_CAP_BYTES and loop.time() < deadline:
            writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            await writer.drain()
            sent += len(CHUNK)
    except (ConnectionError, OSError):
        pass
    log.endless_sent.append(sent)


async def _handle(mode: str, log: ServerLog, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await _read_request(reader) == b"POST":  # a GET (the metrics scrape) gets a close
            log.responses += 1
            if mode == "endless":
                await _endless(writer, log)
                break
            if mode == "declared_too_large":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (32 * 2**20))
                with contextlib.suppress(ConnectionError, OSError):
                    for _ in range(32 * 2**20 // len(CHUNK)):  # the whole declared body, if the client reads it
                        writer.write(CHUNK)
                        await writer.drain()
                break
            if mode == "http10_eof":
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + ANSWER)
                await writer.drain()
                break
            if mode == "http10_truncated":
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(ANSWER) + 10) + ANSWER)
                await writer.drain()
                break
            if mode == "chunked_ok":
                half = len(ANSWER) // 2
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                             % (half, ANSWER[:half], len(ANSWER) - half, ANSWER[half:]))
                await writer.drain()
                continue
            raise AssertionError(mode)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


@contextmanager
def raw_server(mode: str) -> Iterator[tuple[str, ServerLog]]:
    log = ServerLog()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def start() -> asyncio.base_events.Server:
        server = await asyncio.start_server(lambda r, w: _handle(mode, log, r, w), "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        return server

    def main() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(start())
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}", log
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _run(url: str, engine: str, requests: int, **extra: object):
    config = RunConfig(url=url, model="m", kind="constant", batch_size=1, format="row", mode="closed",
                       engine=engine, concurrency=2, duration_s=None, warmup_s=0.0, timeout_s=10.0,
                       requests_limit=requests, extra=dict(extra))
    result = run_benchmark(config, pool=ConstantPool((BODY,)))
    s = result.summary
    assert s.ok + sum(s.errors.values()) == s.requests
    return s


def test_the_default_limit_is_64_mib() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES == 64 * 2**20
    assert Target(url="http://x", bodies=(BODY,)).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES


@pytest.mark.parametrize("engine", ENGINES)
def test_an_endless_body_is_response_too_large_and_the_connection_dropped(engine: str) -> None:
    limit = 2**20
    with raw_server("endless") as (url, log):
        s = _run(url, engine, 6, max_response_bytes=limit)
    assert (s.requests, s.ok, s.errors) == (6, 0, {RESPONSE_TOO_LARGE: 6}), s.errors
    assert any("max-response-bytes" in e for e in s.error_samples)
    assert len(log.endless_sent) == 6
    # the client hung up soon after the limit (socket buffers hold a few MiB), long before the cap
    assert max(log.endless_sent) < 16 * 2**20, log.endless_sent


@pytest.mark.parametrize("engine", ENGINES)
def test_a_declared_length_over_the_limit_is_refused(engine: str) -> None:
    with raw_server("declared_too_large") as (url, log):
        s = _run(url, engine, 4, max_response_bytes=2**20)
    assert (s.requests, s.errors) == (4, {RESPONSE_TOO_LARGE: 4}), s.errors


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("mode", "expected"), [
    ("http10_eof", {}),  # a body that ends at close is a complete, valid response
    ("http10_truncated", {"reset": 8}),  # a declared length that never arrives is not
    ("chunked_ok", {}),
])
def test_engines_agree_on_how_a_body_ends(engine: str, mode: str, expected: dict[str, int]) -> None:
    with raw_server(mode) as (url, log):
        s = _run(url, engine, 8, max_response_bytes=2**20)
    assert s.requests == 8 and s.errors == expected, (s.errors, s.error_samples)
    assert s.ok == 8 - sum(expected.values())


def _main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code or 0)


def test_run_max_response_bytes_flag(tfs_url: str, tmp_path, capsys) -> None:
    out = tmp_path / "r.json"
    status = _main(["run", "--url", tfs_url, "--model", "numeric", "--kind", "numeric", "--concurrency", "1",
                    "--requests", "5", "--warmup", "0", "--max-response-bytes", "10", "--out", str(out), "--quiet"])
    assert status == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["config"]["extra"]["max_response_bytes"] == 10
    assert doc["summary"]["errors"] == {RESPONSE_TOO_LARGE: 5}
    for bad in ("-5", "0", "lots"):
        assert _main(["run", "--url", tfs_url, "--model", "numeric", "--concurrency", "1",
                      "--max-response-bytes", bad, "--out", str(tmp_path / "x.json")]) == 2
        assert "--max-response-bytes" in capsys.readouterr().err


@pytest.mark.parametrize("url", [
    "http://user:s3cret@127.0.0.1:8501", "https://s3cret@example.com", "http://user:s3cret@[::1]:8501/path",
])
def test_credentials_in_urls_are_refused_and_never_printed(url: str, capsys) -> None:
    with pytest.raises(InputError) as info:
        check_url(url)
    assert "s3cret" not in str(info.value) and "--header 'Authorization: ...'" in str(info.value)
    for argv in (["doctor", "--url", url, "--model", "m"],
                 ["payload", "--url", url, "--model", "m", "--kind", "auto", "--out", "/nonexistent/p.json"],
                 ["run", "--url", url, "--model", "m", "--concurrency", "1", "--out", "/nonexistent/r.json"]):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = exc.code
        captured = capsys.readouterr()
        assert status == 2, (argv, captured.err)
        assert "s3cret" not in captured.err + captured.out, (argv, captured.err)
