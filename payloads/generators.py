"""Seeded generators of request tensors: text, images, numeric, or any model from its signature.

A Generator knows the inputs it fills (`input_specs`, with the batch dim as -1), which of them travel
as `{"b64": ...}` (`binary_inputs`), and makes one batch of named numpy arrays from a numpy Generator.
All randomness comes from the `rng` argument, so a seed fixes every byte downstream.

Defaults follow the demo models (ARCHITECTURE.md contracts): numeric `features` (4,) float32 per
instance; text `text` (1,) per instance; image `image_bytes` one JPEG per instance.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.signature import NUMPY_DTYPES, ModelMetadata, SignatureSpec, TensorSpec
from tfsbench.payloads.spec import MAX_INSTANCE_ELEMENTS, PayloadSpec, check_request_size

DEFAULT_NAMES = {"numeric": "features", "text": "text", "image": "image_bytes"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Distinct generated images per generator; instances sample from this bank so that building a pool
# of thousands of instances does not encode thousands of images (bodies stay distinct by sampling).
# `build_pool` raises it to the pool size at batch size 1, so that every body differs.
IMAGE_BANK_SIZE = 48
MAX_IMAGE_BANK_SIZE = 1024
MAX_FILE_BYTES = 512 * 1024 * 1024

# A small multilingual vocabulary: ASCII, Latin accents, German umlauts, CJK, Cyrillic, Arabic, emoji,
# so that text bodies exercise JSON's UTF-8 paths the way real user text does.
WORDS: tuple[str, ...] = tuple(
    """the of and to in is was for on that with as by at from this it an be are or not have which
    model serving tensor latency batch request response server client network queue thread worker
    signal budget percentile throughput payload image text number vector matrix cache memory disk
    quick brown fox jumps over lazy dog river mountain forest ocean city street window garden
    coffee morning evening weather summer winter yellow purple silver golden small large fast slow
    café résumé naïve déjà vu crème brûlée élève école fiancée façade garçon hôtel bientôt
    über Straße Müller größer schön Mädchen Brücke fünf Käse Fußball Grüße
    niño mañana año España corazón canción
    日本語 東京 自然言語 機械学習 こんにちは ありがとう 推論 天気
    中文 数据 模型 服务器
    привет модель данные сервер
    مرحبا نموذج بيانات
    😀 🚀 📦 ✨ 🌍 🔥 ✅ 🤖""".split()
)


Maker = Callable[[int, np.random.Generator], np.ndarray]  # (batch_size, rng) -> one input's batch
Strings = Callable[[int, np.random.Generator], list[bytes]]  # (n, rng) -> n encoded strings


@dataclass(frozen=True, slots=True)
class Generator:
    """Makes batches for a fixed set of inputs. Build with `make_generator`."""

    input_specs: tuple[TensorSpec, ...]
    binary_inputs: frozenset[str]
    makers: tuple[Maker, ...]
    signature_name: str | None = None
    notes: tuple[str, ...] = field(default=())  # choices made for the user (resolved dims, defaults)

    def batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        return {spec.name: make(batch_size, rng) for spec, make in zip(self.input_specs, self.makers, strict=True)}

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.input_specs)


# --------------------------------------------------------------------------------------------------
# element sources: each returns a flat sequence of n values


def _object_array(values: Sequence[bytes], shape: tuple[int, ...]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr.reshape(shape)


def _read_file(path: str, what: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{what} {path}: is a directory, expected a file")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{what} {path}: file is {size} bytes, over the {MAX_FILE_BYTES} byte limit")
        return p.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None


class TextSource:
    """Strings of random words (a uniform length range in words), or lines of a user's file."""

    def __init__(self, spec: PayloadSpec) -> None:
        self.words_range = spec.text_words
        self.lines: tuple[bytes, ...] | None = None
        self._vocab = np.array([w.encode("utf-8") for w in WORDS], dtype=object)
        if spec.text_file:
            data = _read_file(spec.text_file, "--text-file")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"--text-file {spec.text_file}: not UTF-8 text (bad byte at offset {exc.start})") from None
            lines = tuple(line.strip().encode("utf-8") for line in text.splitlines() if line.strip())
            if not lines:
                raise InputError(f"--text-file {spec.text_file}: no non-empty lines")
            self.lines = lines

    def __call__(self, n: int, rng: np.random.Generator) -> list[bytes]:
        if self.lines is not None:
            return [self.lines[i] for i in rng.integers(0, len(self.lines), size=n)]
        lo, hi = self.words_range
        counts = rng.integers(lo, hi + 1, size=n)
        picks = rng.integers(0, len(self._vocab), size=int(counts.sum()))
        out, start = [], 0
        for count in counts.tolist():
            out.append(b" ".join(self._vocab[picks[start : start + count]].tolist()))
            start += count
        return out


# Scenes are drawn at most this many pixels a side, then resized: an 8192 px image would otherwise need
# several GiB of float intermediates. The per-pixel noise is added at full size, in row chunks.
SCENE_MAX_SIDE = 1024


def _photo_pixels(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth gradient + soft shapes + texture + mild noise: compresses like a real photo, not like noise."""
    from PIL import Image

    scale = min(1.0, SCENE_MAX_SIDE / max(width, height))
    scene_w, scene_h = max(1, round(width * scale)), max(1, round(height * scale))
    img = Image.fromarray(_scene(scene_w, scene_h, rng), "RGB")
    if (scene_w, scene_h) != (width, height):
        img = img.resize((width, height), Image.BICUBIC)
    return _add_noise(np.asarray(img), rng, 4.0)


def _scene(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter

    angle = rng.uniform(0, 2 * math.pi)
    xs = np.arange(width, dtype=np.float32) / max(width - 1, 1) * math.cos(angle)
    ys = np.arange(height, dtype=np.float32) / max(height - 1, 1) * math.sin(angle)
    t = ys[:, None] + xs[None, :]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    base = c0 + (c1 - c0) * t[..., None]
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 13))):
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4 + 1, size=2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4 + 1, size=2).tolist())
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=color)
        else:
            draw.rectangle(box, fill=color)
    img = img.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(width, height) / 128)))
    pixels = np.asarray(img, dtype=np.float32) + _texture(width, height, rng, 8.0)
    return pixels.clip(0, 255).astype(np.uint8)


def _add_noise(pixels: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian sensor-like noise, added a few MB at a time."""
    out = np.empty_like(pixels)
    rows = max(1, (4 * 1024 * 1024) // max(1, pixels.shape[1] * pixels.shape[2]))
    for start in range(0, pixels.shape[0], rows):
        chunk = pixels[start : start + rows]
        noise = rng.standard_normal(size=chunk.shape, dtype=np.float32) * sigma
        out[start : start + rows] = (chunk + noise).clip(0, 255).astype(np.uint8)
    return out


def _texture(width: int, height: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Multi-scale smooth noise (upsampled random grids), the kind of detail real photos carry."""
    from PIL import Image

    out = np.zeros((height, width, 3), dtype=np.float32)
    for cells in (4, 8, 16, 32):
        grid = rng.normal(0, 1, size=(cells, cells, 3)).astype(np.float32)
        for c in range(3):
            layer = Image.fromarray(grid[..., c], "F").resize((width, height), Image.BILINEAR)
            out[..., c] += np.asarray(layer) * amplitude
    return out


def encode_image(pixels: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(pixels, "RGB")
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class ImageSource:
    """Encoded image files (JPEG/PNG bytes): generated `photo`/`noise` images, or a user's folder."""

    def __init__(self, spec: PayloadSpec, bank_size: int = IMAGE_BANK_SIZE) -> None:
        self.spec = spec
        self.files: tuple[bytes, ...] | None = None
        self.bank_size = max(1, min(bank_size, MAX_IMAGE_BANK_SIZE))
        self._bank: list[bytes] = []
        if spec.image_dir:
            self.files = _load_image_dir(spec.image_dir)

    def _generate(self, rng: np.random.Generator) -> bytes:
        width, height = self.spec.image_size
        if self.spec.image_style == "noise":
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        else:
            pixels = _photo_pixels(width, height, rng)
        return encode_image(pixels, self.spec.image_format, self.spec.image_quality)

    def __call__(self, n: int, rng: np.random.Generator) -> list[bytes]:
        if self.files is not None:
            return [self.files[i] for i in rng.integers(0, len(self.files), size=n)]
        out = []
        for _ in range(n):
            # Grow the bank until it is full, then sample from it; both steps draw from rng only.
            if len(self._bank) < self.bank_size:
                self._bank.append(self._generate(rng))
                out.append(self._bank[-1])
            else:
                out.append(self._bank[int(rng.integers(0, len(self._bank)))])
        return out


def _load_image_dir(path: str) -> tuple[bytes, ...]:
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--image-dir {path}: not a directory")
    try:
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise InputError(f"--image-dir {path}: cannot list ({exc.strerror or exc})") from None
    if not files:
        raise InputError(f"--image-dir {path}: no .jpg, .jpeg or .png files")
    out = []
    for file in files:
        data = _read_file(str(file), "--image-dir")
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"--image-dir {path}: {file.name} is not a readable image ({exc})") from None
        out.append(data)
    return tuple(out)


class NumericSource:
    """Random values of a dtype (uniform or normal), or rows from a user's .npy/.csv file."""

    def __init__(self, dtype: np.dtype, dist: str) -> None:
        self.dtype = np.dtype(dtype)
        self.dist = dist

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self.dtype == np.bool_:
            return rng.random(size=shape) < 0.5
        if self.dtype.kind == "f":
            if self.dist == "normal":
                return rng.standard_normal(size=shape, dtype=np.float64).astype(self.dtype)
            return rng.random(size=shape, dtype=np.float64).astype(self.dtype)
        # Integers: small non-negative values (valid token ids / categories for most models).
        if self.dist == "normal":
            return np.abs(np.rint(rng.standard_normal(size=shape) * 100)).astype(self.dtype)
        return rng.integers(0, 1000, size=shape).astype(self.dtype)


def load_rows(path: str, dtype: np.dtype) -> np.ndarray:
    """Rows of a .npy (axis 0) or .csv (one row per line, optional header) file as `dtype`."""
    suffix = Path(path).suffix.lower()
    data = _read_file(path, "--numeric-file")
    if suffix == ".npy":
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"--numeric-file {path}: not a readable .npy array ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise InputError(f"--numeric-file {path}: array dtype {getattr(arr, 'dtype', '?')} is not numeric")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise InputError(f"--numeric-file {path}: needs at least one row (shape {arr.shape})")
    elif suffix == ".csv":
        arr = _load_csv(path, data)
    else:
        raise InputError(f"--numeric-file {path}: expected a .npy or .csv file")
    if np.dtype(dtype).kind in "iu" and arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.rint(arr))):
        raise InputError(f"--numeric-file {path}: has non-integer values but the input dtype is {np.dtype(dtype)}")
    with np.errstate(over="ignore", invalid="ignore"):
        return arr.astype(dtype)


def _load_csv(path: str, data: bytes) -> np.ndarray:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"--numeric-file {path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    rows: list[list[float]] = []
    width = None
    for lineno, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record or all(not cell.strip() for cell in record):
            continue
        try:
            values = [float(cell) for cell in record]
        except ValueError:
            if not rows and lineno == 1:
                continue  # a header line
            raise InputError(f"--numeric-file {path}: line {lineno} has a non-numeric value") from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise InputError(f"--numeric-file {path}: line {lineno} has {len(values)} columns, expected {width}")
        rows.append(values)
    if not rows:
        raise InputError(f"--numeric-file {path}: no numeric rows")
    return np.array(rows, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# per-input makers


def _string_maker(source: Strings, inst: tuple[int, ...]) -> Maker:
    per = int(np.prod(inst)) if inst else 1

    def make(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return _object_array(source(batch_size * per, rng), (batch_size, *inst))

    return make


def _numeric_maker(source: NumericSource, inst: tuple[int, ...]) -> Maker:
    def make(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return source((batch_size, *inst), rng)

    return make


def _rows_maker(rows: np.ndarray) -> Maker:
    def make(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return rows[rng.integers(0, rows.shape[0], size=batch_size)]

    return make


def _unbatched(maker: Maker) -> Maker:
    """A signature input with no batch dim (rank 0): one value per request, batch size ignored."""

    def make(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        arr = maker(1, rng)
        return arr.reshape(arr.shape[1:])

    return make


# --------------------------------------------------------------------------------------------------
# building


def _check_fits(spec: TensorSpec, sig_spec: TensorSpec, what: str) -> None:
    """A fixed-kind input against the model's signature: same dtype family and a fitting shape."""
    if sig_spec.dtype != spec.dtype:
        raise InputError(
            f"{what}: input '{spec.name}' is {spec.dtype} but the signature says {sig_spec.dtype}"
        )
    if sig_spec.shape is None:
        return
    assert spec.shape is not None
    if len(sig_spec.shape) != len(spec.shape) or any(
        want not in (-1, have) for want, have in zip(sig_spec.shape[1:], spec.shape[1:], strict=False)
    ):
        raise InputError(
            f"{what}: input '{spec.name}' per-instance shape {_fmt(spec.shape[1:])} does not fit the "
            f"signature shape {_fmt(sig_spec.shape)} (dim 0 is the batch)"
        )


def _fmt(shape: tuple[int, ...] | None) -> str:
    return "[?]" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def _fixed_kind(spec: PayloadSpec, metadata: ModelMetadata | None, bank: int) -> Generator:
    name = spec.input_name or DEFAULT_NAMES[spec.kind]
    notes: list[str] = []
    strings: Strings | None = None
    if spec.kind == "text":
        inst: tuple[int, ...] = (1,)
        tensor = TensorSpec(name, "DT_STRING", (-1, *inst))
        strings = TextSource(spec)
        maker = _string_maker(strings, inst)
        binary: frozenset[str] = frozenset()
    elif spec.kind == "image":
        inst = ()
        tensor = TensorSpec(name, "DT_STRING", (-1,))
        strings = ImageSource(spec, bank)
        maker = _string_maker(strings, inst)
        binary = frozenset({name})
    else:
        dtype = np.dtype(spec.numeric_dtype)
        tf_dtype = {np.dtype(v): k for k, v in NUMPY_DTYPES.items() if k != "DT_STRING"}[dtype]
        if spec.numeric_file:
            rows = load_rows(spec.numeric_file, dtype)
            inst = tuple(rows.shape[1:])
            check_request_size(spec.batch_size, int(np.prod(inst)) if inst else 1, f"--numeric-file {name}")
            maker = _rows_maker(rows)
            notes.append(f"{name}: {rows.shape[0]} rows of shape {_fmt(inst)} from {spec.numeric_file}")
        else:
            inst = spec.numeric_shape
            maker = _numeric_maker(NumericSource(dtype, spec.numeric_dist), inst)
        tensor = TensorSpec(name, tf_dtype, (-1, *inst))
        binary = frozenset()
    if metadata is not None:
        sig = metadata.signature(spec.signature_name)
        what = f"--kind {spec.kind} against model '{metadata.model_name}' signature '{sig.name}'"
        if len(sig.inputs) != 1:
            raise InputError(
                f"{what}: the signature has {len(sig.inputs)} inputs ({', '.join(sig.input_names)}); "
                "use --kind auto"
            )
        sig_input = sig.inputs[0]
        if spec.input_name is None and sig_input.name != name:
            tensor = TensorSpec(sig_input.name, tensor.dtype, tensor.shape)
            binary = frozenset({sig_input.name}) if binary else binary
        elif sig_input.name != tensor.name:
            raise InputError(f"{what}: no input named '{tensor.name}' (inputs: {sig_input.name})")
        if strings is not None and sig_input.dtype == "DT_STRING":
            # Strings take the signature's layout (e.g. [-1] or [-1,1]): one string per element.
            inst, batched = _resolve_shape(sig_input, spec, notes)
            maker = _string_maker(strings, inst)
            if not batched:
                maker = _unbatched(maker)
            tensor = TensorSpec(tensor.name, "DT_STRING", ((-1,) if batched else ()) + inst)
        else:
            _check_fits(tensor, sig_input, what)
    return Generator((tensor,), binary, (maker,), spec.signature_name, tuple(notes))


def _resolve_shape(
    tensor: TensorSpec, spec: PayloadSpec, notes: list[str]
) -> tuple[tuple[int, ...], bool]:
    """Per-instance shape for one signature input, and whether it has a batch dim.

    Rules: `--shape NAME=...` wins (per instance, or the full shape whose dim 0 is replaced by the batch
    size); unknown rank without override -> one scalar per instance; unknown non-batch dims -> the image
    height/width for rank-4 (N,H,W,C) inputs, else 1.
    """
    override = spec.shape_overrides.get(tensor.name)
    shape = tensor.shape
    if shape is None:
        inst = tuple(override) if override is not None else ()
        notes.append(f"{tensor.name}: unknown rank in the signature; sending per-instance shape {_fmt(inst)}")
        return inst, True
    if len(shape) == 0:
        if override:
            raise InputError(f"--shape {tensor.name}: the signature makes '{tensor.name}' a scalar (shape [])")
        if spec.format == "row":
            raise InputError(
                f"input '{tensor.name}' is a scalar in the signature (no batch dim); use --format columnar"
            )
        notes.append(f"{tensor.name}: scalar input without a batch dim; one value per request")
        return (), False
    if shape[0] not in (-1, spec.batch_size):
        raise InputError(
            f"input '{tensor.name}' has a fixed batch dim of {shape[0]} in the signature; "
            f"batch size {spec.batch_size} does not fit"
        )
    want = shape[1:]
    if override is not None:
        given = tuple(override)
        if len(given) == len(shape):
            given = given[1:]  # a full shape: its dim 0 is the batch
        if len(given) != len(want) or any(w not in (-1, g) for w, g in zip(want, given, strict=False)):
            raise InputError(
                f"--shape {tensor.name}={','.join(map(str, override))} does not fit the signature shape "
                f"{_fmt(shape)} (give the per-instance shape {_fmt(want)}, -1 = any size)"
            )
        return given, True
    inst = []
    for axis, dim in enumerate(want, start=1):
        if dim != -1:
            inst.append(dim)
        elif len(shape) == 4 and axis in (1, 2) and tensor.dtype != "DT_STRING":
            inst.append(spec.image_size[1] if axis == 1 else spec.image_size[0])
        else:
            inst.append(1)
    if -1 in want:
        notes.append(
            f"{tensor.name}: signature shape {_fmt(shape)}; unknown dims resolved to per-instance "
            f"{_fmt(tuple(inst))} (override with --shape {tensor.name}=...)"
        )
    return tuple(inst), True


def _auto(spec: PayloadSpec, metadata: ModelMetadata | None, bank: int) -> Generator:
    if metadata is None:
        raise InputError("--kind auto needs the model's metadata (--metadata FILE, or --url URL --model NAME)")
    sig: SignatureSpec = metadata.signature(spec.signature_name)
    if not sig.inputs:
        raise InputError(f"signature '{sig.name}' of model '{metadata.model_name}' has no inputs")
    unknown = set(spec.shape_overrides) - set(sig.input_names)
    if unknown:
        raise InputError(
            f"--shape names unknown input(s) {', '.join(sorted(unknown))} "
            f"(signature '{sig.name}' inputs: {', '.join(sig.input_names)})"
        )
    notes: list[str] = []
    specs, makers, binary = [], [], set()
    numeric_inputs = [t for t in sig.inputs if t.dtype in NUMPY_DTYPES and t.dtype != "DT_STRING"]
    if spec.numeric_file and len(numeric_inputs) != 1:
        raise InputError(
            f"--numeric-file needs a signature with exactly one numeric input; '{sig.name}' has "
            f"{len(numeric_inputs)} ({', '.join(t.name for t in numeric_inputs) or 'none'})"
        )
    for tensor in sig.inputs:
        from_file = bool(spec.numeric_file) and tensor in numeric_inputs
        if from_file:
            assert spec.numeric_file is not None
            rows = load_rows(spec.numeric_file, NUMPY_DTYPES[tensor.dtype])
            inst, batched = _file_rows_shape(tensor, spec, rows), True
            notes.append(f"{tensor.name}: {rows.shape[0]} rows of shape {_fmt(inst)} from {spec.numeric_file}")
        else:
            inst, batched = _resolve_shape(tensor, spec, notes)
        elements = int(np.prod(inst)) if inst else 1
        if elements > MAX_INSTANCE_ELEMENTS:
            raise InputError(f"input '{tensor.name}' per-instance shape {_fmt(inst)} is too large")
        if batched:
            check_request_size(spec.batch_size, elements, f"input '{tensor.name}'")
        if tensor.dtype == "DT_STRING":
            lowered = tensor.name.lower()
            if lowered.endswith("_bytes") or "image" in lowered:
                maker = _string_maker(ImageSource(spec, bank), inst)
                binary.add(tensor.name)
            else:
                maker = _string_maker(TextSource(spec), inst)
        elif from_file:
            maker = _rows_maker(rows)
        elif tensor.dtype in NUMPY_DTYPES:
            maker = _numeric_maker(NumericSource(NUMPY_DTYPES[tensor.dtype], spec.numeric_dist), inst)
        else:
            raise InputError(
                f"input '{tensor.name}' has dtype {tensor.dtype}; tfsbench can generate "
                f"{', '.join(NUMPY_DTYPES)}"
            )
        if not batched:
            maker = _unbatched(maker)
        specs.append(TensorSpec(tensor.name, tensor.dtype, ((-1,) if batched else ()) + inst, tensor.tensor_name))
        makers.append(maker)
    return Generator(tuple(specs), frozenset(binary), tuple(makers), spec.signature_name, tuple(notes))


def _file_rows_shape(tensor: TensorSpec, spec: PayloadSpec, rows: np.ndarray) -> tuple[int, ...]:
    """Rows of a data file must fit the signature's per-instance shape (-1 dims are free)."""
    inst = tuple(rows.shape[1:])
    if tensor.shape is not None and (
        len(tensor.shape) != len(inst) + 1
        or any(w not in (-1, g) for w, g in zip(tensor.shape[1:], inst, strict=False))
    ):
        raise InputError(
            f"--numeric-file {spec.numeric_file}: rows of shape {_fmt(inst)} do not fit input "
            f"'{tensor.name}' of signature shape {_fmt(tensor.shape)} (dim 0 is the batch)"
        )
    return inst


def make_generator(
    spec: PayloadSpec, metadata: ModelMetadata | None = None, *, distinct_images: int = IMAGE_BANK_SIZE
) -> Generator:
    """The generator for a spec; with metadata, inputs are checked against (or, for `auto`, built
    from) the signature `spec.signature_name` (default `serving_default`).

    Generated images come from a bank of `distinct_images` (at most 1024) encoded lazily; a generator's
    output is a function of the rng draws since its creation, so make a fresh one per pool."""
    if spec.kind == "auto":
        return _auto(spec, metadata, distinct_images)
    return _fixed_kind(spec, metadata, distinct_images)
