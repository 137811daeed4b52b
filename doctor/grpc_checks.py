"""`tfsbench doctor --grpc-url`: is TF Serving's gRPC port usable, and if not, what to fix.

Three findings, each with a fix: the port answers gRPC (a channel becomes ready), the model has an
AVAILABLE version (ModelService.GetModelStatus), one Predict round trip with a request generated from
the model's own signature (GetModelMetadata) comes back with the batch it was sent. A blocking grpcio
channel: a handful of calls, no load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfsbench.doctor.checklist import FAIL, PASS, SKIP, WARN, Finding
from tfsbench.payloads.errors import InputError


def _spec(message: Any, model: str, version: int | None, label: str | None, signature: str | None = None) -> None:
    from tfsbench.payloads.grpc_codec import set_model_spec

    set_model_spec(message.model_spec, model, version=version, label=label, signature_name=signature)


def grpc_findings(url: str, model: str, *, version: int | None = None, label: str | None = None,
                  signature: str | None = None, headers: Mapping[str, str] | None = None,
                  timeout_s: float = 10.0) -> list[Finding]:
    """The gRPC port's findings, in order; later ones are skipped when an earlier one fails."""
    import grpc
    from tfsbench.bench.measure.engine_grpc import (
        channel_credentials,
        channel_options,
        check_grpc_url,
        check_response,
        grpc_metadata,
        quiet_grpc_logs,
    )
    from tfsbench.payloads.tfs_proto import METADATA_METHOD, PREDICT_METHOD, STATUS_METHOD, messages

    quiet_grpc_logs()
    address, tls = check_grpc_url(url)
    metadata = grpc_metadata(headers or {}) or None
    options = channel_options(64 * 2**20)
    channel = (grpc.secure_channel(address, channel_credentials(), options=options) if tls
               else grpc.insecure_channel(address, options=options))
    m = messages()
    out: list[Finding] = []
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            hint = ("is it the gRPC port (8500 by default; 8501 is REST, which never answers gRPC)? Start TF Serving "
                    "with --port 8500 (the Docker image does) and publish it "
                    "(docker/compose.yaml maps 127.0.0.1:8500); `tfsbench serve` listens on --grpc-port")
            out.append(Finding("grpc port", FAIL, f"nothing answers gRPC at {address} within {timeout_s:g} s", hint))
            out.append(Finding("grpc model status", SKIP, "skipped: the gRPC port is not reachable"))
            out.append(Finding("grpc predict", SKIP, "skipped: the gRPC port is not reachable"))
            return out
        out.append(Finding("grpc port", PASS, f"{address} answers gRPC" + (" (TLS)" if tls else "")))

        def call(method: str, body: bytes) -> bytes:
            return channel.unary_unary(method)(body, timeout=timeout_s, metadata=metadata)

        status_request = m.GetModelStatusRequest()
        _spec(status_request, model, version, label)
        try:
            status = m.GetModelStatusResponse.FromString(call(STATUS_METHOD, status_request.SerializeToString()))
        except grpc.RpcError as exc:
            fix = ("check --model (names are case-sensitive) and the model config; is this the gRPC port of the "
                   "server that serves it?") if exc.code() == grpc.StatusCode.NOT_FOUND else (
                   "an HTTP port answered? --grpc-url must be TF Serving's gRPC port (8500), not REST (8501)"
                   if exc.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE) else "")
            out.append(Finding("grpc model status", FAIL, f"GetModelStatus: {exc.code().name}: {exc.details()}", fix))
            out.append(Finding("grpc predict", SKIP, "skipped: the model is not available over gRPC"))
            return out
        available = [s.version for s in status.model_version_status if s.state == 30]
        if not available:
            out.append(Finding("grpc model status", FAIL, "no AVAILABLE version over gRPC",
                               "wait for the model to load, or check the server's log for load errors"))
            out.append(Finding("grpc predict", SKIP, "skipped: the model is not available over gRPC"))
            return out
        out.append(Finding("grpc model status", PASS, f"AVAILABLE: version(s) {', '.join(map(str, available))}"))
        out.append(_predict_finding(call, model, version, label, signature, m, METADATA_METHOD, PREDICT_METHOD,
                                    check_response))
    finally:
        channel.close()
    return out


def _predict_finding(call: Any, model: str, version: int | None, label: str | None, signature: str | None,
                     m: Any, metadata_method: str, predict_method: str, check_response: Any) -> Finding:
    import grpc
    from tfsbench.payloads.grpc_codec import parse_metadata_response
    from tfsbench.payloads.grpc_pool import GrpcTarget, build_grpc_pool
    from tfsbench.payloads.spec import PayloadSpec

    meta_request = m.GetModelMetadataRequest(metadata_field=["signature_def"])
    _spec(meta_request, model, version, label)
    try:
        meta = parse_metadata_response(m.GetModelMetadataResponse.FromString(
            call(metadata_method, meta_request.SerializeToString())))
        spec = PayloadSpec("auto", 2, signature_name=signature)
        body = build_grpc_pool(spec, GrpcTarget(model, version, label), 1, meta).bodies[0]
    except grpc.RpcError as exc:
        return Finding("grpc predict", WARN, f"GetModelMetadata: {exc.code().name}: {exc.details()}",
                       "without the signature no request can be generated; check the model's SignatureDefs")
    except InputError as exc:
        return Finding("grpc predict", WARN, f"cannot generate a request from the signature: {exc}",
                       "send your own requests with tfsbench run --protocol grpc and the payload options")
    try:
        answer = call(predict_method, body)
    except grpc.RpcError as exc:
        return Finding("grpc predict", FAIL, f"Predict: {exc.code().name}: {exc.details()}",
                       "the request follows the model's own signature; check the model and the server's log")
    outcome = check_response(answer, 2, "full")
    if outcome.error is not None:
        return Finding("grpc predict", FAIL, f"answer unusable: {outcome.error} ({outcome.detail})",
                       "the first output should have the batch dimension first")
    return Finding("grpc predict", PASS, f"a batch of 2 round-tripped ({len(body)} B request, {len(answer)} B answer)")
