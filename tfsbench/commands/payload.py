"""`tfsbench payload`: write one request body (what would be POSTed), or print the size table."""

from __future__ import annotations

import argparse
import sys

from tfsbench.commands import Subparsers
from tfsbench.commands._payload_args import (
    add_metadata_arguments,
    add_payload_arguments,
    format_list,
    int_list,
    kind_list,
    metadata_from_args,
    payload_spec_from_args,
    positive_int,
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "payload",
        help="write one TF Serving request body, or print payload sizes (--sizes)",
        description="Write exactly one predict request body to --out or stdout (curl -d @FILE, wrk), "
        "or with --sizes print raw vs wire vs gzip bytes per kind x format x batch size.",
    )
    p.add_argument("--pool-size", type=positive_int, default=8, metavar="N",
                   help="bodies averaged per row of --sizes (default 8)")
    add_payload_arguments(p, skip=("--pool-size",))  # keeps the --pool-size above
    add_metadata_arguments(p)
    p.add_argument("--protocol", choices=("rest", "grpc"), default="rest",
                   help="rest: the JSON body; grpc: the serialized PredictRequest (model spec from --model, "
                   "--version/--label; default model: the demo model of --kind). With --sizes: "
                   "raw vs protobuf vs JSON vs JSON+gzip (default rest)")
    p.add_argument("--numeric-form", choices=("content", "val"), default="content",
                   help="gRPC numbers as tensor_content (packed) or float_val/int_val... (default content)")
    p.add_argument("--out", default=None, metavar="FILE", help="write the body here (default stdout)")
    p.add_argument("--sizes", action="store_true", help="print the size table instead of a body")
    p.add_argument("--kinds", type=kind_list, default=("text", "image", "numeric"), metavar="K1,K2",
                   help="kinds for --sizes (default text,image,numeric)")
    p.add_argument("--batch-sizes", type=int_list, default=(1, 8, 64), metavar="N1,N2",
                   help="batch sizes for --sizes (default 1,8,64)")
    p.add_argument("--formats", type=format_list, default=("row", "columnar"), metavar="F1,F2",
                   help="formats for --sizes (default row,columnar)")
    p.set_defaults(func=run)


def _write_out(path: str, body: bytes) -> None:
    """Atomically into a regular file; straight into a device or pipe (--out /dev/stdout)."""
    import errno
    import os
    from pathlib import Path

    from tfsbench.bench.results import write_bytes_atomic

    target = Path(path)
    if not target.parent.is_dir():  # like open(): no folders created on the way
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(target.parent))
    if target.exists() and not target.is_file():
        with open(target, "wb") as fh:
            fh.write(body)
        return
    write_bytes_atomic(target, body)


def run(args: argparse.Namespace) -> int:
    from tfsbench.payloads.errors import InputError

    spec = payload_spec_from_args(args)
    if args.sizes and args.protocol == "grpc":
        return _print_protocol_sizes(args, spec)
    needs_meta = args.sizes and "auto" in args.kinds or (not args.sizes and spec.kind == "auto")
    metadata = metadata_from_args(args, required=needs_meta)
    if args.sizes:
        return _print_sizes(args, spec, metadata)
    if args.protocol == "grpc":
        pool = _grpc_pool(args, spec, metadata)
    else:
        from tfsbench.payloads.pool import build_pool

        pool = build_pool(spec, 1, metadata)
    for note in pool.notes:
        print(f"tfsbench payload: note: {note}", file=sys.stderr)
    body = pool.bodies[0]
    if args.out:
        try:
            _write_out(args.out, body)
        except OSError as exc:
            raise InputError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
        size = pool.sizes[0]
        enc = " (gzip: send with Content-Encoding: gzip)" if spec.gzip else ""
        if args.protocol == "grpc":
            enc = " (serialized tensorflow.serving.PredictRequest)"
        print(
            f"wrote {len(body)} bytes to {args.out}{enc}: {pool.name}, raw {size.raw_bytes} B, "
            f"ratio {size.overhead_ratio:.2f}",
            file=sys.stderr,
        )
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    return 0


def _fmt_bytes(n: float) -> str:
    if n >= 10 * 1024 * 1024:
        return f"{n / 2**20:,.1f} MiB"
    if n >= 10 * 1024:
        return f"{n / 1024:,.1f} KiB"
    return f"{n:,.0f} B"


def _print_sizes(args: argparse.Namespace, spec, metadata) -> int:
    from rich.console import Console
    from rich.table import Table

    from tfsbench.payloads.sizes import size_table

    rows = size_table(args.kinds, args.batch_sizes, args.formats, args.seed, pool_size=args.pool_size,
                      metadata=metadata, base=spec)
    title = f"Request body sizes (means over {args.pool_size} bodies per row)"
    table = Table(title=title, title_justify="left")
    for col, justify in (("kind", "left"), ("format", "left"), ("batch", "right"), ("raw", "right"),
                         ("wire", "right"), ("wire/raw", "right"), ("b64 share", "right"),
                         ("gzip", "right"), ("gzip/raw", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.kind, r.format, str(r.batch_size), _fmt_bytes(r.raw_bytes), _fmt_bytes(r.wire_bytes),
            f"{r.overhead_ratio:.2f}x", f"{r.b64_share:.0%}", _fmt_bytes(r.gzip_bytes),
            f"{r.gzip_bytes / max(r.raw_bytes, 1):.2f}x",
        )
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print(
        "raw = tensor bytes (nbytes; UTF-8 text; encoded image files). wire = JSON body. "
        "b64 share = base64 text / wire. gzip = the body with Content-Encoding: gzip."
    )
    return 0


def _grpc_pool(args: argparse.Namespace, spec, metadata):
    from tfsbench.payloads.grpc_pool import DEMO_MODEL_FOR_KIND, GrpcTarget, build_grpc_pool

    model = args.model or DEMO_MODEL_FOR_KIND.get(spec.kind)
    if not model:
        from tfsbench.payloads.errors import InputError

        raise InputError("--protocol grpc with --kind auto needs --model NAME (the request carries it)")
    target = GrpcTarget(model, args.version, args.label, args.numeric_form)
    return build_grpc_pool(spec, target, 1, metadata)


def _print_protocol_sizes(args: argparse.Namespace, spec) -> int:
    from rich.console import Console
    from rich.table import Table

    from tfsbench.payloads.errors import InputError
    from tfsbench.payloads.grpc_pool import protocol_size_table

    if "auto" in args.kinds:
        raise InputError("--sizes --protocol grpc: kind auto is not supported; list text, image or numeric")
    rows = protocol_size_table(args.kinds, args.batch_sizes, args.seed, pool_size=args.pool_size, base=spec,
                               numeric_form=args.numeric_form)
    table = Table(title=f"Request sizes by protocol (means over {args.pool_size} requests per row)",
                  title_justify="left")
    for col in ("kind", "batch", "raw", "protobuf", "protobuf+gzip", "JSON", "JSON+gzip", "JSON/protobuf"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for r in rows:
        table.add_row(r.kind, str(r.batch_size), _fmt_bytes(r.raw_bytes), _fmt_bytes(r.protobuf_bytes),
                      _fmt_bytes(r.protobuf_gzip_bytes), _fmt_bytes(r.json_bytes), _fmt_bytes(r.json_gzip_bytes),
                      f"{r.json_over_protobuf:.2f}x")
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print("raw = tensor bytes. protobuf = serialized PredictRequest (gRPC adds a 5-byte frame); "
                  "+gzip = with gRPC's gzip compression (run --grpc-compression gzip). "
                  f"JSON = the REST body ({spec.format} format); JSON+gzip = it with Content-Encoding: gzip.")
    return 0
