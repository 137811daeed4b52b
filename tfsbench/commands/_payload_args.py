"""Payload options shared by every command that sends bodies (payload, run, sweep, search, locust...).

`add_payload_arguments(parser)` adds the flags; `payload_spec_from_args(args)` turns them into a
validated `PayloadSpec`. With `multi=True`, --kind, --batch-size and --format take comma lists and the
caller passes the single values it is iterating over. Only light imports here (CLI start-up speed).
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from typing import Any

from tfsbench.bench.args import (
    choice_of,
    comma_tuple,
    dims,
    image_size,
    non_negative_int,
    positive_int,
    shape_override,
    word_range,
)
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


# ---- type= validators: the grammar is bench.args's (one module for every command) ---------------

kind_list = comma_tuple(choice_of(KINDS, "kind"), "kinds")
format_list = comma_tuple(choice_of(FORMATS, "format"), "formats")
int_list = comma_tuple(positive_int, "positive integers")


# ---- the options --------------------------------------------------------------------------------


def add_payload_arguments(parser: argparse.ArgumentParser, *, multi: bool = False, skip: Collection[str] = (),
                          suppress_defaults: bool = False) -> list[argparse.Action]:
    """Add the payload flags and return their actions. With multi=True, --kind/--batch-size/--format
    accept comma lists.

    Flags in `skip` (a command's own --pool-size, say) are left out, so commands can keep their own
    definitions; `payload_spec_from_args` reads whatever ends up in `args`. With `suppress_defaults`,
    an attribute is set only when its flag was given (so flags can override a config file).
    """
    group = parser.add_argument_group("payload")
    added: list[argparse.Action] = []

    class _Group:
        @staticmethod
        def add_argument(flag: str, **kwargs: Any) -> None:
            if flag not in skip:
                if suppress_defaults:
                    kwargs["default"] = argparse.SUPPRESS
                added.append(group.add_argument(flag, **kwargs))

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
    return added


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
