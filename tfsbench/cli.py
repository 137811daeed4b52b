"""The `tfsbench` command line: parse, validate, call. One small module per subcommand.

Exit status: 0 success, 1 a check or gate failed, 2 bad input (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

from tfsbench.bench.args import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from tfsbench.payloads.errors import InputError

# Each module defines `register(subparsers) -> None`, which adds its parser and sets `func`.
# Handlers import heavy packages inside the handler so that `tfsbench --help` stays fast.
COMMANDS: tuple[str, ...] = (
    "serve",
    "payload",
    "run",
    "sweep",
    "search",
    "selfbench",
    "report",
    "compare",
    "plan",
    "check",
    "doctor",
    "demo",
    "locust_export",
    "trace",
    "replay",
)

# The exit codes live with the argument grammar (tfsbench.bench.args); re-exported for callers.
__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one line (no usage dump) and exit status 2. No
    abbreviated options: argparse's default took `run --mode open` (a k6 or Locust habit) for
    `--model open` and benchmarked a model named "open"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text: str) -> str:
    """Control characters from the user's arguments (\\x1e, \\x85, U+2028...) escaped, so the error stays one line."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") and c != "\t" else c
                   for c in text)


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = OneLineParser(
        prog="tfsbench",
        description="Load testing and benchmarking for TensorFlow Serving's REST API.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"tfsbench.commands.{name}")
        module.register(sub)
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by its name (for tests and generated docs), so that nobody has to
    look for argparse's private _SubParsersAction among a parser's actions."""
    return _build()[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except InputError as exc:
        print(f"tfsbench {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tfsbench {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    return int(status or 0)


if __name__ == "__main__":
    raise SystemExit(main())
