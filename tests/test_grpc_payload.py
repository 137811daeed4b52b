"""`tfsbench payload --protocol grpc`: the request exactly as sent, the protocol size table, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from tfsbench.payloads.generators import make_generator
from tfsbench.payloads.grpc_codec import encode_predict_request, tensor_to_array
from tfsbench.payloads.grpc_pool import GrpcTarget, build_grpc_pool, protocol_size_table
from tfsbench.payloads.spec import PayloadSpec
from tfsbench.payloads.tfs_proto import messages

from tfsbench.cli import main


def test_payload_writes_the_request_as_sent(tmp_path, capsys):
    out = tmp_path / "body.pb"
    assert main(["payload", "--protocol", "grpc", "--kind", "numeric", "--batch-size", "3", "--seed", "5",
                 "--version", "2", "--out", str(out)]) == 0
    assert "serialized tensorflow.serving.PredictRequest" in capsys.readouterr().err
    body = out.read_bytes()
    spec = PayloadSpec("numeric", 3, seed=5)
    assert body == build_grpc_pool(spec, GrpcTarget("numeric", version=2), 1).bodies[0]
    request = messages().PredictRequest.FromString(body)
    assert request.model_spec.name == "numeric" and request.model_spec.version.value == 2
    want = make_generator(spec, None).batch(3, np.random.default_rng(5))["features"]
    np.testing.assert_array_equal(tensor_to_array(request.inputs["features"]), want)


def test_same_seed_same_tensors_as_rest():
    """A gRPC pool and a REST pool of one spec carry the same generated data."""
    spec = PayloadSpec("text", 4, seed=9)
    pool = build_grpc_pool(spec, GrpcTarget("text"), 3)
    rng = np.random.default_rng(9)
    gen = make_generator(spec, None)
    for body in pool.bodies:
        inputs = gen.batch(4, rng)
        assert body == encode_predict_request(inputs, "text")


@pytest.mark.slow
def test_size_table_orders_encodings_as_expected(capsys):
    rows = {(r.kind, r.batch_size): r for r in protocol_size_table(["text", "image", "numeric"], [1, 64], pool_size=2)}
    image = rows[("image", 64)]
    assert image.raw_bytes < image.protobuf_bytes < image.raw_bytes * 1.01  # raw bytes, no base64
    assert image.json_bytes > image.raw_bytes * 4 / 3  # base64
    numeric = rows[("numeric", 64)]
    assert numeric.protobuf_bytes < numeric.raw_bytes + 64 and numeric.json_over_protobuf > 2
    assert main(["payload", "--protocol", "grpc", "--sizes", "--pool-size", "1", "--batch-sizes", "1,8"]) == 0
    text = capsys.readouterr().out
    assert "protobuf" in text and "JSON+gzip" in text


@pytest.mark.parametrize(("args", "fragment"), [
    (["--kind", "auto", "--metadata", "tests/fixtures/none.json"], "--metadata"),
    (["--gzip"], "--gzip is HTTP's Content-Encoding"),
    (["--sizes", "--kinds", "auto"], "kind auto is not supported"),
])
def test_bad_grpc_payload_input(args, fragment, capsys, tmp_path):
    status = main(["payload", "--protocol", "grpc", "--out", str(tmp_path / "b.pb"), *args])
    err = capsys.readouterr().err
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "b.pb").exists()


def test_version_and_label_together_is_refused(capsys, tmp_path):
    status = main(["payload", "--protocol", "grpc", "--version", "1", "--label", "stable", "--out",
                   str(tmp_path / "b.pb")])
    err = capsys.readouterr().err
    assert status == 2 and "not both" in err
