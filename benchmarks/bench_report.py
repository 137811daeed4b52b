"""Benchmark: how long `tfsbench report` takes for a 60-run sweep (target: under 15 s on 2 cores).

    python benchmarks/bench_report.py [--runs-dir DIR] [--repeat 3]

Writes a synthetic 60-run closed-loop sweep (3 kinds x 4 batch sizes x 5 concurrency levels, real
HdrHistograms, per-second time series) through `tfsbench.bench.results`, then times the same steps as the
command, in a fresh subprocess each time so imports (matplotlib...) are counted: loading, figures,
rendering and writing. A second case adds a comparison against another 60-run sweep.
This is a script, not a test; it lives in `reports` because it imports `reports` (bench never does).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 15.0


def _write_inputs(base: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from tfsbench.reports.synthetic import write_sweep

    grid = dict(kinds=("numeric", "text", "image"), batch_sizes=(1, 4, 16, 64), concurrencies=(1, 2, 4, 8, 16),
                duration_s=30.0)
    a, b = base / "sweep-a", base / "sweep-b"
    runs = write_sweep(a, **grid)
    write_sweep(b, speed=1.1, seed=7, **grid)
    assert len(runs) == 60
    return a, b


def _time_cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tfsbench", "report", *args], cwd=ROOT, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"report failed: {proc.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the numbers here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        base = Path(tmp)
        a, b = _write_inputs(base)
        cases = {
            "60-run sweep": [str(a), "--out", str(base / "r1"), "--slo", "p99<=50ms"],
            "60-run sweep + plan": [str(a), "--out", str(base / "r2"), "--slo", "p99<=50ms", "--target-ips",
                                    "20000", "--cost-per-replica-hour", "0.5"],
            "two 60-run sweeps compared": [str(a), str(b), "--out", str(base / "r3"), "--slo", "p99<=50ms"],
        }
        results = {}
        for name, cli in cases.items():
            times = [_time_cli(cli) for _ in range(args.repeat)]
            results[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
            status = "ok" if results[name]["median_s"] < TARGET_S else "OVER TARGET"
            print(f"{name:30s} median {results[name]['median_s']:5.1f} s  (min {min(times):.1f}, max {max(times):.1f}; "
                  f"target < {TARGET_S:g} s: {status})")
    doc = {"benchmark": "report", "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%d"), "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if all(r["median_s"] < TARGET_S for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
