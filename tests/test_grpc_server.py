"""The embedded target's gRPC port: answers, TF Serving's status codes, batching, faults, metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from tfsbench.payloads.grpc_codec import decode_outputs, encode_predict_request, parse_metadata_response
from tfsbench.payloads.tfs_proto import METADATA_METHOD, PREDICT_METHOD, STATUS_METHOD, messages
from tfsbench.server.models import NumericModel, TextModel
from tfsbench.server.testing import ServerThread

FEATURES = np.arange(8, dtype=np.float32).reshape(2, 4) / 8


@pytest.fixture
def grpc_server() -> Iterator:
    started: list[ServerThread] = []
    channels: list[grpc.Channel] = []

    def start(**options: object) -> tuple[grpc.Channel, ServerThread]:
        server = ServerThread(grpc_port=0, **options)
        server.start()
        started.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        channels.append(channel)
        return channel, server

    try:
        yield start
    finally:
        for channel in channels:
            channel.close()
        for server in started:
            server.stop()


def _predict(channel: grpc.Channel, inputs: dict, model: str = "numeric", **spec: object) -> dict:
    call = channel.unary_unary(PREDICT_METHOD)
    body = call(encode_predict_request(inputs, model, **spec), timeout=10)
    return decode_outputs(messages().PredictResponse.FromString(body))


def _error(channel: grpc.Channel, method: str, body: bytes) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(method)(body, timeout=10)
    return info.value.code(), info.value.details()


def test_predict_matches_the_model(grpc_server):
    channel, _ = grpc_server()
    got = _predict(channel, {"features": FEATURES})
    want = NumericModel(2).predict("serving_default", {"features": FEATURES})
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-6)
    texts = np.array([[b"good movie"], [b"bad"]], dtype=object)
    got = _predict(channel, {"text": texts}, model="text", label="stable")
    np.testing.assert_allclose(got["scores"], TextModel(1).predict("serving_default", {"text": texts})["scores"],
                               rtol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "model", "spec", "code", "text"),
    [
        ({"features": FEATURES}, "nope", {}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        ({"features": FEATURES}, "numeric", {"version": 9}, grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(numeric, 9)"),
        ({"features": FEATURES}, "numeric", {"label": "canary"}, grpc.StatusCode.INVALID_ARGUMENT,
         "Unrecognized servable version label: canary"),
        ({"x": FEATURES}, "numeric", {}, grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {features}"),
        ({"features": FEATURES.astype(np.int32)}, "numeric", {}, grpc.StatusCode.INVALID_ARGUMENT,
         "Expects arg[0] to be float but int32 is provided"),
        ({"features": np.zeros((2, 5), np.float32)}, "numeric", {}, grpc.StatusCode.INVALID_ARGUMENT,
         "input 'features' has shape [2,5]"),
        ({"features": FEATURES}, "numeric", {"signature_name": "other"}, grpc.StatusCode.INVALID_ARGUMENT,
         'Serving signature name: "other" not found in signature def'),
        ({"image_bytes": np.array([b"not an image"], dtype=object)}, "image", {}, grpc.StatusCode.INVALID_ARGUMENT,
         "image_bytes[0]"),
    ],
)
def test_bad_predicts_get_tf_serving_codes(grpc_server, inputs, model, spec, code, text):
    channel, _ = grpc_server()
    got_code, details = _error(channel, PREDICT_METHOD, encode_predict_request(inputs, model, **spec))
    assert got_code == code
    assert text in details


def test_bad_tensor_and_garbage_body(grpc_server):
    channel, _ = grpc_server()
    request = messages().PredictRequest()
    request.model_spec.name = "numeric"
    tensor = request.inputs["features"]
    tensor.dtype = 1
    tensor.tensor_shape.dim.add(size=2)
    tensor.tensor_shape.dim.add(size=4)
    tensor.tensor_content = b"\x00" * 7  # not 8 floats
    assert _error(channel, PREDICT_METHOD, request.SerializeToString()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: features")
    assert _error(channel, PREDICT_METHOD, b"\xff\xff\xff")[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_metadata_and_status(grpc_server):
    channel, _ = grpc_server()
    m = messages()
    request = m.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "image"
    meta = parse_metadata_response(m.GetModelMetadataResponse.FromString(
        channel.unary_unary(METADATA_METHOD)(request.SerializeToString(), timeout=10)))
    assert meta.model_name == "image" and meta.version == "2"
    assert meta.signature().input_names == ("image_bytes",)
    request.ClearField("metadata_field")
    assert _error(channel, METADATA_METHOD, request.SerializeToString())[0] == grpc.StatusCode.INVALID_ARGUMENT

    status = m.GetModelStatusRequest()
    status.model_spec.name = "text"
    answer = m.GetModelStatusResponse.FromString(channel.unary_unary(STATUS_METHOD)(status.SerializeToString()))
    assert [(s.version, s.state) for s in answer.model_version_status] == [(2, 30), (1, 30)]
    status.model_spec.version_label = "stable"
    answer = m.GetModelStatusResponse.FromString(channel.unary_unary(STATUS_METHOD)(status.SerializeToString()))
    assert [s.version for s in answer.model_version_status] == [1]
    status.model_spec.name = "nope"
    status.model_spec.ClearField("version_label")
    assert _error(channel, STATUS_METHOD, status.SerializeToString()) == (
        grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")


def test_faults_map_to_grpc_codes_and_metrics_count_grpc(grpc_server):
    channel, server = grpc_server(faults="status=503:1.0")
    code, details = _error(channel, PREDICT_METHOD, encode_predict_request({"features": FEATURES}, "numeric"))
    assert code == grpc.StatusCode.UNAVAILABLE and "Injected fault" in details
    metrics = urllib.request.urlopen(server.base_url + "/monitoring/prometheus/metrics", timeout=10).read().decode()
    assert 'model_name="numeric",status="UNAVAILABLE"' in metrics


def test_batching_serves_grpc_and_rest_from_one_queue(grpc_server):
    channel, server = grpc_server(batching="max_batch_size=8,batch_timeout_micros=1000")
    for _ in range(3):
        got = _predict(channel, {"features": FEATURES})
        assert got["probabilities"].shape == (2, 3)
    assert server.target.metrics.wrapped_run_count == 3  # each went through the batch scheduler
    metrics = urllib.request.urlopen(server.base_url + "/monitoring/prometheus/metrics", timeout=10).read().decode()
    assert 'entrypoint="GRPC"' in metrics


def test_large_message_over_body_limit_is_resource_exhausted(grpc_server):
    channel, _ = grpc_server(max_body_bytes=1024)
    body = encode_predict_request({"features": np.zeros((100, 4), np.float32)}, "numeric")
    assert _error(channel, PREDICT_METHOD, body)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_request_caps_apply_to_grpc_too(grpc_server):
    channel, _ = grpc_server(max_instances=3, max_elements=8)
    code, details = _error(channel, PREDICT_METHOD, encode_predict_request(
        {"features": np.zeros((4, 4), np.float32)}, "numeric"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "more than the limit of 3" in details
    code, details = _error(channel, PREDICT_METHOD, encode_predict_request(
        {"features": np.zeros((3, 4), np.float32)}, "numeric"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "12 tensor elements" in details
    assert _predict(channel, {"features": FEATURES})["probabilities"].shape == (2, 3)
