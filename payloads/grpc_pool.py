"""Pools of serialized PredictRequests, and the raw / protobuf / JSON / JSON+gzip size table.

The same seeded generators as the REST pools (`pool.build_pool`): the same spec and seed give the same
tensors, so a REST run and a gRPC run of one spec send the same data, only encoded differently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tfsbench.payloads.codec import encode_request
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.generators import IMAGE_BANK_SIZE, make_generator
from tfsbench.payloads.grpc_codec import check_numeric_form, encode_predict_request
from tfsbench.payloads.pool import DEFAULT_POOL_SIZE, MAX_POOL_BYTES, MAX_POOL_SIZE, BodyPool
from tfsbench.payloads.signature import ModelMetadata
from tfsbench.payloads.sizes import gzip_body, measure, raw_bytes_of
from tfsbench.payloads.spec import PayloadSpec

# The demo models' names by payload kind (what `tfsbench payload --protocol grpc` addresses by default).
DEMO_MODEL_FOR_KIND = {"numeric": "numeric", "text": "text", "image": "image"}


@dataclass(frozen=True, slots=True)
class GrpcTarget:
    """What a PredictRequest addresses: the model spec (gRPC carries it in the body, REST in the URL)."""

    model_name: str
    version: int | None = None
    label: str | None = None
    numeric_form: str = "content"  # content (tensor_content) | val (float_val, int_val...)

    def __post_init__(self) -> None:
        if not self.model_name:
            raise InputError("model name must not be empty")
        if self.version is not None and self.label is not None:
            raise InputError("give a model version or a version label, not both")
        check_numeric_form(self.numeric_form)


def build_grpc_pool(spec: PayloadSpec, target: GrpcTarget, size: int = DEFAULT_POOL_SIZE,
                    metadata: ModelMetadata | None = None) -> BodyPool:
    """`size` serialized PredictRequests for `spec`; sizes record raw, protobuf (wire) and JSON+gzip."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL_SIZE:
        raise InputError(f"pool size must be 1..{MAX_POOL_SIZE}, got {size!r}")
    if spec.gzip:
        raise InputError("--gzip is HTTP's Content-Encoding; gRPC requests are not gzipped by tfsbench")
    bank = max(IMAGE_BANK_SIZE, size) if spec.batch_size == 1 else IMAGE_BANK_SIZE
    generator = make_generator(spec, metadata, distinct_images=bank)
    rng = np.random.default_rng(spec.seed)
    bodies: list[bytes] = []
    raws: list[int] = []
    sizes = []
    total = 0
    for _ in range(size):
        inputs = generator.batch(spec.batch_size, rng)
        body = encode_predict_request(
            inputs, target.model_name, version=target.version, label=target.label,
            signature_name=spec.signature_name, numeric_form=target.numeric_form,
        )
        raw = raw_bytes_of(inputs)
        # gzip_bytes here: the JSON body gzipped, the REST alternative this request is compared with.
        json_body = encode_request(inputs, spec.format, signature_name=spec.signature_name,
                                   binary_inputs=generator.binary_inputs, allow_nan=True)
        sizes.append(measure(body, raw, 0, len(gzip_body(json_body))))
        raws.append(raw)
        bodies.append(body)
        total += len(body)
        if total > MAX_POOL_BYTES:
            raise InputError(f"request pool for {spec.label} would exceed {MAX_POOL_BYTES // 2**20} MiB; "
                             "lower the pool size, batch size or image size")
    return BodyPool(spec, tuple(bodies), tuple(raws), tuple(sizes), generator.notes)


@dataclass(frozen=True, slots=True)
class ProtocolSizeRow:
    """Mean bytes per request of one kind x batch size in each encoding."""

    kind: str
    batch_size: int
    raw_bytes: float
    protobuf_bytes: float
    json_bytes: float
    json_gzip_bytes: float
    protobuf_gzip_bytes: float = 0.0  # the request with gRPC's own gzip compression (--grpc-compression gzip)

    @property
    def json_over_protobuf(self) -> float:
        return self.json_bytes / max(self.protobuf_bytes, 1.0)


def protocol_size_table(kinds: Iterable[str], batch_sizes: Iterable[int], seed: int = 0, *,
                        pool_size: int = 8, base: PayloadSpec | None = None,
                        numeric_form: str = "content") -> list[ProtocolSizeRow]:
    """raw vs protobuf vs JSON (row format) vs JSON+gzip, for the same generated tensors."""
    rows = []
    for kind in kinds:
        for batch_size in batch_sizes:
            if base is not None:
                spec = dataclasses.replace(base, kind=kind, batch_size=batch_size, seed=seed, gzip=False)
            else:
                spec = PayloadSpec(kind=kind, batch_size=batch_size, seed=seed)
            generator = make_generator(spec, None)
            rng = np.random.default_rng(seed)
            raw = pb = pz = js = jz = 0
            for _ in range(pool_size):
                inputs = generator.batch(batch_size, rng)
                raw += raw_bytes_of(inputs)
                request = encode_predict_request(inputs, DEMO_MODEL_FOR_KIND.get(kind, kind),
                                                 numeric_form=numeric_form)
                pb += len(request)
                pz += len(gzip_body(request))
                body = encode_request(inputs, spec.format, binary_inputs=generator.binary_inputs,
                                      allow_nan=True)
                js += len(body)
                jz += len(gzip_body(body))
            n = pool_size
            rows.append(ProtocolSizeRow(kind, batch_size, raw / n, pb / n, js / n, jz / n, pz / n))
    return rows


__all__ = ["GrpcTarget", "build_grpc_pool", "ProtocolSizeRow", "protocol_size_table"]
