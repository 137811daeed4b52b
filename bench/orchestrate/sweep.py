"""Sweeps: a grid of runs (payload kind x batch size x format x load level), one result file per
run written as soon as it finishes, a manifest rewritten after each run, and resume.

A sweep is long, and long jobs get interrupted. So every finished run is on disk (atomically)
before the next one starts, the manifest always lists exactly the finished runs, and running the
same sweep again skips every run whose file is a valid, complete result of the same configuration.

The manifest's shape is in `manifest.py`, the grid in `grid.py`, config files in
`sweep_config.py`, the checks before any load in `prepare.py`; this module runs the grid.
Sweeps and searches share the manifest shape (`kind` "sweep" or "search").
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsbench.bench.interrupt import stop_on_signals
from tfsbench.bench.orchestrate.grid import (
    ARRIVALS,
    ENGINES,
    FORMATS,
    KINDS,
    SweepPlan,
    fingerprint,
    run_id,
)
from tfsbench.bench.orchestrate.manifest import MANIFEST_SCHEMA_VERSION, manifest_doc, read_manifest
from tfsbench.bench.orchestrate.prepare import (
    cached_pool_factory,
    check_configs,
    preflight_all,
    preflight_key,
    run_kwargs,
)
from tfsbench.bench.orchestrate.saturation import RULE as SATURATION_RULE
from tfsbench.bench.orchestrate.saturation import load_of, saturated, series_key
from tfsbench.bench.orchestrate.sweep_config import (
    CHECK_KEYS,
    SWEEP_KEYS,
    TOP_KEYS,
    SweepFile,
    check_choice,
    load_sweep_config,
    parse_sweep_doc,
    validate_url,
)
from tfsbench.bench.orchestrate.sweep_progress import SweepProgress, one_line
from tfsbench.bench.results import (
    ResultError,
    RunConfig,
    RunResult,
    load_result,
    save_result,
    write_json_atomic,
)
from tfsbench.payloads.errors import InputError

# Re-exported: callers import the sweep's vocabulary from here (search.py uses the private name).
_SweepProgress = SweepProgress
__all__ = [
    "ARRIVALS", "CHECK_KEYS", "ENGINES", "FORMATS", "KINDS", "MANIFEST_SCHEMA_VERSION", "SWEEP_KEYS", "TOP_KEYS",
    "SweepFile", "SweepOutcome", "SweepPlan", "cached_pool_factory", "check_choice", "check_configs", "fingerprint",
    "load_sweep_config", "manifest_doc", "parse_sweep_doc", "preflight_all", "read_manifest", "run_id", "run_kwargs",
    "run_sweep", "stop_on_signals", "validate_url",
]

# Fields compared when a result file exists but the manifest has no fingerprint for it (the
# process was killed between writing the result and the manifest).
_IDENTITY_FIELDS = ("url", "model", "kind", "batch_size", "format", "mode", "concurrency", "rate_rps",
                    "duration_s", "warmup_s", "requests_limit", "engine", "processes")


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    out_dir: Path
    manifest_path: Path
    results: tuple[RunResult, ...]  # complete runs (finished now or before), plan order
    skipped: int  # runs not redone because a valid result was already there
    interrupted: bool
    planned: tuple[str, ...] = ()
    finished_ids: tuple[str, ...] = ()  # ids of `results`, same order
    partial: tuple[RunResult, ...] = ()  # the run that was interrupted, if any
    skipped_ids: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)  # run id -> error, for runs that crashed
    saturated: Mapping[str, str] = field(default_factory=dict)  # run id -> why it was skipped (saturation.py)
    repeat: int = 1  # measurements per grid point (`--repeat N`)
    groups: Mapping[str, str] = field(default_factory=dict)  # run id -> its grid point's id (repeats share one)


@dataclass(frozen=True, slots=True)
class _PlannedRun:
    run_id: str
    config: RunConfig
    point: str = ""  # the grid point's id: run_id itself, or without the '-rK' of a repeat

    @property
    def file_name(self) -> str:
        return f"{self.run_id}.json"


def _log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Ledger:
    """The state of a sweep in progress (finished, partial and failed runs) and the manifest that
    mirrors it, rewritten atomically after every change."""

    def __init__(self, manifest_path: Path, planned: Sequence[_PlannedRun], thresholds: Sequence[str]) -> None:
        self.manifest_path = manifest_path
        self.planned = tuple(planned)
        self.thresholds = list(thresholds)
        self.fingerprints = {p.run_id: fingerprint(p.config) for p in planned}
        self.finished: dict[str, RunResult] = {}
        self.skipped: list[str] = []
        self.partial: dict[str, RunResult] = {}
        self.failed: dict[str, str] = {}  # run id -> what went wrong (an engine crash, not a server error)
        self.saturated: dict[str, str] = {}  # run id -> why it was skipped: its series was past saturation
        self.stop_when_saturated = True
        self.interrupted = False
        self.repeat = 1
        self.max_remeasure = 0
        self.unstable_attempts: dict[str, list[str]] = {}  # run id -> its unstable attempts (unstable/ files)

    @property
    def ids(self) -> list[str]:
        return [p.run_id for p in self.planned]

    def write(self) -> None:
        ids = self.ids
        write_json_atomic(self.manifest_path, manifest_doc(
            "sweep",
            runs=[f"{rid}.json" for rid in ids if rid in self.finished],
            planned=ids,
            partial=[f"{rid}.json" for rid in ids if rid in self.partial],
            complete=len(self.finished) + len(self.saturated) == len(ids),
            interrupted=self.interrupted,
            thresholds=self.thresholds,
            failed=dict(self.failed),
            saturated=dict(self.saturated),
            saturation_rule=SATURATION_RULE if self.stop_when_saturated else None,
            fingerprints={rid: self.fingerprints[rid] for rid in ids if rid in self.finished or rid in self.partial},
            repeat=self.repeat,
            repeats=self.repeat_files(),
            max_remeasure=self.max_remeasure,
            unstable_attempts={rid: list(files) for rid, files in self.unstable_attempts.items()},
        ))

    def repeat_files(self) -> dict[str, list[str]]:
        """Grid point id -> the finished files of its repeats (the point itself when repeat is 1)."""
        out: dict[str, list[str]] = {}
        for p in self.planned:
            files = out.setdefault(p.point or p.run_id, [])
            if p.run_id in self.finished:
                files.append(f"{p.run_id}.json")
        return out

    def outcome(self, out_dir: Path) -> SweepOutcome:
        done_ids = tuple(rid for rid in self.ids if rid in self.finished)
        return SweepOutcome(
            out_dir=out_dir,
            manifest_path=self.manifest_path,
            results=tuple(self.finished[rid] for rid in done_ids),
            skipped=len(self.skipped),
            interrupted=self.interrupted,
            planned=tuple(self.ids),
            finished_ids=done_ids,
            partial=tuple(self.partial.values()),
            skipped_ids=tuple(self.skipped),
            failed=dict(self.failed),
            saturated=dict(self.saturated),
            repeat=self.repeat,
            groups={p.run_id: p.point or p.run_id for p in self.planned},
        )


def _plan_runs(plan: SweepPlan, repeat: int = 1) -> list[_PlannedRun]:
    """Every run of the grid; with `repeat` N > 1 each grid point is measured N times in a row, as
    `ID-r1` ... `ID-rN` (the file names of `tfsbench run --repeat N`)."""
    if repeat < 1:
        raise InputError(f"--repeat must be at least 1, not {repeat}")
    planned = [_PlannedRun(rid if repeat == 1 else f"{rid}-r{k}", c, rid)
               for c in plan.configs() for rid in (run_id(c),) for k in range(1, repeat + 1)]
    if len({p.run_id for p in planned}) != len(planned):
        raise InputError("sweep grid has duplicate run ids; check the model template and kinds")
    return planned


def _checked_out_dir(out_dir: Path | str) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    return out


def _old_fingerprints(out_dir: Path, manifest_path: Path, resume: bool) -> Mapping[str, str]:
    """Fingerprints of the runs a previous sweep into `out_dir` finished (empty without resume)."""
    old = read_manifest(manifest_path) if resume else None
    if old is not None and old.get("kind") not in (None, "sweep"):
        raise InputError(f"{out_dir}: holds a {old.get('kind')!r} manifest, not a sweep; choose another --out")
    return (old or {}).get("fingerprints") or {}


def _reusable(path: Path, config: RunConfig, old_fp: str | None, log: Callable[[str], None]) -> RunResult | None:
    """The result at `path` if it is a complete result of the same configuration, else None."""
    if not path.exists():
        return None
    rid = path.stem
    try:
        result = load_result(path)
    except ResultError as exc:
        log(f"redoing {rid}: existing file is not a valid result ({exc})")
        return None
    if result.partial:
        log(f"redoing {rid}: previous attempt was interrupted ({result.partial_reason or 'partial'})")
        return None
    if old_fp is not None:
        same = old_fp == fingerprint(config)
    else:
        same = all(getattr(result.config, f) == getattr(config, f) for f in _IDENTITY_FIELDS)
    if not same:
        log(f"redoing {rid}: existing result has a different configuration")
        return None
    return result


def _take_finished(ledger: _Ledger, out_dir: Path, old_fps: Mapping[str, str], log: Callable[[str], None]) -> None:
    """Resume: count every run whose file is already a valid, complete result of its configuration."""
    for p in ledger.planned:
        prev = _reusable(out_dir / p.file_name, p.config, old_fps.get(p.run_id), log)
        if prev is not None:
            ledger.finished[p.run_id] = prev
            ledger.skipped.append(p.run_id)
            log(f"skipped {p.run_id}: already finished ({out_dir / p.file_name})")


@dataclass(frozen=True, slots=True)
class _Runner:
    """How each run is made: the benchmark function, its pool factory and its fixed arguments."""

    run: Callable[..., RunResult]
    pool_factory: Callable[[RunConfig], Any] | None
    headers: Mapping[str, str] | None
    stop: threading.Event
    preflights: Mapping[tuple[Any, ...], Any]

    def __call__(self, config: RunConfig, progress: Callable[[Any], None]) -> RunResult:
        kwargs = run_kwargs(self.headers, progress, self.stop, self.preflights.get(preflight_key(config)))
        if self.pool_factory is not None:
            kwargs["pool"] = self.pool_factory(config)
        return self.run(config, **kwargs)


def _run_todo(todo: Sequence[_PlannedRun], runner: _Runner, ledger: _Ledger, out_dir: Path, *, progress: bool,
              log: Callable[[str], None]) -> None:
    """Run the remaining runs in plan order until done, stopped or interrupted mid-run."""
    n_all = len(ledger.planned)
    # over-saturation stop (saturation.py): series key -> (load at which it stopped, why)
    series: dict[tuple, list[RunResult]] = {}
    for result in ledger.finished.values():
        series.setdefault(series_key(result.config), []).append(result)
    stopped = {key: (max(load_of(r.config) for r in runs), why) for key, runs in series.items()
               if ledger.stop_when_saturated and (why := saturated(one_per_load(runs)))}
    bar = SweepProgress([(p.run_id, p.config) for p in todo], enabled=progress)
    with bar:
        for index, p in enumerate(todo):
            if runner.stop.is_set():
                ledger.interrupted = True
                return
            key = series_key(p.config)
            if key in stopped and load_of(p.config) > stopped[key][0]:
                ledger.saturated[p.run_id] = stopped[key][1]
                log(f"skipped {p.run_id}: {stopped[key][1]}")
                ledger.write()
                continue
            bar.start_run(index, p.run_id, p.config)
            try:
                result = runner(p.config, bar.update)
            except Exception as exc:  # noqa: BLE001 - one broken run must not cost the others
                ledger.failed[p.run_id] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                log(f"run {p.run_id} failed ({ledger.failed[p.run_id]}); continuing with the next run")
                bar.finish_run(p.run_id, None)
                ledger.write()
                continue
            result = _remeasure_unstable(p, result, runner, ledger, out_dir, bar, index, log)
            save_result(result, out_dir / p.file_name)
            if result.partial:
                ledger.partial[p.run_id] = result
                ledger.interrupted = True
                ledger.write()
                return
            ledger.finished[p.run_id] = result
            series.setdefault(key, []).append(result)
            why = saturated(one_per_load(series[key])) if ledger.stop_when_saturated else None
            if why and key not in stopped:
                stopped[key] = (max(load_of(r.config) for r in series[key]), why)
            ledger.write()
            bar.finish_run(p.run_id, result)
            if not progress:
                log(f"finished {p.run_id} ({len(ledger.finished)}/{n_all}): {one_line(result)}")


def _remeasure_unstable(p: _PlannedRun, result: RunResult, runner: _Runner, ledger: _Ledger, out_dir: Path,
                        bar: SweepProgress, index: int, log: Callable[[str], None]) -> RunResult:
    """Measure a run that ended unstable again, up to `ledger.max_remeasure` times (a fresh warm-up
    and window: a spell of a shared machine has often passed). The result that counts is the last
    one, its note naming the unstable attempts, which stay on disk in `unstable/` and are listed in the
    manifest's `unstable_attempts`, never among its runs."""
    attempt = 0
    while (attempt < ledger.max_remeasure and not result.partial and not result.summary.stable
           and not runner.stop.is_set()):
        attempt += 1
        name = f"unstable/{Path(p.file_name).stem}-{attempt}.json"
        save_result(result, out_dir / name)
        ledger.unstable_attempts.setdefault(p.run_id, []).append(name)
        ledger.write()
        log(f"{p.run_id} unstable ({result.summary.stability_reason}); measuring it again")
        bar.start_run(index, p.run_id, p.config)
        result = runner(p.config, bar.update)
    return remeasured(result, attempt) if attempt else result


def remeasured(result: RunResult, attempts: int) -> RunResult:
    """`result` with its note naming the `attempts` unstable attempts before it (kept in unstable/)."""
    note = (f"{result.summary.measure_note}; " if result.summary.measure_note else "")
    note += f"measured again after {attempts} unstable attempt{'s' if attempts > 1 else ''} (see unstable/)"
    return dataclasses.replace(result, summary=dataclasses.replace(result.summary, measure_note=note))


def one_per_load(runs: Sequence[RunResult]) -> list[RunResult]:
    """The repeats of each load level reduced to their median-throughput run, so the saturation
    rule compares load levels, not the repeats of one level."""
    by_load: dict[float, list[RunResult]] = {}
    for r in runs:
        by_load.setdefault(load_of(r.config), []).append(r)
    return [sorted(rs, key=lambda r: r.summary.throughput_rps)[(len(rs) - 1) // 2] for rs in by_load.values()]


def run_sweep(
    plan: SweepPlan,
    out_dir: Path,
    *,
    resume: bool = True,
    progress: bool = True,
    headers: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
    pool_factory: Callable[[RunConfig], Any] | None = None,
    thresholds: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    runner: Callable[..., RunResult] | None = None,
    preflight_fn: Callable[..., Any] | None = None,
    on_ready: Callable[[], None] | None = None,
    stop_when_saturated: bool = True,
    repeat: int = 1,
    max_remeasure: int = 0,
) -> SweepOutcome:
    """Run the grid into `out_dir`. `pool_factory(config)` builds the payload pool for a run
    (default: the runner builds it from the config). `runner` and `preflight_fn` default to
    `tfsbench.bench.measure.runner.run_benchmark` and `tfsbench.bench.measure.preflight.preflight` (replaceable in tests).
    `on_ready()` is called once the target passed preflight, just before the first load.
    `stop_when_saturated`: skip a series' higher load levels once it is past saturation (saturation.py).
    `repeat`: measure each grid point N times (files `ID-r1.json` ... `ID-rN.json`; the manifest's
    `repeats` maps each grid point to its files).
    `max_remeasure`: measure a run that ended unstable again, up to N times (`_remeasure_unstable`)."""
    if runner is None:
        from tfsbench.bench.measure.runner import run_benchmark as runner

        pool_factory = pool_factory or cached_pool_factory()
    log = log or _log_to_stderr
    stop = stop or threading.Event()
    out_dir = _checked_out_dir(out_dir)
    manifest_path = out_dir / "manifest.json"
    ledger = _Ledger(manifest_path, _plan_runs(plan, repeat), thresholds)
    ledger.stop_when_saturated = stop_when_saturated
    ledger.repeat = repeat
    if max_remeasure < 0:
        raise InputError("--max-remeasure must be >= 0")
    ledger.max_remeasure = max_remeasure
    old_fps = _old_fingerprints(out_dir, manifest_path, resume)
    if resume:
        _take_finished(ledger, out_dir, old_fps, log)
    todo = [p for p in ledger.planned if p.run_id not in ledger.finished]

    check_configs([p.config for p in todo])
    preflights = preflight_all([p.config for p in todo], headers, preflight_fn) if todo else {}
    if on_ready is not None:
        on_ready()

    out_dir.mkdir(parents=True, exist_ok=True)
    ledger.write()
    try:
        _run_todo(todo, _Runner(runner, pool_factory, headers, stop, preflights), ledger, out_dir,
                  progress=progress, log=log)
    finally:
        if stop.is_set() and len(ledger.finished) < len(ledger.planned):
            ledger.interrupted = True
        ledger.write()
    return ledger.outcome(out_dir)
