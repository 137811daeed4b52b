"""Over-saturation stop for sweeps: past the knee, more load buys no throughput, only queueing.

Rule (stated in the manifest and the sweep's output): in one series (model, payload kind, batch size,
format, loop mode), ordered by load, the series stops once its last three measured load levels show
  - throughput no longer rising: the highest throughput of the last two is less than
    MIN_GAIN (5%) above the third-to-last's, and
  - latency still climbing: p50 rose at each of the two steps and by at least MIN_RISE (x1.5) overall.
Runs of the series at higher load levels are then skipped (listed in the manifest as `saturated`, with
the reason); lower levels still run. A partial, failed or error-heavy run breaks no rule and is not
counted: the rule judges only complete measurements. Pure functions; the sweep applies them.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfsbench.bench.results import RunConfig, RunResult

MIN_GAIN = 0.05
MIN_RISE = 1.5
RULE = (f"stop a series (model, kind, batch size, format, mode) once, over its last three load levels, "
        f"throughput rose by less than {MIN_GAIN:.0%} while p50 latency rose at each step and by at least "
        f"x{MIN_RISE:g} overall; higher load levels of that series are skipped")


def series_key(config: RunConfig) -> tuple:
    return (*config.config_key(), config.mode)


def load_of(config: RunConfig) -> float:
    return float(config.concurrency if config.mode == "closed" else (config.rate_rps or 0.0))


def saturated(runs: Sequence[RunResult]) -> str | None:
    """The reason the series `runs` (any order) has gone past saturation, or None."""
    usable = sorted((r for r in runs if not r.partial and r.summary.ok > 0 and r.summary.error_rate < 0.5),
                    key=lambda r: load_of(r.config))
    if len(usable) < 3:
        return None
    a, b, c = usable[-3:]
    t0 = a.summary.throughput_rps
    gain = max(b.summary.throughput_rps, c.summary.throughput_rps) / t0 - 1.0 if t0 > 0 else 0.0
    l0, l1, l2 = (r.summary.latency_ms.p50 for r in (a, b, c))
    if gain < MIN_GAIN and l0 < l1 < l2 and l2 >= MIN_RISE * l0:
        loads = ", ".join(f"{load_of(r.config):g}" for r in (a, b, c))
        return (f"saturated: at load {loads} throughput {t0:.1f} -> {b.summary.throughput_rps:.1f} -> "
                f"{c.summary.throughput_rps:.1f} req/s ({gain:+.1%}) while p50 rose {l0:.1f} -> {l1:.1f} -> "
                f"{l2:.1f} ms")
    return None
