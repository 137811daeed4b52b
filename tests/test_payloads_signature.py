"""Metadata documents written by hand in TF Serving's exact format: parse, serialize, reject."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import (
    DEFAULT_SIGNATURE,
    NUMPY_DTYPES,
    ModelMetadata,
    SignatureSpec,
    TensorSpec,
    metadata_to_json,
    parse_metadata,
)

SIG_MAP_TYPE = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def dim(size: int) -> dict:
    return {"size": str(size), "name": ""}


def tensor(dtype: str, dims: list[int] | None, name: str) -> dict:
    if dims is None:
        return {"dtype": dtype, "tensor_shape": {"dim": [], "unknown_rank": True}, "name": name}
    return {"dtype": dtype, "tensor_shape": {"dim": [dim(d) for d in dims], "unknown_rank": False}, "name": name}


def document(signatures: dict, name: str = "m", version: str = "1") -> dict:
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {"signature_def": {"@type": SIG_MAP_TYPE, "signature_def": signatures}},
    }


SINGLE = document(
    {
        "serving_default": {
            "inputs": {"features": tensor("DT_FLOAT", [-1, 4], "serving_default_features:0")},
            "outputs": {"probabilities": tensor("DT_FLOAT", [-1, 3], "StatefulPartitionedCall:0")},
            "method_name": "tensorflow/serving/predict",
        }
    },
    name="numeric",
    version="2",
)

MULTI = document(
    {
        "serving_default": {
            "inputs": {
                "image_bytes": tensor("DT_STRING", [-1], "serving_default_image_bytes:0"),
                "ids": tensor("DT_INT64", [-1, -1], "serving_default_ids:0"),
                "mask": tensor("DT_BOOL", [-1, 8], "serving_default_mask:0"),
                "scale": tensor("DT_DOUBLE", [], "serving_default_scale:0"),
                "count": tensor("DT_INT32", [-1, 1], "serving_default_count:0"),
            },
            "outputs": {
                "scores": tensor("DT_FLOAT", [-1, 10], "StatefulPartitionedCall:0"),
                "classes": tensor("DT_INT64", [-1], "StatefulPartitionedCall:1"),
            },
            "method_name": "tensorflow/serving/predict",
        },
        "embed": {
            "inputs": {"text": tensor("DT_STRING", [-1, 1], "embed_text:0")},
            "outputs": {"vector": tensor("DT_FLOAT", [-1, 16], "StatefulPartitionedCall_1:0")},
            "method_name": "tensorflow/serving/predict",
        },
    }
)

UNKNOWN_RANK = document(
    {
        "serving_default": {
            "inputs": {"x": tensor("DT_FLOAT", None, "serving_default_x:0")},
            "outputs": {"y": tensor("DT_FLOAT", None, "PartitionedCall:0")},
            "method_name": "tensorflow/serving/predict",
        }
    }
)


def test_parse_single_input_document():
    meta = parse_metadata(SINGLE)
    assert meta.model_name == "numeric" and meta.version == "2"
    sig = meta.signatures[DEFAULT_SIGNATURE]
    assert sig.inputs == (TensorSpec("features", "DT_FLOAT", (-1, 4), "serving_default_features:0"),)
    assert sig.output("probabilities").shape == (-1, 3)
    assert sig.input("features").instance_shape == (4,)
    assert sig.input("features").numpy_dtype == np.float32
    assert sig.method_name == "tensorflow/serving/predict"
    with pytest.raises(KeyError):
        sig.input("nope")


def test_parse_multiple_inputs_and_signatures():
    meta = parse_metadata(MULTI)
    assert set(meta.signatures) == {"serving_default", "embed"}
    sig = meta.signature()
    assert sig.input_names == ("image_bytes", "ids", "mask", "scale", "count")
    assert sig.input("scale").shape == ()
    assert sig.input("ids").shape == (-1, -1)
    assert {s.dtype for s in sig.inputs} == {"DT_STRING", "DT_INT64", "DT_BOOL", "DT_DOUBLE", "DT_INT32"}
    assert meta.signature("embed").input("text").shape == (-1, 1)
    with pytest.raises(InputError, match="signature 'nope' not found.*embed, serving_default"):
        meta.signature("nope")


def test_parse_unknown_rank():
    sig = parse_metadata(UNKNOWN_RANK).signature()
    assert sig.input("x").shape is None and sig.input("x").instance_shape is None


@pytest.mark.parametrize("doc", [SINGLE, MULTI, UNKNOWN_RANK], ids=["single", "multi", "unknown-rank"])
def test_serialize_is_the_exact_inverse(doc):
    meta = parse_metadata(doc)
    assert metadata_to_json(meta) == doc
    assert parse_metadata(metadata_to_json(meta)) == meta


def test_saved_model_init_op_is_skipped():
    doc = copy.deepcopy(SINGLE)
    doc["metadata"]["signature_def"]["signature_def"]["__saved_model_init_op"] = {
        "inputs": {},
        "outputs": {"__saved_model_init_op": tensor("DT_INVALID", None, "NoOp")},
        "method_name": "",
    }
    assert list(parse_metadata(doc).signatures) == ["serving_default"]


def test_serialize_built_metadata_round_trips():
    meta = ModelMetadata(
        "demo", "7", {"serving_default": SignatureSpec("serving_default", (TensorSpec("x", "DT_INT32", (-1,)),), ())}
    )
    doc = metadata_to_json(meta)
    assert doc["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["x"] == {
        "dtype": "DT_INT32",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
        "name": "serving_default_x:0",
    }
    assert parse_metadata(doc).signature().inputs == (TensorSpec("x", "DT_INT32", (-1,), "serving_default_x:0"),)


def test_numpy_dtypes_cover_the_rest_dtypes():
    assert NUMPY_DTYPES["DT_STRING"] == np.dtype(object)
    assert set(NUMPY_DTYPES) == {"DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_INT64", "DT_BOOL", "DT_STRING"}


def _broken(path: list, value) -> dict:
    doc = copy.deepcopy(SINGLE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


SIG_PATH = ["metadata", "signature_def", "signature_def"]


@pytest.mark.parametrize(
    "doc,message",
    [
        ([1, 2], "must be a JSON object"),
        ({"model_version_status": []}, "no 'model_spec' key"),
        (_broken(["metadata"], KeyError), "no 'metadata' key"),
        (_broken(["metadata", "signature_def"], KeyError), "metadata has no 'signature_def' key"),
        (_broken(SIG_PATH, KeyError), "metadata.signature_def has no 'signature_def' key"),
        (_broken(SIG_PATH, []), "must be a JSON object"),
        (_broken(SIG_PATH, {}), "no callable signatures"),
        (_broken([*SIG_PATH, "serving_default", "inputs"], [1]), "inputs must be a JSON object"),
        (_broken([*SIG_PATH, "serving_default", "inputs", "features", "dtype"], KeyError), "no 'dtype' key"),
        (_broken([*SIG_PATH, "serving_default", "inputs", "features", "dtype"], "float32"), "TF dtype name"),
        (_broken([*SIG_PATH, "serving_default", "inputs", "features", "tensor_shape", "dim"], 4), "dim must be a list"),
        (_broken([*SIG_PATH, "serving_default", "inputs", "features", "tensor_shape", "dim", 0, "size"], "x"),
         "size must be an integer"),
        (_broken([*SIG_PATH, "serving_default", "method_name"], 3), "method_name must be a string"),
    ],
)
def test_documents_not_in_tf_serving_shape_are_rejected_with_a_named_reason(doc, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_metadata(doc)
