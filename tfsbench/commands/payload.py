"""`tfsbench payload`: not implemented yet (placeholder so the CLI table is complete)."""

import argparse

from payloads.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("payload", help="(not implemented yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise InputError("'payload' is not implemented yet")
