"""SavedModel backend and docker/export_models.py (extra `tf`): the exported demo models, served through
the same REST layer, answer like the numpy models (numeric and text within 1e-4)."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow, pytest.mark.xdist_group("tensorflow")]
# one xdist worker imports TensorFlow (about 5 s of CPU) for both modules that need it

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    spec = importlib.util.spec_from_file_location("export_models", ROOT / "docker" / "export_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("savedmodels")
    module.export_all(out)
    return out


def image_b64(color, fmt="PNG") -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, fmt)
    return {"b64": base64.b64encode(buf.getvalue()).decode()}


BODIES = {
    "numeric": [
        {"instances": [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.1], [0, 0, 0, 0]]},
        {"inputs": {"features": [[-3.0, 0.25, 7.5, 1.0]]}},
    ],
    "text": [
        {"instances": [["what a lovely day"], ["terrible, awful service!!"], [""], ["ünïcödé ✓ 日本語"]]},
        {"inputs": [["hello"], ["world"]]},
    ],
}


def predict(url: str, path: str, body: dict) -> tuple[int, dict]:
    from tfsbench.server.testing import http_request

    status, _, data = http_request(url, "POST", path, json.dumps(body).encode())
    return status, json.loads(data)


@pytest.mark.parametrize("model", ["numeric", "text"])
@pytest.mark.slow
def test_savedmodel_matches_numpy_backend(exported, tfs_url, model):
    from tfsbench.server.savedmodel import savedmodel_registry
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread(savedmodel_registry(model, str(exported / model))) as url:
        for version in (1, 2):
            for body in BODIES[model]:
                path = f"/v1/models/{model}/versions/{version}:predict"
                got_status, got = predict(url, path, body)
                want_status, want = predict(tfs_url, path, body)
                assert got_status == want_status == 200, got
                key = "predictions" if "instances" in body else "outputs"
                np.testing.assert_allclose(np.array(got[key]), np.array(want[key]), atol=1e-4)


@pytest.mark.slow
def test_savedmodel_metadata_equals_demo_signatures(exported, tfs_url):
    from tfsbench.server.savedmodel import savedmodel_registry
    from tfsbench.server.testing import http_request, serve_in_thread

    def signature(url: str, model: str) -> dict:
        doc = json.loads(http_request(url, "GET", f"/v1/models/{model}/metadata")[2])
        sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
        return {
            side: {k: (v["dtype"], [d["size"] for d in v["tensor_shape"]["dim"]]) for k, v in sig[side].items()}
            for side in ("inputs", "outputs")
        }

    for model in ("numeric", "text", "image"):
        with serve_in_thread(savedmodel_registry(model, str(exported / model))) as url:
            assert signature(url, model) == signature(tfs_url, model)
            status = json.loads(http_request(url, "GET", f"/v1/models/{model}")[2])
            assert [v["version"] for v in status["model_version_status"]] == ["2", "1"]


def test_savedmodel_image_same_signature_close_scores(exported, tfs_url):
    from tfsbench.server.savedmodel import savedmodel_registry
    from tfsbench.server.testing import serve_in_thread

    body = {"instances": [image_b64((200, 30, 30)), image_b64((10, 10, 220))]}
    with serve_in_thread(savedmodel_registry("image", str(exported / "image"))) as url:
        status, got = predict(url, "/v1/models/image:predict", body)
        assert status == 200
        _, want = predict(tfs_url, "/v1/models/image:predict", body)
        assert [p["classes"] for p in got["predictions"]] == [p["classes"] for p in want["predictions"]]
        np.testing.assert_allclose(
            [p["scores"] for p in got["predictions"]], [p["scores"] for p in want["predictions"]], atol=1e-2
        )
        status, doc = predict(url, "/v1/models/image:predict", {"instances": [{"b64": "aGVsbG8="}]})
        assert status == 400 and doc["error"]


def test_savedmodel_errors_follow_the_codec(exported):
    from tfsbench.server.savedmodel import savedmodel_registry
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread(savedmodel_registry("numeric", str(exported / "numeric"))) as url:
        status, doc = predict(url, "/v1/models/numeric:predict", {"instances": [[1, 2, 3]]})
        assert status == 400 and doc["error"]
        status, doc = predict(url, "/v1/models/numeric/versions/3:predict", {"instances": [[1, 2, 3, 4]]})
        assert (status, doc) == (404, {"error": "Servable not found for request: Specific(numeric, 3)"})


@pytest.mark.slow
def test_cli_serves_a_savedmodel(exported):
    from tfsbench.server.testing import serve_subprocess

    with serve_subprocess("--model-name", "mymodel", "--model-base-path", str(exported / "numeric"),
                          timeout_s=120) as url:
        status, doc = predict(url, "/v1/models/mymodel:predict", {"instances": [[1, 2, 3, 4]]})
        assert status == 200 and len(doc["predictions"][0]) == 3


def test_export_script_cli_rejects_unknown_models():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "export_models.py"), "--models", "numeric,bogus"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "unknown model(s): bogus" in result.stderr
