"""Synthetic but realistic run results, for tests, the report benchmark and documentation.

A seeded queueing model of a two-worker model server (service time grows with payload kind and batch
size), with latencies drawn from a lognormal distribution and recorded in real HdrHistograms, so
that every figure, table, comparison and plan can be built and checked without sending traffic.
Nothing here is ever presented as a measurement: runs carry `label="synthetic"`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tfsbench.bench.results import (
    MANIFEST_TYPE,
    LatencySummary,
    RunConfig,
    RunResult,
    Summary,
    TimePoint,
    save_result,
    write_json_atomic,
)

# kind -> (base service ms per request, ms per instance, raw bytes per instance, wire bytes per instance)
_KINDS: dict[str, tuple[float, float, float, float]] = {
    "numeric": (0.6, 0.04, 16.0, 62.0),
    "text": (1.2, 0.25, 96.0, 118.0),
    "image": (3.0, 1.6, 6200.0, 8330.0),
}
_WORKERS = 2
_ENV = {
    "hostname": "synthetic",
    "cpu_count": 2,
    "python": "3.11",
    "platform": "Linux-x86_64",
    "tfsbench": "0.1.0",
    "server": {"kind": "synthetic"},
}


def _service_ms(kind: str, batch_size: int) -> float:
    base, per_instance, _, _ = _KINDS[kind]
    return base + per_instance * batch_size


def _histogram(samples_ms: np.ndarray) -> str:
    from tfsbench.bench.measure import hist as bench_hist

    hist = bench_hist.new()  # the suite's one shape (1 us .. 1 h, 3 digits), without hdrh's reference cycle
    # record distinct values with counts: fast, and identical to recording one by one at 3 digits
    us = np.clip(np.round(samples_ms * 1000.0), 1, 3_600_000_000).astype(np.int64)
    rounded = _round_sig(us, 3)
    values, counts = np.unique(rounded, return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(v, c)
    encoded = hist.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    mag = np.floor(np.log10(np.maximum(x, 1))).astype(np.int64)
    scale = 10.0 ** np.maximum(mag - digits + 1, 0)
    return (np.round(x / scale) * scale).astype(np.int64)


def _latency_summary(samples_ms: np.ndarray) -> LatencySummary:
    p = np.percentile(samples_ms, [50, 90, 95, 99, 99.9])
    return LatencySummary(
        mean=float(samples_ms.mean()),
        p50=float(p[0]),
        p90=float(p[1]),
        p95=float(p[2]),
        p99=float(p[3]),
        p999=float(p[4]),
        max=float(samples_ms.max()),
        min=float(samples_ms.min()),
        stdev=float(samples_ms.std()),
    )


def make_run(
    kind: str = "numeric",
    batch_size: int = 1,
    fmt: str = "row",
    *,
    concurrency: int | None = 4,
    rate_rps: float | None = None,
    duration_s: float = 10.0,
    warmup_s: float = 2.0,
    seed: int = 0,
    speed: float = 1.0,
    model: str | None = None,
    error_rate: float = 0.0,
    unstable: bool = False,
    source: str = "tfsbench",
    with_histogram: bool = True,
    max_samples: int = 20_000,
) -> RunResult:
    """One synthetic run. `speed` > 1 makes the server faster (for before/after comparisons)."""
    rng = np.random.default_rng(seed + 7919 * batch_size + 104729 * (concurrency or 0) + int(rate_rps or 0))
    service_ms = _service_ms(kind, batch_size) / speed
    capacity_rps = _WORKERS * 1000.0 / service_ms
    if rate_rps is None:
        mode = "closed"
        conc = int(concurrency or 1)
        median_ms = max(service_ms + 0.25, conc / capacity_rps * 1000.0)
        throughput_rps = conc / median_ms * 1000.0 * 0.97
        utilization = min(throughput_rps / capacity_rps, 0.99)
    else:
        mode = "open"
        conc = None
        utilization = rate_rps / capacity_rps
        if utilization < 0.97:
            median_ms = service_ms / (1.0 - utilization) * 0.8 + 0.25
            throughput_rps = rate_rps
        else:  # overloaded: the queue grows for the whole run
            median_ms = service_ms * 40.0 * utilization
            throughput_rps = capacity_rps * 0.98
    sigma = 0.25 + 0.45 * min(utilization, 1.2) ** 3
    n = max(50, int(throughput_rps * duration_s))
    draw = min(n, max_samples)
    samples = rng.lognormal(math.log(median_ms), sigma, size=draw)
    if unstable:  # a stall in the middle of the run: a slow cluster in the tail
        samples[: max(1, draw // 50)] *= 12.0
    lat = _latency_summary(samples)
    errors = int(round(n * error_rate))
    ok = n - errors
    _, _, raw_per_instance, wire_per_instance = _KINDS[kind]
    overhead = 40.0 if fmt == "row" else 34.0
    request_bytes = overhead + wire_per_instance * batch_size * (1.0 if fmt == "row" else 0.96)
    timeseries = _timeseries(rng, throughput_rps, lat, duration_s, warmup_s, errors, n, unstable)
    measured_rps = ok / duration_s
    stable = not unstable
    summary = Summary(
        requests=n,
        ok=ok,
        errors={"http_503": errors} if errors else {},
        throughput_rps=measured_rps,
        throughput_ips=measured_rps * batch_size,
        latency_ms=lat,
        request_bytes=request_bytes,
        request_gzip_bytes=round(request_bytes * (0.42 if kind != "image" else 0.76), 1),
        response_bytes=30.0 + 28.0 * batch_size,
        raw_bytes=raw_per_instance * batch_size,
        stable=stable,
        stability_reason="" if stable else "p99 of the last 3 windows varies by 48% (limit 10%)",
        measured_s=duration_s,
        offered_rps=rate_rps,
        client_cpu_pct=min(99.0, 8.0 + throughput_rps / 40.0),
        client_saturated=False,
    )
    config = RunConfig(
        url="http://127.0.0.1:8501",
        model=model or f"{kind}_model",
        kind=kind,
        batch_size=batch_size,
        format=fmt,
        mode=mode,
        engine="aiohttp" if source == "tfsbench" else "locust",
        label="synthetic",
        concurrency=conc,
        rate_rps=rate_rps,
        arrival="poisson" if mode == "open" else None,
        duration_s=duration_s,
        warmup_s=warmup_s,
        seed=seed,
        source=source,
    )
    warnings: tuple[str, ...] = ()
    if unstable:
        warnings = ("run is unstable: " + summary.stability_reason,)
    return RunResult(
        config=config,
        environment=dict(_ENV),
        summary=summary,
        timeseries=timeseries,
        histogram=_histogram(samples) if with_histogram else None,
        warnings=warnings,
        started_at="2026-11-27T12:00:00Z",
    )


def _timeseries(
    rng: np.random.Generator,
    rps: float,
    lat: LatencySummary,
    duration_s: float,
    warmup_s: float,
    errors: int,
    n: int,
    unstable: bool,
) -> tuple[TimePoint, ...]:
    points = []
    seconds = int(duration_s)
    for t in range(-int(warmup_s), seconds):
        ramp = 0.55 + 0.15 * (t + warmup_s) if t < 0 else 1.0
        stall = unstable and seconds // 2 <= t < seconds // 2 + 2
        req = max(0, int(rng.normal(rps * ramp * (0.25 if stall else 1.0), rps * 0.03 + 1)))
        err = int(rng.poisson(errors / max(seconds, 1))) if errors else 0
        slow = (1.6 if t < 0 else 1.0) * (9.0 if stall else 1.0)
        points.append(
            TimePoint(
                t_s=float(t),
                requests=req,
                errors=min(err, req),
                p50_ms=round(lat.p50 * slow * float(rng.uniform(0.95, 1.05)), 3),
                p99_ms=round(lat.p99 * slow * float(rng.uniform(0.9, 1.12)), 3),
            )
        )
    return tuple(points)


def write_manifest(out_dir: Path, names: Iterable[str], *, kind: str = "sweep", extra: dict | None = None) -> Path:
    """A sweep/search manifest in the shape the sweep and search commands write."""
    doc = {"type": MANIFEST_TYPE, "schema_version": 1, "kind": kind, "runs": list(names)}
    doc.update(extra or {})
    path = Path(out_dir) / "manifest.json"
    write_json_atomic(path, doc)
    return path


def write_sweep(
    out_dir: str | Path,
    *,
    kinds: Sequence[str] = ("numeric", "text", "image"),
    batch_sizes: Sequence[int] = (1, 8, 32),
    formats: Sequence[str] = ("row",),
    concurrencies: Sequence[int] = (1, 4, 16),
    speed: float = 1.0,
    model: str | None = None,
    duration_s: float = 10.0,
    seed: int = 0,
) -> list[RunResult]:
    """Write a closed-loop sweep directory (run files + manifest.json); return the runs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs, names = [], []
    for kind in kinds:
        for b in batch_sizes:
            for fmt in formats:
                for c in concurrencies:
                    run = make_run(kind, b, fmt, concurrency=c, speed=speed, model=model,
                                   duration_s=duration_s, seed=seed)
                    name = f"{kind}-b{b}-{fmt}-c{c}.json"
                    save_result(run, out / name)
                    runs.append(run)
                    names.append(name)
    write_manifest(out, names)
    return runs


def write_search(
    out_dir: str | Path,
    *,
    kind: str = "numeric",
    batch_size: int = 8,
    fmt: str = "row",
    slo_text: str = "p99<=50ms",
    slo_metric: str = "p99",
    slo_bound_ms: float = 50.0,
    rates: Sequence[float] | None = None,
    speed: float = 1.0,
    seed: int = 0,
) -> list[RunResult]:
    """Write an open-loop SLO search directory whose manifest names the best rate that met the SLO."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    capacity = _WORKERS * 1000.0 / (_service_ms(kind, batch_size) / speed)
    if rates is None:
        rates = [round(capacity * f, 1) for f in (0.25, 0.5, 0.75, 0.9, 1.1, 0.82, 0.86)]
    runs, names, probes = [], [], []
    best = None
    for i, rate in enumerate(rates):
        run = make_run(kind, batch_size, fmt, concurrency=None, rate_rps=rate, speed=speed, seed=seed + i)
        name = f"probe-{i:02d}-r{rate:g}.json"
        save_result(run, out / name)
        value = getattr(run.summary.latency_ms, slo_metric)
        met = value <= slo_bound_ms and run.summary.error_rate < 0.01
        probes.append({"rate_rps": rate, "file": name, "passed": met, "reason": "ok" if met else "slo",
                       "value_ms": value, "achieved_rps": run.summary.throughput_rps,
                       "error_rate": run.summary.error_rate, "stable": run.summary.stable})
        if met and (best is None or rate > best):
            best = rate
        runs.append(run)
        names.append(name)
    write_manifest(out, names, kind="search",
                   extra={"search": {"slo": slo_text, "best_rate_rps": best, "probes": probes}})
    return runs
