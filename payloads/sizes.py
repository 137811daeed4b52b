"""Size accounting: what a body costs on the wire compared with the tensors it carries.

raw bytes = the arrays' nbytes for numeric inputs, the UTF-8 length for text, the encoded file bytes
for images; wire bytes = the JSON body; b64 bytes = characters spent on base64 text inside it.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

GZIP_LEVEL = 6


def gzip_body(body: bytes) -> bytes:
    """Deterministic gzip (mtime 0), the way clients send `Content-Encoding: gzip` bodies."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


@dataclass(frozen=True, slots=True)
class SizeInfo:
    raw_bytes: int
    wire_bytes: int  # the JSON body (for gzip pools the sent body is `gzip_bytes` long)
    overhead_ratio: float  # wire / raw
    b64_bytes: int
    b64_share: float  # b64 / wire
    gzip_bytes: int


def measure(body: bytes, raw_bytes: int, b64_bytes: int, gzip_bytes: int | None = None) -> SizeInfo:
    wire = len(body)
    if gzip_bytes is None:
        gzip_bytes = len(gzip_body(body))
    ratio = wire / raw_bytes if raw_bytes > 0 else math.inf
    return SizeInfo(raw_bytes, wire, ratio, b64_bytes, b64_bytes / wire if wire else 0.0, gzip_bytes)


def _string_len(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(value)  # type: ignore[arg-type]


def raw_bytes_of(inputs: Mapping[str, np.ndarray]) -> int:
    """The payload's information content: nbytes, or string/file lengths for string tensors."""
    total = 0
    for arr in inputs.values():
        if arr.dtype.kind in "OSU":
            total += sum(_string_len(v) for v in np.asarray(arr, dtype=object).reshape(-1).tolist())
        else:
            total += int(arr.nbytes)
    return total


def b64_bytes_of(inputs: Mapping[str, np.ndarray], binary_inputs: Iterable[str]) -> int:
    """Characters of base64 text the binary inputs become (padding included, b64 keys excluded)."""
    total = 0
    for name in binary_inputs:
        arr = inputs.get(name)
        if arr is None:
            continue
        for value in np.asarray(arr, dtype=object).reshape(-1).tolist():
            total += 4 * math.ceil(_string_len(value) / 3)
    return total


@dataclass(frozen=True, slots=True)
class SizeRow:
    """One line of `tfsbench payload --sizes`: means over a small pool of bodies."""

    kind: str
    format: str
    batch_size: int
    raw_bytes: float
    wire_bytes: float
    overhead_ratio: float
    b64_share: float
    gzip_bytes: float


def size_table(
    kinds: Iterable[str],
    batch_sizes: Iterable[int],
    formats: Iterable[str],
    seed: int = 0,
    *,
    pool_size: int = 8,
    metadata: object | None = None,
    base: object | None = None,
) -> list[SizeRow]:
    """Sizes for every kind x format x batch size. `base` is a PayloadSpec whose knobs are reused;
    `metadata` (a ModelMetadata) is what kind `auto` builds from (the fixed kinds keep their defaults)."""
    import dataclasses

    from tfsbench.payloads.pool import build_pool
    from tfsbench.payloads.spec import PayloadSpec

    rows = []
    for kind in kinds:
        for fmt in formats:
            for batch_size in batch_sizes:
                if isinstance(base, PayloadSpec):
                    spec = dataclasses.replace(base, kind=kind, format=fmt, batch_size=batch_size, seed=seed)
                else:
                    spec = PayloadSpec(kind=kind, batch_size=batch_size, format=fmt, seed=seed)
                pool = build_pool(spec, pool_size, metadata if kind == "auto" else None)  # type: ignore[arg-type]
                n = len(pool.sizes)
                rows.append(
                    SizeRow(
                        kind=kind,
                        format=fmt,
                        batch_size=batch_size,
                        raw_bytes=sum(s.raw_bytes for s in pool.sizes) / n,
                        wire_bytes=sum(s.wire_bytes for s in pool.sizes) / n,
                        overhead_ratio=sum(s.wire_bytes for s in pool.sizes) / max(sum(s.raw_bytes for s in pool.sizes), 1),
                        b64_share=sum(s.b64_bytes for s in pool.sizes) / max(sum(s.wire_bytes for s in pool.sizes), 1),
                        gzip_bytes=sum(s.gzip_bytes for s in pool.sizes) / n,
                    )
                )
    return rows
