"""Model signatures as TF Serving describes them, and the metadata JSON that carries them.

`parse_metadata` reads the body of `GET /v1/models/NAME[/versions/N]/metadata`; `metadata_to_json`
writes the same document back (the embedded server answers the metadata endpoint with it). Only the
parts a REST client can use are kept: per signature, the input and output aliases with dtype and shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tfsbench.payloads.errors import InputError

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
# TF Serving lists this pseudo-signature next to the real ones; it cannot be called over REST.
INIT_OP_SIGNATURE = "__saved_model_init_op"
SIGNATURE_DEF_MAP_TYPE = "type.googleapis.com/tensorflow.serving.SignatureDefMap"

# The dtypes a REST client can send; DT_STRING values are bytes in numpy object arrays.
NUMPY_DTYPES: Mapping[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_BOOL": np.dtype(np.bool_),
    "DT_STRING": np.dtype(object),
}

# TensorFlow's DataTypeString(), which TF Serving puts in its error messages.
TF_TYPE_NAMES: Mapping[str, str] = {
    "DT_FLOAT": "float",
    "DT_DOUBLE": "double",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_BOOL": "bool",
    "DT_STRING": "string",
    "DT_HALF": "half",
    "DT_INT8": "int8",
    "DT_INT16": "int16",
    "DT_UINT8": "uint8",
    "DT_UINT32": "uint32",
    "DT_UINT64": "uint64",
}


def dtype_for_numpy(dtype: np.dtype) -> str:
    """The TF dtype name for a numpy dtype (object and bytes/str arrays are DT_STRING)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return "DT_STRING"
    for name, np_dtype in NUMPY_DTYPES.items():
        if np_dtype == dtype:
            return name
    raise InputError(f"numpy dtype {dtype} has no TF Serving REST equivalent")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One signature input or output, keyed by its alias (the name used in request JSON)."""

    name: str
    dtype: str  # TF name, e.g. "DT_FLOAT"
    shape: tuple[int, ...] | None  # includes the batch dim; -1 = unknown dim; None = unknown rank
    tensor_name: str = ""  # graph tensor, e.g. "serving_default_x:0" (informational)

    @property
    def numpy_dtype(self) -> np.dtype:
        try:
            return NUMPY_DTYPES[self.dtype]
        except KeyError:
            raise InputError(
                f"tensor '{self.name}' has dtype {self.dtype}; supported: {', '.join(NUMPY_DTYPES)}"
            ) from None

    @property
    def instance_shape(self) -> tuple[int, ...] | None:
        """The shape of one batch item (drops dim 0), or None when the rank is unknown."""
        if self.shape is None:
            return None
        return self.shape[1:]


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    method_name: str = PREDICT_METHOD

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    model_name: str
    version: str
    signatures: Mapping[str, SignatureSpec] = field(default_factory=dict)

    def signature(self, name: str | None = None) -> SignatureSpec:
        """The named signature (default `serving_default`), or InputError listing the known ones."""
        key = name or DEFAULT_SIGNATURE
        if key in self.signatures:
            return self.signatures[key]
        if name is None and len(self.signatures) == 1:
            return next(iter(self.signatures.values()))
        known = ", ".join(sorted(self.signatures)) or "none"
        raise InputError(
            f"signature '{key}' not found in model '{self.model_name}' metadata (signatures: {known})"
        )


def _where(path: str) -> str:
    return f"metadata {path}" if path else "metadata document"


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(
            f"{_where(path)} must be a JSON object, got {type(value).__name__}"
            " (expected TF Serving's GET /v1/models/NAME/metadata response)"
        )
    return value


def _require_key(doc: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in doc:
        where = f"{_where(path)}" if path else "metadata document"
        raise InputError(
            f"{where} has no '{key}' key (expected TF Serving's GET /v1/models/NAME/metadata response)"
        )
    return doc[key]


def _parse_dim(dim: Any, path: str) -> int:
    dim = _require_mapping(dim, path)
    size = dim.get("size", "0")
    try:
        value = int(size)
    except (TypeError, ValueError):
        raise InputError(f"{_where(path)}.size must be an integer (as a string), got {size!r}") from None
    if value < -1:
        raise InputError(f"{_where(path)}.size must be >= -1, got {value}")
    return value


def _parse_shape(shape_doc: Any, path: str) -> tuple[int, ...] | None:
    if shape_doc is None:
        return None
    shape_doc = _require_mapping(shape_doc, path)
    if shape_doc.get("unknown_rank", False) is True:
        return None
    dims = shape_doc.get("dim", [])
    if not isinstance(dims, list):
        raise InputError(f"{_where(path)}.dim must be a list, got {type(dims).__name__}")
    return tuple(_parse_dim(d, f"{path}.dim[{i}]") for i, d in enumerate(dims))


def _parse_tensors(doc: Any, path: str) -> tuple[TensorSpec, ...]:
    doc = _require_mapping(doc, path)
    specs = []
    for key, info in doc.items():
        where = f"{path}.{key}"
        info = _require_mapping(info, where)
        dtype = _require_key(info, "dtype", where)
        if not isinstance(dtype, str) or not dtype.startswith("DT_"):
            raise InputError(f"{_where(where)}.dtype must be a TF dtype name like 'DT_FLOAT', got {dtype!r}")
        shape = _parse_shape(info.get("tensor_shape"), f"{where}.tensor_shape")
        tensor_name = info.get("name", "")
        specs.append(TensorSpec(str(key), dtype, shape, str(tensor_name or "")))
    return tuple(specs)


def parse_metadata(doc: Mapping[str, Any]) -> ModelMetadata:
    """Read TF Serving's metadata JSON; InputError naming the first thing that does not fit."""
    doc = _require_mapping(doc, "")
    model_spec = _require_mapping(_require_key(doc, "model_spec", ""), "model_spec")
    metadata = _require_mapping(_require_key(doc, "metadata", ""), "metadata")
    sig_map = _require_mapping(_require_key(metadata, "signature_def", "metadata"), "metadata.signature_def")
    sig_defs = _require_mapping(
        _require_key(sig_map, "signature_def", "metadata.signature_def"),
        "metadata.signature_def.signature_def",
    )
    signatures: dict[str, SignatureSpec] = {}
    for sig_name, sig_doc in sig_defs.items():
        if sig_name == INIT_OP_SIGNATURE:
            continue
        where = f"signature '{sig_name}'"
        sig_doc = _require_mapping(sig_doc, where)
        inputs = _parse_tensors(sig_doc.get("inputs", {}), f"{where} inputs")
        outputs = _parse_tensors(sig_doc.get("outputs", {}), f"{where} outputs")
        method = sig_doc.get("method_name", PREDICT_METHOD)
        if not isinstance(method, str):
            raise InputError(f"{_where(where)}.method_name must be a string, got {method!r}")
        signatures[str(sig_name)] = SignatureSpec(str(sig_name), inputs, outputs, method)
    if not signatures:
        raise InputError("metadata document lists no callable signatures in metadata.signature_def.signature_def")
    name = model_spec.get("name", "")
    version = model_spec.get("version", "")
    if not isinstance(name, str) or not isinstance(version, str | int):
        raise InputError("metadata model_spec.name must be a string and model_spec.version a string")
    return ModelMetadata(model_name=name, version=str(version), signatures=signatures)


def _shape_to_json(shape: tuple[int, ...] | None) -> dict[str, Any]:
    if shape is None:
        return {"dim": [], "unknown_rank": True}
    return {"dim": [{"size": str(d), "name": ""} for d in shape], "unknown_rank": False}


def _tensors_to_json(sig_name: str, specs: tuple[TensorSpec, ...]) -> dict[str, Any]:
    return {
        spec.name: {
            "dtype": spec.dtype,
            "tensor_shape": _shape_to_json(spec.shape),
            "name": spec.tensor_name or f"{sig_name}_{spec.name}:0",
        }
        for spec in specs
    }


def metadata_to_json(meta: ModelMetadata) -> dict[str, Any]:
    """The exact inverse of `parse_metadata`: TF Serving's metadata response for `meta`."""
    sig_defs = {
        name: {
            "inputs": _tensors_to_json(name, sig.inputs),
            "outputs": _tensors_to_json(name, sig.outputs),
            "method_name": sig.method_name,
        }
        for name, sig in meta.signatures.items()
    }
    return {
        "model_spec": {"name": meta.model_name, "signature_name": "", "version": meta.version},
        "metadata": {"signature_def": {"@type": SIGNATURE_DEF_MAP_TYPE, "signature_def": sig_defs}},
    }
