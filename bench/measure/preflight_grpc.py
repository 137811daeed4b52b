"""Preflight for gRPC runs: GetModelStatus, GetModelMetadata and one Predict, before any load.

The gRPC twin of `preflight.py`: an unreachable address, an unknown model or a request the model
rejects stops the run with one line carrying TF Serving's status code and message. A blocking grpcio
channel on purpose: three calls, not load.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import grpc
from tfsbench.bench.measure.engine_grpc import (
    channel_credentials,
    channel_options,
    check_grpc_url,
    check_response,
    grpc_metadata,
)
from tfsbench.payloads.errors import InputError

PROBE_ATTEMPTS = 5
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
              grpc.StatusCode.DATA_LOSS, grpc.StatusCode.ABORTED)


def _channel(url: str) -> grpc.Channel:
    address, tls = check_grpc_url(url)
    options = channel_options(64 * 2**20)
    if tls:
        return grpc.secure_channel(address, channel_credentials(), options=options)
    return grpc.insecure_channel(address, options=options)


def _spec(message: Any, config: Any) -> None:
    from tfsbench.payloads.grpc_codec import set_model_spec

    set_model_spec(message.model_spec, config.model, version=config.version, label=config.label)


def _call(channel: grpc.Channel, method: str, body: bytes, timeout_s: float,
          metadata: tuple[tuple[str, str], ...]) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    answer = channel.unary_unary(method)(body, timeout=timeout_s, metadata=metadata or None)
    return answer, time.perf_counter() - t0


def _unreachable(url: str, exc: grpc.RpcError) -> InputError:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return InputError(f"{url} did not answer within the timeout (is this TF Serving's gRPC port?)")
    return InputError(f"cannot reach {url}: {code.name}: {exc.details()}")


def check_target(config: Any, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """GetModelStatus (an AVAILABLE version) and GetModelMetadata, or InputError with TF Serving's text."""
    from tfsbench.payloads.tfs_proto import METADATA_METHOD, STATUS_METHOD, messages

    m = messages()
    timeout_s = min(float(config.timeout_s), 30.0)
    request = m.GetModelStatusRequest()
    _spec(request, config)
    try:
        body, _ = _call(channel, STATUS_METHOD, request.SerializeToString(), timeout_s, metadata)
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise _unreachable(config.url, exc) from None
        raise InputError(f"model '{config.model}' is not available at {config.url} "
                         f"(GetModelStatus: {exc.code().name}: {exc.details()})") from None
    status = m.GetModelStatusResponse.FromString(body)
    states = {30: "AVAILABLE"}
    versions = [{"version": str(s.version), "state": states.get(s.state, str(s.state))}
                for s in status.model_version_status]
    if versions and not any(v["state"] == "AVAILABLE" for v in versions):
        listed = ", ".join(f"version {v['version']} state {v['state']}" for v in versions)
        raise InputError(f"model '{config.model}' has no AVAILABLE version at {config.url} ({listed})")
    info: dict[str, Any] = {"url": config.url, "protocol": "grpc", "model": config.model,
                            "model_status": {"model_version_status": versions}}
    meta_request = m.GetModelMetadataRequest(metadata_field=["signature_def"])
    _spec(meta_request, config)
    try:
        body, _ = _call(channel, METADATA_METHOD, meta_request.SerializeToString(), timeout_s, metadata)
    except grpc.RpcError as exc:
        info["metadata_error"] = f"GetModelMetadata: {exc.code().name}: {exc.details()}"
        return info
    from tfsbench.payloads.grpc_codec import parse_metadata_response
    from tfsbench.payloads.signature import metadata_to_json

    try:
        info["metadata"] = metadata_to_json(parse_metadata_response(m.GetModelMetadataResponse.FromString(body)))
    except InputError as exc:
        info["metadata_error"] = str(exc)
    return info


def probe(config: Any, channel: grpc.Channel, body: bytes, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """One Predict; InputError with TF Serving's code and message unless the answer is valid."""
    from tfsbench.payloads.tfs_proto import PREDICT_METHOD

    what = f"a {config.kind} b={config.batch_size} gRPC request"
    for attempt in range(1, PROBE_ATTEMPTS + 1):
        last = attempt == PROBE_ATTEMPTS
        try:
            answer, seconds = _call(channel, PREDICT_METHOD, body, float(config.timeout_s), metadata)
        except grpc.RpcError as exc:
            if exc.code() in _TRANSIENT and not last:
                continue
            raise InputError(f"the model rejected {what}: Predict: {exc.code().name}: {exc.details()}") from None
        outcome = check_response(answer, config.batch_size, config.extra.get("validate", "full"))
        if outcome.error is not None:
            if not last:
                continue
            raise InputError(f"{what} got an unusable answer: {outcome.error} ({outcome.detail})")
        return {"probe_latency_ms": round(seconds * 1000.0, 3), "probe_response_bytes": len(answer),
                "probe_attempts": attempt}
    raise AssertionError("unreachable")  # pragma: no cover


def preflight_and_pool(config: Any, headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], Any]:
    """Check the target, build the request pool (from the fetched signature for --kind auto), send one.
    Returns (target info for the result's environment, the pool to run with)."""
    from tfsbench.bench.measure.runner import build_pool_for, check_config

    check_config(config)
    metadata = grpc_metadata(headers or {})
    channel = _channel(config.url)
    try:
        info = check_target(config, channel, metadata)
        parsed = None
        if config.kind == "auto":
            if "metadata" not in info:
                raise InputError(f"--kind auto needs the model's metadata, but {info.get('metadata_error')}")
            from tfsbench.payloads.signature import parse_metadata

            parsed = parse_metadata(info["metadata"])
        pool = build_pool_for(config, parsed)
        info.update(probe(config, channel, pool.bodies[0], metadata))
    finally:
        channel.close()
    return info, pool


def fetch_metadata(config: Any, headers: Mapping[str, str] | None = None) -> Any:
    """The model's signatures over gRPC (tfsbench.payloads.signature.ModelMetadata)."""
    from tfsbench.payloads.signature import parse_metadata

    channel = _channel(config.url)
    try:
        info = check_target(config, channel, grpc_metadata(headers or {}))
    finally:
        channel.close()
    if "metadata" not in info:
        raise InputError(f"cannot read the model's signatures: {info.get('metadata_error')}")
    return parse_metadata(info["metadata"])
