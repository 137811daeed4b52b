"""Run one benchmark: build the bodies, start the engine process(es), merge what they measured.

`run_benchmark` is synchronous and is what `tfsbench run`, sweeps, searches and selfbench call.
With `processes=1` the engine runs on a uvloop event loop in a helper thread (the calling thread
keeps handling signals and progress); with N > 1 it runs in N spawned processes that share one
start time on the system-wide monotonic clock, each sending 1/N of the load. Their HDR histograms
and per-second series are merged exactly (counts are added, percentiles computed afterwards).

Stopping: when the `stop` event is set (Ctrl-C or SIGTERM in the CLI, or a sweep being
interrupted), the engines send nothing new, wait up to STOP_GRACE_S for requests in flight, count
the rest as `cancelled`, and the result comes back marked `partial` with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tfsbench.bench.measure import environment as envmod
from tfsbench.bench.measure import hist, server_metrics
from tfsbench.bench.measure.engine import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ENGINES,
    VALIDATIONS,
    Target,
    check_url,
    make_engine,
    predict_url,
)
from tfsbench.bench.measure.recorder import Recorder, SecondPoint, WorkerReport
from tfsbench.bench.measure.schedule import ARRIVALS, LoadPlan, RunState, drive
from tfsbench.bench.measure.stop_control import StopControl, slo_bound_us
from tfsbench.bench.results import LatencySummary, RunConfig, RunResult, Summary, TimePoint
from tfsbench.bench.stats import stability
from tfsbench.payloads.errors import InputError

DEFAULT_MAX_INFLIGHT = 1000  # open loop, all processes together
MAX_TIMEOUT_S = 3600.0  # the histograms' range
SATURATED_CPU_PCT = 90.0
DEFAULT_CONSTANT_BODY = '{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
PROGRESS_EVERY_S = 0.5
START_DELAY_S = 0.05  # from "all engines ready" to the first send


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """What a running benchmark reports about twice a second (for progress bars)."""

    elapsed_s: float  # since the first send (warmup included)
    phase: str  # warmup | measure
    requests: int  # completed in this phase so far
    errors: int
    rps: float  # completions per second over the last update interval
    planned_s: float | None = None  # warmup + duration, when the run is time-bound


@dataclass(frozen=True, slots=True)
class ConstantPool:
    """A pool of one fixed body (kind 'constant': selfbench against any URL, or a saved request)."""

    bodies: tuple[bytes, ...]
    mean_raw_bytes: float = 0.0
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"Content-Type": "application/json"})

    @property
    def mean_wire_bytes(self) -> float:
        return sum(len(b) for b in self.bodies) / len(self.bodies)


# ---- configuration ------------------------------------------------------------------------------


def check_config(config: RunConfig) -> None:
    """Everything that can be wrong with a RunConfig, as one InputError line, before any load."""
    protocol = getattr(config, "protocol", "rest")
    if protocol == "grpc":
        from tfsbench.bench.measure.engine_grpc import check_grpc_url

        check_grpc_url(config.url)
        if config.engine != "grpc":
            raise InputError(f"--protocol grpc sends with the grpc engine, not --engine {config.engine}")
    elif protocol != "rest":
        raise InputError(f"--protocol must be rest or grpc, got {protocol!r}")
    else:
        check_url(config.url)
    if not config.model:
        raise InputError("--model must name a model")
    if config.version is not None and config.label is not None:
        raise InputError("give --version or --label, not both (TF Serving rejects both)")
    if config.version is not None and (isinstance(config.version, bool) or config.version < 0):
        raise InputError(f"--version must be an integer >= 0, got {config.version!r}")
    if isinstance(config.batch_size, bool) or not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise InputError(f"--batch-size must be an integer >= 1, got {config.batch_size!r}")
    if config.format not in ("row", "columnar"):
        raise InputError(f"--format must be row or columnar, got {config.format!r}")
    if protocol == "rest" and config.engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")
    if not isinstance(config.processes, int) or not 1 <= config.processes <= 256:
        raise InputError(f"--processes must be 1..256, got {config.processes!r}")
    if config.mode == "closed":
        if config.concurrency is None or config.concurrency < 1:
            raise InputError(f"--concurrency must be an integer >= 1, got {config.concurrency!r}")
        if config.rate_rps is not None:
            raise InputError("give --concurrency (closed loop) or --rate (open loop), not both")
        if config.processes > config.concurrency:
            raise InputError(f"--processes {config.processes} is more than --concurrency {config.concurrency}")
    elif config.mode == "open":
        if config.rate_rps is None or not math.isfinite(config.rate_rps) or config.rate_rps <= 0:
            raise InputError(f"--rate must be a number > 0, got {config.rate_rps!r}")
        if config.concurrency is not None:
            raise InputError("give --concurrency (closed loop) or --rate (open loop), not both")
        if (config.arrival or "constant") not in ARRIVALS:
            raise InputError(f"--arrival must be one of {', '.join(ARRIVALS)}, got {config.arrival!r}")
    else:
        raise InputError(f"mode must be closed or open, got {config.mode!r}")
    if config.duration_s is None and config.requests_limit is None:
        raise InputError("give --duration or --requests: every run must be bounded")
    if config.duration_s is not None and not (0 < config.duration_s <= 7 * 86400):
        raise InputError(f"--duration must be > 0 and at most 7 days, got {config.duration_s!r} s")
    if config.until_stable and (config.duration_s is None or config.requests_limit is not None):
        raise InputError("measuring until stable needs a bound (--max-duration) and no --requests")
    if config.requests_limit is not None and config.requests_limit < 1:
        raise InputError(f"--requests must be an integer >= 1, got {config.requests_limit!r}")
    if not (0 <= config.warmup_s <= 86400):
        raise InputError(f"--warmup must be >= 0, got {config.warmup_s!r} s")
    if not (0 < config.timeout_s <= MAX_TIMEOUT_S):
        raise InputError(f"--timeout must be > 0 and at most 1 hour, got {config.timeout_s!r} s")
    if config.max_inflight is not None and config.max_inflight < config.processes:
        raise InputError(f"--max-inflight must be >= 1 per process, got {config.max_inflight!r}")
    validate = config.extra.get("validate", "full")
    if validate not in VALIDATIONS:
        raise InputError(f"validate must be one of {', '.join(VALIDATIONS)}, got {validate!r}")


def _split(total: int, n: int, i: int) -> int:
    return total // n + (1 if i < total % n else 0)


def plans_for(config: RunConfig) -> list[LoadPlan]:
    """Each engine process's share: concurrency, rate, request count and in-flight cap split N ways.
    Constant arrivals are phase-shifted so the union is evenly spaced; Poisson streams get
    different seeds (the superposition of N Poisson(R/N) processes is Poisson(R))."""
    n = config.processes
    plans = []
    cap_total = config.max_inflight or (config.concurrency if config.mode == "closed" else DEFAULT_MAX_INFLIGHT)
    for i in range(n):
        limit = _split(config.requests_limit, n, i) if config.requests_limit is not None else None
        if config.mode == "closed":
            plans.append(LoadPlan(
                mode="closed", concurrency=_split(config.concurrency or 1, n, i), warmup_s=config.warmup_s,
                duration_s=config.duration_s, requests_limit=limit, max_inflight=max(1, _split(cap_total, n, i)),
                seed=config.seed * 1000 + i,
            ))
        else:
            rate = float(config.rate_rps or 0.0)
            plans.append(LoadPlan(
                mode="open", rate_rps=rate / n, arrival=config.arrival or "constant", phase_s=i / rate,
                warmup_s=config.warmup_s, duration_s=config.duration_s, requests_limit=limit,
                max_inflight=max(1, _split(cap_total, n, i)), seed=config.seed * 1000 + i,
            ))
    return plans


# ---- payloads -----------------------------------------------------------------------------------


def payload_spec_for(config: RunConfig) -> Any:
    """The tfsbench.payloads.spec.PayloadSpec of a RunConfig: kind, batch size, format, seed and signature
    from the config; other generator knobs (image size, text words, shapes...) from
    `config.extra["payload"]`, a dict of PayloadSpec field values (lists become tuples)."""
    from tfsbench.payloads.spec import spec_from_knobs

    return spec_from_knobs(config.extra.get("payload", {}), kind=config.kind, batch_size=config.batch_size,
                           format=config.format, seed=config.seed, signature_name=config.signature)


def payload_extra(spec: Any) -> dict[str, Any]:
    """The inverse of payload_spec_for: the spec's non-default knobs, JSON-ready, for config.extra."""
    from tfsbench.payloads.spec import PayloadSpec

    out: dict[str, Any] = {}
    skip = {"kind", "batch_size", "format", "seed", "signature_name"}
    for f in dataclasses.fields(PayloadSpec):
        if f.name in skip:
            continue
        value = getattr(spec, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        if value != default:
            if isinstance(value, Mapping):
                value = {k: list(v) for k, v in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
    return out


def build_pool_for(config: RunConfig, metadata: Any = None) -> Any:
    """The body pool of a config (kind 'constant': the body in config.extra['body'])."""
    if config.kind == "constant":
        text = config.extra.get("body", DEFAULT_CONSTANT_BODY)
        body = text.encode() if isinstance(text, str) else bytes(text)
        return ConstantPool((body,))
    if getattr(config, "protocol", "rest") == "grpc":
        from tfsbench.bench.measure.engine_grpc import build_grpc_pool_for

        return build_grpc_pool_for(config, metadata)
    from tfsbench.payloads.pool import build_pool

    if metadata is None and config.kind == "auto":
        from tfsbench.payloads.metadata_fetch import fetch_metadata

        metadata = fetch_metadata(config.url, config.model, config.version, config.label,
                                  timeout_s=min(config.timeout_s, 30.0))
    return build_pool(payload_spec_for(config), config.pool_size, metadata)


# ---- running --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    engine: str
    target: Target
    plan: LoadPlan
    index: int
    max_connections: int


def _event_loop_run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)


def _snapshot(rec: Recorder) -> tuple[int, int, int, int]:
    return (rec.warm_requests, rec.warm_errors, rec.requests, sum(rec.errors.values()))


def _preopen(plan: LoadPlan) -> int:
    """Connections worth opening before the start: the closed loop's C, or about 2 ms of arrivals
    (at most 64) for an open loop; more open on demand."""
    if plan.mode == "closed":
        return plan.concurrency
    return max(1, min(plan.max_inflight, 64, math.ceil(plan.rate_rps * 0.002)))


def _no_control() -> tuple[float, float]:
    return 0.0, 0.0


def _engine_main(job: _Job, wait_go: Callable[[], float], emit: Callable[[tuple[Any, ...]], None],
                 should_stop: Callable[[], str | None],
                 control: Callable[[], tuple[float, float]] = _no_control) -> WorkerReport:
    """One engine process's whole life (also used in-thread when processes == 1). `control()`
    gives the measured window's start and end decided by the parent's _StopControl (0: as planned)."""

    async def main() -> WorkerReport:
        import asyncio

        engine = make_engine(job.engine, job.target, job.max_connections)
        await engine.start()
        prepare = getattr(engine, "prepare", None)
        if prepare is not None:
            await prepare(_preopen(job.plan))
        emit(("ready", job.index))
        start_at = await asyncio.get_running_loop().run_in_executor(None, wait_go)
        rec = Recorder(start_at + job.plan.warmup_s, start_at, job.plan.mode == "open", job.index)
        state = RunState()
        last = [0.0]

        def on_tick(now: float) -> None:
            reason = should_stop()
            if reason:
                state.stop(reason)
            begin, end = control()
            if begin and begin < state.measure_start:
                rec.begin_measuring(begin)
                state.measure_start = begin
            if end and end < state.measure_end:
                state.measure_end = end
            closed = rec.take_seconds()
            if closed or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                emit(("tick", job.index, now, _snapshot(rec), tuple(closed)))

        sizes = tuple(len(b) for b in job.target.bodies)
        try:
            end = await drive(engine, job.plan, rec, sizes, start_at, state, on_tick)
        finally:
            await engine.close()
        report = rec.report(end, getattr(engine, "connections_opened", 0))
        report.extra["start_at"] = start_at
        if math.isfinite(state.measure_end):
            report.extra["measure_end"] = state.measure_end
        if state.stopping:
            report.extra["stopped"] = 1.0
            report.extra["stopped_at"] = state.stopped_at or end
        return report

    return _event_loop_run(main())


def _child_entry(job: _Job, out_q: Any, go: Any, start_value: Any, stop_ev: Any, parent_pid: int,
                 channel: Any) -> None:
    """Entry point of a spawned engine process. Ctrl-C goes to the whole process group: the parent
    decides what it means, so children ignore SIGINT and watch the stop event (and the parent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def wait_go() -> float:
        while not go.wait(0.2):
            if stop_ev.is_set() or os.getppid() != parent_pid:
                break
        return start_value.value if go.is_set() else time.perf_counter()

    def should_stop() -> str | None:
        if stop_ev.is_set():
            return "stop"
        if os.getppid() != parent_pid:
            return "parent exited"
        return None

    try:
        report = _engine_main(job, wait_go, out_q.put, should_stop, lambda: (channel[0], channel[1]))
        out_q.put(("done", job.index, report))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the run
        out_q.put(("error", job.index, traceback.format_exc(limit=8)))


class _Progress:
    """Sums the engines' tick snapshots into ProgressUpdates."""

    def __init__(self, n: int, callback: Callable[[ProgressUpdate], None] | None, warmup_s: float,
                 planned_s: float | None, control: StopControl | None = None) -> None:
        self.control = control
        self.snaps: dict[int, tuple[int, int, int, int]] = {i: (0, 0, 0, 0) for i in range(n)}
        self.callback = callback
        self.warmup_s = warmup_s
        self.planned_s = planned_s
        self.start_at: float | None = None
        self.last_t = 0.0
        self.last_total = 0

    def tick(self, index: int, now: float, snap: tuple[int, int, int, int],
             closed: tuple[SecondPoint, ...] = ()) -> None:
        self.snaps[index] = snap
        control = self.control
        if control is not None and self.start_at is not None:
            if control.start_at is None:
                control.started(self.start_at)
            control.tick(index, now, snap[0] + snap[2], closed)
        if self.callback is None or self.start_at is None or now - self.last_t < PROGRESS_EVERY_S * 0.8:
            return
        wr = sum(s[0] for s in self.snaps.values())
        we = sum(s[1] for s in self.snaps.values())
        mr = sum(s[2] for s in self.snaps.values())
        me = sum(s[3] for s in self.snaps.values())
        total = wr + mr
        dt = now - self.last_t if self.last_t else now - self.start_at
        rps = (total - self.last_total) / dt if dt > 0 else 0.0
        self.last_t, self.last_total = now, total
        elapsed = now - self.start_at
        measure_at = control.measure_at if control is not None else None
        measuring = now >= measure_at if measure_at is not None else elapsed >= self.warmup_s
        self.callback(ProgressUpdate(
            elapsed_s=elapsed, phase="measure" if measuring else "warmup",
            requests=mr if measuring else wr, errors=me if measuring else we, rps=rps, planned_s=self.planned_s,
        ))


def _stop_reason(stop: threading.Event | None) -> str | None:
    if stop is not None and stop.is_set():
        return getattr(stop, "reason", None) or "interrupted"
    return None


def _run_in_thread(job: _Job, progress: _Progress, stop: threading.Event | None,
                   channel: list[float]) -> list[WorkerReport]:
    q: queue.Queue[tuple[Any, ...]] = queue.Queue()

    def control() -> tuple[float, float]:
        return channel[0], channel[1]

    def wait_go() -> float:
        start_at = time.perf_counter() + START_DELAY_S
        progress.start_at = start_at
        return start_at

    abandoned: list[str] = []  # set when this thread leaves early (an exception): stop the engine too

    def should_stop() -> str | None:
        return _stop_reason(stop) or (abandoned[0] if abandoned else None)

    def target() -> None:
        try:
            q.put(("done", 0, _engine_main(job, wait_go, q.put, should_stop, control)))
        except BaseException:  # noqa: BLE001
            q.put(("error", 0, traceback.format_exc(limit=8)))

    t = threading.Thread(target=target, name="tfsbench-engine", daemon=True)
    t.start()
    try:
        while True:
            try:
                msg = q.get(timeout=0.2)
            except queue.Empty:
                continue
            if msg[0] == "tick":
                progress.tick(msg[1], msg[2], msg[3], msg[4])
            elif msg[0] == "done":
                return [msg[2]]
            elif msg[0] == "error":
                raise RuntimeError(f"engine failed:\n{msg[2]}")
    finally:
        if t.is_alive():
            abandoned.append("the caller stopped waiting")
        t.join(timeout=STOP_JOIN_S)


STOP_JOIN_S = 10.0
_children: list[Any] = []  # live engine processes, so an impatient CLI can kill them by PID


def kill_children() -> None:
    """Kill engine processes of a run in progress (the CLI's second Ctrl-C)."""
    for p in list(_children):
        if p.is_alive() and p.pid:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except OSError:
                pass


def _run_in_processes(jobs: list[_Job], progress: _Progress, stop: threading.Event | None,
                      channel: Any) -> tuple[list[WorkerReport], str | None]:
    ctx = mp.get_context("spawn")
    out_q = ctx.Queue()
    go = ctx.Event()
    stop_ev = ctx.Event()
    start_value = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_child_entry, args=(job, out_q, go, start_value, stop_ev, os.getpid(), channel),
                         name=f"tfsbench-engine-{job.index}", daemon=True) for job in jobs]
    reports: dict[int, WorkerReport] = {}
    ready: set[int] = set()
    lost: str | None = None
    try:
        for p in procs:
            p.start()
            _children.append(p)
        while len(reports) < len(procs):
            if _stop_reason(stop) and not stop_ev.is_set():
                stop_ev.set()
            try:
                msg = out_q.get(timeout=0.2)
            except queue.Empty:
                dead = [i for i, p in enumerate(procs) if i not in reports and p.exitcode is not None]
                if dead:
                    lost = f"engine process {dead[0]} exited (status {procs[dead[0]].exitcode}) without a result"
                    stop_ev.set()
                    go.set()
                    # collect what the others measured, then give up on the dead ones
                    alive = [i for i, p in enumerate(procs) if i not in reports and p.exitcode is None]
                    if not alive:
                        break
                continue
            kind = msg[0]
            if kind == "ready":
                ready.add(msg[1])
                if len(ready) == len(procs):
                    start_at = time.perf_counter() + START_DELAY_S
                    start_value.value = start_at
                    progress.start_at = start_at
                    go.set()
            elif kind == "tick":
                progress.tick(msg[1], msg[2], msg[3], msg[4])
            elif kind == "done":
                reports[msg[1]] = msg[2]
            elif kind == "error":
                stop_ev.set()
                go.set()
                raise RuntimeError(f"engine process {msg[1]} failed:\n{msg[2]}")
    finally:
        stop_ev.set()
        go.set()
        for p in procs:
            if p.pid is None:  # never started (start() of an earlier one failed)
                continue
            p.join(timeout=STOP_JOIN_S)
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGKILL)
                p.join(timeout=2)
            if p in _children:
                _children.remove(p)
    return [reports[i] for i in sorted(reports)], lost


def run_benchmark(config: RunConfig, *, pool: Any = None, headers: Mapping[str, str] | None = None,
                  progress: Callable[[ProgressUpdate], None] | None = None,
                  stop: threading.Event | None = None,
                  environment: Mapping[str, Any] | None = None) -> RunResult:
    """Run `config` against its target and return the result (partial if `stop` was set).

    `pool` is a payloads BodyPool (or anything with `.bodies` and `.mean_raw_bytes`); built from
    the config when None. `headers` are added to every request (auth tokens...). `environment`
    entries (e.g. {"target": preflight info}) are merged into the result's environment block.
    """
    check_config(config)
    if pool is None:
        pool = build_pool_for(config)
    bodies = tuple(pool.bodies)
    if not bodies:
        raise InputError("the body pool is empty")
    all_headers = dict(getattr(pool, "headers", {}) or {})
    all_headers.update(headers or {})
    target = Target(url=predict_url(config), bodies=bodies, headers=all_headers, timeout_s=config.timeout_s,
                    batch_size=config.batch_size, validate=config.extra.get("validate", "full"),
                    max_response_bytes=int(config.extra.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)),
                    compression=config.extra.get("grpc_compression"))
    plans = plans_for(config)
    jobs = [_Job(config.engine, target, plan, i, plan.concurrency if plan.mode == "closed" else plan.max_inflight)
            for i, plan in enumerate(plans)]
    planned = config.warmup_s + config.duration_s if config.duration_s is not None else None
    channel: Any = mp.get_context("spawn").Array("d", 2, lock=False) if config.processes > 1 else [0.0, 0.0]
    control = StopControl(config, len(jobs), channel)
    tracker = _Progress(len(jobs), progress, config.warmup_s, planned, control if control.active else None)
    # [server_metrics hook] scrape TF Serving's Prometheus page when the measured window opens ...
    if control.auto_warmup:  # the measured window opens when warm-up settles, not at a planned time
        server_view = server_metrics.window(dataclasses.replace(config, warmup_s=0.0), lambda: control.measure_at)
    else:
        server_view = server_metrics.window(config, lambda: tracker.start_at)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    lost = None
    if config.processes == 1:
        reports = _run_in_thread(jobs[0], tracker, stop, channel)
    else:
        reports, lost = _run_in_processes(jobs, tracker, stop, channel)
    if not reports:
        raise RuntimeError(lost or "no engine produced a result")
    env = envmod.collect()
    env.update(dict(environment or {}))
    partial_reason = _stop_reason(stop) if any(r.extra.get("stopped") for r in reports) else None
    if lost:
        partial_reason = lost if partial_reason is None else f"{partial_reason}; {lost}"
    result = assemble(config, reports, env, float(getattr(pool, "mean_raw_bytes", 0.0)), started_at,
                      partial_reason, warmup_how=control.warmup_how, request_gzip_bytes=mean_gzip_bytes(pool),
                      cut_s=control.cut_s)
    return server_view.attach(result, settled_s=result.summary.settled_s)  # [server_metrics hook] ... and after it: RunResult.server


# ---- merging --------------------------------------------------------------------------------------


def _latency(h: Any) -> LatencySummary:
    return LatencySummary(**hist.summary_ms(h))


def merge_seconds(reports: list[WorkerReport]) -> list[tuple[int, int, int, str | None]]:
    """(sec, requests, errors, encoded merged histogram or None) for every second from first to last.
    Histograms stay encoded (a few hundred bytes each; a decoded one is ~180 kB)."""
    by_sec: dict[int, list[SecondPoint]] = {}
    for r in reports:
        for p in r.seconds:
            by_sec.setdefault(p.sec, []).append(p)
    if not by_sec:
        return []
    out: list[tuple[int, int, int, str | None]] = []
    acc = hist.new()
    for sec in range(min(by_sec), max(by_sec) + 1):
        points = by_sec.get(sec, [])
        encoded = [p.histogram for p in points if p.histogram]
        if len(encoded) > 1:
            hist.clear(acc)
            for e in encoded:
                hist.merge_into(acc, hist.decode(e))
            merged: str | None = hist.encode(acc)
        else:
            merged = encoded[0] if encoded else None
        out.append((sec, sum(p.requests for p in points), sum(p.errors for p in points), merged))
    return out


def _p50_p99(encoded: str | None) -> tuple[float | None, float | None]:
    if not encoded:
        return None, None
    h = hist.decode(encoded)
    return hist.value_at_percentile(h, 50.0) / 1000.0, hist.value_at_percentile(h, 99.0) / 1000.0


def _measured_s(config: RunConfig, reports: list[WorkerReport], measure_start: float, requests: int,
                partial: bool) -> float:
    """The measured window's length: from its start to its planned or decided end when the run went
    the distance (in-flight requests finishing after it do not stretch it, or an open loop's rate
    would read low); the time to the last response for --requests; the time to the stop for an
    interrupted run."""
    last = max(r.measure_end for r in reports)
    if partial:
        stopped = [r.extra["stopped_at"] for r in reports if "stopped_at" in r.extra]
        end = min(stopped) if stopped else last
    elif config.duration_s is not None and not (config.requests_limit is not None
                                                  and requests >= config.requests_limit):
        ends = [r.extra["measure_end"] for r in reports if "measure_end" in r.extra]
        return min(ends) - measure_start if ends else config.duration_s
    else:
        end = last
    return max(1e-9, end - measure_start)


def _note(config: RunConfig, warmup_s: float, warmup_how: str, measured_s: float, stable: bool,
          window_s: float, settled_s: int = 0) -> str:
    """What the run did to get its numbers, in one sentence (Summary.measure_note)."""
    warm = f"warm-up {warmup_s:.1f} s ({warmup_how or 'fixed --warmup'})"
    if config.until_stable and config.duration_s is not None:
        if stable and settled_s:
            how = (f"measured {measured_s + settled_s:.1f} s; the whole window's thirds disagreed, the last "
                   f"{measured_s:.1f} s agreed ({window_s:.3g} s thirds, enough samples for the p99), so the result is "
                   f"those seconds and the first {settled_s} s were set aside as not yet steady "
                   f"(bound {config.duration_s:g} s)")
        elif stable:
            how = (f"measured {measured_s:.1f} s, until its thirds ({window_s:.3g} s each) agreed and there were "
                   f"enough samples for the p99 (bound {config.duration_s:g} s)")
        else:
            how = f"measured {measured_s:.1f} s without the stability rule holding (the bound)"
    elif config.requests_limit is not None:
        how = f"measured {measured_s:.1f} s for --requests {config.requests_limit}"
    else:
        how = f"measured {measured_s:.1f} s (fixed --duration)"
    return f"{warm}; {how}"


def _usable_cut(config: RunConfig, seconds: list[tuple[int, int, int, str | None]], cut_s: int, whole: int) -> int:
    """`cut_s` when the result can be those seconds: a closed loop measured until stable, the cut keeping
    at least stability.MIN_KEPT of the measured seconds, and no error before it (errors are kept by class for the
    whole window only); else 0."""
    if cut_s <= 0 or config.mode != "closed" or not config.until_stable:
        return 0
    if not stability.keeps_enough(whole, cut_s):
        return 0
    if any(err for sec, _, err, _ in seconds if 0 <= sec < cut_s):
        return 0
    return cut_s


def mean_gzip_bytes(pool: Any) -> float | None:
    """Mean gzip-compressed size of a pool's bodies (payloads' SizeInfo accounting), None when the pool
    keeps no size accounting (constant bodies, gRPC pools)."""
    sizes = [getattr(s, "gzip_bytes", None) for s in getattr(pool, "sizes", ()) or ()]
    sizes = [float(v) for v in sizes if isinstance(v, int | float)]
    return sum(sizes) / len(sizes) if sizes else None


def _busy_machine(env: dict[str, Any]) -> str:
    """'load average 6.2 on 2 CPUs' when more runnable processes than CPUs were waiting, else ''."""
    load, cpus = env.get("load_avg"), env.get("cpus_usable") or env.get("cpus")
    if not load or not cpus or load[0] <= cpus:
        return ""
    return f"load average {load[0]:.1f} on {cpus} CPUs"


def assemble(config: RunConfig, reports: list[WorkerReport], env: dict[str, Any], raw_bytes: float,
             started_at: str, partial_reason: str | None, *, warmup_how: str = "",
             request_gzip_bytes: float | None = None, cut_s: int = 0) -> RunResult:
    """Merge the engines' reports into one RunResult (pure: no I/O, testable on its own). `cut_s` > 0
    (a closed-loop run that measured until stable, StopControl.cut_s): the result is the measured
    seconds from that second on, counted by completion from the per-second records."""
    latency = hist.new()
    for r in reports:
        hist.merge_into(latency, hist.decode(r.histogram))
    lag = None
    if config.mode == "open":
        lag = hist.new()
        for r in reports:
            if r.lag_histogram:
                hist.merge_into(lag, hist.decode(r.lag_histogram))
    requests = sum(r.requests for r in reports)
    ok = sum(r.ok for r in reports)
    errors: dict[str, int] = {}
    for r in reports:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    samples: list[str] = []
    for r in reports:
        for s in r.error_samples:
            if s not in samples and len(samples) < 5:
                samples.append(s)
    measure_start = min(r.measure_start for r in reports)
    measured_s = _measured_s(config, reports, measure_start, requests, partial_reason is not None)
    throughput = ok / measured_s if ok else 0.0
    seconds = merge_seconds(reports)
    timeseries = tuple(
        TimePoint(t_s=float(sec), requests=req, errors=err, p50_ms=p50, p99_ms=p99)
        for sec, req, err, enc in seconds
        for p50, p99 in (_p50_p99(enc),)
    )
    whole = int(math.floor(measured_s + 1e-6))
    measured_points = [(req - err, h) for sec, req, err, h in seconds if 0 <= sec < whole]
    partial = partial_reason is not None
    requests_all = requests
    settled_s = _usable_cut(config, seconds, cut_s, whole) if not partial else 0
    if settled_s:  # the seconds from settled_s on, by completion (the drained in-flight ones too)
        kept = [(req, err, h) for sec, req, err, h in seconds if sec >= settled_s]
        requests = sum(req for req, _, _ in kept)
        ok = requests - sum(err for _, err, _ in kept)
        hist.clear(latency)
        for _, _, h in kept:
            if h:
                hist.merge_into(latency, hist.decode(h))
        measured_s -= settled_s
        throughput = ok / measured_s if ok else 0.0
        measured_points = measured_points[settled_s:]
    window_s = len(measured_points) / 3
    stable, reason = stability.verdict(measured_points, ok, partial, bound_us=slo_bound_us(config))
    starts = [r.extra["start_at"] for r in reports if "start_at" in r.extra]
    warmup_taken = max(0.0, measure_start - min(starts)) if starts else config.warmup_s
    cpu_pcts = [100.0 * max(0.0, r.cpu_s - r.idle_spin_s) / r.wall_s if r.wall_s > 0 else 0.0 for r in reports]
    cpu = max(cpu_pcts) if cpu_pcts else 0.0
    saturated = cpu > SATURATED_CPU_PCT
    late = sum(r.late_requests for r in reports)
    refused = sum(r.refused_inflight for r in reports)
    warnings: list[str] = []
    if saturated:
        warnings.append(f"client saturated: an engine process used {cpu:.0f}% of a core (> {SATURATED_CPU_PCT:.0f}%); "
                        "latencies include the load generator's own queueing; add --processes or use --engine fast")
    if refused:
        warnings.append(f"{refused} arrivals were refused because --max-inflight requests were already in flight")
    if config.mode == "open" and requests and late / requests > 0.01:
        warnings.append(f"{late / requests:.1%} of requests left more than 1 ms after their intended time "
                        "(the load generator could not keep the schedule)")
    if ok and ok < stability.MIN_SAMPLES_P999:
        warnings.append(f"p99.9 rests on {ok} samples (< {stability.MIN_SAMPLES_P999}); treat it as indicative")
    if partial:
        warnings.append(f"partial result: {partial_reason}")
    busy = _busy_machine(env)
    if busy and not stable:
        warnings.append(f"the machine was busy ({busy}): other processes competed with the target and the "
                        "load generator for CPU, which moves throughput and latency from second to second")
    env["client"] = {
        "processes": len(reports),
        "cpu_pct": [round(c, 1) for c in cpu_pcts],
        "max_rss_kb": [r.max_rss_kb for r in reports],
        "connections_opened": sum(r.connections_opened for r in reports),
        "warmup_requests": sum(r.warmup_requests for r in reports),
        "warmup_errors": sum(r.warmup_errors for r in reports),
    }
    summary = Summary(
        requests=requests, ok=ok, errors=dict(sorted(errors.items())), throughput_rps=throughput,
        throughput_ips=throughput * config.batch_size, latency_ms=_latency(latency),
        request_bytes=sum(r.request_bytes_total for r in reports) / requests_all if requests_all else 0.0,
        response_bytes=sum(r.response_bytes_total for r in reports) / requests_all if requests_all else 0.0,
        raw_bytes=raw_bytes, request_gzip_bytes=request_gzip_bytes, stable=stable, stability_reason=reason,
        measured_s=measured_s,
        offered_rps=config.rate_rps if config.mode == "open" else None,
        schedule_lag_ms=_latency(lag) if lag is not None else None,
        late_requests=late, refused_inflight=refused, client_cpu_pct=cpu, client_saturated=saturated,
        error_samples=tuple(samples), warmup_s=warmup_taken, window_s=window_s,
        measure_note=_note(config, warmup_taken, warmup_how, measured_s, stable, window_s, settled_s),
        settled_s=float(settled_s),
    )
    return RunResult(
        config=config, environment=env, summary=summary, timeseries=timeseries,
        histogram=hist.encode(latency), lag_histogram=hist.encode(lag) if lag is not None else None,
        warnings=tuple(warnings), partial=partial, partial_reason=partial_reason, started_at=started_at,
    )
