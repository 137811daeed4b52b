"""Results as reports see them: inputs (run files, sweep and search directories), series of runs
that share a payload configuration, and the warnings a reader must not miss.

Figures, tables, comparisons and plans all start from here, so that "which runs belong together"
and "what is wrong with this run" are decided once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsbench.bench.results import ResultError, RunResult, load_manifest, load_results
from tfsbench.reports.latency import buckets

PERCENTILE_FIELDS: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p999", 99.9),
)
ERROR_RATE_WARN = 0.01  # warn when more than 1% of requests failed


@dataclass(frozen=True, slots=True)
class Source:
    """One command-line input: a run file, or a sweep/search directory with its manifest."""

    path: str
    kind: str  # run | sweep | search | directory
    runs: tuple[RunResult, ...]
    manifest: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        p = Path(self.path)
        return p.stem if p.suffix == ".json" else (p.name or str(p))

    @property
    def search(self) -> Mapping[str, Any] | None:
        info = self.manifest.get("search") if self.kind == "search" else None
        return info if isinstance(info, Mapping) else None


def load_sources(paths: Sequence[str]) -> list[Source]:
    """Load every input, keeping which runs came from which input (for comparisons and searches).

    Raises ResultError (one line, naming the file) for anything unreadable; nothing is written.
    """
    if not paths:
        raise ResultError("no results given")
    sources = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise ResultError(f"{raw}: no such file or directory")
        runs = tuple(load_results([raw]))
        manifest: Mapping[str, Any] = {}
        kind = "run"
        if p.is_dir():
            kind = "directory"
            mpath = p / "manifest.json"
            if mpath.exists():
                manifest = load_manifest(mpath)
                kind = "search" if manifest.get("kind") == "search" else "sweep"
        sources.append(Source(path=str(raw), kind=kind, runs=runs, manifest=manifest))
    return sources


def all_runs(sources: Iterable[Source]) -> list[RunResult]:
    return [run for src in sources for run in src.runs]


def load_of(run: RunResult) -> float:
    """The load level a run was driven at: concurrency (closed loop) or offered rate (open loop)."""
    cfg = run.config
    if cfg.mode == "closed":
        return float(cfg.concurrency or 0)
    rate = cfg.rate_rps if cfg.rate_rps is not None else run.summary.offered_rps
    return float(rate or 0.0)


def load_label(mode: str) -> str:
    return "concurrency (requests in flight)" if mode == "closed" else "offered rate (requests/s)"


def config_name(run: RunResult, *, with_model: bool = False) -> str:
    """'numeric b=8 row' (payload configuration, without the load level)."""
    cfg = run.config
    name = f"{cfg.kind} b={cfg.batch_size} {cfg.format}"
    return f"{cfg.model}: {name}" if with_model else name


def match_key(run: RunResult) -> tuple:
    """What must be equal for two runs to be compared: payload configuration and load level."""
    cfg = run.config
    return (cfg.model, cfg.kind, cfg.batch_size, cfg.format, cfg.mode, load_of(run))


@dataclass(frozen=True, slots=True)
class Series:
    """Runs of one payload configuration and mode (and input, when several are shown), by load level."""

    kind: str
    batch_size: int
    format: str
    mode: str
    model: str
    runs: tuple[RunResult, ...]
    source: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind} b={self.batch_size} {self.format}"


def series_of(runs: Iterable[RunResult], source_of: Mapping[int, str] | None = None) -> list[Series]:
    """Group runs by (model, kind, batch, format, mode[, input]), each sorted by load level.

    `source_of` maps id(run) to the name of the input it came from, so that a before and an after
    sweep become two lines instead of one zigzag."""
    groups: dict[tuple, list[RunResult]] = {}
    for run in runs:
        cfg = run.config
        src = source_of.get(id(run), "") if source_of else ""
        groups.setdefault((cfg.model, cfg.kind, cfg.batch_size, cfg.format, cfg.mode, src), []).append(run)
    out = []
    for (model, kind, b, fmt, mode, src), members in groups.items():
        members.sort(key=load_of)
        out.append(Series(kind=kind, batch_size=b, format=fmt, mode=mode, model=model, runs=tuple(members),
                          source=src))
    kind_order = {"numeric": 0, "text": 1, "image": 2}
    out.sort(key=lambda s: (kind_order.get(s.kind, 9), s.kind, s.model, s.format, s.batch_size, s.mode, s.source))
    return out


def source_map(sources: Sequence[Source]) -> dict[int, str] | None:
    """id(run) -> input name when there are several inputs with distinct names, else None."""
    names = [s.name for s in sources]
    if len(sources) < 2 or len(set(names)) < len(names):
        return None
    return {id(run): src.name for src in sources for run in src.runs}


def kinds_in(runs: Iterable[RunResult]) -> list[str]:
    order = {"numeric": 0, "text": 1, "image": 2}
    return sorted({r.config.kind for r in runs}, key=lambda k: (order.get(k, 9), k))


def knee_index(throughputs: Sequence[float], latencies_ms: Sequence[float]) -> int | None:
    """The knee of a latency-throughput curve: the point of highest 'power' (throughput / latency).

    Kleinrock's power is highest where adding load stops buying throughput and starts buying only
    queueing delay, which is the operating point a capacity planner wants to see marked.
    """
    best, best_power = None, -1.0
    for i, (x, y) in enumerate(zip(throughputs, latencies_ms, strict=True)):
        if y and y > 0 and x > 0 and math.isfinite(x) and math.isfinite(y):
            power = x / y
            if power > best_power:
                best, best_power = i, power
    return best


def min_requests_for(percentile: float) -> int:
    """Requests needed so that at least 10 of them lie above `percentile` (0-100).

    Fewer than that and the percentile is decided by a handful of requests: a p99 from 300
    requests is the third-slowest request, not a property of the server.
    """
    tail = 1.0 - percentile / 100.0
    return math.ceil(10.0 / tail) if tail > 0 else 0


def stability_text(reason: str) -> str:
    """The engine's stability reason without a leading 'unstable:' (the report adds its own)."""
    text = (reason or "").strip()
    if text.lower().startswith("unstable"):
        text = text[len("unstable"):].lstrip(" :-")
    return text or "throughput or latency kept changing"


def run_warnings(run: RunResult) -> list[str]:
    """Everything about a run that should make a reader distrust or qualify its numbers."""
    s, cfg = run.summary, run.config
    out: list[str] = []
    if run.partial:
        out.append(f"partial run ({run.partial_reason or 'interrupted'}): only part of the planned load was measured")
    if not s.stable:
        out.append(f"unstable: {stability_text(s.stability_reason)}")
    if s.client_saturated:
        out.append(
            f"load generator saturated (CPU {s.client_cpu_pct:.0f}% of a core): latency includes client "
            "queueing; use more --processes or the fast engine"
        )
    if s.requests and s.error_rate > 0:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items()))
        level = "errors" if s.error_rate >= ERROR_RATE_WARN else "a few errors"
        out.append(f"{level}: {s.error_count} of {s.requests} requests failed ({s.error_rate:.1%}; {detail})")
    if s.ok == 0:
        out.append("no successful requests: no latency was measured")
    if cfg.source == "locust":
        out.append(
            "Locust export: percentiles are rounded to ~2 significant digits and measured closed loop "
            "from the actual send time (no coordinated-omission correction)"
        )
    if not run.histogram:
        out.append("no latency histogram: spectrum and significance tests are not available for this run")
    elif buckets(run.histogram) is None:
        out.append("no latency histogram: the recorded one could not be decoded; spectrum and significance "
                   "tests are not available for this run")
    engine_says = " ".join(run.warnings).lower() + " " + (s.stability_reason or "").lower()
    if s.requests and s.requests < min_requests_for(99.0) and "too few samples" not in engine_says:
        out.append(
            f"short run: {s.requests} requests is too few for a trustworthy p99 "
            f"(need ~{min_requests_for(99.0)})"
        )
    if (s.late_requests and s.requests and s.late_requests / s.requests > 0.01
            and "intended time" not in engine_says and "sent late" not in engine_says):
        out.append(
            f"{s.late_requests} requests ({s.late_requests / s.requests:.0%}) were sent late: the load "
            "generator could not keep the schedule"
        )
    if s.refused_inflight:
        out.append(f"{s.refused_inflight} requests not sent because --max-inflight was reached")
    already = {"unstable": not s.stable, "saturat": s.client_saturated, "partial": run.partial}
    for w in run.warnings:  # the run's own warnings, unless they repeat one of the above
        if not any(key in w.lower() and flag for key, flag in already.items()):
            out.append(w)
    return _dedupe(out)


_SEVERITY = ("partial", "no successful", "unstable", "errors", "load generator saturated", "requests (")


def _severity(text: str) -> int:
    for i, prefix in enumerate(_SEVERITY):
        if text.startswith(prefix) or prefix in text[:40]:
            return i
    return len(_SEVERITY) + (1 if text.startswith(("short run", "a few errors", "Locust", "no latency")) else 0)


def report_warnings(runs: Iterable[RunResult]) -> list[tuple[str, str]]:
    """(who, what) for a report: the worst first; per-run notes that repeat across many runs
    (short runs, Locust rounding, missing histograms) folded into one line each."""
    folded = {"short run": [], "Locust export": [], "no latency histogram": []}
    items: list[tuple[int, str, str]] = []
    for run in runs:
        who = f"{run.config.label_text()} ({run.config.model})"
        for w in run_warnings(run):
            key = next((k for k in folded if w.startswith(k)), None)
            if key is not None:
                folded[key].append((who, run.summary.requests, w))
            else:
                items.append((_severity(w), who, w))
    # the same text for many runs (e.g. every run of a quick sweep "unstable: too short") is one line
    # (and the same text up to its numbers, e.g. "throughput differs by 12.3%" / "by 66.3%")
    by_text: dict[str, list[tuple[int, str, str]]] = {}
    for sev, who, w in items:
        by_text.setdefault(re.sub(r"\d+(?:[.,]\d+)*", "#", w), []).append((sev, who, w))
    merged: list[tuple[int, str, str]] = []
    for hits in by_text.values():
        if len(hits) >= 3:
            names = ", ".join(h[1] for h in hits[:8]) + (f" and {len(hits) - 8} more" if len(hits) > 8 else "")
            texts = {h[2] for h in hits}
            what = hits[0][2] if len(texts) == 1 else f"{hits[0][2]} (the others with their own numbers)"
            merged.append((hits[0][0], f"{len(hits)} runs", f"{what}: {names}"))
        else:
            merged += list(hits)
    merged.sort(key=lambda t: t[0])
    out = [(who, w) for _, who, w in merged]
    for key, hits in folded.items():
        if len(hits) == 1:
            out.append((hits[0][0], hits[0][2]))
        elif hits:
            names = ", ".join(h[0] for h in hits[:8]) + (f" and {len(hits) - 8} more" if len(hits) > 8 else "")
            if key == "short run":
                what = (f"too few requests for a trustworthy p99 (fewer than {min_requests_for(99.0)}; "
                        f"the shortest had {min(h[1] for h in hits)}): {names}")
            else:
                what = hits[0][2] + f": {names}"
            out.append((f"{len(hits)} runs", what))
    return out


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


__all__ = [
    "PERCENTILE_FIELDS",
    "ResultError",
    "Series",
    "Source",
    "all_runs",
    "config_name",
    "kinds_in",
    "knee_index",
    "load_label",
    "load_of",
    "load_sources",
    "match_key",
    "min_requests_for",
    "report_warnings",
    "run_warnings",
    "stability_text",
    "series_of",
    "source_map",
]
