"""The embedded TF Serving-compatible REST target: routing, limits, CORS, metrics, faults.

It behaves like `tensorflow_model_server --rest_api_port` as documented in api_rest.md and as the
code answers (http_rest_api_util.cc, http_server.cc): the same routes (case-insensitive regexes,
URL-decoded names), the same error bodies and status codes, the same metrics. Request bodies are
decoded by `tfsbench.payloads.codec`, the project's one implementation of TF Serving's JSON rules.

It is built on aiohttp's low-level server (one handler, our own routing) because the target must
stay out of the way when the suite benchmarks its own engines: no router, no middlewares, no access
log, precomputed status/metadata bodies, orjson.

One request must not freeze it (docs/safety.md): heavy bodies are decoded in worker processes and
models run in worker threads (server/offload.py), work per request is capped (instances, tensor
elements, image pixels), and slow or idle connections are closed (server/connections.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import time
import zlib
from collections.abc import Mapping
from urllib.parse import unquote

import numpy as np
import orjson
from aiohttp import web
from tfsbench.payloads.codec import CodecError, encode_response, parse_json
from tfsbench.payloads.signature import DEFAULT_SIGNATURE
from tfsbench.server.batching import BatchScheduler
from tfsbench.server.connections import GuardedServer
from tfsbench.server.faults import FaultDecision, FaultInjector
from tfsbench.server.metrics import ServerMetrics
from tfsbench.server.models import ModelInputError
from tfsbench.server.offload import Offload, WorkerLost, is_light
from tfsbench.server.options import ServerOptions
from tfsbench.server.registry import CODE_FOR_HTTP, ModelRegistry, Servable, ServingError
from tfsbench.server.timer import PreciseTimer

METRICS_PATH = "/monitoring/prometheus/metrics"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

# http_rest_api_util.cc: kPathRegex, kPredictionApiGegex [sic], kModelStatusApiRegex.
_V1_RE = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_PREDICT_RE = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_RE = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
# TF Serving searches the Origin for "https?://" anywhere (so "xhttp://x" passes); we anchor it:
# scheme, host (name, IPv4 or [IPv6]) and an optional port, nothing else.
_ORIGIN_RE = re.compile(r"https?://(?:[A-Za-z0-9\-._~%]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_INT64_MAX = 2**63 - 1
_INT64_MAX_DIGITS = len(str(_INT64_MAX))

# libevent's evhttp_send_error page: what TF Serving answers outside /v1/.
_NOT_FOUND_HTML = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"
)
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
_NONJSON_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>\n"


def error_body(message: str) -> bytes:
    """MakeJsonFromStatus: rapidjson PrettyWriter output of {"error": message}."""
    return b'{\n    "error": ' + orjson.dumps(message) + b"\n}"


class _Route:
    __slots__ = ("name", "version", "label", "verb", "subresource")

    def __init__(self, name: str, version: int | None, label: str | None, verb: str, subresource: str) -> None:
        self.name = name
        self.version = version
        self.label = label
        self.verb = verb
        self.subresource = subresource


def _version(text: str | None) -> int | None:
    if not text:
        return None
    # Python refuses int() of more than 4300 digits with its own message; TF answers 400.
    digits = text.lstrip("0") or "0"
    if len(digits) > _INT64_MAX_DIGITS or int(digits) > _INT64_MAX:
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
        raise ServingError("INVALID_ARGUMENT", f"Failed to convert version: {shown} to numeric.")
    value = int(digits)
    return value


def _check_version_and_label(route: _Route) -> None:
    if route.version is not None and route.label is not None:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Both model version ({route.version}) and model version label ({route.label}) cannot be supplied.",
        )


class TargetApp:
    """One embedded server: a registry of models, options, metrics and (optionally) faults."""

    def __init__(self, registry: ModelRegistry, options: ServerOptions) -> None:
        self.registry = registry
        self.options = options
        self.metrics = ServerMetrics(known_models=registry.model_names)
        self.offload = Offload()
        self.timer = PreciseTimer()
        self._rng = random.Random(options.seed)
        self._json_headers = {"Content-Type": "application/json"}
        if options.enable_cors:
            self._json_headers.update(_CORS_HEADERS)
        self._faults: FaultInjector | None = None
        self._stall = False
        if options.faults.active:
            self._faults = FaultInjector(options.faults, time.monotonic())
            self._stall = options.faults.stall is not None
        self._schedulers: dict[tuple[str, int, str], BatchScheduler] = {}
        # Only awaiting runs (service time, batching) can overrun the deadline; plain numpy cannot.
        self._timeout_s = options.timeout_ms / 1000.0
        self._timed = options.service_time is not None or options.batching is not None
        self._threads = asyncio.Semaphore(options.num_threads) if options.num_threads else None

    # ---------------------------------------------------------------------------------------- entry

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        cut = raw.find("?")
        path = raw if cut < 0 else raw[:cut]
        if self._stall:
            await self._wait_stall()
        if _V1_RE.fullmatch(path):
            try:
                return await self._v1(request, path)
            except ServingError as exc:
                if exc.close_after:
                    return await self._error_and_close(request, exc)
                return self._error(exc)
            except (asyncio.CancelledError, ConnectionError):
                raise
            except Exception as exc:  # a bug must not look like a dropped connection: TF's INTERNAL
                return self._error(ServingError("INTERNAL", f"Internal error: {type(exc).__name__}: {exc}"[:1000]))
        if path == METRICS_PATH:
            return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": "text/plain"})
        return web.Response(status=404, body=_NOT_FOUND_HTML, headers={"Content-Type": "text/html"})

    def _error(self, exc: ServingError) -> web.Response:
        return web.Response(status=exc.http_status, body=error_body(exc.message), headers=self._json_headers)

    async def _error_and_close(self, request: web.BaseRequest, exc: ServingError) -> web.StreamResponse:
        """Send the error, then drop the connection (its request was never fully read)."""
        response = web.StreamResponse(status=exc.http_status, headers={**self._json_headers, "Connection": "close"})
        body = error_body(exc.message)
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        _force_close(request)
        return response

    async def _wait_stall(self) -> None:
        assert self._faults is not None
        remaining_s = self._faults.stall_remaining_s(time.monotonic())
        if remaining_s > 0:
            await asyncio.sleep(remaining_s)

    # -------------------------------------------------------------------------------------- routing

    async def _v1(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        method = request.method
        if method == "OPTIONS" and self.options.enable_cors:
            origin = request.headers.get("Origin", "")
            if not _ORIGIN_RE.fullmatch(origin.strip()):
                raise ServingError("FAILED_PRECONDITION", "Origin header is missing in CORS preflight")
            return web.Response(status=200, headers=self._json_headers)
        malformed = ServingError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
        if method == "POST":
            if not self.options.enable_cors and _cross_site_simple(request):
                raise ServingError(
                    "PERMISSION_DENIED",
                    "Cross-origin POST refused: this server does not enable CORS (serve --enable-cors)",
                )
            match = _PREDICT_RE.fullmatch(path)
            if match is None:
                await self._read_body(request)
                raise malformed
            route = self._route(match.group(1), match.group(2), match.group(3), match.group(4), "")
            body = await self._read_body(request, route.name)
            if route.verb == "predict":
                return await self._infer(request, route, body)
            if route.verb in ("classify", "regress"):
                return await self._classify_regress(request, route, body)
            raise malformed  # the regex is case-insensitive but the verb check is not (":PREDICT")
        if method == "GET":
            match = _STATUS_RE.fullmatch(path)
            if match is None:
                raise malformed
            route = self._route(match.group(1), match.group(2), match.group(3), "", match.group(4) or "")
            if not route.name:
                raise ServingError("INVALID_ARGUMENT", "Missing model name in request.")
            _check_version_and_label(route)
            if route.subresource == "metadata":
                body = self.registry.metadata_body(route.name, route.version, route.label)
            else:
                body = self.registry.status_body(route.name, route.version, route.label)
            return web.Response(body=body, headers=self._json_headers)
        raise malformed

    def _route(self, name: str | None, version: str | None, label: str | None, verb: str, sub: str) -> _Route:
        return _Route(
            unquote(name) if name else "",
            _version(version),
            unquote(label) if label else None,
            verb,
            sub,
        )

    async def _read_body(self, request: web.BaseRequest, model_name: str | None = None) -> bytes:
        """The whole body: at most --max-body-bytes on the wire; gzip/deflate inflated up to a cap."""
        limit = self.options.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            # No force_close: aiohttp drains the rest (lingering) so the client can read the 413.
            raise self._too_large(f"{length} bytes", limit, "--max-body-bytes", model_name)
        chunks: list[bytes] = []
        total = 0
        # A body already complete (small ones arrive with the head) needs no timer.
        waiting = contextlib.nullcontext() if request.content.is_eof() else asyncio.timeout(self.options.body_timeout_s)
        try:
            async with waiting:
                if length is not None:  # the common case: one read of a known, allowed size
                    body = await request.content.readexactly(length) if length else b""
                    return self._maybe_inflate(request, body, model_name)
                while True:
                    chunk = await request.content.readany()
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit:
                        raise self._too_large(f"more than {limit} bytes", limit, "--max-body-bytes", model_name)
                    chunks.append(chunk)
        except ServingError:
            raise
        except TimeoutError:  # half a body: answer 408, then close (handle() sees `close_after`)
            error = ServingError(
                "DEADLINE_EXCEEDED",
                f"Request body not received within {self.options.body_timeout_s:g}s (serve --body-timeout)",
                http_status=408,
            )
            error.close_after = True
            raise error from None
        except Exception as exc:  # client went away mid-body, bad chunked framing
            _force_close(request)
            raise ServingError("INVALID_ARGUMENT", f"Failed to read request body: {type(exc).__name__}") from None
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._maybe_inflate(request, body, model_name)

    def _maybe_inflate(self, request: web.BaseRequest, body: bytes, model_name: str | None) -> bytes:
        encoding = request.headers.get("Content-Encoding")
        if not encoding:
            return body
        encoding = encoding.strip().lower()
        if encoding == "identity":
            return body
        return self._inflate(body, encoding, model_name)

    def _inflate(self, body: bytes, encoding: str, model_name: str | None) -> bytes:
        """Decompress without ever holding more than the cap (TF Serving inflates gzip up to 100 MiB)."""
        if encoding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            wbits = zlib.MAX_WBITS
        else:
            raise ServingError("INVALID_ARGUMENT", f"Unsupported Content-Encoding: {encoding} (use gzip)")
        cap = self.options.max_decompressed_bytes
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, cap + 1)
        except zlib.error as exc:
            raise ServingError("INVALID_ARGUMENT", f"Failed to decompress {encoding} request body: {exc}") from None
        if len(out) > cap or inflater.unconsumed_tail:
            raise self._too_large(f"more than {cap} bytes once decompressed", cap, "decompressed size", model_name)
        if not inflater.eof:
            raise ServingError("INVALID_ARGUMENT", f"Failed to decompress {encoding} request body: truncated stream")
        return out

    def _too_large(self, size_text: str, limit: int, what: str, model_name: str | None) -> ServingError:
        if model_name:
            self.metrics.count_request(model_name, "RESOURCE_EXHAUSTED")
        return ServingError(
            "RESOURCE_EXHAUSTED",
            f"Request body of {size_text} exceeds the limit of {limit} bytes ({what})",
            http_status=413,
        )

    # ------------------------------------------------------------------------------------ inference

    async def _infer(self, request: web.BaseRequest, route: _Route, body: bytes) -> web.StreamResponse:
        start_ns = time.perf_counter_ns()
        decision = self._faults.decide() if self._faults is not None else None
        try:
            if decision is not None:
                if decision.delay_s:
                    await asyncio.sleep(decision.delay_s)
                if decision.kind == "status":
                    raise ServingError.from_http(
                        decision.status,
                        f"Injected fault: {decision.status} {CODE_FOR_HTTP.get(decision.status, 'UNKNOWN')} "
                        "(tfsbench serve --faults)",
                    )
            _check_version_and_label(route)
            try:
                servable = self.registry.resolve(route.name, route.version, route.label)
            except ServingError:
                # TF parses JSON before lookup (its syntax errors win over the 404)
                await self.offload.check_json(body, self.options.max_json_depth)
                raise
            opts = self.options
            kind, value, message = await self.offload.decode(
                body, servable.model.metadata.signatures, DEFAULT_SIGNATURE, opts.max_json_depth,
                opts.max_instances, opts.max_elements,
            )
            if kind == "codec":
                raise CodecError(message, value)
            if kind == "limit":
                raise ServingError("INVALID_ARGUMENT", message)
            decoded = value
            inline = is_light(body) and getattr(servable.model, "inline_ok", False)
            if self._threads is not None:
                async with self._threads:
                    outputs = await self._run(servable, decoded.signature.name, decoded.inputs, inline)
            else:
                outputs = await self._run(servable, decoded.signature.name, decoded.inputs, inline)
            if inline:
                payload = encode_response(outputs, decoded.format)
            else:
                payload = await self.offload.call(encode_response, outputs, decoded.format)
        except ServingError as exc:
            self.metrics.count_request(route.name, exc.code)
            return self._error(exc)
        except CodecError as exc:
            error = ServingError.from_http(exc.status, str(exc))
            self.metrics.count_request(route.name, error.code)
            return self._error(error)
        except ModelInputError as exc:
            self.metrics.count_request(route.name, "INVALID_ARGUMENT")
            return self._error(ServingError("INVALID_ARGUMENT", str(exc)))
        except WorkerLost as exc:
            self.metrics.count_request(route.name, "UNAVAILABLE")
            return self._error(ServingError("UNAVAILABLE", str(exc)))
        self.metrics.count_request(route.name, "OK")
        self.metrics.observe_latency(route.name, route.verb, (time.perf_counter_ns() - start_ns) / 1000.0)
        if self._stall:
            await self._wait_stall()
        if decision is not None and decision.kind is not None:
            return await self._faulty_response(request, decision, payload)
        return web.Response(body=payload, headers=self._json_headers)

    async def _run(
        self, servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray], inline: bool
    ) -> dict[str, np.ndarray]:
        """The model run under TF Serving's run timeout (DEADLINE_EXCEEDED, HTTP 504)."""
        if not self._timed:
            return await self._predict(servable, signature_name, inputs, inline)
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._predict(servable, signature_name, inputs, inline)
        except TimeoutError:
            raise ServingError("DEADLINE_EXCEEDED", "Timed out waiting for notification") from None

    async def _predict(
        self, servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray], inline: bool
    ) -> dict[str, np.ndarray]:
        model = servable.model
        batching = self.options.batching
        if batching is not None:
            size = _batch_dim(inputs)
            if size is not None:
                key = (servable.name, servable.version, signature_name)
                scheduler = self._schedulers.get(key)
                if scheduler is None:
                    scheduler = self._schedulers[key] = BatchScheduler(
                        batching,
                        lambda merged: self.offload.call(model.predict, signature_name, merged),
                        self._service_delay if self.options.service_time else None,
                        self.metrics.observe_queuing,
                        self.metrics.count_batch,
                    )
                return await scheduler.submit(inputs, size)
        if self.options.service_time is not None:
            await self._service_delay()
        if inline:
            return model.predict(signature_name, inputs)
        return await self.offload.call(model.predict, signature_name, inputs)

    async def _service_delay(self) -> None:
        service = self.options.service_time
        assert service is not None
        delay_s = service.mean_s if service.distribution == "fixed" else self._rng.expovariate(1.0 / service.mean_s)
        await self.timer.sleep(delay_s)

    async def _classify_regress(self, request: web.BaseRequest, route: _Route, body: bytes) -> web.Response:
        """TF Serving's order: parse the Example JSON, resolve the servable, check the signature kind."""
        api = route.verb
        try:
            _check_version_and_label(route)
            if not is_light(body):  # not served here anyway: check the syntax off the loop, then say so
                await self.offload.check_json(body, self.options.max_json_depth)
                self.registry.resolve(route.name, route.version, route.label)
                raise ServingError("UNIMPLEMENTED", f"{api} signatures are not served by the embedded target")
            doc = parse_json(body, max_depth=self.options.max_json_depth)
            if not isinstance(doc, dict):
                raise ServingError("INVALID_ARGUMENT", f"JSON Value: {_echo(doc)} Is not object")
            examples = doc.get("examples")
            if "examples" not in doc:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"JSON Value: {_echo(doc)} When method is classify, key 'examples' is expected and was not found",
                )
            if not isinstance(examples, list):
                raise ServingError(
                    "INVALID_ARGUMENT", f"JSON Value: {_echo(doc)} Expecting 'examples' value to be an list/array"
                )
            if not examples:
                raise ServingError("INVALID_ARGUMENT", f"JSON Value: {_echo(doc)} 'examples' value is an empty array")
            servable = self.registry.resolve(route.name, route.version, route.label)
            signature_name = doc.get("signature_name") or DEFAULT_SIGNATURE
            signature = servable.model.metadata.signatures.get(str(signature_name))
            if signature is None:
                raise ServingError("INVALID_ARGUMENT", f"No signature was found with the name: {signature_name}")
            want = CLASSIFY_METHOD if api == "classify" else REGRESS_METHOD
            if signature.method_name != want:
                kind = "classification" if api == "classify" else "regression"
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Expected {kind} signature method_name to be {want}. Was: {signature.method_name}",
                )
            raise ServingError("UNIMPLEMENTED", f"{api} signatures are not served by the embedded target")
        except CodecError as exc:
            error = ServingError.from_http(exc.status, str(exc))
        except ServingError as exc:
            error = exc
        except WorkerLost as exc:
            error = ServingError("UNAVAILABLE", str(exc))
        self.metrics.count_request(route.name, error.code)
        return self._error(error)

    # --------------------------------------------------------------------------------------- faults

    async def _faulty_response(
        self, request: web.BaseRequest, decision: FaultDecision, payload: bytes
    ) -> web.StreamResponse:
        kind = decision.kind
        if kind == "truncate":
            return web.Response(body=payload[: max(1, len(payload) // 2)], headers=self._json_headers)
        if kind == "nonjson":
            return web.Response(body=_NONJSON_BODY, headers={"Content-Type": "text/html"})
        response = web.StreamResponse(status=200, headers=self._json_headers)
        response.content_length = len(payload)
        await response.prepare(request)
        if kind == "reset":
            await response.write(payload[: len(payload) // 2])
            _reset(request)
            return response
        # trickle: the right body, in ~10 pieces with equal pauses between them over the trickle time
        pieces = max(1, min(10, len(payload)))
        step = -(-len(payload) // pieces)
        offsets = range(0, len(payload), step)
        pause_s = decision.trickle_s / max(1, len(offsets) - 1)
        for i, offset in enumerate(offsets):
            if i:
                await asyncio.sleep(pause_s)
            await response.write(payload[offset : offset + step])
        await response.write_eof()
        return response

    async def close(self) -> None:
        for scheduler in self._schedulers.values():
            await scheduler.close()
        self.timer.close()
        self.offload.close()


# Content types a browser sends cross-site without a preflight (the Fetch standard's "simple" POST).
_SIMPLE_TYPES = ("", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _cross_site_simple(request: web.BaseRequest) -> bool:
    """A browser's cross-site POST that skipped the preflight (CSRF): refused unless CORS is on.

    Browsers send `Origin` on every cross-origin POST; one with a simple content type (text/plain,
    a form) reaches the server without a preflight, so only the server can stop it. Any other content
    type (application/json) is preflighted, and without CORS the preflight fails in the browser, as
    with TF Serving. curl, the engines and other programs send no `Origin` and are not affected.
    """
    content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type not in _SIMPLE_TYPES:
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        fetch_site = request.headers.get("Sec-Fetch-Site", "")
        return fetch_site == "cross-site"
    origin = origin.strip()
    if origin == "null" or "://" not in origin:
        return True  # sandboxed frames, file:// pages
    host = request.headers.get("Host", "")
    return origin.split("://", 1)[1].rstrip("/").lower() != host.strip().lower()


def _force_close(request: web.BaseRequest) -> None:
    """Close the connection after this response: the rest of the body is not worth reading."""
    protocol = request.protocol
    if protocol is not None:
        protocol.force_close()


def _reset(request: web.BaseRequest) -> None:
    """Abort the connection with an RST (SO_LINGER 0), as a crashing proxy or server would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def _batch_dim(inputs: Mapping[str, np.ndarray]) -> int | None:
    """The common dim 0 of all inputs, or None when they disagree (columnar) or are scalars."""
    size = None
    for arr in inputs.values():
        if arr.ndim == 0:
            return None
        if size is None:
            size = arr.shape[0]
        elif arr.shape[0] != size:
            return None
    return size


def _echo(value: object) -> str:
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return text if len(text) <= 256 else text[:256] + "..."


def build_server(registry: ModelRegistry | None = None, options: ServerOptions | None = None) -> tuple[
    web.Server, TargetApp
]:
    """An aiohttp low-level server answering like TF Serving; serve it with `serve_forever` helpers."""
    from tfsbench.server.registry import demo_registry

    target = TargetApp(registry or demo_registry(), options or ServerOptions())
    opts = target.options
    server = GuardedServer(
        target.handle,
        header_timeout_s=opts.header_timeout_s,
        max_connections=opts.max_connections,
        access_log=None,
        handler_cancellation=True,
        auto_decompress=False,
        keepalive_timeout=opts.keepalive_timeout_s,
    )
    return server, target
