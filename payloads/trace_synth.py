"""Synthetic traces with a realistic shape, for the demo, the docs and the tests (seeded).

Arrivals are a non-homogeneous Poisson process: for each second, the count is Poisson with the
profile's rate at that second (times uniform inside it), so the same seed gives the same trace.

Profiles (rate as a function of the time of day h, in hours from the trace's start at midnight):
  diurnal: peak x (trough + (1 - trough) x (1 + cos(2 pi (h - peak_hour) / 24)) / 2):
           the peak at `peak_hour` (default 14:00), the trough (default 20% of the peak) 12 h later;
  flat:    the peak all the time;
  ramp:    from trough x peak up to the peak, linearly over the trace.
Bursts: `count` windows of `duration_s`, at seeded random times, where the rate is multiplied by
`factor` (a flash crowd, a retry storm); they may exceed the peak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tfsbench.payloads import units
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.trace import TRACE_KINDS, Trace, TraceKey, make_trace

PROFILES = ("diurnal", "flat", "ramp")
MAX_SYNTH_REQUESTS = 50_000_000


@dataclass(frozen=True, slots=True)
class Bursts:
    count: int = 0
    factor: float = 3.0
    duration_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SynthSpec:
    profile: str = "diurnal"
    peak_rps: float = 300.0
    duration_s: float = 86400.0
    trough: float = 0.2  # fraction of the peak at the quietest time
    peak_hour: float = 14.0
    bursts: Bursts = Bursts()
    models: tuple[tuple[str, float], ...] = (("numeric", 1.0),)  # name, share
    batch_sizes: tuple[tuple[int, float], ...] = ((1, 1.0),)  # size, share
    seed: int = 0
    start: str | None = "2026-12-01T00:00:00+00:00"


def rate_at(spec: SynthSpec, t_s: np.ndarray) -> np.ndarray:
    """The profile's rate (req/s) at trace times `t_s`, bursts excluded."""
    if spec.profile == "flat":
        return np.full_like(t_s, spec.peak_rps, dtype=np.float64)
    if spec.profile == "ramp":
        frac = np.clip(t_s / spec.duration_s, 0.0, 1.0)
        return spec.peak_rps * (spec.trough + (1.0 - spec.trough) * frac)
    if spec.profile == "diurnal":
        h = t_s / 3600.0
        wave = (1.0 + np.cos(2.0 * math.pi * (h - spec.peak_hour) / 24.0)) / 2.0
        return spec.peak_rps * (spec.trough + (1.0 - spec.trough) * wave)
    raise InputError(f"--profile must be one of {', '.join(PROFILES)}, got {spec.profile!r}")


def _check(spec: SynthSpec) -> None:
    if spec.profile not in PROFILES:
        raise InputError(f"--profile must be one of {', '.join(PROFILES)}, got {spec.profile!r}")
    if not (math.isfinite(spec.peak_rps) and spec.peak_rps > 0):
        raise InputError(f"--peak must be a rate > 0, got {spec.peak_rps!r}")
    if not (math.isfinite(spec.duration_s) and 0 < spec.duration_s <= 31 * 86400):
        raise InputError(f"the trace's length must be > 0 and at most 31 days, got {spec.duration_s!r} s")
    if not 0 <= spec.trough <= 1:
        raise InputError(f"--trough must be in [0, 1], got {spec.trough!r}")
    b = spec.bursts
    if b.count < 0 or not (math.isfinite(b.factor) and b.factor > 0) or not (b.duration_s > 0):
        raise InputError("--bursts: count >= 0, factor > 0 and duration > 0")
    for what, mix in (("--models", spec.models), ("--batch-sizes", spec.batch_sizes)):
        if not mix or any(not (math.isfinite(w) and w > 0) for _, w in mix):
            raise InputError(f"{what}: every share must be a number > 0")
    expected = float(np.sum(rate_at(spec, np.arange(0.0, spec.duration_s, 1.0) + 0.5)))
    expected *= 1.0 + (b.factor - 1.0) * min(1.0, b.count * b.duration_s / spec.duration_s) if b.count else 1.0
    if expected > MAX_SYNTH_REQUESTS:
        raise InputError(f"that trace would hold about {expected:,.0f} requests (more than "
                         f"{MAX_SYNTH_REQUESTS:,}); lower --peak or --hours")


def synthesize(spec: SynthSpec) -> Trace:
    """A seeded synthetic trace (see the module docstring for the profiles)."""
    _check(spec)
    rng = np.random.default_rng(spec.seed)
    n_sec = math.ceil(spec.duration_s)
    sec_start = np.arange(n_sec, dtype=np.float64)
    sec_len = np.minimum(1.0, spec.duration_s - sec_start)
    rates = rate_at(spec, sec_start + sec_len / 2.0)
    b = spec.bursts
    burst_starts = np.sort(rng.uniform(0.0, max(0.0, spec.duration_s - b.duration_s), b.count))
    for s in burst_starts:
        inside = (sec_start + sec_len > s) & (sec_start < s + b.duration_s)
        rates[inside] *= b.factor
    counts = rng.poisson(rates * sec_len)
    total = int(counts.sum())
    if total == 0:
        raise InputError("the synthetic trace came out empty: raise --peak or --hours")
    t = np.repeat(sec_start, counts) + rng.random(total) * np.repeat(sec_len, counts)
    t.sort()
    names, shares = zip(*spec.models, strict=True)
    sizes, bshares = zip(*spec.batch_sizes, strict=True)
    mi = rng.choice(len(names), size=total, p=np.asarray(shares) / sum(shares))
    bi = rng.choice(len(sizes), size=total, p=np.asarray(bshares) / sum(bshares))
    table = [[TraceKey(model=name, kind=name if name in TRACE_KINDS else None, batch_size=size)
              for size in sizes] for name in names]
    keys = [table[m][k] for m, k in zip(mi.tolist(), bi.tolist(), strict=True)]
    source = (f"synth profile={spec.profile} peak={spec.peak_rps:g}/s seed={spec.seed}"
              + (f" bursts={b.count}x{b.factor:g}/{b.duration_s:g}s" if b.count else ""))
    return make_trace(t, keys, duration_s=spec.duration_s, start=spec.start, source=source)


# ---- small parsers the CLI shares ------------------------------------------------------------------


def parse_rate(text: str) -> float:
    """'300/s', '300', '18000/min', '1e6/h' -> requests per second (the project's rate grammar)."""
    return units.parse_rate_rps(text, "rate")


def parse_duration_s(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d' -> seconds (> 0; the project's duration grammar)."""
    value = units.parse_duration_s(text)
    if value <= 0:
        raise InputError(f"{text!r}: the duration must be > 0")
    return value


def parse_bursts(text: str) -> Bursts:
    """'4' or '4,x3,120s' (count, rate factor, length of each burst)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        count = int(parts[0])
    except (IndexError, ValueError):
        raise InputError(f"--bursts {text!r}: expected a count, e.g. 4 or 4,x3,120s") from None
    factor, duration = 3.0, 60.0
    for part in parts[1:]:
        if part.startswith("x"):
            try:
                factor = float(part[1:])
            except ValueError:
                raise InputError(f"--bursts {text!r}: the factor is like x3") from None
        else:
            duration = parse_duration_s(part)
    if count < 0 or not (math.isfinite(factor) and factor > 0):
        raise InputError(f"--bursts {text!r}: count >= 0 and factor > 0")
    return Bursts(count, factor, duration)


def parse_mix(text: str, what: str, as_int: bool = False) -> tuple[tuple, ...]:
    """'numeric=0.8,text=0.2' (or '1=0.7,8=0.3' with as_int) -> ((name, share), ...); a bare name
    has share 1."""
    out: list[tuple] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, share = part.partition("=")
        try:
            weight = float(share) if sep else 1.0
            key: object = int(name) if as_int else name.strip()
        except ValueError:
            raise InputError(f"{what} {text!r}: expected items like {'8=0.3' if as_int else 'numeric=0.8'}") from None
        if as_int and key < 1:  # type: ignore[operator]
            raise InputError(f"{what} {text!r}: batch sizes are integers >= 1")
        if not key or not (math.isfinite(weight) and weight > 0):
            raise InputError(f"{what} {text!r}: every item needs a name and a share > 0")
        out.append((key, weight))
    if not out:
        raise InputError(f"{what} {text!r}: give at least one item")
    return tuple(out)


def window_rates(trace: Trace, window_s: float) -> np.ndarray:
    """Mean request rate (req/s) per window of trace time."""
    counts = trace.window_counts(window_s)
    lengths = np.full(counts.size, window_s)
    lengths[-1] = trace.duration_s - window_s * (counts.size - 1)
    return counts / np.maximum(lengths, 1e-9)


def describe(trace: Trace, window_s: float | None = None) -> Sequence[str]:
    """A few lines about a trace (for `trace synth`, `trace import` and `trace show`); the window
    for min/max rates defaults to an hour, or a minute for traces under three hours."""
    if window_s is None:
        window_s = 3600.0 if trace.duration_s >= 3 * 3600 else 60.0
    rates = window_rates(trace, window_s)
    length = (f"{trace.duration_s / 3600:.2f} h" if trace.duration_s >= 3 * 3600
              else f"{trace.duration_s / 60:.1f} min")
    lines = [f"{len(trace):,} requests over {length} "
             f"(mean {trace.mean_rps:.1f} req/s; per {window_s:g} s window: min {rates.min():.1f}, "
             f"max {rates.max():.1f} req/s)"]
    mix = sorted(trace.key_counts().items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{_key_text(k)} {c / len(trace):.0%}" for k, c in mix[:6])
    lines.append(f"requests: {shown}{', ...' if len(mix) > 6 else ''}")
    if trace.bad.count or trace.bad.skipped:
        lines.append(trace.bad.describe())
    return lines


def _key_text(key: TraceKey) -> str:
    text = key.model or "(model not recorded)"
    if key.version is not None:
        text += f"/v{key.version}"
    if key.label:
        text += f"@{key.label}"
    if key.batch_size:
        text += f" b={key.batch_size}"
    return text
