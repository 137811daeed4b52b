"""The threshold language of `tfsbench check`: metrics, scopes, values; parsing and measuring.

    [SCOPE] METRIC OP VALUE

    p99<50ms            p50<=10ms          mean<2.5ms         p99.9<1s
    error_rate<1%       error_rate<=0.01   errors==0
    throughput_ips>=200 throughput_rps>100 requests>=1000
    stable==true        client_saturated==false
    server_p99<20ms     (needs the server's Prometheus metrics in the run)
    [kind=numeric,batch=8] p99<50ms        (only runs of that configuration)

OP is one of < <= > >= == !=. Latencies need a unit (ms, s, us). `error_rate` takes a percentage or
a fraction in [0, 1]. A SCOPE lists `field=value` pairs separated by commas; fields: model, kind,
batch, format, mode, concurrency, rate, engine. A threshold without a scope applies to every run.
An unknown metric, an unknown scope field, or a scope that matches no run is an error, never a
silent pass (k6#1526).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tfsbench.bench.results import RunConfig, RunResult
from tfsbench.payloads.errors import InputError

# ---- the metric table -------------------------------------------------------------------------

_TIME_UNITS_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
LATENCY_STATS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean", "max", "min")
SERVER_STATS: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean")
_ALIASES = {
    "p99.9": "p999",
    "median": "p50",
    "avg": "mean",
    "server_p99.9": "server_p999",
    "server_median": "server_p50",
    "error_pct": "error_rate",
    "rps": "throughput_rps",
    "ips": "throughput_ips",
}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: str  # time | ratio | count | rate | bool
    higher_is_better: bool = False


def _metric_table() -> dict[str, MetricSpec]:
    table: dict[str, MetricSpec] = {}
    for stat in LATENCY_STATS:
        table[stat] = MetricSpec(stat, "time")
    for stat in SERVER_STATS:
        table[f"server_{stat}"] = MetricSpec(f"server_{stat}", "time")
    table["error_rate"] = MetricSpec("error_rate", "ratio")
    table["errors"] = MetricSpec("errors", "count")
    table["requests"] = MetricSpec("requests", "count", higher_is_better=True)
    table["ok"] = MetricSpec("ok", "count", higher_is_better=True)
    table["throughput_rps"] = MetricSpec("throughput_rps", "rate", higher_is_better=True)
    table["throughput_ips"] = MetricSpec("throughput_ips", "rate", higher_is_better=True)
    table["stable"] = MetricSpec("stable", "bool")
    table["client_saturated"] = MetricSpec("client_saturated", "bool")
    return table


METRICS: Mapping[str, MetricSpec] = _metric_table()

SCOPE_FIELDS: Mapping[str, str] = {
    "model": "model",
    "kind": "kind",
    "batch": "batch_size",
    "batch_size": "batch_size",
    "b": "batch_size",
    "format": "format",
    "mode": "mode",
    "concurrency": "concurrency",
    "c": "concurrency",
    "rate": "rate_rps",
    "rate_rps": "rate_rps",
    "r": "rate_rps",
    "engine": "engine",
}

_OPS = ("<=", ">=", "==", "!=", "<", ">")
_THRESHOLD_RE = re.compile(
    r"^\s*(?:\[(?P<scope>[^\]]*)\]\s*:?\s*)?(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>\S(?:.*\S)?)\s*$"
)
_NUMBER_RE = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_TIME_RE = re.compile(rf"^(?P<num>{_NUMBER_RE})\s*(?P<unit>ms|s|us|µs)$")
_RATIO_RE = re.compile(rf"^(?P<num>{_NUMBER_RE})\s*(?P<pct>%)?$")
_RATE_RE = re.compile(rf"^(?P<num>{_NUMBER_RE})\s*(?:/s|rps|ips)?$")
_COUNT_RE = re.compile(r"^(?P<num>[0-9]+)$")


# ---- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold. `value` is canonical: ms, a fraction, a count, per second, or 0/1."""

    text: str
    metric: str
    op: str
    value: float
    scope: tuple[tuple[str, str], ...] = ()

    @property
    def spec(self) -> MetricSpec:
        return METRICS[self.metric]

    @property
    def condition(self) -> str:
        """The threshold without its scope, as written canonically, e.g. 'p99<50ms'."""
        return f"{self.metric}{self.op}{format_value(self.spec, self.value)}"

    def applies_to(self, config: RunConfig) -> bool:
        return all(_scope_matches(config, key, want) for key, want in self.scope)


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold expression; raise InputError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"threshold {text!r} is empty; write e.g. 'p99<50ms' or 'error_rate<1%'")
    match = _THRESHOLD_RE.match(text)
    if not match:
        raise InputError(
            f"threshold {text!r} is not of the form [SCOPE] METRIC OP VALUE, e.g. 'p99<50ms', "
            "'error_rate<1%', '[kind=numeric,batch=8] p99<50ms'"
        )
    raw_metric = match["metric"].lower()
    metric = _ALIASES.get(raw_metric, raw_metric)
    if metric not in METRICS:
        from tfsbench.bench.orchestrate.config_file import suggest

        raise InputError(
            f"threshold {text!r}: unknown metric {match['metric']!r}{suggest(metric, METRICS)}; "
            f"known metrics: {', '.join(METRICS)}"
        )
    spec = METRICS[metric]
    op = match["op"]
    value = _parse_value(spec, op, match["value"].strip(), text)
    scope = _parse_scope(match["scope"], text) if match["scope"] is not None else ()
    return Threshold(text=text.strip(), metric=metric, op=op, value=value, scope=scope)


def _parse_value(spec: MetricSpec, op: str, raw: str, text: str) -> float:
    low = raw.lower()
    if spec.kind == "bool":
        if op not in ("==", "!="):
            raise InputError(f"threshold {text!r}: {spec.name} is true/false; use == or !=")
        if low not in ("true", "false"):
            raise InputError(f"threshold {text!r}: {spec.name} compares with true or false, not {raw!r}")
        return 1.0 if low == "true" else 0.0
    if spec.kind == "time":
        m = _TIME_RE.match(low)
        if not m:
            hint = " (add a unit: ms, s or us)" if re.fullmatch(_NUMBER_RE, low) else ""
            raise InputError(f"threshold {text!r}: {raw!r} is not a time like '50ms'{hint}")
        value = float(m["num"]) * _TIME_UNITS_MS[m["unit"]]
    elif spec.kind == "ratio":
        m = _RATIO_RE.match(low)
        if not m:
            raise InputError(f"threshold {text!r}: {raw!r} is not a percentage like '1%' or a fraction")
        value = float(m["num"]) / 100.0 if m["pct"] else float(m["num"])
        if not m["pct"] and value > 1:
            raise InputError(
                f"threshold {text!r}: {spec.name} without % is a fraction in [0, 1]; write '{raw}%' for percent"
            )
    elif spec.kind == "rate":
        m = _RATE_RE.match(low)
        if not m:
            raise InputError(f"threshold {text!r}: {raw!r} is not a number of {spec.name.split('_')[1]} per second")
        value = float(m["num"])
    else:
        m = _COUNT_RE.match(low)
        if not m:
            raise InputError(f"threshold {text!r}: {raw!r} is not a whole number")
        value = float(m["num"])
    if not math.isfinite(value) or value < 0:
        raise InputError(f"threshold {text!r}: the value must be a finite number >= 0")
    return value


def _parse_scope(raw: str, text: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"threshold {text!r}: scope item {part!r} is not FIELD=VALUE")
        if key not in SCOPE_FIELDS:
            raise InputError(
                f"threshold {text!r}: unknown scope field {key!r}; use one of "
                "model, kind, batch, format, mode, concurrency, rate, engine"
            )
        field_name = SCOPE_FIELDS[key]
        if field_name in ("batch_size", "concurrency", "rate_rps"):
            try:
                float(value)
            except ValueError:
                raise InputError(f"threshold {text!r}: scope {key}={value!r} needs a number") from None
        pairs.append((field_name, value))
    if not pairs:
        raise InputError(f"threshold {text!r}: empty scope []; drop it or write e.g. [kind=numeric]")
    return tuple(pairs)


def _scope_matches(config: RunConfig, field_name: str, want: str) -> bool:
    have = getattr(config, field_name)
    if have is None:
        return False
    if field_name in ("batch_size", "concurrency", "rate_rps"):
        return math.isclose(float(have), float(want), rel_tol=1e-9)
    return str(have).lower() == want.lower()


def format_value(spec: MetricSpec, value: float | None) -> str:
    if value is None:
        return "n/a"
    if spec.kind == "time":
        return f"{value:.3g}ms" if value < 100 else f"{value:.0f}ms"
    if spec.kind == "ratio":
        return f"{value * 100:.3g}%"
    if spec.kind == "bool":
        return "true" if value else "false"
    if spec.kind == "count":
        return f"{value:.0f}"
    return f"{value:.4g}/s"


def measure(result: RunResult, metric: str) -> tuple[float | None, str]:
    """The value of `metric` in a run, in canonical units, or None with the reason it is missing."""
    summary = result.summary
    if metric in LATENCY_STATS:
        if summary.ok == 0:
            return None, "no successful request, so no latency"
        return float(getattr(summary.latency_ms, metric)), ""
    if metric.startswith("server_"):
        server = getattr(result, "server", None)
        if not server or not server.get("found"):
            why = (server or {}).get("error") or "the run has no server metrics (Prometheus endpoint not scraped)"
            return None, str(why)
        latency = server.get("latency_ms") or {}
        stat = metric.removeprefix("server_")
        if latency.get(stat) is None:
            return None, "the server recorded no successful request in the run"
        return float(latency[stat]), ""
    if metric == "error_rate":
        if summary.requests == 0:
            return None, "no request completed"
        return summary.error_rate, ""
    if metric == "errors":
        return float(summary.error_count), ""
    if metric == "requests":
        return float(summary.requests), ""
    if metric == "ok":
        return float(summary.ok), ""
    if metric in ("throughput_rps", "throughput_ips"):
        return float(getattr(summary, metric)), ""
    if metric == "stable":
        return (1.0 if summary.stable else 0.0), ""
    if metric == "client_saturated":
        return (1.0 if summary.client_saturated else 0.0), ""
    raise InputError(f"unknown metric {metric!r}")  # unreachable: parse_threshold checks names


def holds(value: float, op: str, bound: float) -> bool:
    """Whether `value OP bound` holds (== and != with a tiny relative tolerance)."""
    return {
        "<": value < bound,
        "<=": value <= bound,
        ">": value > bound,
        ">=": value >= bound,
        "==": math.isclose(value, bound, rel_tol=1e-12, abs_tol=1e-12),
        "!=": not math.isclose(value, bound, rel_tol=1e-12, abs_tol=1e-12),
    }[op]


def parse_tolerance(text: str | float) -> float:
    """'10%' or '0.1' -> 0.1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"--max-regression: {text!r} is not a percentage like '10%'") from None
    if not (math.isfinite(value) and 0 <= value < 10):
        raise InputError(f"--max-regression: {text!r} must be a percentage between 0% and 1000%")
    return value
