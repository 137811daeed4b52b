"""The report's first answer after "what was measured": how sure are these numbers?

One sentence from the runs' stability verdicts (bench/stats/stability.py): how many were stable,
what stable means, and what became of the others; plus the machine's load when it was busy.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.stability import STABLE_FOR_SLO


def how_sure(runs: Sequence[RunResult]) -> str:
    """e.g. '14 of 16 runs were stable: ...'. Empty for no runs."""
    if not runs:
        return ""
    n = len(runs)
    stable = sum(r.summary.stable for r in runs)
    rule = ("the thirds of its measured window agree on throughput, median and p99 (within 10% or within "
            "sampling noise), with at least 1,000 samples for the p99")
    if stable == n:
        text = f"All {n} runs were stable: in each, {rule}."
    elif stable == 0:
        text = (f"None of the {n} runs was stable within its time bound (stable: {rule}). Read the numbers below "
                "as indicative, and measure again on a quieter machine or for longer.")
    else:
        other = "The other one is" if n - stable == 1 else f"The other {n - stable} are"
        text = (f"{stable} of {n} runs were stable: in each, {rule}. {other} marked unstable "
                "below, with the reason, and never set a capacity in the plan.")
    text += _qualified(runs)
    busy = _busiest(runs)
    if busy:
        text += f" The machine was busy during some runs ({busy})."
    return text


def _qualified(runs: Sequence[RunResult]) -> str:
    """What 'stable' rested on where it was more than the plain rule: search probes judged on their SLO's
    side, and runs that set aside the start of their measured window (docs/stability.md)."""
    out = ""
    for_slo = sum(r.summary.stable and r.summary.stability_reason.startswith(STABLE_FOR_SLO) for r in runs)
    if for_slo:
        which = "One search probe was" if for_slo == 1 else f"{for_slo} search probes were"
        out += (f" {which} stable for the SLO only: the p99 of each third met the SLO with 95% "
                "confidence, however far apart the thirds were.")
    settled = [int(r.summary.settled_s) for r in runs if r.summary.stable and r.summary.settled_s]
    if settled:
        span = f"{min(settled)}" if min(settled) == max(settled) else f"{min(settled)}-{max(settled)}"
        which = "One run" if len(settled) == 1 else f"{len(settled)} runs"
        out += f" {which} set aside the first {span} s of the measured window, not yet steady; the rest was."
    return out


def _busiest(runs: Sequence[RunResult]) -> str:
    worst: tuple[float, int] | None = None
    for r in runs:
        env = r.environment or {}
        load, cpus = env.get("load_avg"), env.get("cpus_usable") or env.get("cpus")
        if isinstance(load, list) and load and isinstance(cpus, int) and cpus > 0 and load[0] > cpus:
            if worst is None or load[0] / cpus > worst[0] / worst[1]:
                worst = (float(load[0]), cpus)
    return f"load average up to {worst[0]:.1f} on {worst[1]} CPUs" if worst else ""
