"""--protocol rest|grpc and its knobs, shared by run, sweep, search and selfbench (light imports only)."""

from __future__ import annotations

import argparse
from typing import Any

from tfsbench.payloads.errors import InputError

PROTOCOLS = ("rest", "grpc")


def add_protocol_arguments(group: Any) -> None:
    group.add_argument("--protocol", choices=PROTOCOLS, default="rest",
                       help="rest: TF Serving's REST API (JSON, --url http://HOST:8501); grpc: its gRPC "
                            "PredictionService (protobuf, --url grpc://HOST:8500, grpcs:// for TLS; --header "
                            "becomes gRPC metadata) (default rest)")
    group.add_argument("--numeric-form", choices=("content", "val"), default="content",
                       help="gRPC only: numbers as tensor_content (packed bytes) or in float_val/int_val... "
                            "(default content)")
    group.add_argument("--grpc-compression", choices=("none", "gzip"), default="none",
                       help="gRPC only: compress each request message with gRPC's gzip (default none)")


def quiet_grpc_logs() -> None:
    """See tfsbench.bench.measure.engine_grpc.quiet_grpc_logs (kept light: no grpc import here)."""
    import os

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def protocol_from_args(args: argparse.Namespace) -> tuple[str, str, dict[str, Any]]:
    """(protocol, engine, extra config entries); InputError for combinations that cannot work."""
    protocol = getattr(args, "protocol", "rest")
    engine = getattr(args, "engine", "fast")
    if protocol != "grpc":
        if getattr(args, "numeric_form", "content") != "content":
            raise InputError("--numeric-form is for --protocol grpc (REST sends JSON numbers)")
        if getattr(args, "grpc_compression", "none") != "none":
            raise InputError("--grpc-compression is for --protocol grpc (REST bodies: --gzip)")
        return protocol, engine, {}
    if engine == "aiohttp":
        raise InputError("--engine aiohttp speaks HTTP/JSON; --protocol grpc uses the grpc engine")
    quiet_grpc_logs()
    from tfsbench.bench.measure.engine_grpc import check_grpc_url

    check_grpc_url(args.url)
    if getattr(args, "gzip", False):
        raise InputError("--gzip is HTTP's Content-Encoding; it does not apply to --protocol grpc")
    extra: dict[str, Any] = {"numeric_form": args.numeric_form} if args.numeric_form != "content" else {}
    if getattr(args, "grpc_compression", "none") == "gzip":
        extra["grpc_compression"] = "gzip"
    return protocol, "grpc", extra


def _rest_or_grpc(text: str) -> str:
    if text.strip().lower().startswith(("grpc://", "grpcs://")):
        from tfsbench.bench.measure.engine_grpc import check_grpc_url

        check_grpc_url(text.strip())
        return text.strip()
    from tfsbench.bench.args import parse_url

    return parse_url(text, "URL")


def rest_or_grpc_url(text: str) -> str:
    """argparse type of --url where gRPC is possible: grpc://HOST:PORT (grpcs:// for TLS) or http(s)."""
    from tfsbench.bench.args import from_input_error

    return from_input_error(_rest_or_grpc, "URL", strip_prefix="--url ")(text)


def grpc_base(base: Any, protocol: str | None, numeric_form: str | None) -> Any:
    """See tfsbench.bench.measure.engine_grpc.grpc_config."""
    from tfsbench.bench.measure.engine_grpc import grpc_config

    return grpc_config(base, protocol, numeric_form)
