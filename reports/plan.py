"""Capacity planning: how many replicas carry the peak under the latency SLO, and what it costs.

For each payload configuration (model, kind, batch size, format) measured on ONE replica:
  capacity  = the highest measured throughput whose SLO statistic met the SLO
              (open-loop search probes when present, judged like the search judges them;
              closed-loop sweep runs otherwise, which is said, because closed loop hides queueing);
  replicas  = ceil(target / (capacity x (1 - headroom)));
  expected latency at the target = the SLO statistic interpolated along the measured curve at the
              per-replica load target / replicas;
  cost per million predictions = replicas x cost per replica-hour / (predictions per hour / 1e6).
Every number keeps the runs it came from, so the report can show the data behind it.

Repeats (`--repeat N`, or several runs of one configuration at one load) make one point of the
curve, read at the conservative end of its 95% Student-t interval across repeats: the LOW end of
throughput and the HIGH end of the SLO statistic. The load passes when that high end meets the SLO,
and the capacity is that low end, so a plan bought from three noisy repeats is not bought from
their luckiest one. A repeat that fails for a reason other than the SLO (unstable, errors, too few
samples) is left out of the interval and named, as the search leaves out an inconclusive probe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats.slo import Slo
from tfsbench.payloads.errors import InputError
from tfsbench.reports.dataset import Source, load_of, min_requests_for, stability_text

FORMULA = "replicas = ceil(target / (capacity x (1 - headroom)))"
ASSUMPTIONS = (
    "Replicas scale linearly behind a load balancer that spreads requests evenly (no shared bottleneck "
    "such as a database, a GPU or the network in front of them).",
    "The measured replica is representative of production replicas (same hardware, model version, "
    "server flags and batching settings).",
    "Peak traffic has the measured payload mix: one configuration (kind, batch size, format) at a time.",
    "Headroom absorbs bursts, a replica failing or restarting, and the difference between a benchmark "
    "and real traffic.",
)
MAX_ERROR_RATE = 0.01
_PERCENTILE_OF = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One measured run on the latency-throughput curve, as the plan used it."""

    run: str  # the run's label
    load: float  # concurrency or offered rate
    throughput_rps: float
    slo_value_ms: float
    p50_ms: float
    met: bool
    reason: str
    repeats: int = 1  # runs behind this point; > 1: throughput/slo_value are the conservative ends
    throughput_mean_rps: float | None = None  # with repeats: the mean the conservative end came from
    slo_value_mean_ms: float | None = None
    used: int = 1  # repeats that passed every check but the SLO (the interval is over these)


@dataclass(frozen=True, slots=True)
class ConfigPlan:
    model: str
    kind: str
    batch_size: int
    format: str
    basis: str  # open-loop search | open-loop runs | closed-loop sweep
    capacity_rps: float | None
    capacity_ips: float | None
    capacity_run: str | None
    slo_value_at_capacity_ms: float | None
    demand_rps: float
    replicas: int | None
    per_replica_rps: float | None
    expected_ms: float | None
    expected_p50_ms: float | None
    expected_note: str
    cost_per_hour: float | None
    cost_per_million: float | None
    points: tuple[CurvePoint, ...] = ()
    warnings: tuple[str, ...] = ()
    capacity_note: str = ""  # how the capacity was read (the conservative end of repeats' interval)

    @property
    def name(self) -> str:
        return f"{self.kind} b={self.batch_size} {self.format}"

    @property
    def feasible(self) -> bool:
        return self.replicas is not None


@dataclass(frozen=True, slots=True)
class Plan:
    slo: str
    slo_metric: str
    target_qps: float | None
    target_ips: float | None
    headroom: float
    cost_per_replica_hour: float | None
    configs: tuple[ConfigPlan, ...]
    recommended: int | None  # index into configs
    recommendation: str
    formula: str = FORMULA
    assumptions: tuple[str, ...] = ASSUMPTIONS
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def best(self) -> ConfigPlan | None:
        return self.configs[self.recommended] if self.recommended is not None else None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["type"] = "tfsbench.plan"
        doc["schema_version"] = 1
        doc["recommended_config"] = self.best.name if self.best else None
        return doc


def _percentile_of(metric: str) -> float | None:
    return _PERCENTILE_OF.get(metric)


def _judge(run: RunResult, slo: Slo, open_loop: bool) -> tuple[bool, str]:
    if open_loop:
        from tfsbench.bench.orchestrate.search import judge_probe

        return judge_probe(run, slo, require_stable=True)  # only stable probes can set a capacity
    s = run.summary
    if run.partial:
        return False, "partial run"
    if not s.stable:  # a capacity read from a run that was still changing is not one to buy servers by
        return False, f"unstable run ({stability_text(s.stability_reason)})"
    if s.ok == 0:
        return False, "no successful responses"
    if s.error_rate >= MAX_ERROR_RATE:
        return False, f"error rate {s.error_rate:.1%}"
    if s.client_saturated:
        return False, "load generator saturated"
    if not slo.met_by(s):
        return False, f"{slo.metric} {slo.value_ms(s):.1f} ms misses the SLO"
    return True, "ok"


def _point(runs: Sequence[RunResult], slo: Slo, open_loop: bool) -> CurvePoint:
    """One load level's point: a single run as measured, or repeats at their conservative ends."""
    from tfsbench.bench.stats.intervals import mean_ci

    first = runs[0]
    if len(runs) == 1:
        met, reason = _judge(first, slo, open_loop)
        return CurvePoint(run=first.config.label_text(), load=load_of(first),
                          throughput_rps=first.summary.throughput_rps,
                          slo_value_ms=slo.value_ms(first.summary) if first.summary.ok else float("nan"),
                          p50_ms=first.summary.latency_ms.p50, met=met, reason=reason)
    anything = Slo(slo.metric, "<=", 1e300)  # every check but the SLO itself
    judged = [(r, _judge(r, anything, open_loop)) for r in runs]
    usable = [r for r, (ok, _) in judged if ok]
    left_out = [why for _, (ok, why) in judged if not ok]
    label = f"{first.config.label_text()} (x{len(runs)})"
    if not usable:
        measured = [slo.value_ms(r.summary) for r in runs if r.summary.ok]
        return CurvePoint(run=label, load=load_of(first), throughput_rps=0.0,
                          slo_value_ms=sum(measured) / len(measured) if measured else float("nan"),
                          p50_ms=first.summary.latency_ms.p50, met=False, repeats=len(runs),
                          reason=f"no usable repeat of {len(runs)} ({left_out[0]})")
    tput = mean_ci([r.summary.throughput_rps for r in usable])
    value = mean_ci([slo.value_ms(r.summary) for r in usable])
    high = value.conservative(higher_is_better=False)
    low_rps = tput.conservative(higher_is_better=True)
    met = slo.met_by(_with_value(usable[0].summary, slo.metric, high)) and low_rps > 0
    reason = "ok" if met else f"{slo.metric} {high:.1f} ms (high end of the 95% CI) misses the SLO"
    if low_rps <= 0:
        reason = (f"throughput {tput.mean:.1f} req/s with a 95% CI reaching {low_rps:.1f}: too noisy to size "
                  "from (repeat more)")
    n = len(usable)
    reason += f"; {n} repeats, conservative end of the 95% CI" if value.has_interval else "; one usable repeat"
    if left_out:
        reason += f"; {len(left_out)} of {len(runs)} left out ({left_out[0]})"
    p50 = sum(r.summary.latency_ms.p50 for r in usable) / n
    return CurvePoint(run=label, load=load_of(first), throughput_rps=max(low_rps, 0.0),
                      slo_value_ms=high, p50_ms=p50, met=met, reason=reason, repeats=len(runs),
                      throughput_mean_rps=tput.mean, slo_value_mean_ms=value.mean, used=n)


def _with_value(summary: Any, metric: str, value: float) -> Any:
    import dataclasses

    return dataclasses.replace(summary, latency_ms=dataclasses.replace(summary.latency_ms, **{metric: value}))


def _levels(runs: Sequence[RunResult], source_of: Mapping[int, int] | None = None) -> list[list[RunResult]]:
    """Runs grouped into load levels (repeats of one configuration at one load, from one input), in
    load order. Runs of two inputs (a before and an after sweep) are never one another's repeats."""
    from tfsbench.bench.stats.pairing import group_repeats

    by_source: dict[int, list[RunResult]] = {}
    for r in runs:
        by_source.setdefault((source_of or {}).get(id(r), 0), []).append(r)
    levels = [list(g.runs) for rs in by_source.values() for g in group_repeats(rs)]
    return sorted(levels, key=lambda rs: load_of(rs[0]))


def _interpolate(points: Sequence[CurvePoint], rps: float) -> tuple[float | None, float | None, str]:
    """SLO statistic and p50 at `rps` along the measured curve (linear between measured runs)."""
    usable = sorted((p for p in points if p.throughput_rps > 0), key=lambda p: p.throughput_rps)
    if not usable:
        return None, None, "no measured point"
    if rps <= usable[0].throughput_rps:
        p = usable[0]
        return p.slo_value_ms, p.p50_ms, (
            f"at most the value at the lowest load measured ({p.run}, {p.throughput_rps:.1f} req/s)")
    for lo, hi in zip(usable, usable[1:], strict=False):
        if lo.throughput_rps <= rps <= hi.throughput_rps:
            span = hi.throughput_rps - lo.throughput_rps
            f = (rps - lo.throughput_rps) / span if span > 0 else 0.0
            return (lo.slo_value_ms + f * (hi.slo_value_ms - lo.slo_value_ms),
                    lo.p50_ms + f * (hi.p50_ms - lo.p50_ms),
                    f"interpolated between {lo.run} ({lo.throughput_rps:.1f} req/s) and "
                    f"{hi.run} ({hi.throughput_rps:.1f} req/s)")
    p = usable[-1]
    return p.slo_value_ms, p.p50_ms, f"beyond the highest load measured ({p.run}); value there"


def _config_plan(
    runs: Sequence[RunResult],
    *,
    basis: str,
    open_loop: bool,
    slo: Slo,
    target_qps: float | None,
    target_ips: float | None,
    headroom: float,
    cost: float | None,
    source_of: Mapping[int, int] | None = None,
) -> ConfigPlan:
    cfg = runs[0].config
    levels = _levels(runs, source_of)
    points = [_point(level, slo, open_loop) for level in levels]
    ordered = [level[0] for level in levels]
    passing = [(p, r) for p, r in zip(points, ordered, strict=True) if p.met]
    demand_rps = max(target_qps or 0.0, (target_ips or 0.0) / cfg.batch_size)
    warnings: list[str] = []  # (closed-loop basis is stated once, in the plan's warnings)
    if not passing:
        lowest = points[0]
        reason = (f"no measured load met {slo}: the lowest load ({lowest.run}) measured "
                  f"{lowest.slo_value_ms:.1f} ms ({lowest.reason})")
        return ConfigPlan(model=cfg.model, kind=cfg.kind, batch_size=cfg.batch_size, format=cfg.encoding,
                          basis=basis, capacity_rps=None, capacity_ips=None, capacity_run=None,
                          slo_value_at_capacity_ms=None, demand_rps=demand_rps, replicas=None,
                          per_replica_rps=None, expected_ms=None, expected_p50_ms=None, expected_note=reason,
                          cost_per_hour=None, cost_per_million=None, points=tuple(points),
                          warnings=tuple(warnings + [reason]))
    best_point, best_run = max(passing, key=lambda pr: pr[0].throughput_rps)
    capacity = best_point.throughput_rps
    # the curve the expected latency is read from: everything up to the capacity run, in load order
    curve = [p for p in points if p.load <= best_point.load and p.throughput_rps > 0 and p.reason != "partial run"]
    usable_capacity = capacity * (1.0 - headroom)
    replicas = max(1, math.ceil(demand_rps / usable_capacity - 1e-9))
    per_replica = demand_rps / replicas
    expected, expected_p50, note = _interpolate(curve, per_replica)
    s = best_run.summary
    pct = _percentile_of(slo.metric)
    if pct is not None and s.requests < min_requests_for(pct):
        warnings.append(f"the capacity run has {s.requests} requests, too few to support a {slo.metric} "
                        f"(need ~{min_requests_for(pct)}): run longer")
    if not s.stable and best_point.repeats == 1:
        warnings.append(f"the capacity run was unstable ({stability_text(s.stability_reason)})")
    capacity_note = ""
    if best_point.repeats > 1 and best_point.used == 1:
        capacity_note = (f"only 1 of {best_point.repeats} repeats was usable ({best_point.reason.split('; ', 2)[-1]}), "
                         "so there is no interval: the capacity is that run's")
        warnings.append(f"the capacity comes from 1 usable repeat of {best_point.repeats}: repeat it")
    elif best_point.repeats > 1 and best_point.throughput_mean_rps is not None:
        left = best_point.repeats - best_point.used
        capacity_note = (f"the conservative end of the 95% CI over {best_point.used} repeats"
                         f"{f' ({left} left out)' if left else ''}: mean "
                         f"{best_point.throughput_mean_rps:.1f} req/s, capacity taken as {capacity:.1f} req/s; "
                         f"{slo.metric} mean {best_point.slo_value_mean_ms:.1f} ms, taken as "
                         f"{best_point.slo_value_ms:.1f} ms")
    if best_run.config.source == "locust":
        warnings.append("the capacity run is a Locust export: percentiles are rounded")
    if best_point is points[-1] and open_loop is False:
        warnings.append("the SLO was still met at the highest load measured: capacity may be higher "
                        "(measure higher concurrency)")
    predictions_per_hour = demand_rps * cfg.batch_size * 3600.0
    cost_per_hour = replicas * cost if cost is not None else None
    cost_per_million = (cost_per_hour / predictions_per_hour * 1e6
                        if cost_per_hour is not None and predictions_per_hour > 0 else None)
    return ConfigPlan(
        model=cfg.model, kind=cfg.kind, batch_size=cfg.batch_size, format=cfg.encoding, basis=basis,
        capacity_rps=capacity, capacity_ips=capacity * cfg.batch_size, capacity_run=best_point.run,
        slo_value_at_capacity_ms=best_point.slo_value_ms, demand_rps=demand_rps, replicas=replicas,
        per_replica_rps=per_replica, expected_ms=expected, expected_p50_ms=expected_p50, expected_note=note,
        cost_per_hour=cost_per_hour, cost_per_million=cost_per_million, points=tuple(points),
        warnings=tuple(warnings), capacity_note=capacity_note,
    )


def make_plan(
    sources: Sequence[Source],
    slo: Slo,
    *,
    target_qps: float | None = None,
    target_ips: float | None = None,
    headroom: float = 0.3,
    cost_per_replica_hour: float | None = None,
) -> Plan:
    """A plan for every measured configuration, and the recommended one."""
    if not target_qps and not target_ips:
        raise InputError("give the peak traffic with --target-qps (requests/s) or --target-ips (instances/s)")
    for name, v in (("--target-qps", target_qps), ("--target-ips", target_ips)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number, not {v!r}")
    if not (0 <= headroom < 1):
        raise InputError(f"--headroom must be in [0, 1), e.g. 0.3 for 30%, not {headroom!r}")
    if cost_per_replica_hour is not None and not (math.isfinite(cost_per_replica_hour) and cost_per_replica_hour >= 0):
        raise InputError(f"--cost-per-replica-hour must be a non-negative number, not {cost_per_replica_hour!r}")
    # (config key) -> {"search": [...], "open": [...], "closed": [...]}
    groups: dict[tuple, dict[str, list[RunResult]]] = {}
    source_of = {id(run): i for i, src in enumerate(sources) for run in src.runs}
    for src in sources:
        for run in src.runs:
            cfg = run.config
            bucket = "search" if src.kind == "search" and cfg.mode == "open" else cfg.mode
            groups.setdefault(cfg.config_key(), {}).setdefault(bucket, []).append(run)
    configs = []
    for _key, by_basis in groups.items():
        if by_basis.get("search"):
            runs, basis, open_loop = by_basis["search"] + by_basis.get("open", []), "open-loop search", True
        elif by_basis.get("open"):
            runs, basis, open_loop = by_basis["open"], "open-loop runs", True
        else:
            runs, basis, open_loop = by_basis["closed"], "closed-loop sweep", False
        configs.append(_config_plan(runs, basis=basis, open_loop=open_loop, slo=slo, target_qps=target_qps,
                                    target_ips=target_ips, headroom=headroom, cost=cost_per_replica_hour,
                                    source_of=source_of))
    order = {"numeric": 0, "text": 1, "image": 2}
    configs.sort(key=lambda c: (order.get(c.kind, 9), c.kind, c.model, c.batch_size, c.format))
    recommended, text = _recommend(configs, slo, target_qps, target_ips, cost_per_replica_hour)
    warnings = []
    if target_qps and not target_ips and len({c.batch_size for c in configs}) > 1:
        warnings.append("--target-qps counts requests: configurations with larger batches deliver more "
                        "predictions per request. Give --target-ips to compare batch sizes on predictions.")
    if any(c.basis == "closed-loop sweep" for c in configs):
        warnings.append("some capacities come from closed-loop sweeps (no open-loop search for them): closed "
                        "loop slows down with the server, so it understates latency near saturation; confirm "
                        "the recommended configuration with `tfsbench search`")
    return Plan(slo=str(slo), slo_metric=slo.metric, target_qps=target_qps, target_ips=target_ips,
                headroom=headroom, cost_per_replica_hour=cost_per_replica_hour, configs=tuple(configs),
                recommended=recommended, recommendation=text, warnings=tuple(warnings))


def _recommend(configs: Sequence[ConfigPlan], slo: Slo, target_qps: float | None, target_ips: float | None,
               cost: float | None) -> tuple[int | None, str]:
    feasible = [(i, c) for i, c in enumerate(configs) if c.feasible]
    if not feasible:
        return None, (f"No configuration met {slo} at any measured load on one replica: the SLO is tighter "
                      "than this server's latency even when idle. Relax the SLO, speed up the model, or "
                      "measure lower loads.")

    def key(ic: tuple[int, ConfigPlan]) -> tuple:
        _, c = ic
        primary = c.cost_per_million if c.cost_per_million is not None else c.replicas
        return (primary, c.replicas, c.expected_ms if c.expected_ms is not None else math.inf)

    i, c = min(feasible, key=key)
    target = (f"{target_ips:g} predictions/s" if target_ips else f"{target_qps:g} requests/s")
    text = (f"Use {c.name} ({c.model}): {c.replicas} replica{'s carry' if c.replicas != 1 else ' carries'} {target} "
            f"at {c.per_replica_rps:.1f} req/s each, against a measured capacity of {c.capacity_rps:.1f} req/s "
            f"({c.capacity_ips:.1f} predictions/s; from {c.basis}, run {c.capacity_run}"
            f"{'; ' + c.capacity_note if c.capacity_note else ''}); expected "
            f"{slo.metric} at that load is {c.expected_ms:.1f} ms against the SLO's {slo.bound_ms:g} ms.")
    if c.cost_per_million is not None:
        text += f" Cost: {c.cost_per_hour:.2f} per hour, {c.cost_per_million:.4f} per million predictions."
    text += _protocol_note(c, feasible)
    return i, text


def _protocol_note(best: ConfigPlan, feasible: Sequence[tuple[int, ConfigPlan]]) -> str:
    """When the same payload was measured over REST and gRPC: which protocol needs fewer replicas."""
    same = [c for _, c in feasible if (c.model, c.kind, c.batch_size) == (best.model, best.kind, best.batch_size)
            and c is not best and (c.format == "grpc") != (best.format == "grpc")]
    if not same:
        return ""
    other = min(same, key=lambda c: c.replicas or math.inf)
    mine, theirs = ("gRPC", "REST") if best.format == "grpc" else ("REST", "gRPC")
    return (f" {mine} needs {best.replicas} replica{'s' if best.replicas != 1 else ''} where {theirs} "
            f"({other.name}) needs {other.replicas}.")
