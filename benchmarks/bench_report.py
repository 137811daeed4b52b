"""Benchmark: how long `tfsbench report` takes for a 60-run sweep (target: under 15 s on 2 cores).

    python -m benchmarks.bench_report [--repeat 3] [--runs 60] [--quick] --out FILE.json

Writes a synthetic 60-run closed-loop sweep (3 kinds x 4 batch sizes x 5 concurrency levels, real
HdrHistograms, per-second time series) through `tfsbench.bench.results`, then times the same steps as the
command, in a fresh subprocess each time so imports (matplotlib...) are counted: loading, figures,
rendering and writing. A second case adds a comparison against another 60-run sweep.
A benchmark script, not a test; `--runs 12` makes a smoke-sized sweep (the target is for 60).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfsbench.reports.synthetic import write_sweep

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 15.0
CONCURRENCIES = (1, 2, 4, 8, 16)


def _write_inputs(base: Path, runs: int) -> tuple[Path, Path]:
    """Two synthetic sweeps of 3 kinds x 4 batch sizes x `runs // 12` concurrency levels (60 runs: 5)."""
    levels = CONCURRENCIES[: max(1, min(len(CONCURRENCIES), runs // 12))]
    grid = dict(kinds=("numeric", "text", "image"), batch_sizes=(1, 4, 16, 64), concurrencies=levels,
                duration_s=30.0)
    a, b = base / "sweep-a", base / "sweep-b"
    written = write_sweep(a, **grid)
    write_sweep(b, speed=1.1, seed=7, **grid)
    assert len(written) == 12 * len(levels)
    return a, b


def _time_cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tfsbench", "report", *args], cwd=ROOT, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"report failed: {proc.stderr.strip()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser("bench_report", __doc__)
    parser.add_argument("--repeat", type=harness.positive_int, default=3, help="timings per case (median)")
    parser.add_argument("--runs", type=harness.positive_int, default=60,
                        help="runs per sweep: 12, 24, 36, 48 or 60 (default 60, what the target is for)")
    parser.add_argument("--quick", action="store_true", help="only the first case (a smoke run)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        base = Path(tmp)
        a, b = _write_inputs(base, args.runs)
        n = 12 * max(1, min(len(CONCURRENCIES), args.runs // 12))
        cases = {
            f"{n}-run sweep": [str(a), "--out", str(base / "r1"), "--slo", "p99<=50ms"],
            f"{n}-run sweep + plan": [str(a), "--out", str(base / "r2"), "--slo", "p99<=50ms", "--target-ips",
                                      "20000", "--cost-per-replica-hour", "0.5"],
            f"two {n}-run sweeps compared": [str(a), str(b), "--out", str(base / "r3"), "--slo", "p99<=50ms"],
        }
        if args.quick:
            cases = dict(list(cases.items())[:1])
        results = {}
        for name, cli in cases.items():
            times = [_time_cli(cli) for _ in range(args.repeat)]
            results[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
            print(f"{name:30s} median {results[name]['median_s']:5.1f} s  (min {min(times):.1f}, "
                  f"max {max(times):.1f}; target < {TARGET_S:g} s for 60 runs)")
    targets = {f"{name} median_s": harness.target(r["median_s"], "<", TARGET_S) for name, r in results.items()}
    return harness.emit("bench_report", args, {"runs_per_sweep": n, "cases": results}, targets, argv)


if __name__ == "__main__":
    raise SystemExit(main())
