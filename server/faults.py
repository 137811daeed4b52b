"""Fault injection for the embedded target: a small spec language, a frozen plan, a seeded injector.

A load test is run exactly when things break, so the suite (and your dashboards and alerts) must be
rehearsed against a server that misbehaves. The spec is a comma-separated list of items:

    status=CODE:FRAC          answer FRAC of inference requests with HTTP CODE (400-599) and a
                              TF Serving-shaped body {"error": "..."}; repeatable (503, 500, 429...)
    delay=[exp:]DUR:FRAC      add latency to FRAC of requests: fixed DUR, or exponential with mean DUR
    stall=DUR/PERIOD          the whole server stops answering for DUR at the end of every PERIOD
    reset=FRAC                send the headers and part of the body, then reset the connection (RST)
    truncate=FRAC             200 with a JSON body cut in half (valid HTTP, invalid JSON)
    nonjson=FRAC              200 with an HTML body, as a misconfigured proxy would send
    trickle=DUR:FRAC          send the (correct) body in small pieces spread over DUR
    seed=INT                  seed of the injector's random numbers (default 0)

FRAC is a fraction (0.05) or a percentage (5%). `status`, `reset`, `truncate`, `nonjson` and
`trickle` are exclusive (one per request, their fractions must sum to <= 1); `delay` is drawn
independently and adds to any of them; `stall` is by the clock, not per request.
Faults apply to inference requests (`:predict`, `:classify`, `:regress`); stalls pause everything.
Example: `status=503:5%,status=429:2%,delay=exp:20ms:0.1,stall=1s/10s,reset=1%,truncate=1%`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tfsbench.payloads.errors import InputError
from tfsbench.server.durations import parse_duration_s

EXCLUSIVE_KINDS = ("status", "reset", "truncate", "nonjson", "trickle")


@dataclass(frozen=True, slots=True)
class StatusFault:
    status: int
    fraction: float


@dataclass(frozen=True, slots=True)
class DelayFault:
    delay_s: float
    fraction: float
    distribution: str = "fixed"  # fixed | exp


@dataclass(frozen=True, slots=True)
class StallFault:
    duration_s: float
    period_s: float


@dataclass(frozen=True, slots=True)
class TrickleFault:
    duration_s: float
    fraction: float


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to break and how often. The empty plan (the default) breaks nothing."""

    statuses: tuple[StatusFault, ...] = ()
    delays: tuple[DelayFault, ...] = ()
    stall: StallFault | None = None
    reset: float = 0.0
    truncate: float = 0.0
    nonjson: float = 0.0
    trickle: TrickleFault | None = None
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.delays or self.stall or self.per_request_fraction)

    @property
    def per_request_fraction(self) -> float:
        """The share of requests that get one of the exclusive faults."""
        trickle = self.trickle.fraction if self.trickle else 0.0
        return sum(s.fraction for s in self.statuses) + self.reset + self.truncate + self.nonjson + trickle

    def describe(self) -> str:
        """The plan back in spec form (canonical), for the startup banner and result files."""
        items = [f"status={s.status}:{s.fraction:g}" for s in self.statuses]
        for d in self.delays:
            prefix = "exp:" if d.distribution == "exp" else ""
            items.append(f"delay={prefix}{d.delay_s * 1e3:g}ms:{d.fraction:g}")
        if self.stall:
            items.append(f"stall={self.stall.duration_s:g}s/{self.stall.period_s:g}s")
        for kind in ("reset", "truncate", "nonjson"):
            if getattr(self, kind):
                items.append(f"{kind}={getattr(self, kind):g}")
        if self.trickle:
            items.append(f"trickle={self.trickle.duration_s * 1e3:g}ms:{self.trickle.fraction:g}")
        if items and self.seed:
            items.append(f"seed={self.seed}")
        return ",".join(items) or "none"


def _fraction(text: str, item: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"--faults: {item!r}: {raw!r} is not a fraction (0.05 or 5%)") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"--faults: {item!r}: fraction {raw!r} is outside [0, 1]")
    return value


def parse_faults(spec: str) -> FaultPlan:
    """Parse a fault spec (see the module docstring); raise InputError naming the bad item."""
    statuses: list[StatusFault] = []
    delays: list[DelayFault] = []
    values: dict[str, object] = {}
    text = str(spec).strip()
    if text.lower() in ("", "none", "off"):
        return FaultPlan()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, arg = item.partition("=")
        kind = kind.strip().lower()
        if not sep or not arg.strip():
            raise InputError(f"--faults: {item!r} is not KIND=VALUE (kinds: status, delay, stall, reset, "
                             "truncate, nonjson, trickle, seed)")
        if kind == "status":
            code, _, frac = arg.partition(":")
            try:
                status = int(code)
            except ValueError:
                raise InputError(f"--faults: {item!r}: status {code!r} is not an integer") from None
            if not 400 <= status <= 599:
                raise InputError(f"--faults: {item!r}: status must be 400-599")
            statuses.append(StatusFault(status, _fraction(frac or "1", item)))
        elif kind == "delay":
            parts = arg.split(":")
            distribution = "fixed"
            if parts[0].strip().lower() in ("exp", "fixed"):
                distribution = parts.pop(0).strip().lower()
            if len(parts) not in (1, 2):
                raise InputError(f"--faults: {item!r} is not delay=[exp:]DURATION:FRACTION")
            delay_s = parse_duration_s(parts[0], what=f"--faults: {item!r}")
            if delay_s > 600:
                raise InputError(f"--faults: {item!r}: delay longer than 600s")
            frac = _fraction(parts[1], item) if len(parts) == 2 else 1.0
            delays.append(DelayFault(delay_s, frac, distribution))
        elif kind == "stall":
            dur, slash, period = arg.partition("/")
            if not slash:
                raise InputError(f"--faults: {item!r} is not stall=DURATION/PERIOD (e.g. stall=1s/10s)")
            duration_s = parse_duration_s(dur, what=f"--faults: {item!r}")
            period_s = parse_duration_s(period, what=f"--faults: {item!r}")
            if not 0 < duration_s < period_s:
                raise InputError(f"--faults: {item!r}: need 0 < DURATION < PERIOD")
            values["stall"] = StallFault(duration_s, period_s)
        elif kind in ("reset", "truncate", "nonjson"):
            values[kind] = _fraction(arg, item)
        elif kind == "trickle":
            dur, _, frac = arg.partition(":")
            duration_s = parse_duration_s(dur, what=f"--faults: {item!r}")
            if not 0 < duration_s <= 600:
                raise InputError(f"--faults: {item!r}: trickle duration must be in (0, 600s]")
            values["trickle"] = TrickleFault(duration_s, _fraction(frac or "1", item))
        elif kind == "seed":
            try:
                values["seed"] = int(arg)
            except ValueError:
                raise InputError(f"--faults: {item!r}: seed must be an integer") from None
        else:
            raise InputError(f"--faults: unknown fault kind {kind!r} in {item!r} (kinds: status, delay, "
                             "stall, reset, truncate, nonjson, trickle, seed)")
    plan = FaultPlan(statuses=tuple(statuses), delays=tuple(delays), **values)  # type: ignore[arg-type]
    if plan.per_request_fraction > 1.0 + 1e-9:
        raise InputError(f"--faults: status, reset, truncate, nonjson and trickle fractions sum to "
                         f"{plan.per_request_fraction:g} > 1")
    return plan


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: `kind` is None (answer normally) or one of EXCLUSIVE_KINDS."""

    kind: str | None
    status: int = 0
    delay_s: float = 0.0
    trickle_s: float = 0.0


NO_FAULT = FaultDecision(None)


class FaultInjector:
    """Draws a decision per request from a seeded RNG: same seed and order, same faults."""

    def __init__(self, plan: FaultPlan, start_s: float) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._start_s = start_s
        exclusive: list[tuple[float, FaultDecision]] = []
        edge = 0.0
        for fault in plan.statuses:
            edge += fault.fraction
            exclusive.append((edge, FaultDecision("status", status=fault.status)))
        for kind in ("reset", "truncate", "nonjson"):
            if getattr(plan, kind):
                edge += getattr(plan, kind)
                exclusive.append((edge, FaultDecision(kind)))
        if plan.trickle:
            edge += plan.trickle.fraction
            exclusive.append((edge, FaultDecision("trickle", trickle_s=plan.trickle.duration_s)))
        self._exclusive = tuple(exclusive)

    def decide(self) -> FaultDecision:
        rng = self._rng
        decision = NO_FAULT
        if self._exclusive:
            draw = rng.random()
            for edge, candidate in self._exclusive:
                if draw < edge:
                    decision = candidate
                    break
        delay_s = 0.0
        for fault in self.plan.delays:
            if rng.random() < fault.fraction:
                delay_s += rng.expovariate(1.0 / fault.delay_s) if fault.distribution == "exp" and \
                    fault.delay_s > 0 else fault.delay_s
        if delay_s:
            return FaultDecision(decision.kind, decision.status, delay_s, decision.trickle_s)
        return decision

    def stall_remaining_s(self, now_s: float) -> float:
        """Seconds until the current stall ends (0 outside stalls). Stalls end each period."""
        stall = self.plan.stall
        if stall is None:
            return 0.0
        phase_s = (now_s - self._start_s) % stall.period_s
        start_s = stall.period_s - stall.duration_s
        return stall.period_s - phase_s if phase_s >= start_s else 0.0
