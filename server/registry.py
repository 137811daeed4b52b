"""Models by name and version, version labels, and TF Serving's answers about them.

Resolution follows ServerCore: no version means the latest loaded version; a label is looked up in
the model's label map (unknown label: 400 "Unrecognized servable version label"); a missing model or
version is a 404 "Servable not found for request: Latest(m)" / "Specific(m, N)". Status and metadata
bodies are rendered once, at start-up, so those endpoints cost nothing per request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tfsbench.payloads.signature import ModelMetadata, metadata_to_json

# TF's error code names (they are also the `status` label of request_count) and their HTTP codes.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
CODE_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ServingError(Exception):
    """A TF Serving error status: `code` is the TF code name, `http_status` follows ToHTTPStatusCode."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else HTTP_STATUS.get(code, 500)
        self.close_after = False  # drop the connection after answering (e.g. a body that never arrived)

    @classmethod
    def from_http(cls, http_status: int, message: str) -> ServingError:
        return cls(CODE_FOR_HTTP.get(http_status, "UNKNOWN" if http_status >= 500 else "INVALID_ARGUMENT"),
                   message, http_status)


class Model(Protocol):
    """What the REST layer needs from a servable: its signatures and a batched predict."""

    metadata: ModelMetadata

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class Servable:
    name: str
    version: int
    model: Model


def _status_body(versions: list[int]) -> bytes:
    doc = {
        "model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in versions
        ]
    }
    return json.dumps(doc, indent=1).encode() + b"\n"


def _metadata_body(meta: ModelMetadata) -> bytes:
    doc = metadata_to_json(meta)
    # TF Serving prints model_spec and the SignatureDefMap separately and glues them together.
    return (
        b'{\n"model_spec":' + json.dumps(doc["model_spec"], indent=1).encode() + b",\n"
        b'"metadata": {"signature_def": ' + json.dumps(doc["metadata"]["signature_def"], indent=1).encode()
        + b"}\n}\n"
    )


class ModelRegistry:
    """Loaded servables: name -> version -> model, plus per-model version labels."""

    def __init__(
        self,
        models: Mapping[str, Mapping[int, Model]],
        labels: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self._servables: dict[str, dict[int, Servable]] = {}
        self._latest: dict[str, Servable] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._status: dict[str, bytes] = {}
        self._version_status: dict[tuple[str, int], bytes] = {}
        self._metadata: dict[tuple[str, int], bytes] = {}
        for name, versions in models.items():
            if not versions:
                continue
            by_version = {v: Servable(name, v, m) for v, m in versions.items()}
            self._servables[name] = by_version
            self._latest[name] = by_version[max(by_version)]
            ordered = sorted(by_version, reverse=True)  # ServableStateMonitor lists newest first
            self._status[name] = _status_body(ordered)
            for version, servable in by_version.items():
                self._version_status[(name, version)] = _status_body([version])
                self._metadata[(name, version)] = _metadata_body(servable.model.metadata)
        for name, label_map in (labels or {}).items():
            for label, version in label_map.items():
                if version not in self._servables.get(name, {}):
                    raise ValueError(f"label {label!r} of model {name!r} points to unloaded version {version}")
            self._labels[name] = dict(label_map)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._servables))

    def versions(self, name: str) -> tuple[int, ...]:
        return tuple(sorted(self._servables.get(name, {})))

    def labels(self, name: str) -> dict[str, int]:
        return dict(self._labels.get(name, {}))

    def _label_version(self, name: str, label: str) -> int:
        version = self._labels.get(name, {}).get(label)
        if version is None:
            raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        return version

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a predict/metadata request addresses, or ServingError as TF Serving words it."""
        if label is not None:
            version = self._label_version(name, label)
        if version is None:
            servable = self._latest.get(name)
            if servable is None:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            return servable
        servable = self._servables.get(name, {}).get(version)
        if servable is None:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return servable

    def status_body(self, name: str, version: int | None = None, label: str | None = None) -> bytes:
        """GetModelStatus: all versions (newest first) or one; 404 texts from get_model_status_impl."""
        if label is not None:
            version = self._label_version(name, label)
        if version is None:
            body = self._status.get(name)
            if body is None:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
            return body
        body = self._version_status.get((name, version))
        if body is None:
            raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return body

    def metadata_body(self, name: str, version: int | None = None, label: str | None = None) -> bytes:
        servable = self.resolve(name, version, label)
        return self._metadata[(servable.name, servable.version)]


def demo_registry() -> ModelRegistry:
    """The three demo models at versions 1 and 2, label stable -> 1."""
    from tfsbench.server.models import DEMO_LABELS, DEMO_MODEL_TYPES, DEMO_VERSIONS

    models = {cls.name: {v: cls(v) for v in DEMO_VERSIONS} for cls in DEMO_MODEL_TYPES}
    labels = {cls.name: dict(DEMO_LABELS) for cls in DEMO_MODEL_TYPES}
    return ModelRegistry(models, labels)
