"""`tfsbench selfbench`: how fast is the load generator itself?

A load generator that saturates before the server measures itself. This benchmark points every
client at a target that is not the bottleneck (nginx answering a static JSON body, or, without
nginx, a minimal built-in server) and, in the same run and with the same number of connections,
measures: the fast engine, the aiohttp engine, wrk (C, the reference ceiling) and Locust's
FastHttpUser (the Python tool most people use). Ratios within one run are what matter:
fast/wrk >= 0.8 and aiohttp/locust >= 2 are the targets.

On a small machine the client and the target compete for the same cores. With `pin=True` (and at
least two CPUs) the target is pinned to one CPU and every client to another (`os.sched_setaffinity`
for this process, a `preexec_fn` doing the same for subprocesses, like `taskset`): each client gets
the same single core. Measured on the shared 2-core build machine, pinning lowered every rate by
about 40% and did not steady the ratios (other jobs still land on both cores), so it is off by
default. Every tool is measured `rounds` times in rotating order, and a ratio is the median of
per-round ratios: two tools of one round run seconds apart, so background load mostly cancels.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.payloads.errors import InputError

SELFBENCH_TYPE = "tfsbench.selfbench"
STATIC_BODY = b'{"predictions":[[0.1,0.2,0.7]]}'
REQUEST_BODY = b'{"instances":[[1.0,2.0,3.0,4.0]]}'
PREDICT_PATH = "/v1/models/selfbench:predict"
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/bin/nginx")
WRK_PATH = "/usr/bin/wrk"
TARGETS = {"fast/wrk": 0.8, "aiohttp/locust": 2.0}


@dataclass(frozen=True, slots=True)
class ToolRate:
    """One client's measurement against the target."""

    tool: str  # fast | aiohttp | wrk | locust
    rps: float | None  # successful requests per second; None when the tool did not run
    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0
    note: str = ""  # why it did not run, or a caveat (e.g. "client saturated")
    rounds_rps: tuple[float, ...] = ()  # each round's rate (rps is their median)
    cpu_s: float | None = None  # client CPU time (user + system) while measuring, when known
    rps_per_cpu: float | None = None  # successful requests per client CPU-second


@dataclass(frozen=True, slots=True)
class SelfbenchResult:
    target: str  # "nginx" | "builtin"
    target_note: str
    connections: int
    duration_s: float
    rates: tuple[ToolRate, ...]
    ratios: dict[str, float | None]
    targets: dict[str, float] = field(default_factory=lambda: dict(TARGETS))
    pinning: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    rounds: int = 1
    ratio_rounds: dict[str, tuple[float, ...]] = field(default_factory=dict)  # each round's ratio

    def rate(self, tool: str) -> float | None:
        for r in self.rates:
            if r.tool == tool:
                return r.rps
        return None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["type"] = SELFBENCH_TYPE
        doc["schema_version"] = 1
        return doc


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


def _stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
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
                cmd = [sys.executable, "-m", "tfsbench.bench.orchestrate.selfbench", "--serve-static", str(port)]
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
                _stop_process(proc)
                last_error = f"{exc}: {err.strip()[:300]}"
                continue
            try:
                yield RunningTarget(kind, f"http://127.0.0.1:{port}", note, proc)
            finally:
                _stop_process(proc)
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


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _with_cpu(rate: ToolRate, cpu_s: float | None) -> ToolRate:
    if rate.rps is None or not cpu_s or cpu_s <= 0:
        return rate
    ok = rate.rps * (rate.duration_s or 0.0)
    return dataclasses.replace(rate, cpu_s=round(cpu_s, 3), rps_per_cpu=ok / cpu_s if ok else None)


# ---- external clients -------------------------------------------------------------------------

WRK_LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""

_WRK_RPS = re.compile(r"Requests/sec:\s*([0-9.]+)")
_WRK_TOTAL = re.compile(r"([0-9]+) requests in ([0-9.]+)(m?s|m|h)")
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s*([0-9]+)|Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)")


def parse_wrk(output: str, duration_s: float) -> ToolRate:
    match = _WRK_RPS.search(output)
    if not match:
        return ToolRate("wrk", None, note="could not parse wrk output: " + " ".join(output.split())[:200])
    total = _WRK_TOTAL.search(output)
    errors = 0
    for m in _WRK_ERRORS.finditer(output):
        errors += sum(int(g) for g in m.groups() if g)
    requests = int(total.group(1)) if total else 0
    rps = float(match.group(1))
    if requests and errors:
        rps *= max(requests - errors, 0) / requests
    return ToolRate("wrk", rps, requests=requests, errors=errors, duration_s=duration_s)


def run_wrk(url: str, connections: int, duration_s: float, cpus: set[int] | None, workdir: Path, *,
            path: str = PREDICT_PATH, body: bytes = REQUEST_BODY) -> ToolRate:
    """wrk (one thread, keep-alive, closed loop) POSTing `body` to `url + path`; also used by
    benchmarks/bench_target.py against the embedded target's own models."""
    wrk = WRK_PATH if os.access(WRK_PATH, os.X_OK) else shutil.which("wrk")
    if not wrk:
        return ToolRate("wrk", None, note="wrk not installed (apt install wrk)")
    script = workdir / "post.lua"
    script.write_text(WRK_LUA.format(body=body.decode()))  # a Lua long string: no escapes needed
    seconds = max(1, round(duration_s))
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url + path]
    cpu_before = _children_cpu_s()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30,
                              preexec_fn=_preexec_pin(cpus))
    except subprocess.TimeoutExpired:
        return ToolRate("wrk", None, note="wrk did not finish in time")
    if proc.returncode != 0:
        return ToolRate("wrk", None, note=f"wrk exited {proc.returncode}: {proc.stderr.strip()[:200]}")
    return _with_cpu(parse_wrk(proc.stdout, float(seconds)), _children_cpu_s() - cpu_before)


LOCUSTFILE = '''"""Generated by tfsbench selfbench: the smallest FastHttpUser posting one static body."""
from locust import FastHttpUser, constant, task

BODY = {body!r}
HEADERS = {{"Content-Type": "application/json"}}


class SelfbenchUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post({path!r}, data=BODY, headers=HEADERS)
'''


def find_locust() -> str | None:
    local = Path(sys.executable).with_name("locust")
    if os.access(local, os.X_OK):
        return str(local)
    return shutil.which("locust")


def parse_locust_json(text: str, duration_s: float) -> ToolRate:
    """Locust's `--json` final stats: a list of entries with num_requests, num_failures,
    start_time and last_request_timestamp (epoch seconds)."""
    start = text.find("[")
    try:
        entries = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        entries = None
    if not isinstance(entries, list) or not entries:
        return ToolRate("locust", None, note="could not parse locust --json output: " + " ".join(text.split())[:200])
    requests = sum(int(e.get("num_requests", 0)) for e in entries)
    failures = sum(int(e.get("num_failures", 0)) for e in entries)
    starts = [e["start_time"] for e in entries if e.get("start_time")]
    ends = [e["last_request_timestamp"] for e in entries if e.get("last_request_timestamp")]
    span = (max(ends) - min(starts)) if starts and ends else duration_s
    span = span if span > 0 else duration_s
    return ToolRate("locust", (requests - failures) / span, requests=requests, errors=failures,
                    duration_s=round(span, 3))


def run_locust(url: str, users: int, duration_s: float, cpus: set[int] | None, workdir: Path) -> ToolRate:
    locust = find_locust()
    if not locust:
        return ToolRate("locust", None, note="locust not installed")
    script = workdir / "selfbench_locustfile.py"
    script.write_text(LOCUSTFILE.format(body=REQUEST_BODY, path=PREDICT_PATH))
    seconds = max(2, round(duration_s))
    cmd = [locust, "-f", str(script), "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
           "--host", url, "--json", "--only-summary", "--loglevel", "ERROR", "--stop-timeout", "2"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=str(workdir),
                              preexec_fn=_preexec_pin(cpus))
    except subprocess.TimeoutExpired:
        return ToolRate("locust", None, note="locust did not finish in time")
    rate = parse_locust_json(proc.stdout, float(seconds))
    if rate.rps is None and proc.returncode not in (0, 1):
        return ToolRate("locust", None, note=f"locust exited {proc.returncode}: {proc.stderr.strip()[-200:]}")
    note = f"FastHttpUser, 1 process, {users} users spawned in the first second (included)"
    return ToolRate(rate.tool, rate.rps, rate.requests, rate.errors, rate.duration_s, note)


# ---- our engines ------------------------------------------------------------------------------


def run_engine(engine: str, url: str, connections: int, duration_s: float, cpus: set[int] | None,
               warmup_s: float = 0.5) -> ToolRate:
    """One closed-loop run of our own engine through `tfsbench.bench.measure.runner`, pinned to the client CPU."""
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import RunConfig

    config = RunConfig(url=url, model="selfbench", kind="constant", batch_size=1, format="row", mode="closed",
                       engine=engine, concurrency=connections, duration_s=duration_s, warmup_s=warmup_s,
                       extra={"validate": "status", "body": REQUEST_BODY.decode()})
    with pinned(cpus):
        result = run_benchmark(config, pool=None)
    s = result.summary
    note = "client saturated (over 90% of a core)" if s.client_saturated else ""
    rate = ToolRate(engine, s.throughput_rps, requests=s.requests, errors=s.error_count,
                    duration_s=s.measured_s, note=note)
    return _with_cpu(rate, s.client_cpu_pct / 100.0 * s.measured_s)


# ---- the whole benchmark ----------------------------------------------------------------------

TOOLS: tuple[str, ...] = ("wrk", "fast", "aiohttp", "locust")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def machine_info() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 0
    return {"host": platform.node(), "cpus": cpus, "python": platform.python_version(),
            "platform": platform.platform(), "machine": platform.machine()}


def _measure(tool: str, url: str, connections: int, duration_s: float, cpus: set[int] | None,
             workdir: Path) -> ToolRate:
    if tool == "wrk":
        return run_wrk(url, connections, duration_s, cpus, workdir)
    if tool == "locust":
        return run_locust(url, connections, duration_s, cpus, workdir)
    return run_engine(tool, url, connections, duration_s, cpus)


def _combine(tool: str, rounds: list[ToolRate]) -> ToolRate:
    """One ToolRate from several rounds: the median rate, the summed counts, every round's rate."""
    rated = [r for r in rounds if r.rps is not None]
    if not rated:
        return ToolRate(tool, None, note=rounds[-1].note if rounds else "not run")
    rps = statistics.median(r.rps for r in rated)  # type: ignore[misc]
    notes = sorted({r.note for r in rated if r.note})
    per_cpu = [r.rps_per_cpu for r in rated if r.rps_per_cpu]
    cpu = [r.cpu_s for r in rated if r.cpu_s]
    return ToolRate(tool, rps, requests=sum(r.requests for r in rated), errors=sum(r.errors for r in rated),
                    duration_s=round(sum(r.duration_s for r in rated), 3), note="; ".join(notes),
                    rounds_rps=tuple(round(r.rps, 1) for r in rated),  # type: ignore[arg-type]
                    cpu_s=round(sum(cpu), 3) if cpu else None,
                    rps_per_cpu=statistics.median(per_cpu) if per_cpu else None)


def run_selfbench(
    duration_s: float = 5.0,
    connections: int = 64,
    *,
    tools: Sequence[str] = TOOLS,
    rounds: int = 1,
    prefer_target: str = "nginx",
    pin: bool = False,
    log: Callable[[str], None] | None = None,
) -> SelfbenchResult:
    """Measure each client in `tools` against one static target, one after another, `rounds` times
    (the order rotates each round, so slow drifts in background load hit every tool alike); each
    tool's rate is the median of its rounds."""
    if not duration_s > 0:
        raise InputError("--duration must be positive")
    if connections < 1:
        raise InputError("--connections must be at least 1")
    if rounds < 1:
        raise InputError("--rounds must be at least 1")
    for t in tools:
        if t not in TOOLS:
            raise InputError(f"unknown selfbench tool {t!r}; choose from {', '.join(TOOLS)}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    target_cpus, client_cpus, pinning = plan_pinning() if pin else (None, None, "not pinned")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    measured: dict[str, list[ToolRate]] = {t: [] for t in tools}
    with static_target(prefer_target, target_cpus) as target, \
            tempfile.TemporaryDirectory(prefix="tfsbench-selfbench-clients-") as workdir:
        log(f"target: {target.note} at {target.url}; {pinning}")
        order = list(tools)
        for round_index in range(rounds):
            for tool in order:
                log(f"round {round_index + 1}/{rounds}: {tool}, {connections} connections for {duration_s:g} s")
                measured[tool].append(_measure(tool, target.url, connections, duration_s, client_cpus,
                                               Path(workdir)))
                if target.proc.poll() is not None:
                    raise RuntimeError(f"the {target.kind} target died during the {tool} measurement")
            order = order[1:] + order[:1]
        target_kind, target_note = target.kind, target.note
    rates = [_combine(t, measured[t]) for t in tools]
    ratio_rounds: dict[str, list[float]] = {}
    for name in ("fast/wrk", "aiohttp/locust", "fast/aiohttp"):
        a, b = name.split("/")
        pairs = zip(measured.get(a, []), measured.get(b, []), strict=False)
        ratio_rounds[name] = [r for x, y in pairs if (r := _ratio(x.rps, y.rps)) is not None]
    # Each ratio is the median of per-round ratios: the two tools of a round ran within seconds of
    # each other, so background load on a shared machine mostly cancels out.
    ratios = {name: statistics.median(v) if v else None for name, v in ratio_rounds.items()}
    per_cpu = {r.tool: r.rps_per_cpu for r in rates}
    ratios["fast/wrk per CPU-second"] = _ratio(per_cpu.get("fast"), per_cpu.get("wrk"))
    return SelfbenchResult(target=target_kind, target_note=target_note, connections=connections,
                           duration_s=duration_s, rates=tuple(rates), ratios=ratios, pinning=pinning,
                           machine=machine_info(), started_at=started, rounds=rounds,
                           ratio_rounds={k: tuple(round(x, 3) for x in v) for k, v in ratio_rounds.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfsbench.bench.orchestrate.selfbench --serve-static PORT`: the built-in target process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--serve-static":
        serve_static(int(args[1]))
        return 0
    print("usage: python -m tfsbench.bench.orchestrate.selfbench --serve-static PORT (use `tfsbench selfbench` instead)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
