"""`tfsbench check`'s verdicts: thresholds on runs, and runs against a baseline. Pure, no I/O.

Baseline comparison uses the statistics core (`tfsbench.bench.stats`), the same code as
`tfsbench compare`: runs are paired by configuration identity (model, signature, kind, batch,
format, mode, concurrency, rate, arrival; not the model version: comparing versions is the point),
repeats of a configuration are pooled on each side, and a metric regresses only when it is worse
by more than the tolerance AND significant (its 95% bootstrap interval excludes zero). Beyond the
tolerance but not significant is marked `~` and never fails, as in asv and pyperf. A run with no
baseline of its configuration is refused (exit 2), naming the fields in which the closest differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfsbench.bench.results import RunConfig, RunResult
from tfsbench.bench.stats.change import Change
from tfsbench.bench.stats.change import compare_metric as core_compare_metric
from tfsbench.bench.stats.pairing import (
    IDENTITY_FIELDS,
    Group,
    closest,
    config_differences,
    identity,
    pair_groups,
)
from tfsbench.bench.stats.pooling import Pool
from tfsbench.payloads.errors import InputError
from tfsbench.reports.check_thresholds import (
    METRICS,
    Threshold,
    format_value,
    holds,
    measure,
    parse_threshold,
)


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
    delta: Change | None = None  # baseline checks: the core's numbers ((current - baseline) / baseline)


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
            ok = holds(value, threshold.op, threshold.value)
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

DEFAULT_COMPARE: tuple[str, ...] = ("p50", "p99", "throughput_ips")
# Client latencies (HDR histograms) and throughput (whole measured windows) can be tested for
# significance; the server's percentiles come from 1.8x-wide buckets, too coarse to bootstrap honestly.
COMPARABLE: tuple[str, ...] = ("p50", "p90", "p95", "p99", "p999", "mean", "throughput_rps", "throughput_ips")
_MARKS = {"same": "=", "noise": "~", "worse": "worse", "better": "better"}


def pair_with_baseline(
    results: Sequence[RunResult], baseline: Sequence[RunResult]
) -> tuple[list[tuple[Group, Group]], list[str]]:
    """Pair each configuration of the results (its repeats pooled) with the baseline's, or refuse
    (InputError). Returns (current, baseline) group pairs and notes."""
    if not baseline:
        raise InputError("baseline: no runs to compare with")
    pairing = pair_groups(baseline, results, rename_model=False)
    if pairing.only_b:
        group = pairing.only_b[0]
        near = closest(group.config, [g for g, _ in pairing.pairs] + list(pairing.only_a))
        diffs = ", ".join(config_differences(group.config, near.config)) if near else "everything"
        raise InputError(
            f"refusing to compare unlike runs: {group.config.label_text()} has no baseline run of the "
            f"same configuration; the closest differs in {diffs}"
        )
    order = {identity(r.config): i for i, r in enumerate(results)}
    pairs = sorted(((cur, base) for base, cur in pairing.pairs), key=lambda p: order[p[0].key])
    notes = list(pairing.notes)
    notes += [f"baseline run {g.label} has no counterpart in the results; skipped" for g in pairing.only_a]
    for cur, base in pairs:
        if len(cur.runs) > 1 or len(base.runs) > 1:
            notes.append(f"{cur.config.label_text()}: {len(cur.runs)} run(s) vs {len(base.runs)} baseline run(s) "
                         "of the same configuration, pooled as repeats")
    return pairs, notes


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric against the baseline. `change` and `ci` are signed so that > 0 is WORSE;
    `delta` is the core's record ((current - baseline) / baseline and its interval)."""

    metric: str
    current: float
    baseline: float
    change: float
    ci: tuple[float, float] | None
    mark: str
    passed: bool
    delta: Change


def compare_metric(
    current: RunResult | Sequence[RunResult],
    baseline: RunResult | Sequence[RunResult],
    metric: str,
    max_regression: float,
    *,
    replicates: int = 2000,
    seed: int = 0,
) -> Comparison | None:
    """Compare one metric of runs of the same configuration (one run or repeats per side).
    None when either side has no data for it."""
    cur = Pool((current,) if isinstance(current, RunResult) else tuple(current))
    base = Pool((baseline,) if isinstance(baseline, RunResult) else tuple(baseline))
    delta = core_compare_metric(base, cur, metric, max_regression, resamples=replicates, seed=seed)
    if delta.verdict == "n/a" or delta.a is None or delta.b is None:
        return None
    flip = -1.0 if METRICS[metric].higher_is_better else 1.0
    ci = None if delta.ci is None else tuple(sorted((flip * delta.ci[0], flip * delta.ci[1])))
    change = delta.worse_change if delta.worse_change is not None else 0.0
    mark = _MARKS[delta.verdict]
    return Comparison(metric, delta.b, delta.a, change, ci, mark, mark != "worse", delta)  # type: ignore[arg-type]


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
            cmp = compare_metric(cur.runs, base.runs, metric, max_regression)
            if cmp is None:
                continue
            spec = METRICS[metric]
            measured = (
                f"{format_value(spec, cmp.current)} vs {format_value(spec, cmp.baseline)} "
                f"({change_words(cmp.change)})"
            )
            d = cmp.delta
            tol = f"{max_regression:.0%}"
            if d.ci is not None:
                ci = f"95% CI of the change {signed_pct(d.ci[0])}..{signed_pct(d.ci[1])}"
                detail = {
                    "=": f"within the {tol} tolerance; {ci}",
                    "~": f"beyond the {tol} tolerance but within noise; {ci}",
                    "worse": f"regressed by more than {tol}, significantly; {ci}",
                    "better": f"improved significantly; {ci}",
                }[cmp.mark]
            else:  # no interval: the change must exceed twice the tolerance
                untested = f"untested: {d.note or 'no interval'}"
                detail = {
                    "=": f"within the {tol} tolerance; {untested}",
                    "~": f"beyond the {tol} tolerance but not twice it; {untested}",
                    "worse": f"regressed by more than twice the {tol} tolerance; {untested}",
                    "better": f"improved by more than twice the {tol} tolerance; {untested}",
                }[cmp.mark]
            checks.append(Check(cur.label, f"baseline {metric}", "baseline", cmp.passed, measured, detail, cmp.mark,
                                d))
    return checks, notes


def signed_pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def change_words(change: float) -> str:
    """'4.2% worse' for a change signed so that > 0 is worse."""
    if abs(change) < 0.0005:
        return "no change"
    return f"{signed_pct(abs(change)).lstrip('+')} {'worse' if change > 0 else 'better'}"


# ---- the one entry point ----------------------------------------------------------------------


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


__all__ = [
    "COMPARABLE",
    "DEFAULT_COMPARE",
    "IDENTITY_FIELDS",
    "Check",
    "CheckOutcome",
    "Comparison",
    "check_results",
    "compare_metric",
    "compare_with_baseline",
    "config_differences",
    "evaluate_thresholds",
    "identity",
    "pair_with_baseline",
]
