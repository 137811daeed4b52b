"""TF Serving's gRPC wire form: numpy tensors <-> TensorProto, PredictRequest/Response, metadata.

The protobuf twin of `codec.py` (the JSON rules): numbers travel as `tensor_content` (little-endian,
packed; what TF's `make_tensor_proto` writes) or, as an option, in the typed `*_val` fields that
hand-written clients use; text and image bytes travel raw in `string_val` (no base64). The embedded
target decodes with the same functions, so client and server cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from tfsbench.payloads.codec import CodecError, check_input_set, check_shape
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import DEFAULT_SIGNATURE, ModelMetadata, SignatureSpec, TensorSpec
from tfsbench.payloads.tfs_proto import DATA_TYPES, messages

NUMERIC_FORMS = ("content", "val")
SIGNATURE_DEF_FIELD = "signature_def"
_DTYPE_NAMES = {v: k for k, v in DATA_TYPES.items()}
# Little-endian numpy dtypes for the TF dtypes a request can carry (tensor_content is little-endian).
_NUMPY = {
    "DT_FLOAT": np.dtype("<f4"), "DT_DOUBLE": np.dtype("<f8"), "DT_INT32": np.dtype("<i4"),
    "DT_INT64": np.dtype("<i8"), "DT_UINT8": np.dtype("u1"), "DT_INT8": np.dtype("i1"),
    "DT_INT16": np.dtype("<i2"), "DT_UINT16": np.dtype("<u2"), "DT_UINT32": np.dtype("<u4"),
    "DT_UINT64": np.dtype("<u8"), "DT_BOOL": np.dtype("?"), "DT_HALF": np.dtype("<f2"),
}
# The repeated field that holds each dtype's values in the `*_val` form (TF's tensor.proto).
_VAL_FIELD = {
    "DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT32": "int_val", "DT_UINT8": "int_val",
    "DT_INT8": "int_val", "DT_INT16": "int_val", "DT_UINT16": "int_val", "DT_INT64": "int64_val",
    "DT_BOOL": "bool_val", "DT_UINT32": "uint32_val", "DT_UINT64": "uint64_val", "DT_STRING": "string_val",
}


def check_numeric_form(form: str) -> str:
    if form not in NUMERIC_FORMS:
        raise InputError(f"numeric form must be one of {', '.join(NUMERIC_FORMS)}, got {form!r}")
    return form


def tf_dtype_name(arr: np.ndarray) -> str:
    """The TF dtype of an array (object/bytes/str arrays are DT_STRING)."""
    if arr.dtype.kind in "OSU":
        return "DT_STRING"
    for name, dtype in _NUMPY.items():
        if dtype == arr.dtype.newbyteorder("<") or dtype == arr.dtype:
            return name
    raise InputError(f"numpy dtype {arr.dtype} has no TF Serving gRPC equivalent")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def fill_tensor(tensor: Any, value: Any, numeric_form: str = "content") -> Any:
    """Write one array into a TensorProto message (dtype, shape, values) and return the message."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    dtype = tf_dtype_name(arr)
    tensor.dtype = DATA_TYPES[dtype]
    dims = tensor.tensor_shape.dim
    for size in arr.shape:
        dims.add(size=int(size))
    if dtype == "DT_STRING":
        tensor.string_val.extend([_as_bytes(v) for v in arr.reshape(-1).tolist()])
    elif numeric_form == "content":
        tensor.tensor_content = np.ascontiguousarray(arr, dtype=_NUMPY[dtype]).tobytes()
    elif dtype == "DT_HALF":
        tensor.half_val.extend(np.ascontiguousarray(arr, dtype="<f2").view("<u2").reshape(-1).tolist())
    else:
        getattr(tensor, _VAL_FIELD[dtype]).extend(arr.reshape(-1).tolist())
    return tensor


def tensor_proto(value: Any, numeric_form: str = "content") -> Any:
    """A new TensorProto holding `value`."""
    return fill_tensor(messages().TensorProto(), value, numeric_form)


def tensor_to_array(tensor: Any, alias: str = "") -> np.ndarray:
    """TensorProto -> numpy array, as TF's Tensor::FromProto reads it (short `*_val` lists repeat
    their last value; an empty one means zeros). CodecError "tensor parsing error" otherwise."""
    dtype = _DTYPE_NAMES.get(tensor.dtype, f"DT_{tensor.dtype}")
    if tensor.tensor_shape.unknown_rank:
        raise CodecError(f"tensor parsing error: {alias}")
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise CodecError(f"tensor parsing error: {alias}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if dtype == "DT_STRING":
        values = list(tensor.string_val)
        if len(values) != count:
            raise CodecError(f"tensor parsing error: {alias}")
        out = np.empty(count, dtype=object)
        out[:] = values
        return out.reshape(shape)
    np_dtype = _NUMPY.get(dtype)
    if np_dtype is None:
        raise CodecError(f"tensor parsing error: {alias}")
    if tensor.tensor_content:
        content = tensor.tensor_content
        if len(content) != count * np_dtype.itemsize:
            raise CodecError(f"tensor parsing error: {alias}")
        return np.frombuffer(content, dtype=np_dtype).reshape(shape).astype(np_dtype.newbyteorder("="))
    if dtype == "DT_HALF":
        raw = np.asarray(list(tensor.half_val), dtype=np.uint16).view(np.float16)
    else:
        raw = np.asarray(list(getattr(tensor, _VAL_FIELD[dtype])), dtype=np_dtype.newbyteorder("="))
    if len(raw) > count:
        raise CodecError(f"tensor parsing error: {alias}")
    if len(raw) == count:
        return raw.reshape(shape)
    out = np.zeros(count, dtype=np_dtype.newbyteorder("="))
    if len(raw):
        out[: len(raw)] = raw
        out[len(raw):] = raw[-1]
    return out.reshape(shape)


def set_model_spec(spec: Any, model_name: str, *, version: int | None = None, label: str | None = None,
                   signature_name: str | None = None) -> None:
    if version is not None and label is not None:
        raise InputError("give a model version or a version label, not both")
    spec.name = model_name
    if version is not None:
        spec.version.value = int(version)
    elif label is not None:
        spec.version_label = label
    if signature_name:
        spec.signature_name = signature_name


def predict_request(
    inputs: Mapping[str, Any],
    model_name: str,
    *,
    version: int | None = None,
    label: str | None = None,
    signature_name: str | None = None,
    numeric_form: str = "content",
) -> Any:
    """A PredictRequest message for named input arrays."""
    check_numeric_form(numeric_form)
    request = messages().PredictRequest()
    set_model_spec(request.model_spec, model_name, version=version, label=label, signature_name=signature_name)
    for name, value in inputs.items():
        fill_tensor(request.inputs[name], value, numeric_form)
    return request


def encode_predict_request(inputs: Mapping[str, Any], model_name: str, **kwargs: Any) -> bytes:
    """Serialized PredictRequest: the exact bytes a gRPC client sends (before gRPC's 5-byte frame)."""
    return predict_request(inputs, model_name, **kwargs).SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class GrpcRequest:
    """A decoded PredictRequest, resolved against the model's signatures (the server's view)."""

    signature: SignatureSpec
    inputs: dict[str, np.ndarray]


def _check_dtype(spec: TensorSpec, arr: np.ndarray, index: int) -> None:
    from tfsbench.payloads.signature import TF_TYPE_NAMES

    got = tf_dtype_name(arr) if arr.dtype.kind != "O" else "DT_STRING"
    if got != spec.dtype:
        raise CodecError(
            f"Expects arg[{index}] to be {TF_TYPE_NAMES.get(spec.dtype, spec.dtype)} but "
            f"{TF_TYPE_NAMES.get(got, got)} is provided"
        )


def decode_predict_request(request: Any, signatures: Mapping[str, SignatureSpec],
                           default_signature: str = DEFAULT_SIGNATURE) -> GrpcRequest:
    """Check a PredictRequest as TF Serving's predict_util does: signature, input set, tensors,
    dtypes; then shapes against the signature (as the REST path does). CodecError on the first fault."""
    name = request.model_spec.signature_name or default_signature
    sig = signatures.get(name)
    if sig is None:
        raise CodecError(f'Serving signature name: "{name}" not found in signature def')
    check_input_set(sig, request.inputs)
    arrays: dict[str, np.ndarray] = {}
    for index, spec in enumerate(sig.inputs):
        arr = tensor_to_array(request.inputs[spec.name], spec.name)
        _check_dtype(spec, arr, index)
        check_shape(spec.shape, arr, spec.name)
        arrays[spec.name] = arr
    return GrpcRequest(sig, arrays)


def predict_response(outputs: Mapping[str, np.ndarray], model_name: str, version: int,
                     signature_name: str) -> Any:
    response = messages().PredictResponse()
    set_model_spec(response.model_spec, model_name, version=version, signature_name=signature_name)
    for name, arr in outputs.items():
        fill_tensor(response.outputs[name], arr)
    return response


def decode_outputs(response: Any) -> dict[str, np.ndarray]:
    return {name: tensor_to_array(t, name) for name, t in response.outputs.items()}


def response_batch_size(body: bytes) -> int:
    """dim 0 of the first output of a serialized PredictResponse; CodecError if there is none."""
    try:
        response = messages().PredictResponse.FromString(body)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError has no stable home across versions
        raise CodecError("response is not a PredictResponse") from None
    if not response.outputs:
        raise CodecError("response has no outputs")
    first = next(iter(response.outputs.values()))
    if not first.tensor_shape.dim:
        raise CodecError("response's first output is a scalar (no batch dimension)")
    return int(first.tensor_shape.dim[0].size)


# ---------------------------------------------------------------------------------------- metadata


def _fill_info(info: Any, spec: TensorSpec, sig_name: str) -> None:
    info.name = spec.tensor_name or f"{sig_name}_{spec.name}:0"
    info.dtype = DATA_TYPES.get(spec.dtype, 0)
    if spec.shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        for size in spec.shape:
            info.tensor_shape.dim.add(size=size)


def metadata_response(meta: ModelMetadata, version: int) -> Any:
    """GetModelMetadataResponse with the SignatureDefMap packed in an Any, as TF Serving sends it."""
    m = messages()
    sig_map = m.SignatureDefMap()
    for name, sig in meta.signatures.items():
        sig_def = sig_map.signature_def[name]
        sig_def.method_name = sig.method_name
        for spec in sig.inputs:
            _fill_info(sig_def.inputs[spec.name], spec, name)
        for spec in sig.outputs:
            _fill_info(sig_def.outputs[spec.name], spec, name)
    response = m.GetModelMetadataResponse()
    set_model_spec(response.model_spec, meta.model_name, version=version)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(sig_map)
    return response


def _spec_of(name: str, info: Any) -> TensorSpec:
    shape = None if info.tensor_shape.unknown_rank else tuple(int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(name, _DTYPE_NAMES.get(info.dtype, f"DT_{info.dtype}"), shape, info.name)


def parse_metadata_response(response: Any) -> ModelMetadata:
    """ModelMetadata (the same record the REST metadata endpoint gives) from a gRPC metadata answer."""
    m = messages()
    packed = response.metadata.get(SIGNATURE_DEF_FIELD)
    sig_map = m.SignatureDefMap()
    if packed is None or not packed.Unpack(sig_map):
        raise InputError("GetModelMetadata answer has no signature_def map")
    signatures = {}
    for name, sig_def in sig_map.signature_def.items():
        if name == "__saved_model_init_op":
            continue
        signatures[name] = SignatureSpec(
            name,
            tuple(_spec_of(k, v) for k, v in sorted(sig_def.inputs.items())),
            tuple(_spec_of(k, v) for k, v in sorted(sig_def.outputs.items())),
            sig_def.method_name,
        )
    if not signatures:
        raise InputError("GetModelMetadata answer lists no callable signatures")
    version = response.model_spec.version.value if response.model_spec.HasField("version") else ""
    return ModelMetadata(response.model_spec.name, str(version), signatures)
