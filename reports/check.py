"""CI gates for `tfsbench check`: thresholds on run results and comparison with a baseline.

The work is split by role:
- `check_thresholds`: the threshold language (metrics, scopes, values), parsing and measuring;
- `check_evaluate`: verdicts on thresholds and against a baseline (through the statistics core
  `tfsbench.bench.stats`, shared with `tfsbench compare`), and `check_results`, the entry point;
- `check_render`: text, Markdown and JUnit XML.
This module re-exports their public names, so `from tfsbench.reports.check import ...` keeps working.
"""

from __future__ import annotations

from tfsbench.reports.check_evaluate import (
    COMPARABLE,
    DEFAULT_COMPARE,
    IDENTITY_FIELDS,
    Check,
    CheckOutcome,
    Comparison,
    change_words,
    check_results,
    compare_metric,
    compare_with_baseline,
    config_differences,
    evaluate_thresholds,
    identity,
    pair_with_baseline,
)
from tfsbench.reports.check_render import render_junit, render_markdown, render_text
from tfsbench.reports.check_thresholds import (
    LATENCY_STATS,
    METRICS,
    SCOPE_FIELDS,
    SERVER_STATS,
    MetricSpec,
    Threshold,
    format_value,
    holds,
    measure,
    parse_threshold,
    parse_tolerance,
)

__all__ = [
    "COMPARABLE",
    "DEFAULT_COMPARE",
    "IDENTITY_FIELDS",
    "LATENCY_STATS",
    "METRICS",
    "SCOPE_FIELDS",
    "SERVER_STATS",
    "Check",
    "CheckOutcome",
    "Comparison",
    "MetricSpec",
    "Threshold",
    "change_words",
    "check_results",
    "compare_metric",
    "compare_with_baseline",
    "config_differences",
    "evaluate_thresholds",
    "format_value",
    "holds",
    "identity",
    "measure",
    "pair_with_baseline",
    "parse_threshold",
    "parse_tolerance",
    "render_junit",
    "render_markdown",
    "render_text",
]
