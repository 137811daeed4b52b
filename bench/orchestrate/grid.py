"""The sweep grid: which runs a sweep plans (kind x batch size x format x load level), their stable
ids, and what "the same run" means for resume (the configuration's fingerprint)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tfsbench.bench.orchestrate.config_file import suggest
from tfsbench.bench.results import RunConfig
from tfsbench.payloads.errors import InputError

KINDS: tuple[str, ...] = ("text", "image", "numeric", "auto")
FORMATS: tuple[str, ...] = ("row", "columnar")
ENGINES: tuple[str, ...] = ("fast", "aiohttp")
ARRIVALS: tuple[str, ...] = ("constant", "poisson")


def run_id(config: RunConfig) -> str:
    """A stable, filename-safe id such as `numeric-b8-row-c4` or `text-b1-columnar-r50`."""
    if config.mode == "closed":
        load = f"c{config.concurrency}"
    else:
        load = f"r{_fmt_rate(config.rate_rps)}"
    raw = f"{config.kind}-b{config.batch_size}-{config.format}-{load}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in raw)


def _fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "none"
    return f"{rate:g}".replace("+", "")


def _unique(values: Sequence[Any]) -> tuple[Any, ...]:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return tuple(seen)


def _is_positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _is_positive_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
            and value > 0)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The grid around one base configuration. `{kind}` in `base.model` is replaced by each kind
    (so `model = "{kind}"` sweeps the embedded target's three demo models). Exactly one of
    `concurrencies` (closed loop) or `rates` (open loop) may be given; with neither, the base
    configuration's own load level is the only one."""

    base: RunConfig
    kinds: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    formats: tuple[str, ...]
    concurrencies: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.concurrencies and self.rates:
            raise InputError("a sweep takes either concurrency levels or rates, not both")
        for name in ("kinds", "batch_sizes", "formats"):
            if not getattr(self, name):
                raise InputError(f"sweep {name.replace('_', ' ')} must not be empty")
        for b in self.batch_sizes:
            if not _is_positive_int(b):
                raise InputError(f"sweep batch size {b!r} is not a positive integer")
        for c in self.concurrencies:
            if not _is_positive_int(c):
                raise InputError(f"sweep concurrency {c!r} is not a positive integer")
        for r in self.rates:
            if not _is_positive_number(r):
                raise InputError(f"sweep rate {r!r} is not a positive number")
        for f in self.formats:
            if f not in FORMATS:
                raise InputError(f"sweep format {f!r} is not one of {', '.join(FORMATS)}{suggest(f, FORMATS)}")

    def configs(self) -> list[RunConfig]:
        """Every run of the grid in a fixed order: kind, batch size, format, then load level."""
        out: list[RunConfig] = []
        for kind in _unique(self.kinds):
            model = self.base.model.replace("{kind}", kind)
            for batch in _unique(self.batch_sizes):
                for fmt in _unique(self.formats):
                    payload = dataclasses.replace(self.base, model=model, kind=kind, batch_size=batch, format=fmt)
                    out.extend(self._load_levels(payload))
        return out

    def _load_levels(self, payload: RunConfig) -> list[RunConfig]:
        """One payload configuration at each load level of the plan."""
        if self.concurrencies:
            return [dataclasses.replace(payload, mode="closed", concurrency=c, rate_rps=None, arrival=None)
                    for c in _unique(self.concurrencies)]
        if self.rates:
            return [dataclasses.replace(payload, mode="open", rate_rps=r, concurrency=None,
                                        arrival=self.base.arrival or "constant")
                    for r in _unique(tuple(float(x) for x in self.rates))]
        return [payload]

    def run_ids(self) -> list[str]:
        return [run_id(c) for c in self.configs()]

    def planned_seconds(self) -> float:
        return sum(planned_s(c) for c in self.configs())


def planned_s(config: RunConfig) -> float:
    """Seconds a run is planned to take (measurement plus warmup; 0 for request-count runs)."""
    return (config.duration_s or 0.0) + (config.warmup_s or 0.0)


def fingerprint(config: RunConfig) -> str:
    """sha256 of the canonical JSON of a configuration: what 'the same run' means for resume."""
    doc = json.dumps(plain(dataclasses.asdict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def plain(obj: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, so JSON of equal configurations is equal."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj
