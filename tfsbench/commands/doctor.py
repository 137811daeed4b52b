"""`tfsbench doctor`: a pass/fail checklist (with fixes) for a model's REST path, including browsers' CORS."""

from __future__ import annotations

import argparse
from pathlib import Path

from tfsbench.bench.args import duration_at_most, from_input_error, int_in_range, url
from tfsbench.commands import Subparsers
from tfsbench.commands._protocol_args import rest_or_grpc_url
from tfsbench.payloads.errors import InputError


def _origin(text: str) -> str:
    """A web origin for the CORS checks (the grammar is doctor's own: scheme://host[:port])."""
    from tfsbench.doctor.checklist import validate_origin

    return from_input_error(validate_origin)(text)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "doctor",
        help="checklist for a model's REST path: status, metadata, CORS, body, one predict (--browser: Chromium)",
        description=(
            "Check that TF Serving answers and the model is AVAILABLE, list its signatures, check CORS "
            "for a browser app at --origin exactly as a browser does, check a request body against the "
            "signature, and make one predict. Exit 0 all pass, 1 a check failed, 2 bad input."
        ),
    )
    p.add_argument("--url", required=True, type=url, help="TF Serving REST base URL, e.g. http://127.0.0.1:8501")
    p.add_argument("--model", required=True, help="model name")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int_in_range(1, 10_000), help="model version")
    which.add_argument("--label", help="model version label")
    p.add_argument("--signature", help="signature name (default serving_default)")
    p.add_argument(
        "--origin", type=_origin, default="https://app.example",
        help="the web app's origin for the CORS checks (default https://app.example)",
    )
    p.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra HTTP header on the status, metadata and predict requests (repeatable), "
                   "e.g. 'Authorization: Bearer x'; its name is also asked for in the CORS preflight")
    p.add_argument("--grpc-url", type=rest_or_grpc_url, metavar="grpc://HOST:PORT",
                   help="also check TF Serving's gRPC port: reachable, model status, a predict round trip")
    p.add_argument("--body", metavar="FILE", help="request body to check and send (default: generated from metadata)")
    p.add_argument("--browser", action="store_true", help="also run the fetch() in headless Chromium (Playwright)")
    p.add_argument("--calls", type=int_in_range(1, 10_000), default=10, help="fetch() calls in the browser (default 10)")
    p.add_argument("--timeout", type=duration_at_most(600.0), default=10.0, help="per-request timeout in seconds (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from tfsbench.bench.measure.engine import header_dict
    from tfsbench.doctor import checklist as doctor
    from tfsbench.payloads.credentials import refuse_userinfo

    refuse_userinfo(args.url)
    headers = header_dict(args.header)
    body = None
    if args.body:
        try:
            body = Path(args.body).read_bytes()
        except FileNotFoundError:
            raise InputError(f"--body {args.body}: no such file") from None
        except OSError as exc:
            raise InputError(f"--body {args.body}: cannot read ({exc.strerror or exc})") from None
        doctor.parse_body(body, f"--body {args.body}")
    target = doctor.Target(
        url=args.url, model=args.model, version=args.version, label=args.label,
        signature=args.signature, timeout_s=args.timeout, headers=headers,
    )
    report = doctor.diagnose(target, args.origin, body, f"--body {args.body}" if args.body else "--body")
    if args.browser:
        from tfsbench.doctor.browser import browser_check

        sent = body if body is not None else report.sent_body
        if sent is None:
            raise InputError("--browser needs a request body: pass --body FILE (no metadata to generate one)")
        seen = browser_check(target.predict_url, sent, calls=args.calls, timeout_s=max(args.timeout, 5.0))
        report = dataclasses.replace(
            report, findings=report.findings + (doctor.browser_finding(seen),), browser=seen
        )
    if args.grpc_url:
        if not args.grpc_url.startswith(("grpc://", "grpcs://")):
            raise InputError(f"--grpc-url must be grpc://HOST:PORT or grpcs://HOST:PORT, got {args.grpc_url!r}")
        from tfsbench.doctor.grpc_checks import grpc_findings

        found = grpc_findings(args.grpc_url, args.model, version=args.version, label=args.label,
                              signature=args.signature, headers=headers, timeout_s=args.timeout)
        report = dataclasses.replace(report, findings=report.findings + tuple(found))
    print(doctor.render_text(report))
    return report.exit_status
