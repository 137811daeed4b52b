"""The whole pipeline against one target: a short sweep, an SLO search, a report and a capacity plan.

It lives with the command line, not in reports: it drives load (reports only read results).
`tfsbench demo` runs it against the embedded target it starts; the steps are the ones a user would
run by hand (`sweep`, `search`, `report`/`plan`), with small sizes so the demo takes minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tfsbench.bench.results import RunConfig, RunResult
from tfsbench.bench.stats.slo import Slo, parse_slo


@dataclass(frozen=True, slots=True)
class DemoSettings:
    kinds: tuple[str, ...] = ("numeric", "text", "image")
    batch_sizes: tuple[int, ...] = (1, 8)
    concurrencies: tuple[int, ...] = (1, 8)
    # every run measures until stable (docs/stability.md), at most duration_s after a warm-up that
    # ends when throughput settles, at most warmup_s: the bounds keep the demo within 3 minutes
    duration_s: float = 12.0
    warmup_s: float = 3.0
    # sweep --max-remeasure for the demo: a run that ends unstable (a spell of the shared machine in its
    # middle) is measured once more; 0 before session 6, when four such runs took a demo to 205 s, but
    # since runs may set aside a first second still moving, about one sweep run in twenty needs it
    sweep_max_remeasure: int = 1
    engine: str = "fast"
    search_kind: str = "numeric"
    search_batch_size: int = 8
    search_max_probes: int = 3
    # search probes measure until stable like the sweep's runs (the demo's search does not re-measure:
    # an unstable probe counts against its rate), at most search_duration_s
    search_duration_s: float = 8.0
    search_warmup_s: float = 2.0
    # a probe over capacity leaves thousands of requests queued in the target; answers later than this
    # are errors (the probe has failed anyway) instead of holding the demo for the default 30 s
    search_timeout_s: float = 3.0
    # --quick's runs are too short for any stability verdict (3 whole seconds at least): its search
    # judges the SLO alone, as `tfsbench search --allow-unstable` does
    search_require_stable: bool = True
    slo: str = "p99<=50ms"
    target_ips: float = 20000.0
    headroom: float = 0.3
    cost_per_replica_hour: float = 0.35  # an illustrative price, stated in the output
    prime_requests: int = 20  # per kind, before the sweep: first calls and thread-pool growth happen here


@dataclass(slots=True)
class DemoOutcome:
    out_dir: Path
    sweep_dir: Path
    search_dir: Path
    report_html: Path
    plan_json: Path | None
    best_rate_rps: float | None
    timings_s: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    protocols_dir: Path | None = None  # the REST-vs-gRPC pair, when the target serves gRPC too


def measure(url: str, out_dir: Path, settings: DemoSettings = DemoSettings(), *, progress: bool = True,
            log: Callable[[str], None] = print, after_sweep: Callable[[], None] | None = None) -> DemoOutcome:
    """Sweep and SLO search against `url` (an embedded or real TF Serving target). `after_sweep` runs
    between them: the search's probes above capacity leave the target with a backlog and a storm of
    half-open connections for seconds, so whatever else measures this target goes before it."""
    from tfsbench.bench.orchestrate.search import run_search
    from tfsbench.bench.orchestrate.sweep import SweepPlan, run_sweep

    slo: Slo = parse_slo(settings.slo)
    out_dir = Path(out_dir)
    sweep_dir, search_dir, report_dir = out_dir / "sweep", out_dir / "search", out_dir / "report"
    if (report_dir / "report.html").exists():  # a report of an earlier demo must not pass for this one
        (report_dir / "report.html").unlink()
    timings: dict[str, float] = {}
    base = RunConfig(url=url, model="{kind}", kind=settings.kinds[0], batch_size=1, format="row", mode="closed",
                     engine=settings.engine, concurrency=1, duration_s=settings.duration_s,
                     warmup_s=settings.warmup_s, seed=0, until_stable=True, warmup_auto=True)
    plan = SweepPlan(base=base, kinds=settings.kinds, batch_sizes=settings.batch_sizes, formats=("row",),
                     concurrencies=settings.concurrencies)
    n = len(plan.configs())
    t0 = time.perf_counter()
    prime(url, settings)
    timings["prime"] = time.perf_counter() - t0
    log(f"[2/4] sweep: {n} closed-loop runs ({len(settings.kinds)} kinds x {len(settings.batch_sizes)} batch sizes "
        f"x {len(settings.concurrencies)} concurrency levels), each measured until stable (at most "
        f"{settings.duration_s:g}s) after a warm-up until throughput settles (at most {settings.warmup_s:g}s) "
        f"-> {sweep_dir}")
    t0 = time.perf_counter()
    sweep = run_sweep(plan, sweep_dir, resume=False, progress=progress, log=log,
                      max_remeasure=settings.sweep_max_remeasure)
    timings["sweep"] = time.perf_counter() - t0
    if sweep.interrupted:
        raise KeyboardInterrupt
    if after_sweep is not None:
        after_sweep()
    search_base = RunConfig(url=url, model=settings.search_kind, kind=settings.search_kind,
                            batch_size=settings.search_batch_size, format="row", mode="open", engine=settings.engine,
                            rate_rps=1.0, arrival="poisson", duration_s=settings.search_duration_s,
                            warmup_s=settings.search_warmup_s, seed=0, until_stable=True, warmup_auto=True,
                            timeout_s=settings.search_timeout_s)
    log(f"[3/4] SLO search: highest open-loop (Poisson) rate of {settings.search_kind} b={settings.search_batch_size} "
        f"meeting {slo}, at most {settings.search_max_probes} probes -> {search_dir}")
    t0 = time.perf_counter()
    search = run_search(search_base, slo, search_dir, max_probes=settings.search_max_probes, progress=progress,
                        log=log, require_stable=settings.search_require_stable, max_remeasure=0)
    timings["search"] = time.perf_counter() - t0
    if search.interrupted:
        raise KeyboardInterrupt
    return DemoOutcome(out_dir=out_dir, sweep_dir=sweep_dir, search_dir=search_dir, report_html=report_dir / "report.html",
                       plan_json=None, best_rate_rps=search.best_rate_rps, timings_s=timings)


def report_and_plan(outcome: DemoOutcome, settings: DemoSettings = DemoSettings(), *,
                    log: Callable[[str], None] = print) -> DemoOutcome:
    """Plan and report from what `run_pipeline` measured (no target needed any more)."""
    from tfsbench.reports.build import build_report
    from tfsbench.reports.dataset import load_sources
    from tfsbench.reports.plan import make_plan

    slo = parse_slo(settings.slo)
    report_dir = outcome.report_html.parent
    log(f"[4/4] report and capacity plan (target {settings.target_ips:g} predictions/s, headroom "
        f"{settings.headroom:.0%}, an illustrative {settings.cost_per_replica_hour:g} per replica-hour) -> {report_dir}")
    t0 = time.perf_counter()
    sources = load_sources([str(outcome.sweep_dir), str(outcome.search_dir)])
    # the REST-vs-gRPC pair shows in the report (its own section), not in the capacity plan
    shown = sources + (load_sources([str(outcome.protocols_dir)]) if outcome.protocols_dir else [])
    cap_plan = make_plan(sources, slo, target_ips=settings.target_ips, headroom=settings.headroom,
                         cost_per_replica_hour=settings.cost_per_replica_hour)
    files = build_report(shown, report_dir, slo=slo, plan=cap_plan, compare=False,
                         title="tfsbench demo: the embedded target on this machine")
    outcome.timings_s["report"] = time.perf_counter() - t0
    outcome.report_html = files.html
    outcome.plan_json = files.plan_json
    return outcome


def prime(url: str, settings: DemoSettings) -> None:
    """A few requests of every kind at the largest batch size and concurrency before anything is
    measured: each model's first calls and the target's thread pool growing to its size happen here,
    not in the first run's measured window. (The target's decoding worker processes start only for
    bodies over 256 KiB; the demo's largest, image b=8, is about 30 KB.)"""
    from tfsbench.bench.measure.runner import run_benchmark

    for kind in settings.kinds:
        config = RunConfig(url=url, model=kind, kind=kind, batch_size=max(settings.batch_sizes), format="row",
                           mode="closed", engine=settings.engine, concurrency=max(settings.concurrencies),
                           requests_limit=settings.prime_requests, warmup_s=0.0, seed=0,
                           extra={"server_metrics": "off"})  # nothing to view; and a scrape can land after the end
        run_benchmark(config)


# per protocol: measured until stable like every other demo run (a fixed 1,500 requests took under a
# second, too short for any stability verdict, and showed as two unstable runs on the report's first line)
PROTOCOL_MAX_S = 8.0
PROTOCOL_WARMUP_MAX_S = 2.0


def measure_twice_if_unstable(runner: Callable[[RunConfig], RunResult], config: RunConfig, path: Path,
                              log: Callable[[str], None]) -> RunResult:
    """One run, measured once more when it ends unstable (as the demo's sweep does, sweep.py's
    _remeasure_unstable): the unstable attempt is kept in unstable/ beside `path`, the note says so."""
    from tfsbench.bench.orchestrate.sweep import remeasured
    from tfsbench.bench.results import save_result

    result = runner(config)
    if result.summary.stable or result.partial:
        return result
    save_result(result, path.parent / "unstable" / path.name)
    log(f"      {path.stem} unstable ({result.summary.stability_reason}); measuring it again")
    return remeasured(runner(config), 1)


def compare_protocols(rest_url: str, grpc_url: str, out_dir: Path, *, kind: str = "numeric", batch_size: int = 8,
                      concurrency: int = 4, log: Callable[[str], None] = print, max_s: float = PROTOCOL_MAX_S,
                      warmup_max_s: float = PROTOCOL_WARMUP_MAX_S) -> Path:
    """The same payload at the same load over REST (fast engine, JSON) and gRPC (grpc engine, protobuf):
    two result files the report pairs in its "REST vs gRPC" section (see docs/grpc.md)."""
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import save_result

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"      REST vs gRPC: {kind} b={batch_size}, {concurrency} in flight, each measured until stable (at most "
        f"{max_s:g}s) -> {out_dir}")
    for protocol, url, engine in (("rest", rest_url, "fast"), ("grpc", grpc_url, "grpc")):
        config = RunConfig(url=url, model=kind, kind=kind, batch_size=batch_size, format="row", mode="closed",
                           engine=engine, protocol=protocol, concurrency=concurrency,
                           duration_s=max_s, warmup_s=warmup_max_s, seed=0, until_stable=True,
                           warmup_auto=True)
        name = f"{kind}-b{batch_size}-c{concurrency}-{protocol}.json"
        result = measure_twice_if_unstable(run_benchmark, config, out_dir / name, log)
        save_result(result, out_dir / name)
        log(f"      {protocol}: {result.summary.throughput_rps:,.0f} req/s, p50 {result.summary.latency_ms.p50:.2f} ms, "
            f"{result.summary.request_bytes:,.0f} bytes a request")
    return out_dir
