"""`tfsbench serve`: the embedded TF Serving-compatible target (or a SavedModel, with the tf extra)."""

from __future__ import annotations

import argparse
from typing import Any

from tfsbench.bench.args import duration_at_most, from_input_error, int_in_range, port, positive_int
from tfsbench.commands import Subparsers
from tfsbench.payloads.errors import InputError


def _size(text: str) -> int:
    from tfsbench.server.options import parse_size_bytes

    return parse_size_bytes(text, what="--max-body-bytes")


def _service_time(text: str) -> Any:
    from tfsbench.server.options import parse_service_time

    return parse_service_time(text)


def _batching(text: str) -> Any:
    from tfsbench.server.options import parse_batching

    return parse_batching(text)


def _faults(text: str) -> Any:
    from tfsbench.server.faults import parse_faults

    return parse_faults(text)


def _model_name(text: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", text):
        raise InputError(f"{text!r} is not a model name (letters, digits, '_', '.', '-')")
    return text


def _grpc_port(text: str) -> int:
    """A port (0 = free) or 'off' (stored as -1)."""
    if text.strip().lower() == "off":
        return -1
    return port(text)


def _grpc_port_for(args: argparse.Namespace) -> int | None:
    """None = REST only. Default: TF Serving's pair, 8500 next to 8501; nothing next to other ports."""
    if args.grpc_port is None:
        return 8500 if args.port == 8501 else None
    return None if args.grpc_port < 0 else args.grpc_port


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "serve",
        help="run the embedded TF Serving-compatible target (demo models, or a SavedModel with --model-base-path)",
        description=(
            "Serve TF Serving's REST API on HOST:PORT: the demo models numeric, text and image (versions 1 "
            "and 2, label stable -> 1), or one SavedModel directory with the tf extra. Prints "
            "'tfsbench serve: listening on URL' once ready; stops on Ctrl-C or SIGTERM."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: local only)")
    p.add_argument("--port", type=port, default=8501, help="REST port (default 8501; 0 = free)")
    p.add_argument("--grpc-port", type=_grpc_port, default=None, metavar="PORT|off",
                   help="gRPC port (PredictionService, ModelService), like tensorflow_model_server --port: "
                        "default 8500 when REST is on 8501, else off; 0 = free")
    p.add_argument("--enable-cors", action="store_true",
                   help="answer CORS like --rest_api_enable_cors_support (off by default, as in TF Serving)")
    p.add_argument("--max-body-bytes", type=from_input_error(_size, "size", strip_prefix="--max-body-bytes: "), default=None,
                   help="largest request body on the wire, e.g. 64MiB (default); larger gets 413")
    p.add_argument("--max-json-depth", type=positive_int, default=None,
                   help="deepest tensor nesting accepted in request JSON (default 64)")
    p.add_argument("--max-instances", type=positive_int, default=None, metavar="N",
                   help="most instances (rows) per predict request (default 100000); more gets 400")
    p.add_argument("--max-elements", type=positive_int, default=None, metavar="N",
                   help="most tensor elements per request, all inputs together (default 16777216); more gets 400")
    p.add_argument("--header-timeout", type=duration_at_most(86_400), default=None, metavar="DURATION",
                   help="close a connection whose request head is not complete within this (default 10s)")
    p.add_argument("--body-timeout", type=duration_at_most(86_400), default=None, metavar="DURATION",
                   help="answer 408 and close when a request body is not complete within this (default 30s)")
    p.add_argument("--keepalive-timeout", type=duration_at_most(86_400), default=None, metavar="DURATION",
                   help="close a connection idle between requests for this long (default 75s)")
    p.add_argument("--max-connections", type=positive_int, default=None, metavar="N",
                   help="open connections per worker process (default 2048); more are closed at once")
    p.add_argument("--service-time", type=from_input_error(_service_time, "service time", strip_prefix="--service-time: "), default=None,
                   metavar="[exp:]DURATION",
                   help="extra time per batch (per request without batching): fixed '5ms' or exponential 'exp:5ms'")
    p.add_argument("--batching", type=from_input_error(_batching, "batching", strip_prefix="--batching: "), default=None,
                   metavar="KEY=INT,...",
                   help="server-side batching like --enable_batching: max_batch_size, batch_timeout_micros, "
                        "num_batch_threads, max_enqueued_batches (503 when the queue is full)")
    p.add_argument("--batching-parameters-file", default=None, metavar="FILE",
                   help="TF Serving's batching parameters file (text proto), instead of --batching")
    p.add_argument("--rest-api-num-threads", type=positive_int, default=None, metavar="N",
                   help="requests processed at once, like TF Serving's --rest_api_num_threads; the rest wait "
                        "(default: no limit)")
    p.add_argument("--rest-api-timeout-ms", type=positive_int, default=30000, metavar="MS",
                   help="model run deadline, like --rest_api_timeout_in_ms (default 30000); past it: 504")
    p.add_argument("--faults", type=from_input_error(_faults, "faults", strip_prefix="--faults: "), default=None, metavar="SPEC",
                   help="inject faults, e.g. 'status=503:5%%,delay=exp:20ms:0.1,stall=1s/10s,reset=1%%' "
                        "(see docs/serve.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the service-time draws (default 0)")
    p.add_argument("--workers", type=int_in_range(1, 64, "workers"), default=1,
                   help="processes sharing the port with SO_REUSEPORT (default 1); metrics are per process")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's default event loop")
    p.add_argument("--model-name", type=from_input_error(_model_name, "model name"), default=None,
                   help="with --model-base-path: the name to serve the SavedModel under")
    p.add_argument("--model-base-path", default=None, metavar="DIR",
                   help="serve DIR/<version>/saved_model.pb with TensorFlow (extra 'tf') instead of the demo models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from tfsbench.server.options import make_options, parse_batching_file

    if args.batching is not None and args.batching_parameters_file is not None:
        raise InputError("--batching and --batching-parameters-file: give one, not both")
    batching = args.batching
    if args.batching_parameters_file is not None:
        batching = parse_batching_file(args.batching_parameters_file)
    if (args.model_name is None) != (args.model_base_path is None):
        raise InputError("--model-name and --model-base-path go together")
    overrides: dict[str, Any] = {
        "enable_cors": args.enable_cors,
        "service_time": args.service_time,
        "batching": batching,
        "faults": args.faults,
        "seed": args.seed,
        "num_threads": args.rest_api_num_threads,
        "timeout_ms": args.rest_api_timeout_ms,
        "grpc_port": _grpc_port_for(args),
    }
    if args.max_body_bytes is not None:
        overrides["max_body_bytes"] = args.max_body_bytes
    if args.max_json_depth is not None:
        overrides["max_json_depth"] = args.max_json_depth
    for flag, option in (("max_instances", "max_instances"), ("max_elements", "max_elements"),
                         ("header_timeout", "header_timeout_s"), ("body_timeout", "body_timeout_s"),
                         ("keepalive_timeout", "keepalive_timeout_s"), ("max_connections", "max_connections")):
        if getattr(args, flag) is not None:
            overrides[option] = getattr(args, flag)
    options = make_options(**overrides)

    if args.model_base_path is not None:
        from tfsbench.server.savedmodel import check_model_base_path, savedmodel_registry

        if args.workers > 1:
            raise InputError("--workers > 1 is not supported with --model-base-path (TensorFlow and fork)")
        versions = check_model_base_path(args.model_base_path)
        name, base = args.model_name, args.model_base_path

        def make_registry() -> Any:
            return savedmodel_registry(name, base, versions)

        models_text = f"{name} (SavedModel versions {', '.join(map(str, versions))} from {base})"
    else:
        from tfsbench.server.registry import demo_registry

        make_registry = demo_registry
        models_text = "numeric, text, image (versions 1 and 2, label stable -> 1)"

    def announce(url: str) -> None:
        print(f"tfsbench serve: listening on {url}", flush=True)
        batching_text = "off"
        if options.batching is not None:
            b = options.batching
            batching_text = (f"max_batch_size={b.max_batch_size} batch_timeout_micros={b.batch_timeout_micros} "
                             f"num_batch_threads={b.num_batch_threads} max_enqueued_batches={b.max_enqueued_batches}")
        service = options.service_time.describe() if options.service_time else "none"
        print(f"  models: {models_text}", flush=True)
        threads = options.num_threads or "unlimited"
        print(f"  cors: {'on' if options.enable_cors else 'off'}  threads: {threads}  batching: {batching_text}  "
              f"service time: {service}  faults: {options.faults.describe()}  workers: {args.workers} "
              f"(pid {os.getpid()})", flush=True)
        print(f"  limits: {options.max_instances} instances, {options.max_elements} elements per request; "
              f"timeouts: header {options.header_timeout_s:g}s, body {options.body_timeout_s:g}s, "
              f"keep-alive {options.keepalive_timeout_s:g}s; max connections {options.max_connections}",
              flush=True)
        if args.host not in ("127.0.0.1", "::1", "localhost"):
            print(f"tfsbench serve: warning: bound to {args.host}, reachable from other machines", file=sys.stderr)

    if options.grpc_port is not None:
        from tfsbench.commands._protocol_args import quiet_grpc_logs

        quiet_grpc_logs()
    from tfsbench.server.runner import serve_forever

    return serve_forever(
        make_registry,
        options,
        host=args.host,
        port=args.port,
        workers=args.workers,
        use_uvloop=not args.no_uvloop,
        announce=announce,
        announce_grpc=lambda address: print(f"tfsbench serve: gRPC listening on {address}", flush=True),
    )
