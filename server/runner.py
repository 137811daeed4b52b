"""Start and stop the embedded target: in the foreground (`tfsbench serve`) or on a given loop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from tfsbench.server.app import TargetApp, build_server
from tfsbench.server.options import ServerOptions
from tfsbench.server.registry import ModelRegistry


@dataclass(slots=True)
class RunningServer:
    """A started server on some loop: its URL and what is needed to stop it."""

    base_url: str
    port: int
    runner: web.ServerRunner
    target: TargetApp
    grpc_port: int | None = None  # the bound gRPC port when options.grpc_port is set
    grpc_server: Any = None

    async def stop(self) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=None)
        await self.target.close()
        await self.runner.cleanup()


def base_url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def start(
    registry: ModelRegistry | None = None,
    options: ServerOptions | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
) -> RunningServer:
    """Start serving on the running loop; port 0 picks a free port (see `.port`)."""
    server, target = build_server(registry, options)
    runner = web.ServerRunner(server, handle_signals=False, access_log=None)
    await runner.setup()
    if sock is not None:
        site: web.BaseSite = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_port = runner.addresses[0][1]
    grpc_server, grpc_port = None, None
    if target.options.grpc_port is not None:
        from tfsbench.server.grpc_app import start_grpc

        try:
            # workers share the gRPC port as they share the REST socket (SO_REUSEPORT); one server alone
            # must fail on a busy port rather than quietly share it with another process
            shared = sock is not None and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
            grpc_server, grpc_port = await start_grpc(target, host, target.options.grpc_port, reuse_port=shared)
        except OSError:
            await target.close()
            await runner.cleanup()
            raise
    return RunningServer(base_url_for(host, bound_port), bound_port, runner, target, grpc_port, grpc_server)


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve_forever(
    make_registry: Callable[[], ModelRegistry],
    options: ServerOptions,
    *,
    host: str,
    port: int,
    workers: int = 1,
    use_uvloop: bool = True,
    announce: Callable[[str], None] | None = None,
    announce_grpc: Callable[[str], None] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM. With workers > 1, N processes share the port (SO_REUSEPORT).

    Each worker has its own metrics, faults and batching queues (as N TF Serving replicas would).
    With options.grpc_port set, each worker serves gRPC there too (grpcio binds with SO_REUSEPORT;
    `announce_grpc` gets "HOST:PORT"); several workers need a fixed gRPC port, not 0.
    """
    if workers > 1 and options.grpc_port == 0:
        from tfsbench.payloads.errors import InputError

        raise InputError("--grpc-port 0 cannot be shared by several --workers: give a port number")
    try:
        sock = _listening_socket(host, port, reuse_port=workers > 1)
    except OSError as exc:
        from tfsbench.payloads.errors import InputError

        raise InputError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror}") from None
    bound_port = sock.getsockname()[1]
    children: list[int] = []
    if workers > 1:
        for _ in range(workers - 1):
            pid = os.fork()
            if pid == 0:  # child: its own socket on the same port, then serve
                try:
                    child_sock = _listening_socket(host, bound_port, reuse_port=True)
                    sock.close()
                    _run_loop(make_registry, options, child_sock, host, use_uvloop, None, None)
                finally:
                    os._exit(0)
            children.append(pid)
    try:
        _run_loop(make_registry, options, sock, host, use_uvloop, announce, announce_grpc)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return 0


def _run_loop(
    make_registry: Callable[[], ModelRegistry],
    options: ServerOptions,
    sock: socket.socket,
    host: str,
    use_uvloop: bool,
    announce: Callable[[str], None] | None,
    announce_grpc: Callable[[str], None] | None = None,
) -> None:
    if use_uvloop and sys.platform != "win32":
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()

    async def main() -> None:
        try:
            running = await start(make_registry(), options, host=host, sock=sock)
        except OSError as exc:  # the gRPC port (the REST socket is bound before the loop starts)
            from tfsbench.payloads.errors import InputError

            raise InputError(f"--grpc-port: {exc}") from None
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if announce is not None:
            announce(base_url_for(host, sock.getsockname()[1]))
        if announce_grpc is not None and running.grpc_port is not None:
            shown = f"[{host}]" if ":" in host else host
            announce_grpc(f"{shown}:{running.grpc_port}")
        try:
            await stop.wait()
        finally:
            await running.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
