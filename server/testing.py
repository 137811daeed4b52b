"""Start the embedded target from tests and scripts: in a background thread, or as a subprocess.

    with serve_in_thread(enable_cors=True, faults="status=503:0.1") as base_url:
        ...  # http://127.0.0.1:PORT, the three demo models at versions 1 and 2

    with serve_subprocess("--service-time", "5ms") as base_url:
        ...  # a real `python -m tfsbench serve --port 0 ...`, killed by PID on exit

Options are those of `tfsbench.server.options.make_options` (strings parsed as on the command line).
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tfsbench.server.registry import ModelRegistry

_LISTENING_RE = re.compile(r"listening on (http://\S+)")


class ServerThread:
    """An embedded server on its own event loop in a daemon thread."""

    def __init__(
        self, registry: ModelRegistry | None = None, *, host: str = "127.0.0.1", port: int = 0, **options: object
    ) -> None:
        from tfsbench.server.options import make_options

        self.options = make_options(**options)  # bad options fail here, in the caller's thread
        self._registry = registry
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._main, name="tfsbench-serve", daemon=True)
        self.base_url = ""
        self.target = None
        self.grpc_port: int | None = None  # set when started with grpc_port=0 (or a fixed port)

    def start(self, timeout_s: float = 30.0) -> str:
        self._thread.start()
        try:
            outcome = self._ready.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError(f"embedded server did not start within {timeout_s:g}s") from None
        if isinstance(outcome, BaseException):
            raise outcome
        self.base_url = outcome
        return outcome

    def _main(self) -> None:
        from tfsbench.server.runner import start

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                running = await start(self._registry, self.options, host=self._host, port=self._port)
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                self._ready.put(exc)
                return
            self.target = running.target
            self.grpc_port = running.grpc_port
            self._ready.put(running.base_url)
            try:
                await self._stop.wait()
            finally:
                await running.stop()

        try:
            loop.run_until_complete(main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already closed
                pass
        self._thread.join(timeout_s)

    def metrics_snapshot(self) -> str:
        """The Prometheus page (rendered in the server's thread-unsafe structures: best effort)."""
        assert self.target is not None
        return self.target.metrics.render()


@contextmanager
def serve_in_thread(
    registry: ModelRegistry | None = None, *, host: str = "127.0.0.1", port: int = 0, **options: object
) -> Iterator[str]:
    """Yield the base URL of an embedded target on 127.0.0.1 (port 0: a free one); stop it on exit.

    Pass `port=` the port of a stopped server to restart "the same" target (kill/restart tests).
    """
    server = ServerThread(registry, host=host, port=port, **options)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


class ServeProcess:
    """A running `tfsbench serve` subprocess: its URL and PID (see `serve_subprocess`)."""

    def __init__(self, base_url: str, proc: subprocess.Popen, grpc_url: str | None = None) -> None:
        self.base_url = base_url
        self.proc = proc
        self.grpc_url = grpc_url  # grpc://HOST:PORT when started with --grpc-port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the server process (Linux /proc), or 0.0."""
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0


@contextmanager
def serve_process(*extra_args: str, timeout_s: float = 60.0) -> Iterator[ServeProcess]:
    """Like `serve_subprocess`, but yields the ServeProcess (URL, PID, CPU time)."""
    cmd = [sys.executable, "-m", "tfsbench", "serve", "--port", "0", *extra_args]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryFile(mode="w+") as stderr:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            process_group=0,
        )
        try:
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True).start()
            url = _await_listening(proc, lines, stderr, timeout_s)
            grpc_url = _await_grpc(lines, timeout_s) if "--grpc-port" in extra_args else None
            yield ServeProcess(url, proc, grpc_url)
        finally:
            _terminate(proc)


@contextmanager
def serve_subprocess(*extra_args: str, timeout_s: float = 60.0) -> Iterator[str]:
    """Run `python -m tfsbench serve --port 0 *extra_args`; yield its URL; kill it by PID on exit.

    A later `--port N` in `extra_args` wins over `--port 0` (to restart a target on the same port).
    Its stdout is drained by a thread and its stderr goes to a temporary file, so a chatty server
    can never block on a full pipe.
    """
    with serve_process(*extra_args, timeout_s=timeout_s) as server:
        yield server.base_url


def _drain(stream: IO[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _await_listening(proc: subprocess.Popen, lines: queue.Queue, stderr: IO[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"tfsbench serve did not report its URL within {timeout_s:g}s: {seen!r}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line.rstrip())
        match = _LISTENING_RE.search(line)
        if match:
            return match.group(1)
    proc.wait(timeout=10)
    stderr.seek(0)
    err = stderr.read().strip()
    raise RuntimeError(f"tfsbench serve exited with status {proc.returncode}: {err or seen!r}")


def _await_grpc(lines: queue.Queue, timeout_s: float) -> str:
    """The gRPC address `tfsbench serve` announces after its REST URL, as grpc://HOST:PORT."""
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            break
        if "gRPC listening on " in line:
            return "grpc://" + line.split("gRPC listening on ", 1)[1].strip()
    raise RuntimeError("tfsbench serve did not report its gRPC port")


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM the server (and its worker processes) by PID, then SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def http_request(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One blocking HTTP request on a fresh connection: (status, headers, body). For tests."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()
