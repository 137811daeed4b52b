"""Benchmark: does a trace replay keep the trace's timing and counts?

    .venv/bin/python -m benchmarks.bench_replay [--target nginx|embedded] [--peak 5] --out FILE.json

A seeded synthetic 1-hour trace (diurnal around its peak, two x3 bursts, 80/20 numeric/text, batch
sizes 1 and 8: about 19k requests) replayed at --speed 60 against a target pinned to one CPU, the
client pinned to the other:
- nginx: a one-worker nginx answering every path with a static predictions body (status-only
  validation): the client's own precision, with a target that is never the bottleneck;
- embedded: `tfsbench serve` (the TF Serving-compatible target, full validation), one process.
Targets: schedule lag p99 < 1 ms over all requests (the request-by-request arrays, not a histogram);
per-window sent counts equal to the trace's (60 s windows of trace time); the replay of the hour at
--speed 60 takes 60 s +- 2% (from the first intended send to the last response).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from tfsbench.bench.orchestrate.replay import ReplayOptions, run_replay
from tfsbench.bench.orchestrate.selfbench import _stop_process, pinned, plan_pinning, static_target
from tfsbench.payloads.trace_synth import Bursts, SynthSpec, synthesize

from benchmarks.harness import emit, parser, positive_float


@contextlib.contextmanager
def embedded_target(cpus: set[int] | None) -> Iterator[str]:
    """`tfsbench serve --port 0` in its own process (pinned), stopped by PID."""
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    proc = subprocess.Popen([sys.executable, "-m", "tfsbench", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=pin, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(50):
            line = proc.stdout.readline()
            if "listening on" in line:
                yield line.rsplit(" ", 1)[-1].strip()
                return
            if not line and proc.poll() is not None:
                break
        raise RuntimeError("tfsbench serve did not start")
    finally:
        _stop_process(proc)


def measure(target: str, peak_rps: float, speed: float, seed: int) -> dict[str, Any]:
    spec = SynthSpec(profile="diurnal", peak_rps=peak_rps, duration_s=3600.0, peak_hour=0.5, trough=0.2,
                     bursts=Bursts(2, 3.0, 60.0), models=(("numeric", 0.8), ("text", 0.2)),
                     batch_sizes=((1, 0.7), (8, 0.3)), seed=seed)
    trace = synthesize(spec)
    target_cpus, client_cpus, pin_note = plan_pinning()
    if target == "nginx":
        ctx: Any = static_target("nginx", target_cpus)
    else:
        ctx = embedded_target(target_cpus)
    with ctx as running, pinned(client_cpus):
        url = running if isinstance(running, str) else running.url
        note = "tfsbench serve (embedded target), 1 process" if isinstance(running, str) else running.note
        validate = "full" if target == "embedded" else "status"
        opts = ReplayOptions(url=url, speed=speed, window_s=60.0, validate=validate, seed=seed)
        run = run_replay(trace, opts, source="synth 1h diurnal")
    lag_ms = run.record.lag_s[np.isfinite(run.record.lag_s)] * 1000.0
    windows = run.result.windows
    expected = trace.window_counts(60.0).tolist()
    sent = [w.sent for w in windows]
    s = run.result.summary
    planned_s = trace.duration_s / speed
    return {
        "target": note, "pinning": pin_note, "trace": trace.source, "requests": len(trace),
        "speed": speed, "planned_s": planned_s, "wall_s": round(run.wall_s, 3),
        "wall_over_planned": round(run.wall_s / planned_s, 4),
        "sent": int(lag_ms.size), "ok": s.ok, "errors": dict(s.errors), "refused": s.refused_inflight,
        "lag_ms": {q: round(float(np.percentile(lag_ms, p, method="higher")), 4)
                   for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100))},
        "late_fraction": round(float(np.mean(lag_ms > 1.0)), 5),
        "latency_ms": {"p50": s.latency_ms.p50, "p99": s.latency_ms.p99},
        "client_cpu_pct": round(s.client_cpu_pct, 1),
        "windows": len(windows), "window_counts_equal": sent == expected,
        "window_count_mismatches": sum(1 for a, b in zip(sent, expected, strict=True) if a != b),
    }


def main(argv: list[str] | None = None) -> int:
    p = parser("bench_replay", __doc__)
    p.add_argument("--target", choices=("nginx", "embedded"), default="nginx")
    p.add_argument("--peak", type=positive_float, default=5.0, help="trace peak rate, req/s of trace time")
    p.add_argument("--speed", type=positive_float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fifo", action="store_true",
                   help="diagnostic: run the client under SCHED_FIFO (root) to separate the replay's own "
                        "precision from a busy machine's scheduling delays")
    args = p.parse_args(argv)
    import os

    if args.fifo:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # threads started later inherit it
    load_before = os.getloadavg()
    r = measure(args.target, args.peak, args.speed, args.seed)
    r["scheduling"] = "SCHED_FIFO 1 (diagnostic)" if args.fifo else "normal (SCHED_OTHER)"
    r["load_avg_before"] = [round(x, 2) for x in load_before]
    r["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"{r['requests']:,} requests in {r['wall_s']} s (planned {r['planned_s']} s); lag p99 {r['lag_ms']['p99']} ms, "
          f"late {r['late_fraction']:.2%}; windows equal: {r['window_counts_equal']}")
    from benchmarks.harness import target

    targets = {
        "requests": target(r["requests"], ">=", 10_000),
        "lag_p99_ms": target(r["lag_ms"]["p99"], "<", 1.0),
        "window_count_mismatches": target(r["window_count_mismatches"], "<=", 0),
    }
    if args.speed == 60.0:
        targets["wall_over_planned"] = target(abs(r["wall_over_planned"] - 1.0), "<=", 0.02)
    return emit("bench_replay", args, r, targets, argv)


if __name__ == "__main__":
    raise SystemExit(main())
