"""Benchmark scripts behind the performance figures in docs/performance.md (not installed).

Run from the repository root as `python -m benchmarks.bench_NAME --out results/NAME.json`."""
