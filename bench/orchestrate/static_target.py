"""The static target of the self-benchmarks: nginx answering one fixed JSON body on a free loopback
port (or, without nginx, a minimal built-in server in its own process), optionally pinned to a CPU.

It is not the bottleneck, so what a client reaches against it is the client's own ceiling. Used by
`tfsbench selfbench` and the benchmark scripts (benchmarks/). `python -m
tfsbench.bench.orchestrate.static_target --serve-static PORT` is the built-in server process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATIC_BODY = b'{"predictions":[[0.1,0.2,0.7]]}'
PREDICT_PATH = "/v1/models/selfbench:predict"
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/bin/nginx")


# ---- CPU pinning ------------------------------------------------------------------------------


def plan_pinning() -> tuple[set[int] | None, set[int] | None, str]:
    """(target CPUs, client CPUs, description). Pins only when there are at least two CPUs."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None, "not pinned (no sched_setaffinity on this platform)"
    if len(cpus) < 2:
        return None, None, f"not pinned (only {len(cpus)} CPU available)"
    target, client = {cpus[0]}, {cpus[1]}
    return target, client, f"target pinned to CPU {cpus[0]}, each client (one process, one thread) to CPU {cpus[1]}"


def _preexec_pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Pin this process (all its threads created later) to `cpus` for the duration of the block."""
    if not cpus:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


# ---- targets ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Wait until something accepts on 127.0.0.1:port, or fail if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"target did not listen on 127.0.0.1:{port} within {timeout_s:g} s")


def nginx_config(tmp: Path, port: int) -> str:
    """A one-worker nginx answering every request with the static predictions body."""
    body = STATIC_BODY.decode()
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    for p in NGINX_PATHS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("nginx")


@dataclass
class RunningTarget:
    kind: str  # nginx | builtin
    url: str
    note: str
    proc: subprocess.Popen[bytes]


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Stop a process this module started, by its PID only."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)
    except ProcessLookupError:
        pass


@contextmanager
def static_target(prefer: str = "nginx", cpus: set[int] | None = None) -> Iterator[RunningTarget]:
    """Start nginx (or the built-in server) on a free loopback port; stop it by PID on exit."""
    nginx = find_nginx() if prefer == "nginx" else None
    with tempfile.TemporaryDirectory(prefix="tfsbench-selfbench-") as tmpdir:
        tmp = Path(tmpdir)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = free_port()
            if nginx:
                conf = tmp / "nginx.conf"
                conf.write_text(nginx_config(tmp, port))
                cmd = [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
                kind, note = "nginx", f"nginx ({nginx}), 1 worker, static JSON response"
            else:
                cmd = [sys.executable, "-m", "tfsbench.bench.orchestrate.static_target", "--serve-static", str(port)]
                kind = "builtin"
                note = ("built-in asyncio+httptools server (nginx not installed; expect lower ceilings)"
                        if prefer == "nginx" else "built-in asyncio+httptools server (asked for)")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, preexec_fn=_preexec_pin(cpus),
                                    cwd=str(Path(__file__).resolve().parent.parent))
            try:
                wait_listening(port, proc)
            except RuntimeError as exc:
                err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None and proc.stderr else ""
                stop_process(proc)
                last_error = f"{exc}: {err.strip()[:300]}"
                continue
            try:
                yield RunningTarget(kind, f"http://127.0.0.1:{port}", note, proc)
            finally:
                stop_process(proc)
            return
        raise RuntimeError(f"could not start the {prefer} target: {last_error}")


def serve_static(port: int) -> None:
    """The built-in target: HTTP/1.1 keep-alive over asyncio (uvloop if present) with httptools."""
    import asyncio

    import httptools

    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(STATIC_BODY)).encode() + b"\r\n\r\n" + STATIC_BODY)

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)

        def on_message_complete(self) -> None:
            self.transport.write(response)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())




def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfsbench.bench.orchestrate.static_target --serve-static PORT`: the built-in target process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--serve-static":
        serve_static(int(args[1]))
        return 0
    print("usage: python -m tfsbench.bench.orchestrate.static_target --serve-static PORT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
