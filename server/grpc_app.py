"""The embedded target's gRPC face: TF Serving's PredictionService and ModelService on a second port.

`tensorflow_model_server --port` serves these next to REST; here one `TargetApp` (registry, options,
batching queues, faults, metrics) backs both, so a request costs the same model call, waits in the same
batch queue and counts in the same Prometheus metrics (entrypoint "GRPC") whichever door it came in by.

grpcio's asyncio server with generic handlers: bytes in, bytes out, messages parsed here with the
project's own descriptors (`payloads/tfs_proto.py`); no generated service stubs, no TensorFlow.
Error codes and texts follow TF Serving for the same bad requests: NOT_FOUND for unknown models and
versions, INVALID_ARGUMENT for bad inputs (the same texts as the REST path, which shares the checks).

Faults map to what a gRPC client would see: status=N aborts with the code TF Serving maps N from,
reset/truncate/nonjson become UNAVAILABLE/DATA_LOSS/INTERNAL aborts, trickle delays the answer.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import grpc
from tfsbench.payloads.codec import CodecError
from tfsbench.payloads.grpc_codec import (
    SIGNATURE_DEF_FIELD,
    decode_predict_request,
    metadata_response,
    predict_response,
)
from tfsbench.payloads.tfs_proto import (
    METADATA_METHOD,
    MODEL_SERVICE,
    PREDICTION_SERVICE,
    VERSION_STATES,
    messages,
)
from tfsbench.server.app import TargetApp
from tfsbench.server.models import ModelInputError
from tfsbench.server.registry import CODE_FOR_HTTP, ServingError

try:
    from tfsbench.server.offload import INLINE_MAX_BYTES as _INLINE_MAX_BYTES
except ImportError:  # a target without off-loading runs every model call on the loop
    _INLINE_MAX_BYTES = 2**62

_FAULT_ABORTS = {
    "reset": ("UNAVAILABLE", "Injected fault: connection reset (tfsbench serve --faults)"),
    "truncate": ("DATA_LOSS", "Injected fault: truncated response (tfsbench serve --faults)"),
    "nonjson": ("INTERNAL", "Injected fault: garbled response (tfsbench serve --faults)"),
}


class _Abort(Exception):
    def __init__(self, error: ServingError) -> None:
        super().__init__(error.message)
        self.error = error


def _spec_version(spec: Any) -> tuple[int | None, str | None]:
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return int(spec.version.value), None
    if choice == "version_label":
        return None, spec.version_label
    return None, None


class GrpcService:
    """Predict, GetModelMetadata and GetModelStatus over one TargetApp."""

    def __init__(self, target: TargetApp) -> None:
        self.target = target
        self.registry = target.registry
        self._m = messages()
        self._metadata_cache: dict[tuple[str, int], bytes] = {}
        self._run_takes_inline = "inline" in inspect.signature(target._run).parameters

    async def _model_call(self, servable: Any, signature_name: str, inputs: Any, body_bytes: int) -> Any:
        """TargetApp's model run (timeout, batching queue, service time). Where it can run small
        requests inline on the loop, a request is small when its protobuf body is: decoding protobuf
        costs far less than JSON, so the REST threshold in bytes is a safe bound."""
        if not self._run_takes_inline:
            return await self.target._run(servable, signature_name, inputs)
        inline = body_bytes <= _INLINE_MAX_BYTES and getattr(servable.model, "inline_ok", False)
        return await self.target._run(servable, signature_name, inputs, inline)

    def _check_limits(self, inputs: Any) -> None:
        """The REST path's per-request caps (serve --max-instances, --max-elements), same texts."""
        options = self.target.options
        max_instances = getattr(options, "max_instances", None)
        max_elements = getattr(options, "max_elements", None)
        dims = {arr.shape[0] for arr in inputs.values() if arr.ndim}
        if max_instances is not None and len(dims) == 1 and (batch := dims.pop()) > max_instances:
            raise ServingError("INVALID_ARGUMENT", f"Request has {batch} instances, more than the limit of "
                                                   f"{max_instances} (serve --max-instances)")
        elements = sum(int(arr.size) for arr in inputs.values())
        if max_elements is not None and elements > max_elements:
            raise ServingError("INVALID_ARGUMENT", f"Request has {elements} tensor elements, more than the limit "
                                                   f"of {max_elements} (serve --max-elements)")

    def _parse(self, cls: Any, body: bytes) -> Any:
        try:
            return cls.FromString(body)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError moved between releases
            raise _Abort(ServingError("INVALID_ARGUMENT", f"Failed to parse {cls.DESCRIPTOR.name}")) from None

    async def _abort(self, context: grpc.aio.ServicerContext, error: ServingError) -> None:
        await context.abort(grpc.StatusCode[error.code], error.message)

    # ------------------------------------------------------------------------------------ Predict

    async def predict(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        target = self.target
        start_ns = time.perf_counter_ns()
        name = ""
        try:
            if target._stall:
                await target._wait_stall()
            request = self._parse(self._m.PredictRequest, body)
            spec = request.model_spec
            name = spec.name
            if not request.HasField("model_spec"):
                raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
            decision = target._faults.decide() if target._faults is not None else None
            if decision is not None:
                if decision.delay_s:
                    await asyncio.sleep(decision.delay_s)
                if decision.kind == "status":
                    raise ServingError.from_http(
                        decision.status,
                        f"Injected fault: {decision.status} {CODE_FOR_HTTP.get(decision.status, 'UNKNOWN')} "
                        "(tfsbench serve --faults)",
                    )
            version, label = _spec_version(spec)
            servable = self.registry.resolve(name, version, label)
            decoded = decode_predict_request(request, servable.model.metadata.signatures)
            self._check_limits(decoded.inputs)
            sig_name = decoded.signature.name
            if target._threads is not None:
                async with target._threads:
                    outputs = await self._model_call(servable, sig_name, decoded.inputs, len(body))
            else:
                outputs = await self._model_call(servable, sig_name, decoded.inputs, len(body))
            wanted = list(request.output_filter)
            if wanted:
                unknown = [o for o in wanted if o not in outputs]
                if unknown:
                    raise ServingError("INVALID_ARGUMENT",
                                       f"output tensor alias not found in signature: {unknown[0]}")
                outputs = {k: v for k, v in outputs.items() if k in wanted}
            payload = predict_response(outputs, servable.name, servable.version, sig_name).SerializeToString()
        except _Abort as exc:
            target.metrics.count_request(name, exc.error.code)
            await self._abort(context, exc.error)
        except ServingError as exc:
            target.metrics.count_request(name, exc.code)
            await self._abort(context, exc)
        except CodecError as exc:
            target.metrics.count_request(name, "INVALID_ARGUMENT")
            await self._abort(context, ServingError("INVALID_ARGUMENT", str(exc)))
        except ModelInputError as exc:
            target.metrics.count_request(name, "INVALID_ARGUMENT")
            await self._abort(context, ServingError("INVALID_ARGUMENT", str(exc)))
        target.metrics.count_request(name, "OK")
        target.metrics.observe_latency(name, "predict", (time.perf_counter_ns() - start_ns) / 1000.0, "GRPC")
        if decision is not None and decision.kind is not None:
            if decision.kind == "trickle":
                await asyncio.sleep(decision.trickle_s)
            elif decision.kind in _FAULT_ABORTS:
                code, message = _FAULT_ABORTS[decision.kind]
                await self._abort(context, ServingError(code, message))
        return payload

    # ----------------------------------------------------------------------------------- metadata

    async def get_model_metadata(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = self._parse(self._m.GetModelMetadataRequest, body)
            if not request.HasField("model_spec"):
                raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
            fields = list(request.metadata_field)
            if not fields:
                raise ServingError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
            for field in fields:
                if field != SIGNATURE_DEF_FIELD:
                    raise ServingError("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
            version, label = _spec_version(request.model_spec)
            servable = self.registry.resolve(request.model_spec.name, version, label)
        except _Abort as exc:
            await self._abort(context, exc.error)
        except ServingError as exc:
            await self._abort(context, exc)
        key = (servable.name, servable.version)
        cached = self._metadata_cache.get(key)
        if cached is None:
            cached = metadata_response(servable.model.metadata, servable.version).SerializeToString()
            self._metadata_cache[key] = cached
        return cached

    # ------------------------------------------------------------------------------------- status

    async def get_model_status(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = self._parse(self._m.GetModelStatusRequest, body)
            if not request.HasField("model_spec"):
                raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
            name = request.model_spec.name
            version, label = _spec_version(request.model_spec)
            self.registry.status_body(name, version, label)  # TF Serving's NOT_FOUND texts
            if label is not None:
                version = self.registry.labels(name)[label]
        except _Abort as exc:
            await self._abort(context, exc.error)
        except ServingError as exc:
            await self._abort(context, exc)
        response = self._m.GetModelStatusResponse()
        versions = [version] if version is not None else sorted(self.registry.versions(name), reverse=True)
        for v in versions:
            status = response.model_version_status.add(version=v, state=VERSION_STATES["AVAILABLE"])
            status.status.error_code = 0
        return response.SerializeToString()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        unary = grpc.unary_unary_rpc_method_handler
        return [
            grpc.method_handlers_generic_handler(PREDICTION_SERVICE, {
                "Predict": unary(self.predict),
                METADATA_METHOD.rsplit("/", 1)[1]: unary(self.get_model_metadata),
            }),
            grpc.method_handlers_generic_handler(MODEL_SERVICE, {"GetModelStatus": unary(self.get_model_status)}),
        ]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_grpc(target: TargetApp, host: str, port: int, *, reuse_port: bool = False,
                     ) -> tuple[grpc.aio.Server, int]:
    """Serve gRPC for `target` on host:port (0 = a free port); returns the server and the bound port.

    The receive limit is the REST body limit (--max-body-bytes), so both doors refuse the same sizes
    (over it gRPC answers RESOURCE_EXHAUSTED); TF Serving itself lifts gRPC's 4 MiB default too.
    """
    limit = target.options.max_body_bytes
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", -1),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    ])
    server.add_generic_rpc_handlers(GrpcService(target).handlers())
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError as exc:
        reason = str(exc).split("; set GRPC_VERBOSITY")[0]
        raise OSError(f"cannot listen on {_address(host, port)}: {reason}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {_address(host, port)} (port in use?)")
    await server.start()
    return server, bound
