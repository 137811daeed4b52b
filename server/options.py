"""Options of the embedded target, and the parsers that turn command-line text into them.

Parsers raise `InputError` with one line naming the option, so the CLI, the pytest fixtures and
`serve_in_thread(**options)` all reject bad values the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tfsbench.payloads.errors import InputError
from tfsbench.server.durations import parse_duration_s
from tfsbench.server.faults import FaultPlan

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_DECOMPRESSED_BYTES = 100 * 1024 * 1024  # TF Serving's gzip cap
DEFAULT_MAX_JSON_DEPTH = 64
# Work per request (docs/safety.md): generous for real models, far below what hurts a 2-core box.
DEFAULT_MAX_INSTANCES = 100_000  # rows (dim 0) per predict request
DEFAULT_MAX_ELEMENTS = 16_777_216  # tensor elements per request, all inputs together (2**24)
# Slow or idle connections (seconds): the whole request head, the whole body, idle between requests.
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 75.0
DEFAULT_MAX_CONNECTIONS = 2048  # open connections per server process; more are closed at once

@dataclass(frozen=True, slots=True)
class ServiceTime:
    """Extra time spent per batch (per request when batching is off): fixed or exponential."""

    mean_s: float
    distribution: str = "fixed"  # fixed | exp

    def describe(self) -> str:
        prefix = "exp:" if self.distribution == "exp" else ""
        return f"{prefix}{self.mean_s * 1e3:g}ms"


def parse_service_time(text: str) -> ServiceTime | None:
    """'5ms' (fixed) or 'exp:5ms' (exponential with that mean); '0' means none."""
    raw = str(text).strip()
    distribution = "fixed"
    if ":" in raw:
        distribution, _, raw = raw.partition(":")
        distribution = distribution.strip().lower()
        if distribution not in ("fixed", "exp"):
            raise InputError(f"--service-time: unknown distribution {distribution!r} (use fixed: or exp:)")
    mean_s = parse_duration_s(raw, what="--service-time")
    if mean_s > 60:
        raise InputError(f"--service-time: {text!r} is longer than 60s")
    if mean_s == 0:
        return None
    return ServiceTime(mean_s=mean_s, distribution=distribution)


@dataclass(frozen=True, slots=True)
class BatchingOptions:
    """TF Serving's BatchingParameters (session_bundle_config.proto), the fields that shape queueing.

    Defaults follow TF Serving's own except `num_batch_threads`, which is 1 here (one CPU-bound loop).
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 1
    max_enqueued_batches: int = 10

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"batching: {name} must be a positive integer, got {value!r}")
        if (
            not isinstance(self.batch_timeout_micros, int)
            or isinstance(self.batch_timeout_micros, bool)
            or self.batch_timeout_micros < 0
        ):
            raise InputError(
                f"batching: batch_timeout_micros must be an integer >= 0, got {self.batch_timeout_micros!r}"
            )


_BATCHING_KEYS = ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")


def parse_batching(text: str) -> BatchingOptions:
    """'max_batch_size=32,batch_timeout_micros=2000,...' (any subset) -> BatchingOptions."""
    values: dict[str, int] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _BATCHING_KEYS:
            raise InputError(
                f"--batching: {item!r} is not KEY=INT with KEY one of {', '.join(_BATCHING_KEYS)}"
            )
        try:
            values[key] = int(value.strip())
        except ValueError:
            raise InputError(f"--batching: {key} must be an integer, got {value.strip()!r}") from None
    return BatchingOptions(**values)


def parse_batching_file(path: str) -> BatchingOptions:
    """Read TF Serving's batching parameters file (text proto: `max_batch_size { value: 128 }`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"--batching-parameters-file: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"--batching-parameters-file: {path}: not UTF-8 text") from None
    values: dict[str, int] = {}
    pattern = re.compile(r"(\w+)\s*\{\s*value\s*:\s*(-?\d+)\s*\}")
    for key, value in pattern.findall(text):
        if key in _BATCHING_KEYS:
            values[key] = int(value)
    stripped = pattern.sub("", re.sub(r"#.*", "", text)).strip()
    if stripped:
        raise InputError(f"--batching-parameters-file: {path}: cannot parse {stripped.split()[0]!r}")
    return BatchingOptions(**values)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Everything that shapes how the embedded target answers. Frozen: one per server."""

    enable_cors: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    service_time: ServiceTime | None = None
    batching: BatchingOptions | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    seed: int = 0
    # TF Serving's --rest_api_num_threads: requests processed at once (the rest wait their turn);
    # None = no limit. And --rest_api_timeout_in_ms: a model run longer than this answers 504.
    num_threads: int | None = None
    timeout_ms: int = 30_000
    max_instances: int = DEFAULT_MAX_INSTANCES
    max_elements: int = DEFAULT_MAX_ELEMENTS
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # TF Serving's --port: serve gRPC (PredictionService, ModelService) here too; 0 = a free port,
    # None = REST only.
    grpc_port: int | None = None

    def __post_init__(self) -> None:
        if self.num_threads is not None and (
            not isinstance(self.num_threads, int) or isinstance(self.num_threads, bool) or self.num_threads < 1
        ):
            raise InputError(f"num_threads must be a positive integer, got {self.num_threads!r}")
        if self.grpc_port is not None and (
            not isinstance(self.grpc_port, int) or isinstance(self.grpc_port, bool) or not 0 <= self.grpc_port <= 65535
        ):
            raise InputError(f"grpc_port must be 0-65535 (0 picks a free port), got {self.grpc_port!r}")
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_json_depth", "timeout_ms", "max_instances",
                     "max_elements", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 86_400:
                raise InputError(f"{name} must be a number of seconds in (0, 86400], got {value!r}")


def make_options(**overrides: object) -> ServerOptions:
    """Build ServerOptions from friendly values: strings are parsed as on the command line.

    `faults="status=503:0.1"`, `service_time="exp:5ms"`, `batching="max_batch_size=8"` or
    `batching={"max_batch_size": 8}` all work, so fixtures read like the CLI.
    """
    from tfsbench.server.faults import parse_faults

    values = dict(overrides)
    faults = values.get("faults")
    if faults is None:
        values.pop("faults", None)
    elif isinstance(faults, str):
        values["faults"] = parse_faults(faults)
    service_time = values.get("service_time")
    if isinstance(service_time, str):
        values["service_time"] = parse_service_time(service_time)
    elif isinstance(service_time, int | float):
        values["service_time"] = ServiceTime(mean_s=float(service_time)) if service_time > 0 else None
    batching = values.get("batching")
    if isinstance(batching, str):
        values["batching"] = parse_batching(batching)
    elif isinstance(batching, dict):
        values["batching"] = BatchingOptions(**batching)
    elif batching is True:
        values["batching"] = BatchingOptions()
    elif batching is False:
        values["batching"] = None
    for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        if isinstance(values.get(name), str):
            values[name] = parse_duration_s(str(values[name]), what=name)
    known = set(ServerOptions.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown server option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return ServerOptions(**values)  # type: ignore[arg-type]


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kKmMgG]i?[bB]?|[bB])?\s*$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2, "mb": 1000**2,
               "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3}


def parse_size_bytes(text: str, *, what: str = "size") -> int:
    """'1048576', '64KiB', '10MB', '1.5MiB' -> bytes (a positive integer)."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise InputError(f"{what}: {text!r} is not a size (examples: 1048576, 64KiB, 10MB)")
    value = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
    if value < 1 or value > 2**40:
        raise InputError(f"{what}: {text!r} must be between 1 byte and 1 TiB")
    return int(value)
