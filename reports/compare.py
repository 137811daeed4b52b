"""Is B different from A? Side-by-side metrics with relative change and a significance test.

The numbers, the pairing of runs and the verdicts come from the statistics core
(`tfsbench.bench.stats`), the same code `tfsbench check --baseline` uses, so the two tools agree
on the same files. Runs of the same configuration on one side are repeats and are pooled. A
difference counts only if it is both larger than a noise threshold (5% by default, as asv and
pyperf do) and significant (its 95% bootstrap interval excludes zero); see docs/statistics.md.
Everything else is marked `~` (within noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.change import Change, compare_metric
from tfsbench.bench.stats.pairing import Group, pair_groups
from tfsbench.bench.stats.pooling import Pool
from tfsbench.reports.dataset import Source, config_name, load_of

NOISE_THRESHOLD = 0.05
RESAMPLES = 2000
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
COMPARED: tuple[str, ...] = ("throughput_rps", "p50", "p90", "p99", "p999", "error_rate", "request_bytes")
LOWER_IS_BETTER = {"p50", "p90", "p99", "p999", "error_rate", "request_bytes"}
METRIC_LABELS = {
    "throughput_rps": "throughput (req/s)",
    "throughput_ips": "throughput (inst/s)",
    "p50": "p50 (ms)",
    "p90": "p90 (ms)",
    "p99": "p99 (ms)",
    "p999": "p99.9 (ms)",
    "error_rate": "error rate",
    "request_bytes": "request bytes",
}
TEST_DESCRIPTION = (
    "A change is significant when it exceeds the noise threshold AND its 95% bootstrap interval "
    "excludes zero (latency: resampling each run's requests from its HDR histogram; throughput: resampling "
    "whole measured 1 s windows; repeats of a configuration are pooled and resampled as runs first); error rate "
    "uses a two-proportion z-test; with no interval a change must exceed twice the threshold; "
    "'~' marks differences within noise."
)


@dataclass(frozen=True, slots=True)
class MetricChange:
    name: str
    a: float | None
    b: float | None
    rel_change: float | None  # (b - a) / a
    ci: tuple[float, float] | None  # 95% interval of rel_change, when a resampling test ran
    significant: bool
    test: str  # bootstrap-histogram | bootstrap-windows | z-test | exact | threshold-only | none
    note: str = ""  # why there is no interval, when there is none
    verdict: str = ""  # the core's: same | noise | better | worse | n/a

    @classmethod
    def of(cls, change: Change) -> MetricChange:
        return cls(change.metric, change.a, change.b, change.rel_change, change.ci, change.significant,
                   change.test, change.note, change.verdict)

    @property
    def better(self) -> bool | None:
        if not self.significant or (self.rel_change is None and self.name != "error_rate"):
            return None
        delta = (self.b or 0.0) - (self.a or 0.0)
        return delta < 0 if self.name in LOWER_IS_BETTER else delta > 0

    def change_text(self) -> str:
        """'+12.3%', '~ -1.0%', or for error rate '+1.20 pp'."""
        if self.a is None or self.b is None:
            return "n/a"
        if self.name == "error_rate":
            text = f"{100 * (self.b - self.a):+.2f} pp"
        elif self.rel_change is None:
            return "n/a"
        else:
            text = f"{100 * self.rel_change:+.1f}%"
        return text if self.significant else f"~ {text}"


@dataclass(frozen=True, slots=True)
class PairRow:
    """One configuration of A against the same of B; `a`/`b` are the first runs, `a_runs`/`b_runs`
    all the repeats that were pooled."""

    label: str
    a: RunResult
    b: RunResult
    metrics: dict[str, MetricChange] = field(default_factory=dict)
    a_runs: tuple[RunResult, ...] = ()
    b_runs: tuple[RunResult, ...] = ()


@dataclass(frozen=True, slots=True)
class ComparisonTable:
    baseline_name: str
    other_name: str
    rows: tuple[PairRow, ...]
    unmatched_a: tuple[str, ...] = ()
    unmatched_b: tuple[str, ...] = ()
    noise_threshold: float = NOISE_THRESHOLD
    resamples: int = RESAMPLES
    notes: tuple[str, ...] = ()

    def summary_counts(self) -> dict[str, int]:
        out = {"better": 0, "worse": 0, "within noise": 0}
        for row in self.rows:
            for m in row.metrics.values():
                if m.better is True:
                    out["better"] += 1
                elif m.better is False:
                    out["worse"] += 1
                else:
                    out["within noise"] += 1
        return out


def _row_label(a: Group, b: Group) -> str:
    la, lb = a.config.label_text(), b.config.label_text()
    label = la if la == lb else f"{la} vs {lb}"
    if len(a.runs) > 1 or len(b.runs) > 1:
        label += f" ({len(a.runs)} vs {len(b.runs)} runs pooled)"
    return label


def compare_runs(
    a_runs: Sequence[RunResult],
    b_runs: Sequence[RunResult],
    *,
    baseline_name: str = "A",
    other_name: str = "B",
    noise_threshold: float = NOISE_THRESHOLD,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> ComparisonTable:
    """Pair A's configurations with B's (repeats pooled) and compare each pair."""
    pairing = pair_groups(a_runs, b_runs)
    pairs = sorted(pairing.pairs, key=lambda p: (p[0].config.kind, p[0].config.batch_size, p[0].config.format,
                                                 load_of(p[0].runs[0])))
    rows = tuple(
        PairRow(label=_row_label(ga, gb), a=ga.runs[0], b=gb.runs[0],
                metrics=compare_pair(ga.runs, gb.runs, noise_threshold=noise_threshold, resamples=resamples,
                                     seed=seed),
                a_runs=ga.runs, b_runs=gb.runs)
        for ga, gb in pairs
    )
    return ComparisonTable(
        baseline_name=baseline_name,
        other_name=other_name,
        rows=rows,
        unmatched_a=tuple(g.label for g in pairing.only_a),
        unmatched_b=tuple(g.label for g in pairing.only_b),
        noise_threshold=noise_threshold,
        resamples=resamples,
        notes=pairing.notes,
    )


def compare_sources(a: Source, b: Source, **kwargs) -> ComparisonTable:
    return compare_runs(a.runs, b.runs, baseline_name=a.name, other_name=b.name, **kwargs)


def compare_pair(
    a: RunResult | Sequence[RunResult],
    b: RunResult | Sequence[RunResult],
    *,
    noise_threshold: float = NOISE_THRESHOLD,
    resamples: int = RESAMPLES,
    seed: int = 0,
    metrics: Sequence[str] = COMPARED,
) -> dict[str, MetricChange]:
    """Every compared metric of B against A; a side may be one run or the repeats of one configuration."""
    pa = Pool((a,) if isinstance(a, RunResult) else tuple(a))
    pb = Pool((b,) if isinstance(b, RunResult) else tuple(b))
    return {m: MetricChange.of(compare_metric(pa, pb, m, noise_threshold, resamples=resamples, seed=seed))
            for m in metrics}


__all__ = [
    "ComparisonTable",
    "MetricChange",
    "PairRow",
    "TEST_DESCRIPTION",
    "METRIC_LABELS",
    "compare_pair",
    "compare_runs",
    "compare_sources",
    "config_name",
]
