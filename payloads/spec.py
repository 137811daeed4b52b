"""What to generate: one immutable, validated description of a payload (kind, batch, format, knobs).

A PayloadSpec plus a seed fully determines the bytes of every body built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tfsbench.payloads.errors import InputError

KINDS = ("text", "image", "numeric", "auto")
FORMATS = ("row", "columnar")
IMAGE_FORMATS = ("jpeg", "png")
IMAGE_STYLES = ("photo", "noise")
NUMERIC_DTYPES = ("float32", "float64", "int32", "int64")
NUMERIC_DISTS = ("uniform", "normal")
MAX_IMAGE_SIDE = 8192
MAX_BATCH_SIZE = 1_000_000
MAX_TEXT_WORDS = 100_000
# A tensor larger than this per instance is almost certainly a typo (e.g. --shape x=1000,1000,1000).
MAX_INSTANCE_ELEMENTS = 64 * 1024 * 1024
# One request body carrying more numbers, words or pixels than this (about a gigabyte of JSON) could
# never fit in a body pool; refuse it before trying to allocate it.
MAX_REQUEST_ELEMENTS = 64 * 1024 * 1024


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class PayloadSpec:
    kind: str
    batch_size: int
    format: str = "row"
    seed: int = 0
    signature_name: str | None = None
    text_words: tuple[int, int] = (8, 32)
    text_file: str | None = None
    image_size: tuple[int, int] = (128, 128)  # (width, height)
    image_format: str = "jpeg"
    image_quality: int = 85
    image_style: str = "photo"
    image_dir: str | None = None
    numeric_shape: tuple[int, ...] = (4,)
    numeric_dtype: str = "float32"
    numeric_dist: str = "uniform"
    numeric_file: str | None = None
    input_name: str | None = None
    shape_overrides: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    allow_nan: bool = False
    gzip: bool = False

    def __post_init__(self) -> None:
        _one_of(self.kind, KINDS, "payload kind")
        _one_of(self.format, FORMATS, "payload format")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if self.batch_size > MAX_BATCH_SIZE:
            raise InputError(f"batch size must be <= {MAX_BATCH_SIZE}, got {self.batch_size}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {self.seed!r}")
        lo, hi = self.text_words
        if lo < 1 or hi < lo or hi > MAX_TEXT_WORDS:
            raise InputError(
                f"text words must be N or MIN-MAX with 1 <= MIN <= MAX <= {MAX_TEXT_WORDS}, got {lo}-{hi}"
            )
        if len(self.image_size) != 2:
            raise InputError(f"image size must be WIDTHxHEIGHT, got {self.image_size!r}")
        for side in self.image_size:
            if side < 1 or side > MAX_IMAGE_SIDE:
                raise InputError(
                    f"image size {self.image_size[0]}x{self.image_size[1]} is out of range: each side must be "
                    f"1..{MAX_IMAGE_SIDE} px"
                )
        _one_of(self.image_format, IMAGE_FORMATS, "image format")
        _one_of(self.image_style, IMAGE_STYLES, "image style")
        if not 1 <= self.image_quality <= 100:
            raise InputError(f"image quality must be 1..100, got {self.image_quality}")
        _check_shape(self.numeric_shape, "numeric shape")
        _one_of(self.numeric_dtype, NUMERIC_DTYPES, "numeric dtype")
        _one_of(self.numeric_dist, NUMERIC_DISTS, "numeric distribution")
        if self.input_name is not None and not self.input_name:
            raise InputError("input name must not be empty")
        for name, shape in self.shape_overrides.items():
            _check_shape(tuple(shape), f"--shape {name}")
        check_request_size(self.batch_size, self._instance_elements(), self.kind)
        # Freeze the overrides so the spec stays immutable (and shapes stay tuples).
        frozen = ShapeMap({str(k): tuple(int(d) for d in v) for k, v in self.shape_overrides.items()})
        object.__setattr__(self, "shape_overrides", frozen)

    def _instance_elements(self) -> int:
        """Numbers, words or pixels per instance, for the kinds that know it before reading files."""
        if self.kind == "numeric" and not self.numeric_file:
            n = 1
            for dim in self.numeric_shape:
                n *= dim
            return n
        if self.kind == "text" and not self.text_file:
            return self.text_words[1]
        if self.kind == "image" and not self.image_dir:
            return self.image_size[0] * self.image_size[1]
        return 0

    @property
    def label(self) -> str:
        return f"{self.kind} b={self.batch_size} {self.format}"


def check_request_size(batch_size: int, instance_elements: int, what: str) -> None:
    """InputError when one request of `batch_size` instances would be too large to build."""
    total = batch_size * instance_elements
    if total > MAX_REQUEST_ELEMENTS:
        raise InputError(f"one {what} request of batch size {batch_size} would carry {total:,} values "
                         f"(numbers, words or pixels; limit {MAX_REQUEST_ELEMENTS:,}): lower the batch size "
                         "or the instance size")


class ShapeMap(Mapping[str, tuple[int, ...]]):
    """An immutable, hashable name -> shape mapping, so PayloadSpec can key caches."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, tuple[int, ...]]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> tuple[int, ...]:
        return self._items[key]

    def __iter__(self) -> Any:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return repr(self._items)


def _check_shape(shape: tuple[int, ...], what: str) -> None:
    elements = 1
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InputError(f"{what} must be positive integers, got {shape!r}")
        elements *= dim
    if elements > MAX_INSTANCE_ELEMENTS:
        raise InputError(f"{what} {shape!r} has {elements} elements per instance (limit {MAX_INSTANCE_ELEMENTS})")


def spec_from_knobs(knobs: Mapping[str, Any] | None, **fixed: Any) -> PayloadSpec:
    """A PayloadSpec from generator knobs as stored in JSON (a run's config.extra["payload"]: lists
    for tuples) plus the fields a run fixes itself (kind, batch_size, format, seed, signature_name).
    Unknown knob names are an InputError, so an old or hand-edited result cannot pass one silently."""
    import dataclasses

    values = dict(knobs or {})
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(PayloadSpec)})
    if unknown:
        raise InputError(f"unknown payload option(s): {', '.join(unknown)}")
    for key, value in list(values.items()):
        if isinstance(value, list):
            values[key] = tuple(value)
        elif key == "shape_overrides" and isinstance(value, Mapping):
            values[key] = {k: tuple(v) for k, v in value.items()}
    values.update(fixed)
    return PayloadSpec(**values)
