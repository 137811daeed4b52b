"""Latency service-level objectives such as `p99<=50ms`, shared by search, plan and check.

An SLO is one latency statistic compared with one bound. It is parsed once, from text a person
typed, so the parser is strict and its error names what was expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tfsbench.payloads.errors import InputError

METRICS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean", "max")
OPS: tuple[str, ...] = ("<", "<=")
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}

_SLO_RE = re.compile(
    r"^\s*(?P<metric>[a-z0-9.]+)\s*(?P<op><=|<)\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    r"\s*(?P<unit>ms|s|us|µs)\s*$"
)
_ALIASES = {"p99.9": "p999", "median": "p50", "avg": "mean", "average": "mean"}


@dataclass(frozen=True, slots=True)
class Slo:
    """`metric op bound_ms`, e.g. p99 <= 50 ms. `metric` names a field of `LatencySummary`."""

    metric: str
    op: str
    bound_ms: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"SLO metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.op not in OPS:
            raise InputError(f"SLO operator {self.op!r} is not '<' or '<='")
        if not (math.isfinite(self.bound_ms) and self.bound_ms > 0):
            raise InputError(f"SLO bound must be a positive number of milliseconds, not {self.bound_ms!r}")

    def value_ms(self, summary: Any) -> float:
        """The measured statistic from a `Summary` (or a `LatencySummary`), in milliseconds."""
        latency = getattr(summary, "latency_ms", summary)
        return float(getattr(latency, self.metric))

    def met_by(self, summary: Any) -> bool:
        """True when the measured statistic satisfies the bound. A run with no successful
        request has no latency to speak of, so it never meets an SLO."""
        if getattr(summary, "ok", 1) == 0:
            return False
        value = self.value_ms(summary)
        return value < self.bound_ms if self.op == "<" else value <= self.bound_ms

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound_ms:g}ms"


def parse_slo(text: str) -> Slo:
    """Parse `p99<=50ms`, `p99<0.05s`, `p95 <= 120 ms`, `p99.9<1s`; raise InputError otherwise."""
    if not isinstance(text, str):
        raise InputError(f"SLO must be text like 'p99<=50ms', not {text!r}")
    match = _SLO_RE.match(text.strip().lower())
    if not match:
        raise InputError(
            f"SLO {text!r} is not of the form METRIC<=BOUND or METRIC<BOUND with a unit, "
            f"e.g. 'p99<=50ms' (metrics: {', '.join(METRICS)}; units: ms, s, us)"
        )
    metric = _ALIASES.get(match["metric"], match["metric"])
    if metric not in METRICS:
        raise InputError(f"SLO {text!r}: unknown metric {match['metric']!r} (use one of {', '.join(METRICS)})")
    bound_ms = float(match["value"]) * _UNIT_TO_MS[match["unit"]]
    if not (math.isfinite(bound_ms) and bound_ms > 0):
        raise InputError(f"SLO {text!r}: the bound must be a positive time")
    return Slo(metric=metric, op=match["op"], bound_ms=bound_ms)
