"""Repeats of one run (`tfsbench run --repeat N`): where their files go and what they agree on.

One run's stability says its numbers held still while it ran; repeats say whether the next run would
give the same numbers (a server restarted, another process on the machine, a different JIT path).
Each repeat is an ordinary result file; compare and check pool files of one configuration as
repeats (docs/statistics.md). The summary here is the mean and 95% Student-t interval across
repeats of the throughput and of the p99 (bench/stats/intervals.py), e.g. "1,285 ± 40 req/s".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.intervals import Interval, mean_ci


def repeat_paths(out: Path, n: int) -> list[Path]:
    """`out` itself for one run; `NAME-r1.json` ... `NAME-rN.json` next to it for N > 1."""
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-r{k}{out.suffix or '.json'}") for k in range(1, n + 1)]


@dataclass(frozen=True, slots=True)
class RepeatSummary:
    throughput_rps: Interval
    p99_ms: Interval
    stable: int  # repeats judged stable
    n: int

    def lines(self) -> list[str]:
        return [f"throughput {_pm(self.throughput_rps, 'req/s', 0)}; p99 {_pm(self.p99_ms, 'ms', 2)} "
                f"(mean and 95% CI over {self.n} repeats; {self.stable} of {self.n} stable)"]


def summarize(results: Sequence[RunResult]) -> RepeatSummary:
    return RepeatSummary(
        throughput_rps=mean_ci([r.summary.throughput_rps for r in results]),
        p99_ms=mean_ci([r.summary.latency_ms.p99 for r in results]),
        stable=sum(r.summary.stable for r in results), n=len(results))


def _pm(i: Interval, unit: str, digits: int) -> str:
    if i.half_width is None:
        return f"{i.mean:,.{digits}f} {unit} (one repeat: no interval)"
    return f"{i.mean:,.{digits}f} ± {i.half_width:,.{digits}f} {unit}"
