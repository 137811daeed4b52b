"""The one small interface both engines implement, and the response rules they share.

An engine knows how to send request number `i` of a pre-built set and report what came back as an
`Outcome`. It does not know about schedules, phases or statistics: the drivers in `tfsbench.bench.measure.schedule`
decide when to send, and `tfsbench.bench.measure.recorder` decides what a result means for the numbers. Response
validation (`classify`) lives here, once, so a result never depends on which engine produced it.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import orjson
from tfsbench.payloads.codec import response_batch_size
from tfsbench.payloads.errors import InputError

ENGINES = ("aiohttp", "fast")
ERROR_SAMPLE_CHARS = 300

# Error classes (besides http_<status>): every attempt ends as ok or exactly one of these.
TIMEOUT = "timeout"  # no complete response within --timeout (connect included)
REFUSED = "refused"  # could not connect (refused, unreachable, TLS handshake failed)
RESET = "reset"  # the connection broke or closed before a complete response
INVALID_JSON = "invalid_json"  # 200 but the body is not JSON
INVALID_RESPONSE = "invalid_response"  # 200 JSON without predictions/outputs (or unparsable HTTP)
BATCH_MISMATCH = "batch_mismatch"  # predictions/outputs length differs from the batch size
CANCELLED = "cancelled"  # still in flight when an interrupted run's grace period ended
RESPONSE_TOO_LARGE = "response_too_large"  # body over --max-response-bytes; the connection is dropped

DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20  # far above any prediction; bounds memory per request in flight

# What a 200 response must satisfy: "full" (JSON with predictions/outputs of batch length),
# "json" (any JSON), "status" (status 200 only: for selfbench against a static target).
VALIDATIONS = ("full", "json", "status")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt ended as. `error` is None for success, else an error class."""

    error: str | None
    response_bytes: int = 0
    detail: str | None = None  # error body or exception message, trimmed


OK_EMPTY = Outcome(None, 0)
_OK_BY_SIZE: dict[int, Outcome] = {}


def ok_outcome(size: int) -> Outcome:
    """The (shared, immutable) success Outcome for a response of `size` bytes. Creating a frozen
    dataclass costs about a microsecond, a noticeable share of the fast engine's per-request
    budget, and responses of one model mostly have a handful of sizes."""
    out = _OK_BY_SIZE.get(size)
    if out is None:
        out = Outcome(None, size)
        if len(_OK_BY_SIZE) < 65536:
            _OK_BY_SIZE[size] = out
    return out


@dataclass(frozen=True, slots=True)
class Target:
    """Where and what to send: everything an engine needs, picklable for engine processes."""

    url: str  # full predict URL
    bodies: tuple[bytes, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0
    batch_size: int = 1
    validate: str = "full"
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    compression: str | None = None  # gRPC only: "gzip" compresses each request message (grpc engine)


def too_large(limit: int) -> Outcome:
    return Outcome(RESPONSE_TOO_LARGE, 0, f"response body over --max-response-bytes ({limit} bytes); connection dropped")


class Engine(Protocol):
    """An HTTP client that sends pre-built request bodies; one per engine process.

    Optional fast paths the drivers use when present (the fast engine has both):
    `submit(index, done)` sends and calls `done(outcome)` later, with no task or future per request,
    plus `abort_inflight(reason)` to end what is in flight; `prepare(n)` opens n connections before
    the clock starts."""

    name: str

    async def start(self) -> None:
        """Prepare (sessions, TLS context); must not send anything."""

    async def send(self, index: int) -> Outcome:
        """Send body `index` once, wait for the whole response, classify it. Never raises for
        network or server trouble: that is an Outcome."""

    async def close(self) -> None:
        """Close connections; in-flight sends end as errors."""


def make_engine(name: str, target: Target, max_connections: int = 0) -> Engine:
    """`max_connections` caps the aiohttp connector (0 = no cap); the fast engine opens at most one
    connection per request in flight, which the driver already bounds. "grpc" speaks TF Serving's
    gRPC API (target.url is grpc://HOST:PORT, bodies are serialized PredictRequests)."""
    if name == "grpc":
        from tfsbench.bench.measure.engine_grpc import GrpcEngine

        return GrpcEngine(target)
    if name == "aiohttp":
        from tfsbench.bench.measure.engine_aiohttp import AiohttpEngine

        return AiohttpEngine(target, limit=max_connections)
    if name == "fast":
        from tfsbench.bench.measure.engine_fast import FastEngine

        return FastEngine(target)
    raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {name!r}")


def trim(text: str | bytes, limit: int = ERROR_SAMPLE_CHARS) -> str:
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", "replace")
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify(status: int, body: bytes, batch_size: int, validate: str = "full") -> Outcome:
    """Turn a complete HTTP response into an Outcome (the one place that decides 'ok')."""
    size = len(body)
    if status != 200:
        return Outcome(f"http_{status}", size, trim(body))
    if validate == "status":
        return ok_outcome(size)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Outcome(INVALID_JSON, size, "not JSON: " + trim(body, 120))
    if validate == "json":
        return ok_outcome(size)
    if not isinstance(doc, dict) or ("predictions" not in doc and "outputs" not in doc):
        return Outcome(INVALID_RESPONSE, size, "no 'predictions' or 'outputs': " + trim(body, 120))
    try:
        n = response_batch_size(doc)
    except InputError as exc:
        return Outcome(INVALID_RESPONSE, size, trim(str(exc)))
    if n != batch_size:
        return Outcome(BATCH_MISMATCH, size, f"response has {n} items, batch size is {batch_size}")
    return ok_outcome(size)


def classify_exception(exc: BaseException) -> Outcome:
    """Map a network exception to an error class (shared by both engines)."""
    import asyncio

    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Outcome(TIMEOUT, 0, "timed out")
    if isinstance(exc, ConnectionRefusedError | ssl.SSLError | ssl.CertificateError):
        return Outcome(REFUSED, 0, trim(f"{type(exc).__name__}: {exc}"))
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError | EOFError):
        return Outcome(RESET, 0, trim(f"{type(exc).__name__}: {exc}"))
    if isinstance(exc, OSError) and exc.errno is not None:
        # EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL... happen while connecting
        return Outcome(REFUSED, 0, trim(f"{type(exc).__name__}: {exc}"))
    return Outcome(RESET, 0, trim(f"{type(exc).__name__}: {exc}"))


# ---- URLs -------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """An http(s) URL with a host; returns it without a trailing slash. Only validates (the one URL
    grammar: tfsbench.bench.args.parse_url)."""
    from tfsbench.bench.args import parse_url

    return parse_url(url, "--url")


def model_url(url: str, model: str, version: int | None = None, label: str | None = None) -> str:
    """`{url}/v1/models/{model}[/versions/N|/labels/L]` (TF Serving's model path)."""
    base = f"{check_url(url)}/v1/models/{quote(model, safe='')}"
    if version is not None and label is not None:
        raise InputError("give --version or --label, not both (TF Serving rejects both)")
    if version is not None:
        base += f"/versions/{int(version)}"
    elif label is not None:
        base += f"/labels/{quote(label, safe='')}"
    return base


def predict_url(config: Any) -> str:
    """The :predict URL of a RunConfig (shared by the engines, preflight and the Locust users);
    for gRPC runs the channel address URL itself (grpc://HOST:PORT: the model is in each request)."""
    if getattr(config, "protocol", "rest") == "grpc":
        from tfsbench.bench.measure.engine_grpc import check_grpc_url

        check_grpc_url(config.url)
        return config.url
    return model_url(config.url, config.model, config.version, config.label) + ":predict"


def ssl_context_for(url: str) -> ssl.SSLContext | None:
    """Default verification (system CAs, or SSL_CERT_FILE) for https URLs; None for http."""
    if urlsplit(url).scheme != "https":
        return None
    return ssl.create_default_context()


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value), for repeatable --header options."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n") or any(c in value for c in "\r\n"):
        raise InputError(f"--header must look like 'Name: value', got {text!r}")
    return name, value.strip()


def header_dict(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        name, value = parse_header(item)
        out[name] = value
    return out
