"""Replay a traffic trace against a target: its timing (compressed by --speed), its volume (scaled by
--scale), its mix of models and batch sizes; results per window of trace time.

Scaling keeps the trace's shape. Below 1, thinning: each request is kept with probability `scale`
(seeded), so a burst stays a burst, only smaller. Above 1, superposition: floor(scale) copies of the
trace, each but the first shifted by a seeded random offset in [0, shift_s) (wrapping around the
trace's end), plus a thinned copy for the fraction; every window's count grows by the same factor
while requests of different copies do not land on the same instants.

Speed: request i is sent at t_s[i] / speed seconds after the start, so `--speed 60` replays an hour
in a minute; windows, rates and the figure stay in trace time.

Each distinct (model, version or label, payload kind, batch size) becomes a target with its own body
pool (the existing generators) and engine; all share one event loop, one recorder and one schedule,
so the run's totals are those of `tfsbench run`, and the windows come from per-request arrays.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from tfsbench.bench.measure import environment as envmod
from tfsbench.bench.measure.engine import Target, make_engine, predict_url
from tfsbench.bench.measure.recorder import LATE_S, Recorder
from tfsbench.bench.measure.runner import assemble
from tfsbench.bench.measure.schedule import RunState
from tfsbench.bench.measure.trace_schedule import ERROR, NOT_SENT, OK, REFUSED, TraceLoad, TraceRecord, replay
from tfsbench.bench.results import RunConfig, RunResult, TraceWindow
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import Trace, TraceKey

PAYLOAD_KINDS = ("text", "image", "numeric")
MAX_TARGETS = 32
MAX_REPLAY_S = 7 * 86400.0
START_DELAY_S = 0.1


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    url: str
    speed: float = 1.0
    scale: float = 1.0
    shift_s: float = 1.0  # superposed copies: random shift in [0, shift_s)
    window_s: float = 60.0  # trace time
    engine: str = "fast"
    model: str | None = None  # for requests whose trace line names no model
    model_map: Mapping[str, str] = field(default_factory=dict)  # trace model -> target model
    kind: str | None = None  # for requests whose trace line names no kind
    batch_size: int | None = None  # for requests whose trace line names no batch size
    format: str = "row"
    timeout_s: float = 30.0
    max_inflight: int = 1000
    pool_size: int = 16
    seed: int = 0
    validate: str = "full"


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """One target of a replay: what the trace's requests for it are sent as."""

    model: str
    version: int | None
    label: str | None
    kind: str
    batch_size: int

    def config(self, opts: ReplayOptions) -> RunConfig:
        """A RunConfig for preflight and body pools (one second at 1 req/s: never run as is)."""
        return RunConfig(url=opts.url, model=self.model, kind=self.kind, batch_size=self.batch_size,
                         format=opts.format, mode="open", engine=opts.engine, version=self.version,
                         label=self.label, rate_rps=1.0, arrival="constant", duration_s=1.0, seed=opts.seed,
                         timeout_s=opts.timeout_s, pool_size=opts.pool_size,
                         extra={"validate": opts.validate})

    def name(self) -> str:
        at = f"/v{self.version}" if self.version is not None else (f"@{self.label}" if self.label else "")
        return f"{self.model}{at} {self.kind} b={self.batch_size}"


# ---- shaping the trace ----------------------------------------------------------------------------


def scale_trace(trace: Trace, scale: float, seed: int = 0, shift_s: float = 1.0) -> Trace:
    """Thinning (scale < 1) or superposed shifted copies (scale > 1); see the module docstring."""
    if not (math.isfinite(scale) and scale > 0):
        raise InputError(f"--scale must be a number > 0, got {scale!r}")
    if scale == 1.0:
        return trace
    rng = np.random.default_rng(seed)
    copies = int(math.floor(scale + 1e-12))
    frac = scale - copies
    dur = trace.duration_s
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def shifted(offset: float, keep: np.ndarray | None) -> None:
        t, k, b = trace.t_s, trace.key_index, trace.request_bytes
        if keep is not None:
            t, k, b = t[keep], k[keep], b[keep]
        if offset:
            t = np.mod(t + offset, dur) if dur > 0 else t
        parts.append((t, k, b))

    for c in range(copies):
        shifted(0.0 if c == 0 else float(rng.uniform(0.0, shift_s)), None)
    if frac > 1e-12:
        keep = rng.random(len(trace)) < frac
        shifted(0.0 if copies == 0 else float(rng.uniform(0.0, shift_s)), keep)
    t = np.concatenate([p[0] for p in parts])
    if t.size == 0:
        raise InputError(f"--scale {scale:g} leaves no request of the trace's {len(trace)}")
    k = np.concatenate([p[1] for p in parts])
    b = np.concatenate([p[2] for p in parts])
    order = np.argsort(t, kind="stable")
    return dataclasses.replace(trace, t_s=t[order], key_index=k[order].astype(np.int32), request_bytes=b[order])


def resolve_targets(trace: Trace, opts: ReplayOptions) -> tuple[list[ResolvedTarget], np.ndarray]:
    """The distinct targets, and for each request the index of its target. InputError when the
    trace and the options together do not say what to send."""
    per_key: list[int] = []
    targets: dict[ResolvedTarget, int] = {}
    for key in trace.keys:
        target = _resolve(key, opts)
        per_key.append(targets.setdefault(target, len(targets)))
    if len(targets) > MAX_TARGETS:
        raise InputError(f"the trace has {len(targets)} distinct model/batch/kind combinations (at most "
                         f"{MAX_TARGETS}); map models with --model-map or give --batch-size")
    return list(targets), np.asarray(per_key, dtype=np.int32)[trace.key_index]


def _resolve(key: TraceKey, opts: ReplayOptions) -> ResolvedTarget:
    model = key.model or opts.model
    if model is None:
        raise InputError("some trace lines name no model: give --model")
    model = opts.model_map.get(model, model)
    kind = key.kind or opts.kind or (model if model in PAYLOAD_KINDS else None)
    if kind is None:
        raise InputError(f"the trace does not say which payload to send to model {model!r}: give --kind "
                         "(text, image, numeric or auto)")
    batch = key.batch_size or opts.batch_size or 1
    return ResolvedTarget(model=model, version=key.version, label=key.label, kind=kind, batch_size=batch)


def build_load(trace: Trace, target_index: np.ndarray, pool_sizes: Sequence[int], speed: float,
               max_inflight: int) -> TraceLoad:
    """Send times (trace time / speed) and bodies: each target cycles through its own pool."""
    if not (math.isfinite(speed) and speed > 0):
        raise InputError(f"--speed must be a number > 0, got {speed!r}")
    body = np.zeros(target_index.size, dtype=np.int32)
    for k, n in enumerate(pool_sizes):
        mine = np.flatnonzero(target_index == k)
        body[mine] = np.arange(mine.size) % max(1, n)
    return TraceLoad(send_s=trace.t_s / speed, target_index=target_index.astype(np.int32), body_index=body,
                     max_inflight=max_inflight)


# ---- windows --------------------------------------------------------------------------------------


def windows_of(trace: Trace, record: TraceRecord, window_s: float) -> tuple[TraceWindow, ...]:
    """Per window of trace time: scheduled, sent, ok, errors, refused, rates and latency percentiles
    (exact, over that window's ok requests, from the intended send time), schedule lag p99."""
    n_w = max(1, math.ceil(trace.duration_s / window_s - 1e-9))
    w_of = np.minimum((trace.t_s // window_s).astype(np.int64), n_w - 1)
    bounds = np.searchsorted(w_of, np.arange(n_w + 1))
    out = []
    for w in range(n_w):
        lo, hi = int(bounds[w]), int(bounds[w + 1])
        st = record.status[lo:hi]
        lat = record.latency_s[lo:hi][st == OK] * 1000.0
        lag = record.lag_s[lo:hi]
        lag = lag[np.isfinite(lag)]
        length = min(window_s, trace.duration_s - w * window_s) if w == n_w - 1 else window_s
        length = max(length, 1e-9)
        ok = int(np.count_nonzero(st == OK))

        def pct(q: float, values: np.ndarray = lat) -> float | None:
            return float(np.percentile(values, q, method="higher")) if values.size else None

        out.append(TraceWindow(
            t_s=w * window_s, duration_s=length, scheduled=hi - lo,
            sent=int(np.count_nonzero((st == OK) | (st == ERROR))), ok=ok,
            errors=int(np.count_nonzero(st == ERROR)), refused=int(np.count_nonzero(st == REFUSED)),
            offered_rps=(hi - lo) / length, throughput_rps=ok / length,
            p50_ms=pct(50), p90_ms=pct(90), p99_ms=pct(99), max_ms=float(lat.max()) if lat.size else None,
            lag_p99_ms=float(np.percentile(lag, 99, method="higher") * 1000.0) if lag.size else None,
            late=int(np.count_nonzero(lag > LATE_S)),
        ))
    return tuple(out)


# ---- running --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ReplayRun:
    """A finished replay: the result (schema: a run plus windows) and the per-request arrays."""

    result: RunResult
    record: TraceRecord
    trace: Trace  # as replayed (after --scale)
    targets: tuple[ResolvedTarget, ...]
    wall_s: float  # from the first intended send to the last completion


def _run_loop(engines_targets: list[Target], engine_name: str, load: TraceLoad, stop: threading.Event | None,
              ) -> tuple[Any, TraceRecord, float, float]:
    async def main() -> tuple[Any, TraceRecord, float, float]:
        import asyncio

        per = max(1, load.max_inflight // max(1, len(engines_targets)))
        engines = [make_engine(engine_name, t, load.max_inflight) for t in engines_targets]
        for e in engines:
            await e.start()
        try:
            first = load.send_s[: min(load.send_s.size, 256)]
            early = np.bincount(load.target_index[: first.size], minlength=len(engines)) if first.size else []
            for e, n in zip(engines, early, strict=False):
                prepare = getattr(e, "prepare", None)
                if prepare is not None and n:
                    await prepare(int(min(per, 64, n)))
            start_at = time.perf_counter() + START_DELAY_S
            rec = Recorder(start_at, start_at, True, 0)
            state = RunState()

            def on_tick(_now: float) -> None:
                if stop is not None and stop.is_set():
                    state.stop(getattr(stop, "reason", None) or "interrupted")

            sizes = [tuple(len(b) for b in t.bodies) for t in engines_targets]
            end, record = await replay(engines, load, sizes, rec, start_at, state, on_tick)
        finally:
            for e in engines:
                await e.close()
            await asyncio.sleep(0)
        report = rec.report(end, sum(getattr(e, "connections_opened", 0) for e in engines))
        if state.stopping:
            report.extra["stopped"] = 1.0
            report.extra["stopped_at"] = state.stopped_at or end
        return report, record, start_at, end

    from tfsbench.bench.measure.runner import _event_loop_run

    return _event_loop_run(main())


def run_replay(trace: Trace, opts: ReplayOptions, *, pools: Sequence[Any] | None = None,
               headers: Mapping[str, str] | None = None, stop: threading.Event | None = None,
               environment: Mapping[str, Any] | None = None,
               source: str = "") -> ReplayRun:
    """Replay `trace` (already read) with `opts`. `pools[k]` are the bodies of target k (built with
    the payload generators when None, no preflight: the CLI preflights first)."""
    _check(opts)
    scaled = scale_trace(trace, opts.scale, opts.seed, opts.shift_s)
    if scaled.duration_s / opts.speed > MAX_REPLAY_S:
        raise InputError(f"the replay would take {scaled.duration_s / opts.speed / 86400:.1f} days "
                         "(at most 7): raise --speed")
    targets, target_index = resolve_targets(scaled, opts)
    if pools is None:
        from tfsbench.bench.measure.runner import build_pool_for

        pools = [build_pool_for(t.config(opts)) for t in targets]
    load = build_load(scaled, target_index, [len(p.bodies) for p in pools], opts.speed, opts.max_inflight)
    engine_targets = []
    for t, pool in zip(targets, pools, strict=True):
        all_headers = dict(getattr(pool, "headers", {}) or {})
        all_headers.update(headers or {})
        engine_targets.append(Target(url=predict_url(t.config(opts)), bodies=tuple(pool.bodies),
                                     headers=all_headers, timeout_s=opts.timeout_s, batch_size=t.batch_size,
                                     validate=opts.validate))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = _run_loop(engine_targets, opts.engine, load, stop)
        except BaseException:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = traceback.format_exc(limit=8)

    thread = threading.Thread(target=target, name="tfsbench-replay", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
    if "error" in box:
        raise RuntimeError(f"replay failed:\n{box['error']}")
    report, record, start_at, end = box["out"]
    partial_reason = (getattr(stop, "reason", None) or "interrupted") if report.extra.get("stopped") else None
    config = _config(scaled, targets, target_index, opts, source)
    env = envmod.collect()
    env.update(dict(environment or {}))
    raw = float(np.mean([getattr(p, "mean_raw_bytes", 0.0) for p in pools]))
    result = assemble(config, [report], env, raw, started_at, partial_reason)
    windows = windows_of(scaled, record, opts.window_s)
    warnings = list(result.warnings)
    not_sent = int(np.count_nonzero(record.status == NOT_SENT))
    if not_sent and not partial_reason:
        warnings.append(f"{not_sent} requests of the trace were not sent")
    result = dataclasses.replace(result, windows=windows, warnings=tuple(warnings))
    return ReplayRun(result=result, record=record, trace=scaled, targets=tuple(targets), wall_s=end - start_at)


def _check(opts: ReplayOptions) -> None:
    if not (math.isfinite(opts.speed) and opts.speed > 0):
        raise InputError(f"--speed must be a number > 0, got {opts.speed!r}")
    if not (math.isfinite(opts.window_s) and opts.window_s > 0):
        raise InputError(f"--window must be > 0, got {opts.window_s!r}")
    if opts.max_inflight < 1:
        raise InputError(f"--max-inflight must be >= 1, got {opts.max_inflight!r}")


def _config(trace: Trace, targets: Sequence[ResolvedTarget], target_index: np.ndarray, opts: ReplayOptions,
            source: str) -> RunConfig:
    """The run's RunConfig: the busiest target's model, kind and batch; open loop at the trace's mean
    rate (wall time); the replay's own settings in extra['replay']."""
    counts = np.bincount(target_index, minlength=len(targets))
    main = targets[int(np.argmax(counts))]
    wall_s = trace.duration_s / opts.speed
    extra = {
        "validate": opts.validate,
        "replay": {
            "trace": source, "trace_source": trace.source, "trace_start": trace.start,
            "trace_duration_s": trace.duration_s, "requests": len(trace), "speed": opts.speed,
            "scale": opts.scale, "window_s": opts.window_s,
            "targets": [{"name": t.name(), "model": t.model, "version": t.version, "label": t.label,
                         "kind": t.kind, "batch_size": t.batch_size, "requests": int(c)}
                        for t, c in zip(targets, counts, strict=True)],
        },
    }
    return RunConfig(url=opts.url, model=main.model, kind=main.kind, batch_size=main.batch_size,
                     format=opts.format, mode="open", engine=opts.engine, version=main.version, label=main.label,
                     rate_rps=len(trace) / wall_s, arrival="trace", duration_s=wall_s, seed=opts.seed,
                     timeout_s=opts.timeout_s, max_inflight=opts.max_inflight, pool_size=opts.pool_size,
                     extra=extra)
