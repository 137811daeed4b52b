"""TF Serving's gRPC messages, defined by the project (no TensorFlow, no generated code).

The descriptors below are wire-compatible with `tensorflow_serving/apis/*.proto` and TensorFlow's
`tensor.proto`, `tensor_shape.proto`, `types.proto` and `meta_graph.proto`: same package names, message
names and field numbers (tests/test_grpc_wire.py decodes our bytes with the official
`tensorflow-serving-api` classes). Only the fields a predict client or the embedded target uses are
declared; protobuf keeps any other field it meets as unknown fields, so nothing is lost in transit.

They live in a private DescriptorPool, so importing this module next to the official packages (which
register the same full names in the default pool) never conflicts. Built once, on first use.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
PREDICT_METHOD = f"/{PREDICTION_SERVICE}/Predict"
METADATA_METHOD = f"/{PREDICTION_SERVICE}/GetModelMetadata"
STATUS_METHOD = f"/{MODEL_SERVICE}/GetModelStatus"

# tensorflow/core/framework/types.proto (the values a client can meet here).
DATA_TYPES = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5,
    "DT_INT8": 6, "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9, "DT_BOOL": 10, "DT_QINT8": 11,
    "DT_QUINT8": 12, "DT_QINT32": 13, "DT_BFLOAT16": 14, "DT_QINT16": 15, "DT_QUINT16": 16,
    "DT_UINT16": 17, "DT_COMPLEX128": 18, "DT_HALF": 19, "DT_RESOURCE": 20, "DT_VARIANT": 21,
    "DT_UINT32": 22, "DT_UINT64": 23,
}
# ModelVersionStatus.State (get_model_status.proto).
VERSION_STATES = {"UNKNOWN": 0, "START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALARS = {
    "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
}


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, kind: str, *,
           repeated: bool = False, oneof: int | None = None) -> None:
    """kind: a scalar name, '.full.MessageName' or 'enum:.full.EnumName'."""
    f = msg.field.add(name=name, number=number, label=_REP if repeated else _OPT)
    if kind in _SCALARS:
        f.type = _SCALARS[kind]
    elif kind.startswith("enum:"):
        f.type, f.type_name = _F.TYPE_ENUM, kind[5:]
    else:
        f.type, f.type_name = _F.TYPE_MESSAGE, kind
    if oneof is not None:
        f.oneof_index = oneof


def _map(msg: descriptor_pb2.DescriptorProto, package: str, name: str, number: int, value_kind: str) -> None:
    """A `map<string, V>` field of top-level message `msg`: a nested MapEntry message, as protoc writes it."""
    entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    entry = msg.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _field(entry, "key", 1, "string")
    _field(entry, "value", 2, value_kind)
    _field(msg, name, number, f".{package}.{msg.name}.{entry_name}", repeated=True)


def _message(fd: descriptor_pb2.FileDescriptorProto, name: str) -> descriptor_pb2.DescriptorProto:
    return fd.message_type.add(name=name)


def _tensorflow_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="tfsbench/tensorflow_subset.proto", package="tensorflow",
                                            syntax="proto3")
    dtype = fd.enum_type.add(name="DataType")
    for key, value in DATA_TYPES.items():
        dtype.value.add(name=key, number=value)

    shape = _message(fd, "TensorShapeProto")
    dim = shape.nested_type.add(name="Dim")
    _field(dim, "size", 1, "int64")
    _field(dim, "name", 2, "string")
    _field(shape, "dim", 2, ".tensorflow.TensorShapeProto.Dim", repeated=True)
    _field(shape, "unknown_rank", 3, "bool")

    tensor = _message(fd, "TensorProto")
    _field(tensor, "dtype", 1, "enum:.tensorflow.DataType")
    _field(tensor, "tensor_shape", 2, ".tensorflow.TensorShapeProto")
    _field(tensor, "version_number", 3, "int32")
    _field(tensor, "tensor_content", 4, "bytes")
    _field(tensor, "float_val", 5, "float", repeated=True)
    _field(tensor, "double_val", 6, "double", repeated=True)
    _field(tensor, "int_val", 7, "int32", repeated=True)
    _field(tensor, "string_val", 8, "bytes", repeated=True)
    _field(tensor, "int64_val", 10, "int64", repeated=True)
    _field(tensor, "bool_val", 11, "bool", repeated=True)
    _field(tensor, "half_val", 13, "int32", repeated=True)
    _field(tensor, "uint32_val", 16, "uint32", repeated=True)
    _field(tensor, "uint64_val", 17, "uint64", repeated=True)

    info = _message(fd, "TensorInfo")
    info.oneof_decl.add(name="encoding")
    _field(info, "name", 1, "string", oneof=0)
    _field(info, "dtype", 2, "enum:.tensorflow.DataType")
    _field(info, "tensor_shape", 3, ".tensorflow.TensorShapeProto")

    sig = _message(fd, "SignatureDef")
    _map(sig, fd.package, "inputs", 1, ".tensorflow.TensorInfo")
    _map(sig, fd.package, "outputs", 2, ".tensorflow.TensorInfo")
    _field(sig, "method_name", 3, "string")
    return fd


def _serving_file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="tfsbench/tensorflow_serving_subset.proto",
                                            package="tensorflow.serving", syntax="proto3")
    fd.dependency.extend(["tfsbench/tensorflow_subset.proto", "google/protobuf/wrappers.proto",
                          "google/protobuf/any.proto"])
    spec = _message(fd, "ModelSpec")
    spec.oneof_decl.add(name="version_choice")
    _field(spec, "name", 1, "string")
    _field(spec, "version", 2, ".google.protobuf.Int64Value", oneof=0)
    _field(spec, "signature_name", 3, "string")
    _field(spec, "version_label", 4, "string", oneof=0)

    request = _message(fd, "PredictRequest")
    _field(request, "model_spec", 1, ".tensorflow.serving.ModelSpec")
    _map(request, fd.package, "inputs", 2, ".tensorflow.TensorProto")
    _field(request, "output_filter", 3, "string", repeated=True)

    response = _message(fd, "PredictResponse")
    _map(response, fd.package, "outputs", 1, ".tensorflow.TensorProto")
    _field(response, "model_spec", 2, ".tensorflow.serving.ModelSpec")

    sig_map = _message(fd, "SignatureDefMap")
    _map(sig_map, fd.package, "signature_def", 1, ".tensorflow.SignatureDef")

    meta_req = _message(fd, "GetModelMetadataRequest")
    _field(meta_req, "model_spec", 1, ".tensorflow.serving.ModelSpec")
    _field(meta_req, "metadata_field", 2, "string", repeated=True)
    meta_resp = _message(fd, "GetModelMetadataResponse")
    _field(meta_resp, "model_spec", 1, ".tensorflow.serving.ModelSpec")
    _map(meta_resp, fd.package, "metadata", 2, ".google.protobuf.Any")

    status = _message(fd, "StatusProto")  # apis/status.proto; error_code is tensorflow.error.Code (a varint)
    _field(status, "error_code", 1, "int32")
    _field(status, "error_message", 2, "string")
    version_status = _message(fd, "ModelVersionStatus")
    state = version_status.enum_type.add(name="State")
    for key, value in VERSION_STATES.items():
        state.value.add(name=key, number=value)
    _field(version_status, "version", 1, "int64")
    _field(version_status, "state", 2, "enum:.tensorflow.serving.ModelVersionStatus.State")
    _field(version_status, "status", 3, ".tensorflow.serving.StatusProto")
    status_req = _message(fd, "GetModelStatusRequest")
    _field(status_req, "model_spec", 1, ".tensorflow.serving.ModelSpec")
    status_resp = _message(fd, "GetModelStatusResponse")
    _field(status_resp, "model_version_status", 1, ".tensorflow.serving.ModelVersionStatus", repeated=True)
    return fd


_CLASSES = (
    "tensorflow.TensorShapeProto", "tensorflow.TensorProto", "tensorflow.TensorInfo", "tensorflow.SignatureDef",
    "tensorflow.serving.ModelSpec", "tensorflow.serving.PredictRequest", "tensorflow.serving.PredictResponse",
    "tensorflow.serving.SignatureDefMap", "tensorflow.serving.GetModelMetadataRequest",
    "tensorflow.serving.GetModelMetadataResponse", "tensorflow.serving.StatusProto",
    "tensorflow.serving.ModelVersionStatus", "tensorflow.serving.GetModelStatusRequest",
    "tensorflow.serving.GetModelStatusResponse",
)


@functools.cache
def messages() -> Any:
    """The message classes, by short name: `messages().PredictRequest()`, `messages().TensorProto`..."""
    pool = descriptor_pool.DescriptorPool()
    for module in (wrappers_pb2, any_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    pool.Add(_tensorflow_file())
    pool.Add(_serving_file())
    classes = {full.rsplit(".", 1)[1]: message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
               for full in _CLASSES}
    classes["Int64Value"] = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.Int64Value"))
    classes["Any"] = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.protobuf.Any"))
    return SimpleNamespace(**classes)
