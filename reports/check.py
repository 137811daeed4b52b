"""CI gates: thresholds on run results and comparison with a baseline. Pure functions, no I/O.

Threshold language (k6-style, one expression per `--threshold`):

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

Baseline comparison: each run is paired with the baseline run of the same configuration (model,
signature, kind, batch, format, load; not the model version: comparing versions is the point); unlike runs are refused, naming the fields that
differ. A metric regresses only when it is worse by more than the tolerance AND the difference is
significant: a 95% bootstrap confidence interval of the relative difference must exclude zero. The
bootstrap resamples each run's HDR latency histogram (percentiles: exact order-statistic sampling,
the r-th smallest of n resampled values is the floor(n*Beta(r, n-r+1))+1-th smallest original;
mean: its normal limit) and, for throughput, the per-second counts of the measured window. Differences beyond the tolerance that are not significant are marked
`~` (within noise) and never fail, as in asv and pyperf.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def _compare(value: float, op: str, bound: float) -> bool:
    return {
        "<": value < bound,
        "<=": value <= bound,
        ">": value > bound,
        ">=": value >= bound,
        "==": math.isclose(value, bound, rel_tol=1e-12, abs_tol=1e-12),
        "!=": not math.isclose(value, bound, rel_tol=1e-12, abs_tol=1e-12),
    }[op]


# ---- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: a threshold on one configuration, or one metric against the baseline.

    `mark` is '' for thresholds; for baseline checks '=' (within tolerance), '~' (beyond the
    tolerance but within noise), 'worse' (significant regression: fails) or 'better'.
    """

    config: str
    name: str
    kind: str  # threshold | baseline
    passed: bool
    measured: str
    detail: str = ""
    mark: str = ""


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    max_regression: float | None = None

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


def evaluate_thresholds(results: Sequence[RunResult], thresholds: Sequence[Threshold]) -> list[Check]:
    checks: list[Check] = []
    for threshold in thresholds:
        matched = [r for r in results if threshold.applies_to(r.config)]
        if not matched:
            known = "; ".join(sorted({_scope_text(r.config) for r in results})) or "none"
            raise InputError(f"threshold {threshold.text!r} matches no run in the results (runs: {known})")
        for result in matched:
            value, why = measure(result, threshold.metric)
            if value is None:
                checks.append(
                    Check(result.config.label_text(), threshold.condition, "threshold", False, "n/a", why)
                )
                continue
            ok = _compare(value, threshold.op, threshold.value)
            measured = f"{threshold.metric}={format_value(threshold.spec, value)}"
            detail = "" if ok else f"{measured}, wanted {threshold.condition}"
            if threshold.metric == "error_rate":
                measured += f" ({result.summary.error_count} of {result.summary.requests})"
            if threshold.metric == "stable" and not ok and result.summary.stability_reason:
                detail += f" ({result.summary.stability_reason})"
            if result.partial:
                detail = (detail + "; " if detail else "") + "run was partial"
            name = threshold.condition if not threshold.scope else f"{_scope_label(threshold)} {threshold.condition}"
            checks.append(Check(result.config.label_text(), name, "threshold", ok, measured, detail))
    return checks


def _scope_label(threshold: Threshold) -> str:
    inverse = {"batch_size": "batch", "rate_rps": "rate"}
    return "[" + ",".join(f"{inverse.get(k, k)}={v}" for k, v in threshold.scope) + "]"


def _scope_text(config: RunConfig) -> str:
    return f"kind={config.kind},batch={config.batch_size},format={config.format}"


# ---- baseline comparison ----------------------------------------------------------------------

# What makes two runs comparable. The model version/label is deliberately not here: "is version 7
# slower than version 6?" is what a baseline is for (a difference is noted, not refused).
IDENTITY_FIELDS: tuple[str, ...] = (
    "model",
    "signature",
    "kind",
    "batch_size",
    "format",
    "mode",
    "concurrency",
    "rate_rps",
    "arrival",
)
DEFAULT_COMPARE: tuple[str, ...] = ("p50", "p99", "throughput_ips")
# Client latencies (HDR histograms) and throughput (per-second counts) can be tested for significance;
# the server's percentiles come from 1.8x-wide buckets, too coarse to bootstrap honestly.
COMPARABLE: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean", "throughput_rps", "throughput_ips")
_BOOTSTRAP_REPLICATES = 2000
_CONFIDENCE = 0.95


def identity(config: RunConfig) -> tuple[Any, ...]:
    return tuple(getattr(config, f) for f in IDENTITY_FIELDS)


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The identity fields in which two configurations differ, as 'field (a vs b)'."""
    return [
        f"{f} ({getattr(a, f)!r} vs {getattr(b, f)!r})" for f in IDENTITY_FIELDS if getattr(a, f) != getattr(b, f)
    ]


def pair_with_baseline(
    results: Sequence[RunResult], baseline: Sequence[RunResult]
) -> tuple[list[tuple[RunResult, RunResult]], list[str]]:
    """Pair each run with the baseline run of the same configuration, or refuse (InputError).

    Returns the pairs and notes (baseline runs with no counterpart, other differences worth saying).
    """
    if not baseline:
        raise InputError("baseline: no runs to compare with")
    by_key: dict[tuple[Any, ...], RunResult] = {}
    for base in baseline:
        key = identity(base.config)
        if key in by_key:
            raise InputError(
                f"baseline: two runs of the same configuration ({base.config.label_text()}); pass one"
            )
        by_key[key] = base
    pairs: list[tuple[RunResult, RunResult]] = []
    notes: list[str] = []
    for result in results:
        base = by_key.get(identity(result.config))
        if base is None:
            closest = min(baseline, key=lambda b: len(config_differences(result.config, b.config)))
            diffs = ", ".join(config_differences(result.config, closest.config))
            raise InputError(
                f"refusing to compare unlike runs: {result.config.label_text()} has no baseline run of the "
                f"same configuration; the closest differs in {diffs}"
            )
        pairs.append((result, base))
        for f in ("version", "label"):
            if getattr(result.config, f) != getattr(base.config, f):
                notes.append(
                    f"{result.config.label_text()}: model {f} {getattr(result.config, f)} vs baseline "
                    f"{getattr(base.config, f)}"
                )
        if result.config.engine != base.config.engine:
            notes.append(
                f"{result.config.label_text()}: engines differ ({result.config.engine} vs baseline "
                f"{base.config.engine}); latencies may not be comparable"
            )
    used = {identity(r.config) for r in results}
    for key, base in by_key.items():
        if key not in used:
            notes.append(f"baseline run {base.config.label_text()} has no counterpart in the results; skipped")
    return pairs, notes


@dataclass(frozen=True, slots=True)
class Comparison:
    metric: str
    current: float
    baseline: float
    change: float  # relative, signed so that > 0 is WORSE
    ci: tuple[float, float] | None  # bootstrap CI of `change`, None when untestable
    mark: str
    passed: bool


def compare_metric(
    current: RunResult,
    baseline: RunResult,
    metric: str,
    max_regression: float,
    *,
    replicates: int = _BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> Comparison | None:
    """Compare one metric of two runs of the same configuration. None when neither has data."""
    import numpy as np

    spec = METRICS[metric]
    cur, _ = measure(current, metric)
    base, _ = measure(baseline, metric)
    if cur is None or base is None:
        return None
    sign = -1.0 if spec.higher_is_better else 1.0
    change = sign * (cur - base) / base if base > 0 else 0.0
    rng = np.random.default_rng(seed)
    boot_cur = _bootstrap(current, metric, replicates, rng)
    boot_base = _bootstrap(baseline, metric, replicates, rng)
    ci: tuple[float, float] | None = None
    if boot_cur is not None and boot_base is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = sign * (boot_cur - boot_base) / boot_base
        rel = rel[np.isfinite(rel)]
        if rel.size:
            alpha = (1 - _CONFIDENCE) / 2
            ci = (float(np.quantile(rel, alpha)), float(np.quantile(rel, 1 - alpha)))
    significant = True if ci is None else (ci[0] > 0 or ci[1] < 0)
    if abs(change) <= max_regression:
        mark, passed = "=", True
    elif not significant:
        mark, passed = "~", True
    elif change > 0:
        mark, passed = "worse", False
    else:
        mark, passed = "better", True
    return Comparison(metric, cur, base, change, ci, mark, passed)


def _bootstrap(result: RunResult, metric: str, replicates: int, rng: Any) -> Any:
    """Bootstrap replicates of `metric` for one run (numpy array), or None when there is no data."""
    import numpy as np

    if metric in LATENCY_STATS and metric not in ("max", "min"):
        bins = histogram_bins(result.histogram)
        if bins is None:
            return None
        values_ms, counts = bins
        n = int(counts.sum())
        if n < 2:
            return None
        if metric == "mean":  # the resampled mean is normal with sd = sd/sqrt(n) (CLT)
            mean = float(values_ms @ counts) / n
            var = float(((values_ms - mean) ** 2) @ counts) / (n - 1)
            return rng.normal(mean, math.sqrt(var / n), size=replicates)
        # Exact bootstrap of an order statistic without resampling n values: the r-th smallest of n
        # draws is the (floor(n * Beta(r, n - r + 1)) + 1)-th smallest original value.
        q = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}[metric]
        rank = max(1, math.ceil(q * n))
        position = np.floor(n * rng.beta(rank, n - rank + 1, size=replicates)).astype(np.int64) + 1
        idx = np.searchsorted(np.cumsum(counts), np.minimum(position, n), side="left")
        return values_ms[idx]
    if metric in ("throughput_rps", "throughput_ips"):
        per_s = [p.requests - p.errors for p in result.timeseries if p.t_s >= 0]
        if len(per_s) < 3:
            return None
        samples = np.asarray(per_s, dtype=float)
        if metric == "throughput_ips":
            samples = samples * result.config.batch_size
        draws = rng.integers(0, len(samples), size=(replicates, len(samples)))
        return samples[draws].mean(axis=1)
    return None


def histogram_bins(encoded: str | None) -> tuple[Any, Any] | None:
    """Decode a result's HDR latency histogram (microseconds) into (values_ms, counts) arrays."""
    if not encoded:
        return None
    import numpy as np
    from tfsbench.bench.measure import hist

    try:
        h = hist.decode(encoded)
    except ValueError:
        return None  # a corrupt histogram means "no data to test with", not a crash
    counts_all = np.ctypeslib.as_array(h.counts)[: h.counts_len]
    index = np.flatnonzero(counts_all)
    if index.size == 0:
        return None
    values = [h.get_highest_equivalent_value(h.get_value_from_index(int(i))) / 1000.0 for i in index]
    counts = counts_all[index]
    return np.asarray(values, dtype=float), np.asarray(counts, dtype=np.int64)


def compare_with_baseline(
    results: Sequence[RunResult],
    baseline: Sequence[RunResult],
    max_regression: float,
    metrics: Sequence[str] = DEFAULT_COMPARE,
) -> tuple[list[Check], list[str]]:
    for metric in metrics:
        if metric not in COMPARABLE:
            raise InputError(
                f"--compare: cannot compare {metric!r} with a baseline; use {', '.join(COMPARABLE)}"
            )
    pairs, notes = pair_with_baseline(results, baseline)
    checks: list[Check] = []
    for cur, base in pairs:
        for metric in metrics:
            cmp = compare_metric(cur, base, metric, max_regression)
            if cmp is None:
                continue
            spec = METRICS[metric]
            measured = (
                f"{format_value(spec, cmp.current)} vs {format_value(spec, cmp.baseline)} "
                f"({_change_words(cmp.change)})"
            )
            ci = f"95% CI {_signed_pct(cmp.ci[0])}..{_signed_pct(cmp.ci[1])}" if cmp.ci else "no histogram: untested"
            detail = {
                "=": f"within the {max_regression:.0%} tolerance; {ci}",
                "~": f"beyond the {max_regression:.0%} tolerance but within noise; {ci}",
                "worse": f"regressed by more than {max_regression:.0%}, significantly; {ci}",
                "better": f"improved significantly; {ci}",
            }[cmp.mark]
            checks.append(
                Check(cur.config.label_text(), f"baseline {metric}", "baseline", cmp.passed, measured, detail, cmp.mark)
            )
    return checks, notes


def _signed_pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


# ---- the one entry point ----------------------------------------------------------------------


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


def check_results(
    results: Sequence[RunResult],
    thresholds: Sequence[str | Threshold],
    baseline: Sequence[RunResult] | None = None,
    max_regression: float = 0.10,
    compare_metrics: Sequence[str] = DEFAULT_COMPARE,
) -> CheckOutcome:
    """Gate runs on thresholds and (optionally) a baseline. Raises InputError for bad input."""
    if not results:
        raise InputError("no runs to check")
    parsed = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    if not parsed and baseline is None:
        raise InputError("nothing to check: give at least one --threshold or a --baseline")
    checks = evaluate_thresholds(results, parsed)
    notes: list[str] = []
    if baseline is not None:
        more, notes = compare_with_baseline(results, baseline, max_regression, compare_metrics)
        checks.extend(more)
    for r in results:
        if r.partial:
            notes.append(f"{r.config.label_text()}: the run was partial ({r.partial_reason or 'interrupted'})")
    return CheckOutcome(tuple(checks), tuple(notes), max_regression if baseline is not None else None)


# ---- rendering (text, Markdown, JUnit XML) ----------------------------------------------------


def _verdict(check: Check) -> str:
    if not check.passed:
        return "FAIL"
    return "~" if check.mark == "~" else "pass"


def render_text(outcome: CheckOutcome) -> str:
    rows = [(_verdict(c), c.config, c.name, c.measured, c.detail) for c in outcome.checks]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    lines = [
        f"{v:<{widths[0]}}  {cfg:<{widths[1]}}  {name:<{widths[2]}}  {measured}" + (f"  [{detail}]" if detail else "")
        for v, cfg, name, measured, detail in rows
    ]
    lines.extend(f"note: {n}" for n in outcome.notes)
    failed = len(outcome.failed)
    lines.append(
        f"check: {'FAILED' if failed else 'passed'}: {failed} of {len(outcome.checks)} checks failed"
        if failed
        else f"check: passed: all {len(outcome.checks)} checks passed"
    )
    return "\n".join(lines)


def render_markdown(outcome: CheckOutcome) -> str:
    """A Markdown summary for CI job summaries ($GITHUB_STEP_SUMMARY)."""
    failed = len(outcome.failed)
    head = (
        f"## tfsbench check: :x: {failed} of {len(outcome.checks)} checks failed"
        if failed
        else f"## tfsbench check: :white_check_mark: all {len(outcome.checks)} checks passed"
    )
    lines = [head, "", "| result | configuration | check | measured | detail |", "|---|---|---|---|---|"]
    icon = {"FAIL": ":x: fail", "~": "~ noise", "pass": ":white_check_mark: pass"}
    for c in outcome.checks:
        cells = [icon[_verdict(c)], c.config, c.name, c.measured, c.detail]
        lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    if outcome.max_regression is not None:
        lines += [
            "",
            f"Baseline: a regression fails only when worse by more than {outcome.max_regression:.0%} and "
            "significant (95% bootstrap CI of the change excludes zero); `~` marks differences within noise.",
        ]
    if outcome.notes:
        lines += [""] + [f"- {n}" for n in outcome.notes]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_junit(outcome: CheckOutcome) -> str:
    """JUnit XML: one <testcase> per threshold and configuration (and per baseline metric)."""
    import xml.etree.ElementTree as ET

    failures = len(outcome.failed)
    root = ET.Element("testsuites", name="tfsbench check", tests=str(len(outcome.checks)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name="tfsbench check",
        tests=str(len(outcome.checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
    )
    for c in outcome.checks:
        case = ET.SubElement(suite, "testcase", classname=f"tfsbench.{c.config}", name=c.name, time="0")
        if not c.passed:
            fail = ET.SubElement(case, "failure", message=c.detail or c.measured, type=c.kind)
            fail.text = f"{c.measured}\n{c.detail}".strip()
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{c.measured} {c.detail}".strip()
    if outcome.notes:
        notes = ET.SubElement(suite, "system-out")
        notes.text = "\n".join(outcome.notes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"



def _change_words(change: float) -> str:
    if abs(change) < 0.0005:
        return "no change"
    return f"{_signed_pct(abs(change)).lstrip('+')} {'worse' if change > 0 else 'better'}"
