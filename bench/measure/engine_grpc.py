"""The gRPC engine: TF Serving's PredictionService.Predict through grpcio's asyncio client.

Same contract as the HTTP engines (`engine.Engine`): send pre-built request number `i`, report an
`Outcome`; the drivers in `schedule.py` decide when (closed loop, open loop from intended send times),
the recorder what it means. Bodies are serialized PredictRequests (`payloads/grpc_pool.py`), sent as
bytes through a method handle without (de)serializers, so no message is built or copied under load.
Latency covers the whole unary call: the response message received and its batch size checked.

One channel (one HTTP/2 connection, streams multiplexed) per engine process, as a TF Serving client
would hold; --processes adds connections. gRPC status codes become the same error classes as HTTP
failures where they mean the same thing (see `error_class`), else `grpc_<code>`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import grpc
from tfsbench.bench.measure.engine import (
    BATCH_MISMATCH,
    INVALID_RESPONSE,
    REFUSED,
    RESET,
    RESPONSE_TOO_LARGE,
    TIMEOUT,
    Outcome,
    Target,
    ok_outcome,
    trim,
)
from tfsbench.payloads.errors import InputError

GRPC_SCHEMES = ("grpc", "grpcs")
GRPC_INVALID_ARGUMENT = "grpc_invalid_argument"  # the gRPC twin of http_400

# Core's own words when the connection, not the server, failed (UNAVAILABLE either way).
_CONNECT_WORDS = ("failed to connect", "connection refused", "connect failed", "dns resolution failed",
                  "name resolution", "handshake", "ssl")
_RESET_WORDS = ("socket closed", "connection reset", "broken pipe", "goaway", "stream removed", "eof",
                "end of tcp stream", "recvmsg", "sendmsg")


def check_grpc_url(url: str) -> tuple[str, bool]:
    """'grpc://HOST:PORT' or 'grpcs://HOST:PORT' (TLS) -> ('HOST:PORT', tls). InputError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in GRPC_SCHEMES:
        raise InputError(f"--url for --protocol grpc must be grpc://HOST:PORT or grpcs://HOST:PORT, got {url!r}")
    if not parts.hostname:
        raise InputError(f"--url has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"--url has an invalid port: {url!r}") from None
    if port is None:
        raise InputError(f"--url needs a port for gRPC (TF Serving's default is 8500): {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InputError(f"--url for gRPC is only grpc://HOST:PORT, got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", parts.scheme == "grpcs"


def grpc_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """--header 'Name: value' pairs as gRPC metadata (keys lower-case; HTTP/2 reserved ones refused)."""
    out = []
    for name, value in headers.items():
        key = name.strip().lower()
        if key in ("content-type", "content-encoding", "accept-encoding"):
            continue  # HTTP body headers of the REST pools: meaningless for gRPC
        if key.startswith(":") or key in ("te", "host", "user-agent", "grpc-timeout") or key.startswith("grpc-"):
            raise InputError(f"--header {name!r} cannot be sent as gRPC metadata (reserved by gRPC/HTTP2)")
        out.append((key, value))
    return tuple(out)


def channel_credentials() -> grpc.ChannelCredentials:
    """TLS with the system roots, or SSL_CERT_FILE when set (as the HTTP engines honour it)."""
    path = os.environ.get("SSL_CERT_FILE")
    roots = None
    if path:
        try:
            with open(path, "rb") as handle:
                roots = handle.read()
        except OSError as exc:
            raise InputError(f"SSL_CERT_FILE {path}: cannot read ({exc.strerror})") from None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def channel_options(max_response_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", int(max_response_bytes)),
        ("grpc.max_send_message_length", -1),
        ("grpc.enable_retries", 0),  # one attempt is one request, as for the HTTP engines
        ("grpc.use_local_subchannel_pool", 1),  # each engine its own connection, never a shared one
    ]


def open_channel(url: str, max_response_bytes: int) -> grpc.aio.Channel:
    address, tls = check_grpc_url(url)
    options = channel_options(max_response_bytes)
    if tls:
        return grpc.aio.secure_channel(address, channel_credentials(), options=options)
    return grpc.aio.insecure_channel(address, options=options)


def error_class(code: grpc.StatusCode, details: str) -> str:
    """A gRPC status -> the error class the recorder counts (shared with preflight and Locust)."""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TIMEOUT
    text = (details or "").lower()
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(w in text for w in _CONNECT_WORDS):
            return REFUSED
        if any(w in text for w in _RESET_WORDS):
            return RESET
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in text and "received" in text:
        return RESPONSE_TOO_LARGE
    if code == grpc.StatusCode.CANCELLED and "cancelled" not in text:
        return RESET
    return f"grpc_{code.name.lower()}"


def check_response(body: bytes, batch_size: int, validate: str) -> Outcome:
    """A complete Predict answer -> Outcome: the first output's dim 0 must be the batch size."""
    if validate != "full":
        return ok_outcome(len(body))
    from tfsbench.payloads.grpc_codec import response_batch_size

    try:
        n = response_batch_size(body)
    except InputError as exc:
        return Outcome(INVALID_RESPONSE, len(body), trim(str(exc)))
    if n != batch_size:
        return Outcome(BATCH_MISMATCH, len(body), f"response has {n} items, batch size is {batch_size}")
    return ok_outcome(len(body))


class GrpcEngine:
    """PredictionService.Predict over one grpc.aio channel."""

    name = "grpc"

    def __init__(self, target: Target) -> None:
        from tfsbench.payloads.tfs_proto import PREDICT_METHOD

        self.target = target
        self.bodies = target.bodies
        self.metadata = grpc_metadata(target.headers) or None
        self.method = PREDICT_METHOD
        self.channel: grpc.aio.Channel | None = None
        self.call: Any = None
        # the response check needs only dim 0 of the first output: parse once per distinct size
        self._batch = target.batch_size
        self._validate = target.validate
        compression = getattr(target, "compression", None)
        self._compression = grpc.Compression.Gzip if compression == "gzip" else None

    async def start(self) -> None:
        self.channel = open_channel(self.target.url, self.target.max_response_bytes)
        self.call = self.channel.unary_unary(self.method)

    async def prepare(self, connections: int) -> int:
        """Connect before the clock starts (one HTTP/2 connection carries every stream)."""
        import asyncio

        if self.channel is None or connections < 1:
            return 0
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout=min(self.target.timeout_s, 5.0))
        except TimeoutError:
            return 0
        return 1

    async def send(self, index: int) -> Outcome:
        try:
            body = await self.call(self.bodies[index], timeout=self.target.timeout_s, metadata=self.metadata,
                                   compression=self._compression)
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
            return Outcome(error_class(code, details), 0, trim(f"{code.name}: {details}"))
        return check_response(body, self._batch, self._validate)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close(grace=None)
            self.channel = None


def build_grpc_pool_for(config: Any, metadata: Any = None) -> Any:
    """The PredictRequest pool of a gRPC RunConfig (the model spec goes into every request;
    `config.extra["numeric_form"]` picks tensor_content or the *_val fields)."""
    from tfsbench.bench.measure.runner import payload_spec_for
    from tfsbench.payloads.grpc_pool import GrpcTarget, build_grpc_pool

    if metadata is None and config.kind == "auto":
        from tfsbench.bench.measure.preflight_grpc import fetch_metadata

        metadata = fetch_metadata(config)
    target = GrpcTarget(config.model, config.version, config.label, config.extra.get("numeric_form", "content"))
    return build_grpc_pool(payload_spec_for(config), target, config.pool_size, metadata)


def quiet_grpc_logs() -> None:
    """gRPC core prints its own log lines on stderr (a failed bind, a refused connect) next to ours;
    the CLI reports those conditions itself in one line. Takes effect for channels created after;
    a user's own GRPC_VERBOSITY wins."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def grpc_config(base: Any, protocol: str | None, numeric_form: str | None) -> Any:
    """A REST RunConfig turned into its gRPC twin (engine grpc, protocol grpc, numeric form), or as is."""
    import dataclasses

    if (protocol or "rest") == "rest":
        if numeric_form not in (None, "content"):
            raise InputError("--numeric-form is for --protocol grpc (REST sends JSON numbers)")
        return base
    if base.engine not in ("fast", "grpc"):
        raise InputError(f"--engine {base.engine} speaks HTTP/JSON; --protocol grpc uses the grpc engine")
    quiet_grpc_logs()
    check_grpc_url(base.url)
    extra = dict(base.extra)
    if numeric_form not in (None, "content"):
        extra["numeric_form"] = numeric_form
    return dataclasses.replace(base, protocol="grpc", engine="grpc", extra=extra)
