"""SLO search: the highest open-loop rate whose measured latency percentile meets an SLO.

Throughput is only meaningful under a latency requirement ("sustainable throughput", Gil Tene), and
only open loop shows what a queue does to latency at a given arrival rate. The search follows
MLPerf LoadGen's FindPeakPerformance: find a bracket [passing rate, failing rate] by doubling, then
bisect it until it is narrower than `tolerance` of its upper end. A probe passes only when

- the SLO statistic is met,
- the run is stable (see the engine's stability verdict),
- under `max_error_rate` of requests failed,
- the achieved rate is within `rate_tolerance` of the offered rate, the in-flight cap refused
  nothing and the load generator was not saturated (otherwise the client, not the server, set the
  latencies).

Every probe is a normal run-result file; the manifest (kind "search") lists them with verdicts.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsbench.bench.orchestrate.sweep import (
    _SweepProgress,
    cached_pool_factory,
    check_configs,
    manifest_doc,
    preflight_all,
    read_manifest,
    run_kwargs,
)
from tfsbench.bench.results import RunConfig, RunResult, save_result, write_json_atomic
from tfsbench.bench.stats.slo import Slo
from tfsbench.payloads.errors import InputError

DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_RATE_TOLERANCE = 0.05
_MIN_RATE_RPS = 0.5


@dataclass(frozen=True, slots=True)
class ProbeVerdict:
    rate_rps: float
    file: str
    passed: bool
    reason: str  # "ok" or why it failed
    value_ms: float  # the SLO statistic measured
    achieved_rps: float
    error_rate: float
    stable: bool
    partial: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    best_rate_rps: float | None
    probes: tuple[RunResult, ...]
    manifest_path: Path
    reason: str
    verdicts: tuple[ProbeVerdict, ...] = ()
    estimate: RunResult | None = None
    interrupted: bool = False


def judge_probe(
    result: RunResult,
    slo: Slo,
    *,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    rate_tolerance: float = DEFAULT_RATE_TOLERANCE,
    require_stable: bool = True,
) -> tuple[bool, str]:
    """(passed, reason) for one open-loop probe. Reasons are short and name the failed condition."""
    s = result.summary
    offered = result.config.rate_rps or s.offered_rps or 0.0
    if result.partial:
        why = result.partial_reason or "interrupted"
        return False, why if why.startswith("interrupted") else f"interrupted ({why})"
    if s.ok == 0:
        return False, "no successful responses"
    if s.error_rate >= max_error_rate:
        return False, f"error rate {s.error_rate:.1%} >= {max_error_rate:.0%}"
    if s.refused_inflight:
        return False, f"in-flight cap refused {s.refused_inflight} requests"
    if offered > 0 and s.throughput_rps < offered * (1.0 - rate_tolerance):
        return False, f"achieved {s.throughput_rps:.1f} req/s < {1 - rate_tolerance:.0%} of offered {offered:g}"
    if s.client_saturated:
        return False, "load generator saturated"
    if not slo.met_by(s):
        return False, f"{slo.metric} {slo.value_ms(s):.2f} ms misses {slo}"
    if require_stable and not s.stable:
        return False, f"unstable ({s.stability_reason})"
    return True, "ok"


def _round_rate(rate: float) -> float:
    """Three significant digits: the bisection tolerance is coarser, and ids stay readable."""
    if rate <= 0:
        return rate
    digits = 2 - int(math.floor(math.log10(rate)))
    return float(round(rate, digits))


def run_search(
    base: RunConfig,
    slo: Slo,
    out_dir: Path,
    *,
    lo_rps: float | None = None,
    hi_rps: float | None = None,
    max_probes: int = 12,
    tolerance: float = 0.05,
    progress: bool = True,
    stop: threading.Event | None = None,
    headers: Mapping[str, str] | None = None,
    estimate_concurrency: int = 16,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    rate_tolerance: float = DEFAULT_RATE_TOLERANCE,
    require_stable: bool = True,
    log: Callable[[str], None] | None = None,
    runner: Callable[..., RunResult] | None = None,
    preflight_fn: Callable[..., Any] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> SearchOutcome:
    """Search the peak open-loop rate meeting `slo` for `base` (its kind/batch/format/duration).

    Without `lo_rps` a closed-loop run at `estimate_concurrency` estimates the ceiling C, and the
    bracket starts at C/2. `hi_rps` caps the rates tried. `on_ready()` is called once the target
    passed preflight, just before the first load."""
    pool_factory: Callable[[RunConfig], Any] | None = None
    if runner is None:
        from tfsbench.bench.measure.runner import run_benchmark as runner

        pool_factory = cached_pool_factory()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    stop = stop or threading.Event()
    if max_probes < 1:
        raise InputError("--max-probes must be at least 1")
    if not 0 < tolerance < 1:
        raise InputError("--tolerance must be between 0 and 1 (e.g. 0.05 for 5%)")
    if lo_rps is not None and hi_rps is not None and lo_rps >= hi_rps:
        raise InputError(f"--lo {lo_rps:g} must be below --hi {hi_rps:g}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    manifest_path = out_dir / "manifest.json"
    old = read_manifest(manifest_path)
    if old is not None and old.get("kind") != "search":
        raise InputError(f"{out_dir}: holds a {old.get('kind')!r} manifest, not a search; choose another --out")

    open_base = dataclasses.replace(base, mode="open", concurrency=None, arrival=base.arrival or "constant",
                                    rate_rps=lo_rps or hi_rps or 1.0)
    check_configs([open_base])
    preflights = preflight_all([open_base], headers, preflight_fn)
    env = next(iter(preflights.values()), None)
    if on_ready is not None:
        on_ready()
    out_dir.mkdir(parents=True, exist_ok=True)

    probes: list[RunResult] = []
    verdicts: list[ProbeVerdict] = []
    state: dict[str, Any] = {"estimate": None, "estimate_file": None, "best": None, "reason": "running",
                             "interrupted": False}

    def write_manifest(complete: bool) -> None:
        search = {
            "slo": str(slo),
            "best_rate_rps": state["best"],
            "reason": state["reason"],
            "probes": [v.to_dict() for v in verdicts],
            "estimate": state["estimate_file"],
            "estimate_rps": state["estimate"],
            "tolerance": tolerance,
            "max_probes": max_probes,
            "max_error_rate": max_error_rate,
            "rate_tolerance": rate_tolerance,
        }
        write_json_atomic(manifest_path, manifest_doc(
            "search",
            runs=[v.file for v in verdicts if not v.partial],
            planned=[],
            partial=[v.file for v in verdicts if v.partial],
            complete=complete,
            interrupted=state["interrupted"],
            slo=str(slo),
            search=search,
        ))

    def run_one(cfg: RunConfig, name: str, bar: _SweepProgress, index: int) -> RunResult:
        bar.start_run(index, name, cfg)
        kwargs = run_kwargs(headers, bar.update, stop, env)
        if pool_factory is not None:
            kwargs["pool"] = pool_factory(cfg)
        result = runner(cfg, **kwargs)
        save_result(result, out_dir / f"{name}.json")
        bar.finish_run(name, result)
        return result

    write_manifest(False)
    # The planned seconds are unknown in advance; the bar shows progress of the probe budget.
    bar = _SweepProgress([("probe", open_base)] * (max_probes + (0 if lo_rps else 1)), enabled=progress)
    with bar:
        lo: float | None = None  # highest passing rate
        hi: float | None = None  # lowest failing rate
        step = 0
        if lo_rps is not None:
            rate = lo_rps
        else:
            closed = dataclasses.replace(base, mode="closed", concurrency=base.concurrency or estimate_concurrency,
                                         rate_rps=None, arrival=None)
            name = f"estimate-c{closed.concurrency}"
            est = run_one(closed, name, bar, step)
            step += 1
            if est.partial:
                state["interrupted"] = True
                state["reason"] = "interrupted during the closed-loop estimate"
                write_manifest(False)
                return SearchOutcome(None, (), manifest_path, state["reason"], (), est, True)
            ceiling = est.summary.throughput_rps
            state["estimate"], state["estimate_file"] = ceiling, f"{name}.json"
            if ceiling <= 0:
                state["reason"] = "closed-loop estimate got no successful responses; nothing to search"
                write_manifest(True)
                return SearchOutcome(None, (), manifest_path, state["reason"], (), est, False)
            log(f"closed-loop estimate at concurrency {closed.concurrency}: {ceiling:.1f} req/s; "
                f"starting the bracket at {ceiling / 2:.1f} req/s")
            rate = ceiling / 2
        if hi_rps is not None:
            rate = min(rate, hi_rps)
        rate = _round_rate(rate)
        tried: set[float] = set()
        while len(verdicts) < max_probes:
            if stop.is_set():
                state["interrupted"] = True
                break
            tried.add(rate)
            cfg = dataclasses.replace(open_base, rate_rps=rate)
            name = f"probe-{len(verdicts) + 1:02d}-r{rate:g}"
            result = run_one(cfg, name, bar, step)
            step += 1
            probes.append(result)
            passed, why = judge_probe(result, slo, max_error_rate=max_error_rate,
                                      rate_tolerance=rate_tolerance, require_stable=require_stable)
            s = result.summary
            verdicts.append(ProbeVerdict(
                rate_rps=rate, file=f"{name}.json", passed=passed, reason=why,
                value_ms=slo.value_ms(s), achieved_rps=s.throughput_rps, error_rate=s.error_rate,
                stable=s.stable, partial=result.partial))
            log(f"probe {len(verdicts)}: {rate:g} req/s -> {'pass' if passed else 'fail'} ({why})")
            if result.partial:
                state["interrupted"] = True
                write_manifest(False)
                break
            if passed:
                lo = rate if lo is None else max(lo, rate)
                state["best"] = lo
            else:
                hi = rate if hi is None else min(hi, rate)
            write_manifest(False)
            nxt = _next_rate(lo, hi, hi_rps, tolerance)
            if nxt is None:
                break
            nxt = _round_rate(nxt)
            if nxt in tried or (lo is not None and nxt <= lo) or (hi is not None and nxt >= hi):
                break  # rounding left nothing between the bounds
            if lo is None and nxt < _MIN_RATE_RPS:
                break
            rate = nxt

    state["reason"] = _final_reason(lo, hi, hi_rps, tolerance, len(verdicts), max_probes, state["interrupted"])
    write_manifest(not state["interrupted"])
    return SearchOutcome(lo, tuple(probes), manifest_path, state["reason"], tuple(verdicts),
                         None, state["interrupted"])


def _next_rate(lo: float | None, hi: float | None, cap: float | None, tolerance: float) -> float | None:
    """The next rate to probe, or None when the search is over."""
    if lo is None:  # nothing has passed yet: go down
        assert hi is not None
        return hi / 2
    if hi is None:  # everything passed: go up, within the cap
        if cap is not None:
            return None if lo >= cap else min(lo * 2, cap)
        return lo * 2
    if hi - lo <= tolerance * hi:
        return None
    return (lo + hi) / 2


def _final_reason(lo: float | None, hi: float | None, cap: float | None, tolerance: float,
                  n: int, max_probes: int, interrupted: bool) -> str:
    if interrupted:
        return "interrupted" + (f"; best so far {lo:g} req/s" if lo is not None else "")
    if lo is None:
        return f"no probed rate met the SLO (lowest tried {hi:g} req/s)" if hi is not None else "no probes run"
    if hi is None:
        if cap is not None and lo >= cap:
            return f"the upper bound --hi {cap:g} req/s meets the SLO; the peak may be higher"
        return f"every probed rate met the SLO after {n} probes (raise --max-probes)"
    if hi - lo <= tolerance * hi:
        return f"converged: {lo:g} req/s passes, {hi:g} req/s fails (within {tolerance:.0%})"
    if n >= max_probes:
        return f"stopped after --max-probes {max_probes}: {lo:g} req/s passes, {hi:g} req/s fails"
    return f"bracket [{lo:g}, {hi:g}] req/s cannot be split further"
