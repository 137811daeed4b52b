"""Presenting results: figures, report.html / summary.md / results.csv, compare, capacity plan.

Reads only the run-result schema (`bench.results`); the only package that imports matplotlib.
Entry points: `reports.dataset.load_sources`, `reports.build.build_report`,
`reports.compare.compare_runs`, `reports.plan.make_plan`, `reports.figures.*` (each returns a Figure).
"""
