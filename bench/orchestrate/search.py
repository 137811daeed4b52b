"""SLO search: the highest open-loop rate whose measured latency percentile meets an SLO.

Throughput is only meaningful under a latency requirement ("sustainable throughput", Gil Tene), and
only open loop shows what a queue does to latency at a given arrival rate. The search follows
MLPerf LoadGen's FindPeakPerformance: find a bracket [passing rate, failing rate] by doubling, then
bisect it until it is narrower than `tolerance` of its upper end.

Each probe measures until stable (docs/stability.md), at most long enough for the samples its
percentile needs at its rate (three times the 1000 a p99 needs: 75 s at 40 req/s), so a slow model is measured
longer instead of failing "too few samples". A probe's verdict is one of

- pass: the SLO is met by a stable run with enough samples, under `max_error_rate` of errors, no
  refusals at the in-flight cap, and ok responses within `rate_tolerance` of the arrivals its
  schedule actually held in the measured window (a Poisson schedule of 350 expected arrivals varies
  by 5%: the nominal rate is not what was offered);
- fail: the SLO is missed, or the server failed the load (errors, refusals, fewer responses than
  arrivals);
- inconclusive: the SLO was met but the run cannot vouch for it (unstable, too few samples, the
  load generator saturated or behind its schedule), or it was missed in an unstable run (one stall
  of a shared machine must not end the search's upward path; a queue that keeps growing fails again). It is measured again, up to `max_remeasure`
  times; only then does it count against the rate, and the manifest says it was inconclusive.

With require_stable=False (`--allow-unstable`) probes are fixed-length runs and neither stability
nor the sample count is judged.

Every probe is a normal run-result file; the manifest (kind "search") lists them with verdicts.

Repeats (`--repeat N`): the search's answer is measured again N times at the rate it found
(`confirm-rRATE-K.json`), and the manifest's `confirm` gives the mean and 95% Student-t interval of
the achieved throughput and of the SLO statistic across those repeats, and whether the SLO holds at
the interval's conservative (high) end. The probes themselves are not repeated: the bracket already
re-measures inconclusive probes, and N times every probe would cost N times the search for a bracket
whose width is set by `--tolerance`, not by noise. This is what a perf_analyzer or k6 user asks of a
capacity number: how sure it is, measured where it will be used.
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

from tfsbench.bench.measure.stop_control import SLO_BOUND_KEY
from tfsbench.bench.orchestrate import quiet
from tfsbench.bench.orchestrate.manifest import manifest_doc, read_manifest
from tfsbench.bench.orchestrate.prepare import cached_pool_factory, check_configs, preflight_all, run_kwargs
from tfsbench.bench.orchestrate.sweep_progress import SweepProgress
from tfsbench.bench.results import RunConfig, RunResult, save_result, write_json_atomic
from tfsbench.bench.stats import stability
from tfsbench.bench.stats.intervals import Interval, mean_ci
from tfsbench.bench.stats.slo import Slo
from tfsbench.payloads.errors import InputError

DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_RATE_TOLERANCE = 0.05
DEFAULT_MAX_REMEASURE = 1
MAX_PROBE_S = 120.0  # the longest a probe measures to collect its samples
# a closed-loop estimate whose mean latency is this many times one request's on the idle target was
# saturated: its throughput is the capacity, which no open-loop probe can meet an SLO at or above
SATURATED_LATENCY_FACTOR = 2.0
IDLE_REQUESTS = 5  # single requests after the estimate that time the idle target (the fastest counts)
PROBE_SAMPLE_FACTOR = 3.0  # a probe's bound holds this many times the samples its percentile needs
# more late sends than LATE_LIMIT, late by more than LAG_SHARE of the SLO's bound at the p99: the load
# generator, not the server, may have decided the verdict. Latency counts from the intended send time,
# so lag only makes a pass harder; a quarter of the bound is where the arrivals the server saw stop
# being the schedule's. (At 10%, a 25 ms SLO made 3-5 ms timer wake-ups of an idle 2-core VM, 5% of
# sends at 45-90 req/s, inconclusive: the M/D/1 search lost its way up.)
LATE_LIMIT = 0.01
LAG_SHARE = 0.25
_MIN_RATE_RPS = 0.5

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


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
    outcome: str = PASS  # pass | fail | inconclusive
    attempt: int = 1  # 2+: a re-measurement of an inconclusive probe

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
    confirm: Mapping[str, Any] | None = None  # repeats of the answer (see the module docstring)


@dataclass(frozen=True, slots=True)
class Bracket:
    """What the probes so far say: the highest passing and the lowest failing rate."""

    lo: float | None = None
    hi: float | None = None

    def with_probe(self, rate: float, passed: bool) -> Bracket:
        if passed:
            return Bracket(rate if self.lo is None else max(self.lo, rate), self.hi)
        return Bracket(self.lo, rate if self.hi is None else min(self.hi, rate))


@dataclass(frozen=True, slots=True)
class Rules:
    """How probes are judged and how far the search goes."""

    slo: Slo
    max_probes: int = 12
    tolerance: float = 0.05
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    rate_tolerance: float = DEFAULT_RATE_TOLERANCE
    require_stable: bool = True
    max_remeasure: int = DEFAULT_MAX_REMEASURE


# ---- decisions (pure) ---------------------------------------------------------------------------


def slo_percentile(slo: Slo) -> float:
    """The percentile an SLO judges (p99.9 -> 99.9); mean and max need as many samples as a p99."""
    if slo.metric == "p999":
        return 99.9
    if slo.metric.startswith("p") and slo.metric[1:].isdigit():
        return float(slo.metric[1:])
    return stability.JUDGED_PERCENTILE


def probe_bound_s(base_s: float, rate_rps: float, slo: Slo) -> float:
    """How long a probe at `rate_rps` may measure: long enough for each third of its window to hold
    the samples its percentile (and the stability rule's p99) need, at least `base_s`, at most
    MAX_PROBE_S. It stops as soon as it is stable; the bound is for a queue near its knee, whose
    slow responses come in bursts: with a third of them per window (1.5x, as before) an M/D/1 queue's
    window p99s differed by 30-80% in half of 15 s probes, and a steady queue was judged unstable."""
    needed = max(stability.samples_needed(slo_percentile(slo)), stability.MIN_SAMPLES_P99)
    return min(MAX_PROBE_S, max(base_s, PROBE_SAMPLE_FACTOR * needed / rate_rps))


def _probe_extra(extra: Mapping[str, Any] | None, slo: Slo) -> dict[str, Any]:
    """A p99 SLO's bound for the probes' stability rule: thirds whose p99 is within it with
    95% confidence agree on the probe's question (stability.verdict's bound_us). Other metrics: none."""
    out = dict(extra or {})
    if slo.metric == "p99":
        out[SLO_BOUND_KEY] = slo.bound_ms
    return out


def classify(result: RunResult, rules: Rules) -> tuple[str, str]:
    """(pass | fail | inconclusive, reason) for one open-loop probe; reasons name the condition."""
    s = result.summary
    if result.partial:
        why = result.partial_reason or "interrupted"
        return FAIL, why if why.startswith("interrupted") else f"interrupted ({why})"
    if s.ok == 0:
        return FAIL, "no successful responses"
    if s.error_rate >= rules.max_error_rate:
        return FAIL, f"error rate {s.error_rate:.1%} >= {rules.max_error_rate:.0%}"
    if s.refused_inflight:
        return FAIL, f"in-flight cap refused {s.refused_inflight} requests"
    scheduled = s.requests + s.refused_inflight  # every arrival of the measured window, sent or refused
    if scheduled and s.ok < (1.0 - rules.rate_tolerance) * scheduled:
        return FAIL, (f"achieved {s.ok} responses < {1 - rules.rate_tolerance:.0%} of the {scheduled} arrivals "
                      f"scheduled in the window")
    if not rules.slo.met_by(s):
        missed = f"{rules.slo.metric} {rules.slo.value_ms(s):.2f} ms misses {rules.slo}"
        if rules.require_stable and not s.stable:  # a stall of the machine, or a queue that keeps growing:
            return INCONCLUSIVE, f"{missed} in an unstable run"  # measured again, then counted
        return FAIL, missed
    if s.client_saturated:
        return INCONCLUSIVE, "load generator saturated"
    lag_p99 = s.schedule_lag_ms.p99 if s.schedule_lag_ms is not None else 0.0
    if s.requests and s.late_requests / s.requests > LATE_LIMIT and lag_p99 > LAG_SHARE * rules.slo.bound_ms:
        return INCONCLUSIVE, (f"load generator behind its schedule ({s.late_requests / s.requests:.1%} late, "
                              f"lag p99 {lag_p99:.1f} ms > {LAG_SHARE:.0%} of the SLO)")
    needed = stability.samples_needed(slo_percentile(rules.slo))
    if rules.require_stable and s.ok < needed:
        return INCONCLUSIVE, f"too few samples for {rules.slo.metric}: {s.ok} < {needed}"
    if rules.require_stable and not s.stable:
        return INCONCLUSIVE, f"unstable ({s.stability_reason})"
    return PASS, "ok"


def judge_probe(result: RunResult, slo: Slo, *, max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
                rate_tolerance: float = DEFAULT_RATE_TOLERANCE, require_stable: bool = True) -> tuple[bool, str]:
    """(passed, reason) for one open-loop probe (the capacity plan reads search probes with this)."""
    outcome, why = classify(result, Rules(slo, max_error_rate=max_error_rate, rate_tolerance=rate_tolerance,
                                          require_stable=require_stable))
    return outcome == PASS, why


def _round_rate(rate: float) -> float:
    """Three significant digits: the bisection tolerance is coarser, and ids stay readable."""
    if rate <= 0:
        return rate
    digits = 2 - int(math.floor(math.log10(rate)))
    return float(round(rate, digits))


def next_rate(b: Bracket, cap: float | None, tolerance: float) -> float | None:
    """The next rate to probe, or None when the search is over."""
    if b.lo is None:  # nothing has passed yet: go down
        assert b.hi is not None
        return b.hi / 2
    if b.hi is None:  # everything passed: go up, within the cap
        if cap is not None:
            return None if b.lo >= cap else min(b.lo * 2, cap)
        return b.lo * 2
    if b.hi - b.lo <= tolerance * b.hi:
        return None
    return (b.lo + b.hi) / 2


def final_reason(b: Bracket, cap: float | None, tolerance: float, n: int, max_probes: int,
                 interrupted: bool) -> str:
    lo, hi = b.lo, b.hi
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


# ---- the search's files and runs ------------------------------------------------------------------


class _Probes:
    """Runs probes, saves them, and keeps the manifest current (the only stateful part)."""

    def __init__(self, out_dir: Path, rules: Rules, runner: Callable[..., RunResult], pool_factory: Any,
                 headers: Mapping[str, str] | None, stop: threading.Event, env: Any, bar: SweepProgress) -> None:
        self.out_dir, self.rules, self.runner, self.pool_factory = out_dir, rules, runner, pool_factory
        self.headers, self.stop, self.env, self.bar = headers, stop, env, bar
        self.results: list[RunResult] = []
        self.verdicts: list[ProbeVerdict] = []
        self.estimate: tuple[float, str] | None = None
        self.bracket = Bracket()
        self.saturated_hi: float | None = None
        self.reason = "running"
        self.interrupted = False
        self.step = 0
        self.confirm: dict[str, Any] | None = None
        self.confirm_files: list[str] = []
        self.after_failure = False  # the last probe did not pass: the target may hold its backlog
        self.log: Callable[[str], None] = lambda msg: None

    def run(self, cfg: RunConfig, name: str) -> RunResult:
        if self.after_failure:
            self.wait_until_quiet(cfg)
        self.bar.start_run(self.step, name, cfg)
        self.step += 1
        kwargs = run_kwargs(self.headers, self.bar.update, self.stop, self.env)
        if self.pool_factory is not None:
            kwargs["pool"] = self.pool_factory(cfg)
        result = self.runner(cfg, **kwargs)
        save_result(result, self.out_dir / f"{name}.json")
        self.bar.finish_run(name, result)
        return result

    def probe(self, cfg: RunConfig, rate: float, log: Callable[[str], None]) -> str:
        """Probe `rate` (re-measuring an inconclusive result); returns its final outcome."""
        for attempt in range(1, self.rules.max_remeasure + 2):
            suffix = "" if attempt == 1 else f"-again{attempt - 1}"
            name = f"probe-{len(self.verdicts) + 1:02d}-r{rate:g}{suffix}"
            # a new seed per attempt: the same seed replays the same Poisson arrivals and payloads, and
            # against a deterministic server the re-measure repeated the first attempt exactly
            result = self.run(cfg if attempt == 1 else dataclasses.replace(cfg, seed=cfg.seed + attempt - 1), name)
            outcome, why = classify(result, self.rules)
            self.after_failure = outcome != PASS
            s = result.summary
            self.results.append(result)
            self.verdicts.append(ProbeVerdict(
                rate_rps=rate, file=f"{name}.json", passed=outcome == PASS, reason=why,
                value_ms=self.rules.slo.value_ms(s), achieved_rps=s.throughput_rps, error_rate=s.error_rate,
                stable=s.stable, partial=result.partial, outcome=outcome, attempt=attempt))
            log(f"probe {len(self.verdicts)}: {rate:g} req/s -> {outcome} ({why})")
            if result.partial:
                self.interrupted = True
            if outcome != INCONCLUSIVE or result.partial or self.stop.is_set():
                break
        self.write(False)
        return PASS if outcome == PASS else FAIL

    def _sender(self, cfg: RunConfig) -> Callable[[], float] | None:
        """One request at a time to the target, returning its latency (ms): over REST and when the
        preflight timed a request on the idle target (injected test runners have none), else None."""
        baseline = self.env.get("probe_latency_ms") if isinstance(self.env, Mapping) else None
        if getattr(cfg, "protocol", "rest") != "rest" or not isinstance(baseline, (int, float)):
            return None
        from tfsbench.bench.measure import preflight
        from tfsbench.bench.measure.runner import build_pool_for

        pool = self.pool_factory(cfg) if self.pool_factory is not None else build_pool_for(cfg)
        headers = {"Content-Type": "application/json", **dict(getattr(pool, "headers", {}) or {}),
                   **dict(self.headers or {})}

        def send() -> float:
            try:
                return float(preflight.probe(cfg, pool.bodies[0], headers)["probe_latency_ms"])
            except preflight.TimedOut as exc:
                raise TimeoutError(str(exc)) from None

        return send

    def idle_latency_ms(self, cfg: RunConfig) -> float | None:
        """The fastest of the preflight's request and IDLE_REQUESTS more, one at a time: one request
        alone may be the first after a pause (2 ms where the next ones take 0.7)."""
        send = self._sender(cfg)
        if send is None:
            return None
        times = [float(self.env["probe_latency_ms"])]
        for _ in range(IDLE_REQUESTS):
            try:
                times.append(send())
            except (TimeoutError, OSError, InputError):  # gone or slow: the times so far stand
                break
        return min(times)

    def wait_until_quiet(self, cfg: RunConfig) -> None:
        """After a probe that did not pass (bench/orchestrate/quiet.py says why)."""
        self.after_failure = False
        send = self._sender(cfg)
        if send is None:
            return
        baseline = self.env["probe_latency_ms"]
        waited = quiet.wait_until_quiet(send, float(baseline), self.stop)
        if waited.requests > quiet.QUIET_IN_A_ROW or not waited.quiet:  # there was a backlog
            state = "quiet" if waited.quiet else f"not quiet after {waited.waited_s:.1f} s; probing anyway"
            self.log(f"target {state}: waited {waited.waited_s:.1f} s ({waited.requests} single requests) "
                     f"for it to work off the last probe's backlog")

    def write(self, complete: bool, cap: float | None = None) -> None:
        search = {
            "slo": str(self.rules.slo), "best_rate_rps": self.bracket.lo, "reason": self.reason,
            "probes": [v.to_dict() for v in self.verdicts],
            "estimate": self.estimate[1] if self.estimate else None,
            "estimate_rps": self.estimate[0] if self.estimate else None,
            "upper_end_from_estimate": self.saturated_hi,  # the bracket's upper end without a probe
            "tolerance": self.rules.tolerance, "max_probes": self.rules.max_probes,
            "max_error_rate": self.rules.max_error_rate, "rate_tolerance": self.rules.rate_tolerance,
            "max_remeasure": self.rules.max_remeasure,
            "confirm": self.confirm,
        }
        write_json_atomic(self.out_dir / "manifest.json", manifest_doc(
            "search", runs=[v.file for v in self.verdicts if not v.partial] + self.confirm_files, planned=[],
            partial=[v.file for v in self.verdicts if v.partial], complete=complete, interrupted=self.interrupted,
            slo=str(self.rules.slo), search=search))


def interval_doc(i: Interval) -> dict[str, Any]:
    return {"mean": i.mean, "low": i.low, "high": i.high, "n": i.n, "confidence": i.confidence}


def confirm_summary(results: list[RunResult], slo: Slo, rate_rps: float, files: list[str]) -> dict[str, Any]:
    """Mean and 95% CI across the answer's repeats of throughput and of the SLO statistic, and
    whether the SLO holds at the conservative (high) end of that statistic's interval."""
    throughput = mean_ci([r.summary.throughput_rps for r in results])
    value = mean_ci([slo.value_ms(r.summary) for r in results])
    conservative = value.conservative(higher_is_better=False)
    return {"rate_rps": rate_rps, "files": files, "n": len(results),
            "stable": sum(r.summary.stable for r in results),
            "throughput_rps": interval_doc(throughput), "slo_ms": interval_doc(value),
            "slo_metric": slo.metric, "conservative_slo_ms": conservative,
            "slo_met_at_conservative_end": all(r.summary.ok > 0 for r in results)
            and (conservative < slo.bound_ms if slo.op == "<" else conservative <= slo.bound_ms)}


def _confirm(probes: _Probes, cfg: RunConfig, rate: float, repeat: int, log: Callable[[str], None]) -> None:
    """Measure the answer `repeat` more times; an interrupted repeat ends it (kept as partial)."""
    results: list[RunResult] = []
    for k in range(1, repeat + 1):
        if probes.stop.is_set():
            probes.interrupted = True
            break
        name = f"confirm-r{rate:g}-{k}"
        result = probes.run(cfg, name)
        if result.partial:
            probes.interrupted = True
            break
        results.append(result)
        probes.confirm_files.append(f"{name}.json")
        log(f"repeat {k} of {repeat} at {rate:g} req/s: {result.summary.throughput_rps:,.1f} req/s, "
            f"{probes.rules.slo.metric} {probes.rules.slo.value_ms(result.summary):.2f} ms")
    if results:
        probes.confirm = confirm_summary(results, probes.rules.slo, rate, list(probes.confirm_files))


def confirm_lines(confirm: Mapping[str, Any] | None) -> list[str]:
    """'answer re-measured 3 times: 112.0 ± 1.5 req/s; p99 61.2 ± 8.0 ms (95% CI); ...'."""
    if not confirm:
        return []

    def pm(d: Mapping[str, Any], unit: str, digits: int) -> str:
        if d.get("low") is None:
            return f"{d['mean']:,.{digits}f} {unit} (one repeat: no interval)"
        return f"{d['mean']:,.{digits}f} ± {(d['high'] - d['low']) / 2:,.{digits}f} {unit}"

    held = "holds" if confirm["slo_met_at_conservative_end"] else "does NOT hold"
    return [f"answer re-measured {confirm['n']} times at {confirm['rate_rps']:g} req/s: throughput "
            f"{pm(confirm['throughput_rps'], 'req/s', 1)}; {confirm['slo_metric']} {pm(confirm['slo_ms'], 'ms', 2)} "
            f"(mean and 95% CI; {confirm['stable']} of {confirm['n']} stable)",
            f"the SLO {held} at the interval's conservative end ({confirm['slo_metric']} "
            f"{confirm['conservative_slo_ms']:.2f} ms)"]


def _checked_out_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    old = read_manifest(out_dir / "manifest.json")
    if old is not None and old.get("kind") != "search":
        raise InputError(f"{out_dir}: holds a {old.get('kind')!r} manifest, not a search; choose another --out")
    return out_dir


def _check_args(rules: Rules, lo_rps: float | None, hi_rps: float | None) -> None:
    if rules.max_probes < 1:
        raise InputError("--max-probes must be at least 1")
    if not 0 < rules.tolerance < 1:
        raise InputError("--tolerance must be between 0 and 1 (e.g. 0.05 for 5%)")
    if lo_rps is not None and hi_rps is not None and lo_rps >= hi_rps:
        raise InputError(f"--lo {lo_rps:g} must be below --hi {hi_rps:g}")
    if rules.max_remeasure < 0:
        raise InputError("--max-remeasure must be >= 0")


def _start_rate(base: RunConfig, probes: _Probes, lo_rps: float | None, estimate_concurrency: int,
                log: Callable[[str], None]) -> float | None:
    """--lo, or half of a closed-loop estimate of the ceiling; None when the estimate ends the search."""
    if lo_rps is not None:
        return lo_rps
    closed = dataclasses.replace(base, mode="closed", concurrency=base.concurrency or estimate_concurrency,
                                 rate_rps=None, arrival=None)
    name = f"estimate-c{closed.concurrency}"
    est = probes.run(closed, name)
    if est.partial:
        probes.interrupted = True
        probes.reason = "interrupted during the closed-loop estimate"
        return None
    ceiling = est.summary.throughput_rps
    probes.estimate = (ceiling, f"{name}.json")
    if ceiling <= 0:
        probes.reason = "closed-loop estimate got no successful responses; nothing to search"
        return None
    log(f"closed-loop estimate at concurrency {closed.concurrency}: {ceiling:.1f} req/s; "
        f"starting the bracket at {ceiling / 2:.1f} req/s")
    idle = probes.idle_latency_ms(closed)
    mean = est.summary.latency_ms.mean
    if idle is not None and idle > 0 and mean >= SATURATED_LATENCY_FACTOR * idle:
        # Little's law: C requests in flight took C / throughput each; at least twice one request's time
        # alone means they queued, so the estimate is the target's capacity, and an open loop at or above
        # it has no steady state (its queue grows without bound): the bracket's upper end, not a probe
        probes.bracket = Bracket(None, _round_rate(ceiling))
        probes.saturated_hi = probes.bracket.hi
        log(f"  its mean latency {mean:.2f} ms is {mean / idle:.1f}x one request's {idle:.2f} ms: the target was "
            f"saturated, so {_round_rate(ceiling):g} req/s is the bracket's upper end without a probe")
    return ceiling / 2


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
    max_remeasure: int = DEFAULT_MAX_REMEASURE,
    log: Callable[[str], None] | None = None,
    runner: Callable[..., RunResult] | None = None,
    preflight_fn: Callable[..., Any] | None = None,
    on_ready: Callable[[], None] | None = None,
    repeat: int = 1,
) -> SearchOutcome:
    """Search the peak open-loop rate meeting `slo` for `base` (its kind/batch/format; its duration
    is each probe's shortest bound). Without `lo_rps` a closed-loop run at `estimate_concurrency`
    estimates the ceiling C, and the bracket starts at C/2. `hi_rps` caps the rates tried.
    `on_ready()` is called once the target passed preflight, just before the first load.
    `repeat` N > 1: the answer is measured N more times (the module docstring says why not each probe)."""
    if repeat < 1:
        raise InputError(f"--repeat must be at least 1, not {repeat}")
    rules = Rules(slo, max_probes, tolerance, max_error_rate, rate_tolerance, require_stable, max_remeasure)
    _check_args(rules, lo_rps, hi_rps)
    out_dir = _checked_out_dir(out_dir)
    pool_factory = None
    if runner is None:
        from tfsbench.bench.measure.runner import run_benchmark as runner

        pool_factory = cached_pool_factory()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    stop = stop or threading.Event()
    open_base = dataclasses.replace(base, mode="open", concurrency=None, arrival=base.arrival or "constant",
                                    rate_rps=lo_rps or hi_rps or 1.0, until_stable=require_stable,
                                    extra=_probe_extra(base.extra, slo))
    check_configs([open_base])
    env = next(iter(preflight_all([open_base], headers, preflight_fn).values()), None)
    if on_ready is not None:
        on_ready()
    out_dir.mkdir(parents=True, exist_ok=True)
    # The planned seconds are unknown in advance; the bar shows progress of the probe budget.
    extra_runs = (0 if lo_rps else 1) + (repeat if repeat > 1 else 0)
    bar = SweepProgress([("probe", open_base)] * (max_probes * (1 + max_remeasure) + extra_runs),
                        enabled=progress)
    with bar:
        probes = _Probes(out_dir, rules, runner, pool_factory, headers, stop, env, bar)
        probes.log = log
        probes.write(False)
        rate = _start_rate(base, probes, lo_rps, estimate_concurrency, log)
        if rate is None:
            probes.write(not probes.interrupted)
            return SearchOutcome(None, (), probes.out_dir / "manifest.json", probes.reason, (), None,
                                 probes.interrupted)
        rate = _round_rate(min(rate, hi_rps) if hi_rps is not None else rate)
        tried: set[float] = set()
        n = 0
        while n < max_probes and not probes.interrupted:
            if stop.is_set():
                probes.interrupted = True
                break
            tried.add(rate)
            bound = probe_bound_s(base.duration_s or 10.0, rate, slo) if require_stable else base.duration_s
            cfg = dataclasses.replace(open_base, rate_rps=rate, duration_s=bound)
            outcome = probes.probe(cfg, rate, log)
            n += 1
            if probes.interrupted:
                break
            probes.bracket = probes.bracket.with_probe(rate, outcome == PASS)
            probes.write(False)
            nxt = next_rate(probes.bracket, hi_rps, tolerance)
            if nxt is None:
                break
            nxt = _round_rate(nxt)
            b = probes.bracket
            if nxt in tried or (b.lo is not None and nxt <= b.lo) or (b.hi is not None and nxt >= b.hi):
                break  # rounding left nothing between the bounds
            if b.lo is None and nxt < _MIN_RATE_RPS:
                break
            rate = nxt
        best = probes.bracket.lo
        if repeat > 1 and best is not None and not probes.interrupted:
            bound = probe_bound_s(base.duration_s or 10.0, best, slo) if require_stable else base.duration_s
            _confirm(probes, dataclasses.replace(open_base, rate_rps=best, duration_s=bound), best, repeat, log)
    probes.reason = final_reason(probes.bracket, hi_rps, tolerance, n, max_probes, probes.interrupted)
    probes.write(not probes.interrupted)
    return SearchOutcome(probes.bracket.lo, tuple(probes.results), out_dir / "manifest.json", probes.reason,
                         tuple(probes.verdicts), None, probes.interrupted, probes.confirm)
