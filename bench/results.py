"""The run-result schema: the one contract between measuring (bench, locustfiles) and presenting (reports).

One JSON document per run. Records are frozen dataclasses; files carry an integer `schema_version`
(never the package version) and every older version has a migration in `_MIGRATIONS`.

Format history
--------------
1 (2026-11): first version. config, environment, summary, timeseries, HDR histograms (latency and
  open-loop schedule lag, base64 of HdrHistogram's compressed encoding, microseconds), warnings,
  partial/partial_reason.
2 (2026-11): `server`: the server's own view from TF Serving's Prometheus metrics, scraped before and
  after the measured window (bench/measure/server_metrics.py): scrape URL, whether the metric was found,
  server-side latency percentiles in ms from `:tensorflow:serving:request_latency` bucket deltas,
  request counts by status, batching queuing latency when present. None when not scraped; v1 files
  migrate to None.
3 (2026-12): runs that measure until stable. config: `until_stable` (duration_s is then the bound of
  the measured window) and `warmup_auto` (warmup_s is then the bound of a warm-up that ends when
  throughput settles). summary: `warmup_s` (the warm-up actually taken), `window_s` (the length of
  the windows the stability rule compared) and `measure_note` (what the run did: why warm-up ended,
  why measuring stopped). v2 files migrate with their fixed warm-up and no window length (0).
4 (2026-12): `windows`: a trace replay's results per window of trace time (TraceWindow: scheduled,
  sent, ok, errors, refused, offered and achieved rate, latency percentiles, schedule lag p99, late
  sends); config.arrival "trace" and config.extra["replay"] say how it was replayed. Empty for other
  runs; v3 files migrate to ().
5 (2026-12): config `protocol`: "rest" (TF Serving's REST API, JSON) or "grpc" (PredictionService,
  protobuf); for gRPC, config.url is "grpc://HOST:PORT" (grpcs:// with TLS). v4 files migrate to "rest".
6 (2026-12): summary `request_gzip_bytes`: the mean gzip-compressed size of the run's request bodies
  (payloads' size accounting of the body pool; what `--gzip` would send), the one place figures read
  it. None when unknown (Locust exports, constant bodies). v5 files migrate to None, or to the value
  of a 'request_bytes_gzip' key in config.extra (how synthetic report data carried it before).
7 (2026-12): summary `settled_s`: whole seconds at the start of the measured window that a run which
  measured until stable set aside (stability.settled_start: the seconds after them were stable, the
  whole window was not); the summary's counts, latencies and measured_s are then those of the rest.
  0 for every other run; v6 files migrate to 0.

To change the format: bump SCHEMA_VERSION, add `_migrate_N_to_N1(doc) -> doc`, register it in
`_MIGRATIONS`, add a line above, and commit an old file under tests/fixtures/results/.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsbench.payloads.errors import InputError

SCHEMA_VERSION = 7
RESULT_TYPE = "tfsbench.run"
MANIFEST_TYPE = "tfsbench.manifest"


class ResultError(InputError):
    """A results file that is unreadable, corrupt, of a newer schema, or not a tfsbench result."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What was asked for. `mode` is 'closed' (concurrency) or 'open' (rate_rps + arrival)."""

    url: str
    model: str
    kind: str  # text | image | numeric | auto | constant (selfbench) | locust user kind
    batch_size: int
    format: str  # row | columnar
    mode: str  # closed | open
    engine: str  # aiohttp | fast | locust
    version: int | None = None
    label: str | None = None
    signature: str | None = None
    concurrency: int | None = None
    rate_rps: float | None = None
    arrival: str | None = None  # constant | poisson (open loop only)
    duration_s: float | None = None
    warmup_s: float = 0.0
    requests_limit: int | None = None
    processes: int = 1
    seed: int = 0
    timeout_s: float = 30.0
    max_inflight: int | None = None
    pool_size: int = 64
    source: str = "tfsbench"  # tfsbench | locust
    extra: Mapping[str, Any] = field(default_factory=dict)
    until_stable: bool = False  # v3: measure until stable, at most duration_s
    warmup_auto: bool = False  # v3: warm up until throughput settles, at most warmup_s
    protocol: str = "rest"  # v5: rest | grpc

    def label_text(self) -> str:
        """A short human name for this configuration, e.g. 'numeric b=8 row c=4'."""
        load = f"c={self.concurrency}" if self.mode == "closed" else f"r={_num(self.rate_rps)}/s"
        return f"{self.kind} b={self.batch_size} {self.encoding} {load}"

    @property
    def encoding(self) -> str:
        """How requests were encoded: the JSON format for REST ('row', 'columnar'), 'grpc' for gRPC."""
        return "grpc" if self.protocol == "grpc" else self.format

    def config_key(self) -> tuple[str, str, int, str]:
        """What identifies a payload configuration, independent of the load level (the protocol is
        part of it: a gRPC run and a REST run of one payload are two configurations)."""
        return (self.model, self.kind, self.batch_size, self.encoding)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency in milliseconds. Client-side: from intended send time (open loop) or actual send
    time (closed loop) to the last byte of the response body read and validated."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float
    min: float = 0.0
    stdev: float = 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int  # completed attempts in the measured window (ok + sum(errors))
    ok: int
    errors: Mapping[str, int]  # class -> count, e.g. {"http_503": 4, "timeout": 1, "reset": 2}
    throughput_rps: float  # ok responses per second over the measured window
    throughput_ips: float  # instances per second = throughput_rps * batch_size
    latency_ms: LatencySummary
    request_bytes: float  # mean wire bytes per request body
    response_bytes: float  # mean bytes per response body
    raw_bytes: float  # mean raw tensor bytes per request (pool size accounting)
    stable: bool
    stability_reason: str
    measured_s: float = 0.0  # length of the measured window
    offered_rps: float | None = None  # open loop: the schedule's rate
    schedule_lag_ms: LatencySummary | None = None  # open loop: actual - intended send time
    late_requests: int = 0  # open loop: sent more than 1 ms after their intended time
    refused_inflight: int = 0  # open loop: not sent because --max-inflight was reached
    client_cpu_pct: float = 0.0  # load generator CPU, percent of one core, per process (max)
    client_saturated: bool = False
    error_samples: tuple[str, ...] = ()  # first error bodies/messages, trimmed
    warmup_s: float = 0.0  # v3: the warm-up actually taken (it ends early when throughput settles)
    window_s: float = 0.0  # v3: length of each window the stability rule compared (0: unknown)
    measure_note: str = ""  # v3: why warm-up ended and why measuring stopped
    request_gzip_bytes: float | None = None  # v6: mean gzip-compressed request body (pool accounting)
    settled_s: float = 0.0  # v7: measured seconds set aside at the start (measure until stable); 0 for most runs

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class TimePoint:
    """One second of the run (t_s counts from the start of the measured window; warmup is < 0)."""

    t_s: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class TraceWindow:
    """v4: one window of a trace replay, in trace time (t_s from the trace's start; rates are per
    second of trace time, so they compare with the trace whatever --speed was)."""

    t_s: float
    duration_s: float
    scheduled: int  # requests the (scaled) trace has in this window
    sent: int
    ok: int
    errors: int
    refused: int  # not sent: --max-inflight requests were in flight
    offered_rps: float
    throughput_rps: float  # ok responses per second of trace time
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    lag_p99_ms: float | None  # how late requests left (wall time)
    late: int  # sent more than 1 ms after their intended time


@dataclass(frozen=True, slots=True)
class RunResult:
    config: RunConfig
    environment: Mapping[str, Any]
    summary: Summary
    timeseries: tuple[TimePoint, ...] = ()
    histogram: str | None = None  # latency, HdrHistogram compressed+base64, microseconds
    lag_histogram: str | None = None  # open-loop schedule lag, same encoding
    warnings: tuple[str, ...] = ()
    partial: bool = False
    partial_reason: str | None = None
    started_at: str = ""  # ISO 8601 wall clock, UTC
    server: Mapping[str, Any] | None = None  # v2: the server's view (bench/measure/server_metrics.py)
    windows: tuple[TraceWindow, ...] = ()  # v4: trace replay, per window of trace time
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        doc = _plain(dataclasses.asdict(self))
        doc["type"] = RESULT_TYPE
        doc["schema_version"] = SCHEMA_VERSION
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "<dict>") -> RunResult:
        doc = migrate(doc, source)
        if _too_deep(doc, MAX_DEPTH):
            raise ResultError(f"{source}: not a valid tfsbench result (nested deeper than {MAX_DEPTH} levels)")
        try:
            cfg = doc["config"]
            summ = dict(doc["summary"])
            _check_types(cls, doc, "result")
            _check_types(RunConfig, cfg, "config")
            _check_types(Summary, summ, "summary")
            _check_types(LatencySummary, summ["latency_ms"], "summary.latency_ms")
            if summ.get("schedule_lag_ms") is not None:
                _check_types(LatencySummary, summ["schedule_lag_ms"], "summary.schedule_lag_ms")
            if not isinstance(doc.get("timeseries", []), list):
                raise TypeError("timeseries must be a list")
            for i, point in enumerate(doc.get("timeseries", ())):
                _check_types(TimePoint, point, f"timeseries[{i}]")
            if not isinstance(doc.get("windows", []), list):
                raise TypeError("windows must be a list")
            for i, window in enumerate(doc.get("windows", ())):
                _check_types(TraceWindow, window, f"windows[{i}]")
            _check_values(doc, cfg, summ)
            summ["latency_ms"] = LatencySummary(**summ["latency_ms"])
            if summ.get("schedule_lag_ms") is not None:
                summ["schedule_lag_ms"] = LatencySummary(**summ["schedule_lag_ms"])
            summ["error_samples"] = tuple(summ.get("error_samples", ()))
            return cls(
                config=RunConfig(**cfg),
                environment=doc.get("environment", {}),
                summary=Summary(**summ),
                timeseries=tuple(TimePoint(**p) for p in doc.get("timeseries", ())),
                histogram=doc.get("histogram"),
                lag_histogram=doc.get("lag_histogram"),
                warnings=tuple(doc.get("warnings", ())),
                partial=bool(doc.get("partial", False)),
                partial_reason=doc.get("partial_reason"),
                started_at=doc.get("started_at", ""),
                server=doc.get("server"),
                windows=tuple(TraceWindow(**w) for w in doc.get("windows", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultError(f"{source}: not a valid tfsbench result ({_describe(exc)})") from None


MAX_DEPTH = 32  # results are about 5 levels deep; deeper is hostile (recursion in renderers)


def _too_deep(doc: Any, limit: int) -> bool:
    """True if containers nest deeper than `limit` (iterative: a deep document cannot recurse us)."""
    stack = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


_JSON_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_types(cls: type, values: Any, where: str) -> None:
    """Scalar fields must hold their declared JSON type, so that a hand-edited or foreign file fails
    on load with one line instead of deep inside a report or a gate (`"requests": "many"`)."""
    if not isinstance(values, Mapping):
        raise TypeError(f"{where} must be an object, got {type(values).__name__}")
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        declared = str(f.type)
        if declared == "Mapping[str, int]":
            if not isinstance(value, Mapping) or any(
                    isinstance(v, bool) or not isinstance(v, int) for v in value.values()):
                raise TypeError(f"{where}.{f.name} must map names to integers, got {value!r:.80}")
            continue
        parts = [part.strip() for part in declared.split("|")]
        if not all(part in _JSON_TYPES or part == "None" for part in parts):
            continue  # nested records and containers are checked by their own constructors
        if value is None and "None" in parts:
            continue
        allowed = tuple(t for part in parts if part in _JSON_TYPES for t in _JSON_TYPES[part])
        if not isinstance(value, allowed) or (isinstance(value, bool) and "bool" not in parts):
            raise TypeError(f"{where}.{f.name} must be {declared}, got {value!r:.80}")


def _field_error(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}")


def _finite(where: str, value: Any, *, minimum: float | None = 0.0, optional: bool = False) -> None:
    """A number that figures and gates can use: finite and, for counts/times/sizes, not negative."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _field_error(where, f"must be a number, got {value!r:.60}")
    if not math.isfinite(value):
        raise _field_error(where, f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise _field_error(where, f"must be >= {minimum:g}, got {value!r:.60}")


def _str_list(where: str, value: Any) -> None:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _field_error(where, "must be a list of strings")


def _optional(where: str, value: Any, kinds: type | tuple[type, ...], what: str) -> None:
    if value is not None and not isinstance(value, kinds):
        raise _field_error(where, f"must be {what} or null, got {type(value).__name__}")


def _check_latency(where: str, values: Mapping[str, Any]) -> None:
    for f in dataclasses.fields(LatencySummary):
        if f.name in values:
            _finite(f"{where}.{f.name}", values[f.name])


def _check_server(server: Any) -> None:
    """The server's view (bench/measure/server_metrics.py): every field the reports read, checked."""
    if server is None:
        return
    if not isinstance(server, Mapping):
        raise _field_error("server", f"must be an object or null, got {type(server).__name__}")
    for key in ("scrape_url", "error", "model_name", "api"):
        _optional(f"server.{key}", server.get(key), str, "a string")
    _optional("server.found", server.get("found"), bool, "true/false")
    _finite("server.window_s", server.get("window_s"), optional=True)
    requests = server.get("requests")
    if requests is not None and (isinstance(requests, bool) or not isinstance(requests, int) or requests < 0):
        raise _field_error("server.requests", f"must be a count >= 0, got {requests!r:.60}")
    for key in ("latency_ms", "batching_queuing_latency_ms"):
        value = server.get(key)
        _optional(f"server.{key}", value, Mapping, "an object")
        for name, number in (value or {}).items():
            _finite(f"server.{key}.{name}", number)
    buckets = server.get("latency_buckets_us") or []
    if not isinstance(buckets, list):
        raise _field_error("server.latency_buckets_us", "must be a list of [bound, count]")
    for i, pair in enumerate(buckets):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise _field_error(f"server.latency_buckets_us[{i}]", "must be [bound, count]")
        if pair[0] != "+Inf":
            _finite(f"server.latency_buckets_us[{i}][0]", pair[0], minimum=None)
        _finite(f"server.latency_buckets_us[{i}][1]", pair[1])
    counts = server.get("request_count_by_status") or {}
    if not isinstance(counts, Mapping) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counts.values()):
        raise _field_error("server.request_count_by_status", "must map statuses to counts >= 0")


def _check_values(doc: Mapping[str, Any], cfg: Mapping[str, Any], summ: Mapping[str, Any]) -> None:
    """Values, not just types: no NaN or infinity, no negative counts, times or sizes, containers
    where containers belong. A file that passes can be drawn, compared and gated without surprises."""
    if not isinstance(doc.get("environment", {}), Mapping):
        raise _field_error("environment", f"must be an object, got {type(doc.get('environment')).__name__}")
    if not isinstance(cfg.get("extra", {}), Mapping):
        raise _field_error("config.extra", "must be an object")
    _finite("config.batch_size", cfg.get("batch_size"), minimum=1)
    for key in ("concurrency", "processes", "pool_size"):
        _finite(f"config.{key}", cfg.get(key), minimum=1, optional=True)
    for key in ("rate_rps", "duration_s", "warmup_s", "timeout_s", "requests_limit", "max_inflight"):
        _finite(f"config.{key}", cfg.get(key), optional=True)
    for key in ("requests", "ok", "late_requests", "refused_inflight", "throughput_rps", "throughput_ips",
                "request_bytes", "response_bytes", "raw_bytes", "measured_s", "client_cpu_pct"):
        _finite(f"summary.{key}", summ.get(key), optional=key not in ("requests", "ok"))
    _finite("summary.offered_rps", summ.get("offered_rps"), optional=True)
    _finite("summary.request_gzip_bytes", summ.get("request_gzip_bytes"), optional=True)
    for name, count in summ.get("errors", {}).items():
        _finite(f"summary.errors.{name}", count)
    if summ["ok"] > summ["requests"]:
        raise _field_error("summary.ok", f"{summ['ok']} is more than summary.requests ({summ['requests']})")
    _check_latency("summary.latency_ms", summ["latency_ms"])
    if summ.get("schedule_lag_ms") is not None:
        _check_latency("summary.schedule_lag_ms", summ["schedule_lag_ms"])
    if "error_samples" in summ:
        _str_list("summary.error_samples", summ["error_samples"])
    for i, point in enumerate(doc.get("timeseries", ())):
        _finite(f"timeseries[{i}].t_s", point.get("t_s"), minimum=None)
        for key in ("requests", "errors"):
            _finite(f"timeseries[{i}].{key}", point.get(key))
        for key in ("p50_ms", "p99_ms"):
            _finite(f"timeseries[{i}].{key}", point.get(key), optional=True)
    if "warnings" in doc:
        _str_list("warnings", doc["warnings"])
    for key in ("histogram", "lag_histogram", "partial_reason"):
        _optional(key, doc.get(key), str, "a string")
    _optional("partial", doc.get("partial"), bool, "true/false")
    if not isinstance(doc.get("started_at", ""), str):
        raise _field_error("started_at", "must be a string")
    _check_server(doc.get("server"))


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc).splitlines()[0]


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}"


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


# ---- migrations -------------------------------------------------------------------------------


def _migrate_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """v1 had no server view: runs measured before it was scraped say so with None."""
    out = dict(doc)
    out.setdefault("server", None)
    return out


def _migrate_2_to_3(doc: dict[str, Any]) -> dict[str, Any]:
    """v2 runs had a fixed warm-up and a fixed length; the window length was not recorded."""
    out = dict(doc)
    if not isinstance(out.get("config"), Mapping) or not isinstance(out.get("summary"), Mapping):
        return out  # not a valid result: from_dict says so in one line
    config = dict(out["config"])
    summary = dict(out["summary"])
    config.setdefault("until_stable", False)
    config.setdefault("warmup_auto", False)
    warmup = config.get("warmup_s", 0.0)
    summary.setdefault("warmup_s", warmup if isinstance(warmup, int | float) else 0.0)
    summary.setdefault("window_s", 0.0)
    summary.setdefault("measure_note", "")
    out["config"], out["summary"] = config, summary
    return out


def _migrate_3_to_4(doc: dict[str, Any]) -> dict[str, Any]:
    """v3 had no trace replay: no windows."""
    out = dict(doc)
    out.setdefault("windows", [])
    return out


def _migrate_4_to_5(doc: dict[str, Any]) -> dict[str, Any]:
    """Before v5 every run spoke REST."""
    out = dict(doc)
    if isinstance(out.get("config"), Mapping):
        out["config"] = {**out["config"], "protocol": out["config"].get("protocol", "rest")}
    return out


def _migrate_5_to_6(doc: dict[str, Any]) -> dict[str, Any]:
    """v6 records the gzip size in the summary; before, only synthetic data carried it (config.extra)."""
    out = dict(doc)
    extra = out.get("config", {}).get("extra") if isinstance(out.get("config"), Mapping) else None
    legacy = extra.get("request_bytes_gzip") if isinstance(extra, Mapping) else None
    if isinstance(out.get("summary"), Mapping):
        gzip_bytes = float(legacy) if isinstance(legacy, int | float) and not isinstance(legacy, bool) else None
        out["summary"] = {**out["summary"], "request_gzip_bytes": out["summary"].get("request_gzip_bytes", gzip_bytes)}
    return out


def _migrate_6_to_7(doc: dict[str, Any]) -> dict[str, Any]:
    """v7 records the seconds a run set aside at the start of its measured window; none before."""
    out = dict(doc)
    if isinstance(out.get("summary"), Mapping):
        out["summary"] = {**out["summary"], "settled_s": out["summary"].get("settled_s", 0.0)}
    return out


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5, 5: _migrate_5_to_6,
    6: _migrate_6_to_7}


def migrate(doc: Mapping[str, Any], source: str = "<dict>") -> dict[str, Any]:
    """Bring a result document of any known version up to SCHEMA_VERSION."""
    if not isinstance(doc, Mapping) or doc.get("type") != RESULT_TYPE:
        raise ResultError(f"{source}: not a tfsbench result file (no \"type\": \"{RESULT_TYPE}\")")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ResultError(f"{source}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ResultError(
            f"{source}: schema_version {version} is newer than this tfsbench supports "
            f"({SCHEMA_VERSION}); upgrade tfsbench"
        )
    out = dict(doc)
    while version < SCHEMA_VERSION:
        out = _MIGRATIONS[version](out)
        version += 1
        out["schema_version"] = version
    return out


# ---- files ------------------------------------------------------------------------------------


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new temporary file next to the target, created with mode 0o666 so that the kernel applies
    the umask exactly as open() does for any file. The umask is never read or changed: setting it,
    even for a moment, races with other threads creating files (they would get mode 0o666)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: cannot create a temporary file for {name}")


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a crash right after could otherwise lose the new name)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # platforms without directory fds (Windows): the rename is as durable as it gets
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file so that readers see the old file or the whole new one, never half of it
    (temporary file in the same folder, fsync, rename, fsync of the folder). Permissions follow the
    umask, as open() does. The one writer of every file tfsbench produces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text, atomically (see write_bytes_atomic)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    """Write JSON atomically (see write_bytes_atomic); NaN and Infinity are refused, not written."""
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def save_result(result: RunResult, path: str | os.PathLike[str]) -> None:
    write_json_atomic(path, result.to_dict())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning every failure into one clear ResultError line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ResultError(f"{p}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"{p}: cannot read ({_describe(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"{p}: corrupt JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ResultError(f"{p}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise ResultError(f"{p}: corrupt JSON ({_describe(exc)})") from None


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A sweep/search manifest with the fields readers use checked (`runs` names files in its folder)."""
    doc = read_json(path)
    if not isinstance(doc, Mapping) or doc.get("type") != MANIFEST_TYPE:
        raise ResultError(f"{path}: not a tfsbench manifest")
    runs = doc.get("runs", [])
    if not isinstance(runs, list):
        raise ResultError(f"{path}: runs: must be a list of file names")
    for i, name in enumerate(runs):
        if not isinstance(name, str) or not name or "\0" in name:
            raise ResultError(f"{path}: runs[{i}]: must be a file name, got {name!r:.60}")
    if not isinstance(doc.get("kind", "sweep"), str):
        raise ResultError(f"{path}: kind: must be a string")
    search = doc.get("search")
    if search is not None:
        if not isinstance(search, Mapping):
            raise ResultError(f"{path}: search: must be an object or null")
        try:
            _finite("search.best_rate_rps", search.get("best_rate_rps"), optional=True)
            if not isinstance(search.get("probes", []), list | type(None)):
                raise _field_error("search.probes", "must be a list")
            for j, probe in enumerate(search.get("probes") or []):
                if isinstance(probe, Mapping):
                    for key in ("rate_rps", "achieved_rps", "value_ms"):
                        _finite(f"search.probes[{j}].{key}", probe.get(key), optional=True)
        except ValueError as exc:
            raise ResultError(f"{path}: {exc}") from None
    return dict(doc)


def load_result(path: str | os.PathLike[str]) -> RunResult:
    return RunResult.from_dict(read_json(path), str(path))


def load_results(paths: list[str] | tuple[str, ...]) -> list[RunResult]:
    """Load run files, and sweep/search directories (through their manifest.json), in order."""
    out: list[RunResult] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            manifest = p / "manifest.json"
            if manifest.exists():
                doc = load_manifest(manifest)
                files = [p / name for name in doc.get("runs", ())]
            else:
                files = sorted(f for f in p.glob("*.json") if f.name != "manifest.json")
            if not files:
                raise ResultError(f"{p}: no result files in directory")
            out.extend(load_result(f) for f in files)
        else:
            out.append(load_result(p))
    return out
