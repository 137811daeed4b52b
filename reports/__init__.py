"""Presenting results: figures, report.html / summary.md / results.csv, compare, capacity plan.

Reads only the run-result schema (`tfsbench.bench.results`); the only package that imports matplotlib.
Entry points: `tfsbench.reports.dataset.load_sources`, `tfsbench.reports.build.build_report`,
`tfsbench.reports.compare.compare_runs`, `tfsbench.reports.plan.make_plan`, `tfsbench.reports.figures.*` (each returns a Figure).
"""
