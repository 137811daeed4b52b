"""Soak benchmark: a long open-loop run at a steady rate, recording memory as it goes.

    python -m benchmarks.bench_soak --duration 30m --rate 500 --dir results/soak --out results/soak.json

A long run must not grow: latencies go into HDR histograms, the time series is one point per
second, nothing keeps a per-request list. This script checks that on the real thing. It starts the
embedded target (`tfsbench serve`) in its own process (or uses --url), runs one open-loop benchmark
through `tfsbench.bench.measure.runner.run_benchmark` in this process, and every --interval seconds records the RSS
of this process (the load generator: engine, recorder, histograms) and of the target, with the
requests completed so far. Files in --dir: `soak.csv`, `soak.png`, `soak-run.json` (the run
result) and `soak-summary.json` (growth after warmup, per million requests); the summary is also
the benchmark document written to --out (target, from 100,000 requests on: < 10 MB of client growth
per million requests, the budget of 100 MB per 10 million).

This is a script, not package API, so it may draw its own figure with matplotlib.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.bench.args import duration, positive_int, rate

from benchmarks import harness

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MiB, from /proc (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    client_rss_mb: float | None
    target_rss_mb: float | None
    requests: int
    errors: int
    phase: str
    rps: float


class Sampler:
    """Samples RSS every `interval_s` on its own thread; requests come from the progress callback."""

    def __init__(self, target_pid: int | None, interval_s: float, csv_path: Path | None = None) -> None:
        self.target_pid = target_pid
        self.interval_s = interval_s
        self.csv_path = csv_path  # rows are appended as they are taken: a killed soak keeps its data
        self.samples: list[Sample] = []  # one per interval: 360 for 30 min at 5 s
        self._last: tuple[str, int, int, float] = ("warmup", 0, 0, 0.0)
        self._warm_total = 0
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)

    def progress(self, update: object) -> None:
        phase = getattr(update, "phase", "")
        requests = int(getattr(update, "requests", 0))
        if phase == "warmup":
            self._warm_total = requests
        self._last = (phase, requests, int(getattr(update, "errors", 0)), float(getattr(update, "rps", 0.0)))

    def start(self) -> None:
        self._t0 = time.monotonic()
        if self.csv_path is not None:
            write_csv(self.csv_path, [])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def _sample(self) -> None:
        phase, requests, errors, rps = self._last
        total = requests + (self._warm_total if phase == "measure" else 0)
        self.samples.append(Sample(
            t_s=round(time.monotonic() - self._t0, 2), client_rss_mb=rss_mb(os.getpid()),
            target_rss_mb=rss_mb(self.target_pid) if self.target_pid else None, requests=total, errors=errors,
            phase=phase or "start", rps=round(rps, 1)))
        if self.csv_path is not None:
            with open(self.csv_path, "a", newline="") as fh:
                csv.writer(fh).writerow(_row(self.samples[-1]))

    def _loop(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval_s):
            self._sample()


def start_target(cpus: set[int] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    from tfsbench.bench.orchestrate.selfbench import free_port, wait_listening

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "serve", "--port", str(port)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(Path(__file__).resolve().parent.parent))
    wait_listening(port, proc, timeout_s=60)
    return proc, f"http://127.0.0.1:{port}"


def write_csv(path: Path, samples: list[Sample]) -> None:
    """Atomically (the shared writer): a soak killed mid-write leaves the previous CSV, not half a one."""
    from tfsbench.bench.results import write_text_atomic

    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["t_s", "client_rss_mb", "target_rss_mb", "requests", "errors", "phase", "rps"])
    for s in samples:
        w.writerow(_row(s))
    write_text_atomic(path, buf.getvalue())


def _row(s: Sample) -> list[object]:
    return [s.t_s, _fmt(s.client_rss_mb), _fmt(s.target_rss_mb), s.requests, s.errors, s.phase, s.rps]


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def summarize(samples: list[Sample], warmup_s: float, settle_s: float, load_end_s: float) -> dict[str, object]:
    """RSS growth under load (from warmup + settle to the end of the schedule), and separately the
    peak after the load ended, while the runner assembles the result."""
    measured = [s for s in samples if s.client_rss_mb is not None]
    under = [s for s in measured if warmup_s + settle_s <= s.t_s <= load_end_s]
    if len(under) < 2:
        under = [s for s in measured if s.t_s <= load_end_s] or measured
    after = [s for s in measured if s.t_s > load_end_s]
    first, last = under[0], under[-1]
    requests = max(last.requests - first.requests, 0)
    client_growth = (last.client_rss_mb or 0.0) - (first.client_rss_mb or 0.0)
    out: dict[str, object] = {
        "from_t_s": first.t_s, "to_t_s": last.t_s, "requests_between": requests,
        "client_rss_first_mb": round(first.client_rss_mb or 0.0, 2),
        "client_rss_last_mb": round(last.client_rss_mb or 0.0, 2),
        "client_rss_max_under_load_mb": round(max(s.client_rss_mb or 0.0 for s in under), 2),
        "client_growth_mb": round(client_growth, 2),
        "client_growth_mb_per_million": round(client_growth / requests * 1e6, 3) if requests else None,
        "client_rss_peak_after_load_mb": round(max(s.client_rss_mb or 0.0 for s in after), 2) if after else None,
    }
    if first.target_rss_mb is not None and last.target_rss_mb is not None:
        out["target_rss_first_mb"] = round(first.target_rss_mb, 2)
        out["target_rss_last_mb"] = round(last.target_rss_mb, 2)
        out["target_growth_mb"] = round(last.target_rss_mb - first.target_rss_mb, 2)
    return out


def plot(path: Path, samples: list[Sample], title: str, warmup_s: float, load_end_s: float,
         timeseries: Any = ()) -> None:
    """RSS of both processes over time (top) and the run's per-second p99 (bottom, log scale), so a
    step in memory can be matched with what the latency did at that moment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_min = [s.t_s / 60.0 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, height_ratios=[2, 1], layout="constrained")
    ax1.plot(t_min, [s.client_rss_mb for s in samples], label="load generator (engine + recorder)", color="C0")
    if any(s.target_rss_mb is not None for s in samples):
        ax1.plot(t_min, [s.target_rss_mb for s in samples], label="embedded target (tfsbench serve)", color="C1")
    ax1.set_ylabel("RSS (MiB)")
    under = [v for s in samples if s.t_s <= load_end_s for v in (s.client_rss_mb, s.target_rss_mb) if v is not None]
    top = max(under) * 1.6 if under else None
    ax1.set_ylim(0, top)
    after = [s for s in samples if s.t_s > load_end_s and s.client_rss_mb is not None]
    peak = max(after, key=lambda s: s.client_rss_mb or 0.0) if after else None
    if top is not None and peak is not None and (peak.client_rss_mb or 0.0) > top:
        ax1.annotate(f"after the load: {peak.client_rss_mb:.0f} MiB (off scale)", xy=(peak.t_s / 60.0, top),
                     xytext=(-8, -14), textcoords="offset points", ha="right", fontsize=8, color="C0",
                     arrowprops={"arrowstyle": "->", "color": "C0"})
    ax1.axvline(warmup_s / 60.0, color="grey", linestyle=":", linewidth=1)
    ax1.axvline(load_end_s / 60.0, color="grey", linestyle="--", linewidth=1)
    ax1.annotate("load ends", xy=(load_end_s / 60.0, 0), xytext=(-6, 6),
                 textcoords="offset points", ha="right", va="bottom", fontsize=8, color="grey")
    ax1.legend(loc="upper left")
    ax1.grid(True, alpha=0.3)
    ax1.set_title(title, fontsize=10)
    points = [(warmup_s + p.t_s, p.p99_ms) for p in timeseries if p.p99_ms]
    if points:
        ax2.plot([t / 60.0 for t, _ in points], [v for _, v in points], color="C3", linewidth=0.8)
        ax2.set_yscale("log")
        ax2.set_ylabel("p99 per second (ms)")
    else:
        ax2.plot(t_min, [s.requests / 1e6 for s in samples], color="C2")
        ax2.set_ylabel("requests (millions)")
    ax2.set_xlabel("time since start (minutes)")
    ax2.grid(True, alpha=0.3, which="both")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser("bench_soak", __doc__)
    ap.add_argument("--duration", type=duration, default=1800.0, help="measured time (default 30m)")
    ap.add_argument("--warmup", type=duration, default=10.0, help="warmup (default 10s)")
    ap.add_argument("--rate", type=rate, default=500.0, help="open-loop requests/s (default 500)")
    ap.add_argument("--interval", type=duration, default=5.0, help="RSS sampling interval (default 5s)")
    ap.add_argument("--settle", type=duration, default=60.0,
                    help="growth is measured from warmup + settle to the end (default 60s)")
    ap.add_argument("--engine", choices=("fast", "aiohttp"), default="fast")
    ap.add_argument("--kind", default="numeric")
    ap.add_argument("--batch-size", type=positive_int, default=1)
    ap.add_argument("--url", help="benchmark this target instead of starting the embedded one")
    ap.add_argument("--dir", type=Path, default=Path("results/soak"),
                    help="soak.csv, soak.png, soak-run.json and soak-summary.json go here (default results/soak)")
    ap.add_argument("--replot", action="store_true",
                    help="recompute the summary and figure from --dir's soak.csv and soak-run.json, no load")
    args = ap.parse_args(argv)
    if args.replot:
        return emit(args, replot(args.dir, args.settle), argv)

    from tfsbench.bench.interrupt import stop_on_signals
    from tfsbench.bench.measure.runner import run_benchmark
    from tfsbench.bench.results import RunConfig, save_result

    args.dir.mkdir(parents=True, exist_ok=True)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_target()
    stop = threading.Event()
    try:
        config = RunConfig(url=url, model=args.kind, kind=args.kind, batch_size=args.batch_size, format="row",
                           mode="open", engine=args.engine, rate_rps=args.rate, arrival="constant",
                           duration_s=args.duration, warmup_s=args.warmup)
        sampler = Sampler(proc.pid if proc else None, args.interval, args.dir / "soak.csv")
        print(f"soak: {args.rate:g} req/s open loop for {args.duration:g} s (+{args.warmup:g} s warmup) against "
              f"{url}, RSS every {args.interval:g} s -> {args.dir}", file=sys.stderr, flush=True)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        sampler.start()
        with stop_on_signals(stop):
            result = run_benchmark(config, progress=sampler.progress, stop=stop)
        sampler.stop()
    finally:
        if proc is not None:
            from tfsbench.bench.orchestrate.selfbench import _stop_process

            _stop_process(proc)
    save_result(result, args.dir / "soak-run.json")
    summary = finish(args.dir, sampler.samples, result, args.settle, started)
    status = emit(args, summary, argv)
    return 130 if result.partial else status


def emit(args: argparse.Namespace, summary: dict[str, Any], argv: list[str] | None) -> int:
    """The summary as the benchmark document; the growth target applies from 100,000 requests on
    (fewer make the per-million extrapolation mostly noise)."""
    targets = {}
    if int(summary.get("requests_between") or 0) >= 100_000:
        targets["client_growth_mb_per_million"] = harness.target(summary["client_growth_mb_per_million"], "<", 10.0)
    return harness.emit("bench_soak", args, summary, targets, argv)


def load_end_of(result: Any) -> float:
    """Seconds from the sampler's start to the end of the schedule (pool building is a fraction
    of a second; the runner starts sending 50 ms after its engine is ready)."""
    return result.config.warmup_s + (result.config.duration_s or 0.0) + 1.0


def finish(out: Path, samples: list[Sample], result: Any, settle_s: float, started: str) -> dict[str, Any]:
    from tfsbench.bench.results import write_json_atomic

    cfg, s = result.config, result.summary
    load_end_s = load_end_of(result)
    summary = summarize(samples, cfg.warmup_s, settle_s, load_end_s)
    summary.update({
        "started_at": started, "rate_rps": cfg.rate_rps, "duration_s": cfg.duration_s, "engine": cfg.engine,
        "requests": s.requests, "ok": s.ok, "errors": dict(s.errors), "throughput_rps": round(s.throughput_rps, 2),
        "p50_ms": round(s.latency_ms.p50, 3), "p99_ms": round(s.latency_ms.p99, 3),
        "p999_ms": round(s.latency_ms.p999, 3), "max_ms": round(s.latency_ms.max, 3),
        "schedule_lag_p99_ms": round(s.schedule_lag_ms.p99, 3) if s.schedule_lag_ms else None,
        "partial": result.partial, "cpus": len(os.sched_getaffinity(0)), "python": sys.version.split()[0],
    })
    write_json_atomic(out / "soak-summary.json", summary)
    title = (f"soak: {cfg.rate_rps:g} req/s open loop ({cfg.engine} engine), {(cfg.duration_s or 0) / 60:.3g} min, "
             f"{s.requests / 1e6:.2f} M requests; {started[:10]}, {summary['cpus']} CPUs\n"
             f"load generator RSS {summary['client_growth_mb']:+.1f} MiB under load "
             f"({summary['from_t_s']:.0f} s to {summary['to_t_s']:.0f} s)")
    plot(out / "soak.png", samples, title, cfg.warmup_s, load_end_s, result.timeseries)
    print(json.dumps(summary, indent=1))
    return summary


def replot(out: Path, settle_s: float) -> dict[str, Any]:
    from tfsbench.bench.results import load_result

    result = load_result(out / "soak-run.json")
    samples = []
    with open(out / "soak.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            samples.append(Sample(
                t_s=float(row["t_s"]), client_rss_mb=float(row["client_rss_mb"]) if row["client_rss_mb"] else None,
                target_rss_mb=float(row["target_rss_mb"]) if row["target_rss_mb"] else None,
                requests=int(row["requests"]), errors=int(row["errors"]), phase=row["phase"], rps=float(row["rps"])))
    return finish(out, samples, result, settle_s, result.started_at)


if __name__ == "__main__":
    raise SystemExit(main())
