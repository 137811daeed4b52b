"""Sweeps: a grid of runs (payload kind x batch size x format x load level), one result file per
run written as soon as it finishes, a manifest rewritten after each run, and resume.

A sweep is long, and long jobs get interrupted. So every finished run is on disk (atomically)
before the next one starts, the manifest always lists exactly the finished runs, and running the
same sweep again skips every run whose file is a valid, complete result of the same configuration.

Manifest (`out_dir/manifest.json`, rewritten atomically after each run):
    {"type": "tfsbench.manifest", "schema_version": 1, "kind": "sweep",
     "runs": ["numeric-b8-row-c4.json", ...],   # finished, complete runs, in plan order
     "planned": ["numeric-b1-row-c1", ...],     # every run id of the plan
     "partial": ["numeric-b8-row-c16.json"],    # interrupted runs (redone on resume)
     "failed": {run_id: "RuntimeError: ..."},    # runs whose engine crashed (redone on resume)
     "complete": false, "interrupted": true, "fingerprints": {run_id: sha256 of its config, 16 hex},
     "slo": null, "search": null, "thresholds": [...], "updated_at": "..."}

Sweeps and searches share this manifest shape (`kind` "sweep" or "search").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfsbench.bench.orchestrate import config_file as cf
from tfsbench.bench.results import (
    MANIFEST_TYPE,
    ResultError,
    RunConfig,
    RunResult,
    load_result,
    read_json,
    save_result,
    write_json_atomic,
)
from tfsbench.payloads.errors import InputError

MANIFEST_SCHEMA_VERSION = 1
KINDS: tuple[str, ...] = ("text", "image", "numeric", "auto")
FORMATS: tuple[str, ...] = ("row", "columnar")
ENGINES: tuple[str, ...] = ("fast", "aiohttp")
ARRIVALS: tuple[str, ...] = ("constant", "poisson")

# Fields compared when a result file exists but the manifest has no fingerprint for it (the
# process was killed between writing the result and the manifest).
_IDENTITY_FIELDS = ("url", "model", "kind", "batch_size", "format", "mode", "concurrency", "rate_rps",
                    "duration_s", "warmup_s", "requests_limit", "engine", "processes")


# ---- the grid ---------------------------------------------------------------------------------


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
            if isinstance(b, bool) or not isinstance(b, int) or b < 1:
                raise InputError(f"sweep batch size {b!r} is not a positive integer")
        for c in self.concurrencies:
            if isinstance(c, bool) or not isinstance(c, int) or c < 1:
                raise InputError(f"sweep concurrency {c!r} is not a positive integer")
        for r in self.rates:
            if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r) or r <= 0:
                raise InputError(f"sweep rate {r!r} is not a positive number")
        for f in self.formats:
            if f not in FORMATS:
                raise InputError(f"sweep format {f!r} is not one of {', '.join(FORMATS)}{cf.suggest(f, FORMATS)}")

    def configs(self) -> list[RunConfig]:
        """Every run of the grid in a fixed order: kind, batch size, format, then load level."""
        out: list[RunConfig] = []
        for kind in _unique(self.kinds):
            model = self.base.model.replace("{kind}", kind)
            for batch in _unique(self.batch_sizes):
                for fmt in _unique(self.formats):
                    common = dict(model=model, kind=kind, batch_size=batch, format=fmt)
                    if self.concurrencies:
                        for c in _unique(self.concurrencies):
                            out.append(dataclasses.replace(
                                self.base, **common, mode="closed", concurrency=c, rate_rps=None, arrival=None))
                    elif self.rates:
                        for r in _unique(tuple(float(x) for x in self.rates)):
                            out.append(dataclasses.replace(
                                self.base, **common, mode="open", rate_rps=r, concurrency=None,
                                arrival=self.base.arrival or "constant"))
                    else:
                        out.append(dataclasses.replace(self.base, **common))
        return out

    def run_ids(self) -> list[str]:
        return [run_id(c) for c in self.configs()]

    def planned_seconds(self) -> float:
        return sum(_planned_s(c) for c in self.configs())


def _planned_s(config: RunConfig) -> float:
    return (config.duration_s or 0.0) + (config.warmup_s or 0.0)


def fingerprint(config: RunConfig) -> str:
    """sha256 of the canonical JSON of a configuration: what 'the same run' means for resume."""
    doc = json.dumps(_plain(dataclasses.asdict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


# ---- config files -----------------------------------------------------------------------------

SWEEP_KEYS: tuple[str, ...] = (
    "url", "model", "version", "label", "signature", "kinds", "batch_sizes", "formats", "concurrency",
    "rates", "arrival", "duration", "warmup", "requests", "engine", "processes", "timeout", "seed",
    "max_inflight", "pool_size", "out", "headers",
)
TOP_KEYS: tuple[str, ...] = ("sweep", "payload", "check")
CHECK_KEYS: tuple[str, ...] = ("thresholds",)


@dataclass(frozen=True, slots=True)
class SweepFile:
    """A parsed sweep config file. `payload` is the raw [payload] table: option names of the
    `tfsbench sweep` payload flags without the dashes (the command validates them). `thresholds`
    are the [check] table's threshold strings, for `--check`."""

    plan: SweepPlan
    thresholds: tuple[str, ...] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None


def validate_url(url: str, where: str = "--url") -> str:
    """An http(s) URL with a host; the path, if any, is kept (for proxies in front of TF Serving)."""
    if not isinstance(url, str):
        raise InputError(f"{where} must be a URL string, not {url!r}")
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise InputError(f"{where} {url!r} needs an http:// or https:// scheme, e.g. http://127.0.0.1:8501")
    if not parsed.hostname:
        raise InputError(f"{where} {url!r} has no host")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"{where} {url!r} has an invalid port") from None
    return url.strip().rstrip("/")


def check_choice(value: Any, choices: Sequence[str], where: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{where} {value!r} is not one of {', '.join(choices)}{cf.suggest(str(value), choices)}")
    return value


def load_sweep_config(path: str | Path) -> SweepFile:
    """Read and validate a whole sweep file ([sweep], optional [payload] and [check]) before any load."""
    p = Path(path)
    return parse_sweep_doc(cf.load_toml(p), str(p), path=p)


def parse_sweep_doc(doc: Mapping[str, Any], source: str, *, from_flags: Sequence[str] = (),
                    path: Path | None = None) -> SweepFile:
    """Validate a sweep document (a parsed TOML file, possibly with command-line values merged
    into its [sweep] table). Keys listed in `from_flags` came from flags, and errors about them
    name the flag (`--batch-sizes`) instead of the file."""
    p = source
    cf.check_keys(doc, TOP_KEYS, f"{p}")
    sw = cf.get_table(doc, "sweep", f"{p}", required=True)
    cf.check_keys(sw, SWEEP_KEYS, f"{p} [sweep]")
    payload = cf.get_table(doc, "payload", f"{p}")
    check = cf.get_table(doc, "check", f"{p}")
    cf.check_keys(check, CHECK_KEYS, f"{p} [check]")
    flags = set(from_flags)

    def where(key: str) -> str:
        if key in flags:
            return "--" + key.replace("_", "-")
        return f"{p} [sweep] {key}"

    for required in ("url", "model", "kinds", "batch_sizes"):
        if required not in sw:
            raise InputError(f"missing --{required.replace('_', '-')} (or {required!r} in a --config file's [sweep] table)"
                             if not path else f"{p} [sweep]: missing required key {required!r}")
    url = validate_url(cf.as_str(sw["url"], where("url")), where("url"))
    model = cf.as_str(sw["model"], where("model"))
    kinds = tuple(check_choice(k, KINDS, where("kinds")) for k in cf.as_list(sw["kinds"], where("kinds")))
    batch_sizes = tuple(cf.as_positive_int(b, where("batch_sizes")) for b in cf.as_list(sw["batch_sizes"], where("batch_sizes")))
    formats = tuple(check_choice(f, FORMATS, where("formats")) for f in cf.as_list(sw.get("formats", ["row"]), where("formats")))
    if "concurrency" in sw and "rates" in sw:
        raise InputError(f"{p} [sweep]: give either 'concurrency' (closed loop) or 'rates' (open loop), not both")
    concurrencies: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    if "rates" in sw:
        rates = tuple(cf.as_positive_float(r, where("rates")) for r in cf.as_list(sw["rates"], where("rates")))
    else:
        concurrencies = tuple(cf.as_positive_int(c, where("concurrency"))
                              for c in cf.as_list(sw.get("concurrency", [1]), where("concurrency")))
    arrival = check_choice(sw.get("arrival", "constant"), ARRIVALS, where("arrival"))
    if "arrival" in sw and not rates:
        raise InputError(f"{where('arrival')} only applies to open-loop sweeps ('rates')")
    requests_limit = cf.as_positive_int(sw["requests"], where("requests")) if "requests" in sw else None
    duration_s = cf.parse_duration_s(sw["duration"], where("duration")) if "duration" in sw else None
    if duration_s is None and requests_limit is None:
        duration_s = 10.0
    warmup_s = cf.parse_duration_s(sw.get("warmup", "2s"), where("warmup"), allow_zero=True)
    version = cf.as_positive_int(sw["version"], where("version"), minimum=0) if "version" in sw else None
    label = cf.as_str(sw["label"], where("label")) if "label" in sw else None
    if version is not None and label is not None:
        raise InputError(f"{p} [sweep]: give either 'version' or 'label', not both")
    headers = cf.get_table(sw, "headers", f"{p} [sweep]")
    for k, v in headers.items():
        if not isinstance(v, str):
            raise InputError(f"{p} [sweep] headers.{k} must be a string, not {v!r}")
    base = RunConfig(
        url=url,
        model=model,
        kind=kinds[0],
        batch_size=batch_sizes[0],
        format=formats[0],
        mode="open" if rates else "closed",
        engine=check_choice(sw.get("engine", "fast"), ENGINES, where("engine")),
        version=version,
        label=label,
        signature=cf.as_str(sw["signature"], where("signature")) if "signature" in sw else None,
        concurrency=None if rates else concurrencies[0],
        rate_rps=rates[0] if rates else None,
        arrival=arrival if rates else None,
        duration_s=duration_s,
        warmup_s=warmup_s,
        requests_limit=requests_limit,
        processes=cf.as_positive_int(sw.get("processes", 1), where("processes")),
        seed=cf.as_positive_int(sw.get("seed", 0), where("seed"), minimum=0),
        timeout_s=cf.parse_duration_s(sw.get("timeout", 30), where("timeout")),
        max_inflight=cf.as_positive_int(sw["max_inflight"], where("max_inflight")) if "max_inflight" in sw else None,
        pool_size=cf.as_positive_int(sw.get("pool_size", 64), where("pool_size")),
    )
    plan = SweepPlan(base=base, kinds=kinds, batch_sizes=batch_sizes, formats=formats,
                     concurrencies=concurrencies, rates=rates)
    thresholds: tuple[str, ...] = ()
    if "thresholds" in check:
        raw = check["thresholds"]
        if not isinstance(raw, list):
            raise InputError(f"{p} [check] thresholds must be a list of strings like \"p99<50ms\"")
        thresholds = tuple(cf.as_str(t, f"{p} [check] thresholds") for t in raw)
        from tfsbench.reports.check import parse_threshold

        for t in thresholds:
            try:
                parse_threshold(t)
            except InputError as exc:
                raise InputError(f"{p} [check] thresholds: {exc}") from None
    out_dir = Path(cf.as_str(sw["out"], where("out"))) if "out" in sw else None
    return SweepFile(plan=plan, thresholds=thresholds, payload=payload, out_dir=out_dir,
                     headers={str(k): v for k, v in headers.items()}, path=path)


# ---- manifests --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest if there is a readable tfsbench manifest at `path`, else None."""
    if not path.exists():
        return None
    try:
        doc = read_json(path)
    except ResultError:
        return None
    if not isinstance(doc, dict) or doc.get("type") != MANIFEST_TYPE:
        return None
    return doc


def manifest_doc(kind: str, *, runs: Sequence[str], planned: Sequence[str], complete: bool,
                 interrupted: bool = False, partial: Sequence[str] = (), slo: str | None = None,
                 search: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": MANIFEST_TYPE,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "runs": list(runs),
        "planned": list(planned),
        "partial": list(partial),
        "complete": complete,
        "interrupted": interrupted,
        "slo": slo,
        "search": dict(search) if search is not None else None,
        "updated_at": _now(),
    }
    doc.update(extra)
    return doc


# ---- Ctrl-C -----------------------------------------------------------------------------------


@contextmanager
def stop_on_signals(stop: threading.Event, on_first: Callable[[str], None] | None = None) -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM sets `stop` (the current run ends, its partial result is kept); a second
    one raises KeyboardInterrupt at once. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    count = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        count["n"] += 1
        name = signal.Signals(signum).name
        if count["n"] == 1:
            stop.set()
            if on_first is not None:
                on_first(name)
        else:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ---- running ----------------------------------------------------------------------------------


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


def _log_to_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _reusable(path: Path, config: RunConfig, old_fp: str | None, log: Callable[[str], None]) -> RunResult | None:
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


def _preflight_key(config: RunConfig) -> tuple[Any, ...]:
    return (config.url, config.version, config.label, config.signature, *config.config_key(),
            json.dumps(_plain(dict(config.extra)), sort_keys=True, default=str))


def preflight_all(configs: Sequence[RunConfig], headers: Mapping[str, str] | None = None,
                  preflight_fn: Callable[..., Any] | None = None) -> dict[tuple[Any, ...], Any]:
    """One preflight per payload configuration, all before any load; the first failure raises."""
    if preflight_fn is None:
        from tfsbench.bench.measure.preflight import preflight as preflight_fn
    done: dict[tuple[Any, ...], Any] = {}
    for cfg in configs:
        key = _preflight_key(cfg)
        if key not in done:
            done[key] = preflight_fn(cfg, headers=headers)
    return done


def check_configs(configs: Sequence[RunConfig]) -> None:
    """Every run configuration and payload spec valid, before anything is sent."""
    from tfsbench.bench.measure.runner import check_config, payload_spec_for

    seen: set[tuple[Any, ...]] = set()
    for cfg in configs:
        check_config(cfg)
        key = _preflight_key(cfg)
        if cfg.kind != "constant" and key not in seen:
            seen.add(key)
            payload_spec_for(cfg)


def run_kwargs(headers: Mapping[str, str] | None, progress: Callable[[Any], None], stop: threading.Event,
               preflight_info: Any) -> dict[str, Any]:
    """Keyword arguments for `run_benchmark`; the preflight answer goes into environment.target."""
    kwargs: dict[str, Any] = {"headers": headers, "progress": progress, "stop": stop}
    if isinstance(preflight_info, Mapping):
        kwargs["environment"] = {"target": dict(preflight_info)}
    return kwargs


def cached_pool_factory() -> Callable[[RunConfig], Any]:
    """Build each payload configuration's body pool once: the grid order keeps the load levels of
    one payload configuration together, so a one-entry cache is enough (and bounds memory)."""
    from tfsbench.bench.measure.runner import build_pool_for

    cache: dict[str, Any] = {}

    def factory(config: RunConfig) -> Any:
        key = json.dumps([_preflight_key(config), config.seed, config.pool_size], default=str)
        if key not in cache:
            cache.clear()
            cache[key] = build_pool_for(config)
        return cache[key]

    return factory


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
) -> SweepOutcome:
    """Run the grid into `out_dir`. `pool_factory(config)` builds the payload pool for a run
    (default: the runner builds it from the config). `runner` and `preflight_fn` default to
    `tfsbench.bench.measure.runner.run_benchmark` and `tfsbench.bench.measure.preflight.preflight` (replaceable in tests).
    `on_ready()` is called once the target passed preflight, just before the first load."""
    if runner is None:
        from tfsbench.bench.measure.runner import run_benchmark as runner

        pool_factory = pool_factory or cached_pool_factory()
    log = log or _log_to_stderr
    stop = stop or threading.Event()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    manifest_path = out_dir / "manifest.json"
    configs = plan.configs()
    ids = [run_id(c) for c in configs]
    if len(set(ids)) != len(ids):
        raise InputError("sweep grid has duplicate run ids; check the model template and kinds")

    old = read_manifest(manifest_path) if resume else None
    if old is not None and old.get("kind") not in (None, "sweep"):
        raise InputError(f"{out_dir}: holds a {old.get('kind')!r} manifest, not a sweep; choose another --out")
    old_fps: Mapping[str, str] = (old or {}).get("fingerprints") or {}

    finished: dict[str, RunResult] = {}
    skipped_ids: list[str] = []
    if resume:
        for rid, cfg in zip(ids, configs, strict=True):
            prev = _reusable(out_dir / f"{rid}.json", cfg, old_fps.get(rid), log)
            if prev is not None:
                finished[rid] = prev
                skipped_ids.append(rid)
                log(f"skipped {rid}: already finished ({out_dir / (rid + '.json')})")
    todo = [(rid, cfg) for rid, cfg in zip(ids, configs, strict=True) if rid not in finished]

    check_configs([cfg for _, cfg in todo])
    preflights = preflight_all([cfg for _, cfg in todo], headers, preflight_fn) if todo else {}
    if on_ready is not None:
        on_ready()

    partial: dict[str, RunResult] = {}
    failed: dict[str, str] = {}  # run id -> what went wrong (an engine crash, not a server error)
    fps = {rid: fingerprint(cfg) for rid, cfg in zip(ids, configs, strict=True)}
    state = {"interrupted": False}

    def write_manifest() -> None:
        runs = [f"{rid}.json" for rid in ids if rid in finished]
        write_json_atomic(manifest_path, manifest_doc(
            "sweep",
            runs=runs,
            planned=ids,
            partial=[f"{rid}.json" for rid in ids if rid in partial],
            complete=len(finished) == len(ids),
            interrupted=state["interrupted"],
            thresholds=list(thresholds),
            failed=dict(failed),
            fingerprints={rid: fps[rid] for rid in ids if rid in finished or rid in partial},
        ))

    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest()

    bar = _SweepProgress(todo, enabled=progress)
    try:
        with bar:
            for index, (rid, cfg) in enumerate(todo):
                if stop.is_set():
                    state["interrupted"] = True
                    break
                bar.start_run(index, rid, cfg)
                kwargs = run_kwargs(headers, bar.update, stop, preflights.get(_preflight_key(cfg)))
                try:
                    if pool_factory is not None:
                        kwargs["pool"] = pool_factory(cfg)
                    result = runner(cfg, **kwargs)
                except Exception as exc:  # noqa: BLE001 - one broken run must not cost the others
                    failed[rid] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                    log(f"run {rid} failed ({failed[rid]}); continuing with the next run")
                    bar.finish_run(rid, None)
                    write_manifest()
                    continue
                save_result(result, out_dir / f"{rid}.json")
                if result.partial:
                    partial[rid] = result
                    state["interrupted"] = True
                    write_manifest()
                    break
                finished[rid] = result
                write_manifest()
                bar.finish_run(rid, result)
                if not progress:
                    log(f"finished {rid} ({len(finished)}/{len(ids)}): {_one_line(result)}")
    finally:
        if stop.is_set() and len(finished) < len(ids):
            state["interrupted"] = True
        write_manifest()

    done_ids = tuple(rid for rid in ids if rid in finished)
    return SweepOutcome(
        out_dir=out_dir,
        manifest_path=manifest_path,
        results=tuple(finished[rid] for rid in done_ids),
        skipped=len(skipped_ids),
        interrupted=state["interrupted"],
        planned=tuple(ids),
        finished_ids=done_ids,
        partial=tuple(partial.values()),
        skipped_ids=tuple(skipped_ids),
        failed=dict(failed),
    )


def _one_line(result: RunResult) -> str:
    s = result.summary
    return (f"{s.throughput_rps:.1f} req/s, p50 {s.latency_ms.p50:.2f} ms, p99 {s.latency_ms.p99:.2f} ms, "
            f"{s.error_count} errors{'' if s.stable else ', unstable'}")


class _SweepProgress:
    """A rich progress bar over the planned seconds of the remaining runs, with an ETA."""

    def __init__(self, todo: Sequence[tuple[str, RunConfig]], enabled: bool) -> None:
        self.enabled = enabled and bool(todo)
        self.todo = todo
        self.total_s = sum(max(_planned_s(c), 0.001) for _, c in todo)
        self.done_s = 0.0
        self.current_s = 0.0
        self.current_cfg: RunConfig | None = None
        self.label = ""
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> _SweepProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
                auto_refresh=False,  # redrawn on progress updates: see tfsbench.commands.run's bar
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("sweep", total=self.total_s)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start_run(self, index: int, rid: str, cfg: RunConfig) -> None:
        self.current_cfg = cfg
        self.current_s = max(_planned_s(cfg), 0.001)
        self.label = f"[{index + 1}/{len(self.todo)}] {rid}"
        self._show(0.0, self.label)

    def update(self, update: Any) -> None:
        if self._progress is None or self.current_cfg is None:
            return
        cfg = self.current_cfg
        elapsed = float(getattr(update, "elapsed_s", 0.0) or 0.0)
        if cfg.duration_s is None and cfg.requests_limit:
            frac = min(1.0, float(getattr(update, "requests", 0) or 0) / cfg.requests_limit)
            elapsed = frac * self.current_s
        phase = getattr(update, "phase", "")
        rps = float(getattr(update, "rps", 0.0) or 0.0)
        errors = int(getattr(update, "errors", 0) or 0)
        self._show(min(elapsed, self.current_s), f"{self.label} {phase} {rps:,.0f} req/s {errors} err")

    def finish_run(self, rid: str, result: RunResult | None) -> None:
        self.done_s += self.current_s
        self.current_cfg = None
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done_s, refresh=True)
            if result is not None:
                self._progress.console.print(f"finished {rid}: {_one_line(result)}", soft_wrap=True)

    def _show(self, run_elapsed_s: float, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done_s + run_elapsed_s, description=description,
                                  refresh=True)
