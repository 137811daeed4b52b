"""SavedModel backend (extra `tf`): serve DIR/<version>/saved_model.pb through the same REST layer.

So a user can check their own export without Docker: the signatures are read from the SavedModel,
request JSON is decoded by the same codec against them, and the signature function is called with
tensors of the signature's dtypes. TensorFlow is imported lazily, only here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import ModelMetadata, SignatureSpec, TensorSpec
from tfsbench.server.registry import ModelRegistry

INIT_OP = "__saved_model_init_op"


def check_model_base_path(base_path: str) -> tuple[int, ...]:
    """The numeric version directories holding a saved_model.pb; InputError when there are none."""
    if not os.path.isdir(base_path):
        raise InputError(f"--model-base-path: {base_path} is not a directory")
    versions = []
    for entry in os.listdir(base_path):
        if entry.isdigit() and os.path.isfile(os.path.join(base_path, entry, "saved_model.pb")):
            versions.append(int(entry))
    if not versions:
        raise InputError(
            f"--model-base-path: {base_path} has no <version>/saved_model.pb (expected e.g. {base_path}/1/saved_model.pb)"
        )
    return tuple(sorted(versions))


def _import_tf():  # noqa: ANN202 - the module
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
    except ImportError:
        raise InputError(
            "--model-base-path needs TensorFlow: pip install 'tfsbench[tf]' (tensorflow-cpu)"
        ) from None
    return tf


def _signature_defs(export_dir: str) -> dict[str, SignatureSpec]:
    """The SignatureDefs as TF Serving reports them (dtype enums, -1 dims, graph tensor names)."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.saved_model import loader_impl

    saved_model = loader_impl.parse_saved_model(export_dir)
    meta_graph = saved_model.meta_graphs[0]
    for graph in saved_model.meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            meta_graph = graph
            break

    def spec(alias: str, info) -> TensorSpec:  # noqa: ANN001
        shape = info.tensor_shape
        dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
        return TensorSpec(alias, types_pb2.DataType.Name(info.dtype), dims, info.name)

    signatures = {}
    for name, sig in sorted(meta_graph.signature_def.items()):
        if name == INIT_OP:
            continue
        signatures[name] = SignatureSpec(
            name,
            tuple(spec(k, v) for k, v in sorted(sig.inputs.items())),
            tuple(spec(k, v) for k, v in sorted(sig.outputs.items())),
            sig.method_name,
        )
    return signatures


class SavedModelServable:
    """One loaded SavedModel version: its signatures as ModelMetadata, predict via the signature fns."""

    def __init__(self, name: str, version: int, export_dir: str) -> None:
        tf = _import_tf()
        self._tf = tf
        try:
            self._loaded = tf.saved_model.load(export_dir)
        except Exception as exc:  # corrupt or incompatible export
            raise InputError(f"--model-base-path: cannot load {export_dir}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        self._functions = {
            name: fn for name, fn in self._loaded.signatures.items() if name != INIT_OP
        }
        signatures = _signature_defs(export_dir)
        if not signatures:
            raise InputError(f"--model-base-path: {export_dir} has no serving signatures")
        self.metadata = ModelMetadata(name, str(version), signatures)

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        fn = self._functions[signature_name]
        signature = self.metadata.signatures[signature_name]
        tensors = {}
        for spec in signature.inputs:
            value = inputs[spec.name]
            if spec.dtype == "DT_STRING":
                tensors[spec.name] = tf.constant(np.asarray(value, dtype=object), dtype=tf.string)
            else:
                tensors[spec.name] = tf.convert_to_tensor(value, dtype=tf.as_dtype(spec.numpy_dtype))
        try:
            outputs = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            from tfsbench.server.models import ModelInputError

            message = getattr(exc, "message", None) or str(exc)
            raise ModelInputError(message.strip().splitlines()[0][:1000]) from None
        return {key: value.numpy() for key, value in outputs.items()}


def savedmodel_registry(name: str, base_path: str, versions: tuple[int, ...] | None = None) -> ModelRegistry:
    """All versions under `base_path` as one model (the latest answers unversioned requests)."""
    versions = versions or check_model_base_path(base_path)
    models = {name: {v: SavedModelServable(name, v, os.path.join(base_path, str(v))) for v in versions}}
    return ModelRegistry(models)
