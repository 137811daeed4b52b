"""Body pools: N request bodies encoded before the load starts, so no encoding runs under load.

Deterministic: one numpy Generator seeded with `spec.seed` feeds every batch in order, so the same
spec gives the same bytes, body for body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tfsbench.payloads.codec import encode_request
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.generators import IMAGE_BANK_SIZE, make_generator
from tfsbench.payloads.signature import ModelMetadata
from tfsbench.payloads.sizes import SizeInfo, b64_bytes_of, gzip_body, measure, raw_bytes_of
from tfsbench.payloads.spec import PayloadSpec

DEFAULT_POOL_SIZE = 64
MAX_POOL_SIZE = 100_000
MAX_POOL_BYTES = 1024 * 1024 * 1024
DISTINCT_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class BodyPool:
    spec: PayloadSpec
    bodies: tuple[bytes, ...]  # exactly what is POSTed (gzip-compressed when spec.gzip)
    raw_bytes: tuple[int, ...]
    sizes: tuple[SizeInfo, ...]
    notes: tuple[str, ...] = ()  # choices the generator made (resolved dims, ...), for the user

    @property
    def mean_wire_bytes(self) -> float:
        """Mean bytes actually sent per request (compressed size for gzip pools)."""
        return sum(len(b) for b in self.bodies) / len(self.bodies)

    @property
    def wire_bytes(self) -> tuple[int, ...]:
        """Bytes actually sent for each body (equals `len(body)`)."""
        return tuple(len(b) for b in self.bodies)

    @property
    def mean_raw_bytes(self) -> float:
        return sum(self.raw_bytes) / len(self.raw_bytes)

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size

    @property
    def content_encoding(self) -> str | None:
        return "gzip" if self.spec.gzip else None

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that go with every body of this pool."""
        headers = {"Content-Type": "application/json"}
        if self.spec.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    @property
    def name(self) -> str:
        return self.spec.label + (" gzip" if self.spec.gzip else "")

    def body(self, index: int) -> bytes:
        """Body `index` modulo the pool size (engines cycle through the pool)."""
        return self.bodies[index % len(self.bodies)]

    def __len__(self) -> int:
        return len(self.bodies)


def build_pool(spec: PayloadSpec, size: int = DEFAULT_POOL_SIZE, metadata: ModelMetadata | None = None) -> BodyPool:
    """Encode `size` bodies for `spec` (checked against `metadata`'s signature when given)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL_SIZE:
        raise InputError(f"pool size must be 1..{MAX_POOL_SIZE}, got {size!r}")
    # At batch size 1 each body is one image: encode as many as there are bodies so all differ.
    bank = max(IMAGE_BANK_SIZE, size) if spec.batch_size == 1 else IMAGE_BANK_SIZE
    generator = make_generator(spec, metadata, distinct_images=bank)
    rng = np.random.default_rng(spec.seed)
    bodies: list[bytes] = []
    raws: list[int] = []
    sizes: list[SizeInfo] = []
    total = 0
    seen: set[bytes] = set()
    for _ in range(size):
        # Redraw a batch that repeats an earlier body (a few times at most: a small data file or
        # image bank may simply not have `size` distinct bodies in it).
        for _attempt in range(DISTINCT_ATTEMPTS):
            inputs = generator.batch(spec.batch_size, rng)
            body = encode_request(
                inputs,
                spec.format,
                signature_name=spec.signature_name,
                binary_inputs=generator.binary_inputs,
                allow_nan=spec.allow_nan,
            )
            if body not in seen:
                break
        seen.add(body)
        compressed = gzip_body(body)
        raw = raw_bytes_of(inputs)
        sizes.append(measure(body, raw, b64_bytes_of(inputs, generator.binary_inputs), len(compressed)))
        raws.append(raw)
        sent = compressed if spec.gzip else body
        bodies.append(sent)
        total += len(sent)
        if total > MAX_POOL_BYTES:
            raise InputError(
                f"body pool for {spec.label} would exceed {MAX_POOL_BYTES // 2**20} MiB; "
                "lower the pool size, batch size or image size"
            )
    return BodyPool(spec, tuple(bodies), tuple(raws), tuple(sizes), generator.notes)
