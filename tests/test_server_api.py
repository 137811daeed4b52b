"""The embedded target answers TF Serving's REST API: routes, status, metadata, predict, errors, CORS."""

from __future__ import annotations

import base64
import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image
from tfsbench.server.testing import http_request


def call(url: str, method: str, path: str, body: object = None, headers: dict | None = None):
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return http_request(url, method, path, body, headers)


def error_of(url: str, method: str, path: str, body: object = None, headers: dict | None = None):
    status, _, data = call(url, method, path, body, headers)
    doc = json.loads(data)
    assert set(doc) == {"error"}, doc
    return status, doc["error"]


def jpeg_bytes(color=(200, 30, 30), size=(48, 40), fmt="JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


# ------------------------------------------------------------------------------------- status


def test_status_lists_versions_newest_first_as_strings(tfs_url):
    status, headers, data = call(tfs_url, "GET", "/v1/models/numeric")
    assert status == 200
    assert headers["content-type"] == "application/json"
    doc = json.loads(data)
    assert doc == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }


@pytest.mark.parametrize(
    "path, version",
    [("/v1/models/text/versions/1", "1"), ("/v1/models/text/labels/stable", "1"), ("/V1/MODELS/text/Versions/2", "2")],
)
def test_status_of_one_version_or_label(tfs_url, path, version):
    status, _, data = call(tfs_url, "GET", path)
    assert status == 200
    assert [v["version"] for v in json.loads(data)["model_version_status"]] == [version]


@pytest.mark.parametrize(
    "path, code, message",
    [
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("/v1/models/numeric/versions/7", 404, "Could not find version 7 of model numeric"),
        ("/v1/models/numeric/labels/canary", 400, "Unrecognized servable version label: canary"),
        ("/v1/models", 400, "Missing model name in request."),
        ("/v1/models/numeric/versions/x", 400, "Malformed request: GET /v1/models/numeric/versions/x"),
        ("/v1/models/numeric/", 400, "Malformed request: GET /v1/models/numeric/"),
        ("/v1/", 400, "Malformed request: GET /v1/"),
        (
            "/v1/models/numeric/versions/99999999999999999999",
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
    ],
)
def test_status_errors(tfs_url, path, code, message):
    assert error_of(tfs_url, "GET", path) == (code, message)


def test_model_names_are_url_decoded_and_case_sensitive(tfs_url):
    assert call(tfs_url, "GET", "/v1/models/%6Eumeric")[0] == 200
    assert error_of(tfs_url, "GET", "/v1/models/Numeric") == (404, "Could not find any versions of model Numeric")


@pytest.mark.parametrize("path", ["/", "/v1", "/v2/models/numeric", "/models/numeric", "/favicon.ico"])
def test_paths_outside_v1_are_html_404(tfs_url, path):
    status, headers, data = call(tfs_url, "GET", path)
    assert status == 404
    assert headers["content-type"].startswith("text/html")
    assert b"404 Not Found" in data


# ----------------------------------------------------------------------------------- metadata


def test_metadata_has_tf_serving_shape(tfs_url):
    status, _, data = call(tfs_url, "GET", "/v1/models/image/metadata")
    assert status == 200
    doc = json.loads(data)
    assert doc["model_spec"] == {"name": "image", "signature_name": "", "version": "2"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    inp = sig["inputs"]["image_bytes"]
    assert inp["dtype"] == "DT_STRING"
    assert [d["size"] for d in inp["tensor_shape"]["dim"]] == ["-1"]
    assert sig["outputs"]["scores"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["outputs"]["scores"]["tensor_shape"]["dim"]] == ["-1", "10"]
    assert sig["outputs"]["classes"]["dtype"] == "DT_INT64"


@pytest.mark.parametrize(
    "model, inputs, outputs",
    [
        ("numeric", {"features": ("DT_FLOAT", ["-1", "4"])}, {"probabilities": ("DT_FLOAT", ["-1", "3"])}),
        ("text", {"text": ("DT_STRING", ["-1", "1"])}, {"scores": ("DT_FLOAT", ["-1", "2"])}),
    ],
)
def test_demo_signatures_are_the_contract(tfs_url, model, inputs, outputs):
    doc = json.loads(call(tfs_url, "GET", f"/v1/models/{model}/labels/stable/metadata")[2])
    assert doc["model_spec"]["version"] == "1"
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    for got, want in ((sig["inputs"], inputs), (sig["outputs"], outputs)):
        assert {k: (v["dtype"], [d["size"] for d in v["tensor_shape"]["dim"]]) for k, v in got.items()} == want


def test_metadata_errors(tfs_url):
    assert error_of(tfs_url, "GET", "/v1/models/nope/metadata") == (404, "Servable not found for request: Latest(nope)")
    assert error_of(tfs_url, "GET", "/v1/models/text/versions/3/metadata") == (
        404,
        "Servable not found for request: Specific(text, 3)",
    )


# ------------------------------------------------------------------------------------ predict


def test_numeric_row_and_columnar_agree_and_are_probabilities(tfs_url):
    rows = [[0.5, -1.0, 2.0, 0.1], [1.0, 1.0, 1.0, 1.0], [0, 0, 0, 0]]
    status, _, data = call(tfs_url, "POST", "/v1/models/numeric:predict", {"instances": rows})
    assert status == 200
    preds = np.array(json.loads(data)["predictions"])
    assert preds.shape == (3, 3)
    np.testing.assert_allclose(preds.sum(axis=1), 1.0, atol=1e-5)
    status, _, data = call(tfs_url, "POST", "/v1/models/numeric:predict", {"inputs": {"features": rows}})
    assert status == 200
    np.testing.assert_allclose(np.array(json.loads(data)["outputs"]), preds, atol=1e-7)


def test_predictions_are_deterministic_and_batch_independent(tfs_url):
    one = json.loads(call(tfs_url, "POST", "/v1/models/numeric:predict", {"instances": [[1, 2, 3, 4]]})[2])
    many = json.loads(call(tfs_url, "POST", "/v1/models/numeric:predict", {"instances": [[1, 2, 3, 4]] * 5})[2])
    assert many["predictions"] == one["predictions"] * 5


def test_versions_and_labels_route_to_different_weights(tfs_url):
    body = {"instances": [[0.3, -0.2, 0.9, 1.5]]}
    latest = json.loads(call(tfs_url, "POST", "/v1/models/numeric:predict", body)[2])
    v2 = json.loads(call(tfs_url, "POST", "/v1/models/numeric/versions/2:predict", body)[2])
    v1 = json.loads(call(tfs_url, "POST", "/v1/models/numeric/versions/1:predict", body)[2])
    stable = json.loads(call(tfs_url, "POST", "/V1/Models/numeric/LABELS/stable:PREDICT".replace(":PREDICT", ":predict"), body)[2])
    assert latest == v2
    assert stable == v1
    assert v1 != v2


def test_text_model_scores(tfs_url):
    body = {"instances": [["what a lovely day"], ["terrible, awful service!!"], [""]]}
    status, _, data = call(tfs_url, "POST", "/v1/models/text:predict", body)
    assert status == 200
    scores = np.array(json.loads(data)["predictions"])
    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(scores[0], scores[1])


def test_text_accepts_b64_strings(tfs_url):
    plain = call(tfs_url, "POST", "/v1/models/text:predict", {"instances": [["hello"]]})[2]
    wrapped = {"instances": [[{"b64": base64.b64encode(b"hello").decode()}]]}
    assert call(tfs_url, "POST", "/v1/models/text:predict", wrapped)[2] == plain


def test_image_model_multiple_outputs_row_and_columnar(tfs_url):
    images = [jpeg_bytes((200, 30, 30)), jpeg_bytes((20, 200, 30), fmt="PNG")]
    b64 = [{"b64": base64.b64encode(b).decode()} for b in images]
    status, _, data = call(tfs_url, "POST", "/v1/models/image:predict", {"instances": b64})
    assert status == 200
    preds = json.loads(data)["predictions"]
    assert len(preds) == 2 and set(preds[0]) == {"scores", "classes"}
    assert len(preds[0]["scores"]) == 10 and isinstance(preds[0]["classes"], int)
    assert preds[0]["classes"] == int(np.argmax(preds[0]["scores"]))
    status, _, data = call(tfs_url, "POST", "/v1/models/image:predict", {"inputs": {"image_bytes": b64}})
    assert status == 200
    outputs = json.loads(data)["outputs"]
    assert outputs["classes"] == [p["classes"] for p in preds]
    np.testing.assert_allclose(outputs["scores"], [p["scores"] for p in preds], atol=1e-7)


def test_image_without_b64_wrapper_is_a_clear_400(tfs_url):
    raw_b64 = base64.b64encode(jpeg_bytes()).decode()
    status, message = error_of(tfs_url, "POST", "/v1/models/image:predict", {"instances": [raw_b64]})
    assert status == 400
    assert "image_bytes[0] is not a decodable JPEG or PNG image" in message
    assert '{"b64": "..."}' in message
    status, message = error_of(
        tfs_url, "POST", "/v1/models/image:predict", {"instances": [{"b64": base64.b64encode(b"GIF89a..").decode()}]}
    )
    assert status == 400 and "not a decodable JPEG or PNG image" in message


def test_signature_name_default_and_unknown(tfs_url):
    body = {"signature_name": "serving_default", "instances": [[1, 2, 3, 4]]}
    assert call(tfs_url, "POST", "/v1/models/numeric:predict", body)[0] == 200
    body["signature_name"] = "classify_me"
    assert error_of(tfs_url, "POST", "/v1/models/numeric:predict", body) == (
        400,
        'Serving signature name: "classify_me" not found in signature def',
    )


def test_gzip_request_body(tfs_url):
    body = json.dumps({"instances": [[1, 2, 3, 4]]}).encode()
    plain = call(tfs_url, "POST", "/v1/models/numeric:predict", body)
    zipped = call(tfs_url, "POST", "/v1/models/numeric:predict", gzip.compress(body), {"Content-Encoding": "gzip"})
    assert zipped[0] == 200 and zipped[2] == plain[2]


def test_corrupt_gzip_is_400_and_server_survives(tfs_url):
    status, message = error_of(
        tfs_url, "POST", "/v1/models/numeric:predict", b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}
    )
    assert status == 400 and "Failed to decompress gzip request body" in message
    assert call(tfs_url, "GET", "/v1/models/numeric")[0] == 200


@pytest.mark.parametrize(
    "path, body, code, message",
    [
        ("/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(nope)"),
        (
            "/v1/models/numeric/versions/9:predict",
            {"instances": [[1, 2, 3, 4]]},
            404,
            "Servable not found for request: Specific(numeric, 9)",
        ),
        (
            "/v1/models/numeric/labels/canary:predict",
            {"instances": [[1, 2, 3, 4]]},
            400,
            "Unrecognized servable version label: canary",
        ),
        (
            "/v1/models/numeric/versions/1/labels/stable:predict",
            {"instances": [[1, 2, 3, 4]]},
            400,
            "Malformed request: POST /v1/models/numeric/versions/1/labels/stable:predict",
        ),
        ("/v1/models/numeric:predict", b"", 400, "JSON Parse error: The document is empty"),
        ("/v1/models/nope:predict", b"{oops", 400, None),  # JSON is parsed before the model lookup
        ("/v1/models/numeric:predict", {"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, 400, None),
        ("/v1/models/numeric:predict", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/numeric:predict", {"instances": [[1, 2, 3, 4], [1, 2, 3]]}, 400, None),
        ("/v1/models/numeric:predict", {"instances": [[1, 2, "x", 4]]}, 400, None),
        ("/v1/models/numeric:predict", {"inputs": {"feature": [[1, 2, 3, 4]]}}, 400, None),
        ("/v1/models/numeric:predict", {"instances": []}, 400, None),
        ("/v1/models/numeric:PREDICT", {"instances": [[1, 2, 3, 4]]}, 400, "Malformed request: POST /v1/models/numeric:PREDICT"),
        ("/v1/models/numeric:explain", {"instances": [[1, 2, 3, 4]]}, 400, "Malformed request: POST /v1/models/numeric:explain"),
        ("/v1/models/numeric", {"instances": [[1, 2, 3, 4]]}, 400, "Malformed request: POST /v1/models/numeric"),
    ],
)
def test_predict_errors(tfs_url, path, body, code, message):
    status, got = error_of(tfs_url, "POST", path, body)
    assert status == code, got
    if message is not None:
        assert got == message
    elif code == 400 and path.startswith("/v1/models/nope"):
        assert got.startswith("JSON Parse error:")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, "expecting only one of 'inputs' or 'instances'"),
        ({"instances": [[1, 2, 3, 4], [1, 2, 3]]}, "Expecting tensor size: 4 but got: 3"),
        ({"instances": [[1, 2, "x", 4]]}, "is not of expected type: float"),
        ({"inputs": {"feature": [[1, 2, 3, 4]]}}, "Missing named input: features in 'inputs' object."),
        ({"instances": []}, "No values in 'instances' array"),
    ],
)
def test_predict_error_texts_follow_tf_serving(tfs_url, body, fragment):
    status, message = error_of(tfs_url, "POST", "/v1/models/numeric:predict", body)
    assert status == 400 and fragment in message


def test_version_and_label_together_in_status_path_are_malformed(tfs_url):
    # The regex allows a version OR a label; both do not match any route.
    status, message = error_of(tfs_url, "GET", "/v1/models/numeric/versions/1/labels/stable")
    assert (status, message) == (400, "Malformed request: GET /v1/models/numeric/versions/1/labels/stable")


@pytest.mark.parametrize("verb, kind", [("classify", "classification"), ("regress", "regression")])
def test_classify_regress_on_predict_only_models(tfs_url, verb, kind):
    body = {"examples": [{"x": 1.0}]}
    status, message = error_of(tfs_url, "POST", f"/v1/models/numeric:{verb}", body)
    assert status == 400
    assert message == (
        f"Expected {kind} signature method_name to be tensorflow/serving/{verb}. Was: tensorflow/serving/predict"
    )
    assert error_of(tfs_url, "POST", f"/v1/models/nope:{verb}", body) == (
        404,
        "Servable not found for request: Latest(nope)",
    )
    status, message = error_of(tfs_url, "POST", f"/v1/models/numeric:{verb}", {"instances": [1]})
    assert status == 400 and "key 'examples' is expected and was not found" in message


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_malformed(tfs_url, method):
    assert error_of(tfs_url, method, "/v1/models/numeric") == (400, f"Malformed request: {method} /v1/models/numeric")


# --------------------------------------------------------------------------------------- limits


def test_body_over_the_limit_is_413(tfs_server):
    url = tfs_server(max_body_bytes=200)
    small = {"instances": [[1, 2, 3, 4]]}
    assert call(url, "POST", "/v1/models/numeric:predict", small)[0] == 200
    big = {"instances": [[1.5, 2.5, 3.5, 4.5]] * 40}
    status, message = error_of(url, "POST", "/v1/models/numeric:predict", big)
    assert status == 413
    assert "exceeds the limit of 200 bytes (--max-body-bytes)" in message
    assert call(url, "GET", "/v1/models/numeric")[0] == 200


def test_gzip_bomb_is_capped_by_decompressed_size(tfs_server):
    url = tfs_server(max_decompressed_bytes=10_000)
    bomb = gzip.compress(b'{"instances": [' + b" " * 1_000_000 + b"]}")
    assert len(bomb) < 10_000
    status, message = error_of(url, "POST", "/v1/models/numeric:predict", bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed size" in message


def test_json_depth_limit(tfs_server):
    url = tfs_server(max_json_depth=3)
    status, _ = error_of(url, "POST", "/v1/models/numeric:predict", {"inputs": [[[[[1.0, 2, 3, 4]]]]]})
    assert status == 400
    assert call(url, "POST", "/v1/models/numeric:predict", {"inputs": [[1, 2, 3, 4]]})[0] == 200


# ----------------------------------------------------------------------------------------- CORS

CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, GET",
    "access-control-allow-headers": "Content-Type",
}


def test_cors_off_by_default(tfs_url):
    status, headers, _ = call(tfs_url, "GET", "/v1/models/numeric", headers={"Origin": "http://example.com"})
    assert status == 200
    assert not set(CORS) & set(headers)
    status, message = error_of(tfs_url, "OPTIONS", "/v1/models/numeric:predict", headers={"Origin": "http://a.b"})
    assert (status, message) == (400, "Malformed request: OPTIONS /v1/models/numeric:predict")


def test_cors_on_adds_headers_everywhere_in_v1(tfs_server):
    url = tfs_server(enable_cors=True)
    for method, path, body, want in [
        ("GET", "/v1/models/numeric", None, 200),
        ("POST", "/v1/models/numeric:predict", {"instances": [[1, 2, 3, 4]]}, 200),
        ("POST", "/v1/models/nope:predict", {"instances": [[1, 2, 3, 4]]}, 404),
        ("GET", "/v1/models", None, 400),
    ]:
        status, headers, _ = call(url, method, path, body)
        assert status == want
        assert {k: headers.get(k) for k in CORS} == CORS


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://dashboard.example.com"])
def test_cors_preflight_ok(tfs_server, origin):
    url = tfs_server(enable_cors=True)
    status, headers, body = call(
        url,
        "OPTIONS",
        "/v1/models/numeric:predict",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert status == 200
    assert {k: headers.get(k) for k in CORS} == CORS
    assert body == b""


@pytest.mark.parametrize("headers", [{}, {"Origin": "null"}, {"Origin": "file:///tmp/x.html"}, {"Origin": "example.com"}])
def test_cors_preflight_without_valid_origin_is_400(tfs_server, headers):
    url = tfs_server(enable_cors=True)
    status, message = error_of(url, "OPTIONS", "/v1/models/numeric:predict", headers=headers)
    assert (status, message) == (400, "Origin header is missing in CORS preflight")


# ------------------------------------------------------------------------- multiple named inputs


class PairModel:
    """Two named inputs, two named outputs: exercises the multi-tensor paths of the REST layer."""

    def __init__(self) -> None:
        from tfsbench.payloads.signature import ModelMetadata, SignatureSpec, TensorSpec

        sig = SignatureSpec(
            "serving_default",
            (TensorSpec("a", "DT_FLOAT", (-1, 2)), TensorSpec("b", "DT_INT64", (-1,))),
            (TensorSpec("total", "DT_FLOAT", (-1,)), TensorSpec("label_bytes", "DT_STRING", (-1,))),
        )
        self.metadata = ModelMetadata("pair", "1", {"serving_default": sig})

    def predict(self, signature_name, inputs):
        total = inputs["a"].sum(axis=1) + inputs["b"].astype(np.float32)
        labels = np.array([f"n{int(v)}".encode() for v in inputs["b"]], dtype=object)
        return {"total": total.astype(np.float32), "label_bytes": labels}


@pytest.fixture(scope="module")
def pair_url():
    from tfsbench.server.registry import ModelRegistry
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread(ModelRegistry({"pair": {1: PairModel()}})) as url:
        yield url


def test_multiple_named_inputs_row_and_columnar(pair_url):
    row = {"instances": [{"a": [1.0, 2.0], "b": 3}, {"a": [0.5, 0.5], "b": 1}]}
    status, _, data = call(pair_url, "POST", "/v1/models/pair:predict", row)
    assert status == 200
    preds = json.loads(data)["predictions"]
    assert [p["total"] for p in preds] == [6.0, 2.0]
    # DT_STRING outputs named *_bytes come back base64-wrapped
    assert [base64.b64decode(p["label_bytes"]["b64"]) for p in preds] == [b"n3", b"n1"]
    columnar = {"inputs": {"a": [[1.0, 2.0], [0.5, 0.5]], "b": [3, 1]}}
    status, _, data = call(pair_url, "POST", "/v1/models/pair:predict", columnar)
    assert status == 200
    outputs = json.loads(data)["outputs"]
    assert outputs["total"] == [6.0, 2.0]
    assert outputs["label_bytes"] == [{"b64": base64.b64encode(b"n3").decode()}, {"b64": base64.b64encode(b"n1").decode()}]


def test_multiple_inputs_errors(pair_url):
    status, message = error_of(pair_url, "POST", "/v1/models/pair:predict", {"inputs": {"a": [[1.0, 2.0]]}})
    assert (status, message) == (400, "Missing named input: b in 'inputs' object.")
    status, message = error_of(pair_url, "POST", "/v1/models/pair:predict", {"instances": [[1.0, 2.0]]})
    assert status == 400 and "expecting list of objects as multiple input tensors" in message
    status, message = error_of(
        pair_url, "POST", "/v1/models/pair:predict", {"instances": [{"a": [1.0, 2.0], "b": 1, "c": 2}]}
    )
    assert status == 400 and "does not have named input: c" in message
