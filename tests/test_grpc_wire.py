"""The gRPC wire contract: what tfsbench builds decodes with the OFFICIAL tensorflow-serving-api protos,
and `tensorflow.make_ndarray` of every tensor equals the generated array (and the other way round)."""

from __future__ import annotations

import numpy as np
import pytest
from tfsbench.payloads.generators import make_generator
from tfsbench.payloads.grpc_codec import (
    encode_predict_request,
    metadata_response,
    parse_metadata_response,
    tensor_to_array,
)
from tfsbench.payloads.spec import PayloadSpec
from tfsbench.payloads.tfs_proto import messages

pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.xdist_group("tensorflow")]
# one xdist worker imports TensorFlow (about 5 s of CPU) for both modules that need it


@pytest.fixture(scope="module")
def official():
    tf = pytest.importorskip("tensorflow")
    predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    return tf, predict_pb2, get_model_metadata_pb2, get_model_status_pb2


def _assert_same(generated: np.ndarray, decoded: np.ndarray) -> None:
    if generated.dtype.kind == "O":
        assert decoded.dtype.kind == "O"
        assert decoded.shape == generated.shape
        assert decoded.reshape(-1).tolist() == generated.reshape(-1).tolist()
    else:
        assert decoded.dtype == generated.dtype
        np.testing.assert_array_equal(decoded, generated)


@pytest.mark.parametrize("form", ["content", "val"])
@pytest.mark.parametrize(
    "spec",
    [
        PayloadSpec("numeric", 8),
        PayloadSpec("numeric", 3, numeric_dtype="int64", numeric_shape=(2, 5)),
        PayloadSpec("numeric", 2, numeric_dtype="float64", numeric_dist="normal"),
        PayloadSpec("numeric", 4, numeric_dtype="int32"),
        PayloadSpec("text", 5),
        PayloadSpec("image", 3, image_size=(24, 16)),
    ],
    ids=lambda s: f"{s.kind}-{s.numeric_dtype}" if isinstance(s, PayloadSpec) else str(s),
)
def test_requests_decode_with_official_protos(official, spec, form):
    tf, predict_pb2, _, _ = official
    inputs = make_generator(spec, None).batch(spec.batch_size, np.random.default_rng(7))
    body = encode_predict_request(inputs, "numeric", version=2, signature_name="serving_default",
                                  numeric_form=form)
    request = predict_pb2.PredictRequest.FromString(body)
    assert request.model_spec.name == "numeric"
    assert request.model_spec.version.value == 2
    assert request.model_spec.signature_name == "serving_default"
    assert set(request.inputs) == set(inputs)
    for name, generated in inputs.items():
        tensor = request.inputs[name]
        if generated.dtype.kind == "O":
            assert list(tensor.string_val) == generated.reshape(-1).tolist()  # raw bytes, no base64
        else:
            assert bool(tensor.tensor_content) == (form == "content")
        _assert_same(generated, tf.make_ndarray(tensor))


def test_label_goes_in_version_label(official):
    _, predict_pb2, _, _ = official
    body = encode_predict_request({"x": np.zeros((1, 2), np.float32)}, "m", label="stable")
    spec = predict_pb2.PredictRequest.FromString(body).model_spec
    assert spec.WhichOneof("version_choice") == "version_label"
    assert spec.version_label == "stable"


@pytest.mark.parametrize("value", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array([[True, False]]),
    np.array([b"\x00\xffraw", b""], dtype=object),
    np.arange(6, dtype=np.int64).reshape(2, 3) - 3,
])
def test_official_tensors_decode_with_ours(official, value):
    """The other direction: what TensorFlow writes (make_tensor_proto), tfsbench reads."""
    tf, *_ = official
    theirs = tf.make_tensor_proto(value)
    ours = messages().TensorProto.FromString(theirs.SerializeToString())
    _assert_same(value, tensor_to_array(ours))


def test_short_val_list_repeats_last_value_like_tensorflow(official):
    tf, *_ = official
    theirs = tf.make_tensor_proto(0.0, shape=[2, 2])  # one float_val for four elements
    theirs.ClearField("float_val")
    theirs.float_val.extend([1.5, 2.5])
    ours = tensor_to_array(messages().TensorProto.FromString(theirs.SerializeToString()))
    np.testing.assert_array_equal(ours, tf.make_ndarray(theirs))


def test_metadata_round_trips_through_official_protos(official):
    _, _, get_model_metadata_pb2, _ = official
    from tfsbench.server.models import ImageModel

    meta = ImageModel(1).metadata
    body = metadata_response(meta, 1).SerializeToString()
    theirs = get_model_metadata_pb2.GetModelMetadataResponse.FromString(body)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    assert theirs.metadata["signature_def"].Unpack(sig_map)
    assert set(sig_map.signature_def) == set(meta.signatures)
    again = parse_metadata_response(messages().GetModelMetadataResponse.FromString(theirs.SerializeToString()))
    for name, sig in meta.signatures.items():
        assert {s.name: (s.dtype, s.shape) for s in again.signatures[name].inputs} == {
            s.name: (s.dtype, s.shape) for s in sig.inputs}


def test_official_stub_client_gets_correct_answers_from_tfsbench_serve(official):
    """A client written only with tensorflow-serving-api (stubs, make_tensor_proto, make_ndarray)."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
    from tfsbench.server.models import ImageModel, NumericModel
    from tfsbench.server.testing import ServerThread

    tf, predict_pb2, get_model_metadata_pb2, get_model_status_pb2 = official
    server = ServerThread(grpc_port=0)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        features = np.random.default_rng(3).random((5, 4), dtype=np.float32)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "numeric"
        request.model_spec.version.value = 1
        request.inputs["features"].CopyFrom(tf.make_tensor_proto(features))
        response = stub.Predict(request, timeout=10)
        want = NumericModel(1).predict("serving_default", {"features": features})["probabilities"]
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), want, rtol=1e-6)
        assert response.model_spec.version.value == 1

        from tfsbench.payloads.generators import encode_image

        jpeg = encode_image(np.full((16, 16, 3), 120, np.uint8), "jpeg", 90)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "image"
        request.model_spec.version_label = "stable"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([jpeg, jpeg]))
        response = stub.Predict(request, timeout=10)
        want = ImageModel(1).predict("serving_default", {"image_bytes": np.array([jpeg, jpeg], dtype=object)})
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["scores"]), want["scores"], rtol=1e-6)

        request.model_spec.name = "missing"
        request.model_spec.ClearField("version_label")
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        meta_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        meta_request.model_spec.name = "text"
        meta = stub.GetModelMetadata(meta_request, timeout=10)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        assert meta.metadata["signature_def"].Unpack(sig_map)
        sig = sig_map.signature_def["serving_default"]
        assert sig.inputs["text"].dtype == tf.string.as_datatype_enum
        assert [d.size for d in sig.inputs["text"].tensor_shape.dim] == [-1, 1]

        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "numeric"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=10)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE), (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    finally:
        channel.close()
        server.stop()
