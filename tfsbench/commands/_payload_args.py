"""Payload options shared by every command that sends bodies (payload, run, sweep, search, locust...).

`add_payload_arguments(parser)` adds the flags; `payload_spec_from_args(args)` turns them into a
validated `PayloadSpec`. With `multi=True`, --kind, --batch-size and --format take comma lists and the
caller passes the single values it is iterating over. Only light imports here (CLI start-up speed).
"""

from __future__ import annotations

import argparse
from typing import Any

from tfsbench.bench.units import non_negative_int, positive_int  # noqa: F401 - re-exported: every command's integers
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.spec import (
    FORMATS,
    IMAGE_FORMATS,
    IMAGE_STYLES,
    KINDS,
    MAX_IMAGE_SIDE,
    NUMERIC_DISTS,
    NUMERIC_DTYPES,
    PayloadSpec,
)

DEFAULT_POOL_SIZE = 64


# ---- type= validators (argparse turns ArgumentTypeError into one line and exit status 2) ----------


def _choice_list(allowed: tuple[str, ...], what: str):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(t.strip() for t in text.split(",") if t.strip())
        if not items:
            raise argparse.ArgumentTypeError(f"expected one or more {what} separated by commas")
        for item in items:
            if item not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {item!r} (choose from {', '.join(allowed)})"
                )
        return items

    parse.__name__ = f"{what} list"
    return parse


kind_list = _choice_list(KINDS, "kind")
format_list = _choice_list(FORMATS, "format")


def int_list(text: str) -> tuple[int, ...]:
    """"1,8,64" -> (1, 8, 64); every item >= 1."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas, e.g. 1,8,64")
    return tuple(positive_int(t) for t in items)


def word_range(text: str) -> tuple[int, int]:
    """"16" -> (16, 16); "8-32" -> (8, 32)."""
    parts = text.split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX words, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or values[0] < 1 or values[1] < values[0]:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX words with 1 <= MIN <= MAX, got {text!r}")
    return values[0], values[1]


def image_size(text: str) -> tuple[int, int]:
    """"128x96" -> (128, 96) as (width, height); "224" -> (224, 224)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 128x128, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 128x128, got {text!r}")
    for side in values:
        if not 1 <= side <= MAX_IMAGE_SIDE:
            raise argparse.ArgumentTypeError(
                f"image size {text} is out of range: each side must be 1..{MAX_IMAGE_SIDE} px"
            )
    return values[0], values[1]


def dims(text: str) -> tuple[int, ...]:
    """"784" or "28,28" or "28x28" -> a tuple of positive dims."""
    items = [t for t in text.replace("x", ",").split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected dims like 784 or 28,28, got {text!r}")
    try:
        values = tuple(int(t) for t in items)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dims like 784 or 28,28, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"dims must be >= 1, got {text!r}")
    return values


def shape_override(text: str) -> tuple[str, tuple[int, ...]]:
    """"image=1,224,224,3" -> ("image", (1, 224, 224, 3)); -1 allowed only as a leading batch dim."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... e.g. image=224,224,3, got {text!r}")
    try:
        values = tuple(int(t) for t in rest.replace("x", ",").split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... with integer dims, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... e.g. image=224,224,3, got {text!r}")
    body = values[1:] if values[0] == -1 else values
    if any(v < 1 for v in body):
        raise argparse.ArgumentTypeError(f"dims in {text!r} must be >= 1 (only a leading batch dim may be -1)")
    if values[0] == -1:
        values = (1, *body)  # a full shape with an open batch dim: dim 0 is replaced by the batch size
    return name.strip(), values


# ---- the options --------------------------------------------------------------------------------


def add_payload_arguments(parser: argparse.ArgumentParser, *, multi: bool = False) -> None:
    """Add the payload flags. With multi=True, --kind/--batch-size/--format accept comma lists.

    Flags the parser already has (e.g. a command's own --seed or --pool-size) are skipped, so commands
    can keep their own definitions; `payload_spec_from_args` reads whatever ends up in `args`.
    """
    group = parser.add_argument_group("payload")
    taken = parser._option_string_actions  # argparse has no public "has option" query

    class _Group:
        @staticmethod
        def add_argument(flag: str, **kwargs: Any) -> None:
            if flag not in taken:
                group.add_argument(flag, **kwargs)

    g = _Group()
    if multi:
        g.add_argument("--kind", type=kind_list, default=("numeric",), metavar="KINDS",
                       help=f"payload kinds, comma-separated ({', '.join(KINDS)}; default numeric)")
        g.add_argument("--batch-size", type=int_list, default=(1,), metavar="N[,N...]",
                       help="instances per request, comma-separated (default 1)")
        g.add_argument("--format", type=format_list, default=("row",), metavar="FORMATS",
                       help="row ({\"instances\": ...}) and/or columnar ({\"inputs\": ...}) (default row)")
    else:
        g.add_argument("--kind", choices=KINDS, default="numeric",
                       help="what to send: text, image (JPEG/PNG as b64), numeric tensors, or auto "
                            "(built from the model's signature) (default numeric)")
        g.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                       help="instances per request (default 1)")
        g.add_argument("--format", choices=FORMATS, default="row",
                       help="row = {\"instances\": [...]}, columnar = {\"inputs\": ...} (default row)")
    g.add_argument("--seed", type=non_negative_int, default=0, help="random seed; same seed, same bytes (default 0)")
    g.add_argument("--signature", default=None, metavar="NAME",
                   help="signature_name to put in bodies and to read from metadata (default serving_default)")
    g.add_argument("--input-name", default=None, metavar="NAME",
                   help="input name for text/image/numeric kinds (defaults: text, image_bytes, features)")
    g.add_argument("--text-words", type=word_range, default=(8, 32), metavar="N|MIN-MAX",
                   help="words per text instance, uniform in MIN-MAX (default 8-32)")
    g.add_argument("--text-file", default=None, metavar="FILE", help="UTF-8 file; each non-empty line is one text")
    g.add_argument("--image-size", type=image_size, default=(128, 128), metavar="WxH",
                   help=f"generated image size in px, up to {MAX_IMAGE_SIDE} a side (default 128x128)")
    g.add_argument("--image-format", choices=IMAGE_FORMATS, default="jpeg", help="encoding (default jpeg)")
    g.add_argument("--image-quality", type=positive_int, default=85, metavar="Q", help="JPEG quality 1-100 (default 85)")
    g.add_argument("--image-style", choices=IMAGE_STYLES, default="photo",
                   help="photo: smooth, realistic sizes; noise: incompressible worst case (default photo)")
    g.add_argument("--image-dir", default=None, metavar="DIR", help="send these .jpg/.jpeg/.png files instead")
    g.add_argument("--shape", type=shape_override, action="append", default=[], metavar="NAME=D1,D2,...",
                   help="shape for an input of kind auto, per instance (224,224,3) or full (1,224,224,3); repeatable")
    g.add_argument("--numeric-shape", type=dims, default=(4,), metavar="D1,D2,...",
                   help="per-instance shape for kind numeric (default 4)")
    g.add_argument("--numeric-dtype", choices=NUMERIC_DTYPES, default="float32", help="default float32")
    g.add_argument("--numeric-dist", choices=NUMERIC_DISTS, default="uniform",
                   help="uniform [0,1) floats / [0,1000) ints, or normal (default uniform)")
    g.add_argument("--numeric-file", default=None, metavar="FILE.npy|FILE.csv",
                   help="send rows of this .npy (axis 0) or .csv file (optional header line)")
    g.add_argument("--allow-nan", action="store_true",
                   help="allow NaN/Infinity tokens in bodies (TF Serving accepts them; strict JSON does not)")
    g.add_argument("--gzip", action="store_true", help="gzip bodies and send Content-Encoding: gzip")
    g.add_argument("--pool-size", type=positive_int, default=DEFAULT_POOL_SIZE, metavar="N",
                   help=f"distinct pre-encoded bodies per payload (default {DEFAULT_POOL_SIZE})")


def _single(value: Any, override: Any, flag: str) -> Any:
    if override is not None:
        return override
    if isinstance(value, tuple):
        if len(value) != 1:
            raise InputError(f"{flag} lists several values here; this command takes one")
        return value[0]
    return value


def payload_spec_from_args(
    args: argparse.Namespace,
    *,
    kind: str | None = None,
    batch_size: int | None = None,
    fmt: str | None = None,
) -> PayloadSpec:
    """A validated PayloadSpec from parsed args; the keyword values override list-valued flags."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in getattr(args, "shape", None) or []:
        if name in shapes:
            raise InputError(f"--shape {name} given twice")
        shapes[name] = shape
    return PayloadSpec(
        kind=_single(getattr(args, "kind", "numeric"), kind, "--kind"),
        batch_size=_single(getattr(args, "batch_size", 1), batch_size, "--batch-size"),
        format=_single(getattr(args, "format", "row"), fmt, "--format"),
        seed=getattr(args, "seed", 0),
        signature_name=getattr(args, "signature", None),
        text_words=getattr(args, "text_words", (8, 32)),
        text_file=getattr(args, "text_file", None),
        image_size=getattr(args, "image_size", (128, 128)),
        image_format=getattr(args, "image_format", "jpeg"),
        image_quality=getattr(args, "image_quality", 85),
        image_style=getattr(args, "image_style", "photo"),
        image_dir=getattr(args, "image_dir", None),
        numeric_shape=getattr(args, "numeric_shape", (4,)),
        numeric_dtype=getattr(args, "numeric_dtype", "float32"),
        numeric_dist=getattr(args, "numeric_dist", "uniform"),
        numeric_file=getattr(args, "numeric_file", None),
        input_name=getattr(args, "input_name", None),
        shape_overrides=shapes,
        allow_nan=bool(getattr(args, "allow_nan", False)),
        gzip=bool(getattr(args, "gzip", False)),
    )


def add_metadata_arguments(parser: argparse.ArgumentParser, *, with_url: bool = True) -> None:
    """--metadata FILE (and, unless the command has its own, --url/--model/--version/--label)."""
    g = parser.add_argument_group("model signature")
    g.add_argument("--metadata", default=None, metavar="FILE",
                   help="TF Serving metadata JSON (curl http://HOST:8501/v1/models/NAME/metadata > FILE)")
    if with_url:
        g.add_argument("--url", default=None, help="TF Serving base URL, e.g. http://127.0.0.1:8501")
        g.add_argument("--model", default=None, help="model name (with --url)")
        g.add_argument("--version", type=positive_int, default=None, help="model version (with --url)")
        g.add_argument("--label", default=None, help="model version label (with --url)")


def metadata_from_args(args: argparse.Namespace, *, required: bool = False) -> Any:
    """ModelMetadata from --metadata FILE or --url/--model, or None when neither was given."""
    path = getattr(args, "metadata", None)
    url = getattr(args, "url", None)
    model = getattr(args, "model", None)
    if path and url:
        raise InputError("give either --metadata FILE or --url URL --model NAME, not both")
    if path:
        from tfsbench.payloads.metadata_fetch import load_metadata_file

        return load_metadata_file(path)
    if url:
        if not model:
            raise InputError("--url needs --model NAME to fetch the model's metadata")
        from tfsbench.payloads.metadata_fetch import fetch_metadata

        return fetch_metadata(url, model, getattr(args, "version", None), getattr(args, "label", None))
    if required:
        raise InputError("--kind auto needs the model's metadata (--metadata FILE, or --url URL --model NAME)")
    return None
