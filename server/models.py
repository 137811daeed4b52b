"""The three demo models: small, deterministic, numpy, vectorized over the batch.

Their signatures are a contract with `payloads` (generators) and with `docker/export_models.py`
(SavedModels that must compute the same numbers for `numeric` and `text`), so the weights and the
feature extraction are exposed as plain arrays and documented step by step.

- numeric: `features` [-1, 4] float -> dense 4x16 + ReLU -> dense 16x3 -> softmax `probabilities`.
- text: `text` [-1, 1] string -> bag of Unicode code points (code point mod 64, counts divided by the
  text's length in code points, invalid UTF-8 replaced by U+FFFD) -> dense 64x2 -> softmax `scores`.
- image: `image_bytes` [-1] JPEG/PNG -> RGB 32x32 (bilinear) / 255 -> dense 3072x10 -> softmax
  `scores`, argmax `classes` (int64).

Each version has its own weights (seeded by model and version), so version routing is observable.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping

import numpy as np
from tfsbench.payloads.signature import DEFAULT_SIGNATURE, ModelMetadata, SignatureSpec, TensorSpec

TEXT_BUCKETS = 64
IMAGE_SIDE = 32
# Pixels decoded per image: 4 MP (2048x2048). A PNG is decoded at full size (a 52 KB PNG of 40 MP
# cost 0.5 s and 200 MB), so it is checked before decoding; a JPEG is decoded at 1/2, 1/4 or 1/8
# scale (draft mode), so a 12 MP photo decodes as 1.5 MP and passes. Header sizes above
# MAX_IMAGE_HEADER_PIXELS are refused outright.
MAX_IMAGE_PIXELS = 4_194_304
MAX_IMAGE_HEADER_PIXELS = 64 * MAX_IMAGE_PIXELS


class ModelInputError(ValueError):
    """An input the model cannot compute on (TF's InvalidArgument): a 400 with this message."""


def _seed(model_name: str, version: int) -> int:
    return zlib.crc32(f"tfsbench-demo:{model_name}:{version}".encode())


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def _signature(inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> dict[str, SignatureSpec]:
    return {DEFAULT_SIGNATURE: SignatureSpec(DEFAULT_SIGNATURE, inputs, outputs)}


class NumericModel:
    """The seed's numeric example: 4 features -> 3 class probabilities."""

    name = "numeric"
    inline_ok = True  # a few flops per element: small requests run on the event loop (server/offload.py)

    def __init__(self, version: int) -> None:
        self.version = version
        rng = np.random.default_rng(_seed(self.name, version))
        self.w1 = rng.normal(0.0, 0.5, size=(4, 16)).astype(np.float32)
        self.b1 = rng.normal(0.0, 0.1, size=(16,)).astype(np.float32)
        self.w2 = rng.normal(0.0, 0.5, size=(16, 3)).astype(np.float32)
        self.b2 = rng.normal(0.0, 0.1, size=(3,)).astype(np.float32)
        self.metadata = ModelMetadata(
            self.name,
            str(version),
            _signature(
                (TensorSpec("features", "DT_FLOAT", (-1, 4)),),
                (TensorSpec("probabilities", "DT_FLOAT", (-1, 3)),),
            ),
        )

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(inputs["features"], dtype=np.float32).reshape(-1, 4)
        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)
        return {"probabilities": _softmax(hidden @ self.w2 + self.b2)}


def text_features(texts: np.ndarray) -> np.ndarray:
    """[B] or [B, 1] strings (bytes or str) -> [B, 64] float32 code-point histograms / length."""
    flat = texts.reshape(-1)
    batch = flat.shape[0]
    codes = []
    for value in flat:
        if isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value).decode("utf-8", "replace")
        elif not isinstance(value, str):
            value = str(value)
        codes.append(np.frombuffer(value.encode("utf-32-le"), dtype=np.uint32))
    lengths = np.fromiter((c.shape[0] for c in codes), dtype=np.int64, count=batch)
    if batch == 0:
        return np.zeros((0, TEXT_BUCKETS), dtype=np.float32)
    all_codes = np.concatenate(codes).astype(np.int64) % TEXT_BUCKETS
    rows = np.repeat(np.arange(batch, dtype=np.int64), lengths)
    counts = np.bincount(rows * TEXT_BUCKETS + all_codes, minlength=batch * TEXT_BUCKETS)
    counts = counts.reshape(batch, TEXT_BUCKETS).astype(np.float32)
    return counts / np.maximum(lengths, 1).astype(np.float32)[:, None]


class TextModel:
    """A bag-of-code-points sentiment-like scorer: 1 string -> 2 scores."""

    name = "text"
    inline_ok = True

    def __init__(self, version: int) -> None:
        self.version = version
        rng = np.random.default_rng(_seed(self.name, version))
        self.w = rng.normal(0.0, 6.0, size=(TEXT_BUCKETS, 2)).astype(np.float32)
        self.b = rng.normal(0.0, 0.1, size=(2,)).astype(np.float32)
        self.metadata = ModelMetadata(
            self.name,
            str(version),
            _signature(
                (TensorSpec("text", "DT_STRING", (-1, 1)),),
                (TensorSpec("scores", "DT_FLOAT", (-1, 2)),),
            ),
        )

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = text_features(np.asarray(inputs["text"], dtype=object))
        return {"scores": _softmax(features @ self.w + self.b)}


def decode_image(blob: object, index: int) -> np.ndarray:
    """JPEG/PNG bytes -> [32, 32, 3] float32 in [0, 1]; ModelInputError naming the item otherwise."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(blob, str):
        blob = blob.encode("utf-8", "surrogateescape")
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ModelInputError(f"image_bytes[{index}] is not a string of image bytes")
    try:
        image = Image.open(io.BytesIO(blob))
        if image.format not in ("JPEG", "PNG"):
            raise UnidentifiedImageError(f"format {image.format}")
        width, height = image.size
        if width * height > MAX_IMAGE_HEADER_PIXELS:
            raise ModelInputError(
                f"image_bytes[{index}] is {width}x{height} pixels, more than {MAX_IMAGE_HEADER_PIXELS} allowed"
            )
        image.draft("RGB", (IMAGE_SIDE, IMAGE_SIDE))  # JPEG: let the decoder downscale (DCT scaling)
        width, height = image.size  # what will actually be decoded
        if width * height > MAX_IMAGE_PIXELS:
            raise ModelInputError(
                f"image_bytes[{index}] decodes to {width}x{height} pixels, more than {MAX_IMAGE_PIXELS} allowed"
            )
        image = image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.BILINEAR)
        return np.asarray(image, dtype=np.float32)
    except ModelInputError:
        raise
    except Exception:
        head = bytes(blob[:8])
        hint = ""
        if head[:4].isascii() and (head.startswith(b"/9j/") or head.startswith(b"iVBOR")):
            hint = ' (it looks like base64 text: send binary inputs as {"b64": "..."})'
        else:
            hint = ' (binary inputs must be sent base64-encoded as {"b64": "..."})'
        raise ModelInputError(
            f"image_bytes[{index}] is not a decodable JPEG or PNG image{hint}"
        ) from None


class ImageModel:
    """A tiny linear classifier over 32x32 thumbnails: JPEG/PNG bytes -> 10 scores and a class."""

    name = "image"

    def __init__(self, version: int) -> None:
        self.version = version
        rng = np.random.default_rng(_seed(self.name, version))
        features = IMAGE_SIDE * IMAGE_SIDE * 3
        self.w = rng.normal(0.0, 4.0 / np.sqrt(features), size=(features, 10)).astype(np.float32)
        self.b = rng.normal(0.0, 0.1, size=(10,)).astype(np.float32)
        self.metadata = ModelMetadata(
            self.name,
            str(version),
            _signature(
                (TensorSpec("image_bytes", "DT_STRING", (-1,)),),
                (TensorSpec("scores", "DT_FLOAT", (-1, 10)), TensorSpec("classes", "DT_INT64", (-1,))),
            ),
        )

    def predict(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        blobs = np.asarray(inputs["image_bytes"], dtype=object).reshape(-1)
        pixels = np.empty((blobs.shape[0], IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.float32)
        for i, blob in enumerate(blobs):
            pixels[i] = decode_image(blob, i)
        x = pixels.reshape(blobs.shape[0], IMAGE_SIDE * IMAGE_SIDE * 3) * np.float32(1.0 / 255.0)
        scores = _softmax(x @ self.w + self.b)
        return {"scores": scores, "classes": scores.argmax(axis=1).astype(np.int64)}


DEMO_MODEL_TYPES = (NumericModel, TextModel, ImageModel)
DEMO_VERSIONS = (1, 2)
DEMO_LABELS = {"stable": 1}
