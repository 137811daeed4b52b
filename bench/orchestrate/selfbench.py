"""`tfsbench selfbench`: how fast is the load generator itself?

A load generator that saturates before the server measures itself. This benchmark points every
client at a target that is not the bottleneck (nginx answering a static JSON body, or, without
nginx, a minimal built-in server) and, in the same run and with the same number of connections,
measures: the fast engine, the aiohttp engine, wrk (C, the reference ceiling) and Locust's
FastHttpUser (the Python tool most people use). Ratios within one run are what matter:
fast/wrk >= 0.8 and aiohttp/locust >= 2 are the targets.

On a small machine the client and the target compete for the same cores. With `pin=True` (and at
least two CPUs) the target is pinned to one CPU and every client to another (`os.sched_setaffinity`
for this process, a `preexec_fn` doing the same for subprocesses, like `taskset`): each client gets
the same single core. Measured on the shared 2-core build machine, pinning lowered every rate by
about 40% and did not steady the ratios (other jobs still land on both cores), so it is off by
default. Every tool is measured `rounds` times in rotating order, and a ratio is the median of
per-round ratios: two tools of one round run seconds apart, so background load mostly cancels.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.bench.orchestrate.selfbench_clients import (  # noqa: F401 - re-exported for benchmarks/ and tests
    LOCUSTFILE,
    REQUEST_BODY,
    WRK_PATH,
    ToolRate,
    find_locust,
    parse_locust_json,
    parse_wrk,
    run_engine,
    run_locust,
    run_wrk,
)
from tfsbench.bench.orchestrate.static_target import (  # noqa: F401 - re-exported for benchmarks/ and tests
    NGINX_PATHS,
    PREDICT_PATH,
    STATIC_BODY,
    RunningTarget,
    find_nginx,
    free_port,
    nginx_config,
    pinned,
    plan_pinning,
    serve_static,
    static_target,
    stop_process,
    wait_listening,
)
from tfsbench.payloads.errors import InputError

_stop_process = stop_process  # the name benchmarks/ used before the split


SELFBENCH_TYPE = "tfsbench.selfbench"
TARGETS = {"fast/wrk": 0.8, "aiohttp/locust": 2.0}


@dataclass(frozen=True, slots=True)
class SelfbenchResult:
    target: str  # "nginx" | "builtin"
    target_note: str
    connections: int
    duration_s: float
    rates: tuple[ToolRate, ...]
    ratios: dict[str, float | None]
    targets: dict[str, float] = field(default_factory=lambda: dict(TARGETS))
    pinning: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    rounds: int = 1
    ratio_rounds: dict[str, tuple[float, ...]] = field(default_factory=dict)  # each round's ratio

    def rate(self, tool: str) -> float | None:
        for r in self.rates:
            if r.tool == tool:
                return r.rps
        return None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["type"] = SELFBENCH_TYPE
        doc["schema_version"] = 1
        return doc


# ---- the whole benchmark ----------------------------------------------------------------------


TOOLS: tuple[str, ...] = ("wrk", "fast", "aiohttp", "locust")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def machine_info() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 0
    return {"host": platform.node(), "cpus": cpus, "python": platform.python_version(),
            "platform": platform.platform(), "machine": platform.machine()}


def _measure(tool: str, url: str, connections: int, duration_s: float, cpus: set[int] | None,
             workdir: Path) -> ToolRate:
    if tool == "wrk":
        return run_wrk(url, connections, duration_s, cpus, workdir)
    if tool == "locust":
        return run_locust(url, connections, duration_s, cpus, workdir)
    return run_engine(tool, url, connections, duration_s, cpus)


def _combine(tool: str, rounds: list[ToolRate]) -> ToolRate:
    """One ToolRate from several rounds: the median rate, the summed counts, every round's rate."""
    rated = [r for r in rounds if r.rps is not None]
    if not rated:
        return ToolRate(tool, None, note=rounds[-1].note if rounds else "not run")
    rps = statistics.median(r.rps for r in rated)  # type: ignore[misc]
    notes = sorted({r.note for r in rated if r.note})
    per_cpu = [r.rps_per_cpu for r in rated if r.rps_per_cpu]
    cpu = [r.cpu_s for r in rated if r.cpu_s]
    return ToolRate(tool, rps, requests=sum(r.requests for r in rated), errors=sum(r.errors for r in rated),
                    duration_s=round(sum(r.duration_s for r in rated), 3), note="; ".join(notes),
                    rounds_rps=tuple(round(r.rps, 1) for r in rated),  # type: ignore[arg-type]
                    cpu_s=round(sum(cpu), 3) if cpu else None,
                    rps_per_cpu=statistics.median(per_cpu) if per_cpu else None)


def run_selfbench(
    duration_s: float = 5.0,
    connections: int = 64,
    *,
    tools: Sequence[str] = TOOLS,
    rounds: int = 1,
    prefer_target: str = "nginx",
    pin: bool = False,
    log: Callable[[str], None] | None = None,
) -> SelfbenchResult:
    """Measure each client in `tools` against one static target, one after another, `rounds` times
    (the order rotates each round, so slow drifts in background load hit every tool alike); each
    tool's rate is the median of its rounds."""
    if not duration_s > 0:
        raise InputError("--duration must be positive")
    if connections < 1:
        raise InputError("--connections must be at least 1")
    if rounds < 1:
        raise InputError("--rounds must be at least 1")
    for t in tools:
        if t not in TOOLS:
            raise InputError(f"unknown selfbench tool {t!r}; choose from {', '.join(TOOLS)}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    target_cpus, client_cpus, pinning = plan_pinning() if pin else (None, None, "not pinned")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    measured: dict[str, list[ToolRate]] = {t: [] for t in tools}
    with static_target(prefer_target, target_cpus) as target, \
            tempfile.TemporaryDirectory(prefix="tfsbench-selfbench-clients-") as workdir:
        log(f"target: {target.note} at {target.url}; {pinning}")
        order = list(tools)
        for round_index in range(rounds):
            for tool in order:
                log(f"round {round_index + 1}/{rounds}: {tool}, {connections} connections for {duration_s:g} s")
                measured[tool].append(_measure(tool, target.url, connections, duration_s, client_cpus,
                                               Path(workdir)))
                if target.proc.poll() is not None:
                    raise RuntimeError(f"the {target.kind} target died during the {tool} measurement")
            order = order[1:] + order[:1]
        target_kind, target_note = target.kind, target.note
    rates = [_combine(t, measured[t]) for t in tools]
    ratio_rounds: dict[str, list[float]] = {}
    for name in ("fast/wrk", "aiohttp/locust", "fast/aiohttp"):
        a, b = name.split("/")
        pairs = zip(measured.get(a, []), measured.get(b, []), strict=False)
        ratio_rounds[name] = [r for x, y in pairs if (r := _ratio(x.rps, y.rps)) is not None]
    # Each ratio is the median of per-round ratios: the two tools of a round ran within seconds of
    # each other, so background load on a shared machine mostly cancels out.
    ratios = {name: statistics.median(v) if v else None for name, v in ratio_rounds.items()}
    per_cpu = {r.tool: r.rps_per_cpu for r in rates}
    ratios["fast/wrk per CPU-second"] = _ratio(per_cpu.get("fast"), per_cpu.get("wrk"))
    return SelfbenchResult(target=target_kind, target_note=target_note, connections=connections,
                           duration_s=duration_s, rates=tuple(rates), ratios=ratios, pinning=pinning,
                           machine=machine_info(), started_at=started, rounds=rounds,
                           ratio_rounds={k: tuple(round(x, 3) for x in v) for k, v in ratio_rounds.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfsbench.bench.orchestrate.selfbench --serve-static PORT`: the built-in target process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "--serve-static":
        serve_static(int(args[1]))
        return 0
    print("usage: python -m tfsbench.bench.orchestrate.selfbench --serve-static PORT (use `tfsbench selfbench` instead)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
